/* Stand-in for NetBSD/x86's kernel-only <machine/pic.h>: <x86/intr.h> only points to a struct pic. */
#ifndef _X86_PIC_H_
#define _X86_PIC_H_
struct pic;
#endif
