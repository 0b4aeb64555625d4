/*
 * dmtarget.h: the stable C ABI between the device-mapper core and a target module built
 * separately from it (NetBSD: a dm_target_<name> kernel module that requires "dm"; dmhost: a
 * shared object it loads), the counterpart of NetBSD's dm_target_insert() and Linux's
 * dm_register_target().
 *
 * A module describes each target type it provides with a struct dmtarget_ops (its name,
 * version, features and functions) and registers it with the core; the core gives it a table
 * of its own functions, struct dmtarget_host, through which the target opens lower devices,
 * disposes of the pieces of requests it maps, reports events and uses the platform (time,
 * background work, waiting, the log). Nothing else of the core is visible to a module.
 *
 *   kernel:  dmcore_target_register(ops), dmcore_target_unregister(ops) (kmod/include/dmcore.h)
 *   dmhost:  --target-module PATH, or dm_target_<type>.so in --module-dir; the shared object
 *            exports dmtarget_module_entry() (below)
 *
 * Unregistering fails with EBUSY while any table line of the type exists, while the core runs
 * background work of the module, and while the module holds a reference to the core
 * (dh_core_hold): a module may unload only after its every type was unregistered.
 *
 * Rules:
 * - Every errno is the host's; 0 means success. Sectors are 512 bytes; offsets into a
 *   request's buffer are in bytes. Strings passed by the core end with a NUL; strings passed
 *   to the core are (pointer, length) and need none.
 * - The functions of struct dmtarget_ops are called by the core from any thread, several at
 *   once for different requests (dto_map, dto_end_io on the I/O path: they must not sleep);
 *   dto_ctr, dto_dtr, dto_status, dto_message, dto_devices, dto_presuspend, dto_preresume and
 *   dto_resume from the control path (they may sleep).
 * - Handles are valid as each function's comment says, and never after.
 *
 * Versioning: dto_abi_version and dh_abi_version are DMTARGET_ABI_VERSION; the core refuses a
 * type whose ABI version differs (EINVAL). dto_size and dh_size are the sizes of the structures
 * as their writer knew them; a later minor revision may only append members, and a reader
 * uses a member only if the size shows it is there.
 */
#ifndef DMTARGET_H
#define DMTARGET_H

#ifdef _KERNEL
#include <sys/types.h>
#else
#include <stddef.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DMTARGET_ABI_VERSION	1

/* Longest target type name, NUL included (DM_MAX_TYPE_NAME). */
#define DMTARGET_NAME_MAX	16

/* dto_features: table-wide rules of the type. */
#define DMTARGET_SINGLETON		0x1	/* the only line of its table */
#define DMTARGET_IMMUTABLE		0x2	/* no other type in the table, nor after a reload */
#define DMTARGET_ALWAYS_WRITEABLE	0x4	/* never in a read-only device */

/* Operations of a request piece, of dh_piece_issue and of dh_disk_io (DMCORE_OP_*). */
#define DMTARGET_OP_READ		0
#define DMTARGET_OP_WRITE		1
#define DMTARGET_OP_FLUSH		2
#define DMTARGET_OP_DISCARD		3
#define DMTARGET_OP_WRITE_ZEROES	4

/* dto_status kinds: Linux's STATUSTYPE_INFO, _TABLE and _IMA. */
#define DMTARGET_STATUS_INFO	0
#define DMTARGET_STATUS_TABLE	1
#define DMTARGET_STATUS_IMA	2

/* dh_log levels. */
#define DMTARGET_LOG_ERROR	0
#define DMTARGET_LOG_WARNING	1
#define DMTARGET_LOG_INFO	2
#define DMTARGET_LOG_DEBUG	3

/* Opaque handles of the core. */
struct dmtarget_core;		/* the core's side of a registered type */
struct dmtarget_disk;		/* a lower device opened for a target */
struct dmtarget_piece;		/* the request piece being mapped (dto_map only) */
struct dmtarget_queued;		/* a piece kept for later */
struct dmtarget_events;		/* a device's event counter */
struct dmtarget_text;		/* text the core collects (messages, status lines) */
struct dmtarget_devices;	/* the device list of dto_devices */

/* One piece of a request, within one table line. */
struct dmtarget_segment {
	uint64_t	ds_offset;	/* first sector, counted from the line's start */
	uint64_t	ds_sectors;	/* length in sectors (0 for a flush) */
	uint64_t	ds_buf_offset;	/* where its data starts in the request's buffer, bytes */
	int32_t		ds_op;		/* DMTARGET_OP_* */
	int32_t		ds_fua;		/* forced unit access */
};

