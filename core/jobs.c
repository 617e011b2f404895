/*
 * jobs.c: the registry of scheduled jobs (jobs.h). A static table of
 * JOBS_COUNT states and a ring of the last JOBS_HISTORY_COUNT_MAX noted
 * runs, both under one mutex: writers are the few threads that run jobs
 * (bookd's main loop, the snapshotter, the replicator's threads, the
 * notification sender), readers the status and metrics writers and the
 * replicator's copy into PostgreSQL. Each call holds the mutex for a copy
 * of a few hundred bytes, never while a job runs, and none is on the
 * booking path.
 *
 * Invariants: failures <= runs; a state's result is JOBS_NEVER exactly
 * while runs is 0; the ring holds runs seq_next - held .. seq_next - 1.
 */
#include "jobs.h"

#include "bookd_assert.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const names[JOBS_COUNT] = {
#define JOBS_NAME(id, name) [id] = name,
	JOBS_LIST(JOBS_NAME)
#undef JOBS_NAME
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct jobs_state states[JOBS_COUNT];
static struct jobs_record ring[JOBS_HISTORY_COUNT_MAX];
static uint64_t seq_next = 1; /* the next run's seq */
static uint32_t held;	      /* runs in the ring */

int64_t jobs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *jobs_name(enum jobs_id id)
{
	ASSERT((unsigned)id < JOBS_COUNT);
	return names[id];
}

int jobs_find(const char *name)
{
	for (unsigned i = 0; i < JOBS_COUNT; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -ENOENT;
}

/* A state's name is set on first touch (the table is static). */
static struct jobs_state *state_of(enum jobs_id id)
{
	struct jobs_state *s;

	ASSERT((unsigned)id < JOBS_COUNT);
	s = &states[id];
	if (!s->name[0]) {
		s->id = id;
		snprintf(s->name, sizeof(s->name), "%s", names[id]);
	}
	return s;
}

void jobs_schedule(enum jobs_id id, const char *schedule, bool active,
		   int64_t next_run_at_ms)
{
	ASSERT(schedule);
	pthread_mutex_lock(&lock);
	struct jobs_state *s = state_of(id);
	snprintf(s->schedule, sizeof(s->schedule), "%s", schedule);
	s->active = active;
	s->next_run_at_ms = active ? next_run_at_ms : 0;
	pthread_mutex_unlock(&lock);
}

void jobs_next(enum jobs_id id, int64_t next_run_at_ms)
{
	pthread_mutex_lock(&lock);
	state_of(id)->next_run_at_ms = next_run_at_ms;
	pthread_mutex_unlock(&lock);
}

struct jobs_run jobs_begin(enum jobs_id id)
{
	struct jobs_run run = { id, jobs_now_ms(), mono_ns() };

	pthread_mutex_lock(&lock);
	state_of(id)->running = true;
	pthread_mutex_unlock(&lock);
	return run;
}

void jobs_end(const struct jobs_run *run, int rc, const char *message,
	      int64_t next_run_at_ms)
{
	int64_t ns = mono_ns() - run->started_ns;
	uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;

	ASSERT(run->started_ns > 0);
	pthread_mutex_lock(&lock);
	struct jobs_state *s = state_of(run->id);
	s->running = false;
	s->result = rc ? JOBS_FAILED : JOBS_OK;
	s->last_run_at_ms = run->started_at_ms;
	s->duration_us = us;
	s->next_run_at_ms = next_run_at_ms;
	s->runs++;
	s->failures += rc ? 1 : 0;
	snprintf(s->message, sizeof(s->message), "%s", message ? message : "");
	if (rc || (message && message[0])) {
		struct jobs_record *e =
			&ring[seq_next % JOBS_HISTORY_COUNT_MAX];
		e->seq = seq_next++;
		e->id = run->id;
		e->ok = rc == 0;
		e->started_at_ms = run->started_at_ms;
		e->duration_us = us;
		memcpy(e->message, s->message, sizeof(e->message));
		if (held < JOBS_HISTORY_COUNT_MAX)
			held++;
	}
	ASSERT(s->failures <= s->runs);
	ASSERT(held <= JOBS_HISTORY_COUNT_MAX && held < seq_next);
	pthread_mutex_unlock(&lock);
}

void jobs_get(enum jobs_id id, struct jobs_state *out)
{
	pthread_mutex_lock(&lock);
	*out = *state_of(id);
	pthread_mutex_unlock(&lock);
	ASSERT((out->runs == 0) == (out->result == JOBS_NEVER));
}

unsigned jobs_history(uint64_t after, struct jobs_record *out,
		      unsigned capacity, uint64_t *lost)
{
	unsigned n = 0;

	pthread_mutex_lock(&lock);
	uint64_t first = seq_next - held; /* oldest the ring holds */
	uint64_t from = after + 1 > first ? after + 1 : first;
	if (lost)
		*lost = from > after + 1 ? from - (after + 1) : 0;
	for (uint64_t q = from; q < seq_next && n < capacity; q++) {
		out[n] = ring[q % JOBS_HISTORY_COUNT_MAX];
		ASSERT(out[n].seq == q);
		n++;
	}
	pthread_mutex_unlock(&lock);
	ASSERT(n <= capacity);
	return n;
}
