/*
 * bench_core.c: raw decision throughput of the core, and its memory footprint.
 *
 *   bench_core throughput [--ops N] [--depth D]
 *       Bookings through the rings into the shards (no log, no network):
 *       1 and 2 shards, 1 and 2 producer threads, each keeping D requests in
 *       flight; also the state machine alone on one thread (its `depth`
 *       column is its batch). Prints a table.
 *   bench_core state [--ops N] [--batch B]
 *       Only the state machine's row: requests made B at a time before the
 *       clock runs, each batch prefetched, then decided and applied; also
 *       the rate per second of the thread's CPU time (the machine is
 *       shared: wall-clock rates vary with the other work on it) and the
 *       longest batch (the stall of the tables' biggest doubling).
 *   bench_core memory [--events N] [--bookings N]
 *       Builds one state with N events (generated from daily series, 120 days)
 *       and N bookings and prints the resident bytes per event and per
 *       booking, indexes included (RSS from /proc/self/statm).
 *   bench_core remind [--events N] [--bookings N]
 *       The same state, then reminder runs (CORE_OP_REMIND, leads 24 h and
 *       2 h) the next day at 10:00 UTC: the first run (the whole window),
 *       then 60 runs a minute apart (what came due since), each timed.
 */
#include "core.h"
#include "state.h" /* core__state_prefetch_batch, core__state_remind */

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

const char *bench_name = "bench_core";

#define STATE_BATCH_MAX 256
#define STATE_CHUNK 4096 /* requests made at a time, between two clock reads */

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	if (f)
		fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* One org, location, instructor; `series` daily series with `capacity`,
 * generated up to the configured horizon. */
static void make_catalogue(core_state *st, core *c, uint32_t series,
			   uint32_t capacity)
{
	static struct core_series_spec spec;
	struct core_req q = { .now = NOW };
	struct core_resp r;
	const void *entry;
	size_t size;

#define DO(req)                                                                \
	do {                                                                   \
		if (st) {                                                      \
			if (core_state_decide(st, &(req), &r, &entry,          \
					      &size) != CORE_OK ||             \
			    core_state_apply(st, entry, size) != 0)            \
				die("catalogue");                              \
		} else if (core_call(core_port_get(c, 0), &(req), &r) != 0 ||  \
			   r.code != CORE_OK) {                                \
			die("catalogue");                                      \
		}                                                              \
	} while (0)

	q.op = CORE_OP_ORG_CREATE;
	strcpy(q.u.cat.name, "Bench");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	DO(q);
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = 1;
	DO(q);
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	DO(q);
	memset(&spec, 0, sizeof(spec));
	spec.org_id = spec.location_id = spec.instructor_id = 1;
	strcpy(spec.title, "Class");
	spec.capacity = capacity;
	spec.waitlist_capacity = 10;
	strcpy(spec.timezone, "Europe/Berlin");
	spec.weekday_mask = 0x7f;
	spec.duration_min = 60;
	spec.first_date = (struct core_date){ 2026, 1, 2 };
	for (uint32_t i = 0; i < series; i++) {
		spec.start_minute = (uint16_t)(360 + i % 900);
		q = (struct core_req){ .op = CORE_OP_SERIES_CREATE,
				       .now = NOW,
				       .u.series = &spec };
		DO(q);
	}
	/* Generation up to the configured horizon, chunk by chunk. */
	for (;;) {
		q = (struct core_req){ .op = CORE_OP_GENERATE, .now = NOW };
		if (!st) {
			if (core_call(core_port_get(c, 0), &q, &r) != 0)
				die("generate");
			break;
		}
		if (core_state_decide(st, &q, &r, &entry, &size) != CORE_OK)
			die("generate");
		if (!size)
			break;
		if (core_state_apply(st, entry, size) != 0)
			die("generate apply");
	}
#undef DO
}

/* CPU time of the calling thread: on a shared machine, the time it ran. */
static double thread_seconds(void)
{
	return clock_seconds(CLOCK_THREAD_CPUTIME_ID);
}

/* ---- throughput ---- */

