/*
 * test_wal_loss.c: damage that would lose acknowledged records silently
 * is refused (-EUCLEAN, with a message naming the file and what is lost)
 * unless the operator accepts the loss (cut_corrupt, bookd
 * --accept-log-loss): a missing last segment (the one before it ended in
 * a roll-over), a segment shorter than its allocated size, zeros where
 * records were that DURABLE says were durable; and a version-1 log (no
 * trailer) still opening, a torn tail behind DURABLE still cut. And the
 * way past a record the core cannot apply: wal_cut_before, and the node's
 * recover_stop_before (bookd --recover-stop-before). The torn-tail rules
 * themselves are in test_wal.c.
 *
 * Exit 0 when every check passes. Seed: WAL_SEED or the time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "../../wal/wal.h"
#include "node.h"
#include "wal_test.h"

#define REC_SIZE 20000 /* six records to a 128 KiB segment */

static void config(struct wal_config *cfg, const char *dir, bool cut)
{
	wal_config_default(cfg);
	cfg->dir = dir;
	cfg->segment_size = SEG_SMALL;
	cfg->buffer_size = 1u << 20;
	cfg->cut_corrupt = cut;
}

/* Opens the log in dir (cut: with cut_corrupt). */
static wal *open_log(const char *dir, bool cut)
{
	struct wal_config cfg;

	config(&cfg, dir, cut);
	return wal_test_open(&cfg);
}

static void sub_dir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", root, name);
}

/* Appends count records keyed by their LSN, each durable before the
 * next (every one acknowledged). Returns the last LSN. */
static uint64_t append_acked(wal *w, uint64_t count)
{
	static uint8_t p[REC_SIZE];
	uint64_t i, lsn = 0;

	for (i = 0; i < count; i++) {
		fill(p, sizeof(p), wal_durable_lsn(w) + 1);
		REQUIRE(wal_append(w, p, sizeof(p), &lsn) == 0);
		REQUIRE(wal_wait_durable(w, lsn) == 0);
	}
	return lsn;
}

struct replay_count {
	uint64_t next, bad;
};

static int replay_fn(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	static uint8_t want[REC_SIZE];
	struct replay_count *c = ctx;

	fill(want, sizeof(want), lsn);
	if (lsn != c->next || size != REC_SIZE ||
	    memcmp(want, payload, size) != 0)
		c->bad++;
	c->next = lsn + 1;
	return 0;
}

/* Every record 1..last replays intact, and nothing after it. */
static void check_replay(wal *w, uint64_t last)
{
	struct replay_count c = { .next = 1 };

	CHECK_EQ(wal_replay(w, 1, replay_fn, &c), 0);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(c.next, last + 1);
	CHECK_EQ(wal_durable_lsn(w), last);
}

/* Opens the log in dir (cut: with cut_corrupt) and checks that it
 * replays records 1..last. */
static wal *open_replayed(const char *dir, bool cut, uint64_t last)
{
	wal *w = open_log(dir, cut);

	check_replay(w, last);
	return w;
}

/* A log of `records` acknowledged records over several segments. */
static void build(const char *dir, uint64_t records)
{
	wal *w;

	rm_rf(dir);
	w = open_log(dir, false);
	REQUIRE(wal_start(w) == 0);
	REQUIRE(append_acked(w, records) == records);
	wal_close(w);
}

/* dir becomes root/name, holding a log built as build does. */
static void build_sub(char *dir, size_t dir_size, const char *name,
		      uint64_t records)
{
	sub_dir(dir, dir_size, name);
	build(dir, records);
}

static int open_err(const char *dir, bool cut, char *err, size_t err_size)
{
	struct wal_config cfg;
	wal *w = NULL;
	int rc;

	config(&cfg, dir, cut);
	err[0] = '\0';
	rc = wal_open(&cfg, &w, err, err_size);
	if (rc == 0)
		wal_close(w);
	return rc;
}

/* ---- 3: a missing successor ---------------------------------------------- */

/* The last segment deleted: the one before it ended in a roll-over, so
 * the records of the deleted one were acknowledged. Refused; accepted
 * only with cut_corrupt, which then says what is lost and leaves a log
 * that opens cleanly and takes appends at the right LSN. */
