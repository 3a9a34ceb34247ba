// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mmsb-tlog: inspect, verify, recover and convert mmsb transaction logs and checkpoints.
 * Exit status: 0 ok, 1 failure (including a bad file), 2 usage.
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <mmsb/mmsb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmsb_version.h"
#include "tool_helpers.h"

const char *argp_program_version = "mmsb-tlog " MMSB_TOOLS_VERSION;
const char *argp_program_bug_address = "https://github.com/mmsb/mmsb/issues";

static const struct argp_option json_opt[] = {
	{ "json", 'j', NULL, 0, "Print JSON (json-c) instead of text", 0 },
	{},
};

struct common_args {
	bool json;
	const char *files[2];
	int n_files, want_files;
};

static error_t parse_common(int key, char *arg, struct argp_state *st)
{
	struct common_args *a = st->input;

	switch (key) {
	case 'j':
		a->json = true;
		break;
	case ARGP_KEY_ARG:
		if (a->n_files >= a->want_files)
			argp_error(st, "unexpected argument '%s'", arg);
		a->files[a->n_files++] = arg;
		break;
	case ARGP_KEY_END:
		if (a->n_files < a->want_files)
			argp_error(st, "missing FILE");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* argp names the command in its messages: make it "mmsb-tlog VERB". */
static int parse_verb(const struct argp *ap, int argc, char **argv, void *input)
{
	static char name[64];

	snprintf(name, sizeof(name), "%s %s", prog_name, argv[0]);
	argv[0] = name;
	return argp_parse(ap, argc, argv, 0, NULL, input);
}

static void print_json(struct json_object *o)
{
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static const char *kind_name(enum mmsb_log_kind k)
{
	switch (k) {
	case MMSB_REC_DELTA:
		return "DELTA";
	case MMSB_REC_PAGE_CREATE:
		return "PAGE_CREATE";
	case MMSB_REC_PAGE_FREE:
		return "PAGE_FREE";
	}
	return "?";
}

static const char *loc_name(int loc)
{
	static const char *const names[] = { "cpu", "gpu", "unified" };

	return loc >= 0 && loc < 3 ? names[loc] : "?";
}

/* The one explanation of a bad frame, shared by summary, dump and verify. */
/*
 * Why a file is not a log, in words: the library says EINVAL for a FIFO or a device (it never opens
 * one to wait on it) and TRUNCATED for an empty file, which are true but do not say what is wrong.
 */
static const char *file_error(const char *path, int err)
{
	struct stat st;

	if (!stat(path, &st) && !S_ISREG(st.st_mode))
		return "not a regular file (a log or checkpoint is one)";
	if (!stat(path, &st) && !st.st_size)
		return "empty file: not a log (it has no header)";
	return mmsb_strerror(err);
}

static void report_bad(const char *path, int err, uint64_t frame, uint64_t off)
{
	p_err("%s: frame %" PRIu64 " at offset %" PRIu64 ": %s%s", path, frame, off,
	      mmsb_strerror(err),
	      err == -MMSB_ERR_TORN ? " (a torn tail: 'mmsb-tlog recover' cuts it)" : "");
}

/* ---- summary ---- */

static int do_summary(int argc, char **argv)
{
	static const struct argp ap = {
		.options = json_opt,
		.parser = parse_common,
		.args_doc = "FILE",
		.doc = "Summarise a log: version, records by kind, LSN and time range, and the original's "
		       "byte estimate.\v"
		       "EXAMPLES:\n"
		       "  mmsb-tlog summary app.tlog\n"
		       "  mmsb-tlog summary --json app.tlog | jq .deltas",
	};
	struct common_args a = { .want_files = 1 };
	struct mmsb_log_summary s;
	char t0[48], t1[48];
	int err;

	if (parse_verb(&ap, argc, argv, &a))
		return EXIT_USAGE;
	err = mmsb_log_summarize(a.files[0], &s);
	if (err && !s.version) {
		p_err("%s: %s", a.files[0], file_error(a.files[0], err));
		return EXIT_FAIL;
	}
	if (a.json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(a.files[0]));
		json_object_object_add(o, "version", json_object_new_int(s.version));
		json_object_object_add(o, "log_id", json_object_new_uint64(s.log_id));
		json_object_object_add(o, "records", json_object_new_uint64(s.records));
		json_object_object_add(o, "deltas", json_object_new_uint64(s.deltas));
		json_object_object_add(o, "page_creates", json_object_new_uint64(s.page_creates));
		json_object_object_add(o, "page_frees", json_object_new_uint64(s.page_frees));
		json_object_object_add(o, "total_bytes", json_object_new_uint64(s.total_bytes));
		json_object_object_add(o, "last_epoch", json_object_new_uint64(s.last_epoch));
		json_object_object_add(o, "first_lsn", json_object_new_uint64(s.first_lsn));
		json_object_object_add(o, "last_lsn", json_object_new_uint64(s.last_lsn));
		json_object_object_add(o, "first_timestamp_ns", json_object_new_uint64(s.first_ts));
		json_object_object_add(o, "last_timestamp_ns", json_object_new_uint64(s.last_ts));
		json_object_object_add(o, "file_size", json_object_new_uint64(s.file_size));
		json_object_object_add(o, "valid_bytes", json_object_new_uint64(s.valid_bytes));
		json_object_object_add(o, "error",
				       err ? json_object_new_string(mmsb_errname(err)) : NULL);
		print_json(o);
	} else {
		fmt_time_ns(s.first_ts, t0, sizeof(t0));
		fmt_time_ns(s.last_ts, t1, sizeof(t1));
		printf("file:         %s\n", a.files[0]);
		printf("version:      %d%s\n", s.version,
		       s.version < 3 ? " (original format)" : "");
		if (s.version == 3)
			printf("log id:       %016" PRIx64 "\n", s.log_id);
		printf("records:      %" PRIu64 " (%" PRIu64 " deltas, %" PRIu64
		       " page creates, %" PRIu64 " page frees)\n",
		       s.records, s.deltas, s.page_creates, s.page_frees);
		if (s.version == 3)
			printf("lsn:          %" PRIu64 " .. %" PRIu64 "\n", s.first_lsn,
			       s.last_lsn);
		printf("time:         %s .. %s\n", t0, t1);
		printf("last epoch:   %u\n", s.last_epoch);
		printf("delta bytes:  %" PRIu64 " (mask + payload + 32 + intent per delta)\n",
		       s.total_bytes);
		printf("file size:    %" PRIu64 " bytes, %" PRIu64 " valid\n", s.file_size,
		       s.valid_bytes);
	}
	if (err) {
		report_bad(a.files[0], err, s.bad_frame, s.bad_offset);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- dump ---- */

struct dump_args {
	struct common_args c;
	bool hex;
	uint64_t page, limit;
};

static error_t parse_dump(int key, char *arg, struct argp_state *st)
{
	struct dump_args *a = st->input;

	switch (key) {
	case 'x':
		a->hex = true;
		break;
	case 'p':
		if (parse_u64(arg, 1, UINT64_MAX, &a->page))
			argp_error(st, "invalid page id '%s'", arg);
		break;
	case 'n':
		if (parse_u64(arg, 1, UINT64_MAX, &a->limit))
			argp_error(st, "invalid record count '%s'", arg);
		break;
	default:
		st->input = &a->c;
		error_t e = parse_common(key, arg, st);

		st->input = a;
		return e;
	}
	return 0;
}

static void hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 3 < cap; i++)
		k += (size_t)snprintf(out + k, cap - k, "%02x", p[i]);
	if (k + 3 >= cap && cap > 4)
		strcpy(out + cap - 4, "...");
}

static struct json_object *record_json(const struct mmsb_log_record *rec, bool with_hex)
{
	struct json_object *o = json_object_new_object();
	const struct mmsb_delta *d = rec->delta;

	json_object_object_add(o, "offset", json_object_new_uint64(rec->offset));
	json_object_object_add(o, "kind", json_object_new_string(kind_name(rec->kind)));
	json_object_object_add(o, "lsn", json_object_new_uint64(rec->lsn));
	json_object_object_add(o, "timestamp_ns", json_object_new_uint64(rec->timestamp));
	json_object_object_add(o, "page", json_object_new_uint64(rec->page_id));
	if (rec->kind == MMSB_REC_PAGE_CREATE) {
		json_object_object_add(o, "size", json_object_new_uint64(rec->page_size));
		json_object_object_add(o, "location",
				       json_object_new_string(loc_name(rec->location)));
	}
	if (!d)
		return o;
	json_object_object_add(o, "delta_id", json_object_new_uint64(mmsb_delta_id(d)));
	json_object_object_add(o, "epoch", json_object_new_uint64(mmsb_delta_epoch(d)));
	json_object_object_add(o, "sparse", json_object_new_boolean(mmsb_delta_is_sparse(d)));
	json_object_object_add(o, "mask_len", json_object_new_uint64(mmsb_delta_mask_len(d)));
	json_object_object_add(o, "mask_set", json_object_new_uint64(mmsb_delta_mask_count(d)));
	json_object_object_add(o, "payload_len", json_object_new_uint64(mmsb_delta_payload_len(d)));
	json_object_object_add(o, "source", json_object_new_string(mmsb_delta_source(d)));
	json_object_object_add(o, "intent",
			       mmsb_delta_intent(d) ? json_object_new_string(mmsb_delta_intent(d)) :
						      NULL);
	if (with_hex) {
		size_t n = mmsb_delta_payload_len(d);
		char *h = malloc(2 * n + 4);

		if (h) {
			hex(mmsb_delta_payload(d), n, h, 2 * n + 4);
			json_object_object_add(o, "payload", json_object_new_string(h));
			free(h);
		}
	}
	return o;
}

static void record_text(const struct mmsb_log_record *rec, bool with_hex)
{
	const struct mmsb_delta *d = rec->delta;
	char ts[48];

	fmt_time_ns(rec->timestamp, ts, sizeof(ts));
	printf("%8" PRIu64 "  lsn %-6" PRIu64 " %-11s page %-6" PRIu64 " %s", rec->offset, rec->lsn,
	       kind_name(rec->kind), rec->page_id, ts);
	if (rec->kind == MMSB_REC_PAGE_CREATE)
		printf("  size %" PRIu64 " %s", rec->page_size, loc_name(rec->location));
	if (d) {
		printf("  id %" PRIu64 " epoch %u %s mask %zu/%zu payload %zu source %s",
		       mmsb_delta_id(d), mmsb_delta_epoch(d),
		       mmsb_delta_is_sparse(d) ? "sparse" : "dense", mmsb_delta_mask_count(d),
		       mmsb_delta_mask_len(d), mmsb_delta_payload_len(d), mmsb_delta_source(d));
		if (mmsb_delta_intent(d))
			printf(" intent %s", mmsb_delta_intent(d));
		if (with_hex) {
			char h[100];

			hex(mmsb_delta_payload(d), mmsb_delta_payload_len(d), h, sizeof(h));
			printf("\n          %s", h);
		}
	}
	printf("\n");
}

static int do_dump(int argc, char **argv)
{
	static const struct argp_option opts[] = {
		{ "json", 'j', NULL, 0, "Print a JSON array of records", 0 },
		{ "hex", 'x', NULL, 0, "Show payload bytes in hex (text: the first 48)", 0 },
		{ "page", 'p', "ID", 0, "Only records for page ID", 0 },
		{ "limit", 'n', "N", 0, "Stop after N records", 0 },
		{},
	};
	static const struct argp ap = {
		.options = opts,
		.parser = parse_dump,
		.args_doc = "FILE",
		.doc = "Print every record of a log (any version), oldest first.\v"
		       "Text columns: byte offset, LSN, kind, page, timestamp, then per kind: size and location, "
		       "or delta id, epoch, encoding, set/total mask entries, payload bytes, source.\n\n"
		       "EXAMPLES:\n"
		       "  mmsb-tlog dump app.tlog\n"
		       "  mmsb-tlog dump -p 3 -x app.tlog     # page 3 only, with payload bytes\n"
		       "  mmsb-tlog dump --json -n 10 app.tlog",
	};
	struct dump_args a = { .c.want_files = 1 };
	struct json_object *arr = NULL;
	struct mmsb_log_reader *r;
	struct mmsb_log_record rec;
	uint64_t shown = 0;
	int err;

	if (parse_verb(&ap, argc, argv, &a))
		return EXIT_USAGE;
	r = mmsb_log_reader_open(a.c.files[0]);
	if (!r) {
		p_err("%s: %s", a.c.files[0], file_error(a.c.files[0], -errno));
		return EXIT_FAIL;
	}
	if (a.c.json)
		arr = json_object_new_array();
	while ((err = mmsb_log_reader_next(r, &rec)) > 0) {
		if (a.page && rec.page_id != a.page)
			continue;
		if (a.c.json)
			json_object_array_add(arr, record_json(&rec, a.hex));
		else
			record_text(&rec, a.hex);
		if (a.limit && ++shown == a.limit)
			break;
	}
	if (arr)
		print_json(arr);
	if (err < 0)
		report_bad(a.c.files[0], err, mmsb_log_reader_frame(r), mmsb_log_reader_offset(r));
	mmsb_log_reader_close(r);
	return err < 0 ? EXIT_FAIL : EXIT_OK;
}

/* ---- verify / recover / convert ---- */

static int do_verify(int argc, char **argv)
{
	static const struct argp ap = {
		.options = json_opt,
		.parser = parse_common,
		.args_doc = "FILE",
		.doc = "Check every frame of a log (lengths, CRC32C, LSN sequence, field rules). Exits 1 "
		       "naming the first bad frame and its byte offset; never changes the file.\v"
		       "EXAMPLES:\n"
		       "  mmsb-tlog verify app.tlog && echo intact",
	};
	struct common_args a = { .want_files = 1 };
	struct mmsb_log_summary s;
	int err;

	if (parse_verb(&ap, argc, argv, &a))
		return EXIT_USAGE;
	err = mmsb_log_summarize(a.files[0], &s);
	if (a.json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(a.files[0]));
		json_object_object_add(o, "ok", json_object_new_boolean(!err));
		json_object_object_add(o, "version", json_object_new_int(s.version));
		json_object_object_add(o, "records", json_object_new_uint64(s.records));
		if (err) {
			json_object_object_add(o, "error",
					       json_object_new_string(mmsb_errname(err)));
			json_object_object_add(o, "message",
					       json_object_new_string(mmsb_strerror(err)));
			if (s.version) {
				json_object_object_add(o, "bad_frame",
						       json_object_new_uint64(s.bad_frame));
				json_object_object_add(o, "bad_offset",
						       json_object_new_uint64(s.bad_offset));
			}
		}
		print_json(o);
	}
	if (err) {
		if (s.version)
			report_bad(a.files[0], err, s.bad_frame, s.bad_offset);
		else
			p_err("%s: %s", a.files[0], file_error(a.files[0], err));
		return EXIT_FAIL;
	}
	if (!a.json)
		printf("%s: ok: version %d, %" PRIu64 " records, %" PRIu64 " bytes\n", a.files[0],
		       s.version, s.records, s.file_size);
	return EXIT_OK;
}

static int do_recover(int argc, char **argv)
{
	static const struct argp ap = {
		.parser = parse_common,
		.args_doc = "FILE",
		.doc = "Cut a torn tail left by a crash: the bytes from the first bad frame on are saved to "
		       "FILE.torn (or FILE.torn.N) and synced, then the log is truncated to its last good "
		       "frame; a header torn at creation is set aside and replaced by a fresh one. Anything "
		       "else verify rejects (damage followed by good frames, a header failing its CRC, a bad "
		       "magic or version, an empty or non-regular file) is not a torn tail: nothing is "
		       "changed and the exit status is 1.\v"
		       "EXAMPLES:\n"
		       "  mmsb-tlog recover app.tlog",
	};
	struct common_args a = { .want_files = 1 };
	uint64_t cut = 0;
	int err;

	if (parse_verb(&ap, argc, argv, &a))
		return EXIT_USAGE;
	err = mmsb_log_recover(a.files[0], &cut);
	if (err) {
		struct mmsb_log_summary s;
		/* the reader could not get past the header: the damage is there */
		bool header = mmsb_log_summarize(a.files[0], &s) && !s.version;

		p_err("%s: %s%s", a.files[0], file_error(a.files[0], err),
		      err != -MMSB_ERR_CHECKSUM && err != -MMSB_ERR_CORRUPT ? "; nothing changed" :
		      header ? " in the log header (not a torn tail); nothing changed" :
			       " inside the log (not a torn tail); nothing changed");
		return EXIT_FAIL;
	}
	if (cut)
		printf("%s: cut %" PRIu64
		       " torn bytes; they are kept in %s.torn (.torn.N if that existed)\n",
		       a.files[0], cut, a.files[0]);
	else
		printf("%s: clean, nothing to cut\n", a.files[0]);
	return EXIT_OK;
}

static int do_convert(int argc, char **argv)
{
	static const struct argp ap = {
		.parser = parse_common,
		.args_doc = "IN OUT",
		.doc = "Rewrite a log of any version (the original's v1 and v2 included) as a new v3 log: "
		       "checksummed frames, LSNs from 1, the original timestamps kept. OUT is written "
		       "atomically.\v"
		       "EXAMPLES:\n"
		       "  mmsb-tlog convert mmsb.tlog mmsb-v3.tlog",
	};
	struct common_args a = { .want_files = 2 };
	int err;

	if (parse_verb(&ap, argc, argv, &a))
		return EXIT_USAGE;
	err = mmsb_log_convert(a.files[0], a.files[1]);
	if (err) {
		p_err("%s -> %s: %s", a.files[0], a.files[1], mmsb_strerror(err));
		return EXIT_FAIL;
	}
	printf("%s -> %s: converted\n", a.files[0], a.files[1]);
	return EXIT_OK;
}

/* ---- checkpoints ---- */

static int ckpt(int argc, char **argv, bool info_only)
{
	static const struct argp ap_info = {
		.options = json_opt,
		.parser = parse_common,
		.args_doc = "FILE",
		.doc = "Describe a checkpoint (v3, or the original's MMSBSNAP v2) after validating all of "
		       "it.\v"
		       "EXAMPLES:\n"
		       "  mmsb-tlog ckpt-info state.ckpt",
	};
	static const struct argp ap_verify = {
		.options = json_opt,
		.parser = parse_common,
		.args_doc = "FILE",
		.doc = "Validate a checkpoint completely: magic, version, every length, every CRC32C, ids, "
		       "edges and acyclicity. Exit 1 on the first problem.\v"
		       "EXAMPLES:\n"
		       "  mmsb-tlog ckpt-verify state.ckpt && cp state.ckpt backup/",
	};
	struct common_args a = { .want_files = 1 };
	struct mmsb_checkpoint_info info;
	int err;

	if (parse_verb(info_only ? &ap_info : &ap_verify, argc, argv, &a))
		return EXIT_USAGE;
	err = mmsb_checkpoint_verify(a.files[0], &info);
	if (err) {
		p_err("%s: %s", a.files[0], file_error(a.files[0], err));
		return EXIT_FAIL;
	}
	if (a.json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(a.files[0]));
		json_object_object_add(o, "version", json_object_new_int(info.version));
		json_object_object_add(o, "pages", json_object_new_uint64(info.pages));
		json_object_object_add(o, "page_bytes", json_object_new_uint64(info.page_bytes));
		json_object_object_add(o, "edges", json_object_new_uint64(info.edges));
		json_object_object_add(o, "next_page_id",
				       json_object_new_uint64(info.next_page_id));
		json_object_object_add(o, "next_delta_id",
				       json_object_new_uint64(info.next_delta_id));
		json_object_object_add(o, "log_lsn", json_object_new_uint64(info.log_lsn));
		json_object_object_add(o, "log_id", json_object_new_uint64(info.log_id));
		json_object_object_add(o, "file_size", json_object_new_uint64(info.file_size));
		print_json(o);
	} else if (info_only) {
		printf("file:          %s\n", a.files[0]);
		printf("version:       %d%s\n", info.version,
		       info.version < 3 ? " (original format)" : "");
		printf("pages:         %" PRIu64 " (%" PRIu64 " bytes)\n", info.pages,
		       info.page_bytes);
		printf("edges:         %" PRIu64 "\n", info.edges);
		printf("next page id:  %" PRIu64 "\n", info.next_page_id);
		printf("next delta id: %" PRIu64 "\n", info.next_delta_id);
		if (info.version == 3)
			printf("log:           %016" PRIx64 " up to lsn %" PRIu64 "\n", info.log_id,
			       info.log_lsn);
		printf("file size:     %" PRIu64 " bytes\n", info.file_size);
	} else {
		printf("%s: ok: version %d, %" PRIu64 " pages, %" PRIu64 " edges\n", a.files[0],
		       info.version, info.pages, info.edges);
	}
	return EXIT_OK;
}

