/* Stand-in for NetBSD/x86's kernel-only <machine/cpufunc.h>: the spin-wait hint <x86/lock.h> uses. */
#ifndef _X86_CPUFUNC_H_
#define _X86_CPUFUNC_H_
void	x86_pause(void);
#endif
