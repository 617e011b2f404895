/*
 * fuzz_snap.c: libFuzzer target for snapshot loading, both layers: the
 * file (wal_snapshot_load, wal/wal_snapshot.c: header, trailer, XXH3
 * checksum, falling back to an older snapshot) and its content
 * (core_snapshot_load, core/runtime.c: the entries that rebuild the core).
 *
 * Input: byte 0 picks the layer, the rest is
 *  - even: snapshot content, loaded into a fresh core (two shards).
 *    Checked: refused, or loaded; a loaded state written out again (S1),
 *    loaded into another fresh core and written again (S2) gives S1 == S2:
 *    what was loaded is a state the core can carry through its own
 *    snapshots unchanged;
 *  - odd: damage, 4 bytes a step (what, where (2 bytes), value), done to
 *    two valid snapshot files made here in the documented format
 *    (docs/wal.md) from a real core's snapshot: snap-5 (the state below)
 *    and the older snap-3 (the empty state). Flips, overwrites,
 *    truncations, appends. Checked: wal_snapshot_load gives the newest
 *    file left intact, byte for byte its payload and LSN, or -EUCLEAN when
 *    both are damaged: damaged bytes are never loaded.
 * The real state: tests/unit/core_test.h's catalogue, two classes with
 * bookings, a waitlist, a hold, a cancel and an idempotency key.
 * FUZZ_SEED_DIR=<dir> writes the seeds (the real snapshot, the empty one,
 * a few damage lists) there and exits: tests/fuzz/gen_corpus.py's
 * corpus/snap. The files live under /dev/shm when it exists; the log's
 * lines below errors are not written.
 */
#include "core_test.h"
#include "evlog.h"
#include "wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SNAP_MAGIC 0x50414e53444b4f42ull     /* "BOKDSNAP" */
#define SNAP_END_MAGIC 0x444e4553444b4f42ull /* "BOKDSEND" */

struct out {
	uint8_t *p;
	size_t n, cap;
};

static int put(void *ctx, const void *buf, size_t size)
{
	struct out *o = ctx;

	if (o->n + size > o->cap) {
		size_t cap = (o->n + size) * 2;
		uint8_t *p = realloc(o->p, cap);

		if (!p)
			return -ENOMEM;
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->n, buf, size);
	o->n += size;
	return 0;
}

static void cfg_fuzz(struct core_config *cfg)
{
	core_config_default(cfg);
	cfg->shard_count = 2;
	cfg->port_count = 1;
	cfg->event_count_max = 256;
	cfg->booking_count_max = 1024;
	cfg->customer_count_max = 256;
	cfg->idem_count_max = 256;
	cfg->catalog_count_max = 64;
	cfg->ring_size = 64;
	cfg->hold_ms = HOLD_MS;
}

/* A fresh core loaded with buf: 0 and *c, else the load's error (the core
 * closed). */
static int load(const void *buf, size_t size, core **c)
{
	struct core_config cfg;
	int rc;

	cfg_fuzz(&cfg);
	if (core_open(&cfg, c) != 0 || core_park(*c) != 0)
		abort();
	rc = core_snapshot_load(*c, buf, size);
	if (rc) {
		core_unpark(*c);
		core_close(*c);
		*c = NULL;
	}
	return rc;
}

static void write_out(core *c, struct out *o)
{
	o->n = 0;
	if (core_snapshot_write(c, put, o) != 0)
		abort();
	core_unpark(c);
	core_close(c);
}

static struct out g_real, g_empty;

/* The real state's snapshot and an empty core's. */
static void make_states(void)
{
	struct core_config cfg;
	struct core_req q;
	struct rt rt;
	uint64_t ev1, ev2, bk;

	cfg_fuzz(&cfg);
	rt_open(&rt, &cfg);
	if (core_park(rt.c) != 0)
		abort();
	write_out(rt.c, &g_empty);

	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	ev1 = rt_event(rt.p, 2, 1, 0, "");
	ev2 = rt_event(rt.p, 3, 0, 1500, "eur");
	q = q_book(T0, ev1, "cus_a", CORE_PAY_AUTO);
	with_key(&q, 1, 2, 3);
	bk = rcall(rt.p, &q).booking.id;
	q = q_book(T0, ev1, "cus_b", CORE_PAY_AUTO);
	rcall(rt.p, &q);
	q = q_book(T0, ev1, "cus_c", CORE_PAY_AUTO); /* waitlisted */
	rcall(rt.p, &q);
	q = q_book(T0, ev2, "cus_d", CORE_PAY_AUTO); /* a hold */
	rcall(rt.p, &q);
	q = q_cancel(T0 + MIN_MS, bk); /* cus_c promoted */
	rcall(rt.p, &q);
	if (core_park(rt.c) != 0)
		abort();
	write_out(rt.c, &g_real);
	if (g_real.n <= g_empty.n || check_fail_count)
		abort();
}

/* ---- the content layer ---- */

static void check_content(const uint8_t *data, size_t size)
{
	static struct out s1, s2;
	uint8_t *copy = malloc(size ? size : 1); /* exact size, for ASan */
	core *c;

	if (!copy)
		abort();
	memcpy(copy, data, size);
	if (load(copy, size, &c) == 0) {
		write_out(c, &s1);
		if (load(s1.p, s1.n, &c) != 0)
			abort(); /* our own snapshot of it refused */
		write_out(c, &s2);
		if (s1.n != s2.n || memcmp(s1.p, s2.p, s1.n) != 0)
			abort(); /* not carried unchanged */
	}
	free(copy);
}

/* ---- the file layer ---- */

