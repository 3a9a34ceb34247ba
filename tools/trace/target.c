// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-trace record's target: which libmmsb (and libffi) it runs, found by reading ELF files and
 * /proc, never by running anything; and the command's process tree under ptrace, from its exec to
 * its release.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record.h"
#include "usdt_helpers.h"

/* A program linked with libmmsb.a carries the mmsb probes in the executable itself. */
static bool has_mmsb_probes(const char *path)
{
	struct usdt_note *v;
	int n = usdt_notes_read(path, &v);
	bool yes = false;

	for (int i = 0; i < n && !yes; i++)
		yes = !strcmp(v[i].provider, "mmsb");
	if (n >= 0)
		free(v);
	return yes;
}

/* Where libmmsb lives for PID: a mapped libmmsb.so*, or the executable if it carries the probes. */
int target_lib_of_pid(int pid, char *out, size_t len)
{
	char **objs, exe[64];
	int n = proc_mapped_objects(pid, &objs);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (strstr(objs[i], "libmmsb.so")) {
			snprintf(out, len, "%s", objs[i]);
			free_strv(objs, n);
			return 0;
		}
	free_strv(objs, n);
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	ssize_t k = readlink(exe, out, len - 1);

	if (k > 0) {
		out[k] = 0;
		if (has_mmsb_probes(out))
			return 0;
	}
	return -ENOENT;
}

/* The file execvp will run for NAME: a path as given, else the first executable on $PATH. */
static int find_program(const char *name, char *out)
{
	const char *path = getenv("PATH");
	char cand[PATH_MAX];

	if (strchr(name, '/'))
		return realpath(name, out) ? 0 : -errno;
	if (!path)
		path = "/bin:/usr/bin"; /* execvp's default */
	while (path) {
		size_t dl = strcspn(path, ":");
		struct stat st;

		/* AT_EACCESS: checked with the ids the command will run with (the user's) */
		snprintf(cand, sizeof(cand), "%.*s/%s", (int)(dl ? dl : 1), dl ? path : ".", name);
		if (!faccessat(AT_FDCWD, cand, X_OK, AT_EACCESS) && !stat(cand, &st) &&
		    S_ISREG(st.st_mode) && realpath(cand, out))
			return 0;
		path = path[dl] ? path + dl + 1 : NULL;
	}
	return -ENOENT;
}

/*
 * The libmmsb CMD will load, found without running it (it would run as root, and a static
 * program simply runs under the dynamic linker's trace mode): the executable itself when it
 * carries the probes, else what its DT_NEEDED chain resolves to, else (a script, an interpreter
 * that loads libmmsb at run time) the one this tool runs with. Called as the invoking user.
 */
int target_lib_of_cmd(char **argv, char *out, size_t len)
{
	char exe[PATH_MAX];
	const char *mine;

	if (!find_program(argv[0], exe)) {
		if (has_mmsb_probes(exe)) {
			snprintf(out, len, "%s", exe);
			return 0;
		}
		if (!elf_find_needed(exe, "libmmsb.so", out, len))
			return 0;
	}
	mine = own_libmmsb();
	if (mine && realpath(mine, out))
		return 0;
	return -ENOENT;
}

/*
 * The libffi a host calls libmmsb through: the one the target maps, else the system's (a ctypes
 * host loads it only when it imports ctypes; uprobes on its file catch it when it does).
 */
bool libffi_of(int pid, char *out, size_t len)
{
	char **objs;
	Dl_info info;
	void *h, *sym;
	int n = pid ? proc_mapped_objects(pid, &objs) : -1;

	for (int i = 0; i < n; i++)
		if (strstr(objs[i], "/libffi.so")) {
			snprintf(out, len, "%s", objs[i]);
			free_strv(objs, n);
			return true;
		}
	if (n >= 0)
		free_strv(objs, n);
	h = dlopen("libffi.so.8", RTLD_LAZY | RTLD_LOCAL);
	if (!h)
		h = dlopen("libffi.so.7", RTLD_LAZY | RTLD_LOCAL);
	sym = h ? dlsym(h, "ffi_call") : NULL;
	if (!sym || !dladdr(sym, &info) || !info.dli_fname || !realpath(info.dli_fname, out)) {
		if (h)
			dlclose(h);
		return false;
	}
	dlclose(h);
	return true;
}

