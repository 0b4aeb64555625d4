/*
 * standin.c: the stand-in NetBSD kernel of netbsd_kernel.h, on host.h.
 *
 * Memory is counted (kmem(9) checks the size given back), lower block devices are memory
 * images reachable by path and by device number, a buf's I/O is done at once by memcpy and
 * completed with biodone(9) either in the caller (synchronous mode) or from a completion thread
 * that plays the soft interrupt (asynchronous mode), autoconf(9) keeps one softc per pseudo-device
 * instance, and devsw(9) records what the driver attached. sh_* functions are for the tests.
 */

#include "netbsd_kernel.h"
#include "host.h"
#include "standin.h"

int hz = 100;

/* ------------------------------------------------------------------ console, panic, copy */

void
sh_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (sh_verbose)
		h_vprint(fmt, ap);
	va_end(ap);
}

int sh_verbose;

int
snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = h_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	h_print("panic: ");
	va_start(ap, fmt);
	h_vprint(fmt, ap);
	va_end(ap);
	h_print("\n");
	h_abort();
}

void
aprint_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	h_vprint(fmt, ap);
	va_end(ap);
}

void
aprint_error_dev(device_t dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	h_vprint(fmt, ap);
	va_end(ap);
}

int
copyin(const void *uaddr, void *kaddr, size_t len)
{
	if (uaddr == SH_BAD_ADDRESS)
		return EFAULT;
	memcpy(kaddr, uaddr, len);
	return 0;
}

int
copyout(const void *kaddr, void *uaddr, size_t len)
{
	if (uaddr == SH_BAD_ADDRESS)
		return EFAULT;
	memcpy(uaddr, kaddr, len);
	return 0;
}

size_t
strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

static __thread int in_softint;

bool cpu_intr_p(void) { return false; }
bool cpu_softintr_p(void) { return in_softint != 0; }

void
nanouptime(struct timespec *ts)
{
	uint64_t ns = h_now_ns();

	ts->tv_sec = (int64_t)(ns / 1000000000ULL);
	ts->tv_nsec = (long)(ns % 1000000000ULL);
}

/* ------------------------------------------------------------------ mutex, condvar */

void mutex_init(kmutex_t *m, int type, int ipl) { m->sh_m = h_mutex_new(); }
void mutex_destroy(kmutex_t *m) { h_mutex_free(m->sh_m); m->sh_m = NULL; }
void mutex_enter(kmutex_t *m) { h_mutex_lock(m->sh_m); }
void mutex_exit(kmutex_t *m) { h_mutex_unlock(m->sh_m); }
void cv_init(kcondvar_t *c, const char *wmesg) { c->sh_c = h_cond_new(); }
void cv_destroy(kcondvar_t *c) { h_cond_free(c->sh_c); c->sh_c = NULL; }
void cv_wait(kcondvar_t *c, kmutex_t *m) { h_cond_wait(c->sh_c, m->sh_m); }
int cv_wait_sig(kcondvar_t *c, kmutex_t *m) { h_cond_wait(c->sh_c, m->sh_m); return 0; }
void cv_signal(kcondvar_t *c) { h_cond_signal(c->sh_c); }
void cv_broadcast(kcondvar_t *c) { h_cond_broadcast(c->sh_c); }

int
cv_timedwait(kcondvar_t *c, kmutex_t *m, int ticks)
{
	uint64_t ns = (uint64_t)ticks * (1000000000ULL / (uint64_t)hz);

	return h_cond_timedwait(c->sh_c, m->sh_m, ns) ? 35 /* EWOULDBLOCK */ : 0;
}

/* ------------------------------------------------------------------ kmem, pool_cache */

struct sh_counters sh_count;
static kmutex_t count_lock;	/* set up by sh_init */

static void
count_add(int64_t *what, int64_t n)
{
	mutex_enter(&count_lock);
	*what += n;
	mutex_exit(&count_lock);
}

