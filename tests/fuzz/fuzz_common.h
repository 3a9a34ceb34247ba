/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* libFuzzer targets read files by path, like the library's users: one scratch file per process. */
#ifndef __MMSB_FUZZ_COMMON_H
#define __MMSB_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fuzz_file(const uint8_t *data, size_t n)
{
	static char path[64];
	int fd;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/mmsb-fuzz.%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (n && write(fd, data, n) != (ssize_t)n)
		abort();
	close(fd);
	return path;
}

#endif /* __MMSB_FUZZ_COMMON_H */
