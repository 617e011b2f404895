/*
 * maint.c: the replicator's maintenance. Partitions: which monthly
 * class_events partitions exist (a bitmap the fold reads), and
 * ensure_class_events_partitions for the months a batch needs, on conn[0]
 * before the batch's transactions; the job partitions_ahead (at connect
 * and daily, main thread) writes its outcome as a health_checks row
 * 'partitions', and a PostgreSQL refusing it (a table in a partition's
 * way) does not stop replication. The maintenance thread, on its own
 * connection: the server's per-request samples into performance_metrics
 * with COPY (every second), health_checks (the seed's
 * health_check_database() and health_check_booking_system(), and a row
 * 'replication'), pruning both tables by retention (hourly), and the
 * materialized views refreshed CONCURRENTLY on a schedule and on demand;
 * it never delays a batch, and its errors never stop replication. Archived past months (archive_class_events_month,
 * migration 0007) are the database's: the sink only counts an archived
 * event as found. Each task is a job of the registry (core/jobs.h):
 * partitions_ahead, metrics_flush, health_checks, prune, view_refresh, and
 * jobs_sync, the registry's copy into PostgreSQL (jobsync.c).
 */
#include "evlog.h"
#include "internal.h"

#include "jobs.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- partitions ---------------------------------------------------------- */

static void month_date(uint32_t m, char out[16])
{
	ASSERT(m < REPL_MONTH_COUNT); /* 4 digits of year */
	snprintf(out, 16, "%04u-%02u-01", REPL_MONTH_BASE + m / 12, m % 12 + 1);
}

/* The partitions that exist, into r->months. */
static int partitions_load(repl *r, char *err, size_t es)
{
	PGresult *res;
	int rc;

	ASSERT(r->conn[0]);
	rc = repl__pg_run(r->conn[0], "listing partitions",
			  "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
			  " ON c.oid = i.inhrelid"
			  " WHERE i.inhparent = 'class_events'::regclass",
			  0, NULL, PGRES_TUPLES_OK, &res, err, es);

	if (rc)
		return rc;
	memset(r->months, 0, sizeof(r->months));
	for (int i = 0; i < PQntuples(res) && PQnfields(res) == 1; i++) {
		const char *name = PQgetvalue(res, i, 0);
		unsigned y, m;
		char tail;

		if (sscanf(name, "class_events_%4u_%2u%c", &y, &m, &tail) !=
			    2 ||
		    strlen(name) != strlen("class_events_2026_01") ||
		    y < REPL_MONTH_BASE || m < 1 || m > 12)
			continue; /* not ours: a detached or foreign child */
		uint32_t idx = (y - REPL_MONTH_BASE) * 12 + (m - 1);
		if (idx < REPL_MONTH_COUNT)
			r->months[idx / 8] |= (uint8_t)(1u << (idx % 8));
	}
	PQclear(res);
	return 0;
}

/* ensure_class_events_partitions for months lo..hi (chunks of 10 years). */
int repl__partitions_ensure(repl *r, uint32_t lo, uint32_t hi, char *err,
			    size_t es)
{
	ASSERT(r->conn[0]);
	ASSERT(lo <= hi && hi < REPL_MONTH_COUNT);
	for (uint32_t a = lo; a <= hi; a += 120) {
		uint32_t z = hi - a >= 119 ? a + 119 : hi;
		char from[16], to[16];
		const char *p[2] = { from, to };
		int rc;

		month_date(a, from);
		month_date(z, to);
		rc = repl__pg_run(
			r->conn[0], "ensure_class_events_partitions",
			"SELECT ensure_class_events_partitions($1::date, $2::date)",
			2, p, PGRES_TUPLES_OK, NULL, err, es);
		if (rc)
			return rc;
	}
	return 0;
}

/* The partitions from last month to cfg.partition_months_ahead ahead (by
 * PostgreSQL's clock), then the list of those that exist. */
int repl__partitions_ahead(repl *r, char *err, size_t es)
{
	char ahead[16];
	const char *p[1] = { ahead };
	int rc;

	ASSERT(r->conn[0]);
	snprintf(ahead, sizeof(ahead), "%u", r->cfg.partition_months_ahead);
	rc = repl__pg_run(
		r->conn[0], "partitions ahead",
		"SELECT ensure_class_events_partitions("
		"(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date,"
		" ((now() AT TIME ZONE 'UTC') + make_interval(months => $1::int))::date)",
		1, p, PGRES_TUPLES_OK, NULL, err, es);
	return rc ? rc : partitions_load(r, err, es);
}