/* Each block carries its size in front, to check that kmem_free is given the same size. */
void *
kmem_alloc(size_t size, km_flag_t flags)
{
	uint64_t *p;

	if (size == 0)
		panic("kmem_alloc: size 0");
	if (flags != KM_SLEEP && flags != KM_NOSLEEP)
		panic("kmem_alloc: flags %u", flags);
	if (flags == KM_SLEEP && (cpu_intr_p() || cpu_softintr_p()))
		panic("kmem_alloc: KM_SLEEP in interrupt context");
	p = h_malloc(size + 16);
	p[0] = size;
	count_add(&sh_count.kmem_bytes, (int64_t)size);
	count_add(&sh_count.kmem_blocks, 1);
	return p + 2;
}

void *
kmem_zalloc(size_t size, km_flag_t flags)
{
	void *p = kmem_alloc(size, flags);

	memset(p, 0, size);
	return p;
}

void
kmem_free(void *ptr, size_t size)
{
	uint64_t *p = (uint64_t *)ptr - 2;

	if (p[0] != size)
		panic("kmem_free: %zu bytes given back for a block of %llu", size,
		    (unsigned long long)p[0]);
	count_add(&sh_count.kmem_bytes, -(int64_t)size);
	count_add(&sh_count.kmem_blocks, -1);
	h_free(p);
}

struct pool_cache {
	size_t	size;
	int64_t	out;
};

pool_cache_t
pool_cache_init(size_t size, u_int align, u_int align_offset, u_int flags, const char *wchan,
    struct pool_allocator *palloc, int ipl, int (*ctor)(void *, void *, int),
    void (*dtor)(void *, void *), void *arg)
{
	pool_cache_t pc = h_calloc(sizeof(*pc));

	pc->size = size;
	return pc;
}

void
pool_cache_destroy(pool_cache_t pc)
{
	if (pc->out != 0)
		panic("pool_cache_destroy: %lld items still out", (long long)pc->out);
	h_free(pc);
}

void *
pool_cache_get(pool_cache_t pc, int flags)
{
	if (flags != PR_NOWAIT && (cpu_intr_p() || cpu_softintr_p()))
		panic("pool_cache_get: waiting in interrupt context");
	count_add(&pc->out, 1);
	return h_calloc(pc->size);
}

void
pool_cache_put(pool_cache_t pc, void *p)
{
	count_add(&pc->out, -1);
	h_free(p);
}

/* ------------------------------------------------------------------ lwp, kthread, kauth, uvm */

struct kauth_cred {
	int	uid;
};
static struct kauth_cred root_cred = { 0 }, user_cred = { 1000 };
static struct vmspace vmspace0;
static struct proc proc0 = { &vmspace0 };
struct lwp sh_lwp0 = { &proc0, &root_cred };
static kauth_cred_t current_cred = &root_cred;

void sh_set_root(bool root) { current_cred = root ? &root_cred : &user_cred; }
kauth_cred_t kauth_cred_get(void) { return current_cred; }

int
kauth_authorize_system(kauth_cred_t cred, kauth_action_t action, enum kauth_system_req req,
    void *a1, void *a2, void *a3)
{
	count_add(&sh_count.kauth_checks, 1);
	if (action != KAUTH_SYSTEM_DEVMAPPER || (int)req != 0)
		return EPERM;
	return cred->uid == 0 ? 0 : EPERM;
}

struct sh_kthread {
	struct lwp	l;
	void		*thread;
};

int
kthread_create(pri_t pri, int flags, struct cpu_info *ci, void (*fn)(void *), void *arg,
    struct lwp **lp, const char *fmt, ...)
{
	struct sh_kthread *t = h_calloc(sizeof(*t));

	if (!(flags & KTHREAD_MUSTJOIN) || lp == NULL)
		panic("kthread_create: the stand-in joins every thread");
	t->l.l_proc = &proc0;
	t->thread = h_thread_start(fn, arg);
	if (t->thread == NULL) {
		h_free(t);
		return 12;
	}
	*lp = &t->l;
	count_add(&sh_count.threads, 1);
	return 0;
}

void kthread_exit(int ecode) { h_thread_exit(); }

int
kthread_join(struct lwp *l)
{
	struct sh_kthread *t = container_of(l, struct sh_kthread, l);

	h_thread_join(t->thread);
	h_free(t);
	count_add(&sh_count.threads, -1);
	return 0;
}

