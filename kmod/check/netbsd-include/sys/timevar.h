/* Stand-in for NetBSD's kernel-only <sys/timevar.h>: the one clock the glue reads (timecounter(9)). */
#ifndef _SYS_TIMEVAR_H_
#define _SYS_TIMEVAR_H_

struct timespec;

void	nanouptime(struct timespec *);

#endif
