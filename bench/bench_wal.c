/*
 * bench_wal.c: how fast the write-ahead log makes records durable.
 *
 *   bench_wal [--threads N] [--size BYTES] [--duration S] [--sync fdatasync|write]
 *             [--io thread|uring] [--buffer BYTES] [--segment BYTES]
 *             [--replay-records N] [--phases tlhr] [--dir PATH] [--keep]
 *             [--cold]
 *
 * Phases (each bounded by --duration, default 5 s; the whole run stops by
 * itself):
 *   t  throughput: N appenders append flat out; durable records/s over the
 *      window, fdatasyncs/s, mean and max records per batch.
 *   l  light load: one appender waits for each record to be durable;
 *      p50/p99/max append-to-durable latency.
 *   h  heavy load: N appenders flat out, plus a probe thread appending one
 *      record every 200 us and waiting for it; then the same at half the
 *      measured maximum rate.
 *   r  replay: writes --replay-records (default 10 million) records, closes,
 *      and times wal_open + wal_replay of all of them (--cold: drops the
 *      page cache first; needs root, affects the whole machine).
 * Data goes to a fresh directory under /tmp (or under --dir), removed at
 * the end unless --keep.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bookd_assert.h"
#include "wal.h"

#define BENCH_THREAD_COUNT_MAX 64
#define BENCH_SAMPLE_COUNT_MAX (1u << 20)
#define BENCH_PROBE_INTERVAL_NS 200000ull

struct opts {
	unsigned threads;
	uint32_t size;
	double duration;
	enum wal_sync sync;
	enum wal_io io;
	uint32_t buffer_size;
	uint64_t segment_size;
	uint64_t replay_records;
	const char *phases;
	const char *dir_parent;
	bool keep;
	bool cold;
};

static struct opts opt = {
	.threads = 2,
	.size = 64,
	.duration = 5.0,
	.sync = WAL_SYNC_FDATASYNC,
	.io = WAL_IO_THREAD,
	.buffer_size = WAL_BUFFER_SIZE_DEFAULT,
	.segment_size = WAL_SEGMENT_SIZE_DEFAULT,
	.replay_records = 10000000,
	.phases = "tlhr",
	.dir_parent = "/tmp",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull),
			       (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_wal: %s: %s\n", what, strerror(-rc));
	exit(1);
}

static char dir[300];

static wal *open_log(void)
{
	struct wal_config cfg;
	char err[256];
	wal *w = NULL;
	int rc;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = opt.segment_size;
	cfg.buffer_size = opt.buffer_size;
	cfg.sync = opt.sync;
	cfg.io = opt.io;
	rc = wal_open(&cfg, &w, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "bench_wal: %s\n", err);
		exit(1);
	}
	return w;
}

static void fresh_dir(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		exit(1);
}

/* An empty log in dir, started (its writer running). */
static wal *fresh_log(void)
{
	wal *w;

	fresh_dir();
	w = open_log();
	if (wal_start(w) != 0)
		die("wal_start", -EIO);
	return w;
}

/* ---- Appenders ------------------------------------------------------------ */

struct appender {
	pthread_t th;
	wal *w;
	double rate; /* records/s for this thread, 0: flat out */
	_Atomic bool *stop;
	uint64_t count;
	int rc;
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	uint8_t payload[WAL_RECORD_SIZE_MAX];
	uint64_t t0 = now_ns(), lsn;

	memset(payload, 0xab, opt.size);
	while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
		unsigned i;

		for (i = 0; i < 64; i++) {
			memcpy(payload, &a->count, sizeof(a->count));
			a->rc = wal_append(a->w, payload, opt.size, &lsn);
			if (a->rc != 0)
				return NULL;
			a->count++;
		}
		if (a->rate > 0) {
			/* Open loop at a fixed rate: sleep when ahead. */
			uint64_t due = t0 + (uint64_t)((double)a->count /
						       a->rate * 1e9);
			uint64_t t = now_ns();

			if (due > t)
				sleep_ns(due - t);
		}
	}
	return NULL;
}

