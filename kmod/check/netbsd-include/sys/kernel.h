/* Stand-in for NetBSD's kernel-only <sys/kernel.h>: the clock rate mstohz() scales by. */
#ifndef _SYS_KERNEL_H_
#define _SYS_KERNEL_H_

extern int hz;

#endif
