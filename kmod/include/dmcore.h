/*
 * dmcore.h: the one C header of the boundary between the Rust device-mapper core and a kernel's
 * C glue.
 *
 *   dmcore_*  functions the Rust static library (libdmkmod.a) exports; the glue calls them.
 *   dmglue_*  functions the glue provides; the Rust side calls them (its declarations of them are
 *             generated from this file by bindgen at build time).
 *
 * Rules of the boundary:
 * - Every errno crossing it is the host's errno number; 0 means success.
 * - The glue owns every I/O request. The core's per-request state lives inside the glue's request
 *   object, in a struct dmcore_io_slot; the slot's address is the request's handle on both sides.
 *   The glue recovers its request from the slot (container-of).
 * - Sectors are 512 bytes. Offsets into a request's buffer are in bytes.
 * - Callbacks into the core (dmcore_child_done, dmcore_strategy for released requests) may come
 *   from any thread, but never while the glue holds a lock the core could need.
 * - The Rust side checks at compile time that its exports have exactly the prototypes below and
 *   that its per-request state fits in struct dmcore_io_slot.
 */
#ifndef DMCORE_H
#define DMCORE_H

#ifdef _KERNEL
#include <sys/types.h>
#else
#include <stddef.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ shared types and numbers */

/* Room for the core's per-request state (its IoSlot), embedded in every glue request. */
#define DMCORE_IO_SLOT_SIZE	64
#define DMCORE_IO_SLOT_ALIGN	8

struct dmcore_io_slot {
	uint64_t dis_words[DMCORE_IO_SLOT_SIZE / 8];
};

/* Operations of a request. */
#define DMCORE_OP_READ		0
#define DMCORE_OP_WRITE		1
#define DMCORE_OP_FLUSH		2	/* no data: make completed writes durable */
#define DMCORE_OP_DISCARD	3	/* no data: the range is no longer needed */
#define DMCORE_OP_WRITE_ZEROES	4	/* no data: the range reads as zeroes */

/* Which target of the table, and which part of it, a child request belongs to. The glue hands it
 * back unchanged with the child's completion. */
struct dmcore_tag {
	uint32_t dt_target;
	uint32_t dt_aux;
};

/* Background work queued by the core. The memory belongs to the core; the glue only links it
 * through dw_next while it waits, and hands it back with dmcore_work_run (or dmcore_work_drop
 * when it shuts down without running it). */
struct dmcore_work {
	struct dmcore_work *dw_next;
	uint64_t dw_at_ns;		/* run not before this dmglue_now_ns() value; 0: at once */
};

/* Log levels of dmglue_log. */
#define DMGLUE_LOG_ERROR	0
#define DMGLUE_LOG_WARNING	1
#define DMGLUE_LOG_INFO		2
#define DMGLUE_LOG_DEBUG	3

/* Alignment every dmglue_alloc result has. The core asks for more only by over-allocating. */
#define DMGLUE_ALLOC_ALIGN	8

/* A lower device the glue opened for the core. */
struct dmglue_disk;

/* A target module's type (kmod/include/dmtarget.h). */
struct dmtarget_ops;

/* ------------------------------------------------------------------ exported by the core */

/* Creates the core. Called once, before anything else. */
int	dmcore_init(void);
/* Destroys the core. EBUSY (and nothing done) while a mapped device exists. */
int	dmcore_fini(void);
/* Nonzero when no mapped device exists: a module may unload only then. */
int	dmcore_is_idle(void);

/* The length limit of a control request, NUL included: requests this long or longer are refused
 * by dmcore_control with E2BIG, so the glue need not copy more than this. */
size_t	dmcore_max_request_len(void);

/*
 * Runs one control request: req_len bytes of proplib XML, normally ending with the NUL the client
 * sent. privileged: the caller may run the privileged commands (NetBSD: KAUTH_SYSTEM_DEVMAPPER).
 * Returns 0 with *reply / *reply_len set to the reply text, NUL included (free it with
 * dmcore_reply_free), or a transport errno (E2BIG, EIO, ENOMEM, ENXIO) and no reply. A command's
 * own failure is reported inside the reply; it is also stored in *command_error when that
 * pointer is not NULL (0 when the command succeeded).
 */
int	dmcore_control(const uint8_t *req, size_t req_len, int privileged,
	    uint8_t **reply, size_t *reply_len, int *command_error);
void	dmcore_reply_free(uint8_t *reply, size_t reply_len);

/*
 * Maps a request of the mapped device `minor`. bytes: length, a multiple of 512 (0 for a flush);
 * op: DMCORE_OP_*. Every outcome, errors included, comes back through dmglue_complete, possibly
 * before this returns. The slot must not be in flight in the core; its contents need no
 * initialisation.
 */
void	dmcore_strategy(uint32_t minor, struct dmcore_io_slot *io, uint64_t sector,
	    uint64_t bytes, int op, int fua);

/* A child request issued with dmglue_submit completed with `error`. */
void	dmcore_child_done(struct dmcore_io_slot *parent, struct dmcore_tag tag, int error);

/* Counts an open / a close of a mapped device's node. ENXIO when there is no such device. */
int	dmcore_open(uint32_t minor);
void	dmcore_close(uint32_t minor);
/* The size in sectors of the device's active table (0 without one); ENXIO without device. */
int	dmcore_size(uint32_t minor, uint64_t *sectors);

