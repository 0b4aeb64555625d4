/*
 * host.h: the few services of the build host (libc, POSIX threads) that the stand-in kernel
 * (standin.c) and the test (test_glue.c) need. Plain C types only, so that both sides compile
 * against their own headers: host.c against the host's, the rest against netbsd_kernel.h.
 */
#ifndef HOST_H
#define HOST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void	*h_malloc(size_t);
void	*h_calloc(size_t);
void	h_free(void *);

void	*h_mutex_new(void);
void	h_mutex_free(void *);
void	h_mutex_lock(void *);
void	h_mutex_unlock(void *);
void	*h_cond_new(void);
void	h_cond_free(void *);
void	h_cond_wait(void *, void *);
/* Returns nonzero when the wait timed out. */
int	h_cond_timedwait(void *, void *, uint64_t);
void	h_cond_signal(void *);
void	h_cond_broadcast(void *);

void	*h_thread_start(void (*)(void *), void *);
void	h_thread_exit(void) __attribute__((__noreturn__));
void	h_thread_join(void *);

uint64_t h_now_ns(void);
void	h_vprint(const char *, va_list);
int	h_vsnprintf(char *, size_t, const char *, va_list);
void	h_print(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void	h_abort(void) __attribute__((__noreturn__));
void	h_exit(int) __attribute__((__noreturn__));

/* Reads a whole file; returns 0 and a buffer to h_free, or -1. */
int	h_read_file(const char *, uint8_t **, size_t *);
int	h_file_exists(const char *);
/* Reads <dir>/<name>.<part>; as h_read_file. */
int	h_read_golden(const char *, const char *, const char *, uint8_t **, size_t *);
const char *h_getenv(const char *);

#endif
