/*
 * Stand-in for NetBSD's kernel-only <sys/systm.h> (and the <lib/libkern/libkern.h> it brings),
 * declared with the signatures of their section 9 manual pages: console output, panic, copying
 * between user and kernel space, the string and memory helpers, and the big kernel lock that
 * autoconf(9) calls need.
 */
#ifndef _SYS_SYSTM_H_
#define _SYS_SYSTM_H_

#include <sys/types.h>
#include <sys/device_if.h>
#include <lib/libkern/libkern.h>

typedef int	(*copyin_t)(const void *, void *, size_t);
typedef int	(*copyout_t)(const void *, void *, size_t);

void	printf(const char *, ...) __printflike(1, 2);
void	panic(const char *, ...) __dead __printflike(1, 2);
void	aprint_error(const char *, ...) __printflike(1, 2);
void	aprint_error_dev(device_t, const char *, ...) __printflike(2, 3);

struct knote;
struct lwp;
int	seltrue(dev_t, int, struct lwp *);
int	seltrue_kqfilter(dev_t, struct knote *);

int	copyin(const void *, void *, size_t);
int	copyout(const void *, void *, size_t);

void	_kernel_lock(int);
void	_kernel_unlock(int, int *);
#define	KERNEL_LOCK(count, lwp)	do { if ((count) != 0) _kernel_lock((count)); } while (0)
#define	KERNEL_UNLOCK_ONE(lwp)	_kernel_unlock(1, NULL)

#endif
