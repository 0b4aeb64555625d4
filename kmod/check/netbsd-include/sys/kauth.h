/*
 * Stand-in for NetBSD's kernel-only <sys/kauth.h>, with kauth(9)'s signatures: the system-scope
 * authorization the control path asks for, and the caller's credentials. The action number is
 * the one of the real header's system-scope action list (DEVMAPPER is its 22nd entry).
 */
#ifndef _SYS_KAUTH_H_
#define _SYS_KAUTH_H_

#include <sys/types.h>

typedef uint32_t	kauth_action_t;

#define	KAUTH_SYSTEM_DEVMAPPER	22

/* Sub-actions of the system scope; dm passes none (0). */
enum kauth_system_req {
	KAUTH_REQ_SYSTEM_CHROOT_CHROOT = 1
};

int		kauth_authorize_system(kauth_cred_t, kauth_action_t, enum kauth_system_req,
		    void *, void *, void *);
kauth_cred_t	kauth_cred_get(void);

#endif