int repl__partitions_job(repl *r, char *err, size_t es)
{
	struct jobs_run run = jobs_begin(JOBS_PARTITIONS);
	char msg[JOBS_MESSAGE_SIZE], ms[32], err2[REPL_ERROR_SIZE];
	int rc = repl__partitions_ahead(r, err, es), rc2;

	snprintf(msg, sizeof(msg), "%s",
		 rc ? err : "partitions ensured up to the months ahead");
	r->partitions_due_ms = repl__mono_ms() + REPL_PARTITIONS_EVERY_MS;
	jobs_end(&run, rc, msg, run.started_at_ms + REPL_PARTITIONS_EVERY_MS);
	if (rc == REPL_TRANSIENT)
		return rc;
	/* its outcome where active_alerts sees it */
	snprintf(ms, sizeof(ms), "%.3f",
		 (double)(jobs_now_ms() - run.started_at_ms));
	const char *p[3] = { rc ? "critical" : "healthy", rc ? err : "", ms };
	rc2 = repl__pg_run(r->conn[0], "health_checks",
			   "INSERT INTO health_checks (check_name, status, details,"
			   " response_time_ms) VALUES ('partitions', $1,"
			   " jsonb_strip_nulls(jsonb_build_object('error',"
			   " nullif($2::text, ''))), $3::float8)",
			   3, p, PGRES_COMMAND_OK, NULL, err2, sizeof(err2));
	if (rc) { /* refused: said; a batch still makes the months it needs */
		evlog(EVLOG_ERROR, "bookd: replicator: partitions ahead: %s",
		      err);
		rc2 = rc2 ? rc2 : partitions_load(r, err2, sizeof(err2));
	}
	if (rc2)
		snprintf(err, es, "%s", err2);
	return rc2;
}

/* ---- the maintenance thread: metrics, health, views ------------------------- */

static bool op_name_ok(const char *s)
{
	size_t n = strnlen(s, sizeof(((struct repl_sample *)0)->operation));

	if (n == 0 || n >= sizeof(((struct repl_sample *)0)->operation))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

#define SAMPLE_BATCH 4096
#define SAMPLE_COPY_MAX                                                        \
	(64u << 20) /* COPY text kept while PostgreSQL is
				     * away: then the server's rings fill
				     * and it counts what it drops */
#define PRUNE_EVERY_MS (3600 * 1000)
#define PRUNE_BATCH "50000"

struct maint {
	PGconn *conn;
	struct repl_sample *samples; /* room for SAMPLE_BATCH */
	struct buf copy;	     /* samples not yet in PostgreSQL */
	uint64_t copy_rows, dropped;
	uint32_t prune_ms; /* PRUNE_EVERY_MS, 0 when retention_days is */
	/* monotonic ms when each task is due, and the reconnect */
	int64_t next_metrics, next_health, next_refresh, next_connect;
	int64_t next_jobs, next_prune;
	uint64_t jobs_after, jobs_lost; /* registry runs copied, lost */
	uint32_t backoff;		/* backoff_min_ms..backoff_max_ms */
};

/* A monotonic due time as wall-clock Unix ms (the registry's clock). */
static int64_t wall_of(int64_t due_mono)
{
	return jobs_now_ms() + (due_mono - repl__mono_ms());
}

/* A task's run ended: rc, err when it failed, else msg. */
static void job_done(const struct jobs_run *run, int rc, const char *err,
		     const char *msg, int64_t next_mono)
{
	jobs_end(run, rc, rc ? err : msg, rc ? 0 : wall_of(next_mono));
}

/* The maintenance jobs' schedules in the registry. */
static void jobs_set_up(repl *r, const struct maint *m)
{
	static const struct {
		enum jobs_id id;
		size_t interval; /* offset in struct repl_config */
		size_t due;	 /* in struct maint */
	} t[] = {
		{ JOBS_METRICS_FLUSH,
		  offsetof(struct repl_config, metrics_interval_ms),
		  offsetof(struct maint, next_metrics) },
		{ JOBS_HEALTH_CHECKS,
		  offsetof(struct repl_config, health_interval_ms),
		  offsetof(struct maint, next_health) },
		{ JOBS_VIEW_REFRESH,
		  offsetof(struct repl_config, refresh_interval_ms),
		  offsetof(struct maint, next_refresh) },
		{ JOBS_JOBS_SYNC,
		  offsetof(struct repl_config, jobs_interval_ms),
		  offsetof(struct maint, next_jobs) },
		{ JOBS_PRUNE, SIZE_MAX, offsetof(struct maint, next_prune) },
	};
	char what[JOBS_SCHEDULE_SIZE];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint32_t ms =
			t[i].interval == SIZE_MAX
				? m->prune_ms
				: *(const uint32_t *)((const char *)&r->cfg +
						      t[i].interval);
		int64_t due = *(const int64_t *)((const char *)m + t[i].due);
		bool on =
			ms && (t[i].id != JOBS_METRICS_FLUSH || r->cfg.samples);

		snprintf(what, sizeof(what), "every %u s", ms / 1000);
		if (ms % 1000)
			snprintf(what, sizeof(what), "every %u ms", ms);
		jobs_schedule(t[i].id, on ? what : "off", on, wall_of(due));
	}
	jobs_schedule(JOBS_PARTITIONS, "daily, and at each connect", true, 0);
}

