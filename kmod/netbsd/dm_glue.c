/*
 * dm_glue.c: the dmglue_* functions of kmod/include/dmcore.h for NetBSD.
 *
 * The Rust core calls these for everything it needs from the kernel: kmem(9) memory, lower
 * devices opened as vnodes, child bufs issued to them, completion of the parent buf, parking
 * requests of a suspended device, disk(9) per mapped device, a sleep/wakeup channel, time, a
 * worker thread for queued work, log and panic.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/buf.h>
#include <sys/condvar.h>
#include <sys/conf.h>
#include <sys/container_of.h>
#include <sys/cpu.h>
#include <sys/device.h>
#include <sys/disk.h>
#include <sys/dkio.h>
#include <sys/errno.h>
#include <sys/fcntl.h>
#include <sys/kauth.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/kthread.h>
#include <sys/module.h>
#include <sys/mutex.h>
#include <sys/namei.h>
#include <sys/pool.h>
#include <sys/time.h>
#include <sys/vnode.h>

#include <miscfs/specfs/specdev.h>

#include "dm_glue.h"

struct dm_glue dm_glue;

/* An opened lower device. */
struct dmglue_disk {
	struct vnode	*dd_vp;
	dev_t		dd_dev;
};

/* A child buf issued to a lower device for part of a parent request. */
struct dm_child {
	struct buf		dc_buf;
	struct dmcore_io_slot	*dc_parent;
	struct dmcore_tag	dc_tag;
};

static void dm_worker(void *);

/* ------------------------------------------------------------------ set-up */

int
dm_glue_init(void)
{
	int error;

	memset(&dm_glue, 0, sizeof(dm_glue));
	mutex_init(&dm_glue.dg_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&dm_glue.dg_cv, "dmglue");
	LIST_INIT(&dm_glue.dg_devices);
	TAILQ_INIT(&dm_glue.dg_deferred);
	mutex_init(&dm_glue.dg_wait_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&dm_glue.dg_wait_cv, "dmwait");
	mutex_init(&dm_glue.dg_work_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&dm_glue.dg_work_cv, "dmwork");
	dm_glue.dg_req_cache = pool_cache_init(sizeof(struct dm_req), 0, 0, 0,
	    "dmreq", NULL, IPL_BIO, NULL, NULL, NULL);
	dm_glue.dg_child_cache = pool_cache_init(sizeof(struct dm_child), 0, 0, 0,
	    "dmchild", NULL, IPL_BIO, NULL, NULL, NULL);

	error = dmcore_init();
	if (error != 0)
		goto fail;
	error = kthread_create(PRI_NONE, KTHREAD_MPSAFE | KTHREAD_MUSTJOIN, NULL,
	    dm_worker, NULL, &dm_glue.dg_worker, "dmworker");
	if (error != 0) {
		(void)dmcore_fini();
		goto fail;
	}
	return 0;

fail:
	pool_cache_destroy(dm_glue.dg_child_cache);
	pool_cache_destroy(dm_glue.dg_req_cache);
	cv_destroy(&dm_glue.dg_work_cv);
	mutex_destroy(&dm_glue.dg_work_lock);
	cv_destroy(&dm_glue.dg_wait_cv);
	mutex_destroy(&dm_glue.dg_wait_lock);
	cv_destroy(&dm_glue.dg_cv);
	mutex_destroy(&dm_glue.dg_lock);
	return error;
}

/* Only when no device exists and no control request runs (dm_dev.c's unload). */
void
dm_glue_fini(void)
{
	struct dmcore_work *w;

	mutex_enter(&dm_glue.dg_work_lock);
	dm_glue.dg_work_stop = true;
	cv_broadcast(&dm_glue.dg_work_cv);
	mutex_exit(&dm_glue.dg_work_lock);
	(void)kthread_join(dm_glue.dg_worker);
	while ((w = dm_glue.dg_work) != NULL) {
		dm_glue.dg_work = w->dw_next;
		dmcore_work_drop(w);
	}
	(void)dmcore_fini();

	pool_cache_destroy(dm_glue.dg_child_cache);
	pool_cache_destroy(dm_glue.dg_req_cache);
	cv_destroy(&dm_glue.dg_work_cv);
	mutex_destroy(&dm_glue.dg_work_lock);
	cv_destroy(&dm_glue.dg_wait_cv);
	mutex_destroy(&dm_glue.dg_wait_lock);
	cv_destroy(&dm_glue.dg_cv);
	mutex_destroy(&dm_glue.dg_lock);
}

