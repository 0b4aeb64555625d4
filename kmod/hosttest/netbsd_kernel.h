/*
 * netbsd_kernel.h: a small stand-in for the NetBSD kernel interfaces the dm glue
 * (the .c files of kmod/netbsd) uses, so that the glue compiles and runs on the build host, linked with the
 * real core, for the tests of kmod/hosttest.
 *
 * Names, argument lists and the meaning of each call are NetBSD's (section 9 manual pages);
 * structures carry only the members the glue touches, plus a few of the stand-in's own (named
 * sh_*). kmod/check/run.sh makes every <sys/...> header the glue includes a one-line file that
 * includes this one. Implemented in standin.c.
 */
#ifndef NETBSD_KERNEL_H
#define NETBSD_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ types, numbers */

typedef uint64_t	dev_t;
typedef int64_t		daddr_t;
typedef int64_t		off_t;
typedef unsigned long	u_long;
typedef unsigned int	u_int;
typedef unsigned long	vaddr_t;
typedef unsigned long	vsize_t;
typedef unsigned long	paddr_t;
typedef int		pri_t;
typedef int32_t		devmajor_t;
typedef unsigned int	km_flag_t;
typedef struct kauth_cred *kauth_cred_t;

#define	__dead			__attribute__((__noreturn__))
#define	__printflike(f, a)	__attribute__((__format__(__printf__, f, a)))

#define	NODEVMAJOR	(-1)
#define	major(d)	((uint32_t)(((d) & 0x000fff00) >> 8))
#define	minor(d)	((uint32_t)((((d) & 0xfff00000) >> 12) | ((d) & 0x000000ff)))
#define	makedev(x, y)	((dev_t)((((dev_t)(x) << 8) & 0x000fff00) | \
			    (((dev_t)(y) << 12) & 0xfff00000) | ((dev_t)(y) & 0xff)))

#define	DEV_BSIZE	512
#define	MAXPHYS		(64 * 1024)
#define	PAGE_SIZE	4096
#define	round_page(x)	(((x) + PAGE_SIZE - 1) & ~(vsize_t)(PAGE_SIZE - 1))
#define	INT_MAX		0x7fffffff
#define	MIN(a, b)	((a) < (b) ? (a) : (b))

/* NetBSD's errno numbers. */
#define	EPERM		1
#define	ENOENT		2
#define	EINTR		4
#define	EIO		5
#define	ENXIO		6
#define	E2BIG		7
#define	ENOMEM		12
#define	EFAULT		14
#define	ENOTBLK		15
#define	EBUSY		16
#define	EEXIST		17
#define	ENODEV		19
#define	EINVAL		22
#define	ENOTTY		25
#define	EOPNOTSUPP	45
#define	ENOTSUP		86

#define	FREAD		0x1
#define	FWRITE		0x2

#define	container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ------------------------------------------------------------------ queue(3) */

#define	LIST_HEAD(name, type)	struct name { struct type *lh_first; }
#define	LIST_ENTRY(type)	struct { struct type *le_next; struct type **le_prev; }
#define	LIST_INIT(h)		((h)->lh_first = NULL)
#define	LIST_FIRST(h)		((h)->lh_first)
#define	LIST_NEXT(e, f)		((e)->f.le_next)
#define	LIST_INSERT_HEAD(h, e, f) do {					\
	if (((e)->f.le_next = (h)->lh_first) != NULL)			\
		(h)->lh_first->f.le_prev = &(e)->f.le_next;		\
	(h)->lh_first = (e);						\
	(e)->f.le_prev = &(h)->lh_first;				\
} while (0)
#define	LIST_REMOVE(e, f) do {						\
	if ((e)->f.le_next != NULL)					\
		(e)->f.le_next->f.le_prev = (e)->f.le_prev;		\
	*(e)->f.le_prev = (e)->f.le_next;				\
} while (0)
#define	LIST_FOREACH(v, h, f) \
	for ((v) = LIST_FIRST(h); (v) != NULL; (v) = LIST_NEXT(v, f))

