/*
 * test_wal.c: the write-ahead log: round trips, LSNs across reopen,
 * segment roll-over, concurrent appenders, torn tails at every byte, bit
 * flips, the lock file, replay rules. Snapshots and retention are in
 * test_wal_snapshot.c, injected faults and a full disk in test_wal_fault.c.
 *
 * Plain C; exit 0 when every check passes, 77 to skip. Seed: WAL_SEED or
 * the time, printed first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../wal/wal.h"
#include "wal_test.h"

/* Fatal setup failures: nothing after them makes sense. */

/* ---- Helpers ---------------------------------------------------------- */

static void sub_dir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", root, name);
}

/* A directory's files in memory, to restore it quickly between damages. */
struct image {
	size_t count;
	char names[16][64];
	uint8_t *data[16];
	size_t sizes[16];
};

static void image_load(struct image *im, const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	REQUIRE(d != NULL);
	memset(im, 0, sizeof(*im));
	while ((de = readdir(d)) != NULL) {
		char path[512];
		struct stat st;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		REQUIRE(im->count < 16);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		REQUIRE(fd >= 0 && fstat(fd, &st) == 0);
		REQUIRE(strlen(de->d_name) < 64);
		memcpy(im->names[im->count], de->d_name,
		       strlen(de->d_name) + 1);
		im->sizes[im->count] = (size_t)st.st_size;
		im->data[im->count] = malloc((size_t)st.st_size + 1);
		REQUIRE(im->data[im->count] != NULL);
		REQUIRE(read(fd, im->data[im->count], (size_t)st.st_size) ==
			st.st_size);
		close(fd);
		im->count++;
	}
	closedir(d);
}

