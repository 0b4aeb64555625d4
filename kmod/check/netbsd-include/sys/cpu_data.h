/*
 * Stand-in for NetBSD's kernel-only <sys/cpu_data.h>, for the CI compile of the glue only. The
 * glue never touches per-CPU data; installed headers embed a struct cpu_data in <x86/cpu.h>'s
 * struct cpu_info and read its scheduler state and idle lwp in <sys/lwp.h>'s inline functions,
 * through the same alias the real header defines. A real module build uses the kernel source
 * tree's header instead.
 */
#ifndef _SYS_CPU_DATA_H_
#define _SYS_CPU_DATA_H_

#include <sys/intr.h>	/* as the real header does */
#include <sys/sched.h>

struct lwp;

struct cpu_data {
	struct schedstate_percpu cpu_schedstate;
	struct lwp	*cpu_idlelwp;
};

#define	ci_schedstate	ci_data.cpu_schedstate

#endif