/* ------------------------------------------------------------------ devices */

struct dm_softc *
dm_sc_get(uint32_t minor)
{
	struct dm_softc *sc;

	mutex_enter(&dm_glue.dg_lock);
	LIST_FOREACH(sc, &dm_glue.dg_devices, sc_link) {
		if (sc->sc_minor == minor) {
			sc->sc_refs++;
			break;
		}
	}
	mutex_exit(&dm_glue.dg_lock);
	return sc;
}

void
dm_sc_rele(struct dm_softc *sc)
{

	mutex_enter(&dm_glue.dg_lock);
	if (--sc->sc_refs == 0)
		cv_broadcast(&dm_glue.dg_cv);
	mutex_exit(&dm_glue.dg_lock);
}

int
dmglue_device_attach(uint32_t minor, const char *name, size_t name_len)
{
	struct dm_softc *sc;
	device_t dev;

	if (name_len >= sizeof(sc->sc_name))
		return EINVAL;
	KERNEL_LOCK(1, NULL);
	dev = config_attach_pseudo(&dm_cfdata);
	KERNEL_UNLOCK_ONE(NULL);
	if (dev == NULL)
		return ENOMEM;
	sc = device_private(dev);
	sc->sc_dev = dev;
	sc->sc_minor = minor;
	memcpy(sc->sc_name, name, name_len);
	sc->sc_name[name_len] = '\0';
	sc->sc_refs = 0;
	mutex_init(&sc->sc_iolock, MUTEX_DEFAULT, IPL_NONE);
	disk_init(&sc->sc_dk, sc->sc_name, &dm_dkdriver);
	disk_attach(&sc->sc_dk);

	mutex_enter(&dm_glue.dg_lock);
	LIST_INSERT_HEAD(&dm_glue.dg_devices, sc, sc_link);
	mutex_exit(&dm_glue.dg_lock);
	return 0;
}

void
dmglue_device_detach(uint32_t minor)
{
	struct dm_softc *sc;

	mutex_enter(&dm_glue.dg_lock);
	LIST_FOREACH(sc, &dm_glue.dg_devices, sc_link) {
		if (sc->sc_minor == minor)
			break;
	}
	if (sc == NULL) {
		mutex_exit(&dm_glue.dg_lock);
		return;
	}
	/* No new reference can be taken; wait for the ioctls and requests that hold one. */
	LIST_REMOVE(sc, sc_link);
	while (sc->sc_refs > 0)
		cv_wait(&dm_glue.dg_cv, &dm_glue.dg_lock);
	mutex_exit(&dm_glue.dg_lock);

	disk_detach(&sc->sc_dk);
	disk_destroy(&sc->sc_dk);
	mutex_destroy(&sc->sc_iolock);
	KERNEL_LOCK(1, NULL);
	(void)config_detach(sc->sc_dev, DETACH_FORCE | DETACH_QUIET);
	KERNEL_UNLOCK_ONE(NULL);
}

void
dmglue_device_resized(uint32_t minor, uint64_t sectors)
{
	struct dm_softc *sc;
	struct disk_geom *dg;

	if ((sc = dm_sc_get(minor)) == NULL)
		return;
	/* The geometry NetBSD's dm reports: 512-byte sectors, 32 sectors x 64 tracks. */
	dg = &sc->sc_dk.dk_geom;
	memset(dg, 0, sizeof(*dg));
	dg->dg_secperunit = sectors;
	dg->dg_secsize = DEV_BSIZE;
	dg->dg_nsectors = 32;
	dg->dg_ntracks = 64;
	dg->dg_ncylinders = sectors / (32 * 64);
	disk_set_info(sc->sc_dev, &sc->sc_dk, "ESDI");
	dm_sc_rele(sc);
}

/* ------------------------------------------------------------------ memory */

static km_flag_t
dm_km_flags(void)
{

	/* Sleep for memory where sleeping is allowed; on the I/O completion path it is not. */
	return (cpu_intr_p() || cpu_softintr_p()) ? KM_NOSLEEP : KM_SLEEP;
}

void *
dmglue_alloc(size_t size)
{

	if (size == 0)
		return NULL;
	return kmem_alloc(size, dm_km_flags());
}

