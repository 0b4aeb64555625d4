/* Stand-in for NetBSD's kernel-only <sys/timearith.h>: the glue uses none of its helpers. */
#ifndef _SYS_TIMEARITH_H_
#define _SYS_TIMEARITH_H_
#endif