/* Which libmmsb PID maps: 1 the one we attached to, 2 another (its path in other), 0 none. */
int maps_libmmsb(int pid, const char *lib, char *other, size_t len)
{
	char **objs;
	int n = proc_mapped_objects(pid, &objs), found = 0;

	for (int i = 0; i < n && found != 1; i++) {
		if (!strcmp(objs[i], lib)) {
			found = 1;
		} else if (strstr(objs[i], "libmmsb.so")) {
			snprintf(other, len, "%s", objs[i]);
			found = 2;
		}
	}
	if (n >= 0)
		free_strv(objs, n);
	return found;
}

static bool tree_add(struct tree *t, pid_t pid)
{
	for (int i = 0; i < t->n; i++)
		if (t->pids[i] == pid)
			return true;
	if (t->n == (int)(sizeof(t->pids) / sizeof(t->pids[0])))
		return false;
	t->pids[t->n++] = pid;
	return true;
}

static void tree_del(struct tree *t, pid_t pid)
{
	for (int i = 0; i < t->n; i++)
		if (t->pids[i] == pid) {
			t->pids[i] = t->pids[--t->n];
			return;
		}
}

/* A descendant about to exit or be let go: count it if it used libmmsb. */
static void tree_check(struct tree *t, pid_t pid)
{
	char other[PATH_MAX];

	if (pid != t->main && maps_libmmsb(pid, t->lib, other, sizeof(other)) && !t->untraced++)
		t->first_untraced = pid;
}

/* Resume a tracee from a stop as if it were not traced. */
static void tree_resume(pid_t pid, int status)
{
	int sig = WSTOPSIG(status), ev = status >> 16;

	if (ev == PTRACE_EVENT_STOP) {
		/* a group-stop (job control) stays stopped; a new child's first stop goes on */
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			ptrace(PTRACE_LISTEN, pid, NULL, NULL);
		else
			ptrace(PTRACE_CONT, pid, NULL, NULL);
	} else {
		/* an event (fork, exec, exit) carries no signal; a signal stop delivers its signal */
		ptrace(PTRACE_CONT, pid, NULL, (void *)(long)(ev ? 0 : sig));
	}
}

/* One ptrace stop or death in the tree; false when the main process is done with. */
bool tree_event(struct tree *t, pid_t w, int status)
{
	int ev = status >> 16;

	if (!WIFSTOPPED(status)) {
		if (w != t->main) {
			tree_del(t, w);
			return true;
		}
		t->main_status = status;
		t->main_gone = true;
		return false;
	}
	if (w != t->main && !tree_add(t, w)) {
		/* more descendants than we can follow: let this one go */
		ptrace(PTRACE_DETACH, w, NULL, NULL);
		return true;
	}
	if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
		unsigned long child;

		if (!ptrace(PTRACE_GETEVENTMSG, w, NULL, &child) && !tree_add(t, (pid_t)child))
			ptrace(PTRACE_DETACH, (pid_t)child, NULL, NULL);
		/* a vfork child shares its parent's memory until it execs: its exec says it */
		else if (ev == PTRACE_EVENT_FORK && t->on_fork)
			t->on_fork(t->ctx, (pid_t)child);
	} else if (ev == PTRACE_EVENT_EXEC && w != t->main && t->on_exec) {
		t->on_exec(t->ctx, w);
	} else if (ev == PTRACE_EVENT_EXIT && w == t->main) {
		t->main_exiting = true;
		return false; /* stays stopped: the caller reads its maps, then lets it go */
	} else if (ev == PTRACE_EVENT_EXIT) {
		if (t->on_exit)
			t->on_exit(t->ctx, w);
		tree_check(t, w);
	}
	tree_resume(w, status);
	return true;
}

/*
 * Stop PID wherever it runs and detach from it, passing on a signal it was stopped for. A tracee
 * that does not stop within two seconds (blocked in the kernel) is left to the kernel, which
 * detaches every tracee of ours when we exit: it goes on then.
 */
