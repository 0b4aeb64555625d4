/* host.c: host.h over libc and POSIX threads. */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

static void *
must(void *p)
{
	if (p == NULL) {
		fprintf(stderr, "host: out of memory\n");
		abort();
	}
	return p;
}

void *h_malloc(size_t n) { return must(malloc(n == 0 ? 1 : n)); }
void *h_calloc(size_t n) { return must(calloc(1, n == 0 ? 1 : n)); }
void h_free(void *p) { free(p); }

void *
h_mutex_new(void)
{
	pthread_mutex_t *m = must(malloc(sizeof(*m)));
	pthread_mutexattr_t a;

	/* Error-checking: a lock taken twice or released by another thread aborts the test. */
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return m;
}

void h_mutex_free(void *m) { pthread_mutex_destroy(m); free(m); }

void
h_mutex_lock(void *m)
{
	if (pthread_mutex_lock(m) != 0) {
		fprintf(stderr, "host: mutex_enter of a held mutex\n");
		abort();
	}
}

void
h_mutex_unlock(void *m)
{
	if (pthread_mutex_unlock(m) != 0) {
		fprintf(stderr, "host: mutex_exit of a mutex not held\n");
		abort();
	}
}

void *
h_cond_new(void)
{
	pthread_cond_t *c = must(malloc(sizeof(*c)));
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return c;
}

void h_cond_free(void *c) { pthread_cond_destroy(c); free(c); }
void h_cond_wait(void *c, void *m) { pthread_cond_wait(c, m); }

int
h_cond_timedwait(void *c, void *m, uint64_t ns)
{
	struct timespec ts;
	uint64_t at;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	at = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec = (time_t)(at / 1000000000ULL);
	ts.tv_nsec = (long)(at % 1000000000ULL);
	return pthread_cond_timedwait(c, m, &ts) == ETIMEDOUT;
}

void h_cond_signal(void *c) { pthread_cond_signal(c); }
void h_cond_broadcast(void *c) { pthread_cond_broadcast(c); }

struct start {
	void	(*fn)(void *);
	void	*arg;
};

static void *
trampoline(void *p)
{
	struct start s = *(struct start *)p;

	free(p);
	s.fn(s.arg);
	return NULL;
}

void *
h_thread_start(void (*fn)(void *), void *arg)
{
	pthread_t *t = must(malloc(sizeof(*t)));
	struct start *s = must(malloc(sizeof(*s)));

	s->fn = fn;
	s->arg = arg;
	if (pthread_create(t, NULL, trampoline, s) != 0) {
		free(s);
		free(t);
		return NULL;
	}
	return t;
}

void h_thread_exit(void) { pthread_exit(NULL); }
void h_thread_join(void *t) { pthread_join(*(pthread_t *)t, NULL); free(t); }

uint64_t
h_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void h_vprint(const char *fmt, va_list ap) { vprintf(fmt, ap); fflush(stdout); }
int h_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) { return vsnprintf(buf, size, fmt, ap); }

void
h_print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	h_vprint(fmt, ap);
	va_end(ap);
}

void h_abort(void) { fflush(stdout); abort(); }
void h_exit(int code) { fflush(stdout); exit(code); }

int
h_read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*data = must(malloc((size_t)n + 1));
	if (fread(*data, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(*data);
		return -1;
	}
	(*data)[n] = 0;
	*len = (size_t)n;
	fclose(f);
	return 0;
}

int h_file_exists(const char *path) { return access(path, R_OK) == 0; }
const char *h_getenv(const char *name) { return getenv(name); }

int
h_read_golden(const char *dir, const char *name, const char *part, uint8_t **data, size_t *len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, part);
	return h_read_file(path, data, len);
}