struct producer {
	core *c;
	unsigned port;
	uint64_t ops, depth, events;
	uint64_t ok, refused;
	pthread_t thread;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	core_port *port = core_port_get(p->c, p->port);
	uint64_t seed = 42 + p->port, sent = 0, got = 0;
	struct core_resp out[64];

	while (got < p->ops) {
		sent = bench_book_some(port, sent, p->ops, got, p->depth, &seed,
				       p->events);
		int n = core_poll(port, out, 64);
		if (n == 0 && sent - got == p->depth)
			core_wait(port); /* the cores are shared: don't spin */
		for (int i = 0; i < n; i++) {
			if (out[i].code == CORE_OK)
				p->ok++;
			else
				p->refused++;
		}
		got += (uint64_t)n;
		ASSERT(got <= sent); /* answers only to what was submitted */
	}
	return NULL;
}

static void throughput_run(unsigned shards, unsigned producers, uint64_t ops,
			   uint64_t depth)
{
	struct core_config cfg;
	struct producer p[8];
	core *c;
	const uint32_t series = 100, days = 100;
	double t0, dt;
	uint64_t ok = 0, refused = 0;

	core_config_default(&cfg);
	cfg.shard_count = shards;
	cfg.port_count = producers;
	cfg.event_count_max = series * days + 1024;
	cfg.booking_count_max = (uint32_t)(ops / shards + ops / 4 + 1024);
	cfg.customer_count_max = CUSTOMER_COUNT;
	cfg.ring_size = (uint32_t)(depth > 64 ? depth : 64);
	cfg.horizon_days = days - 1;
	if (core_open(&cfg, &c) != 0)
		die("core_open");
	make_catalogue(NULL, c, series, 1000000);
	t0 = seconds();
	for (unsigned i = 0; i < producers; i++) {
		p[i] = (struct producer){ .c = c,
					  .port = i,
					  .ops = ops / producers,
					  .depth = depth,
					  .events = series * days };
		pthread_create(&p[i].thread, NULL, produce, &p[i]);
	}
	for (unsigned i = 0; i < producers; i++) {
		pthread_join(p[i].thread, NULL);
		ok += p[i].ok;
		refused += p[i].refused;
	}
	dt = seconds() - t0;
	printf("| rings  | %6u | %9u | %5" PRIu64 " | %10" PRIu64
	       " | %6.2f | %12.0f | %9.2f%% |\n",
	       shards, producers, depth, ok + refused, dt,
	       (double)(ok + refused) / dt,
	       100.0 * (double)refused / (double)(ok + refused));
	core_close(c);
}

/* The state machine alone, on this thread. Requests are made STATE_CHUNK at
 * a time before the clock runs for them (so the rate is the core's, not
 * snprintf's); each `batch` of them is prefetched (as a shard's worker does
 * with what it pops from its rings), then each request is decided and its
 * entry applied. batch 1: one at a time, no prefetch. */
static void throughput_state(uint64_t ops, uint64_t batch, bool cpu_rate)
{
	struct core_config cfg;
	core_state *st;
	uint64_t seed = 42, ok = 0;
	static struct core_req q[STATE_CHUNK];
	static const struct core_req *qp[STATE_CHUNK];
	struct core_resp r;
	const void *entry;
	size_t size;
	double t0, c0, dt = 0, cpu = 0, tb, worst = 0;

	if (batch < 1 || batch > STATE_BATCH_MAX)
		die("--batch: 1..256");
	core_config_default(&cfg);
	cfg.event_count_max = 20000;
	cfg.horizon_days = 99;
	cfg.booking_count_max = (uint32_t)ops + 1024;
	cfg.customer_count_max = CUSTOMER_COUNT;
	st = core_state_new(&cfg);
	if (!st)
		die("core_state_new");
	make_catalogue(st, NULL, 100, 1000000);
	for (uint64_t i = 0; i < ops;) {
		uint64_t n = ops - i < STATE_CHUNK ? ops - i : STATE_CHUNK;

		for (uint64_t k = 0; k < n; k++) {
			bench_book_req(&q[k], &seed, 100 * 100);
			qp[k] = &q[k];
		}
		t0 = seconds();
		c0 = thread_seconds();
		tb = t0;
		for (uint64_t k = 0; k < n; k++) {
			if (k % batch == 0 && k > 0) {
				double t = seconds();
				if (t - tb > worst)
					worst = t - tb;
				tb = t;
			}
			if (batch > 1 && k % batch == 0)
				core__state_prefetch_batch(
					st, &qp[k],
					(unsigned)(n - k < batch ? n - k
								 : batch));
			if (core_state_decide(st, &q[k], &r, &entry, &size) !=
			    CORE_OK)
				continue;
			ok++;
			if (core_state_apply(st, entry, size) != 0)
				die("apply");
		}
		dt += seconds() - t0;
		cpu += thread_seconds() - c0;
		i += n;
	}
	printf("| state  | %6s | %9s | %5" PRIu64 " | %10" PRIu64
	       " | %6.2f | %12.0f | %9.2f%% |\n",
	       "-", "1 (same)", batch, ops, dt, (double)ops / dt,
	       100.0 * (double)(ops - ok) / (double)ops);
	if (cpu_rate)
		printf("\n%.2f s of this thread's CPU time: %.0f decisions per "
		       "CPU second (what the shared machine's other work "
		       "does not take)\nlongest batch of %" PRIu64
		       " decisions: %.2f ms (a doubling of the tables is in "
		       "one)\n",
		       cpu, (double)ops / cpu, batch, worst * 1e3);
	core_state_free(st);
}

