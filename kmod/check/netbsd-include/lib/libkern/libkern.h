/*
 * Stand-in for NetBSD's <lib/libkern/libkern.h> (kernel source only): the memory and string
 * functions of the kernel's C library that the installed headers and the glue call.
 */
#ifndef _LIB_LIBKERN_LIBKERN_H_
#define _LIB_LIBKERN_LIBKERN_H_

#include <sys/types.h>

void	*memcpy(void *, const void *, size_t);
void	*memset(void *, int, size_t);
int	memcmp(const void *, const void *, size_t);
size_t	strlcpy(char *, const char *, size_t);
size_t	strlen(const char *);

#endif
