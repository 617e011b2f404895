/*
 * bench_util.h: what the micro-benchmarks (bench_core, bench_node,
 * bench_repl) share: clocks in seconds, a seeded generator, dying with the
 * program's name, a bench studio's catalogue, the random bookings they all
 * submit, and removing the data directory at the end.
 */
#ifndef BOOKD_BENCH_UTIL_H
#define BOOKD_BENCH_UTIL_H

#include "bookd_assert.h"
#include "core.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define CUSTOMER_COUNT 1000000

/* Clock id's time in seconds; seconds(): the monotonic clock's. */
static inline double clock_seconds(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double seconds(void) { return clock_seconds(CLOCK_MONOTONIC); }

/* splitmix64 */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

extern const char *bench_name;

static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", bench_name, what);
	exit(1);
}

static inline struct core_resp call(core_port *p, struct core_req q)
{
	struct core_resp r;

	if (core_call(p, &q, &r) != 0 || r.code != CORE_OK)
		die("catalogue call refused");
	return r;
}

/* Org, location and instructor 1, and a daily series template on them
 * (title, zone, 60 minutes, from 2026-01-02) for the caller to finish. */
static inline void bench_studio(core_port *p, struct core_series_spec *spec,
				uint32_t capacity, uint32_t waitlist_capacity)
{
	struct core_req q = { .op = CORE_OP_ORG_CREATE, .now = NOW };

	strcpy(q.u.cat.name, "Bench");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	call(p, q);
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = 1;
	call(p, q);
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	call(p, q);
	memset(spec, 0, sizeof(*spec));
	spec->org_id = spec->location_id = spec->instructor_id = 1;
	strcpy(spec->title, "Class");
	spec->capacity = capacity;
	spec->waitlist_capacity = waitlist_capacity;
	strcpy(spec->timezone, "Europe/Berlin");
	spec->weekday_mask = 0x7f;
	spec->duration_min = 60;
	spec->first_date = (struct core_date){ 2026, 1, 2 };
}

/* A booking of a random customer (of CUSTOMER_COUNT) on a random event
 * (ids 1..events), from the seeded generator. */
static inline void bench_book_req(struct core_req *q, uint64_t *seed,
				  uint64_t events)
{
	ASSERT(events > 0);
	memset(q, 0, sizeof(*q));
	q->op = CORE_OP_BOOK;
	q->now = NOW;
	q->event_id = 1 + rnd(seed) % events;
	snprintf(q->customer_id, sizeof(q->customer_id), "customer-%07" PRIu64,
		 rnd(seed) % CUSTOMER_COUNT);
}

/* Submits random bookings (bench_book_req) on p, each tagged with its
 * number, while fewer than `until` were sent and fewer than `depth` are
 * outstanding past `done`, or until p's ring is full; the new sent count. */
static inline uint64_t bench_book_some(core_port *p, uint64_t sent,
				       uint64_t until, uint64_t done,
				       uint64_t depth, uint64_t *seed,
				       uint64_t events)
{
	struct core_req q;

	while (sent < until && sent - done < depth) {
		bench_book_req(&q, seed, events);
		if (core_submit(p, &q, sent) != 0)
			break;
		sent++;
	}
	ASSERT(sent - done <= depth);
	return sent;
}

/* rm -rf dir (a directory the benchmark made); says so when it cannot. */
static inline void bench_remove_dir(const char *dir)
{
	char cmd[320];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: could not remove %s\n", bench_name, dir);
}

#endif