/* ---- memory ---- */

static void memory(uint64_t events, uint64_t bookings)
{
	struct core_config cfg;
	core_state *st;
	struct core_stats stats;
	uint64_t rss0, rss1, rss2, seed = 7;
	uint32_t series = (uint32_t)(events / 120);
	struct core_req q;
	struct core_resp r;
	const void *entry;
	size_t size;
	double t0;

	core_config_default(&cfg);
	cfg.event_count_max = (uint32_t)events + 1024;
	cfg.booking_count_max = (uint32_t)bookings + 1024;
	cfg.customer_count_max = CUSTOMER_COUNT;
	cfg.idem_count_max = 1024;
	cfg.horizon_days = 119;
	rss0 = rss_bytes();
	st = core_state_new(&cfg);
	if (!st)
		die("core_state_new");
	t0 = seconds();
	make_catalogue(st, NULL, series, 1000);
	rss1 = rss_bytes();
	core_state_stats(st, &stats);
	uint64_t event_count = stats.event_count;
	printf("events:   %" PRIu64 " from %u daily series in %.1f s\n",
	       event_count, series, seconds() - t0);

	t0 = seconds();
	for (uint64_t i = 0; i < bookings; i++) {
		bench_book_req(&q, &seed, event_count);
		if (core_state_decide(st, &q, &r, &entry, &size) == CORE_OK &&
		    core_state_apply(st, entry, size) != 0)
			die("apply");
	}
	rss2 = rss_bytes();
	core_state_stats(st, &stats);
	printf("bookings: %" PRIu64 " of %" PRIu64 " attempts, %" PRIu64
	       " customers, in %.1f s\n",
	       stats.booking_count, bookings, stats.customer_count,
	       seconds() - t0);
	printf("\n| what | count | resident bytes | bytes each |\n|---|---|---|---|\n");
	printf("| events (with catalogue, maps, day index) | %" PRIu64
	       " | %" PRIu64 " | %.0f |\n",
	       event_count, rss1 - rss0,
	       (double)(rss1 - rss0) / (double)event_count);
	printf("| bookings (with customers, maps) | %" PRIu64 " | %" PRIu64
	       " | %.0f |\n",
	       stats.booking_count, rss2 - rss1,
	       (double)(rss2 - rss1) / (double)stats.booking_count);
	printf("| total | | %" PRIu64 " | |\n", rss2 - rss0);
	core_state_free(st);
}

/* ---- reminder runs ---- */

static int remind_commit(void *ctx, const void *entry, size_t size)
{
	return core_state_apply(ctx, entry, size);
}

