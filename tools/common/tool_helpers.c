// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Helpers shared by the mmsb tools. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <mmsb/mmsb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool_helpers.h"

const char *prog_name = "mmsb";

void p_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull accepts "-1" and leading blanks; a count or an id must not */
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ' || *s == '\t')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end || end == s)
		return -EINVAL;
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fmt_time_ns(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!ns) {
		snprintf(buf, len, "0");
		return;
	}
	gmtime_r(&sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned long long)(ns % 1000000000ull));
}

int cmd_select(const struct cmd *cmds, int argc, char **argv, int (*help)(int, char **))
{
	const struct cmd *hit = NULL;
	size_t n;

	if (argc < 1)
		return help(argc, argv) ? EXIT_USAGE : EXIT_USAGE;
	n = strlen(argv[0]);
	for (const struct cmd *c = cmds; c->name; c++) {
		if (!strcmp(c->name, argv[0]))
			return c->fn(argc, argv);
		if (!strncmp(c->name, argv[0], n)) {
			if (hit) {
				p_err("'%s' is ambiguous: %s or %s", argv[0], hit->name, c->name);
				return EXIT_USAGE;
			}
			hit = c;
		}
	}
	if (!hit) {
		p_err("unknown command '%s'; try '%s help'", argv[0], prog_name);
		return EXIT_USAGE;
	}
	return hit->fn(argc, argv);
}

int finish_stdout(int ret)
{
	if (fflush(stdout) || ferror(stdout)) {
		p_err("error writing output: %s", strerror(errno));
		return EXIT_FAIL;
	}
	return ret;
}

const char *own_libmmsb(void)
{
	Dl_info info;

	if (dladdr((void *)mmsb_version, &info) && info.dli_fname && strstr(info.dli_fname, ".so"))
		return info.dli_fname;
	return NULL;
}