static void test_missing_last_segment(void)
{
	char dir[128], path[256], err[512];
	uint64_t lsns[16], want;
	size_t n;
	wal *w;

	build_sub(dir, sizeof(dir), "missing-last", 20);
	n = list_segments(dir, lsns, 16);
	REQUIRE(n >= 3);
	seg_path(path, sizeof(path), dir, lsns[n - 1]);
	REQUIRE(unlink(path) == 0);

	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	CHECK(strstr(err, "lost") != NULL);
	CHECK(strstr(err, "accept-log-loss") != NULL);
	{
		char name[32];

		snprintf(name, sizeof(name), "%020" PRIu64 ".wal", lsns[n - 1]);
		CHECK(strstr(err, name) != NULL);
	}
	printf("  refused: %s\n", err);
	/* Refusing changed nothing: refused again. */
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);

	/* Accepted: the log ends where the remaining segments end. */
	want = lsns[n - 1] - 1;
	w = open_replayed(dir, true, want);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(append_acked(w, 8), want + 8); /* rolls over again */
	wal_close(w);
	CHECK(count_files(dir, "", ".cut") >= 1);
	w = open_replayed(dir, false, want + 8);
	wal_close(w);
	rm_rf(dir);
}

/* The last two segments deleted, or every segment after the first. */
static void test_missing_tail_segments(void)
{
	char dir[128], path[256], err[512];
	uint64_t lsns[16];
	size_t n, i;

	build_sub(dir, sizeof(dir), "missing-two", 24);
	n = list_segments(dir, lsns, 16);
	REQUIRE(n >= 4);
	for (i = n - 2; i < n; i++) {
		seg_path(path, sizeof(path), dir, lsns[i]);
		REQUIRE(unlink(path) == 0);
	}
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	for (i = 1; i < n - 2; i++) {
		seg_path(path, sizeof(path), dir, lsns[i]);
		REQUIRE(unlink(path) == 0);
	}
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	rm_rf(dir);
}

/* A log whose last segment was just started (no record in it yet) and a
 * log cleanly rolled over open as they are: a roll-over is not damage. */
static void test_rollover_clean(void)
{
	char dir[128];
	uint64_t lsns[16];
	size_t n, round;
	wal *w;

	/* The 7th record starts segment 2. */
	build_sub(dir, sizeof(dir), "clean", 7);
	n = list_segments(dir, lsns, 16);
	CHECK_EQ(n, 2);
	for (round = 0; round < 3; round++) {
		w = open_replayed(dir, false, 7 + round * 6);
		REQUIRE(wal_start(w) == 0);
		append_acked(w, 6);
		wal_close(w);
	}
	rm_rf(dir);
}

/* Rewrites a segment's header as format version 1 (no trailer). */
static void make_v1(const char *path)
{
	uint8_t h[64];
	uint32_t v = 1;
	uint64_t sum;
	int fd = open(path, O_RDWR);

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h));
	memcpy(h + 8, &v, 4);
	sum = XXH3_64bits(h, 56);
	memcpy(h + 56, &sum, 8);
	REQUIRE(pwrite(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h));
	close(fd);
}

/* Logs written before the trailer existed (format version 1) open, are
 * appended to and roll over. */
static void test_version1(void)
{
	char dir[128], path[256];
	uint64_t lsns[16];
	size_t n, i;
	wal *w;

	build_sub(dir, sizeof(dir), "v1", 9);
	n = list_segments(dir, lsns, 16);
	REQUIRE(n == 2);
	for (i = 0; i < n; i++) {
		seg_path(path, sizeof(path), dir, lsns[i]);
		/* A version-1 segment has no trailer: zero it. */
		{
			static const uint8_t z[64];
			int fd = open(path, O_RDWR);

			REQUIRE(fd >= 0);
			REQUIRE(pwrite(fd, z, 64, SEG_SMALL - 64) == 64);
			close(fd);
		}
		make_v1(path);
	}
	w = open_replayed(dir, false, 9);
	REQUIRE(wal_start(w) == 0);
	append_acked(w, 10);
	wal_close(w);
	w = open_replayed(dir, false, 19);
	wal_close(w);
	rm_rf(dir);
}

/* ---- 4: a truncated or zeroed segment ----------------------------------- */

static void truncate_to(const char *path, off_t size)
{
	REQUIRE(truncate(path, size) == 0);
}