static void appenders_start(struct appender *a, unsigned count, wal *w,
			    double rate, _Atomic bool *stop)
{
	unsigned i;

	ASSERT(count <= BENCH_THREAD_COUNT_MAX); /* the callers' arrays */
	for (i = 0; i < count; i++) {
		a[i] = (struct appender){ .w = w,
					  .rate = rate / count,
					  .stop = stop };
		if (pthread_create(&a[i].th, NULL, appender_main, &a[i]) != 0)
			die("pthread_create", -errno);
	}
}

static void appenders_join(struct appender *a, unsigned count)
{
	unsigned i;

	for (i = 0; i < count; i++) {
		pthread_join(a[i].th, NULL);
		if (a[i].rc != 0)
			die("wal_append", a[i].rc);
	}
}

/* ---- Latency ---------------------------------------------------------------- */

struct latency {
	uint64_t *ns;
	size_t count;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(struct latency *l, double p)
{
	size_t i;

	if (l->count == 0)
		return 0;
	ASSERT(p >= 0);
	ASSERT(p <= 1);
	i = (size_t)(p * (double)(l->count - 1) + 0.5);
	ASSERT(i < l->count);
	return (double)l->ns[i] / 1e3;
}

/* One appender that waits for each record: append-to-durable times. */
static void probe(wal *w, double seconds, uint64_t interval_ns,
		  struct latency *l)
{
	uint8_t payload[WAL_RECORD_SIZE_MAX];
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), lsn;

	memset(payload, 0xcd, opt.size);
	l->count = 0;
	while (now_ns() < end && l->count < BENCH_SAMPLE_COUNT_MAX) {
		uint64_t t0 = now_ns();
		int rc = wal_append(w, payload, opt.size, &lsn);

		if (rc == 0)
			rc = wal_wait_durable(w, lsn);
		if (rc != 0)
			die("probe", rc);
		l->ns[l->count++] = now_ns() - t0;
		if (interval_ns > 0) {
			uint64_t next = t0 + interval_ns, t = now_ns();

			if (next > t)
				sleep_ns(next - t);
		}
	}
	qsort(l->ns, l->count, sizeof(*l->ns), cmp_u64);
}

/* ---- Output ----------------------------------------------------------------- */

static void header(void)
{
	printf("%-22s %7s %5s %12s %9s %10s %9s %9s %9s %9s\n", "phase",
	       "threads", "size", "durable/s", "syncs/s", "batch_avg",
	       "batch_max", "p50_us", "p99_us", "max_us");
}

static void row(const char *phase, unsigned threads, double rate, double syncs,
		double batch_avg, uint64_t batch_max, struct latency *l)
{
	printf("%-22s %7u %5u %12.0f %9.0f %10.1f %9" PRIu64, phase, threads,
	       opt.size, rate, syncs, batch_avg, batch_max);
	if (l != NULL && l->count > 0)
		printf(" %9.1f %9.1f %9.1f\n", pct_us(l, 0.50), pct_us(l, 0.99),
		       (double)l->ns[l->count - 1] / 1e3);
	else
		printf(" %9s %9s %9s\n", "-", "-", "-");
	fflush(stdout);
}

/* ---- Phases ----------------------------------------------------------------- */

/* Runs appenders (rate 0: flat out) and optionally the probe; prints a
 * row; returns durable records/s. */
static double load_phase(const char *name, double rate, bool with_probe,
			 struct latency *l)
{
	struct appender a[BENCH_THREAD_COUNT_MAX];
	struct wal_stats s0, s1;
	_Atomic bool stop = false;
	uint64_t t0, t1;
	double secs, durable, batches;
	wal *w;

	w = fresh_log();
	appenders_start(a, opt.threads, w, rate, &stop);
	sleep_ns(300000000ull); /* warm up: first batches, next segment */
	wal_stats(w, &s0);
	t0 = now_ns();
	if (with_probe)
		probe(w, opt.duration, BENCH_PROBE_INTERVAL_NS, l);
	else
		sleep_ns((uint64_t)(opt.duration * 1e9));
	wal_stats(w, &s1);
	t1 = now_ns();
	atomic_store(&stop, true);
	appenders_join(a, opt.threads);
	wal_close(w);