int open_regular(const char *path, size_t max_bytes)
{
	struct stat st;
	int fd, flags, err = 0;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	else if (max_bytes && (uint64_t)st.st_size > max_bytes)
		err = -EFBIG;
	else if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int read_regular(const char *path, size_t max_bytes, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = NULL, *nb;
	int fd = open_regular(path, max_bytes), err = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap || !b) {
			if (b)
				cap *= 2;
			if (max_bytes && cap > max_bytes + 2)
				cap = max_bytes +
				      2; /* room for one byte past the cap, and the NUL */
			nb = realloc(b, cap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (!r)
			break;
		n += (size_t)r;
		if (max_bytes && n > max_bytes) {
			err = -EFBIG; /* it grew while read (or a /proc file that says size 0) */
			break;
		}
	}
	close(fd);
	if (err) {
		free(b);
		return err;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

const char *input_strerror(int err)
{
	if (err == -EINVAL)
		return "not a regular file";
	if (err == -EFBIG)
		return "too large";
	return strerror(-err);
}

/* The invoking user under sudo, read once; groups are theirs as initgroups would set them. */
static struct {
	int known; /* 0: not read yet, 1: under sudo, -1: not */
	uid_t uid;
	gid_t gid;
	gid_t *groups, *saved;
	int n_groups, n_saved, depth;
} inv;

static bool invoker_load(void)
{
	const char *u = getenv("SUDO_UID"), *g = getenv("SUDO_GID");
	struct passwd *pw;
	uint64_t uid, gid;
	int n = 0;

	if (inv.known)
		return inv.known > 0;
	inv.known = -1;
	/* root who ran sudo (SUDO_UID 0) is just root; a uid of -1 is no user */
	if (geteuid() || !u || !g || parse_u64(u, 1, UINT32_MAX - 1, &uid) ||
	    parse_u64(g, 0, UINT32_MAX - 1, &gid))
		return false;
	inv.uid = (uid_t)uid;
	inv.gid = (gid_t)gid;
	pw = getpwuid(inv.uid);
	if (pw && getgrouplist(pw->pw_name, inv.gid, NULL, &n) < 0 && n > 0 &&
	    (inv.groups = calloc((size_t)n, sizeof(gid_t))) &&
	    getgrouplist(pw->pw_name, inv.gid, inv.groups, &n) >= 0) {
		inv.n_groups = n;
	} else {
		/* no passwd entry (or no memory): the primary group alone, as sudo -u '#uid' gives */
		free(inv.groups);
		inv.groups = malloc(sizeof(gid_t));
		if (!inv.groups)
			return false; /* fail closed: callers then act as root on no user's path */
		inv.groups[0] = inv.gid;
		inv.n_groups = 1;
	}
	inv.known = 1;
	return true;
}

bool sudo_env(void)
{
	const char *u = getenv("SUDO_UID");

	return u && strcmp(u, "0");
}

bool sudo_invoker(uid_t *uid, gid_t *gid)
{
	if (!invoker_load())
		return false;
	if (uid)
		*uid = inv.uid;
	if (gid)
		*gid = inv.gid;
	return true;
}

/*
 * setfsuid/setfsgid change only the ids the kernel checks file access with (and, from 0 to
 * another uid, drop CAP_DAC_OVERRIDE and the other file capabilities); the real and effective
 * ids stay root's, so BPF and perf keep working in between. The supplementary groups are swapped
 * too: root's group 0 must not open a group-root file for the user.
 */
int as_user_enter(void)
{
	int n;

	if (!invoker_load() || inv.depth++)
		return 0;
	n = getgroups(0, NULL);
	free(inv.saved);
	inv.saved = malloc((size_t)(n > 0 ? n : 1) * sizeof(gid_t));
	if (n < 0 || !inv.saved || (inv.n_saved = getgroups(n, inv.saved)) < 0 ||
	    setgroups((size_t)inv.n_groups, inv.groups)) {
		inv.depth--;
		return -EPERM;
	}
	setfsgid(inv.gid);
	setfsuid(inv.uid);
	/* both calls return the previous id: ask again to see that they took */
	if ((uid_t)setfsuid((uid_t)-1) != inv.uid || (gid_t)setfsgid((gid_t)-1) != inv.gid) {
		inv.depth = 1;
		as_user_leave();
		return -EPERM;
	}
	return 0;
}

void as_user_leave(void)
{
	if (inv.known <= 0 || !inv.depth || --inv.depth)
		return;
	setfsuid(geteuid());
	setfsgid(getegid());
	if (setgroups((size_t)inv.n_saved, inv.saved))
		abort(); /* root's groups cannot be put back: stop before acting with the wrong ones */
}

int drop_to_invoker(void)
{
	if (!invoker_load())
		return 0;
	/*
	 * The kernel honours a setuid or setgid bit, or file capabilities, at an exec traced by a
	 * root tracer (it would refuse them under the user's own ptrace): without this, a setuid-root
	 * program the user runs under sudo mmsb-trace would run as root and be traced for the user.
	 * No new privileges, as under any ptracer the user could run; inherited by every child.
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (setgroups((size_t)inv.n_groups, inv.groups) || setgid(inv.gid) || setuid(inv.uid))
		return -errno;
	/* setuid from root drops every id and capability at once: make sure there is no way back */
	if (!setuid(0))
		return -EPERM;
	return 0;
}

int invoker_may_trace(int pid, char *why, size_t len)
{
	char file[64], line[256];
	unsigned int id[2][4];
	int have = 0;
	struct stat st;
	FILE *f;

	if (!invoker_load())
		return 0;
	snprintf(file, sizeof(file), "/proc/%d/status", pid);
	f = fopen(file, "re");
	if (!f) {
		snprintf(why, len, "process %d: %s", pid, strerror(errno));
		return errno == ENOENT ? -ESRCH : -EPERM;
	}
	while (fgets(line, sizeof(line), f)) {
		int k = !strncmp(line, "Uid:", 4) ? 0 : !strncmp(line, "Gid:", 4) ? 1 : -1;

		if (k >= 0 && sscanf(line + 4, "%u %u %u %u", &id[k][0], &id[k][1], &id[k][2],
				     &id[k][3]) == 4)
			have |= 1 << k;
	}
	fclose(f);
	/*
	 * /proc/PID belongs to root, not to the process's user, while the process is not dumpable
	 * (it ran a setuid program, or said so with prctl): the ptrace check refuses those too.
	 */
	snprintf(file, sizeof(file), "/proc/%d", pid);
	if (have != 3 || stat(file, &st)) {
		snprintf(why, len, "process %d: cannot read its credentials", pid);
		return -EPERM;
	}
	for (int i = 0; i < 3; i++)
		if (id[0][i] != inv.uid || id[1][i] != inv.gid) {
			snprintf(why, len,
				 "process %d runs as uid %u gid %u, not as the invoking user", pid,
				 id[0][i], id[1][i]);
			return -EPERM;
		}
	if (st.st_uid != inv.uid) {
		snprintf(why, len,
			 "process %d is not dumpable (a setuid program?): the invoking user could "
			 "not trace it",
			 pid);
		return -EPERM;
	}
	return 0;
}

/* The directory symlink walk_dir() last refused: its path as written, and its owner. */
static struct {
	char link[PATH_MAX];
	uid_t uid, writer;
} refused;

/*
 * Open directory PATH (PLEN bytes) from START (or "/" when absolute) one component at a time,
 * O_PATH|O_NOFOLLOW, so no lookup but ours ever follows a link. A symlink among the components
 * is followed only when it belongs to the writer (the fs uid: root when plain root, the user
 * under sudo) or to root (/var/run and the like): a CI job running as root on a checkout must not
 * follow a link a pull request committed. Another's link: -EPERM with it noted in `refused`.
 * The directory's fd (O_PATH), or -errno.
 */
static int walk_dir(int start, const char *path, size_t plen, int *links)
{
	const char *p = path, *end = path + plen;
	uid_t writer = (uid_t)setfsuid((uid_t)-1);
	int fd, nfd, err;

	if (*p == '/' || start == AT_FDCWD)
		fd = open(*p == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	else
		fd = fcntl(start, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (p < end) {
		char comp[NAME_MAX + 1], target[PATH_MAX];
		const char *q;
		struct stat st;
		ssize_t tl;
		size_t n;

		while (p < end && *p == '/')
			p++;
		if (p == end)
			break;
		q = memchr(p, '/', (size_t)(end - p));
		n = q ? (size_t)(q - p) : (size_t)(end - p);
		if (n > NAME_MAX) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		p += n;
		if (!strcmp(comp, "."))
			continue;
		if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW)) {
			err = -errno;
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			if (st.st_uid != writer && st.st_uid != 0) {
				snprintf(refused.link, sizeof(refused.link), "%.*s",
					 (int)(p - path), path);
				refused.uid = st.st_uid;
				refused.writer = writer;
				err = -EPERM;
				goto fail;
			}
			if (++*links > 40) {
				err = -ELOOP;
				goto fail;
			}
			tl = readlinkat(fd, comp, target, sizeof(target) - 1);
			if (tl <= 0) {
				err = tl < 0 ? -errno : -ENOENT;
				goto fail;
			}
			target[tl] = 0;
			nfd = walk_dir(fd, target, (size_t)tl, links);
		} else {
			nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd < 0)
				nfd = -errno; /* ENOTDIR also when it became a link since the fstatat */
		}
		close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
	}
	return fd;
fail:
	close(fd);
	return err;
}

/* Directory DIR opened for an output: walk_dir() from the cwd. */
static int out_dir_open(const char *dir)
{
	int links = 0;

	refused.link[0] = 0;
	return walk_dir(AT_FDCWD, dir, strlen(dir), &links);
}

/* One line for a path the user's rights do not reach: under sudo, say whose rights those were. */
static void out_err(const char *path, int err)
{
	if (err == -EPERM && refused.link[0])
		p_err("%s: %s is a symbolic link owned by uid %u, neither the writer (uid %u) nor "
		      "root: not followed",
		      path, refused.link, (unsigned int)refused.uid, (unsigned int)refused.writer);
	else if (err == -ELOOP)
		p_err("%s: is a symbolic link: outputs are not written through one", path);
	else if (err == -EINVAL)
		p_err("%s: not a regular file, a FIFO or a character device", path);
	else if (err == -ENXIO)
		p_err("%s: a FIFO with no reader", path);
	else if ((err == -EACCES || err == -EPERM) && sudo_invoker(NULL, NULL))
		p_err("%s: %s (under sudo, outputs are written as the invoking user, uid %u)", path,
		      strerror(-err), (unsigned int)inv.uid);
	else
		p_err("%s: %s", path, strerror(-err));
}

/* DIR made (unless there) inside its parent, opened by walk_dir(): no lookup follows a link. */
static int out_mkdir_as_user(const char *dir)
{
	char buf[PATH_MAX], *slash, *name;
	size_t len = strlen(dir);
	struct stat st;
	int pfd, err = 0;

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = 0;
	slash = strrchr(buf, '/');
	name = slash ? slash + 1 : buf;
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(buf, "/")) {
		/* nothing to make: the directory must be there, reached by the same rule */
		pfd = out_dir_open(buf);
		if (pfd < 0)
			return pfd;
		close(pfd);
		return 0;
	}
	if (slash)
		*slash = 0;
	pfd = out_dir_open(!slash ? "." : slash == buf ? "/" : buf);
	if (pfd < 0)
		return pfd;
	if (mkdirat(pfd, name, 0777) && errno != EEXIST)
		err = -errno;
	else if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW))
		err = -errno;
	else if (S_ISLNK(st.st_mode))
		err = -ELOOP;
	else if (!S_ISDIR(st.st_mode))
		err = -ENOTDIR;
	close(pfd);
	return err;
}

