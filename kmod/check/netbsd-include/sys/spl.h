/*
 * Stand-in for NetBSD's kernel-only <sys/spl.h>: the spl(9) entry points, each raising the
 * priority level to its IPL through the machine's splraiseipl()/makeiplcookie().
 */
#ifndef _SYS_SPL_H_
#define _SYS_SPL_H_

#define	splsoftclock()	splraiseipl(makeiplcookie(IPL_SOFTCLOCK))
#define	splsoftbio()	splraiseipl(makeiplcookie(IPL_SOFTBIO))
#define	splsoftnet()	splraiseipl(makeiplcookie(IPL_SOFTNET))
#define	splsoftserial()	splraiseipl(makeiplcookie(IPL_SOFTSERIAL))
#define	splvm()		splraiseipl(makeiplcookie(IPL_VM))
#define	splsched()	splraiseipl(makeiplcookie(IPL_SCHED))
#define	splhigh()	splraiseipl(makeiplcookie(IPL_HIGH))

#endif
