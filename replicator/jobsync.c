/*
 * jobsync.c: the jobs registry (core/jobs.h) copied into PostgreSQL by the
 * maintenance thread (maint.c), every cfg.jobs_interval_ms: each job's
 * state upserted into bookd.jobs (one row per job and log_id), the runs the
 * registry noted since the last copy inserted into bookd.job_runs, and the
 * runs older than cfg.job_runs_retention_days deleted, all in one
 * transaction (migration 0010; public.get_cron_job_status() and
 * get_cron_job_history() read them). A copy that failed is sent again
 * whole: job_runs' unique (log_id, jobname, start_time, seq) makes a run
 * sent twice one row. Runs the registry's ring overwrote before a copy
 * (JOBS_HISTORY_COUNT_MAX of them between two copies) are counted in the
 * job jobs_sync's message.
 */
#include "internal.h"

#include "jobs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define JOBSYNC_RUNS_MAX 256 /* runs read from the registry at a time */

/* A Unix ms time as text, or NULL (SQL NULL) for 0. */
static const char *ms_text(int64_t ms, char out[24])
{
	if (ms == 0)
		return NULL;
	snprintf(out, 24, "%" PRId64, ms);
	return out;
}

static int state_row(repl *r, PGconn *c, const struct jobs_state *s, char *err,
		     size_t es)
{
	char last[24], next[24], dur[24], runs[24], fails[24];
	const char *status = s->result == JOBS_OK	? "succeeded"
			     : s->result == JOBS_FAILED ? "failed"
							: NULL;

	snprintf(dur, sizeof(dur), "%" PRIu64, s->duration_us);
	snprintf(runs, sizeof(runs), "%" PRIu64, s->runs);
	snprintf(fails, sizeof(fails), "%" PRIu64, s->failures);
	const char *p[12] = { r->log_id, s->name,
			      s->schedule[0] ? s->schedule : "not scheduled",
			      s->active ? "t" : "f",
			      /* jobs_sync runs while it copies itself */
			      s->running && s->id != JOBS_JOBS_SYNC ? "t" : "f",
			      ms_text(s->last_run_at_ms, last),
			      s->runs ? dur : NULL, status,
			      s->message[0] ? s->message : NULL,
			      ms_text(s->next_run_at_ms, next), runs, fails };
	return repl__pg_run(
		c, "bookd.jobs",
		"INSERT INTO bookd.jobs (log_id, jobname, schedule, active,"
		" running, last_run_started_at, last_run_duration,"
		" last_run_status, last_run_message, next_run, runs, failures,"
		" updated_at) VALUES ($1, $2, $3, $4::boolean, $5::boolean,"
		" to_timestamp($6::float8 / 1000),"
		" make_interval(secs => $7::float8 / 1e6), $8, $9,"
		" to_timestamp($10::float8 / 1000), $11::bigint, $12::bigint,"
		" now()) ON CONFLICT (log_id, jobname) DO UPDATE SET"
		" schedule = EXCLUDED.schedule, active = EXCLUDED.active,"
		" running = EXCLUDED.running,"
		" last_run_started_at = EXCLUDED.last_run_started_at,"
		" last_run_duration = EXCLUDED.last_run_duration,"
		" last_run_status = EXCLUDED.last_run_status,"
		" last_run_message = EXCLUDED.last_run_message,"
		" next_run = EXCLUDED.next_run, runs = EXCLUDED.runs,"
		" failures = EXCLUDED.failures, updated_at = now()",
		12, p, PGRES_COMMAND_OK, NULL, err, es);
}

static int run_row(repl *r, PGconn *c, const struct jobs_record *e, char *err,
		   size_t es)
{
	char seq[24], start[24], dur[24];

	snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
	snprintf(start, sizeof(start), "%" PRId64, e->started_at_ms);
	snprintf(dur, sizeof(dur), "%" PRIu64, e->duration_us);
	const char *p[7] = { r->log_id,
			     jobs_name(e->id),
			     seq,
			     e->ok ? "succeeded" : "failed",
			     e->message[0] ? e->message : NULL,
			     start,
			     dur };
	return repl__pg_run(
		c, "bookd.job_runs",
		"INSERT INTO bookd.job_runs (log_id, jobname, seq, status,"
		" return_message, start_time, end_time) VALUES ($1, $2,"
		" $3::bigint, $4, $5, to_timestamp($6::float8 / 1000),"
		" to_timestamp($6::float8 / 1000)"
		" + make_interval(secs => $7::float8 / 1e6))"
		" ON CONFLICT (log_id, jobname, start_time, seq) DO NOTHING",
		7, p, PGRES_COMMAND_OK, NULL, err, es);
}

int repl__jobs_sync(repl *r, PGconn *c, uint64_t *after, uint64_t *lost,
		    char *err, size_t es)
{
	static struct jobs_record recs[JOBSYNC_RUNS_MAX]; /* maint thread */
	uint64_t upto = *after, gone = 0;
	char days[24];
	const char *pd[2] = { r->log_id, days };
	int rc;

	ASSERT(c);
	rc = repl__pg_run(c, "jobs", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL,
			  err, es);
	for (unsigned i = 0; !rc && i < JOBS_COUNT; i++) {
		struct jobs_state s;

		jobs_get((enum jobs_id)i, &s);
		rc = state_row(r, c, &s, err, es);
	}
	/* the ring holds JOBS_HISTORY_COUNT_MAX: a bounded loop */
	for (unsigned k = 0;
	     !rc && k <= JOBS_HISTORY_COUNT_MAX / JOBSYNC_RUNS_MAX; k++) {
		uint64_t lost_now = 0;
		unsigned n =
			jobs_history(upto, recs, JOBSYNC_RUNS_MAX, &lost_now);

		gone += lost_now;
		for (unsigned i = 0; !rc && i < n; i++)
			rc = run_row(r, c, &recs[i], err, es);
		if (n == 0)
			break;
		upto = recs[n - 1].seq;
	}
	snprintf(days, sizeof(days), "%u", r->cfg.job_runs_retention_days);
	if (!rc)
		rc = repl__pg_run(
			c, "bookd.job_runs",
			"DELETE FROM bookd.job_runs WHERE log_id = $1 AND"
			" start_time < now() - make_interval(days => $2::int)",
			2, pd, PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = repl__pg_run(c, "jobs", "COMMIT", 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	if (rc) {
		if (PQstatus(c) == CONNECTION_OK)
			PQclear(PQexec(c, "ROLLBACK"));
		return rc; /* the same runs again next time */
	}
	ASSERT(upto >= *after);
	*after = upto;
	*lost += gone;
	return 0;
}