static void image_restore(const struct image *im, const char *dir)
{
	struct dirent *de;
	size_t i;
	DIR *d;

	mkdir(dir, 0755);
	d = opendir(dir);
	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL) {
		char path[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		REQUIRE(unlink(path) == 0);
	}
	closedir(d);
	for (i = 0; i < im->count; i++) {
		char path[256];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, im->names[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		REQUIRE(fd >= 0);
		REQUIRE(write(fd, im->data[i], im->sizes[i]) ==
			(ssize_t)im->sizes[i]);
		close(fd);
	}
}

static void image_free(struct image *im)
{
	size_t i;

	for (i = 0; i < im->count; i++)
		free(im->data[i]);
	memset(im, 0, sizeof(*im));
}

static int saved_stderr = -1;

/* Recovery reports every cut on stderr: mute it in loops of thousands. */
static void quiet(bool on)
{
	if (getenv("WAL_TEST_VERBOSE") != NULL)
		return;
	if (on) {
		int fd = open("/dev/null", O_WRONLY);

		fflush(stderr);
		saved_stderr = dup(2);
		dup2(fd, 2);
		close(fd);
	} else {
		fflush(stderr);
		dup2(saved_stderr, 2);
		close(saved_stderr);
	}
}

static void config(struct wal_config *cfg, const char *dir, uint64_t seg)
{
	wal_config_default(cfg);
	cfg->dir = dir;
	cfg->segment_size = seg;
	cfg->buffer_size = 1u << 20;
}

static wal *open_ok(const struct wal_config *cfg)
{
	char err[256] = "";
	wal *w = NULL;
	int rc = wal_open(cfg, &w, err, sizeof(err));

	if (rc != 0)
		fprintf(stdout, "wal_open(%s): %d %s\n", cfg->dir, rc, err);
	REQUIRE(rc == 0);
	return w;
}

/* Deterministic payload for (lsn-independent) key k, size n; no zero
 * bytes, so zeroing any of it is a change. */
/* The expected log: record i (LSN i + 1) has sizes[i], key keys[i]. */
struct model {
	size_t count;
	uint32_t *sizes;
	uint64_t *keys;
};

static void model_push(struct model *m, uint32_t size, uint64_t key)
{
	m->sizes = realloc(m->sizes, (m->count + 1) * sizeof(*m->sizes));
	m->keys = realloc(m->keys, (m->count + 1) * sizeof(*m->keys));
	REQUIRE(m->sizes && m->keys);
	m->sizes[m->count] = size;
	m->keys[m->count] = key;
	m->count++;
}

static void model_free(struct model *m)
{
	free(m->sizes);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

static uint8_t payload_buf[WAL_RECORD_SIZE_MAX];

/* Appends a record of the model; wait: one batch per record. */
static uint64_t append_model(wal *w, struct model *m, uint32_t size,
			     uint64_t key, bool wait)
{
	uint64_t lsn = 0;

	fill(payload_buf, size, key);
	CHECK_EQ(wal_append(w, payload_buf, size, &lsn), 0);
	model_push(m, size, key);
	CHECK_EQ(lsn, m->count);
	if (wait)
		CHECK_EQ(wal_wait_durable(w, lsn), 0);
	return lsn;
}

struct replay_check {
	const struct model *m;
	uint64_t next;	  /* LSN expected next */
	uint64_t bad;	  /* records that differ from the model */
	uint64_t stop_at; /* return 1 at this LSN (0: never) */
};

static int replay_fn(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	static uint8_t want[WAL_RECORD_SIZE_MAX];
	struct replay_check *rc = ctx;

	if (lsn != rc->next || lsn == 0 || lsn > rc->m->count ||
	    size != rc->m->sizes[lsn - 1]) {
		rc->bad++;
	} else {
		fill(want, size, rc->m->keys[lsn - 1]);
		if (memcmp(want, payload, size) != 0)
			rc->bad++;
	}
	rc->next = lsn + 1;
	return lsn == rc->stop_at ? 1 : 0;
}

/* Replays from 1 and checks records 1..count match the model. */
static void check_replay(wal *w, const struct model *m, uint64_t count)
{
	struct replay_check rc = { .m = m, .next = 1 };

	CHECK_EQ(wal_replay(w, 1, replay_fn, &rc), 0);
	CHECK_EQ(rc.bad, 0);
	CHECK_EQ(rc.next, count + 1);
}

#define TRAILER 64 /* a segment's last bytes: its roll-over trailer */

static size_t rec_len(uint32_t size)
{
	return (WAL_RECORD_HEADER_SIZE + size + 7) & ~(size_t)7;
}

/* The damage these tests make to a closed log stands for a crash: the
 * last record is the unsynced batch. DURABLE (written at close) would say
 * it was durable, so it goes, as if the crash came before any checkpoint.
 * Damage behind DURABLE is test_wal_loss.c's. */
static void forget_durable(const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/DURABLE", dir);
	REQUIRE(unlink(path) == 0);
}

/* ---- Round trips ---------------------------------------------------------- */

static void test_round_trip(void)
{
	static const uint32_t sizes[] = {
		0,    1,    2,	  7,	 8,
		9,    15,   16,	  17,	 31,
		32,   33,   40,	  63,	 64,
		100,  255,  256,  400,	 1000,
		4095, 4096, 4097, 65535, WAL_RECORD_SIZE_MAX
	};
	struct model m = { 0 };
	struct wal_config cfg;
	char dir[128];
	uint64_t lsn = 0;
	size_t i;
	wal *w;
	int efd;

	sub_dir(dir, sizeof(dir), "round");
	config(&cfg, dir, WAL_SEGMENT_SIZE_DEFAULT);
	w = open_ok(&cfg);
	CHECK_EQ(wal_durable_lsn(w), 0);
	CHECK_EQ(wal_append(w, "x", 1, &lsn), -EINVAL); /* not started */
	CHECK_EQ(wal_start(w), 0);
	CHECK_EQ(wal_start(w), -EINVAL);
	CHECK_EQ(wal_append(w, payload_buf, WAL_RECORD_SIZE_MAX + 1, &lsn),
		 -EMSGSIZE);
	efd = wal_event_fd(w);
	CHECK(efd >= 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		append_model(w, &m, sizes[i], i, false);
	for (i = 0; i < 200; i++)
		append_model(w, &m, (uint32_t)(rnd() % 500), 1000 + i, false);
	CHECK_EQ(wal_wait_durable(w, m.count), 0);
	CHECK(wal_durable_lsn(w) >= m.count);
	CHECK_EQ(wal_wait_durable(w, m.count + 5), -EINVAL);
	{
		struct pollfd pfd = { .fd = efd, .events = POLLIN };
		uint64_t v = 0;

		CHECK_EQ(poll(&pfd, 1, 1000), 1);
		CHECK_EQ(read(efd, &v, sizeof(v)), (long)sizeof(v));
		CHECK(v >= 1);
	}
	CHECK_EQ(wal_error(w), 0);
	wal_close(w);

	w = open_ok(&cfg);
	CHECK_EQ(wal_durable_lsn(w), m.count);
	check_replay(w, &m, m.count);
	{
		/* From the middle, and stopping early. */
		struct replay_check rc = { .m = &m, .next = 20, .stop_at = 30 };

		CHECK_EQ(wal_replay(w, 20, replay_fn, &rc), 1);
		CHECK_EQ(rc.bad, 0);
		CHECK_EQ(rc.next, 31);
		rc = (struct replay_check){ .m = &m, .next = m.count + 1 };
		CHECK_EQ(wal_replay(w, m.count + 1, replay_fn, &rc), 0);
		CHECK_EQ(rc.next, m.count + 1);
	}
	wal_close(w);
	model_free(&m);
	rm_rf(dir);
}

/* LSNs continue across reopen, also after an empty run; both io modes and
 * both sync modes write the same log. */
static void test_reopen(void)
{
	struct model m = { 0 };
	struct wal_config cfg;
	char dir[128];
	int run, i;

	sub_dir(dir, sizeof(dir), "reopen");
	config(&cfg, dir, SEG_SMALL);
	for (run = 0; run < 8; run++) {
		wal *w;

		cfg.io = run % 2 ? WAL_IO_URING : WAL_IO_THREAD;
		cfg.sync = run % 4 >= 2 ? WAL_SYNC_WRITE : WAL_SYNC_FDATASYNC;
		w = open_ok(&cfg);
		CHECK_EQ(wal_durable_lsn(w), m.count);
		check_replay(w, &m, m.count);
		CHECK_EQ(wal_start(w), 0);
		for (i = 0; run != 3 && i < 300; i++)
			append_model(w, &m, (uint32_t)(rnd() % 2000), rnd(),
				     i % 50 == 0);
		if (m.count > 0)
			CHECK_EQ(wal_wait_durable(w, m.count), 0);
		wal_close(w);
	}
	CHECK(count_files(dir, "", ".wal") > 1);
	model_free(&m);
	rm_rf(dir);
}

/* Records of every size across many small segments, max-size records
 * included; the unused end of each segment stays zero. */
static void test_rollover(void)
{
	struct model m = { 0 };
	struct wal_config cfg;
	struct wal_stats st;
	char dir[128];
	int i;
	wal *w;

	sub_dir(dir, sizeof(dir), "roll");
	config(&cfg, dir, SEG_SMALL);
	w = open_ok(&cfg);
	CHECK_EQ(wal_start(w), 0);
	for (i = 0; i < 3000; i++) {
		uint32_t size = i % 97 == 0   ? WAL_RECORD_SIZE_MAX
				: i % 13 == 0 ? (uint32_t)(rnd() % 20000)
					      : (uint32_t)(rnd() % 300);

		append_model(w, &m, size, rnd(), i % 500 == 0);
	}
	CHECK_EQ(wal_wait_durable(w, m.count), 0);
	wal_stats(w, &st);
	CHECK(st.segment_count > 10);
	CHECK_EQ(st.durable_lsn, m.count);
	CHECK(st.batch_count >= 1);
	CHECK(st.sync_count >= st.batch_count);
	wal_close(w);
	CHECK(count_files(dir, "", ".wal") > 10);
	CHECK_EQ(count_files(dir, "", ".tmp"), 0);

	w = open_ok(&cfg);
	check_replay(w, &m, m.count);
	CHECK_EQ(wal_replay(w, 0, replay_fn,
			    &(struct replay_check){ .m = &m, .next = 1 }),
		 0);
	wal_close(w);

	/* A later run with bigger segments reads the small ones. */
	cfg.segment_size = 4 * SEG_SMALL;
	w = open_ok(&cfg);
	CHECK_EQ(wal_start(w), 0);
	for (i = 0; i < 100; i++)
		append_model(w, &m, 60000, rnd(), false);
	CHECK_EQ(wal_wait_durable(w, m.count), 0);
	wal_close(w);
	cfg.segment_size = SEG_SMALL;
	w = open_ok(&cfg);
	check_replay(w, &m, m.count);
	wal_close(w);
	model_free(&m);
	rm_rf(dir);
}

/* ---- Concurrency --------------------------------------------------------- */

#define CONC_THREADS 4
#define CONC_RECORDS 20000

struct conc_arg {
	wal *w;
	unsigned id;
	uint64_t lsns[CONC_RECORDS];
	int errors;
};

/* Payload: thread id, sequence number, then filler from both. */
static size_t conc_payload(uint8_t *p, unsigned id, uint32_t seq)
{
	size_t n = 8 + (id * 7919u + seq * 104729u) % 300;

	memcpy(p, &id, 4);
	memcpy(p + 4, &seq, 4);
	fill(p + 8, n - 8, (uint64_t)id << 32 | seq);
	return n;
}

static void *conc_main(void *argp)
{
	struct conc_arg *a = argp;
	uint8_t p[400];
	uint32_t seq;

	for (seq = 0; seq < CONC_RECORDS; seq++) {
		size_t n = conc_payload(p, a->id, seq);

		if (wal_append(a->w, p, n, &a->lsns[seq]) != 0)
			a->errors++;
		if (seq % 1000 == 999 &&
		    wal_wait_durable(a->w, a->lsns[seq]) != 0)
			a->errors++;
	}
	return NULL;
}

struct conc_seen {
	struct conc_arg *args;
	uint8_t *seen; /* [thread][seq] */
	uint64_t bad;
	uint64_t next;
};

static int conc_replay(void *ctx, uint64_t lsn, const void *payload,
		       size_t size)
{
	struct conc_seen *s = ctx;
	uint8_t want[400];
	unsigned id;
	uint32_t seq;

	if (lsn != s->next++ || size < 8) {
		s->bad++;
		return 0;
	}
	memcpy(&id, payload, 4);
	memcpy(&seq, (const uint8_t *)payload + 4, 4);
	if (id >= CONC_THREADS || seq >= CONC_RECORDS ||
	    s->seen[id * CONC_RECORDS + seq]++ != 0 ||
	    s->args[id].lsns[seq] != lsn ||
	    conc_payload(want, id, seq) != size ||
	    memcmp(want, payload, size) != 0)
		s->bad++;
	return 0;
}

static void test_concurrent(enum wal_io io, uint32_t buffer_size)
{
	static struct conc_arg args[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	struct conc_seen s = { .args = args, .next = 1 };
	struct wal_config cfg;
	char dir[128];
	unsigned i, j;
	wal *w;

	sub_dir(dir, sizeof(dir), "conc");
	config(&cfg, dir, 4 * SEG_SMALL);
	cfg.io = io;
	cfg.buffer_size = buffer_size;
	w = open_ok(&cfg);
	CHECK_EQ(wal_start(w), 0);
	for (i = 0; i < CONC_THREADS; i++) {
		args[i] = (struct conc_arg){ .w = w, .id = i };
		REQUIRE(pthread_create(&th[i], NULL, conc_main, &args[i]) == 0);
	}
	for (i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < CONC_THREADS; i++) {
		CHECK_EQ(args[i].errors, 0);
		for (j = 1; j < CONC_RECORDS; j++)
			if (args[i].lsns[j] <= args[i].lsns[j - 1])
				break;
		CHECK_EQ(j, CONC_RECORDS); /* increasing per thread */
	}
	CHECK_EQ(wal_wait_durable(w, CONC_THREADS * CONC_RECORDS), 0);
	wal_close(w);

	w = open_ok(&cfg);
	s.seen = calloc(CONC_THREADS * CONC_RECORDS, 1);
	REQUIRE(s.seen != NULL);
	CHECK_EQ(wal_replay(w, 1, conc_replay, &s), 0);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.next, CONC_THREADS * CONC_RECORDS + 1);
	for (i = 0; i < CONC_THREADS * CONC_RECORDS; i++)
		if (s.seen[i] != 1)
			break;
	CHECK_EQ(i, CONC_THREADS * CONC_RECORDS); /* each exactly once */
	free(s.seen);
	wal_close(w);
	rm_rf(dir);
}

/* ---- Torn tails -------------------------------------------------------------- */

enum build_mode {
	BUILD_WAIT_EACH, /* one batch per record: each proves the previous */
	BUILD_NO_WAIT,	 /* batches as they come */
	BUILD_UNSYNCED,	 /* WAL_SYNC_WRITE: no record proves another */
};

/* A 21-record log in one segment; the last record has last_size bytes
 * at *last_off. */
static void build_log(const char *dir, struct model *m, uint32_t last_size,
		      uint64_t *last_off, enum build_mode mode)
{
	struct wal_config cfg;
	size_t i;
	uint64_t off = WAL_SEGMENT_HEADER_SIZE;
	wal *w;

	rm_rf(dir);
	config(&cfg, dir, SEG_SMALL);
	if (mode == BUILD_UNSYNCED)
		cfg.sync = WAL_SYNC_WRITE;
	w = open_ok(&cfg);
	REQUIRE(wal_start(w) == 0);
	for (i = 0; i < 20; i++) {
		uint32_t size = (uint32_t)(8 + rnd() % 200);

		append_model(w, m, size, rnd(), mode == BUILD_WAIT_EACH);
		off += rec_len(size);
	}
	append_model(w, m, last_size, rnd(), true);
	*last_off = off;
	wal_close(w);
	forget_durable(dir);
}

/* Cuts the last record at every byte, zeroing the rest (a torn write:
 * open cuts the tail) or truncating the file (never a crash: refused,
 * cut with cut_corrupt); the earlier records replay, and the log takes
 * appends again at the right LSN. */
/* The byte sweeps below (torn tails, bit flips) open the log once per
 * position. By default each takes a third of the positions, which third
 * chosen by the seed (so runs cover them all over time), plus the first
 * and last 16 of the range swept (a record's, a segment's);
 * WAL_TEST_FULL=1 takes them all (minutes under a sanitizer). */
static unsigned sweep_phase = 3; /* 3: all positions */

static bool swept(uint64_t k, uint64_t len)
{
	return sweep_phase == 3 || k < 16 || k + 16 >= len ||
	       k % 3 == sweep_phase;
}

static void test_torn_tail(void)
{
	static const uint32_t last_sizes[] = { 0, 5, 64, 200, 3000 };
	struct wal_config cfg;
	char src[128], dir[128], path[256];
	struct image im;
	size_t s;

	sub_dir(src, sizeof(src), "torn-src");
	sub_dir(dir, sizeof(dir), "torn");
	config(&cfg, dir, SEG_SMALL);
	for (s = 0; s < sizeof(last_sizes) / sizeof(last_sizes[0]); s++) {
		struct model m = { 0 };
		uint64_t last_off, k, len = rec_len(last_sizes[s]);
		int mode;

		build_log(src, &m, last_sizes[s], &last_off,
			  (enum build_mode)(s % 3));
		image_load(&im, src);
		seg_path(path, sizeof(path), dir, 1);
		quiet(true);
		for (mode = 0; mode < 2; mode++) {
			for (k = 0; k < len; k++) {
				uint64_t keep = m.count - 1;
				wal *w;
				int fd;

				/* Truncation is refused wherever it cuts:
				 * a sample of the bytes is enough. */
				if (mode == 0 && k % 8 != 0 && k + 1 != len)
					continue;
				if (mode == 1 && !swept(k, len))
					continue;

				image_restore(&im, dir);
				fd = open(path, O_RDWR);
				REQUIRE(fd >= 0);
				if (mode == 0) {
					REQUIRE(ftruncate(fd, (off_t)(last_off +
								      k)) == 0);
				} else {
					static const uint8_t z[1 << 16];
					static uint8_t old[1 << 16];

					REQUIRE(pread(fd, old, len - k,
						      (off_t)(last_off + k)) ==
						(ssize_t)(len - k));
					REQUIRE(pwrite(fd, z, len - k,
						       (off_t)(last_off + k)) ==
						(ssize_t)(len - k));
					/* Zeroing what was zero (padding, the
					 * flags byte) changes nothing. */
					if (memcmp(old, z, len - k) == 0)
						keep = m.count;
				}
				close(fd);
				if (mode == 0) {
					/* A crash never shortens a segment:
					 * refused, cut when asked. */
					char err[256] = "";

					w = NULL;
					CHECK_EQ(wal_open(&cfg, &w, err,
							  sizeof(err)),
						 -EUCLEAN);
					CHECK(strstr(err, "it was truncated") !=
					      NULL);
					cfg.cut_corrupt = true;
					w = open_ok(&cfg);
					cfg.cut_corrupt = false;
				} else {
					w = open_ok(&cfg);
				}
				CHECK_EQ(wal_durable_lsn(w), keep);
				check_replay(w, &m, keep);
				if (k % 3 == 0) {
					/* Appends go on from the cut. */
					struct stat st;

					struct model m2 = { 0 };
					uint64_t i;

					for (i = 0; i < keep; i++)
						model_push(&m2, m.sizes[i],
							   m.keys[i]);
					REQUIRE(wal_start(w) == 0);
					append_model(w, &m2, 77, 4242, true);
					wal_close(w);
					CHECK(stat(path, &st) == 0 &&
					      st.st_size == SEG_SMALL);
					w = open_ok(&cfg);
					CHECK_EQ(wal_durable_lsn(w), keep + 1);
					check_replay(w, &m2, keep + 1);
					model_free(&m2);
				}
				wal_close(w);
			}
		}
		quiet(false);
		image_free(&im);
		model_free(&m);
	}
	rm_rf(src);
	rm_rf(dir);
}

/* Garbage and valid-looking but unsynced records after the tail are the
 * torn last batch: cut. A record written after the failing one was
 * durable proves corruption: -EUCLEAN. */
static void test_tail_rules(void)
{
	struct model m = { 0 };
	struct wal_config cfg;
	char dir[128], path[256], err[256];
	uint64_t last_off;
	uint8_t rec[256];
	wal *w = NULL;
	int fd;

	sub_dir(dir, sizeof(dir), "rules");
	config(&cfg, dir, SEG_SMALL);
	/* No record proves another durable. */
	build_log(dir, &m, 100, &last_off, BUILD_UNSYNCED);
	seg_path(path, sizeof(path), dir, 1);
	fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	/* Lose record 20's first page-worth: zero its header. */
	{
		uint64_t off20 = last_off;
		size_t i;

		for (i = m.count - 2; i < m.count - 1; i++)
			off20 -= rec_len(m.sizes[i]);
		REQUIRE(pread(fd, rec, 8, (off_t)off20) == 8);
		memset(rec, 0, 32);
		REQUIRE(pwrite(fd, rec, 32, (off_t)off20) == 32);
	}
	close(fd);
	w = open_ok(&cfg); /* record 21 is valid after it, but unsynced */
	CHECK_EQ(wal_durable_lsn(w), m.count - 2);
	check_replay(w, &m, m.count - 2);
	wal_close(w);

	/* Now records one batch each: a damaged middle record is proven
	 * durable by the next one. */
	model_free(&m);
	build_log(dir, &m, 100, &last_off, BUILD_WAIT_EACH);
	fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	{
		uint64_t off = WAL_SEGMENT_HEADER_SIZE + rec_len(m.sizes[0]) +
			       rec_len(m.sizes[1]) + 35; /* payload */
		uint8_t b;

		REQUIRE(pread(fd, &b, 1, (off_t)off) == 1);
		b ^= 0x10;
		REQUIRE(pwrite(fd, &b, 1, (off_t)off) == 1);
	}
	close(fd);
	err[0] = '\0';
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EUCLEAN);
	CHECK(w == NULL);
	CHECK(strstr(err, "corruption before the tail at") != NULL);
	CHECK(strstr(err, "00000000000000000001.wal+") != NULL);
	CHECK(strstr(err, "cut_corrupt") != NULL);
	cfg.cut_corrupt = true;
	quiet(true);
	w = open_ok(&cfg);
	quiet(false);
	CHECK_EQ(wal_durable_lsn(w), 2);
	check_replay(w, &m, 2);
	wal_close(w);
	CHECK_EQ(count_files(dir, "", ".cut"), 1);
	cfg.cut_corrupt = false;
	w = open_ok(&cfg); /* the cut log is clean now */
	CHECK_EQ(wal_durable_lsn(w), 2);
	wal_close(w);
	model_free(&m);
	rm_rf(dir);
}

/* ---- Bit flips ---------------------------------------------------------------- */

struct layout {
	uint64_t seg_lsn[8]; /* first LSN of each segment */
	size_t seg_count;
	uint64_t *rec_seg, *rec_off; /* per record (index lsn - 1) */
};

/* Three or four small segments of records, each appended after the previous was
 * durable (so every record proves the ones before it durable). */
static void build_flip_log(const char *dir, struct model *m, struct layout *l)
{
	struct wal_config cfg;
	uint64_t off = WAL_SEGMENT_HEADER_SIZE;
	size_t i;
	wal *w;

	rm_rf(dir);
	config(&cfg, dir, SEG_SMALL);
	w = open_ok(&cfg);
	REQUIRE(wal_start(w) == 0);
	memset(l, 0, sizeof(*l));
	l->seg_lsn[l->seg_count++] = 1;
	for (i = 0; i < 35; i++) {
		/* Two big records and some small ones fill a segment; the
		 * last record is a small one. */
		uint32_t size =
			i % 6 == 5 ? 60000 : (uint32_t)(20 + rnd() % 100);

		if (off + rec_len(size) > SEG_SMALL - TRAILER) {
			l->seg_lsn[l->seg_count++] = m->count + 1;
			off = WAL_SEGMENT_HEADER_SIZE;
		}
		l->rec_seg =
			realloc(l->rec_seg, (m->count + 1) * sizeof(uint64_t));
		l->rec_off =
			realloc(l->rec_off, (m->count + 1) * sizeof(uint64_t));
		l->rec_seg[m->count] = l->seg_count - 1;
		l->rec_off[m->count] = off;
		off += rec_len(size);
		append_model(w, m, size, rnd(), true);
	}
	wal_close(w);
	forget_durable(dir);
	REQUIRE(l->seg_count >= 3 && l->seg_count <= 8);
	REQUIRE(count_files(dir, "", ".wal") == l->seg_count);
}

/* What opening must do after flipping a bit at (seg, off). Returns the
 * LSN count kept, or -1 for -EUCLEAN (then *cut_keep is the count kept
 * with cut_corrupt). */
static long long flip_expect(const struct model *m, const struct layout *l,
			     size_t seg, uint64_t off, long long *cut_keep)
{
	size_t i;

	if (off < WAL_SEGMENT_HEADER_SIZE) {
		*cut_keep = (long long)l->seg_lsn[seg] - 1;
		return -1;
	}
	if (off >= SEG_SMALL - TRAILER) {
		/* A damaged trailer: harmless while its successor follows;
		 * in the last segment it claims a roll-over whose successor
		 * is missing. Cutting keeps every record. */
		if (seg + 1 < l->seg_count)
			return (long long)m->count;
		*cut_keep = (long long)m->count;
		return -1;
	}
	for (i = 0; i < m->count; i++) {
		if (l->rec_seg[i] != seg || off < l->rec_off[i] ||
		    off >= l->rec_off[i] + rec_len(m->sizes[i]))
			continue;
		if (i + 1 == m->count)
			return (long long)m->count - 1; /* torn last record */
		*cut_keep = (long long)i;
		return -1;
	}
	return (long long)m->count; /* unused zero space */
}

/* Whether to flip a bit at off: all of every header and of the last
 * record, the edges and some of other payloads, some zero space. */
static bool flip_here(const struct model *m, const struct layout *l, size_t seg,
		      uint64_t off, uint64_t used)
{
	size_t i;

	if (off >= SEG_SMALL - TRAILER)
		return rnd() % 8 == 0; /* the trailer */
	if (off < WAL_SEGMENT_HEADER_SIZE || off < used + 64)
		;
	else
		return rnd() % 2048 == 0;
	for (i = 0; i < m->count; i++) {
		uint64_t start = l->rec_off[i], len = rec_len(m->sizes[i]);

		if (l->rec_seg[i] != seg || off < start || off >= start + len)
			continue;
		return i + 1 == m->count || off < start + 48 ||
		       off >= start + len - 16 || rnd() % 64 == 0;
	}
	return true; /* headers, and just after the records */
}

static void test_bit_flips(void)
{
	struct model m = { 0 };
	struct layout l;
	struct wal_config cfg;
	char src[128], dir[128], path[256];
	unsigned long positions = 0, euclean = 0;
	struct image im;
	size_t seg;

	sub_dir(src, sizeof(src), "flip-src");
	sub_dir(dir, sizeof(dir), "flip");
	build_flip_log(src, &m, &l);
	image_load(&im, src);
	config(&cfg, dir, SEG_SMALL);
	quiet(true);
	for (seg = 0; seg < l.seg_count; seg++) {
		uint64_t used = WAL_SEGMENT_HEADER_SIZE, off;
		size_t i;

		for (i = 0; i < m.count; i++)
			if (l.rec_seg[i] == seg)
				used = l.rec_off[i] + rec_len(m.sizes[i]);
		for (off = 0; off < SEG_SMALL; off++) {
			long long cut_keep = -2, keep;
			char err[256];
			wal *w = NULL;
			uint8_t b;
			int fd, rc;

			if (!flip_here(&m, &l, seg, off, used) ||
			    !swept(off, SEG_SMALL))
				continue;
			keep = flip_expect(&m, &l, seg, off, &cut_keep);
			image_restore(&im, dir);
			seg_path(path, sizeof(path), dir, l.seg_lsn[seg]);
			fd = open(path, O_RDWR);
			REQUIRE(fd >= 0);
			REQUIRE(pread(fd, &b, 1, (off_t)off) == 1);
			b ^= (uint8_t)(1u << (rnd() % 8));
			REQUIRE(pwrite(fd, &b, 1, (off_t)off) == 1);
			close(fd);
			positions++;

			cfg.cut_corrupt = false;
			rc = wal_open(&cfg, &w, err, sizeof(err));
			if (keep >= 0) {
				CHECK_EQ(rc, 0);
				if (rc != 0) {
					fprintf(stdout,
						"  seg %zu off %" PRIu64
						": %s\n",
						seg, off, err);
					continue;
				}
				CHECK_EQ(wal_durable_lsn(w), keep);
				check_replay(w, &m, (uint64_t)keep);
				wal_close(w);
				continue;
			}
			euclean++;
			CHECK_EQ(rc, -EUCLEAN);
			if (rc == 0) {
				fprintf(stdout,
					"  seg %zu off %" PRIu64 ": opened\n",
					seg, off);
				wal_close(w);
				continue;
			}
			if (euclean % 5 != 0)
				continue;
			cfg.cut_corrupt = true;
			w = open_ok(&cfg);
			CHECK_EQ(wal_durable_lsn(w), cut_keep);
			check_replay(w, &m, (uint64_t)cut_keep);
			wal_close(w);
			CHECK(count_files(dir, "", ".cut") >= 1);
			cfg.cut_corrupt = false;
			w = open_ok(&cfg);
			CHECK_EQ(wal_durable_lsn(w), cut_keep);
			wal_close(w);
		}
	}
	quiet(false);
	printf("wal: %lu bit flips, %lu refused\n", positions, euclean);
	CHECK(positions > 1000);
	CHECK(euclean > 500);
	image_free(&im);
	free(l.rec_seg);
	free(l.rec_off);
	model_free(&m);
	rm_rf(src);
	rm_rf(dir);
}

/* A missing middle segment is corruption too: the one before it ended in
 * a roll-over to it. */
static void test_missing_segment(void)
{
	struct model m = { 0 };
	struct layout l;
	struct wal_config cfg;
	char dir[128], path[256], err[256];
	wal *w = NULL;

	sub_dir(dir, sizeof(dir), "missing");
	build_flip_log(dir, &m, &l);
	seg_path(path, sizeof(path), dir, l.seg_lsn[1]);
	REQUIRE(unlink(path) == 0);
	config(&cfg, dir, SEG_SMALL);
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	free(l.rec_seg);
	free(l.rec_off);
	model_free(&m);
	rm_rf(dir);
}

/* ---- kill -9 ------------------------------------------------------------- */

/* Payload keyed by LSN, so any prefix of the log can be checked. */
struct lsn_check {
	uint64_t next, bad;
};

static int lsn_check_fn(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct lsn_check *c = ctx;
	uint8_t want[512];

	if (lsn != c->next || size != 8 + lsn % 300) {
		c->bad++;
	} else {
		memcpy(want, &lsn, 8);
		fill(want + 8, size - 8, lsn);
		if (memcmp(want, p, size) != 0)
			c->bad++;
	}
	c->next = lsn + 1;
	return 0;
}

/* A child appends and publishes what it saw durable; it is killed at a
 * random moment; every LSN it saw durable must replay, intact. */
static void test_kill9(void)
{
	struct wal_config cfg;
	char dir[128];
	int round;

	sub_dir(dir, sizeof(dir), "kill9");
	config(&cfg, dir, SEG_SMALL);
	for (round = 0; round < 12; round++) {
		_Atomic uint64_t *acked =
			mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		struct lsn_check c = { .next = 1 };
		pid_t pid;
		int status;
		wal *w;

		REQUIRE(acked != MAP_FAILED);
		atomic_store(acked, 0);
		pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			uint8_t p[512];
			uint64_t lsn;

			quiet(true);
			w = open_ok(&cfg);
			if (wal_start(w) != 0)
				_exit(1);
			/* One appender: the payload is keyed by the LSN it
			 * will get, which is the durable end + 1. */
			lsn = wal_durable_lsn(w);
			for (;;) {
				uint64_t want = lsn + 1, got = 0;

				memcpy(p, &want, 8);
				fill(p + 8, want % 300, want);
				if (wal_append(w, p, 8 + want % 300, &got) !=
					    0 ||
				    got != want)
					_exit(2);
				lsn = got;
				if (lsn % 7 == 0) {
					if (wal_wait_durable(w, lsn) != 0)
						_exit(3);
					atomic_store(acked, lsn);
				}
			}
		}
		{
			struct timespec ts = { 0,
					       (long)(rnd() % 150) * 1000000 };

			nanosleep(&ts, NULL);
		}
		kill(pid, SIGKILL);
		REQUIRE(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status));
		quiet(true);
		w = open_ok(&cfg);
		quiet(false);
		CHECK(wal_durable_lsn(w) >= atomic_load(acked));
		CHECK_EQ(wal_replay(w, 1, lsn_check_fn, &c), 0);
		CHECK_EQ(c.bad, 0);
		CHECK(c.next - 1 >= atomic_load(acked));
		wal_close(w);
		munmap((void *)acked, 4096);
	}
	rm_rf(dir);
}

