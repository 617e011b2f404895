/*
 * fuzz_waldir.c: libFuzzer target for log recovery over a whole data
 * directory (wal_open + wal_replay, wal/wal.c, wal/wal_recover.c): where
 * fuzz_wal gives it one segment of any bytes, this one starts from a real
 * log of several segments and its DURABLE checkpoint, written once by the
 * real writer (24 records of 20,000 bytes in 128 KiB segments), and damages
 * it the ways an operator, a copy or a disk would: segments deleted, cut
 * short, swapped, renamed, bits flipped, bytes zeroed or overwritten,
 * DURABLE deleted or damaged.
 *
 * Input: byte 0 bit 0: cut_corrupt (bookd --accept-log-loss); then steps of
 * 4 bytes (what | segment << 3, where (2 bytes, scaled to the file), value).
 *
 * Checked, besides no crash (ASan):
 *  - every record replayed is one that was written: LSNs in order without
 *    a gap, each payload byte for byte the one appended with its LSN
 *    (damaged records are never applied);
 *  - nothing acknowledged is lost silently: every record was durable
 *    (acknowledged) before the log closed, so with DURABLE intact and
 *    without cut_corrupt, a log that opens and replays from LSN 1 without
 *    an error replays all of them (docs/wal.md "Recovery": damage is
 *    refused with -EUCLEAN, a missing start with -ENODATA).
 * FUZZ_SEED_DIR=<dir> writes seed damage lists there and exits
 * (tests/fuzz/gen_corpus.py: corpus/waldir). The directories live under
 * /dev/shm when it exists; the log's lines below errors are not written.
 */
#include "evlog.h"
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGMENT_SIZE WAL_SEGMENT_SIZE_MIN
#define RECORDS 24
#define RECORD_SIZE 20000
#define FILES_MAX 16

struct file {
	char name[64];
	uint8_t *p;
	size_t n;
	bool gone;
};

static char g_tmpl[64], g_dir[64];
static struct file g_orig[FILES_MAX];
static unsigned g_count;

static void payload(uint64_t lsn, uint8_t *out)
{
	for (size_t i = 0; i < RECORD_SIZE; i++)
		out[i] = (uint8_t)(lsn * 131 + i * 7 + (i >> 8));
	memcpy(out, &lsn, sizeof(lsn));
}

static void make_dir(char *dir, const char *name)
{
	snprintf(dir, 64, "%s/%s.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", name);
	if (!mkdtemp(dir))
		abort();
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->name,
		      ((const struct file *)b)->name);
}

/* The real log, written once, read into g_orig (sorted by name). */
static void make_log(void)
{
	static uint8_t rec[RECORD_SIZE];
	struct wal_config cfg;
	char err[256], path[192];
	uint64_t lsn = 0;
	struct dirent *e;
	DIR *d;
	wal *w;

	make_dir(g_tmpl, "fuzz_waldir_log");
	wal_config_default(&cfg);
	cfg.dir = g_tmpl;
	cfg.segment_size = SEGMENT_SIZE;
	if (wal_open(&cfg, &w, err, sizeof(err)) != 0 || wal_start(w) != 0)
		abort();
	for (uint64_t i = 1; i <= RECORDS; i++) {
		payload(i, rec);
		if (wal_append(w, rec, sizeof(rec), &lsn) != 0 || lsn != i)
			abort();
	}
	if (wal_wait_durable(w, lsn) != 0)
		abort();
	wal_close(w);
	d = opendir(g_tmpl);
	if (!d)
		abort();
	while ((e = readdir(d))) {
		struct file *f;
		struct stat st;
		FILE *fp;

		if (e->d_name[0] == '.' || !strcmp(e->d_name, "LOCK"))
			continue;
		if (g_count == FILES_MAX)
			abort();
		f = &g_orig[g_count++];
		snprintf(f->name, sizeof(f->name), "%s", e->d_name);
		snprintf(path, sizeof(path), "%s/%s", g_tmpl, e->d_name);
		if (stat(path, &st) != 0)
			abort();
		f->n = (size_t)st.st_size;
		f->p = malloc(f->n ? f->n : 1);
		fp = fopen(path, "rb");
		if (!f->p || !fp || fread(f->p, 1, f->n, fp) != f->n)
			abort();
		fclose(fp);
	}
	closedir(d);
	qsort(g_orig, g_count, sizeof(g_orig[0]), by_name);
}

