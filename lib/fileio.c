// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Atomic file replacement and read-only mappings: what the log, checkpoints and convert share. */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmsb_internal.h"
#include "fileio.h"

#define WFILE_FLUSH (1u << 20)

int mmsb__fsync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, err = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int mmsb__write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mmsb__wfile_open(struct mmsb_wfile *w, const char *final)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (asprintf(&w->tmp, "%s.tmp.%d", final, (int)getpid()) < 0) {
		w->tmp = NULL;
		return -ENOMEM;
	}
	w->final = final;
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		int err = -errno;

		free(w->tmp);
		w->tmp = NULL;
		return err;
	}
	return 0;
}

static int wfile_flush(struct mmsb_wfile *w)
{
	int err;

	if (w->err || !w->b.len)
		return w->err;
	err = mmsb__write_all(w->fd, w->b.p, w->b.len);
	if (err)
		w->err = err;
	w->b.len = 0;
	return err;
}

void mmsb__wfile_put(struct mmsb_wfile *w, const void *p, size_t n)
{
	if (w->err)
		return;
	w->crc = mmsb__crc32c(w->crc, p, n);
	w->written += n;
	if (n >= WFILE_FLUSH) {
		/* large pages go straight through rather than via the buffer */
		if (!wfile_flush(w))
			w->err = mmsb__write_all(w->fd, p, n);
		return;
	}
	if (w->b.len + n > WFILE_FLUSH && wfile_flush(w))
		return;
	if (mmsb__buf_reserve(&w->b, n)) {
		w->err = -ENOMEM;
		return;
	}
	mmsb__put(&w->b, p, n);
}

int mmsb__wfile_commit(struct mmsb_wfile *w)
{
	int err = wfile_flush(w);

	if (!err && fsync(w->fd))
		err = -errno;
	if (close(w->fd) && !err)
		err = -errno;
	w->fd = -1;
	if (!err && rename(w->tmp, w->final))
		err = -errno;
	if (!err)
		err = mmsb__fsync_dir(w->final);
	if (err)
		unlink(w->tmp);
	mmsb__buf_free(&w->b);
	free(w->tmp);
	w->tmp = NULL;
	return err;
}

void mmsb__wfile_abort(struct mmsb_wfile *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	mmsb__buf_free(&w->b);
	free(w->tmp);
	w->tmp = NULL;
	w->fd = -1;
}

int mmsb__map_file(const char *path, struct mmsb_map *m)
{
	struct stat st;
	int fd, err = 0;

	memset(m, 0, sizeof(*m));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	m->len = (size_t)st.st_size;
	if (m->len) {
		void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);

		if (p == MAP_FAILED) {
			err = -errno;
			goto out;
		}
		m->p = p;
	}
out:
	close(fd);
	return err;
}

void mmsb__unmap_file(struct mmsb_map *m)
{
	if (m->p)
		munmap((void *)m->p, m->len);
	memset(m, 0, sizeof(*m));
}
