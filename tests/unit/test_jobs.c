/*
 * test_jobs.c: the jobs registry (core/jobs.h) on its own: names and
 * lookups, "never" before a run, a run's state (start, duration, result,
 * message, next run, counts), a failure, the history (only noted runs,
 * oldest first, after a sequence number, the ring's overwritten runs
 * counted as lost), and four threads running jobs at once while a reader
 * copies states (the counts add up; the TSan build checks the locking).
 */
#include "check.h"
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

CHECK_TEST_FN(test_names)
{
	CHECK(strcmp(jobs_name(JOBS_HOLD_EXPIRY), "hold_expiry") == 0);
	CHECK(strcmp(jobs_name(JOBS_NOTIFY_DELIVERY),
		     "notification_delivery") == 0);
	for (unsigned i = 0; i < JOBS_COUNT; i++) {
		CHECK(jobs_find(jobs_name((enum jobs_id)i)) == (int)i);
		CHECK(strlen(jobs_name((enum jobs_id)i)) < JOBS_NAME_SIZE);
	}
	CHECK(jobs_find("no_such_job") == -ENOENT);
}

CHECK_TEST_FN(test_never_then_runs)
{
	struct jobs_state s;
	struct jobs_run run;
	int64_t t0 = jobs_now_ms(), next = t0 + 60000;

	jobs_get(JOBS_VIEW_REFRESH, &s);
	CHECK(s.result == JOBS_NEVER && s.runs == 0 && s.last_run_at_ms == 0);
	CHECK(strcmp(s.name, "view_refresh") == 0 && !s.active);

	jobs_schedule(JOBS_VIEW_REFRESH, "every 60 s", true, next);
	jobs_get(JOBS_VIEW_REFRESH, &s);
	CHECK(s.active && strcmp(s.schedule, "every 60 s") == 0);
	CHECK(s.next_run_at_ms == next && s.result == JOBS_NEVER);

	run = jobs_begin(JOBS_VIEW_REFRESH);
	jobs_get(JOBS_VIEW_REFRESH, &s);
	CHECK(s.running && s.runs == 0);
	usleep(20000);
	jobs_end(&run, 0, "refreshed", next + 1);
	jobs_get(JOBS_VIEW_REFRESH, &s);
	CHECK(!s.running && s.result == JOBS_OK && s.runs == 1);
	CHECK(s.failures == 0 && strcmp(s.message, "refreshed") == 0);
	CHECK(s.last_run_at_ms >= t0 && s.last_run_at_ms <= jobs_now_ms());
	CHECK_MSG(s.duration_us >= 20000 && s.duration_us < 5000000, "%llu us",
		  (unsigned long long)s.duration_us);
	CHECK(s.next_run_at_ms == next + 1);

	run = jobs_begin(JOBS_VIEW_REFRESH);
	jobs_end(&run, -EIO, "connection lost", 0);
	jobs_get(JOBS_VIEW_REFRESH, &s);
	CHECK(s.result == JOBS_FAILED && s.runs == 2 && s.failures == 1);
	CHECK(s.next_run_at_ms == 0);

	/* configured off: not active, no next run */
	jobs_schedule(JOBS_SNAPSHOT, "off", false, 12345);
	jobs_get(JOBS_SNAPSHOT, &s);
	CHECK(!s.active && s.next_run_at_ms == 0);
}

CHECK_TEST_FN(test_message_cut)
{
	char big[JOBS_MESSAGE_SIZE * 2];
	struct jobs_state s;
	struct jobs_run run = jobs_begin(JOBS_ARCHIVE);

	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	jobs_end(&run, 0, big, 0);
	jobs_get(JOBS_ARCHIVE, &s);
	CHECK(strlen(s.message) == JOBS_MESSAGE_SIZE - 1);
}