/* Runs queued work (and frees it), or frees it without running it. */
void	dmcore_work_run(struct dmcore_work *work);
void	dmcore_work_drop(struct dmcore_work *work);

/*
 * Loadable targets (kmod/include/dmtarget.h): a dm_target_<name> module registers its types at
 * MODULE_CMD_INIT and unregisters them at MODULE_CMD_FINI, as NetBSD's dm_target_insert() and
 * Linux's dm_register_target() do.
 * register: 0; EINVAL for a table the core refuses (ABI version, size, name, a required
 * function missing); EEXIST when the name is taken; ENXIO before dmcore_init. The table must
 * stay valid until dmcore_target_unregister of it returned 0.
 * unregister: 0; EBUSY while a table line of the type exists, the core holds background work of
 * the module or the module holds a reference to the core (the module must then refuse to
 * unload, returning the EBUSY); ENOENT when the table was not registered.
 */
int	dmcore_target_register(const struct dmtarget_ops *ops);
int	dmcore_target_unregister(const struct dmtarget_ops *ops);

/* ------------------------------------------------------------------ provided by the glue */

/* Memory for the core: DMGLUE_ALLOC_ALIGN-aligned, size > 0; NULL when none can be had. The
 * glue may sleep for it only where sleeping is allowed. */
void	*dmglue_alloc(size_t size);
void	dmglue_free(void *ptr, size_t size);

/* Opens a lower device for reading and writing, by NUL-terminated path or by block device
 * number. On success: the handle, the size in 512-byte sectors and (for a path) its numbers. */
int	dmglue_disk_open_path(const char *path, struct dmglue_disk **disk, uint64_t *sectors,
	    uint32_t *major, uint32_t *minor);
int	dmglue_disk_open_dev(uint32_t major, uint32_t minor, struct dmglue_disk **disk,
	    uint64_t *sectors);
void	dmglue_disk_close(struct dmglue_disk *disk);

/*
 * Issues a child request: `sectors` sectors at `sector` of `disk`, its data at buf_offset bytes
 * into the parent's buffer (none for flush and discard). Its completion must reach
 * dmcore_child_done(parent, tag, error) exactly once, possibly before this returns.
 */
void	dmglue_submit(struct dmglue_disk *disk, struct dmcore_io_slot *parent, uint64_t sector,
	    uint64_t sectors, size_t buf_offset, int op, int fua, struct dmcore_tag tag);

/* Completes a request handed to dmcore_strategy. The glue may free the request at once. */
void	dmglue_complete(struct dmcore_io_slot *io, int error);

/* The address of bytes offset .. offset + len of the request's buffer; NULL if out of range. */
void	*dmglue_io_data(struct dmcore_io_slot *io, size_t offset, size_t len);

/* Keeps a request that came while its device was suspended; release_deferred hands every kept
 * request of `minor` back to dmcore_strategy. */
void	dmglue_defer(uint32_t minor, struct dmcore_io_slot *io);
void	dmglue_release_deferred(uint32_t minor);

/* Synchronous I/O for the core's workers (thread context only), at `sector` of the disk. Read
 * and write move `bytes` (a multiple of 512) between buf and the disk (write with forced unit
 * access when fua is set); discard and write-zeroes act on `bytes` bytes (buf is NULL); flush
 * makes completed writes durable (sector and bytes 0). */
int	dmglue_disk_io(struct dmglue_disk *disk, int op, uint64_t sector, void *buf,
	    uint64_t bytes, int fua);

/* Whether the block device major:minor is one of this driver's mapped devices; if so, 1 and its
 * minor in *mapped (the core refuses tables that would stack a device on itself). */
int	dmglue_mapped_minor(uint32_t major, uint32_t minor, uint32_t *mapped);

/* A mapped device was created: make its disk (name: name_len bytes, no NUL). */
int	dmglue_device_attach(uint32_t minor, const char *name, size_t name_len);
/* A mapped device was removed: no request of it is in flight any more. */
void	dmglue_device_detach(uint32_t minor);
/* A new table became active: the device now has `sectors` sectors. */
void	dmglue_device_resized(uint32_t minor, uint64_t sectors);

/* A table names a target type nobody registered (name: name_len bytes, no NUL): load the module
 * that provides it, if there is one (NetBSD: module_autoload("dm_target_<name>",
 * MODULE_CLASS_MISC), whose init registers its types). Nonzero when a module was loaded. Thread
 * context; the glue holds none of its locks. */
int	dmglue_autoload_target(const char *name, size_t name_len);

/* The wait lock and its condition: the core evaluates its condition between wait_enter and
 * wait_exit and sleeps with wait_sleep (which returns nonzero when an interruptible sleep was
 * interrupted); wake_all takes the lock and wakes every sleeper. */
void	dmglue_wait_enter(void);
int	dmglue_wait_sleep(int interruptible);
void	dmglue_wait_exit(void);
void	dmglue_wake_all(void);

/* Monotonic time in nanoseconds. */
uint64_t dmglue_now_ns(void);

/* Runs work on the glue's worker thread, not before work->dw_at_ns. */
void	dmglue_work_queue(struct dmcore_work *work);

/* Writes len bytes of text (no NUL) to the kernel's log. */
void	dmglue_log(int level, const char *msg, size_t len);

/* Stops the machine with a message (len bytes, no NUL). */
void	dmglue_panic(const char *msg, size_t len) __attribute__((__noreturn__));

#ifdef __cplusplus
}
#endif

#endif /* DMCORE_H */