	secs = (double)(t1 - t0) / 1e9;
	durable = (double)(s1.durable_lsn - s0.durable_lsn);
	batches = (double)(s1.batch_count - s0.batch_count);
	row(name, opt.threads, durable / secs,
	    (double)(s1.sync_count - s0.sync_count) / secs,
	    batches > 0 ? durable / batches : 0, s1.batch_records_max,
	    with_probe ? l : NULL);
	if (!with_probe)
		printf("%-22s mean fdatasync %.0f us, max %.0f us, %.1f MB/s "
		       "written, %" PRIu64 " segments, %" PRIu64
		       " appends waited for buffer space\n",
		       "",
		       (double)(s1.sync_ns_total - s0.sync_ns_total) /
			       (double)(s1.sync_count - s0.sync_count + 1) /
			       1e3,
		       (double)s1.sync_ns_max / 1e3,
		       (double)(s1.bytes_written - s0.bytes_written) / secs /
			       1e6,
		       s1.segment_count - s0.segment_count,
		       s1.append_wait_count - s0.append_wait_count);
	return durable / secs;
}

static void light_phase(struct latency *l)
{
	struct wal_stats s0, s1;
	uint64_t t0;
	double secs;
	wal *w;

	w = fresh_log();
	probe(w, 0.2, 0, l); /* warm up */
	wal_stats(w, &s0);
	t0 = now_ns();
	probe(w, opt.duration, 0, l);
	secs = (double)(now_ns() - t0) / 1e9;
	wal_stats(w, &s1);
	wal_close(w);
	row("light (1 waits each)", 1, (double)l->count / secs,
	    (double)(s1.sync_count - s0.sync_count) / secs,
	    (double)(s1.durable_lsn - s0.durable_lsn) /
		    (double)(s1.batch_count - s0.batch_count + !s1.batch_count),
	    s1.batch_records_max, l);
}

struct replay_sum {
	uint64_t count, bytes, next;
	bool bad;
};

static int replay_fn(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct replay_sum *r = ctx;

	(void)p;
	if (lsn != r->next)
		r->bad = true;
	r->next = lsn + 1;
	r->count++;
	r->bytes += size;
	return 0;
}

static void replay_phase(void)
{
	struct appender a[BENCH_THREAD_COUNT_MAX];
	struct replay_sum r = { .next = 1 };
	_Atomic bool stop = false;
	uint64_t t0, t1, t2, t3;
	wal *w;
	int rc;

	w = fresh_log();
	t0 = now_ns();
	appenders_start(a, opt.threads, w, 0, &stop);
	while (wal_durable_lsn(w) < opt.replay_records)
		sleep_ns(1000000);
	atomic_store(&stop, true);
	appenders_join(a, opt.threads);
	if (wal_wait_durable(w, opt.replay_records) != 0)
		die("wal_wait_durable", -EIO);
	t1 = now_ns();
	wal_close(w);
	if (opt.cold) {
		/* Replay from disk, not from the page cache (root only). */
		FILE *f = fopen("/proc/sys/vm/drop_caches", "w");

		sync();
		if (f == NULL || fputs("3\n", f) < 0)
			printf("bench_wal: cannot drop caches: replay is warm\n");
		if (f != NULL)
			fclose(f);
	}

	t2 = now_ns();
	w = open_log();
	t3 = now_ns();
	rc = wal_replay(w, 1, replay_fn, &r);
	if (rc != 0)
		die("wal_replay", rc);
	printf("%-22s %7u %5u %12.0f   wrote %" PRIu64 " records in %.2f s;"
	       " wal_open %.3f s + wal_replay %.3f s = %.3f s (%.1f M "
	       "records/s)%s\n",
	       "replay", opt.threads, opt.size,
	       (double)r.count / ((double)(now_ns() - t2) / 1e9), r.count,
	       (double)(t1 - t0) / 1e9, (double)(t3 - t2) / 1e9,
	       (double)(now_ns() - t3) / 1e9, (double)(now_ns() - t2) / 1e9,
	       (double)r.count / ((double)(now_ns() - t2) / 1e9) / 1e6,
	       r.bad ? " LSN GAP!" : "");
	wal_close(w);
}