#define	TAILQ_HEAD(name, type)	struct name { struct type *tqh_first; struct type **tqh_last; }
#define	TAILQ_HEAD_INITIALIZER(h) { NULL, &(h).tqh_first }
#define	TAILQ_ENTRY(type)	struct { struct type *tqe_next; struct type **tqe_prev; }
#define	TAILQ_FIRST(h)		((h)->tqh_first)
#define	TAILQ_NEXT(e, f)	((e)->f.tqe_next)
#define	TAILQ_INIT(h)		do { (h)->tqh_first = NULL; (h)->tqh_last = &(h)->tqh_first; } while (0)
#define	TAILQ_INSERT_TAIL(h, e, f) do {					\
	(e)->f.tqe_next = NULL;						\
	(e)->f.tqe_prev = (h)->tqh_last;				\
	*(h)->tqh_last = (e);						\
	(h)->tqh_last = &(e)->f.tqe_next;				\
} while (0)
#define	TAILQ_REMOVE(h, e, f) do {					\
	if ((e)->f.tqe_next != NULL)					\
		(e)->f.tqe_next->f.tqe_prev = (e)->f.tqe_prev;		\
	else								\
		(h)->tqh_last = (e)->f.tqe_prev;			\
	*(e)->f.tqe_prev = (e)->f.tqe_next;				\
} while (0)
#define	TAILQ_FOREACH_SAFE(v, h, f, n) \
	for ((v) = TAILQ_FIRST(h); (v) != NULL && ((n) = TAILQ_NEXT(v, f), 1); (v) = (n))

/* ------------------------------------------------------------------ systm, libkern */

#define	printf	sh_printf		/* the kernel's printf returns nothing */
void	sh_printf(const char *, ...) __printflike(1, 2);
#define	strlcpy	sh_strlcpy
#define	snprintf	sh_snprintf
int	snprintf(char *, size_t, const char *, ...) __printflike(3, 4);
void	panic(const char *, ...) __dead __printflike(1, 2);
void	aprint_error(const char *, ...) __printflike(1, 2);
int	copyin(const void *, void *, size_t);
int	copyout(const void *, void *, size_t);
void	*memcpy(void *, const void *, size_t);
void	*memset(void *, int, size_t);
int	memcmp(const void *, const void *, size_t);
int	strcmp(const char *, const char *);
size_t	strlen(const char *);
size_t	strlcpy(char *, const char *, size_t);
#define	KERNEL_LOCK(count, lwp)	do { } while (0)
#define	KERNEL_UNLOCK_ONE(lwp)	do { } while (0)
extern int hz;
#define	mstohz(ms)	((unsigned int)(((ms) + 0ul) * hz / 1000ul))

bool	cpu_intr_p(void);
bool	cpu_softintr_p(void);

struct timespec {
	int64_t	tv_sec;
	long	tv_nsec;
};
void	nanouptime(struct timespec *);

/* ------------------------------------------------------------------ mutex, condvar, kmem, pool */

#define	MUTEX_DEFAULT	0
#define	IPL_NONE	0
#define	IPL_BIO		6
typedef struct kmutex { void *sh_m; } kmutex_t;
typedef struct kcondvar { void *sh_c; } kcondvar_t;
void	mutex_init(kmutex_t *, int, int);
void	mutex_destroy(kmutex_t *);
void	mutex_enter(kmutex_t *);
void	mutex_exit(kmutex_t *);
void	cv_init(kcondvar_t *, const char *);
void	cv_destroy(kcondvar_t *);
void	cv_wait(kcondvar_t *, kmutex_t *);
int	cv_wait_sig(kcondvar_t *, kmutex_t *);
int	cv_timedwait(kcondvar_t *, kmutex_t *, int);
void	cv_signal(kcondvar_t *);
void	cv_broadcast(kcondvar_t *);

#define	KM_SLEEP	0x1
#define	KM_NOSLEEP	0x2
void	*kmem_alloc(size_t, km_flag_t);
void	*kmem_zalloc(size_t, km_flag_t);
void	kmem_free(void *, size_t);

#define	PR_NOWAIT	0x01
typedef struct pool_cache *pool_cache_t;
struct pool_allocator;
pool_cache_t pool_cache_init(size_t, u_int, u_int, u_int, const char *,
	    struct pool_allocator *, int, int (*)(void *, void *, int),
	    void (*)(void *, void *), void *);
void	pool_cache_destroy(pool_cache_t);
void	*pool_cache_get(pool_cache_t, int);
void	pool_cache_put(pool_cache_t, void *);

/* ------------------------------------------------------------------ lwp, proc, kthread, kauth */

