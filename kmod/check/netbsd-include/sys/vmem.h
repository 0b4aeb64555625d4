/*
 * Stand-in for NetBSD's kernel-only <sys/vmem.h>: the types <uvm/uvm_extern.h> names in its
 * prototypes (vmem(9)). The glue does not use vmem.
 */
#ifndef _SYS_VMEM_H_
#define _SYS_VMEM_H_

#include <sys/types.h>

typedef struct vmem	vmem_t;
typedef unsigned int	vm_flag_t;
typedef uintptr_t	vmem_addr_t;
typedef size_t		vmem_size_t;

#endif
