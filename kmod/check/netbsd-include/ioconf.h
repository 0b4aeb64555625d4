/*
 * Stand-in for the ioconf.h that config(1) generates from dm.ioconf when bsd.kmodule.mk builds
 * the module: the driver's cfdriver and the component tables config_init_component(9) takes.
 */
#ifndef DM_IOCONF_H
#define DM_IOCONF_H

#include <sys/device.h>

extern struct cfdriver dm_cd;
extern struct cfattach dm_ca;
extern struct cfdriver * const cfdriver_ioconf_dm[];
extern const struct cfattachinit cfattach_ioconf_dm[];
extern struct cfdata cfdata_ioconf_dm[];

#endif