/* ---- The lock ------------------------------------------------------------- */

static void test_lock(void)
{
	struct wal_config cfg;
	char dir[128], err[256];
	wal *w, *w2 = NULL;
	pid_t pid;
	int status;

	sub_dir(dir, sizeof(dir), "lock");
	config(&cfg, dir, SEG_SMALL);
	w = open_ok(&cfg);
	/* Same process, second open: OFD locks conflict. */
	CHECK_EQ(wal_open(&cfg, &w2, err, sizeof(err)), -EBUSY);
	CHECK(w2 == NULL);
	CHECK(strstr(err, "locked by pid") != NULL);
	/* Another process. */
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		wal *w3 = NULL;
		int rc = wal_open(&cfg, &w3, err, sizeof(err));

		_exit(rc == -EBUSY ? 0 : 1);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	wal_close(w);
	/* Released by close. */
	w = open_ok(&cfg);
	wal_close(w);
	rm_rf(dir);
}

/* Bad configuration gets a message, not a crash. */
static void test_config(void)
{
	struct wal_config cfg;
	char err[256] = "";
	wal *w = NULL;

	wal_config_default(&cfg);
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "directory") != NULL);
	cfg.dir = "/tmp";
	cfg.segment_size = 1000;
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "segment_size") != NULL);
	wal_config_default(&cfg);
	cfg.dir = "/tmp";
	cfg.buffer_size = 4096;
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EINVAL);
	cfg.buffer_size = WAL_BUFFER_SIZE_DEFAULT;
	cfg.dir = "/nonexistent-parent/x/y";
	CHECK(wal_open(&cfg, &w, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "cannot create") != NULL);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal");
	const char *full = getenv("WAL_TEST_FULL");

	if (full == NULL || strcmp(full, "1") != 0)
		sweep_phase = (unsigned)(seed % 3);

	WAL_TEST_RUN(test_config());
	WAL_TEST_RUN(test_round_trip());
	WAL_TEST_RUN(test_reopen());
	WAL_TEST_RUN(test_rollover());
	WAL_TEST_RUN(test_concurrent(WAL_IO_THREAD, 1u << 20));
	/* The minimal buffer: appenders find it full and wait. */
	WAL_TEST_RUN(test_concurrent(WAL_IO_THREAD, WAL_BUFFER_SIZE_MIN));
	WAL_TEST_RUN(test_concurrent(WAL_IO_URING, 1u << 20));
	WAL_TEST_RUN(test_torn_tail());
	WAL_TEST_RUN(test_tail_rules());
	WAL_TEST_RUN(test_bit_flips());
	WAL_TEST_RUN(test_missing_segment());
	WAL_TEST_RUN(test_kill9());
	WAL_TEST_RUN(test_lock());

	return wal_test_end(seed);
}