int
uvm_mmap_anon(struct proc *p, void **addr, size_t size)
{
	if (size == 0 || size % PAGE_SIZE != 0)
		panic("uvm_mmap_anon: size %zu", size);
	*addr = h_calloc(size);
	count_add(&sh_count.mappings, 1);
	return 0;
}

void
uvm_deallocate(struct vm_map *map, vaddr_t va, vsize_t size)
{
	sh_munmap((void *)va);
}

void
sh_munmap(void *addr)
{
	count_add(&sh_count.mappings, -1);
	h_free(addr);
}

/* ------------------------------------------------------------------ lower disks */

struct sh_disk {
	char		path[64];
	dev_t		dev;
	uint8_t		*image;
	uint64_t	sectors;
	kmutex_t	interlock;
	struct vnode	vnode;
	int		opens;
	int		refs;
	int		locked;
	int64_t		flushes;
	int64_t		discards;
	int64_t		ios;
};

#define MAX_DISKS 8
static struct sh_disk disks[MAX_DISKS];
static int ndisks;
static bool async_mode;

struct sh_disk *
sh_add_disk(const char *path, dev_t dev, uint64_t sectors)
{
	struct sh_disk *d;

	if (ndisks == MAX_DISKS)
		panic("sh_add_disk: too many");
	d = &disks[ndisks++];
	strlcpy(d->path, path, sizeof(d->path));
	d->dev = dev;
	d->sectors = sectors;
	d->image = h_calloc(sectors * DEV_BSIZE);
	mutex_init(&d->interlock, MUTEX_DEFAULT, IPL_NONE);
	d->vnode.v_type = VBLK;
	d->vnode.v_rdev = dev;
	d->vnode.v_interlock = &d->interlock;
	d->vnode.sh_disk = d;
	return d;
}

uint8_t *sh_disk_image(struct sh_disk *d) { return d->image; }
int sh_disk_opens(struct sh_disk *d) { return d->opens; }
int64_t sh_disk_flushes(struct sh_disk *d) { return d->flushes; }
int sh_disk_numoutput(struct sh_disk *d) { return d->vnode.v_numoutput; }

struct pathbuf {
	char	path[256];
};

struct pathbuf *
pathbuf_create(const char *path)
{
	struct pathbuf *pb = h_calloc(sizeof(*pb));

	strlcpy(pb->path, path, sizeof(pb->path));
	return pb;
}

void pathbuf_destroy(struct pathbuf *pb) { h_free(pb); }

static struct sh_disk *
disk_by_path(const char *path)
{
	for (int i = 0; i < ndisks; i++)
		if (strlen(path) == strlen(disks[i].path) &&
		    memcmp(path, disks[i].path, strlen(path)) == 0)
			return &disks[i];
	return NULL;
}

int
vn_open(struct vnode *at, struct pathbuf *pb, int nmode, int fmode, int cmode,
    struct vnode **vpp, bool *domove, int *fd)
{
	struct sh_disk *d = disk_by_path(pb->path);

	if (d == NULL)
		return ENOENT;
	d->opens++;
	d->refs++;
	if (fmode & FWRITE)
		d->vnode.v_writecount++;
	d->locked = 1;		/* vn_open returns the vnode locked */
	*vpp = &d->vnode;
	return 0;
}

int
vn_close(struct vnode *vp, int flags, kauth_cred_t cred)
{
	struct sh_disk *d = vp->sh_disk;

	if (d->locked)
		panic("vn_close: vnode locked");
	if (d->opens <= 0 || d->refs <= 0)
		panic("vn_close: not open");
	if ((flags & FWRITE) && --vp->v_writecount < 0)
		panic("vn_close: writecount");
	d->opens--;
	d->refs--;
	return 0;
}

int
vn_lock(struct vnode *vp, int flags)
{
	if (vp->sh_disk->locked)
		panic("vn_lock: locked twice");
	vp->sh_disk->locked = 1;
	return 0;
}

int
VOP_UNLOCK(struct vnode *vp)
{
	if (!vp->sh_disk->locked)
		panic("VOP_UNLOCK: not locked");
	vp->sh_disk->locked = 0;
	return 0;
}