static void remind_bench(uint64_t events, uint64_t bookings)
{
	struct core_config cfg;
	core_state *st;
	struct core_stats stats;
	uint64_t seed = 7, sent = 0;
	struct core_req q;
	struct core_resp r;
	const void *entry;
	size_t size;
	uint32_t n;
	double t0, dt, worst = 0;

	core_config_default(&cfg);
	cfg.event_count_max = (uint32_t)events + 1024;
	cfg.booking_count_max = (uint32_t)bookings + 1024;
	cfg.customer_count_max = CUSTOMER_COUNT;
	cfg.idem_count_max = 1024;
	cfg.horizon_days = 119;
	st = core_state_new(&cfg);
	if (!st)
		die("core_state_new");
	make_catalogue(st, NULL, (uint32_t)(events / 120), 1000);
	core_state_stats(st, &stats);
	for (uint64_t i = 0; i < bookings; i++) {
		bench_book_req(&q, &seed, stats.event_count);
		if (core_state_decide(st, &q, &r, &entry, &size) == CORE_OK &&
		    core_state_apply(st, entry, size) != 0)
			die("apply");
	}
	core_state_stats(st, &stats);
	printf("state: %" PRIu64 " events over 120 days, %" PRIu64
	       " bookings\n",
	       stats.event_count, stats.booking_count);
	/* 10:00 UTC, classes start every minute of the day around it */
	q = (struct core_req){ .op = CORE_OP_REMIND,
			       .now = NOW + 86400000 + 10 * 3600000 };
	q.u.remind.count = 2;
	q.u.remind.hours[0] = 24;
	q.u.remind.hours[1] = 2;
	t0 = seconds();
	if (core__state_remind(st, &q, remind_commit, st, &n) != 0)
		die("remind");
	dt = seconds() - t0;
	printf("first run (window of 24 h): %u reminders, %.1f ms\n", n,
	       dt * 1e3);
	dt = 0;
	for (int i = 0; i < 60; i++) {
		double t;
		q.now += 60000;
		t0 = seconds();
		if (core__state_remind(st, &q, remind_commit, st, &n) != 0)
			die("remind");
		t = seconds() - t0;
		dt += t;
		sent += n;
		if (t > worst)
			worst = t;
	}
	printf("60 runs a minute apart: %" PRIu64
	       " reminders, %.0f us a run (worst %.0f us)\n",
	       sent, dt / 60 * 1e6, worst * 1e6);
	core_state_free(st);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "throughput";
	uint64_t ops = 4000000, depth = 256, events = 2400000,
		 bookings = 20000000, batch = 32;

	for (int i = 2; i + 1 < argc; i += 2) {
		uint64_t v = strtoull(argv[i + 1], NULL, 10);
		if (!strcmp(argv[i], "--ops"))
			ops = v;
		else if (!strcmp(argv[i], "--depth"))
			depth = v;
		else if (!strcmp(argv[i], "--events"))
			events = v;
		else if (!strcmp(argv[i], "--bookings"))
			bookings = v;
		else if (!strcmp(argv[i], "--batch"))
			batch = v;
		else
			die("unknown flag");
	}
	if (!strcmp(mode, "throughput")) {
		printf("bookings through the core: %" PRIu64
		       " per run, %ld cpus\n\n",
		       ops, sysconf(_SC_NPROCESSORS_ONLN));
		printf("| path   | shards | producers | depth |  decisions | secs   |  decisions/s | refused   |\n");
		printf("|--------|--------|-----------|-------|------------|--------|--------------|-----------|\n");
		throughput_state(ops, batch, false);
		throughput_run(1, 1, ops, depth);
		throughput_run(2, 1, ops, depth);
		throughput_run(1, 2, ops, depth);
		throughput_run(2, 2, ops, depth);
	} else if (!strcmp(mode, "state")) {
		printf("| path   | shards | producers | batch |  decisions | secs   |  decisions/s | refused   |\n");
		printf("|--------|--------|-----------|-------|------------|--------|--------------|-----------|\n");
		throughput_state(ops, batch, true);
	} else if (!strcmp(mode, "memory")) {
		memory(events, bookings);
	} else if (!strcmp(mode, "remind")) {
		remind_bench(events, bookings);
	} else {
		die("usage: bench_core throughput|state|memory|remind [--ops N] [--depth D] [--batch B] [--events N] [--bookings N]");
	}
	return 0;
}
