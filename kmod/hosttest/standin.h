/* standin.h: what the tests see of the stand-in kernel (standin.c) beyond NetBSD's interfaces. */
#ifndef STANDIN_H
#define STANDIN_H

#include "netbsd_kernel.h"

/* A user address that copyin/copyout refuse with EFAULT. */
#define SH_BAD_ADDRESS	((void *)16)

struct sh_counters {
	int64_t	kmem_bytes;	/* kmem(9) bytes allocated and not freed */
	int64_t	kmem_blocks;
	int64_t	bufs;		/* bufs initialised and not destroyed */
	int64_t	mappings;	/* uvm_mmap_anon regions not unmapped */
	int64_t	threads;	/* kthreads not joined */
	int64_t	kauth_checks;
	int64_t	lower_ios;	/* bufs handed to lower devices */
};
extern struct sh_counters sh_count;

struct sh_disk;

extern int sh_verbose;
extern struct lwp sh_lwp0;
extern int sh_instances;
extern const struct bdevsw *sh_bdevsw;
extern const struct cdevsw *sh_cdevsw;
extern devmajor_t sh_bmajor, sh_cmajor;
extern const char *sh_devsw_name;

void	sh_init(void);
void	sh_set_root(bool);
void	sh_set_async(bool);
void	sh_munmap(void *);
struct sh_disk *sh_add_disk(const char *, dev_t, uint64_t);
uint8_t	*sh_disk_image(struct sh_disk *);
int	sh_disk_opens(struct sh_disk *);
int64_t	sh_disk_flushes(struct sh_disk *);
int	sh_disk_numoutput(struct sh_disk *);
struct disk *sh_find_disk(const char *);

/* module_autoload(9): the test decides what loading a module does (0: it was loaded). */
extern int (*sh_autoload)(const char *, modclass_t);

#endif
