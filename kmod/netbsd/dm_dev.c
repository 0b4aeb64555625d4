/*
 * dm_dev.c: the dm(4) driver as NetBSD sees it.
 *
 * - devsw "dm" (block major 169, character major 194 in a kernel built with them; dynamic for the
 *   module), minor 0 = /dev/mapper/control, minors >= 1 = mapped devices;
 * - autoconf: cfdriver dm_cd, cfattach dm_ca, one `dm` pseudo-device per mapped device, each with
 *   a disk(9) named after the device;
 * - the control ioctl NETBSD_DM_IOCTL: the request's bytes are copied in (bounded by the core's
 *   limit), handed to the core with the caller's privilege as kauth decides it, and the reply's
 *   bytes are copied out into a fresh anonymous mapping of the caller, whose address and length
 *   replace the caller's struct plistref, as libprop's ioctl receive expects;
 * - the disk ioctls of mapped devices; strategy, read/write (physio), size, discard;
 * - MODULE(MODULE_CLASS_DRIVER, dm, "dk_subr"), whose unload is refused while a device exists.
 *
 * Nothing here looks inside a request or a reply.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/buf.h>
#include <sys/conf.h>
#include <sys/device.h>
#include <sys/disk.h>
#include <sys/dkio.h>
#include <sys/errno.h>
#include <sys/ioccom.h>
#include <sys/kauth.h>
#include <sys/kmem.h>
#include <sys/lwp.h>
#include <sys/module.h>
#include <sys/mutex.h>
#include <sys/proc.h>

#include <uvm/uvm_extern.h>

#include <prop/proplib.h>

#include <dev/dm/netbsd-dm.h>

#include "dm_glue.h"
#include "ioconf.h"

void	dmattach(int);

static dev_type_open(dmopen);
static dev_type_close(dmclose);
static dev_type_read(dmread);
static dev_type_write(dmwrite);
static dev_type_ioctl(dmioctl);
static dev_type_strategy(dmstrategy);
static dev_type_size(dmsize);
static dev_type_discard(dmdiscard);

const struct bdevsw dm_bdevsw = {
	.d_open = dmopen,
	.d_close = dmclose,
	.d_strategy = dmstrategy,
	.d_ioctl = dmioctl,
	.d_dump = nodump,
	.d_psize = dmsize,
	.d_discard = dmdiscard,
	.d_flag = D_DISK | D_MPSAFE,
};

const struct cdevsw dm_cdevsw = {
	.d_open = dmopen,
	.d_close = dmclose,
	.d_read = dmread,
	.d_write = dmwrite,
	.d_ioctl = dmioctl,
	.d_stop = nostop,
	.d_tty = notty,
	.d_poll = nopoll,
	.d_mmap = nommap,
	.d_kqfilter = nokqfilter,
	.d_discard = nodiscard,
	.d_flag = D_DISK | D_MPSAFE,
};

const struct dkdriver dm_dkdriver = {
	.d_strategy = dmstrategy,
	.d_minphys = minphys,
};

static int	dm_match(device_t, cfdata_t, void *);
static void	dm_attach(device_t, device_t, void *);
static int	dm_detach(device_t, int);

CFATTACH_DECL3_NEW(dm, sizeof(struct dm_softc), dm_match, dm_attach, dm_detach,
    NULL, NULL, NULL, DVF_DETACH_SHUTDOWN);

/* Every mapped device is one more instance of this pseudo-device. */
struct cfdata dm_cfdata = {
	.cf_name = "dm",
	.cf_atname = "dm",
	.cf_unit = 0,
	.cf_fstate = FSTATE_STAR,
};

/* ------------------------------------------------------------------ autoconf */

static int
dm_match(device_t parent, cfdata_t cf, void *aux)
{

	return 1;
}

static void
dm_attach(device_t parent, device_t self, void *aux)
{
	struct dm_softc *sc = device_private(self);

	/* dmglue_device_attach fills in the rest once this returns. */
	sc->sc_dev = self;
	if (!pmf_device_register(self, NULL, NULL))
		aprint_error_dev(self, "couldn't establish power handler\n");
}

static int
dm_detach(device_t self, int flags)
{

	pmf_device_deregister(self);
	return 0;
}

/* ------------------------------------------------------------------ open, close, size */

static int
dmopen(dev_t dev, int flags, int fmt, struct lwp *l)
{

	if (minor(dev) == 0)
		return 0;
	return dmcore_open(minor(dev));
}

static int
dmclose(dev_t dev, int flags, int fmt, struct lwp *l)
{

	if (minor(dev) != 0)
		dmcore_close(minor(dev));
	return 0;
}

static int
dmsize(dev_t dev)
{
	uint64_t sectors;

	if (minor(dev) == 0 || dmcore_size(minor(dev), &sectors) != 0)
		return -ENOENT;
	return sectors > INT_MAX ? INT_MAX : (int)sectors;
}

/* ------------------------------------------------------------------ I/O */