int
bdevvp(dev_t dev, struct vnode **vpp)
{
	for (int i = 0; i < ndisks; i++) {
		if (disks[i].dev == dev) {
			disks[i].refs++;
			*vpp = &disks[i].vnode;
			return 0;
		}
	}
	return ENXIO;
}

void vrele(struct vnode *vp) { vp->sh_disk->refs--; }

int
VOP_OPEN(struct vnode *vp, int mode, kauth_cred_t cred)
{
	if (!vp->sh_disk->locked)
		panic("VOP_OPEN: vnode not locked");
	vp->sh_disk->opens++;
	return 0;
}

int
getdisksize(struct vnode *vp, uint64_t *numsec, unsigned int *secsize)
{
	*numsec = vp->sh_disk->sectors;
	*secsize = DEV_BSIZE;
	return 0;
}

int
VOP_IOCTL(struct vnode *vp, u_long cmd, void *data, int flag, kauth_cred_t cred)
{
	if (cmd != DIOCCACHESYNC)
		return ENOTTY;
	count_add(&vp->sh_disk->flushes, 1);
	return 0;
}

int
VOP_FDISCARD(struct vnode *vp, off_t pos, off_t len)
{
	struct sh_disk *d = vp->sh_disk;

	if (!d->locked)
		panic("VOP_FDISCARD: vnode not locked");
	if (pos < 0 || len < 0 || (uint64_t)(pos + len) > d->sectors * DEV_BSIZE)
		return EINVAL;
	memset(d->image + pos, 0, (size_t)len);
	count_add(&d->discards, 1);
	return 0;
}

/* Completion thread: plays the soft interrupt that runs biodone callbacks. */
static kmutex_t cq_lock;
static kcondvar_t cq_cv;
static buf_t *cq[256];
static int cq_head, cq_tail;
static bool cq_stop;
static void *cq_thread;

static void
cq_run(void *arg)
{
	buf_t *bp;

	in_softint = 1;
	mutex_enter(&cq_lock);
	for (;;) {
		while (cq_head == cq_tail && !cq_stop)
			cv_wait(&cq_cv, &cq_lock);
		if (cq_head == cq_tail)
			break;
		bp = cq[cq_head++ % 256];
		mutex_exit(&cq_lock);
		biodone(bp);
		mutex_enter(&cq_lock);
		cv_broadcast(&cq_cv);
	}
	mutex_exit(&cq_lock);
}

void
sh_set_async(bool on)
{
	if (on == async_mode)
		return;
	if (on) {
		cq_stop = false;
		cq_thread = h_thread_start(cq_run, NULL);
	} else {
		mutex_enter(&cq_lock);
		cq_stop = true;
		cv_broadcast(&cq_cv);
		mutex_exit(&cq_lock);
		h_thread_join(cq_thread);
	}
	async_mode = on;
}

int
VOP_STRATEGY(struct vnode *vp, buf_t *bp)
{
	struct sh_disk *d = vp->sh_disk;
	uint64_t at = (uint64_t)bp->b_blkno * DEV_BSIZE, len = (uint64_t)bp->b_bcount;

	if (vp->v_type != VBLK || d->opens <= 0)
		panic("VOP_STRATEGY: device not open");
	if (!(bp->b_cflags & BC_BUSY))
		panic("VOP_STRATEGY: buf not busy");
	count_add(&d->ios, 1);
	count_add(&sh_count.lower_ios, 1);
	if (bp->b_blkno < 0 || at + len > d->sectors * DEV_BSIZE) {
		bp->b_error = EINVAL;
		bp->b_resid = bp->b_bcount;
	} else {
		if (bp->b_flags & B_READ)
			memcpy(bp->b_data, d->image + at, (size_t)len);
		else
			memcpy(d->image + at, bp->b_data, (size_t)len);
		bp->b_error = 0;
		bp->b_resid = 0;
	}
	if (!async_mode) {
		biodone(bp);
		return 0;
	}
	mutex_enter(&cq_lock);
	while (cq_tail - cq_head == 256)
		cv_wait(&cq_cv, &cq_lock);
	cq[cq_tail++ % 256] = bp;
	cv_broadcast(&cq_cv);
	mutex_exit(&cq_lock);
	return 0;
}

/* ------------------------------------------------------------------ buf */