static char g_dir[64];

/* A snapshot file's bytes as docs/wal.md has them. */
static void file_bytes(uint64_t lsn, const struct out *payload, struct out *f)
{
	uint64_t hdr[4] = { SNAP_MAGIC, 1 | (uint64_t)32 << 32, lsn, 0 };
	uint64_t trl[4] = { SNAP_END_MAGIC, payload->n, lsn, 0 };

	f->n = 0;
	put(f, hdr, sizeof(hdr));
	put(f, payload->p, payload->n);
	{
		XXH3_state_t *h = XXH3_createState();

		XXH3_64bits_reset(h);
		XXH3_64bits_update(h, f->p, f->n);
		XXH3_64bits_update(h, trl, 24);
		trl[3] = XXH3_64bits_digest(h);
		XXH3_freeState(h);
	}
	put(f, trl, sizeof(trl));
}

static void file_write(uint64_t lsn, const struct out *f)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/snap-%016" PRIx64, g_dir, lsn);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (f->n && write(fd, f->p, f->n) != (ssize_t)f->n))
		abort();
	close(fd);
}

/* One step of damage to f (what: bits 0-1 the kind, bit 2 the file). */
static void damage(struct out *f, uint8_t what, size_t where, uint8_t v)
{
	switch (what & 3) {
	case 0: /* a flipped bit */
		if (f->n)
			f->p[where % f->n] ^= (uint8_t)(1u << (v % 8));
		break;
	case 1: /* a byte overwritten, changed */
		if (f->n && f->p[where % f->n] != v)
			f->p[where % f->n] = v;
		else if (f->n)
			f->p[where % f->n] ^= 0x80;
		break;
	case 2: /* cut short */
		if (f->n)
			f->n = where % f->n;
		break;
	default: /* bytes appended */
		for (unsigned i = 0; i <= v % 64; i++)
			put(f, &v, 1);
		break;
	}
}

static void check_files(const uint8_t *data, size_t size)
{
	static struct out orig[2], f[2];
	static const uint64_t lsns[2] = { 5, 3 };
	const struct out *payload[2] = { &g_real, &g_empty };
	bool intact[2];
	uint64_t lsn = 0;
	void *buf = NULL;
	size_t n = 0;
	char err[256];
	int rc, want;

	for (int i = 0; i < 2; i++) {
		file_bytes(lsns[i], payload[i], &orig[i]);
		f[i].n = 0;
		put(&f[i], orig[i].p, orig[i].n);
	}
	for (size_t i = 0; i + 4 <= size; i += 4)
		damage(&f[(data[i] >> 2) & 1], data[i],
		       (size_t)data[i + 1] | (size_t)data[i + 2] << 8,
		       data[i + 3]);
	for (int i = 0; i < 2; i++) {
		intact[i] = f[i].n == orig[i].n &&
			    memcmp(f[i].p, orig[i].p, f[i].n) == 0;
		file_write(lsns[i], &f[i]);
	}
	want = intact[0] ? 0 : intact[1] ? 1 : -1;
	rc = wal_snapshot_load(g_dir, &lsn, &buf, &n, err, sizeof(err));
	if (want < 0) {
		if (rc != -EUCLEAN || buf)
			abort(); /* damaged bytes loaded */
		return;
	}
	if (rc != 0 || lsn != lsns[want] || n != payload[want]->n ||
	    memcmp(buf, payload[want]->p, n) != 0)
		abort();
	free(buf);
}

static void remove_dir(void)
{
	char path[128];

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/snap-%016x", g_dir,
			 i ? 3u : 5u);
		unlink(path);
	}
	rmdir(g_dir);
}

static void seeds(const char *dir)
{
	static const uint8_t steps[][9] = {
		{ 1, 0 },			/* intact */
		{ 1, 0, 40, 0, 1 },		/* a bit of the newest's body */
		{ 1, 2, 10, 0, 0 },		/* the newest cut short */
		{ 1, 0, 40, 0, 1, 4, 8, 0, 3 }, /* both flipped */
		{ 1, 3, 0, 0, 7 },		/* bytes after the trailer */
	};
	char path[512];
	FILE *fp;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		snprintf(path, sizeof(path), "%s/damage-%zu", dir, i);
		fp = fopen(path, "wb");
		if (!fp)
			abort();
		fwrite(steps[i], 1, i == 0 ? 1 : i == 3 ? 9 : 5, fp);
		fclose(fp);
	}
	for (int i = 0; i < 2; i++) {
		const struct out *o = i ? &g_empty : &g_real;

		snprintf(path, sizeof(path), "%s/%s", dir,
			 i ? "content-empty" : "content-real");
		fp = fopen(path, "wb");
		if (!fp)
			abort();
		fputc(0, fp);
		fwrite(o->p, 1, o->n, fp);
		fclose(fp);
	}
	fflush(stdout);
	_exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_dir[0]) {
		char err[128];

		/* the log's reports of damage, expected here: errors only */
		if (evlog_setup("logfmt", "error", err, sizeof(err)) != 0)
			abort();
		make_states();
		if (getenv("FUZZ_SEED_DIR"))
			seeds(getenv("FUZZ_SEED_DIR"));
		strcpy(g_dir, access("/dev/shm", W_OK) == 0
				      ? "/dev/shm/fuzz_snap.XXXXXX"
				      : "/tmp/fuzz_snap.XXXXXX");
		if (!mkdtemp(g_dir))
			abort();
		atexit(remove_dir);
	}
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_files(data + 1, size - 1);
	else
		check_content(data + 1, size - 1);
	return 0;
}
