/*
 * dm_target_flakey.c: the dm_target_flakey kernel module, NetBSD's way of adding a target to
 * dm(4) (a MODULE_CLASS_MISC module that requires "dm", as NetBSD's own dm_target_* modules):
 * at load it registers the flakey target with the core through the loadable-target ABI
 * (kmod/include/dmtarget.h), at unload it unregisters it, which the core refuses with EBUSY
 * while a table uses flakey (the module then stays loaded). The target itself is dmcore's
 * flakey, in the Rust library libdm_target_flakey.a linked into this module.
 *
 * dm(4) loads the module by itself when a table names "flakey" and no such type is registered
 * (module_autoload("dm_target_flakey"), dmglue_autoload_target in kmod/netbsd/dm_glue.c).
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/errno.h>
#include <sys/module.h>

#include "dmcore.h"
#include "dmtarget.h"

/* The flakey target's ops table (the Rust library: dmcore_abi::export_target!). */
const struct dmtarget_ops *dm_target_flakey_ops(void);

MODULE(MODULE_CLASS_MISC, dm_target_flakey, "dm");

static int
dm_target_flakey_modcmd(modcmd_t cmd, void *arg)
{
	const struct dmtarget_ops *ops = dm_target_flakey_ops();

	switch (cmd) {
	case MODULE_CMD_INIT:
		return dmcore_target_register(ops);
	case MODULE_CMD_FINI:
		/* EBUSY while a table uses flakey: modunload fails and the module stays. */
		return dmcore_target_unregister(ops);
	default:
		return ENOTTY;
	}
}