void
dmglue_free(void *ptr, size_t size)
{

	if (ptr != NULL)
		kmem_free(ptr, size);
}

/* ------------------------------------------------------------------ lower devices */

static int
dm_disk_new(struct vnode *vp, struct dmglue_disk **disk, uint64_t *sectors)
{
	struct dmglue_disk *dd;
	uint64_t numsec;
	unsigned secsize;
	int error;

	error = getdisksize(vp, &numsec, &secsize);
	if (error != 0)
		return error;
	if (secsize < DEV_BSIZE || secsize % DEV_BSIZE != 0)
		return EINVAL;
	dd = kmem_zalloc(sizeof(*dd), KM_SLEEP);
	dd->dd_vp = vp;
	dd->dd_dev = vp->v_rdev;
	*disk = dd;
	*sectors = numsec * (secsize / DEV_BSIZE);
	return 0;
}

int
dmglue_disk_open_path(const char *path, struct dmglue_disk **disk, uint64_t *sectors,
    uint32_t *majorp, uint32_t *minorp)
{
	struct pathbuf *pb;
	struct vnode *vp;
	int error;

	pb = pathbuf_create(path);
	if (pb == NULL)
		return ENOMEM;
	error = vn_open(NULL, pb, 0, FREAD | FWRITE, 0, &vp, NULL, NULL);
	pathbuf_destroy(pb);
	if (error != 0)
		return error;
	if (vp->v_type != VBLK) {
		VOP_UNLOCK(vp);
		(void)vn_close(vp, FREAD | FWRITE, kauth_cred_get());
		return ENOTBLK;
	}
	VOP_UNLOCK(vp);
	error = dm_disk_new(vp, disk, sectors);
	if (error != 0) {
		(void)vn_close(vp, FREAD | FWRITE, kauth_cred_get());
		return error;
	}
	*majorp = major(vp->v_rdev);
	*minorp = minor(vp->v_rdev);
	return 0;
}

int
dmglue_disk_open_dev(uint32_t maj, uint32_t min, struct dmglue_disk **disk,
    uint64_t *sectors)
{
	struct vnode *vp;
	int error;

	error = bdevvp(makedev(maj, min), &vp);
	if (error != 0)
		return error;
	error = vn_lock(vp, LK_EXCLUSIVE | LK_RETRY);
	if (error != 0) {
		vrele(vp);
		return error;
	}
	error = VOP_OPEN(vp, FREAD | FWRITE, kauth_cred_get());
	if (error != 0) {
		VOP_UNLOCK(vp);
		vrele(vp);
		return error;
	}
	/* Account the writer as vn_open does, so that vn_close can close both kinds alike. */
	mutex_enter(vp->v_interlock);
	vp->v_writecount++;
	mutex_exit(vp->v_interlock);
	VOP_UNLOCK(vp);
	error = dm_disk_new(vp, disk, sectors);
	if (error != 0)
		(void)vn_close(vp, FREAD | FWRITE, kauth_cred_get());
	return error;
}

void
dmglue_disk_close(struct dmglue_disk *dd)
{

	(void)vn_close(dd->dd_vp, FREAD | FWRITE, kauth_cred_get());
	kmem_free(dd, sizeof(*dd));
}

static int
dm_disk_flush(struct dmglue_disk *dd)
{
	int force = 1;

	return VOP_IOCTL(dd->dd_vp, DIOCCACHESYNC, &force, FREAD | FWRITE, kauth_cred_get());
}

static int
dm_disk_discard(struct dmglue_disk *dd, uint64_t sector, uint64_t bytes)
{
	int error;

	if (bytes == 0)
		return 0;
	vn_lock(dd->dd_vp, LK_EXCLUSIVE | LK_RETRY);
	error = VOP_FDISCARD(dd->dd_vp, (off_t)(sector * DEV_BSIZE), (off_t)bytes);
	VOP_UNLOCK(dd->dd_vp);
	return error;
}

/* ------------------------------------------------------------------ I/O */

static void
dm_child_iodone(struct buf *bp)
{
	struct dm_child *dc = container_of(bp, struct dm_child, dc_buf);
	struct dmcore_io_slot *parent = dc->dc_parent;
	struct dmcore_tag tag = dc->dc_tag;
	int error;

	error = bp->b_error;
	if (error == 0 && bp->b_resid != 0)
		error = EIO;
	buf_destroy(bp);
	pool_cache_put(dm_glue.dg_child_cache, dc);
	dmcore_child_done(parent, tag, error);
}

