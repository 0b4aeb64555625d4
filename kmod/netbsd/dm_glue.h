/*
 * dm_glue.h: what the two files of the NetBSD glue share.
 *
 * dm_dev.c is the driver NetBSD sees (devsw, autoconf, disk(9), the control ioctl, strategy,
 * the module); dm_glue.c provides the dmglue_* functions the Rust core calls (memory, lower
 * devices, child I/O, waiting, time, the worker, log, panic). Neither parses anything: control
 * requests go to the core as bytes and come back as bytes.
 */
#ifndef DM_GLUE_H
#define DM_GLUE_H

#include <sys/types.h>
#include <sys/param.h>
#include <sys/buf.h>
#include <sys/condvar.h>
#include <sys/device.h>
#include <sys/disk.h>
#include <sys/mutex.h>
#include <sys/queue.h>

#include "dmcore.h"

/* Longest mapped-device name, NUL included (DM_NAME_LEN of the protocol). */
#define DM_GLUE_NAME_LEN	128

/* One mapped device (minor >= 1): the autoconf softc of a `dm` pseudo-device and its disk. */
struct dm_softc {
	device_t		sc_dev;
	struct disk		sc_dk;
	uint32_t		sc_minor;
	char			sc_name[DM_GLUE_NAME_LEN];	/* disk(9) keeps a pointer to it */
	kmutex_t		sc_iolock;		/* disk_busy / disk_unbusy */
	unsigned		sc_refs;		/* dg_lock: requests and ioctls using it */
	LIST_ENTRY(dm_softc)	sc_link;		/* dg_lock: dm_glue.dg_devices */
};

/*
 * One request handed to the core. dr_slot holds the core's state; its address is the handle
 * both sides use, and dm_req_of() recovers the request from it.
 */
struct dm_req {
	struct dmcore_io_slot	dr_slot;
	struct buf		*dr_bp;		/* the parent buf; NULL for the glue's own requests */
	struct dm_softc		*dr_sc;		/* referenced while the request is in flight */
	uint32_t		dr_minor;
	int			dr_op;
	int			dr_fua;
	uint64_t		dr_sector;
	uint64_t		dr_bytes;
	TAILQ_ENTRY(dm_req)	dr_deferred;	/* dg_lock: while the device is suspended */
	/* The glue's own requests (cache flush, discard) are waited for: */
	int			dr_error;
	bool			dr_done;	/* dg_lock */
};

#define dm_req_of(slot)	container_of((slot), struct dm_req, dr_slot)

/* The glue's global state. */
struct dm_glue {
	kmutex_t		dg_lock;	/* devices, references, deferred requests, unload */
	kcondvar_t		dg_cv;		/* references dropped, glue requests done */
	LIST_HEAD(, dm_softc)	dg_devices;
	TAILQ_HEAD(, dm_req)	dg_deferred;
	unsigned		dg_users;	/* control ioctls in progress */
	bool			dg_unloading;

	pool_cache_t		dg_req_cache;	/* struct dm_req */
	pool_cache_t		dg_child_cache;	/* struct dm_child */

	kmutex_t		dg_wait_lock;	/* dmglue_wait_* */
	kcondvar_t		dg_wait_cv;

	kmutex_t		dg_work_lock;	/* the worker's queue */
	kcondvar_t		dg_work_cv;
	struct dmcore_work	*dg_work;
	bool			dg_work_stop;
	struct lwp		*dg_worker;
};

extern struct dm_glue dm_glue;

int	dm_glue_init(void);
void	dm_glue_fini(void);

/* Finds a device by minor and takes a reference (NULL if none); dm_sc_rele drops it. */
struct dm_softc *dm_sc_get(uint32_t);
void	dm_sc_rele(struct dm_softc *);

/* Runs a request without data (flush, discard) through the core and waits for it. */
int	dm_glue_request(struct dm_softc *, int, uint64_t, uint64_t);

/* The autoconf glue dm_dev.c provides for dmglue_device_attach. */
extern struct cfdata dm_cfdata;
extern const struct dkdriver dm_dkdriver;
extern const struct bdevsw dm_bdevsw;

#endif /* DM_GLUE_H */