struct vm_map { int sh_unused; };
struct vmspace { struct vm_map vm_map; };
struct proc { struct vmspace *p_vmspace; };
struct lwp { struct proc *l_proc; kauth_cred_t l_cred; };
typedef struct lwp lwp_t;

#define	PRI_NONE		(-1)
#define	KTHREAD_MPSAFE		0x01
#define	KTHREAD_MUSTJOIN	0x04
struct cpu_info;
int	kthread_create(pri_t, int, struct cpu_info *, void (*)(void *), void *,
	    struct lwp **, const char *, ...);
void	kthread_exit(int) __dead;
int	kthread_join(struct lwp *);

typedef uint32_t kauth_action_t;
#define	KAUTH_SYSTEM_DEVMAPPER	22
enum kauth_system_req { KAUTH_REQ_SYSTEM_CHROOT_CHROOT = 1 };
int	kauth_authorize_system(kauth_cred_t, kauth_action_t, enum kauth_system_req,
	    void *, void *, void *);
kauth_cred_t kauth_cred_get(void);

int	uvm_mmap_anon(struct proc *, void **, size_t);
void	uvm_deallocate(struct vm_map *, vaddr_t, vsize_t);

/* ------------------------------------------------------------------ buf, vnode */

struct vnode;
struct uio;

typedef struct buf {
	void		(*b_iodone)(struct buf *);
	int		b_error;
	int		b_resid;
	u_int		b_flags;
	int		b_prio;
	int		b_bufsize;
	int		b_bcount;
	dev_t		b_dev;
	void		*b_data;
	daddr_t		b_blkno;
	daddr_t		b_rawblkno;
	struct proc	*b_proc;
	void		*b_private;
	u_int		b_cflags;
	struct vnode	*b_vp;
	u_int		b_oflags;
	kmutex_t	*b_objlock;
	/* The stand-in's own: */
	kmutex_t	sh_lock;
	kcondvar_t	sh_done;
	bool		sh_finished;
} buf_t;

#define	B_ASYNC		0x00000004
#define	B_PHYS		0x00040000
#define	B_READ		0x00100000
#define	B_WRITE		0x00000000
#define	B_MEDIA_FUA	0x08000000
#define	BC_BUSY		0x00000010
#define	BO_DONE		0x00000200
#define	BIO_COPYPRIO(a, b)	((a)->b_prio = (b)->b_prio)

void	buf_init(buf_t *);
void	buf_destroy(buf_t *);
buf_t	*getiobuf(struct vnode *, bool);
void	putiobuf(buf_t *);
void	biodone(buf_t *);
int	biowait(buf_t *);
void	minphys(buf_t *);
int	physio(void (*)(buf_t *), buf_t *, dev_t, int, void (*)(buf_t *), struct uio *);

struct iovec { void *iov_base; size_t iov_len; };
enum uio_rw { UIO_READ, UIO_WRITE };
struct uio {
	struct iovec	*uio_iov;
	int		uio_iovcnt;
	off_t		uio_offset;
	size_t		uio_resid;
	enum uio_rw	uio_rw;
};

enum vtype { VNON, VREG, VDIR, VBLK, VCHR };
struct vnode {
	enum vtype	v_type;
	dev_t		v_rdev;
	kmutex_t	*v_interlock;
	int		v_numoutput;
	int		v_writecount;
	struct sh_disk	*sh_disk;	/* the stand-in's memory image */
};

#define	LK_EXCLUSIVE	0x02
#define	LK_RETRY	0x200
struct pathbuf;
struct pathbuf *pathbuf_create(const char *);
void	pathbuf_destroy(struct pathbuf *);
int	vn_open(struct vnode *, struct pathbuf *, int, int, int, struct vnode **, bool *, int *);
int	vn_close(struct vnode *, int, kauth_cred_t);
int	vn_lock(struct vnode *, int);
int	bdevvp(dev_t, struct vnode **);
void	vrele(struct vnode *);
int	VOP_OPEN(struct vnode *, int, kauth_cred_t);
int	VOP_UNLOCK(struct vnode *);
int	VOP_IOCTL(struct vnode *, u_long, void *, int, kauth_cred_t);
int	VOP_FDISCARD(struct vnode *, off_t, off_t);
int	VOP_STRATEGY(struct vnode *, buf_t *);
int	getdisksize(struct vnode *, uint64_t *, unsigned int *);

/* ------------------------------------------------------------------ ioctl numbers, plistref */