void
dmglue_submit(struct dmglue_disk *dd, struct dmcore_io_slot *parent, uint64_t sector,
    uint64_t sectors, size_t buf_offset, int op, int fua, struct dmcore_tag tag)
{
	struct dm_req *dr = dm_req_of(parent);
	struct buf *pbp = dr->dr_bp, *bp;
	struct dm_child *dc;
	struct vnode *vp = dd->dd_vp;
	uint64_t bytes = sectors * DEV_BSIZE;

	switch (op) {
	case DMCORE_OP_READ:
	case DMCORE_OP_WRITE:
		break;
	case DMCORE_OP_FLUSH:
		/* Flushes and discards come from the glue's own requests, in thread context. */
		dmcore_child_done(parent, tag, dm_disk_flush(dd));
		return;
	case DMCORE_OP_DISCARD:
		dmcore_child_done(parent, tag, dm_disk_discard(dd, sector, bytes));
		return;
	default:
		dmcore_child_done(parent, tag, EOPNOTSUPP);
		return;
	}
	if (pbp == NULL || buf_offset > (size_t)pbp->b_bcount ||
	    bytes > (uint64_t)pbp->b_bcount - buf_offset) {
		dmcore_child_done(parent, tag, EIO);
		return;
	}
	dc = pool_cache_get(dm_glue.dg_child_cache, PR_NOWAIT);
	if (dc == NULL) {
		dmcore_child_done(parent, tag, ENOMEM);
		return;
	}
	dc->dc_parent = parent;
	dc->dc_tag = tag;
	bp = &dc->dc_buf;
	buf_init(bp);
	bp->b_vp = vp;
	bp->b_objlock = vp->v_interlock;
	bp->b_dev = dd->dd_dev;
	bp->b_data = (char *)pbp->b_data + buf_offset;
	bp->b_bcount = bp->b_bufsize = bp->b_resid = (int)bytes;
	bp->b_blkno = bp->b_rawblkno = (daddr_t)sector;
	bp->b_flags = B_ASYNC | (op == DMCORE_OP_READ ? B_READ : B_WRITE) |
	    (fua ? B_MEDIA_FUA : 0) | (pbp->b_flags & B_PHYS);
	bp->b_cflags = BC_BUSY;
	bp->b_oflags = 0;
	bp->b_iodone = dm_child_iodone;
	bp->b_proc = pbp->b_proc;
	BIO_COPYPRIO(bp, pbp);
	if (op == DMCORE_OP_WRITE) {
		mutex_enter(vp->v_interlock);
		vp->v_numoutput++;
		mutex_exit(vp->v_interlock);
	}
	VOP_STRATEGY(vp, bp);
}

void
dmglue_complete(struct dmcore_io_slot *slot, int error)
{
	struct dm_req *dr = dm_req_of(slot);
	struct dm_softc *sc = dr->dr_sc;
	struct buf *bp = dr->dr_bp;

	if (bp == NULL) {
		/* A glue request: its waiter owns it (and may free it as soon as we let go). */
		mutex_enter(&dm_glue.dg_lock);
		dr->dr_error = error;
		dr->dr_done = true;
		cv_broadcast(&dm_glue.dg_cv);
		mutex_exit(&dm_glue.dg_lock);
		return;
	}
	bp->b_error = error;
	bp->b_resid = error != 0 ? bp->b_bcount : 0;
	pool_cache_put(dm_glue.dg_req_cache, dr);
	mutex_enter(&sc->sc_iolock);
	disk_unbusy(&sc->sc_dk, bp->b_bcount - bp->b_resid, (bp->b_flags & B_READ) != 0);
	mutex_exit(&sc->sc_iolock);
	dm_sc_rele(sc);
	biodone(bp);
}

void *
dmglue_io_data(struct dmcore_io_slot *slot, size_t offset, size_t len)
{
	struct buf *bp = dm_req_of(slot)->dr_bp;

	if (bp == NULL || offset > (size_t)bp->b_bcount || len > (size_t)bp->b_bcount - offset)
		return NULL;
	return (char *)bp->b_data + offset;
}