static void zero_from(const char *path, off_t from, off_t to)
{
	static const uint8_t z[4096];
	int fd = open(path, O_RDWR);

	REQUIRE(fd >= 0);
	while (from < to) {
		size_t n = (size_t)(to - from) < sizeof(z) ? (size_t)(to - from)
							   : sizeof(z);

		REQUIRE(pwrite(fd, z, n, from) == (ssize_t)n);
		from += (off_t)n;
	}
	close(fd);
}

/* Where record lsn starts in its segment (records of REC_SIZE). */
static off_t rec_off(uint64_t seg_first, uint64_t lsn)
{
	return (off_t)(64 + (lsn - seg_first) * (32 + REC_SIZE));
}

/* A segment shorter than its allocated size was cut by something else
 * than a crash: refused, whether it is the last one or not and wherever
 * it was cut; cut_corrupt keeps the records before the cut. */
static void test_truncated(void)
{
	static const struct {
		bool last;
		int where; /* 0: to 0 bytes, 1: to the header, 2: mid-record,
			    * 3: after the records (only zeros and trailer) */
	} cases[] = { { true, 0 },  { true, 1 },  { true, 2 }, { true, 3 },
		      { false, 1 }, { false, 2 }, { false, 3 } };
	char dir[128], path[256], err[512];
	uint64_t lsns[16];
	size_t n, c;

	sub_dir(dir, sizeof(dir), "truncated");
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint64_t first, keep;
		off_t size;
		wal *w;

		build(dir, 20);
		n = list_segments(dir, lsns, 16);
		REQUIRE(n >= 3);
		first = cases[c].last ? lsns[n - 1] : lsns[n - 2];
		switch (cases[c].where) {
		case 0:
			size = 0;
			keep = first - 1;
			break;
		case 1:
			size = 64;
			keep = first - 1;
			break;
		case 2:
			size = rec_off(first, first + 1) + 100;
			keep = first;
			break;
		default:
			size = SEG_SMALL - 64;
			keep = 0;
			break;
		}
		if (keep == 0)
			keep = cases[c].last ? 20 : lsns[n - 1] - 1;
		seg_path(path, sizeof(path), dir, first);
		truncate_to(path, size);
		CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
		CHECK(strstr(err, cases[c].where == 0
					  ? "file shorter than a segment header"
					  : "it was truncated") != NULL);
		CHECK(strstr(err, "accept-log-loss") != NULL);
		if (c == 2)
			printf("  refused: %s\n", err);
		w = open_replayed(dir, true, keep);
		wal_close(w);
		w = open_replayed(dir, false, keep);
		REQUIRE(wal_start(w) == 0);
		CHECK_EQ(append_acked(w, 3), keep + 3);
		wal_close(w);
	}
	rm_rf(dir);
}

/* The first LSN of the last segment in dir; its path goes to path. */
static uint64_t last_segment(const char *dir, char *path, size_t size)
{
	uint64_t lsns[16];
	size_t n = list_segments(dir, lsns, 16);

	REQUIRE(n > 0);
	seg_path(path, size, dir, lsns[n - 1]);
	return lsns[n - 1];
}

/* Zeros where acknowledged records were, in the last segment (nothing
 * after them to prove them durable): DURABLE says they were. */
static void test_zeroed_tail(void)
{
	char dir[128], path[256], err[512], cmd[512];
	uint64_t first;
	wal *w;

	build_sub(dir, sizeof(dir), "zeroed", 20);
	first = last_segment(dir, path, sizeof(path));
	/* The last record only, then every record of the segment. */
	zero_from(path, rec_off(first, 20), rec_off(first, 21));
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "DURABLE says LSN 20 was durable") != NULL);
	CHECK(strstr(err, "records 20..20 were acknowledged and are lost") !=
	      NULL);
	printf("  refused: %s\n", err);
	zero_from(path, 64, rec_off(first, 21));
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "DURABLE says LSN 20") != NULL);
	w = open_replayed(dir, true, first - 1);
	wal_close(w);
	w = open_replayed(dir, false, first - 1);
	wal_close(w);

	/* Every segment gone after a snapshot-less log: refused too. */
	snprintf(cmd, sizeof(cmd), "rm -f %s/*.wal", dir);
	REQUIRE(system(cmd) == 0);
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "holds no segment") != NULL);
	w = open_log(dir, true);
	CHECK_EQ(wal_durable_lsn(w), 0);
	wal_close(w);
	rm_rf(dir);
}

