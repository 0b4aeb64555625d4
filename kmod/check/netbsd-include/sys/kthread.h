/* Stand-in for NetBSD's kernel-only <sys/kthread.h>, with kthread(9)'s signatures and flags. */
#ifndef _SYS_KTHREAD_H_
#define _SYS_KTHREAD_H_

#include <sys/types.h>

struct cpu_info;
struct lwp;

#define	KTHREAD_MPSAFE		0x01	/* no kernel lock */
#define	KTHREAD_MUSTJOIN	0x04	/* kthread_join() will be called */

int	kthread_create(pri_t, int, struct cpu_info *, void (*)(void *), void *,
	    struct lwp **, const char *, ...) __printflike(7, 8);
void	kthread_exit(int) __dead;
int	kthread_join(struct lwp *);

#endif
