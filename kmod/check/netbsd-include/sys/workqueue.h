/*
 * Stand-in for NetBSD's kernel-only <sys/workqueue.h>: <sys/buf.h> embeds a struct work (one
 * pointer of workqueue(9)'s own) in struct buf. The glue does not use workqueue(9).
 */
#ifndef _SYS_WORKQUEUE_H_
#define _SYS_WORKQUEUE_H_

struct work {
	void	*wk_dummy;
};

#endif