#define	IOCPARM_MASK	0x1fff
#define	IOC_OUT		0x40000000UL
#define	IOC_IN		0x80000000UL
#define	_IOC(inout, g, n, len) \
	((unsigned long)((inout) | (((len) & IOCPARM_MASK) << 16) | ((g) << 8) | (n)))
#define	_IOR(g, n, t)	_IOC(IOC_OUT, (g), (n), sizeof(t))
#define	_IOW(g, n, t)	_IOC(IOC_IN, (g), (n), sizeof(t))
#define	_IOWR(g, n, t)	_IOC(IOC_IN | IOC_OUT, (g), (n), sizeof(t))

struct plistref {
	void	*pref_plist;
	size_t	pref_len;
};
#define	NETBSD_DM_IOCTL	_IOWR(0xfd, 0, struct plistref)

typedef struct prop_dictionary *prop_dictionary_t;
int	prop_dictionary_copyout_ioctl(struct plistref *, u_long, prop_dictionary_t);

/* ------------------------------------------------------------------ disk */

struct dkwedge_info {
	char		dkw_devname[16];
	uint8_t		dkw_wname[128];
	char		dkw_parent[16];
	daddr_t		dkw_offset;
	uint64_t	dkw_size;
	char		dkw_ptype[32];
};
#define	DKW_PTYPE_FFS	"ffs"
#define	DIOCCACHESYNC	_IOW('d', 118, int)
#define	DIOCGWEDGEINFO	_IOR('d', 122, struct dkwedge_info)
#define	DIOCGDISKINFO	_IOR('d', 127, struct plistref)
#define	DIOCGMEDIASIZE	_IOR('d', 132, off_t)
#define	DIOCGSECTORSIZE	_IOR('d', 133, u_int)

struct disk_geom {
	int64_t		dg_secperunit;
	uint32_t	dg_secsize;
	uint32_t	dg_nsectors;
	uint32_t	dg_ntracks;
	uint32_t	dg_ncylinders;
};
struct dkdriver {
	void	(*d_strategy)(buf_t *);
	void	(*d_minphys)(buf_t *);
};
struct disk {
	const char		*dk_name;
	prop_dictionary_t	dk_info;
	struct disk_geom	dk_geom;
	/* The stand-in's own: */
	const struct dkdriver	*sh_driver;
	int			sh_attached;
	int			sh_busy;
	uint64_t		sh_bytes;
};
struct device;
typedef struct device *device_t;
void	disk_init(struct disk *, const char *, const struct dkdriver *);
void	disk_attach(struct disk *);
void	disk_detach(struct disk *);
void	disk_destroy(struct disk *);
void	disk_busy(struct disk *);
void	disk_unbusy(struct disk *, long, int);
void	disk_set_info(device_t, struct disk *, const char *);

/* ------------------------------------------------------------------ autoconf */

struct cfdata {
	const char	*cf_name;
	const char	*cf_atname;
	short		cf_unit;
	short		cf_fstate;
};
typedef struct cfdata *cfdata_t;
#define	FSTATE_STAR	2
struct cfdriver {
	const char	*cd_name;
};
struct cfattach {
	const char	*ca_name;
	size_t		ca_devsize;
	int		(*ca_match)(device_t, cfdata_t, void *);
	void		(*ca_attach)(device_t, device_t, void *);
	int		(*ca_detach)(device_t, int);
};
struct cfattachinit {
	const char		*cfai_name;
	struct cfattach * const	*cfai_list;
};
#define	DVF_DETACH_SHUTDOWN	0x0080
#define	DETACH_FORCE		0x01
#define	DETACH_QUIET		0x02
#define	CFATTACH_DECL3_NEW(name, ddsize, matfn, attfn, detfn, actfn, rescanfn, chdetfn, fl) \
	struct cfattach name##_ca = { #name, ddsize, matfn, attfn, detfn }

int	config_init_component(struct cfdriver * const *, const struct cfattachinit *,
	    struct cfdata *);
int	config_fini_component(struct cfdriver * const *, const struct cfattachinit *,
	    struct cfdata *);
int	config_cfattach_attach(const char *, struct cfattach *);
device_t config_attach_pseudo(cfdata_t);
int	config_detach(device_t, int);
void	*device_private(device_t);
bool	sh_pmf_device_register(device_t);
#define	pmf_device_register(d, s, r)	sh_pmf_device_register(d)
void	pmf_device_deregister(device_t);
void	aprint_error_dev(device_t, const char *, ...) __printflike(2, 3);