/* recorded_at as COPY reads a timestamptz: "2026-12-06 22:30:00.123+00". */
static void copy_time(struct buf *b, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[40];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
	buf_printf(b, "%s.%03d+00", s, (int)(ms % 1000));
}

/* One sample as a COPY row of performance_metrics (metric_name,
 * metric_value, tags, recorded_at): booking_operation_duration in ms, the
 * seed's unit, tags operation, outcome and sample_rate. */
static void copy_sample(struct buf *b, const struct repl_sample *x)
{
	ASSERT(x->every >= 1 && x->outcome);
	buf_printf(b,
		   "booking_operation_duration\t%.6f\t{\"operation\": \"%s\","
		   " \"outcome\": \"%s\", \"sample_rate\": %.10g}\t",
		   (double)x->ns / 1e6, x->operation, x->outcome,
		   1.0 / (double)x->every);
	copy_time(b, x->at_ms);
	buf_put(b, "\n", 1);
}

static const char sql_copy_metrics[] =
	"COPY performance_metrics (metric_name, metric_value, tags,"
	" recorded_at) FROM STDIN";

/* The samples the server kept since the last run, with COPY; what
 * PostgreSQL did not take stays in m->copy for the next run. */
static int maint_metrics(repl *r, struct maint *m, char *err, size_t es)
{
	uint64_t rows = 0;
	unsigned n = SAMPLE_BATCH;
	int rc = 0;

	while (n == SAMPLE_BATCH && m->copy.size < SAMPLE_COPY_MAX) {
		uint64_t dropped = 0;

		n = r->cfg.samples(r->cfg.samples_ctx, m->samples, SAMPLE_BATCH,
				   &dropped);
		ASSERT(n <= SAMPLE_BATCH);
		m->dropped += dropped;
		for (unsigned i = 0; i < n; i++) {
			struct repl_sample *x = &m->samples[i];

			x->operation[sizeof(x->operation) - 1] = '\0';
			if (!op_name_ok(x->operation) || !x->outcome ||
			    !x->every)
				continue;
			copy_sample(&m->copy, x);
			m->copy_rows++;
		}
	}
	if (m->dropped) { /* said once, as a row of its own */
		buf_printf(&m->copy,
			   "performance_samples_dropped\t%" PRIu64 "\t{}\t",
			   m->dropped);
		copy_time(&m->copy, jobs_now_ms());
		buf_put(&m->copy, "\n", 1);
		m->copy_rows++;
	}
	if (m->copy.broken) { /* no memory: what it held is lost */
		snprintf(err, es, "metrics: no memory for %" PRIu64 " rows",
			 m->copy_rows);
		buf_clear(&m->copy);
		m->copy_rows = 0;
		return -ENOMEM;
	}
	if (m->copy.size > 0) {
		rc = repl__pg_copy(m->conn, sql_copy_metrics, &m->copy, err,
				   es);
		if (rc)
			return rc;
		rows = m->copy_rows;
		buf_clear(&m->copy);
		m->copy_rows = 0;
	}
	pthread_mutex_lock(&r->lock);
	r->st.metrics_rows += rows;
	r->st.samples_dropped += m->dropped;
	pthread_mutex_unlock(&r->lock);
	m->dropped = 0;
	return 0;
}

