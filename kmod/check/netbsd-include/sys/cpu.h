/*
 * Stand-in for NetBSD's kernel-only <sys/cpu.h>: the two context tests of cpu(9) the glue uses
 * to choose whether kmem(9) may sleep.
 */
#ifndef _SYS_CPU_H_
#define _SYS_CPU_H_

#include <machine/cpu.h>

bool	cpu_intr_p(void);
bool	cpu_softintr_p(void);

#endif