static int do_ckpt_info(int argc, char **argv)
{
	return ckpt(argc, argv, true);
}

static int do_ckpt_verify(int argc, char **argv)
{
	return ckpt(argc, argv, false);
}

static int do_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "summary", do_summary, "records by kind, LSN and time range, sizes" },
	{ "dump", do_dump, "every record, as text or JSON" },
	{ "verify", do_verify, "check every frame; exit 1 naming the first bad one" },
	{ "recover", do_recover, "cut a torn tail, keeping the cut bytes in FILE.torn" },
	{ "convert", do_convert, "rewrite a v1/v2/v3 log as v3" },
	{ "ckpt-info", do_ckpt_info, "describe a checkpoint" },
	{ "ckpt-verify", do_ckpt_verify, "validate a checkpoint completely" },
	{ "help", do_help, "this text, or 'help COMMAND'" },
	{},
};

static int do_help(int argc, char **argv)
{
	if (argc > 1) {
		char *hv[] = { argv[1], (char *)"--help", NULL };

		/* the command's own --help exits 0 from inside argp */
		return cmd_select(cmds, 2, hv, do_help);
	}
	printf("Usage: %s COMMAND [OPTIONS] FILE...\n\n"
	       "Inspect, verify, recover and convert mmsb transaction logs and checkpoints.\n\n"
	       "Commands:\n",
	       prog_name);
	for (const struct cmd *c = cmds; c->name; c++)
		printf("  %-12s %s\n", c->name, c->summary);
	printf("\nCommands match by unique prefix ('mmsb-tlog su' is summary).\n"
	       "Exit status: 0 ok, 1 failure or a bad file, 2 usage.\n\n"
	       "Examples:\n"
	       "  %s verify app.tlog || %s recover app.tlog\n"
	       "  %s dump --json app.tlog > app.json\n"
	       "  %s help dump\n",
	       prog_name, prog_name, prog_name, prog_name);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	prog_name = "mmsb-tlog";
	argp_err_exit_status = EXIT_USAGE;
	if (argc < 2) {
		do_help(0, NULL);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return finish_stdout(do_help(0, NULL));
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("%s (libmmsb %s)\n", argp_program_version, mmsb_version());
		return finish_stdout(EXIT_OK);
	}
	return finish_stdout(cmd_select(cmds, argc - 1, argv + 1, do_help));
}
