// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Atomic file replacement and read-only mappings: what the log, checkpoints and convert share. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
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

/* The name of a temporary file is exactly NAME.tmp.PID.<16 hex digits>: is TAIL (after NAME) one? */
static bool wfile_tmp_name(const char *tail, long *pid)
{
	char *end;

	if (strncmp(tail, ".tmp.", 5))
		return false;
	errno = 0;
	*pid = strtol(tail + 5, &end, 10);
	if (errno || end == tail + 5 || *end != '.' || *pid <= 0 || *pid > INT_MAX)
		return false;
	if (strlen(end + 1) != 16)
		return false;
	for (int i = 1; i <= 16; i++)
		if (!((end[i] >= '0' && end[i] <= '9') || (end[i] >= 'a' && end[i] <= 'f')))
			return false;
	return true;
}

/*
 * Leftovers of writers that died between open and rename. A writer holds an exclusive flock on
 * its temporary file until the rename; a file of exactly our naming whose PID does not run here
 * and whose lock is free had a writer that died (a writer in another PID namespace on a shared
 * volume still holds its lock). Only regular files owned by us are removed, opened without
 * following links; any other name, even a close one, is somebody else's and is left alone.
 */
static void wfile_clean_stale(const char *final)
{
	char *dcopy = strdup(final), *bcopy = strdup(final);
	const char *base;
	struct dirent *de;
	size_t blen;
	DIR *dir;

	if (!dcopy || !bcopy)
		goto out;
	base = basename(bcopy);
	blen = strlen(base);
	dir = opendir(dirname(dcopy));
	if (!dir)
		goto out;
	while ((de = readdir(dir))) {
		struct stat st;
		long pid;
		int fd;

		if (strncmp(de->d_name, base, blen) || !wfile_tmp_name(de->d_name + blen, &pid))
			continue;
		if (pid == getpid() || !kill((pid_t)pid, 0) || errno != ESRCH)
			continue; /* its writer may still be running */
		fd = openat(dirfd(dir), de->d_name,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
		    !flock(fd, LOCK_EX | LOCK_NB))
			unlinkat(dirfd(dir), de->d_name, 0);
		close(fd);
	}
	closedir(dir);
out:
	free(dcopy);
	free(bcopy);
}

int mmsb__wfile_open(struct mmsb_wfile *w, const char *final)
{
	struct stat st;
	int err = -EEXIST;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->final = final;
	/*
	 * The rename replaces a regular file, or a symlink (the link, never its target); a device,
	 * a FIFO or a directory at the path is not ours to replace with a file.
	 */
	if (!lstat(final, &st) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	wfile_clean_stale(final);
	/*
	 * An unpredictable name, created exclusively and never through a link: nobody can plant a
	 * file or a symlink there for us to write through, even when we run as root in their dir.
	 */
	for (int tries = 0; tries < 16 && err == -EEXIST; tries++) {
		uint64_t r;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = mmsb__now_ns(CLOCK_MONOTONIC) * 0x9E3779B97F4A7C15ull ^ (uint64_t)tries;
		if (asprintf(&w->tmp, "%s.tmp.%d.%016llx", final, (int)getpid(),
			     (unsigned long long)r) < 0) {
			w->tmp = NULL;
			return -ENOMEM;
		}
		w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		/* held until the rename: what tells a cleaner this writer is alive (above) */
		if (w->fd >= 0 && !flock(w->fd, LOCK_EX | LOCK_NB))
			return 0;
		if (w->fd >= 0) {
			close(w->fd);
			unlink(w->tmp);
			w->fd = -1;
			errno = EEXIST;
		}
		err = -errno;
		free(w->tmp);
		w->tmp = NULL;
	}
	return err;
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
	/* renamed while still open: the lock that says this writer is alive lasts until then */
	if (!err && rename(w->tmp, w->final))
		err = -errno;
	if (close(w->fd) && !err)
		err = -errno;
	w->fd = -1;
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
	/* O_NONBLOCK: a FIFO must be refused below, not waited on */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
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