/* ---- Main ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_wal [--threads N] [--size BYTES] [--duration S]\n"
		"                 [--sync fdatasync|write] [--io thread|uring]\n"
		"                 [--buffer BYTES] [--segment BYTES]\n"
		"                 [--replay-records N] [--phases tlhr]\n"
		"                 [--dir PARENT] [--keep] [--cold]\n");
	exit(2);
}

/* The value of the name arg is (a or b), else the usage. */
static int one_of(const char *arg, const char *a, int a_value, const char *b,
		  int b_value)
{
	if (strcmp(arg, a) == 0)
		return a_value;
	if (strcmp(arg, b) != 0)
		usage();
	return b_value;
}

int main(int argc, char **argv)
{
/* An option with a value (--name V), and one without (--name). */
#define OPT_ARG(name, c)                                                       \
	{                                                                      \
		name, required_argument, NULL, c                               \
	}
#define OPT_FLAG(name, c)                                                      \
	{                                                                      \
		name, no_argument, NULL, c                                     \
	}
	static const struct option longopts[] = {
		OPT_ARG("threads", 't'),  OPT_ARG("size", 's'),
		OPT_ARG("duration", 'd'), OPT_ARG("sync", 'y'),
		OPT_ARG("io", 'i'),	  OPT_ARG("buffer", 'b'),
		OPT_ARG("segment", 'g'),  OPT_ARG("replay-records", 'r'),
		OPT_ARG("phases", 'p'),	  OPT_ARG("dir", 'D'),
		OPT_FLAG("keep", 'k'),	  OPT_FLAG("cold", 'c'),
		OPT_FLAG("help", 'h'),	  { NULL, 0, NULL, 0 },
	};
#undef OPT_ARG
#undef OPT_FLAG
	struct latency l;
	double max_rate = 0;
	char tmpl[256];
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': opt.threads = (unsigned)atoi(optarg); break;
		case 's': opt.size = (uint32_t)atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'y':
			opt.sync =
				one_of(optarg, "fdatasync", WAL_SYNC_FDATASYNC,
				       "write", WAL_SYNC_WRITE);
			break;
		case 'i':
			opt.io = one_of(optarg, "thread", WAL_IO_THREAD,
					"uring", WAL_IO_URING);
			break;
		case 'b':
			opt.buffer_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'g': opt.segment_size = strtoull(optarg, NULL, 0); break;
		case 'r': opt.replay_records = strtoull(optarg, NULL, 0); break;
		case 'p': opt.phases = optarg; break;
		case 'D': opt.dir_parent = optarg; break;
		case 'k': opt.keep = true; break;
		case 'c': opt.cold = true; break;
		default: usage();
		}
	}
	if (opt.threads < 1 || opt.threads > BENCH_THREAD_COUNT_MAX ||
	    opt.size < 8 || opt.size > WAL_RECORD_SIZE_MAX ||
	    opt.duration <= 0 || opt.duration > 600)
		usage();
	snprintf(tmpl, sizeof(tmpl), "%s/bench_wal.XXXXXX", opt.dir_parent);
	if (mkdtemp(tmpl) == NULL)
		die("mkdtemp", -errno);
	snprintf(dir, sizeof(dir), "%s/log", tmpl);
	l.ns = malloc(BENCH_SAMPLE_COUNT_MAX * sizeof(*l.ns));
	if (l.ns == NULL)
		die("malloc", -ENOMEM);

	printf("bench_wal: %u threads, %u-byte records, %.1f s a phase, sync "
	       "%s, io %s, buffer %u, segment %" PRIu64 ", dir %s\n",
	       opt.threads, opt.size, opt.duration,
	       opt.sync == WAL_SYNC_WRITE ? "write" : "fdatasync",
	       opt.io == WAL_IO_URING ? "uring" : "thread", opt.buffer_size,
	       opt.segment_size, dir);
	header();
	if (strchr(opt.phases, 't'))
		max_rate = load_phase("throughput", 0, false, NULL);
	if (strchr(opt.phases, 'l'))
		light_phase(&l);
	if (strchr(opt.phases, 'h')) {
		load_phase("heavy (flat out)", 0, true, &l);
		if (max_rate > 0)
			load_phase("heavy (50% of max)", max_rate / 2, true,
				   &l);
	}
	if (strchr(opt.phases, 'r'))
		replay_phase();

	if (!opt.keep) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_wal: could not remove %s\n",
				tmpl);
	}
	free(l.ns);
	return 0;
}
