/*
 * ioconf.c: what config(1) would generate from kmod/netbsd/dm.ioconf for the module build: the
 * driver's cfdriver and the component tables (here for the host test of the glue).
 */
#include "netbsd_kernel.h"
#include "ioconf.h"

struct cfdriver dm_cd = { "dm" };

struct cfdriver * const cfdriver_ioconf_dm[] = { &dm_cd, NULL };

static struct cfattach * const dm_cfattachinit[] = { &dm_ca, NULL };

const struct cfattachinit cfattach_ioconf_dm[] = {
	{ "dm", dm_cfattachinit },
	{ NULL, NULL },
};

struct cfdata cfdata_ioconf_dm[] = {
	{ NULL, NULL, 0, 0 },
};
