/* Stand-in for NetBSD's kernel-only <uvm/uvm_physseg.h>: <uvm/uvm_extern.h> only includes it. */
#ifndef _UVM_UVM_PHYSSEG_H_
#define _UVM_UVM_PHYSSEG_H_
#endif