/* ------------------------------------------------------------------ devsw */

struct knote;
struct tty;
struct bdevsw {
	int	(*d_open)(dev_t, int, int, struct lwp *);
	int	(*d_cancel)(dev_t, int, int, struct lwp *);
	int	(*d_close)(dev_t, int, int, struct lwp *);
	void	(*d_strategy)(buf_t *);
	int	(*d_ioctl)(dev_t, u_long, void *, int, struct lwp *);
	int	(*d_dump)(dev_t, daddr_t, void *, size_t);
	int	(*d_psize)(dev_t);
	int	(*d_discard)(dev_t, off_t, off_t);
	int	(*d_devtounit)(dev_t);
	struct cfdriver *d_cfdriver;
	int	d_flag;
};
struct cdevsw {
	int	(*d_open)(dev_t, int, int, struct lwp *);
	int	(*d_cancel)(dev_t, int, int, struct lwp *);
	int	(*d_close)(dev_t, int, int, struct lwp *);
	int	(*d_read)(dev_t, struct uio *, int);
	int	(*d_write)(dev_t, struct uio *, int);
	int	(*d_ioctl)(dev_t, u_long, void *, int, struct lwp *);
	void	(*d_stop)(struct tty *, int);
	struct tty *(*d_tty)(dev_t);
	int	(*d_poll)(dev_t, int, struct lwp *);
	paddr_t	(*d_mmap)(dev_t, off_t, int);
	int	(*d_kqfilter)(dev_t, struct knote *);
	int	(*d_discard)(dev_t, off_t, off_t);
	int	(*d_devtounit)(dev_t);
	struct cfdriver *d_cfdriver;
	int	d_flag;
};
#define	D_DISK		0x0002
#define	D_MPSAFE	0x0100
#define	dev_type_open(n)	int n(dev_t, int, int, struct lwp *)
#define	dev_type_close(n)	int n(dev_t, int, int, struct lwp *)
#define	dev_type_read(n)	int n(dev_t, struct uio *, int)
#define	dev_type_write(n)	int n(dev_t, struct uio *, int)
#define	dev_type_ioctl(n)	int n(dev_t, u_long, void *, int, struct lwp *)
#define	dev_type_strategy(n)	void n(buf_t *)
#define	dev_type_size(n)	int n(dev_t)
#define	dev_type_discard(n)	int n(dev_t, off_t, off_t)
int	sh_nodump(dev_t, daddr_t, void *, size_t);
void	sh_nostop(struct tty *, int);
int	sh_nopoll(dev_t, int, struct lwp *);
paddr_t	nommap(dev_t, off_t, int);
int	sh_nokqfilter(dev_t, struct knote *);
int	sh_nodiscard(dev_t, off_t, off_t);
#define	nodump		sh_nodump
#define	nostop		sh_nostop
#define	notty		NULL
#define	nopoll		sh_nopoll
#define	nokqfilter	sh_nokqfilter
#define	nodiscard	sh_nodiscard
int	devsw_attach(const char *, const struct bdevsw *, devmajor_t *,
	    const struct cdevsw *, devmajor_t *);
void	devsw_detach(const struct bdevsw *, const struct cdevsw *);
devmajor_t bdevsw_lookup_major(const struct bdevsw *);

/* ------------------------------------------------------------------ module(9) */

typedef enum modcmd {
	MODULE_CMD_INIT,
	MODULE_CMD_FINI,
	MODULE_CMD_STAT,
	MODULE_CMD_AUTOUNLOAD,
} modcmd_t;
typedef enum modclass {
	MODULE_CLASS_ANY,
	MODULE_CLASS_MISC,
	MODULE_CLASS_VFS,
	MODULE_CLASS_DRIVER,
	MODULE_CLASS_EXEC,
	MODULE_CLASS_SECMODEL,
	MODULE_CLASS_BUFQ,
} modclass_t;
struct sh_module {
	const char	*sm_name;
	modclass_t	sm_class;
	const char	*sm_required;
	int		(*sm_modcmd)(modcmd_t, void *);
};
#define	MODULE(class, name, required)					\
	static int name##_modcmd(modcmd_t, void *);			\
	const struct sh_module name##_sh_module = { #name, class, required, name##_modcmd }
int	module_autoload(const char *, modclass_t);

#endif /* NETBSD_KERNEL_H */
