/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* File helpers shared by the log, checkpoints and convert; never installed. */
#ifndef __MMSB_FILEIO_H
#define __MMSB_FILEIO_H

#include "mmsb_internal.h"

/*
 * A file written under a temporary name and renamed into place only when complete and synced. The
 * name is FINAL.tmp.PID.RANDOM, created O_EXCL|O_NOFOLLOW; opening one first removes the leftovers
 * of dead writers (docs/formats.md).
 */
struct mmsb_wfile {
	int fd;
	char *tmp;
	const char *final;
	struct mmsb_buf b;
	uint32_t crc; /* CRC32C of every byte put so far */
	uint64_t written;
	int err; /* the first error; later puts do nothing */
};

int mmsb__wfile_open(struct mmsb_wfile *w, const char *final) MMSB_HIDDEN;
void mmsb__wfile_put(struct mmsb_wfile *w, const void *p, size_t n) MMSB_HIDDEN;
#define MMSB__WPUT(w, v)                                                                           \
	do {                                                                                       \
		__typeof__(v) __v = (v);                                                           \
		mmsb__wfile_put((w), &__v, sizeof(__v));                                           \
	} while (0)
/* Flush, fsync, rename over the final name, fsync the directory. */
int mmsb__wfile_commit(struct mmsb_wfile *w) MMSB_HIDDEN;
void mmsb__wfile_abort(struct mmsb_wfile *w) MMSB_HIDDEN;

int mmsb__fsync_dir(const char *path) MMSB_HIDDEN;
int mmsb__write_all(int fd, const void *buf, size_t len) MMSB_HIDDEN;

/* A read-only private mapping of a whole file (p == NULL for an empty file). */
struct mmsb_map {
	const uint8_t *p;
	size_t len;
};

int mmsb__map_file(const char *path, struct mmsb_map *m) MMSB_HIDDEN;
void mmsb__unmap_file(struct mmsb_map *m) MMSB_HIDDEN;

#endif /* __MMSB_FILEIO_H */