static bool is_segment(const struct file *f)
{
	size_t n = strlen(f->name);

	return n > 4 && !strcmp(f->name + n - 4, ".wal");
}

struct check {
	uint64_t next; /* the LSN expected next */
	uint8_t want[RECORD_SIZE];
};

static int replayed(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct check *k = ctx;

	if (k->next && lsn != k->next)
		abort(); /* a gap, or out of order */
	if (lsn < 1 || lsn > RECORDS || size != RECORD_SIZE)
		abort(); /* a record never written */
	payload(lsn, k->want);
	if (memcmp(p, k->want, size) != 0)
		abort(); /* damaged bytes applied */
	k->next = lsn + 1;
	return 0;
}

static void clean(void)
{
	struct dirent *e;
	char path[192];
	DIR *d = opendir(g_dir);

	if (!d)
		abort();
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", g_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

/* One damage step on the files (segments: the .wal ones, in LSN order). */
static void damage(struct file *fs, unsigned n, const uint8_t s[4],
		   bool *durable_intact)
{
	unsigned seg[FILES_MAX], nseg = 0, i;
	struct file *f, *durable = NULL;
	size_t at;

	for (i = 0; i < n; i++) {
		if (is_segment(&fs[i]) && !fs[i].gone)
			seg[nseg++] = i;
		if (!strcmp(fs[i].name, "DURABLE") && !fs[i].gone)
			durable = &fs[i];
	}
	if ((s[0] & 7) == 6) { /* DURABLE: deleted, or a bit flipped */
		if (!durable)
			return;
		*durable_intact = false;
		if (s[3] & 1)
			durable->gone = true;
		else if (durable->n)
			durable->p[(s[1] | s[2] << 8) % durable->n] ^=
				(uint8_t)(1u << (s[3] >> 1 & 7));
		return;
	}
	if (nseg == 0)
		return;
	f = &fs[seg[(s[0] >> 3) % nseg]];
	at = f->n ? ((size_t)(s[1] | s[2] << 8) * f->n) >> 16 : 0;
	switch (s[0] & 7) {
	case 0: f->gone = true; break;
	case 1: f->n = at; break; /* cut short */
	case 2: {		  /* contents swapped with the next one */
		struct file *g = &fs[seg[((s[0] >> 3) + 1) % nseg]];
		uint8_t *p = f->p;
		size_t m = f->n;

		f->p = g->p;
		f->n = g->n;
		g->p = p;
		g->n = m;
		break;
	}
	case 3:
		if (f->n)
			f->p[at] ^= (uint8_t)(1u << (s[3] & 7));
		break;
	case 4: /* 512 bytes zeroed (a lost write) */
		memset(f->p + at, 0, f->n - at < 512 ? f->n - at : 512);
		break;
	case 5: /* renamed to another first LSN */
		snprintf(f->name, sizeof(f->name), "%020" PRIu64 ".wal",
			 (uint64_t)strtoull(f->name, NULL, 10) + s[3] % 8 + 1);
		break;
	default:
		if (f->n)
			f->p[at] = s[3];
		break;
	}
}

/* Removes a directory this run made and what is in it. */
static void remove_dir(const char *dir)
{
	struct dirent *e;
	char path[192];
	DIR *d = dir[0] ? opendir(dir) : NULL;

	if (!d)
		return;
	while ((e = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.')
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void remove_dirs(void)
{
	remove_dir(g_dir);
	remove_dir(g_tmpl);
}

static void seeds(const char *dir)
{
	static const uint8_t lists[][9] = {
		{ 0 },			      /* intact */
		{ 0, 0 | 3 << 3, 0, 0, 0 },   /* the last segment deleted */
		{ 0, 1 | 1 << 3, 0, 128, 0 }, /* a segment cut in half */
		{ 0, 2 | 1 << 3, 0, 0, 0 },   /* two segments swapped */
		{ 0, 3 | 2 << 3, 0, 64, 5 },  /* a bit flipped */
		{ 0, 4 | 3 << 3, 0, 16, 0 },  /* the last records zeroed */
		{ 0, 5 | 3 << 3, 0, 0, 1 },   /* the last segment renamed */
		{ 0, 6, 0, 0, 1, 4 | 3 << 3, 0, 16, 0 }, /* no DURABLE */
		{ 1, 0 | 1 << 3, 0, 0, 0 }, /* cut_corrupt, one deleted */
	};
	char path[512];
	FILE *fp;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		snprintf(path, sizeof(path), "%s/damage-%zu", dir, i);
		fp = fopen(path, "wb");
		if (!fp)
			abort();
		fwrite(lists[i], 1, i == 0 ? 1 : i == 7 ? 9 : 5, fp);
		fclose(fp);
	}
	/* longer lists (libFuzzer grows inputs from the longest seed): eight
	 * and sixteen steps of every kind over every segment, harmless ones
	 * (a byte overwritten with itself is no damage) among them */
	for (int len = 8; len <= 16; len += 8) {
		uint8_t many[1 + 16 * 4];

		many[0] = (uint8_t)(len == 16);
		for (int i = 0; i < len; i++) {
			many[1 + 4 * i] = (uint8_t)((i % 8) | (i / 2 % 4) << 3);
			many[2 + 4 * i] = (uint8_t)(i * 37);
			many[3 + 4 * i] = (uint8_t)(i * 29 + 64);
			many[4 + 4 * i] = (uint8_t)(i * 11);
		}
		snprintf(path, sizeof(path), "%s/damage-steps-%d", dir, len);
		fp = fopen(path, "wb");
		if (!fp)
			abort();
		fwrite(many, 1, 1 + 4 * (size_t)len, fp);
		fclose(fp);
	}
	fflush(stdout);
	_exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct file fs[FILES_MAX];
	/* not malloc'ed a run: ASan maps and unmaps large blocks each time */
	static uint8_t pool[FILES_MAX][SEGMENT_SIZE];
	static struct check k;
	struct wal_config cfg;
	bool durable_intact = true;
	char err[512], path[192];
	wal *w;
	int rc;

	if (!g_dir[0]) {
		if (evlog_setup("logfmt", "error", err, sizeof(err)) != 0)
			abort();
		if (getenv("FUZZ_SEED_DIR"))
			seeds(getenv("FUZZ_SEED_DIR"));
		make_log();
		make_dir(g_dir, "fuzz_waldir");
		atexit(remove_dirs);
	}
	if (size < 1 || size > 4 * 64 + 1)
		return 0;
	for (unsigned i = 0; i < g_count; i++) {
		fs[i] = g_orig[i];
		fs[i].p = pool[i];
		if (fs[i].n > sizeof(pool[i]))
			abort();
		memcpy(fs[i].p, g_orig[i].p, fs[i].n);
	}
	for (size_t i = 1; i + 4 <= size; i += 4)
		damage(fs, g_count, data + i, &durable_intact);
	clean();
	for (unsigned i = 0; i < g_count; i++) {
		int fd;

		if (!fs[i].gone) {
			snprintf(path, sizeof(path), "%s/%s", g_dir,
				 fs[i].name);
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
			if (fd < 0 &&
			    errno == EEXIST) /* renamed onto another */
				fd = open(path, O_WRONLY | O_TRUNC);
			if (fd < 0 || (fs[i].n && write(fd, fs[i].p, fs[i].n) !=
							  (ssize_t)fs[i].n))
				abort();
			close(fd);
		}
	}

	wal_config_default(&cfg);
	cfg.dir = g_dir;
	cfg.segment_size = SEGMENT_SIZE;
	cfg.buffer_size = WAL_BUFFER_SIZE_MIN; /* not 8 MiB mapped a run */
	cfg.cut_corrupt = data[0] & 1;
	if (wal_open(&cfg, &w, err, sizeof(err)) != 0) {
		if (getenv("FUZZ_WALDIR_TRACE"))
			fprintf(stderr, "refused: %s\n", err);
		return 0;
	}
	k.next = 0;
	rc = wal_replay(w, 1, replayed, &k);
	wal_close(w);
	if (getenv("FUZZ_WALDIR_TRACE")) /* what each input came to */
		fprintf(stderr, "opened: replay %d, up to LSN %" PRIu64 "\n",
			rc, k.next ? k.next - 1 : 0);
	if (rc == 0 && k.next && k.next != 1 && !cfg.cut_corrupt &&
	    durable_intact && k.next != RECORDS + 1)
		abort(); /* acknowledged records lost without a word */
	if (rc == 0 && !k.next && !cfg.cut_corrupt && durable_intact)
		abort(); /* every record lost without a word */
	return 0;
}