/* The seed's two health checks (each writes its health_checks row), and
 * the replicator's own row 'replication'. */
static int maint_health(repl *r, struct maint *m, char *err, size_t es)
{
	struct repl_status st;
	const char *status;
	char applied[24], lag_r[24], lag_s[32];
	int rc;

	rc = repl__pg_run(m->conn, "health_check_database",
			  "SELECT health_check_database()", 0, NULL,
			  PGRES_TUPLES_OK, NULL, err, es);
	if (!rc)
		rc = repl__pg_run(m->conn, "health_check_booking_system",
				  "SELECT health_check_booking_system()", 0,
				  NULL, PGRES_TUPLES_OK, NULL, err, es);
	if (rc)
		return rc;
	repl_status(r, &st);
	if (st.state == REPL_DOWN || st.lag_seconds > 60)
		status = "critical";
	else if (st.lag_seconds > 5)
		status = "warning";
	else
		status = "healthy";
	snprintf(applied, sizeof(applied), "%" PRIu64, st.applied_lsn);
	snprintf(lag_r, sizeof(lag_r), "%" PRIu64, st.lag_records);
	snprintf(lag_s, sizeof(lag_s), "%.3f", st.lag_seconds);
	const char *p[7] = { status,  repl_state_name(st.state),
			     applied, lag_r,
			     lag_s,   r->log_id,
			     st.error };
	return repl__pg_run(
		m->conn, "health_checks",
		"INSERT INTO health_checks (check_name, status, details)"
		" VALUES ('replication', $1, jsonb_build_object('state', $2::text,"
		" 'applied_lsn', $3::bigint, 'lag_records', $4::bigint,"
		" 'lag_seconds', $5::float8, 'log_id', $6::text,"
		" 'error', nullif($7::text, '')))",
		7, p, PGRES_COMMAND_OK, NULL, err, es);
}

/* performance_metrics and health_checks rows older than retention_days,
 * in slices (no long lock, no huge transaction); *deleted: how many. */