/* Runs after the history's current end, in order; quiet ones not kept. */
CHECK_TEST_FN(test_history)
{
	struct jobs_record rec[JOBS_HISTORY_COUNT_MAX];
	uint64_t lost = 99, top;
	unsigned n;

	/* the end of what earlier tests left */
	n = jobs_history(0, rec, JOBS_HISTORY_COUNT_MAX, &lost);
	top = n ? rec[n - 1].seq : 0;
	CHECK(lost == 0);

	struct jobs_run a = jobs_begin(JOBS_HOLD_EXPIRY);
	jobs_end(&a, 0, NULL, 0); /* quiet: state only */
	a = jobs_begin(JOBS_HOLD_EXPIRY);
	jobs_end(&a, 0, "3 holds expired", 0);
	a = jobs_begin(JOBS_GENERATION);
	jobs_end(&a, -EAGAIN, NULL, 0); /* a failure is always kept */
	n = jobs_history(top, rec, JOBS_HISTORY_COUNT_MAX, &lost);
	CHECK_EQ(n, 2);
	CHECK(lost == 0);
	CHECK(rec[0].seq == top + 1 && rec[0].id == JOBS_HOLD_EXPIRY);
	CHECK(rec[0].ok && strcmp(rec[0].message, "3 holds expired") == 0);
	CHECK(rec[1].seq == top + 2 && rec[1].id == JOBS_GENERATION);
	CHECK(!rec[1].ok);
	/* capacity honoured */
	CHECK(jobs_history(top, rec, 1, NULL) == 1 && rec[0].seq == top + 1);
	CHECK(jobs_history(top + 2, rec, 4, NULL) == 0);

	/* past the ring: the oldest are lost, the rest come in order */
	for (unsigned i = 0; i < JOBS_HISTORY_COUNT_MAX + 10; i++) {
		a = jobs_begin(JOBS_METRICS_FLUSH);
		jobs_end(&a, 0, "rows", 0);
	}
	n = jobs_history(top + 2, rec, JOBS_HISTORY_COUNT_MAX, &lost);
	CHECK_EQ(n, JOBS_HISTORY_COUNT_MAX);
	CHECK_EQ(lost, 10);
	CHECK(rec[0].seq == top + 13);
	for (unsigned i = 1; i < n; i++)
		CHECK(rec[i].seq == rec[i - 1].seq + 1);
}

#define THREAD_COUNT 4
#define THREAD_RUNS 2000

static void *runner(void *arg)
{
	enum jobs_id id = (enum jobs_id)(uintptr_t)arg;

	for (int i = 0; i < THREAD_RUNS; i++) {
		struct jobs_run run = jobs_begin(id);
		jobs_end(&run, i % 10 == 0 ? -EIO : 0, i % 2 ? "x" : NULL,
			 jobs_now_ms() + 1000);
	}
	return NULL;
}

CHECK_TEST_FN(test_threads)
{
	const enum jobs_id ids[THREAD_COUNT] = { JOBS_REMINDERS, JOBS_PRUNE,
						 JOBS_NOTIFY_DELIVERY,
						 JOBS_REMINDERS };
	pthread_t t[THREAD_COUNT];
	struct jobs_record rec[64];
	struct jobs_state s;

	for (int i = 0; i < THREAD_COUNT; i++)
		REQUIRE(pthread_create(&t[i], NULL, runner,
				       (void *)(uintptr_t)ids[i]) == 0);
	for (int i = 0; i < 200; i++) { /* a reader meanwhile */
		jobs_get(JOBS_REMINDERS, &s);
		CHECK(s.failures <= s.runs);
		(void)jobs_history(0, rec, 64, NULL);
	}
	for (int i = 0; i < THREAD_COUNT; i++)
		pthread_join(t[i], NULL);
	jobs_get(JOBS_REMINDERS, &s);
	CHECK_EQ(s.runs, 2 * THREAD_RUNS);
	CHECK_EQ(s.failures, 2 * THREAD_RUNS / 10);
	jobs_get(JOBS_PRUNE, &s);
	CHECK_EQ(s.runs, THREAD_RUNS);
	CHECK(!s.running);
}

int main(int argc, char **argv)
{
	return check_run_all("test_jobs", argc > 1 ? argv[1] : NULL);
}