/* The torn tail of a crash still cuts: DURABLE lags the log (it is
 * written after a sync, so never covers the unsynced last batch). Here
 * the DURABLE of a log of 19 records, then record 20 appended and torn. */
static void test_torn_tail_behind_checkpoint(void)
{
	char dir[128], path[256], ck[256], cmd[600];
	uint64_t first;
	wal *w;

	build_sub(dir, sizeof(dir), "torn-ck", 19);
	snprintf(ck, sizeof(ck), "%s/DURABLE", dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s.19", ck, ck);
	REQUIRE(system(cmd) == 0);
	w = open_log(dir, false);
	REQUIRE(wal_start(w) == 0);
	append_acked(w, 1);
	wal_close(w);
	snprintf(cmd, sizeof(cmd), "mv %s.19 %s", ck, ck);
	REQUIRE(system(cmd) == 0);
	first = last_segment(dir, path, sizeof(path));
	zero_from(path, rec_off(first, 20) + 40, rec_off(first, 21));
	w = open_replayed(dir, false, 19);
	wal_close(w);
	rm_rf(dir);
}

/* ---- 2: the operator's way past a record that does not apply ------------ */

/* wal_cut_before: the log ends before the LSN; what followed is set
 * aside (copied, renamed), nothing is overwritten by a second cut. */
static void test_cut_before(void)
{
	char dir[128], err[512];
	wal *w;

	/* Segments 1, 7, 13, 19. */
	build_sub(dir, sizeof(dir), "cut-before", 20);
	w = open_log(dir, false);
	CHECK_EQ(wal_cut_before(w, 21, err, sizeof(err)), 0); /* nothing */
	CHECK_EQ(wal_cut_before(w, 22, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "holds LSN 1..20") != NULL);
	CHECK_EQ(wal_cut_before(w, 9, err, sizeof(err)), 0);
	check_replay(w, 8);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(append_acked(w, 10), 18);
	wal_close(w);
	CHECK_EQ(count_files(dir, "", ".cut"), 3); /* 7 copied, 13 and 19 */
	w = open_replayed(dir, false, 18);
	/* The same cut again (the flag left set) would drop the records
	 * appended since, which took LSN 9 on: refused, nothing cut. */
	CHECK_EQ(wal_cut_before(w, 9, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "cut before LSN 9 already") != NULL);
	check_replay(w, 18);
	CHECK_EQ(count_files(dir, "", ".cut"), 3);
	/* At a segment's first record, and again: a new copy each time. */
	CHECK_EQ(wal_cut_before(w, 13, err, sizeof(err)), 0);
	check_replay(w, 12);
	wal_close(w);
	CHECK_EQ(count_files(dir, "", ".cut"), 4);
	{
		char path[256];
		struct stat st;

		snprintf(path, sizeof(path),
			 "%s/00000000000000000013.wal.2.cut", dir);
		CHECK(stat(path, &st) == 0); /* the first cut's copy stays */
	}
	w = open_replayed(dir, false, 12);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(append_acked(w, 1), 13);
	wal_close(w);
	rm_rf(dir);
}

static node *node_at(const char *dir, uint64_t stop_before, char *err,
		     size_t err_size)
{
	struct node_config cfg;
	node *n = NULL;

	node_config_default(&cfg);
	cfg.data_dir = dir;
	cfg.quiet = true;
	cfg.segment_size = SEG_SMALL;
	/* The smallest core: one shard and one port, room for 64 of each. */
	cfg.core.shard_count = cfg.core.port_count = 1;
	cfg.core.event_count_max = cfg.core.booking_count_max = 64;
	cfg.core.customer_count_max = cfg.core.idem_count_max = 64;
	cfg.core.ring_size = 64;
	cfg.recover_stop_before = stop_before;
	err[0] = '\0';
	if (node_open(&cfg, &n, err, err_size) != 0)
		return NULL;
	return n;
}

static int catalogue(node *n, enum core_op op, const char *name)
{
	struct core_req q = { .op = op, .now = INT64_C(1767225600000) };
	struct core_resp r;

	snprintf(q.u.cat.name, sizeof(q.u.cat.name), "%s", name);
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	q.u.cat.org_id = op == CORE_OP_ORG_CREATE ? 0 : 1;
	if (core_call(core_port_get(node_core(n), 0), &q, &r) != 0 ||
	    r.code != CORE_OK || node_wait_durable(n, r.lsn) != 0)
		return -1;
	return (int)r.lsn;
}

/* Whether the bytes occur in some *.cut file of dir. */
static bool cut_holds(const char *dir, const void *bytes, size_t size)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(dir);

	REQUIRE(d != NULL);
	while (!found && (de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char path[512];
		struct stat st;
		uint8_t *buf;
		int fd;

		if (l < 4 || strcmp(de->d_name + l - 4, ".cut") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		REQUIRE(fd >= 0 && fstat(fd, &st) == 0);
		buf = malloc((size_t)st.st_size);
		REQUIRE(buf != NULL);
		REQUIRE(read(fd, buf, (size_t)st.st_size) == st.st_size);
		found = memmem(buf, (size_t)st.st_size, bytes, size) != NULL;
		free(buf);
		close(fd);
	}
	closedir(d);
	return found;
}

/* A record the core cannot apply (here a hand-made malformed entry after
 * two good ones): every start fails naming it and the flag; the flag
 * starts with the records before it, sets it and the next one aside, and
 * the node goes on from there. */
static void test_recover_stop_before(void)
{
	static const char bad[] = "\xff\xfenot an entry of the core\x01";
	char dir[128], err[1024];
	uint64_t lsn;
	node *n;
	wal *w;

	sub_dir(dir, sizeof(dir), "stop-before");
	rm_rf(dir);
	n = node_at(dir, 0, err, sizeof(err));
	REQUIRE(n != NULL);
	CHECK_EQ(catalogue(n, CORE_OP_ORG_CREATE, "Studio"), 1);
	CHECK_EQ(catalogue(n, CORE_OP_LOCATION_CREATE, "Hall"), 2);
	node_close(n);
	w = open_log(dir, false);
	REQUIRE(wal_start(w) == 0);
	REQUIRE(wal_append(w, bad, sizeof(bad), &lsn) == 0 && lsn == 3);
	REQUIRE(wal_append(w, bad, 5, &lsn) == 0 && lsn == 4);
	REQUIRE(wal_wait_durable(w, 4) == 0);
	wal_close(w);

	CHECK(node_at(dir, 0, err, sizeof(err)) == NULL);
	printf("  refused: %s\n", err);
	CHECK(strstr(err, "log record LSN 3 (") != NULL);
	CHECK(strstr(err, "/00000000000000000001.wal+") != NULL);
	CHECK(strstr(err, "malformed entry") != NULL);
	CHECK(strstr(err, "--recover-stop-before 3") != NULL);
	CHECK(node_at(dir, 0, err, sizeof(err)) == NULL); /* every time */
	CHECK(node_at(dir, 9, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "holds LSN 1..4") != NULL);

	n = node_at(dir, 3, err, sizeof(err));
	CHECK(n != NULL);
	if (n == NULL) {
		printf("  node_open: %s\n", err);
		return;
	}
	CHECK_EQ(wal_durable_lsn(node_wal(n)), 2);
	/* The org of LSN 1 is there: a location in it is LSN 3 now. */
	CHECK_EQ(catalogue(n, CORE_OP_LOCATION_CREATE, "Annex"), 3);
	node_close(n);
	CHECK(cut_holds(dir, bad, sizeof(bad)));
	n = node_at(dir, 0, err, sizeof(err));
	CHECK(n != NULL);
	if (n != NULL) {
		CHECK_EQ(wal_durable_lsn(node_wal(n)), 3);
		node_close(n);
	}
	rm_rf(dir);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_loss");

	WAL_TEST_RUN(test_rollover_clean());
	WAL_TEST_RUN(test_missing_last_segment());
	WAL_TEST_RUN(test_missing_tail_segments());
	WAL_TEST_RUN(test_version1());
	WAL_TEST_RUN(test_truncated());
	WAL_TEST_RUN(test_zeroed_tail());
	WAL_TEST_RUN(test_torn_tail_behind_checkpoint());
	WAL_TEST_RUN(test_cut_before());
	WAL_TEST_RUN(test_recover_stop_before());
	return wal_test_end(seed);
}