void
buf_init(buf_t *bp)
{
	memset(bp, 0, sizeof(*bp));
	mutex_init(&bp->sh_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&bp->sh_done, "biowait");
	count_add(&sh_count.bufs, 1);
}

void
buf_destroy(buf_t *bp)
{
	mutex_destroy(&bp->sh_lock);
	cv_destroy(&bp->sh_done);
	count_add(&sh_count.bufs, -1);
}

buf_t *
getiobuf(struct vnode *vp, bool waitok)
{
	buf_t *bp = h_calloc(sizeof(*bp));

	buf_init(bp);
	bp->b_vp = vp;
	bp->b_objlock = vp != NULL ? vp->v_interlock : NULL;
	return bp;
}

void
putiobuf(buf_t *bp)
{
	buf_destroy(bp);
	h_free(bp);
}

void
biodone(buf_t *bp)
{
	void (*done)(buf_t *);

	/* A finished write no longer counts as output in progress on its vnode (vwakeup). */
	if (!(bp->b_flags & B_READ) && bp->b_vp != NULL) {
		mutex_enter(bp->b_vp->v_interlock);
		if (--bp->b_vp->v_numoutput < 0)
			panic("biodone: v_numoutput < 0");
		mutex_exit(bp->b_vp->v_interlock);
	}
	mutex_enter(&bp->sh_lock);
	if (bp->b_oflags & BO_DONE)
		panic("biodone: buf completed twice");
	bp->b_oflags |= BO_DONE;
	done = bp->b_iodone;
	if (done != NULL) {
		bp->b_iodone = NULL;
		mutex_exit(&bp->sh_lock);
		done(bp);
		return;
	}
	bp->sh_finished = true;
	cv_broadcast(&bp->sh_done);
	mutex_exit(&bp->sh_lock);
}

int
biowait(buf_t *bp)
{
	mutex_enter(&bp->sh_lock);
	while (!bp->sh_finished)
		cv_wait(&bp->sh_done, &bp->sh_lock);
	mutex_exit(&bp->sh_lock);
	return bp->b_error;
}

void
minphys(buf_t *bp)
{
	if (bp->b_bcount > MAXPHYS)
		bp->b_bcount = MAXPHYS;
}

int
physio(void (*strategy)(buf_t *), buf_t *obp, dev_t dev, int flags,
    void (*minphysfn)(buf_t *), struct uio *uio)
{
	size_t done = 0;
	int error = 0;

	if (uio->uio_iovcnt != 1)
		panic("physio: the stand-in takes one iovec");
	while (done < uio->uio_iov->iov_len) {
		buf_t *bp = getiobuf(NULL, true);

		bp->b_flags = (u_int)flags | B_PHYS;
		bp->b_cflags = BC_BUSY;
		bp->b_dev = dev;
		bp->b_data = (char *)uio->uio_iov->iov_base + done;
		bp->b_bcount = (int)(uio->uio_iov->iov_len - done);
		bp->b_blkno = (uio->uio_offset + (off_t)done) / DEV_BSIZE;
		bp->b_proc = &proc0;
		minphysfn(bp);
		strategy(bp);
		error = biowait(bp);
		done += (size_t)(bp->b_bcount - bp->b_resid);
		putiobuf(bp);
		if (error != 0)
			break;
	}
	uio->uio_resid = uio->uio_iov->iov_len - done;
	return error;
}

/* ------------------------------------------------------------------ disk(9), proplib */

struct prop_dictionary {
	char	text[192];
};

static struct disk *attached_disks[64];

void
disk_init(struct disk *dk, const char *name, const struct dkdriver *driver)
{
	memset(dk, 0, sizeof(*dk));
	dk->dk_name = name;
	dk->sh_driver = driver;
}

void
disk_attach(struct disk *dk)
{
	for (int i = 0; i < 64; i++) {
		if (attached_disks[i] == NULL) {
			attached_disks[i] = dk;
			dk->sh_attached = 1;
			return;
		}
	}
	panic("disk_attach: full");
}

void
disk_detach(struct disk *dk)
{
	if (dk->sh_busy != 0)
		panic("disk_detach: %s busy", dk->dk_name);
	for (int i = 0; i < 64; i++)
		if (attached_disks[i] == dk)
			attached_disks[i] = NULL;
	dk->sh_attached = 0;
}