void
dmglue_defer(uint32_t minor, struct dmcore_io_slot *slot)
{
	struct dm_req *dr = dm_req_of(slot);

	mutex_enter(&dm_glue.dg_lock);
	TAILQ_INSERT_TAIL(&dm_glue.dg_deferred, dr, dr_deferred);
	mutex_exit(&dm_glue.dg_lock);
}

void
dmglue_release_deferred(uint32_t minor)
{
	TAILQ_HEAD(, dm_req) mine = TAILQ_HEAD_INITIALIZER(mine);
	struct dm_req *dr, *next;

	mutex_enter(&dm_glue.dg_lock);
	TAILQ_FOREACH_SAFE(dr, &dm_glue.dg_deferred, dr_deferred, next) {
		if (dr->dr_minor == minor) {
			TAILQ_REMOVE(&dm_glue.dg_deferred, dr, dr_deferred);
			TAILQ_INSERT_TAIL(&mine, dr, dr_deferred);
		}
	}
	mutex_exit(&dm_glue.dg_lock);
	while ((dr = TAILQ_FIRST(&mine)) != NULL) {
		TAILQ_REMOVE(&mine, dr, dr_deferred);
		dmcore_strategy(dr->dr_minor, &dr->dr_slot, dr->dr_sector, dr->dr_bytes,
		    dr->dr_op, dr->dr_fua);
	}
}

int
dm_glue_request(struct dm_softc *sc, int op, uint64_t sector, uint64_t bytes)
{
	struct dm_req dr;
	int error;

	memset(&dr, 0, sizeof(dr));
	dr.dr_sc = sc;
	dr.dr_minor = sc->sc_minor;
	dr.dr_op = op;
	dr.dr_sector = sector;
	dr.dr_bytes = bytes;
	dmcore_strategy(dr.dr_minor, &dr.dr_slot, sector, bytes, op, 0);
	mutex_enter(&dm_glue.dg_lock);
	while (!dr.dr_done)
		cv_wait(&dm_glue.dg_cv, &dm_glue.dg_lock);
	error = dr.dr_error;
	mutex_exit(&dm_glue.dg_lock);
	return error;
}

int
dmglue_disk_io(struct dmglue_disk *dd, int op, uint64_t sector, void *buf, uint64_t bytes,
    int fua)
{
	struct vnode *vp = dd->dd_vp;
	struct buf *bp;
	int error;

	switch (op) {
	case DMCORE_OP_READ:
	case DMCORE_OP_WRITE:
		break;
	case DMCORE_OP_FLUSH:
		return dm_disk_flush(dd);
	case DMCORE_OP_DISCARD:
		return dm_disk_discard(dd, sector, bytes);
	default:
		return EOPNOTSUPP;
	}
	if (bytes == 0)
		return 0;
	if (bytes % DEV_BSIZE != 0 || bytes > INT_MAX)
		return EINVAL;
	bp = getiobuf(vp, true);
	bp->b_dev = dd->dd_dev;
	bp->b_data = buf;
	bp->b_bcount = bp->b_bufsize = bp->b_resid = (int)bytes;
	bp->b_blkno = bp->b_rawblkno = (daddr_t)sector;
	bp->b_flags = (op == DMCORE_OP_READ ? B_READ : B_WRITE) | (fua ? B_MEDIA_FUA : 0);
	bp->b_cflags = BC_BUSY;
	bp->b_proc = NULL;
	if (op == DMCORE_OP_WRITE) {
		mutex_enter(vp->v_interlock);
		vp->v_numoutput++;
		mutex_exit(vp->v_interlock);
	}
	VOP_STRATEGY(vp, bp);
	error = biowait(bp);
	putiobuf(bp);
	return error;
}

int
dmglue_mapped_minor(uint32_t maj, uint32_t min, uint32_t *mapped)
{
	struct dm_softc *sc;

	if (maj != (uint32_t)bdevsw_lookup_major(&dm_bdevsw))
		return 0;
	if ((sc = dm_sc_get(min)) == NULL)
		return 0;
	dm_sc_rele(sc);
	*mapped = min;
	return 1;
}

/* ------------------------------------------------------------------ target modules */

/* Longest target type name, NUL included (DM_MAX_TYPE_NAME). */
#define DM_MAX_TYPE_NAME	16