static void
dmstrategy(struct buf *bp)
{
	struct dm_softc *sc;
	struct dm_req *dr;
	int error;

	bp->b_resid = bp->b_bcount;
	if (minor(bp->b_dev) == 0 || (sc = dm_sc_get(minor(bp->b_dev))) == NULL) {
		error = EIO;
		goto fail;
	}
	dr = pool_cache_get(dm_glue.dg_req_cache, PR_NOWAIT);
	if (dr == NULL) {
		dm_sc_rele(sc);
		error = ENOMEM;
		goto fail;
	}
	dr->dr_bp = bp;
	dr->dr_sc = sc;
	dr->dr_minor = sc->sc_minor;
	dr->dr_op = (bp->b_flags & B_READ) ? DMCORE_OP_READ : DMCORE_OP_WRITE;
	dr->dr_fua = (bp->b_flags & B_MEDIA_FUA) != 0;
	dr->dr_sector = (uint64_t)bp->b_blkno;
	dr->dr_bytes = (uint64_t)bp->b_bcount;
	dr->dr_error = 0;
	dr->dr_done = false;
	mutex_enter(&sc->sc_iolock);
	disk_busy(&sc->sc_dk);
	mutex_exit(&sc->sc_iolock);
	/* The core answers through dmglue_complete, which ends with biodone. */
	dmcore_strategy(dr->dr_minor, &dr->dr_slot, dr->dr_sector, dr->dr_bytes,
	    dr->dr_op, dr->dr_fua);
	return;

fail:
	bp->b_error = error;
	biodone(bp);
}

static int
dmread(dev_t dev, struct uio *uio, int flag)
{

	return physio(dmstrategy, NULL, dev, B_READ, minphys, uio);
}

static int
dmwrite(dev_t dev, struct uio *uio, int flag)
{

	return physio(dmstrategy, NULL, dev, B_WRITE, minphys, uio);
}

static int
dmdiscard(dev_t dev, off_t pos, off_t len)
{
	struct dm_softc *sc;
	int error;

	if (pos < 0 || len < 0 || pos % DEV_BSIZE != 0 || len % DEV_BSIZE != 0)
		return EINVAL;
	if ((sc = dm_sc_get(minor(dev))) == NULL)
		return ENXIO;
	error = dm_glue_request(sc, DMCORE_OP_DISCARD, (uint64_t)pos / DEV_BSIZE,
	    (uint64_t)len);
	dm_sc_rele(sc);
	return error;
}

/* ------------------------------------------------------------------ ioctl */

/* The disk ioctls of a mapped device; ENOTTY for everything else (and on the control node). */
static int
dm_disk_ioctl(dev_t dev, u_long cmd, void *data)
{
	struct dm_softc *sc;
	struct dkwedge_info *dkw;
	uint64_t sectors = 0;
	int error = 0;

	if (minor(dev) == 0)
		return ENOTTY;
	switch (cmd) {
	case DIOCGWEDGEINFO:
	case DIOCGDISKINFO:
	case DIOCCACHESYNC:
	case DIOCGSECTORSIZE:
	case DIOCGMEDIASIZE:
		break;
	default:
		return ENOTTY;
	}
	if ((sc = dm_sc_get(minor(dev))) == NULL)
		return ENODEV;
	(void)dmcore_size(sc->sc_minor, &sectors);
	switch (cmd) {
	case DIOCGWEDGEINFO:
		dkw = data;
		memset(dkw, 0, sizeof(*dkw));
		strlcpy(dkw->dkw_devname, sc->sc_name, sizeof(dkw->dkw_devname));
		strlcpy((char *)dkw->dkw_wname, sc->sc_name, sizeof(dkw->dkw_wname));
		strlcpy(dkw->dkw_parent, sc->sc_name, sizeof(dkw->dkw_parent));
		dkw->dkw_offset = 0;
		dkw->dkw_size = sectors;
		strlcpy(dkw->dkw_ptype, DKW_PTYPE_FFS, sizeof(dkw->dkw_ptype));
		break;
	case DIOCGDISKINFO:
		if (sc->sc_dk.dk_info == NULL)
			error = ENOTSUP;
		else
			error = prop_dictionary_copyout_ioctl(data, cmd, sc->sc_dk.dk_info);
		break;
	case DIOCCACHESYNC:
		/* As NetBSD's dm: the lower devices' answers are not reported. */
		(void)dm_glue_request(sc, DMCORE_OP_FLUSH, 0, 0);
		break;
	case DIOCGSECTORSIZE:
		*(u_int *)data = DEV_BSIZE;
		break;
	case DIOCGMEDIASIZE:
		*(off_t *)data = (off_t)(sectors * DEV_BSIZE);
		break;
	}
	dm_sc_rele(sc);
	return error;
}

/* Maps the reply into the calling process and points its struct plistref at it. */
static int
dm_copyout_reply(struct plistref *pref, const uint8_t *reply, size_t len, struct lwp *l)
{
	struct proc *p = l->l_proc;
	vsize_t size = round_page(len);
	void *uaddr = NULL;
	int error;

	error = uvm_mmap_anon(p, &uaddr, size);
	if (error != 0)
		return error;
	error = copyout(reply, uaddr, len);
	if (error != 0) {
		uvm_deallocate(&p->p_vmspace->vm_map, (vaddr_t)uaddr, size);
		return error;
	}
	pref->pref_plist = uaddr;
	pref->pref_len = len;
	return 0;
}