/*
 * What the core provides. The table stays valid while the module holds a reference to the core
 * (every target of the type holds one until its dto_dtr returns).
 */
struct dmtarget_host {
	uint32_t	dh_abi_version;	/* DMTARGET_ABI_VERSION */
	uint32_t	dh_size;	/* sizeof(struct dmtarget_host) */

	/* References to the core: dto_ctr's ctx->dc_core is borrowed for the call; a target (or
	 * anything of the module that outlives the call) keeps its own with dh_core_hold and
	 * gives it back with dh_core_release. Unregistering fails while one is held. */
	void	(*dh_core_hold)(struct dmtarget_core *core);
	void	(*dh_core_release)(struct dmtarget_core *core);

	/* Lower devices. spec is a path or "major:minor" as a table line names the device
	 * (spec_len bytes, no NUL needed). On success the handle, its size in sectors and its
	 * device number; the handle is the module's until dh_disk_close. */
	int	(*dh_disk_open)(struct dmtarget_core *core, const char *spec, size_t spec_len,
		    struct dmtarget_disk **disk, uint64_t *sectors, uint32_t *major,
		    uint32_t *minor);
	void	(*dh_disk_close)(struct dmtarget_disk *disk);
	/* Synchronous I/O for the target's own work (thread context only): read or write `bytes`
	 * (a multiple of 512) between buf and the disk at `sector`; flush; discard or write-zeroes
	 * of `bytes` bytes (buf NULL). */
	int	(*dh_disk_io)(struct dmtarget_core *core, struct dmtarget_disk *disk, int op,
		    uint64_t sector, void *buf, uint64_t bytes, int fua);

	/* The piece being mapped, valid during dto_map only. Each function may be called any
	 * number of times; the request completes once every child issued and every piece kept
	 * has finished (the first error wins). */
	/* A child: `sectors` sectors at `sector` of `disk`, its data `buf_offset` bytes into the
	 * request's buffer; `aux` comes back to dto_end_io. */
	void	(*dh_piece_issue)(struct dmtarget_piece *piece, struct dmtarget_disk *disk,
		    uint64_t sector, uint64_t sectors, uint64_t buf_offset, int op, uint32_t aux);
	void	(*dh_piece_fail)(struct dmtarget_piece *piece, int error);
	void	(*dh_piece_zero_fill)(struct dmtarget_piece *piece);
	/* Keeps the piece in flight for later: the handle stays valid until dh_queued_finish or
	 * dh_queued_remap, one of which must be called once. NULL when no memory was left: the
	 * piece has failed with ENOMEM. */
	struct dmtarget_queued *(*dh_piece_queue)(struct dmtarget_piece *piece);

	/* Kept pieces. dh_queued_data calls fn with the piece's data in the request's buffer
	 * (len = ds_sectors * 512 bytes) and returns 0, or an errno without calling it. */
	int	(*dh_queued_data)(struct dmtarget_queued *queued,
		    void (*fn)(void *arg, uint8_t *data, size_t len), void *arg);
	void	(*dh_queued_finish)(struct dmtarget_queued *queued, int error);
	void	(*dh_queued_remap)(struct dmtarget_queued *queued, struct dmtarget_disk *disk,
		    uint64_t sector);

	/* Events (Linux's dm_table_event): counts one on the device and wakes its waiters. May be
	 * called from the I/O path. dto_ctr gets a reference in ctx->dc_events that the target
	 * owns and gives back with dh_events_release (once). */
	void	(*dh_event)(struct dmtarget_events *events);
	void	(*dh_events_release)(struct dmtarget_events *events);

	/* Text: appends len bytes to what the core collects (status line, message answer, or
	 * the reason of a refusal). */
	void	(*dh_text_append)(struct dmtarget_text *text, const char *s, size_t len);
	/* dto_devices: one lower device of the target. */
	void	(*dh_devices_add)(struct dmtarget_devices *devices, uint32_t major, uint32_t minor);