void
disk_destroy(struct disk *dk)
{
	if (dk->sh_attached)
		panic("disk_destroy: still attached");
	if (dk->dk_info != NULL)
		h_free(dk->dk_info);
	dk->dk_info = NULL;
}

void disk_busy(struct disk *dk) { dk->sh_busy++; }

void
disk_unbusy(struct disk *dk, long bcount, int read)
{
	if (--dk->sh_busy < 0)
		panic("disk_unbusy: not busy");
	dk->sh_bytes += (uint64_t)bcount;
}

static void
put_decimal(char *s, size_t size, uint64_t v)
{
	char tmp[24];
	int n = 0;
	size_t len = strlen(s);

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0 && len + 1 < size)
		s[len++] = tmp[--n];
	s[len] = '\0';
}

static void
put_text(char *s, size_t size, const char *t)
{
	size_t len = strlen(s);

	strlcpy(s + len, t, size - len);
}

void
disk_set_info(device_t dev, struct disk *dk, const char *type)
{
	struct prop_dictionary *d = h_calloc(sizeof(*d));

	put_text(d->text, sizeof(d->text), "type=");
	put_text(d->text, sizeof(d->text), type);
	put_text(d->text, sizeof(d->text), " sector-size=");
	put_decimal(d->text, sizeof(d->text), dk->dk_geom.dg_secsize);
	put_text(d->text, sizeof(d->text), " sectors-per-unit=");
	put_decimal(d->text, sizeof(d->text), (uint64_t)dk->dk_geom.dg_secperunit);
	put_text(d->text, sizeof(d->text), " tracks-per-cylinder=");
	put_decimal(d->text, sizeof(d->text), dk->dk_geom.dg_ntracks);
	if (dk->dk_info != NULL)
		h_free(dk->dk_info);
	dk->dk_info = d;
}

int
prop_dictionary_copyout_ioctl(struct plistref *pref, u_long cmd, prop_dictionary_t dict)
{
	size_t len = strlen(dict->text) + 1;
	void *uaddr;
	int error;

	if (!(cmd & IOC_OUT))
		return EFAULT;
	error = uvm_mmap_anon(&proc0, &uaddr, round_page(len));
	if (error != 0)
		return error;
	memcpy(uaddr, dict->text, len);
	pref->pref_plist = uaddr;
	pref->pref_len = len;
	return 0;
}

struct disk *
sh_find_disk(const char *name)
{
	for (int i = 0; i < 64; i++)
		if (attached_disks[i] != NULL && strlen(attached_disks[i]->dk_name) == strlen(name) &&
		    memcmp(attached_disks[i]->dk_name, name, strlen(name)) == 0)
			return attached_disks[i];
	return NULL;
}

/* ------------------------------------------------------------------ autoconf */

struct device {
	struct cfattach	*ca;
	int		unit;
	void		*priv;
};

#define MAX_ATTACH 8
static struct {
	const char	*name;
	struct cfattach	*ca;
} cfattaches[MAX_ATTACH];
static struct cfdriver * const *component_drivers;
int sh_instances;
static unsigned unit_map;

int
config_cfattach_attach(const char *name, struct cfattach *ca)
{
	for (int i = 0; i < MAX_ATTACH; i++) {
		if (cfattaches[i].ca == NULL) {
			cfattaches[i].name = name;
			cfattaches[i].ca = ca;
			return 0;
		}
	}
	return ENOMEM;
}

int
config_init_component(struct cfdriver * const *cfdrivers, const struct cfattachinit *cfai,
    struct cfdata *cfdata)
{
	if (component_drivers != NULL)
		return EEXIST;
	component_drivers = cfdrivers;
	for (; cfai->cfai_name != NULL; cfai++)
		for (struct cfattach * const *ca = cfai->cfai_list; *ca != NULL; ca++)
			(void)config_cfattach_attach(cfai->cfai_name, *ca);
	return 0;
}

int
config_fini_component(struct cfdriver * const *cfdrivers, const struct cfattachinit *cfai,
    struct cfdata *cfdata)
{
	if (sh_instances != 0)
		return EBUSY;
	component_drivers = NULL;
	memset(cfattaches, 0, sizeof(cfattaches));
	return 0;
}