/* NETBSD_DM_IOCTL: request bytes in, reply bytes out; a command's failure is in the reply. */
static int
dm_control_ioctl(struct plistref *pref, struct lwp *l)
{
	size_t len = pref->pref_len, reply_len = 0;
	uint8_t *req = NULL, *reply = NULL;
	int privileged, command_error = 0, error;

	if (len >= dmcore_max_request_len())
		return E2BIG;
	if (len > 0) {
		req = kmem_alloc(len, KM_SLEEP);
		error = copyin(pref->pref_plist, req, len);
		if (error != 0) {
			kmem_free(req, len);
			return error;
		}
	}
	privileged = kauth_authorize_system(kauth_cred_get(), KAUTH_SYSTEM_DEVMAPPER, 0,
	    NULL, NULL, NULL) == 0;
	error = dmcore_control(req, len, privileged, &reply, &reply_len, &command_error);
	if (req != NULL)
		kmem_free(req, len);
	if (error != 0)
		return error;
	error = dm_copyout_reply(pref, reply, reply_len, l);
	dmcore_reply_free(reply, reply_len);
	return error;
}

static int
dmioctl(dev_t dev, u_long cmd, void *data, int flag, struct lwp *l)
{
	int error;

	error = dm_disk_ioctl(dev, cmd, data);
	if (error != ENOTTY)
		return error;
	if (cmd != NETBSD_DM_IOCTL)
		return ENOTTY;

	/* Count the request in, so that unload cannot slip between it and a create. */
	mutex_enter(&dm_glue.dg_lock);
	if (dm_glue.dg_unloading) {
		mutex_exit(&dm_glue.dg_lock);
		return ENXIO;
	}
	dm_glue.dg_users++;
	mutex_exit(&dm_glue.dg_lock);

	error = dm_control_ioctl(data, l);

	mutex_enter(&dm_glue.dg_lock);
	dm_glue.dg_users--;
	mutex_exit(&dm_glue.dg_lock);
	return error;
}

/* ------------------------------------------------------------------ attach, module */

/* `pseudo-device dm` in a kernel configuration. */
void
dmattach(int n)
{
	int error;

	error = dm_glue_init();
	if (error == 0)
		error = config_cfattach_attach(dm_cd.cd_name, &dm_ca);
	if (error != 0)
		aprint_error("dm: cannot initialise (error %d)\n", error);
}

/* Refuses unload while a device exists or a control request runs; else bars new ones. */
static int
dm_unload_begin(void)
{
	int error = 0;

	mutex_enter(&dm_glue.dg_lock);
	if (dm_glue.dg_users != 0 || !dmcore_is_idle())
		error = EBUSY;
	else
		dm_glue.dg_unloading = true;
	mutex_exit(&dm_glue.dg_lock);
	return error;
}

MODULE(MODULE_CLASS_DRIVER, dm, "dk_subr");

static int
dm_modcmd(modcmd_t cmd, void *arg)
{
#ifdef _MODULE
	devmajor_t bmajor = NODEVMAJOR, cmajor = NODEVMAJOR;
	int error;

	switch (cmd) {
	case MODULE_CMD_INIT:
		error = dm_glue_init();
		if (error != 0)
			return error;
		error = config_init_component(cfdriver_ioconf_dm, cfattach_ioconf_dm,
		    cfdata_ioconf_dm);
		if (error != 0) {
			dm_glue_fini();
			return error;
		}
		error = devsw_attach(dm_cd.cd_name, &dm_bdevsw, &bmajor, &dm_cdevsw, &cmajor);
		if (error != 0) {
			(void)config_fini_component(cfdriver_ioconf_dm, cfattach_ioconf_dm,
			    cfdata_ioconf_dm);
			dm_glue_fini();
		}
		return error;
	case MODULE_CMD_FINI:
		error = dm_unload_begin();
		if (error != 0)
			return error;
		devsw_detach(&dm_bdevsw, &dm_cdevsw);
		error = config_fini_component(cfdriver_ioconf_dm, cfattach_ioconf_dm,
		    cfdata_ioconf_dm);
		if (error != 0) {
			/* Still attached somewhere: stay loaded and usable. */
			(void)devsw_attach(dm_cd.cd_name, &dm_bdevsw, &bmajor, &dm_cdevsw,
			    &cmajor);
			mutex_enter(&dm_glue.dg_lock);
			dm_glue.dg_unloading = false;
			mutex_exit(&dm_glue.dg_lock);
			return error;
		}
		dm_glue_fini();
		return 0;
	default:
		return ENOTTY;
	}
#else
	/* Built in: dmattach did the work at boot. */
	return cmd == MODULE_CMD_INIT ? 0 : ENOTTY;
#endif
}