static void tree_detach(struct tree *t, pid_t pid)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL))
		return; /* gone already */
	for (int waited = 0; waited < 2000; waited++) {
		pid_t w = waitpid(pid, &status, __WALL | WNOHANG);

		if (w == 0) {
			usleep(1000);
			continue;
		}
		if (w != pid)
			return;
		if (!WIFSTOPPED(status)) {
			if (pid == t->main) {
				t->main_status = status;
				t->main_gone = true;
			}
			return;
		}
		if ((status >> 16) == PTRACE_EVENT_FORK || (status >> 16) == PTRACE_EVENT_VFORK) {
			unsigned long child;

			/* its new child is ours too until let go */
			if (!ptrace(PTRACE_GETEVENTMSG, pid, NULL, &child))
				tree_add(t, (pid_t)child);
		}
		tree_check(t, pid);
		ptrace(PTRACE_DETACH, pid, NULL,
		       (void *)(long)((status >> 16) ? 0 : WSTOPSIG(status)));
		return;
	}
}

/*
 * Let every process of the tree go on untraced, the newest first: a parent blocked in vfork()
 * reaches no stop until its child has been let go to exec. The main process last, unless it is
 * at its exit stop already.
 */
void tree_release(struct tree *t)
{
	if (t->main_exiting)
		ptrace(PTRACE_DETACH, t->main, NULL, NULL);
	while (t->n) {
		pid_t pid = t->pids[t->n - 1];

		tree_detach(t, pid);
		tree_del(t, pid);
	}
	if (!t->main_exiting && !t->main_gone)
		tree_detach(t, t->main);
}

/*
 * Start CMD seized, stopped at its exec: 0 and the pid, or the command's own exit status when it
 * could not start (126 or 127, as a shell says; the child printed why).
 */
int start_command(char **cmd, struct tree *t, bool as_root)
{
	int go[2], status;
	pid_t child;
	char b = 0;

	if (pipe2(go, O_CLOEXEC)) {
		p_err("pipe: %s", strerror(errno));
		return -1;
	}
	child = fork();
	if (child < 0) {
		p_err("fork: %s", strerror(errno));
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (!child) {
		int err;

		close(go[1]);
		/* no exec before the parent holds us: the exec must be a traced stop */
		if (read(go[0], &b, 1) != 1)
			_exit(126);
		/* under sudo the command is the user's, never root's (--as-root is refused there) */
		if (!as_root && (err = drop_to_invoker())) {
			fprintf(stderr, "%s: cannot run %s as the invoking user: %s\n", prog_name,
				cmd[0], strerror(-err));
			_exit(126);
		}
		execvp(cmd[0], cmd);
		err = errno;
		fprintf(stderr, "%s: %s: %s\n", prog_name, cmd[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	close(go[0]);
	t->main = child;
	if (ptrace(PTRACE_SEIZE, child, NULL,
		   (void *)(long)(PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_TRACEFORK |
				  PTRACE_O_TRACEVFORK))) {
		p_err("ptrace %s: %s", cmd[0], strerror(errno));
		close(go[1]); /* the child reads end of file and leaves without running CMD */
		waitpid(child, &status, 0);
		t->main_gone = true;
		return -1;
	}
	if (write(go[1], "g", 1) != 1) {
		p_err("start %s: %s", cmd[0], strerror(errno));
		close(go[1]);
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		t->main_gone = true;
		return -1;
	}
	close(go[1]);
	for (;;) {
		if (waitpid(child, &status, __WALL) != child) {
			if (errno == EINTR)
				continue;
			p_err("%s did not start: %s", cmd[0], strerror(errno));
			return -1;
		}
		if (!WIFSTOPPED(status)) {
			t->main_gone = true;
			if (WIFSIGNALED(status))
				return 128 + WTERMSIG(status);
			return WEXITSTATUS(status) ? WEXITSTATUS(status) : 126;
		}
		if ((status >> 16) == PTRACE_EVENT_EXEC)
			return 0;
		tree_resume(child, status);
	}
}

/* The command's end as a shell reports it: the status to exit with, a line for a signal. */
int command_status(const char *name, int status)
{
	int sig;

	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status))
			fprintf(stderr, "%s: %s exited with status %d\n", prog_name, name,
				WEXITSTATUS(status));
		return WEXITSTATUS(status);
	}
	sig = WTERMSIG(status);
	/* as bash: an interrupt or a broken pipe is what the user did, no news */
	if (sig != SIGINT && sig != SIGPIPE)
		fprintf(stderr, "%s: %s: %s%s\n", prog_name, name, strsignal(sig),
			WCOREDUMP(status) ? " (core dumped)" : "");
	return 128 + sig;
}