/*
 * NetBSD's dm does this for a table naming an unknown type: load dm_target_<type>, whose init
 * registers the type (dmcore_target_register). module_autoload() refuses names it should not
 * load (and autoloading when the administrator turned it off).
 */
int
dmglue_autoload_target(const char *name, size_t name_len)
{
	char modname[sizeof("dm_target_") + DM_MAX_TYPE_NAME];
	size_t i;

	if (name_len == 0 || name_len >= DM_MAX_TYPE_NAME)
		return 0;
	for (i = 0; i < name_len; i++) {
		/* A module name: no path separators, nothing unprintable. */
		if (name[i] == '/' || name[i] <= ' ' || name[i] > '~')
			return 0;
	}
	memcpy(modname, "dm_target_", sizeof("dm_target_") - 1);
	memcpy(modname + sizeof("dm_target_") - 1, name, name_len);
	modname[sizeof("dm_target_") - 1 + name_len] = '\0';
	return module_autoload(modname, MODULE_CLASS_MISC) == 0;
}

/* ------------------------------------------------------------------ waiting, time, work */

void
dmglue_wait_enter(void)
{

	mutex_enter(&dm_glue.dg_wait_lock);
}

int
dmglue_wait_sleep(int interruptible)
{

	if (interruptible)
		return cv_wait_sig(&dm_glue.dg_wait_cv, &dm_glue.dg_wait_lock);
	cv_wait(&dm_glue.dg_wait_cv, &dm_glue.dg_wait_lock);
	return 0;
}

void
dmglue_wait_exit(void)
{

	mutex_exit(&dm_glue.dg_wait_lock);
}

void
dmglue_wake_all(void)
{

	mutex_enter(&dm_glue.dg_wait_lock);
	cv_broadcast(&dm_glue.dg_wait_cv);
	mutex_exit(&dm_glue.dg_wait_lock);
}

uint64_t
dmglue_now_ns(void)
{
	struct timespec ts;

	nanouptime(&ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void
dmglue_work_queue(struct dmcore_work *w)
{
	struct dmcore_work **tail;

	w->dw_next = NULL;
	mutex_enter(&dm_glue.dg_work_lock);
	for (tail = &dm_glue.dg_work; *tail != NULL; tail = &(*tail)->dw_next)
		continue;
	*tail = w;
	cv_signal(&dm_glue.dg_work_cv);
	mutex_exit(&dm_glue.dg_work_lock);
}

/* The worker: runs queued work in order, each item not before its time. */
static void
dm_worker(void *arg)
{
	struct dmcore_work **pp, *w;
	uint64_t now, next, ms;
	int ticks;

	mutex_enter(&dm_glue.dg_work_lock);
	while (!dm_glue.dg_work_stop) {
		now = dmglue_now_ns();
		next = UINT64_MAX;
		w = NULL;
		for (pp = &dm_glue.dg_work; *pp != NULL; pp = &(*pp)->dw_next) {
			if ((*pp)->dw_at_ns <= now) {
				w = *pp;
				*pp = w->dw_next;
				break;
			}
			if ((*pp)->dw_at_ns < next)
				next = (*pp)->dw_at_ns;
		}
		if (w != NULL) {
			mutex_exit(&dm_glue.dg_work_lock);
			dmcore_work_run(w);
			mutex_enter(&dm_glue.dg_work_lock);
			continue;
		}
		if (next == UINT64_MAX) {
			cv_wait(&dm_glue.dg_work_cv, &dm_glue.dg_work_lock);
			continue;
		}
		ms = (next - now + 999999) / 1000000;
		ticks = ms > 1000000 ? INT_MAX : mstohz((int)ms);
		(void)cv_timedwait(&dm_glue.dg_work_cv, &dm_glue.dg_work_lock,
		    ticks > 0 ? ticks : 1);
	}
	mutex_exit(&dm_glue.dg_work_lock);
	kthread_exit(0);
}

/* ------------------------------------------------------------------ log, panic */

int dm_glue_debug = 0;

void
dmglue_log(int level, const char *msg, size_t len)
{

	if (level == DMGLUE_LOG_DEBUG && !dm_glue_debug)
		return;
	printf("dm: %.*s\n", (int)len, msg);
}

void
dmglue_panic(const char *msg, size_t len)
{

	panic("%.*s", (int)len, msg);
}