static int maint_prune(repl *r, struct maint *m, uint64_t *deleted, char *err,
		       size_t es)
{
	static const char *const sql[2] = {
		"DELETE FROM performance_metrics WHERE id IN (SELECT id FROM"
		" performance_metrics WHERE recorded_at < now() -"
		" make_interval(days => $1::int) LIMIT " PRUNE_BATCH ")",
		"DELETE FROM health_checks WHERE id IN (SELECT id FROM"
		" health_checks WHERE checked_at < now() -"
		" make_interval(days => $1::int) LIMIT " PRUNE_BATCH ")",
	};
	char days[16];
	const char *p[1] = { days };

	snprintf(days, sizeof(days), "%u", r->cfg.retention_days);
	*deleted = 0;
	for (int k = 0; k < 2; k++) {
		uint64_t n;
		do {
			PGresult *res;
			int64_t v;
			int rc = repl__pg_run(m->conn, "prune", sql[k], 1, p,
					      PGRES_COMMAND_OK, &res, err, es);

			if (rc)
				return rc;
			if (!repl__parse_i64(PQcmdTuples(res), &v) || v < 0)
				v = 0;
			PQclear(res);
			n = (uint64_t)v;
			*deleted += n;
		} while (n > 0 && !atomic_load(&r->stopping));
	}
	m->next_prune = repl__mono_ms() + m->prune_ms;
	pthread_mutex_lock(&r->lock);
	r->st.pruned_rows += *deleted;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* The maintenance connection, after its backoff (m->next_connect). */
static void maint_connect(repl *r, struct maint *m, int64_t now)
{
	const char *keys[] = { "connect_timeout", "application_name", "dbname",
			       NULL };
	const char *vals[] = { "5", "bookd-maintenance", r->conninfo, NULL };

	ASSERT(!m->conn);
	ASSERT(m->backoff >= r->cfg.backoff_min_ms &&
	       m->backoff <= r->cfg.backoff_max_ms);
	m->conn = PQconnectdbParams(keys, vals, 1);
	if (!m->conn || PQstatus(m->conn) != CONNECTION_OK) {
		PQfinish(m->conn);
		m->conn = NULL;
		m->next_connect = now + m->backoff;
		m->backoff = m->backoff * 2 > r->cfg.backoff_max_ms
				     ? r->cfg.backoff_max_ms
				     : m->backoff * 2;
	} else {
		PQsetNoticeProcessor(m->conn, repl__pg_notice_quiet, NULL);
		m->backoff = r->cfg.backoff_min_ms;
	}
}

/* The registry into bookd.jobs and bookd.job_runs (jobsync.c). */
static int maint_jobs(repl *r, struct maint *m, char *msg, size_t ms, char *err,
		      size_t es)
{
	uint64_t lost = m->jobs_lost;
	int rc = repl__jobs_sync(r, m->conn, &m->jobs_after, &m->jobs_lost, err,
				 es);

	if (rc)
		return rc;
	m->next_jobs = repl__mono_ms() + r->cfg.jobs_interval_ms;
	if (m->jobs_lost > lost)
		snprintf(msg, ms,
			 "%" PRIu64 " runs left out of bookd.job_runs"
			 " (the registry's ring overwrote them first)",
			 m->jobs_lost - lost);
	return 0;
}

/* refresh_all_materialized_views(); the status counts it. */
static int maint_refresh(repl *r, struct maint *m, char *err, size_t es)
{
	double t0 = repl__mono_s();
	int rc = repl__pg_run(m->conn, "refresh_all_materialized_views",
			      "SELECT refresh_all_materialized_views()", 0,
			      NULL, PGRES_TUPLES_OK, NULL, err, es);

	if (rc)
		return rc;
	repl__say(r, "materialized views refreshed in %.0f ms",
		  (repl__mono_s() - t0) * 1000);
	m->next_refresh = repl__mono_ms() + r->cfg.refresh_interval_ms;
	pthread_mutex_lock(&r->lock);
	r->refresh_asked = false;
	r->st.refresh_count++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* A task failed: said on stderr; a transient error drops the connection
 * (reconnect after the backoff), a permanent one (it does not touch the
 * data) waits for the next interval of the tasks that were due. */
static void maint_failed(repl *r, struct maint *m, int rc, const char *err,
			 bool metrics, bool health, bool refresh, bool jobs,
			 bool prune)
{
	int64_t t = repl__mono_ms();

	ASSERT(rc != 0);
	evlog(EVLOG_WARN, "bookd: replicator (maintenance): %s", err);
	if (rc == REPL_TRANSIENT) {
		PQfinish(m->conn);
		m->conn = NULL;
		m->next_connect = t + m->backoff;
		return;
	}
	if (metrics)
		m->next_metrics = t + r->cfg.metrics_interval_ms;
	if (health)
		m->next_health = t + r->cfg.health_interval_ms;
	if (jobs)
		m->next_jobs = t + r->cfg.jobs_interval_ms;
	if (prune)
		m->next_prune = t + m->prune_ms;
	if (refresh) {
		m->next_refresh = t + r->cfg.refresh_interval_ms;
		pthread_mutex_lock(&r->lock);
		r->refresh_asked = false;
		pthread_mutex_unlock(&r->lock);
	}
}

void *repl__maint_thread(void *arg)
{
	repl *r = arg;
	struct maint m = { 0 };
	char err[REPL_ERROR_SIZE];
	int64_t now = repl__mono_ms();

	m.samples = calloc(SAMPLE_BATCH, sizeof(*m.samples));
	if (!m.samples) {
		evlog(EVLOG_ERROR,
		      "bookd: replicator (maintenance): no memory");
		return NULL;
	}
	m.copy.max = SAMPLE_COPY_MAX + (1u << 20);
	m.prune_ms = r->cfg.retention_days ? PRUNE_EVERY_MS : 0;
	m.next_prune = now + 5000; /* the first soon after start */
	m.next_metrics = now + r->cfg.metrics_interval_ms;
	m.next_health = now + 1000; /* a first check soon after start */
	m.next_refresh = now + r->cfg.refresh_interval_ms;
	m.next_jobs = now + 1000; /* the first copy soon after start */
	m.backoff = r->cfg.backoff_min_ms;
	jobs_set_up(r, &m);
	pthread_mutex_lock(&r->lock);
	while (!atomic_load(&r->stopping)) {
		bool metrics, health, refresh, jobs, prune;
		int64_t due = INT64_MAX;
		char msg[JOBS_MESSAGE_SIZE];
		int rc = 0;

		now = repl__mono_ms();
		if (r->cfg.samples && r->cfg.metrics_interval_ms)
			due = m.next_metrics;
		if (m.prune_ms && m.next_prune < due)
			due = m.next_prune;
		if (r->cfg.health_interval_ms && m.next_health < due)
			due = m.next_health;
		if (r->cfg.refresh_interval_ms && m.next_refresh < due)
			due = m.next_refresh;
		if (r->cfg.jobs_interval_ms && m.next_jobs < due)
			due = m.next_jobs;
		if (!r->refresh_asked && (due > now || !r->schema_ready)) {
			struct timespec ts;
			int64_t wait = due > now ? due - now : 1000;

			if (wait > 1000)
				wait = 1000;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->cond, &r->lock, &ts);
			continue;
		}
		now = repl__mono_ms();
		metrics = r->cfg.samples && r->cfg.metrics_interval_ms &&
			  now >= m.next_metrics;
		prune = m.prune_ms && now >= m.next_prune;
		health = r->cfg.health_interval_ms && now >= m.next_health;
		refresh = r->refresh_asked ||
			  (r->cfg.refresh_interval_ms && now >= m.next_refresh);
		jobs = r->cfg.jobs_interval_ms && now >= m.next_jobs;
		if (!metrics && !health && !refresh && !jobs && !prune)
			continue;
		pthread_mutex_unlock(&r->lock);

		if (!m.conn && now >= m.next_connect)
			maint_connect(r, &m, now);
		if (m.conn && metrics) {
			struct jobs_run run = jobs_begin(JOBS_METRICS_FLUSH);
			uint64_t rows = r->st.metrics_rows; /* this thread's */

			rc = maint_metrics(r, &m, err, sizeof(err));
			if (!rc)
				m.next_metrics =
					now + r->cfg.metrics_interval_ms;
			snprintf(msg, sizeof(msg),
				 "%" PRIu64 " performance_metrics rows",
				 r->st.metrics_rows - rows);
			job_done(&run, rc, err, msg, m.next_metrics);
		}
		if (m.conn && !rc && health) {
			struct jobs_run run = jobs_begin(JOBS_HEALTH_CHECKS);

			rc = maint_health(r, &m, err, sizeof(err));
			if (!rc) /* from its end: a slow check is seen a while */
				m.next_health = repl__mono_ms() +
						r->cfg.health_interval_ms;
			job_done(&run, rc, err, "health_checks row written",
				 m.next_health);
		}
		if (m.conn && !rc && refresh) {
			struct jobs_run run = jobs_begin(JOBS_VIEW_REFRESH);

			rc = maint_refresh(r, &m, err, sizeof(err));
			job_done(&run, rc, err, "materialized views refreshed",
				 m.next_refresh);
		}
		if (m.conn && !rc && jobs) {
			struct jobs_run run = jobs_begin(JOBS_JOBS_SYNC);

			msg[0] = '\0';
			rc = maint_jobs(r, &m, msg, sizeof(msg), err,
					sizeof(err));
			job_done(&run, rc, err, msg, m.next_jobs);
		}
		if (m.conn && !rc && prune) {
			struct jobs_run run = jobs_begin(JOBS_PRUNE);
			uint64_t n = 0;

			rc = maint_prune(r, &m, &n, err, sizeof(err));
			snprintf(msg, sizeof(msg),
				 "%" PRIu64 " rows older than %u days deleted",
				 n, r->cfg.retention_days);
			job_done(&run, rc, err, n ? msg : NULL, m.next_prune);
		}
		if (rc)
			maint_failed(r, &m, rc, err, metrics, health, refresh,
				     jobs, prune);
		else if (!m.conn)
			usleep(20000); /* wait for next_connect, not spin */
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	PQfinish(m.conn);
	buf_free(&m.copy);
	free(m.samples);
	return NULL;
}