device_t
config_attach_pseudo(cfdata_t cf)
{
	struct cfattach *ca = NULL;
	device_t dev;
	int unit;

	for (int i = 0; i < MAX_ATTACH; i++)
		if (cfattaches[i].ca != NULL && strlen(cfattaches[i].name) == strlen(cf->cf_atname) &&
		    memcmp(cfattaches[i].name, cf->cf_atname, strlen(cf->cf_atname)) == 0)
			ca = cfattaches[i].ca;
	if (ca == NULL || cf->cf_fstate != FSTATE_STAR)
		return NULL;
	if (ca->ca_match(NULL, cf, NULL) == 0)
		return NULL;
	for (unit = 0; unit < 32 && (unit_map & (1u << unit)); unit++)
		continue;
	if (unit == 32)
		return NULL;
	dev = h_calloc(sizeof(*dev));
	dev->ca = ca;
	dev->unit = unit;
	dev->priv = h_calloc(ca->ca_devsize);
	unit_map |= 1u << unit;
	sh_instances++;
	ca->ca_attach(NULL, dev, NULL);
	return dev;
}

int
config_detach(device_t dev, int flags)
{
	int error = dev->ca->ca_detach(dev, flags);

	if (error != 0)
		return error;
	unit_map &= ~(1u << dev->unit);
	sh_instances--;
	h_free(dev->priv);
	h_free(dev);
	return 0;
}

void *device_private(device_t dev) { return dev->priv; }
bool sh_pmf_device_register(device_t dev) { return true; }
void pmf_device_deregister(device_t dev) { }

/* ------------------------------------------------------------------ devsw */

const struct bdevsw *sh_bdevsw;
const struct cdevsw *sh_cdevsw;
devmajor_t sh_bmajor = NODEVMAJOR, sh_cmajor = NODEVMAJOR;
const char *sh_devsw_name;

int
devsw_attach(const char *name, const struct bdevsw *b, devmajor_t *bmajor,
    const struct cdevsw *c, devmajor_t *cmajor)
{
	if (sh_bdevsw != NULL)
		return EEXIST;
	/* The majors NetBSD reserves for "dm" (sys/conf/majors). */
	if (*bmajor == NODEVMAJOR)
		*bmajor = 169;
	if (*cmajor == NODEVMAJOR)
		*cmajor = 194;
	sh_devsw_name = name;
	sh_bdevsw = b;
	sh_cdevsw = c;
	sh_bmajor = *bmajor;
	sh_cmajor = *cmajor;
	return 0;
}

void
devsw_detach(const struct bdevsw *b, const struct cdevsw *c)
{
	if (b != sh_bdevsw || c != sh_cdevsw)
		panic("devsw_detach: not attached");
	sh_bdevsw = NULL;
	sh_cdevsw = NULL;
	sh_devsw_name = NULL;
}

devmajor_t
bdevsw_lookup_major(const struct bdevsw *b)
{
	return b == sh_bdevsw ? sh_bmajor : NODEVMAJOR;
}

int sh_nodump(dev_t dev, daddr_t blk, void *va, size_t size) { return ENODEV; }
void sh_nostop(struct tty *tp, int rw) { }
int sh_nopoll(dev_t dev, int events, struct lwp *l) { return 0; }
paddr_t nommap(dev_t dev, off_t off, int prot) { return (paddr_t)-1; }
int sh_nokqfilter(dev_t dev, struct knote *kn) { return 0; }
int sh_nodiscard(dev_t dev, off_t pos, off_t len) { return ENODEV; }

/* ------------------------------------------------------------------ module(9) */

int (*sh_autoload)(const char *, modclass_t);

int
module_autoload(const char *name, modclass_t class)
{
	if (sh_autoload == NULL)
		return ENOENT;
	return sh_autoload(name, class);
}

/* ------------------------------------------------------------------ set-up */

void
sh_init(void)
{
	mutex_init(&count_lock, MUTEX_DEFAULT, IPL_NONE);
	mutex_init(&cq_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&cq_cv, "cq");
	sh_verbose = h_getenv("DM_HOSTTEST_VERBOSE") != NULL;
}
