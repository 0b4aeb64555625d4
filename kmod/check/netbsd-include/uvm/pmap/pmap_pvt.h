/* Stand-in for NetBSD's kernel-only <uvm/pmap/pmap_pvt.h>: <x86/pmap.h> only includes it. */
#ifndef _UVM_PMAP_PVT_H_
#define _UVM_PMAP_PVT_H_
#endif