int out_mkdir(const char *dir)
{
	int err = as_user_enter();

	if (!err) {
		err = out_mkdir_as_user(dir);
		as_user_leave();
	}
	if (!err)
		return 0;
	out_err(dir, err);
	return err;
}

/* Where PATH's last component goes: its directory opened (O_PATH) and its name. */
static int out_split(struct out_file *o, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	size_t dl;

	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
		snprintf(o->name, sizeof(o->name), "%s", path);
	} else {
		dl = slash == path ? 1 : (size_t)(slash - path);
		if (dl >= sizeof(dir) || strlen(slash + 1) >= sizeof(o->name))
			return -ENAMETOOLONG;
		memcpy(dir, path, dl);
		dir[dl] = 0;
		snprintf(o->name, sizeof(o->name), "%s", slash + 1);
	}
	if (!o->name[0] || !strcmp(o->name, ".") || !strcmp(o->name, ".."))
		return -EISDIR;
	if (strlen(o->name) >= sizeof(o->name) - 1)
		return -ENAMETOOLONG;
	o->dirfd = out_dir_open(dir);
	return o->dirfd < 0 ? o->dirfd : 0;
}

/* A new temporary beside the output: O_EXCL never opens what is there, O_NOFOLLOW no link. */
static int out_create_tmp(struct out_file *o)
{
	for (int tries = 0; tries < 100; tries++) {
		unsigned int r = 0;
		int fd;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (unsigned int)getpid() * 2654435761u ^ (unsigned int)mono_ns();
		snprintf(o->tmp, sizeof(o->tmp), ".%.*s.%08x", (int)sizeof(o->tmp) - 12, o->name,
			 r);
		fd = openat(o->dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0666);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

static int out_open_as_user(struct out_file *o, const char *path)
{
	struct stat st;
	int fd, err = out_split(o, path);

	if (err)
		return err;
	if (fstatat(o->dirfd, o->name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (errno != ENOENT)
			return -errno;
		st.st_mode = 0;
	}
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		/*
		 * A reader at the other end, or /dev/null: there is nothing to replace. A FIFO
		 * without a reader fails now (ENXIO) rather than hang before the command starts.
		 */
		o->tmp[0] = 0;
		fd = openat(o->dirfd, o->name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return -errno;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) || fstat(fd, &st))
			err = -errno;
		else if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
			err = -EINVAL; /* swapped for something else since the fstatat */
		if (err) {
			close(fd);
			return err;
		}
	} else if (st.st_mode && !S_ISREG(st.st_mode)) {
		return -EINVAL;
	} else {
		fd = out_create_tmp(o);
		/*
		 * Replacing a file: it keeps its mode, and, written by plain root, its owner, as
		 * writing into it would have (under sudo the user creates it and owns it).
		 */
		if (fd >= 0 && st.st_mode &&
		    ((!geteuid() && !sudo_invoker(NULL, NULL) &&
		      fchown(fd, st.st_uid, st.st_gid)) ||
		     fchmod(fd, st.st_mode & 0777))) {
			err = -errno;
			close(fd);
			unlinkat(o->dirfd, o->tmp, 0);
			return err;
		}
	}
	if (fd < 0)
		return fd;
	o->f = fdopen(fd, "w");
	if (!o->f) {
		err = -errno;
		close(fd);
		if (o->tmp[0])
			unlinkat(o->dirfd, o->tmp, 0);
		return err;
	}
	return 0;
}

int out_open(struct out_file *o, const char *path)
{
	int err;

	memset(o, 0, sizeof(*o));
	o->path = path;
	o->dirfd = -1;
	if (!strcmp(path, "-")) {
		o->f = stdout;
		return 0;
	}
	err = as_user_enter();
	if (!err) {
		err = out_open_as_user(o, path);
		as_user_leave();
	}
	if (!err)
		return 0;
	if (o->dirfd >= 0)
		close(o->dirfd);
	o->dirfd = -1;
	o->f = NULL;
	out_err(path, err);
	return err;
}

void out_discard(struct out_file *o)
{
	if (!o->path)
		return; /* never opened */
	if (o->f && o->f != stdout)
		fclose(o->f);
	if (o->dirfd >= 0) {
		if (o->tmp[0] && !as_user_enter()) {
			unlinkat(o->dirfd, o->tmp, 0);
			as_user_leave();
		}
		close(o->dirfd);
	}
	o->f = NULL;
	o->dirfd = -1;
}

int out_close(struct out_file *o)
{
	int err = 0;

	if (!o->f)
		return 0;
	if (o->f == stdout) {
		o->f = NULL;
		if (!fflush(stdout))
			return 0;
		p_err("%s: %s", o->path, strerror(errno));
		return -1;
	}
	if (ferror(o->f))
		err = EIO;
	if (fclose(o->f) && !err)
		err = errno;
	o->f = NULL;
	if (!err && o->tmp[0]) {
		/* the rename, like the create, is the user's: a directory they cannot write fails */
		if (as_user_enter())
			err = EPERM;
		else {
			if (renameat(o->dirfd, o->tmp, o->dirfd, o->name))
				err = errno;
			as_user_leave();
		}
	}
	if (err) {
		out_err(o->path, -err);
		out_discard(o);
		return -1;
	}
	close(o->dirfd);
	o->dirfd = -1;
	return 0;
}