	/* The platform. */
	uint64_t (*dh_now_ns)(struct dmtarget_core *core);	/* monotonic */
	/* Runs run(arg) once on the core's worker, not before at_ns (0: as soon as possible),
	 * then drop(arg); when the core shuts down without running it, only drop(arg). */
	void	(*dh_queue_work)(struct dmtarget_core *core, void (*run)(void *arg),
		    void (*drop)(void *arg), void *arg, uint64_t at_ns);
	/* Blocks until ready(arg) returns nonzero (evaluated under the core's wait lock, so that
	 * a dh_wake between evaluation and sleep is not lost); an interruptible wait returns
	 * EINTR when its thread is signalled. */
	int	(*dh_wait)(struct dmtarget_core *core, int (*ready)(void *arg), void *arg,
		    int interruptible);
	void	(*dh_wake)(struct dmtarget_core *core);
	void	(*dh_log)(struct dmtarget_core *core, int level, const char *msg, size_t len);
};

/* What dto_ctr gets: valid for the call. */
struct dmtarget_ctx {
	struct dmtarget_core		*dc_core;	/* borrowed: dh_core_hold to keep it */
	const struct dmtarget_host	*dc_host;
	struct dmtarget_events		*dc_events;	/* owned by the target: dh_events_release */
	uint64_t			dc_start;	/* the line's first sector in the device */
	uint64_t			dc_len;		/* the line's length in sectors */
	uint32_t			dc_minor;	/* the device's minor */
	int32_t				dc_read_only;	/* the device is read-only */
};

/*
 * A target type. `target` is what dto_ctr made.
 */
struct dmtarget_ops {
	uint32_t	dto_abi_version;		/* DMTARGET_ABI_VERSION */
	uint32_t	dto_size;			/* sizeof(struct dmtarget_ops) */
	char		dto_name[DMTARGET_NAME_MAX];	/* NUL-terminated, non-empty */
	uint32_t	dto_version[3];
	uint32_t	dto_features;			/* DMTARGET_* features */

	/* Checks one table line's arguments (argc NUL-terminated strings, split as Linux splits
	 * table params; argl[i] is the length of argv[i], its NUL excluded) and builds its target
	 * in *target. On failure: an errno, with Linux's message appended to `error`, and nothing
	 * held (ctx->dc_events released). Required. */
	int	(*dto_ctr)(const struct dmtarget_ctx *ctx, uint32_t argc, const char *const *argv,
		    const size_t *argl, void **target, struct dmtarget_text *error);
	/* Destroys a target: every disk closed, every reference given back. Required. */
	void	(*dto_dtr)(void *target);
	/* Maps a piece (which never crosses the line's end nor a dto_piece_len boundary) through
	 * the dh_piece_* functions. Required. */
	void	(*dto_map)(void *target, const struct dmtarget_segment *seg,
		    struct dmtarget_piece *piece);
	/* How many sectors from `offset` (into the line) one piece of an `op` request may have;
	 * UINT64_MAX when the target never splits. NULL: never splits. */
	uint64_t (*dto_piece_len)(void *target, uint64_t offset, int op);
	/* A child issued with `aux` completed with `error`. NULL: nothing to do. */
	void	(*dto_end_io)(void *target, uint32_t aux, int error);
	/* Linux's presuspend (noflush: a noflush suspend), preresume (an errno keeps the device
	 * suspended) and resume. NULL: nothing to do. */
	void	(*dto_presuspend)(void *target, int noflush);
	int	(*dto_preresume)(void *target);
	void	(*dto_resume)(void *target);
	/* Appends the status line of `kind` (DMTARGET_STATUS_*) to `text`. Required. */
	void	(*dto_status)(void *target, int kind, struct dmtarget_text *text);
	/* A message (argc NUL-terminated words, lengths in argl as for dto_ctr). Returns 0, with
	 * *answered set to 1 when the text appended to `text` is an answer; or an errno, with the
	 * reason appended. NULL: the type takes no messages ("Target type does not support
	 * messages", EINVAL). */
	int	(*dto_message)(void *target, uint32_t argc, const char *const *argv,
		    const size_t *argl, struct dmtarget_text *text, int *answered);
	/* Every lower device, in table-line order, through dh_devices_add. NULL: none. */
	void	(*dto_devices)(void *target, struct dmtarget_devices *devices);
};

/*
 * A shared object for a user-space host (dmhost) exports this function: the module's target
 * types, one for each index from 0, and NULL after the last.
 */
const struct dmtarget_ops *dmtarget_module_entry(uint32_t index);

#ifdef __cplusplus
}
#endif

#endif /* DMTARGET_H */
