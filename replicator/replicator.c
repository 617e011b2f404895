/*
 * replicator.c: the replicator (repl.h is its public header). The node's log into the PostgreSQL reporting
 * schema, exactly once, never on the booking path (repl.h,
 * docs/replication.md).
 *
 * Threads
 *   main   conn[0]: migrations at connect, then tails the log with a
 *          wal_reader from the smallest stream position + 1, gathers whole
 *          entries into a batch (batch_records records or batch_ms after
 *          the first), and applies it on `streams` connections at once,
 *          one thread per stream (sink.c): each event (its bookings,
 *          waitlist rows, payments, notifications) belongs to the stream
 *          its id hashes to, the catalogue to stream 0, an implied customer
 *          to the stream its id hashes to. Each stream commits its share in
 *          ONE transaction that also moves its own position
 *          (replication_state.streams[k], guarded: WHERE it is still the
 *          value we started from, so two replicators of one log cannot both
 *          apply); applied_lsn = the smallest position. A crash between the
 *          streams' commits leaves them unequal: each stream then skips the
 *          records at or below its position (repl__part_for).
 *   maint  its own connection: performance_metrics from the server's
 *          counters, health_checks, and the materialized views refreshed
 *          CONCURRENTLY on a schedule and on demand. Never delays a batch.
 *
 * Files (each opens with its design)
 *   fold.c     log entries into row changes, in memory (fold.h; pure)
 *   batch.c    the fold's memory: COPY text buffers, the batch's bookings
 *              and events, streams, months, event starts, known customers
 *   sink.c     a batch into PostgreSQL: COPY, set-based upserts and the
 *              stream's position in one transaction per stream
 *   session.c  connect, migrate, positions, reader, resync
 *   pg.c       libpq helpers, the migration runner
 *   maint.c    partitions, the maintenance thread (metrics, health, views)
 *   replicator.c this: the main thread, status and lag, the public API
 *
 * Failure behaviour
 *   PostgreSQL down or refusing (connection lost, SQLSTATE classes 08, 53,
 *   57, 58, 40, lock timeouts): that stream's transaction is lost as a
 *   whole, the connections dropped, state "down", reconnect after a capped
 *   exponential backoff, and the reader reopens at the committed
 *   applied_lsn + 1 (each stream skipping what it has).
 *   Anything else (a constraint violation, a record that does not decode, a
 *   booking changed that PostgreSQL never saw, PostgreSQL ahead of the
 *   log): reported once on stderr with the LSN range, state "down" with
 *   stopped = true; nothing is skipped and nothing more is applied.
 *   The log keeps what is not applied: wal_retain(applied_lsn + 1). If it
 *   is gone anyway (-ENODATA: replication enabled after a long run), the
 *   newest snapshot is applied on stream 0 (its records are absolute:
 *   upserts), then every stream's position = the snapshot's LSN, and
 *   tailing resumes after it.
 */
#include "evlog.h"
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define REPL_LAG_SAMPLE_MS 20
#define REPL_IDLE_WAIT_MS 100
#define REPL_CUSTOMER_SET_SLOTS (1u << 22) /* 32 MiB, up to 2M ids */

int64_t repl__mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double repl__mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void repl__say(repl *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void repl__say(repl *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (r->cfg.quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	evlog(EVLOG_INFO, "bookd: replicator: %s", msg);
}

/* Records the last error in the status (and on stderr when loud). */
static void set_error(repl *r, bool loud, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_error(repl *r, bool loud, const char *fmt, ...)
{
	char msg[REPL_ERROR_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&r->lock);
	snprintf(r->st.error, sizeof(r->st.error), "%s", msg);
	r->st.error_count++;
	pthread_mutex_unlock(&r->lock);
	if (loud || !r->cfg.quiet)
		evlog(EVLOG_WARN, "bookd: replicator: %s", msg);
}

/* ---- status and lag ---------------------------------------------------- */

static void lag_sample(repl *r)
{
	int64_t now = repl__mono_ms();
	uint64_t d = wal_durable_lsn(r->w);

	pthread_mutex_lock(&r->lock);
	ASSERT(r->sample_count <= REPL_LAG_SAMPLE_COUNT);
	ASSERT(r->sample_head < REPL_LAG_SAMPLE_COUNT);
	if (r->sample_count == 0 ||
	    (d > r->samples[(r->sample_head + r->sample_count - 1) %
			    REPL_LAG_SAMPLE_COUNT]
			     .lsn &&
	     now - r->samples[(r->sample_head + r->sample_count - 1) %
			      REPL_LAG_SAMPLE_COUNT]
				     .t_ms >=
		     REPL_LAG_SAMPLE_MS)) {
		if (r->sample_count < REPL_LAG_SAMPLE_COUNT) {
			struct lag_sample *s =
				&r->samples[(r->sample_head + r->sample_count) %
					    REPL_LAG_SAMPLE_COUNT];
			s->t_ms = now;
			s->lsn = d;
			r->sample_count++;
		}
	}
	if (d <= r->st.applied_lsn)
		r->caught_up_ms = now;
	pthread_mutex_unlock(&r->lock);
}

/* Under r->lock: applied moved; samples it covers are history. */
void repl__lag_pop(repl *r)
{
	ASSERT(r->sample_count <= REPL_LAG_SAMPLE_COUNT); /* the loop's bound */
	while (r->sample_count > 0 &&
	       r->samples[r->sample_head].lsn <= r->st.applied_lsn) {
		if (r->samples[r->sample_head].t_ms > r->caught_up_ms)
			r->caught_up_ms = r->samples[r->sample_head].t_ms;
		r->sample_head = (r->sample_head + 1) % REPL_LAG_SAMPLE_COUNT;
		r->sample_count--;
	}
}

void repl__set_connected(repl *r, bool up)
{
	pthread_mutex_lock(&r->lock);
	r->connected = up;
	pthread_mutex_unlock(&r->lock);
}

/* A permanent error: say it once, loudly, and stop applying. */
static void stop_loudly(repl *r, const char *msg)
{
	evlog(EVLOG_ERROR,
	      "bookd: replicator: STOPPED: %s. Nothing was skipped: fix the "
	      "cause and restart bookd; replication resumes after applied_lsn "
	      "%" PRIu64 ".",
	      msg, r->st.applied_lsn);
	pthread_mutex_lock(&r->lock);
	snprintf(r->st.error, sizeof(r->st.error), "%s", msg);
	r->st.error_count++;
	r->st.stopped = true;
	r->connected = false;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* ---- the main thread ---------------------------------------------------------- */

static int on_entry(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	repl *r = ctx;
	struct batch *b = &r->b;
	int rc;

	ASSERT(!b->full); /* 1 stops wal_reader_next: read_batch returns */
	if (b->records >= r->cfg.batch_records ||
	    repl__batch_cut(b, payload, size)) {
		b->full = true;
		return 1; /* passed again next time */
	}
	rc = repl__batch_add_entry(b, lsn, payload, size);
	return rc ? rc : 0;
}

static void wait_log(repl *r, int64_t ms)
{
	if (ms <= 0)
		return;
	if (r->cfg.wake_fd >= 0) {
		struct pollfd pfd = { .fd = r->cfg.wake_fd, .events = POLLIN };
		uint64_t v;

		if (poll(&pfd, 1, (int)ms) > 0 && (pfd.revents & POLLIN))
			(void)!read(r->cfg.wake_fd, &v, sizeof(v));
		return;
	}
	usleep((useconds_t)(ms < 2 ? ms : 2) * 1000);
}

/* Reads whole entries into r->b: 0 with a batch, -ECANCELED on stop,
 * -ENODATA (resync), or a permanent -errno (b->err). */
static int read_batch(repl *r)
{
	struct batch *b = &r->b;
	int64_t first_ms = 0;

	repl__batch_start(r, b);
	for (;;) {
		int n;

		if (atomic_load(&r->stopping))
			return -ECANCELED;
		n = wal_reader_next(r->reader, 4096, on_entry, r);
		lag_sample(r);
		if (n < 0) {
			if (n == -ENODATA && b->entries)
				return 0; /* apply these, then resync */
			if (n == -EUCLEAN && b->err[0] == '\0')
				snprintf(b->err, sizeof(b->err),
					 "the log is corrupt at LSN %" PRIu64,
					 wal_reader_lsn(r->reader));
			else if (n != -ENODATA && b->err[0] == '\0')
				snprintf(b->err, sizeof(b->err),
					 "reading the log at LSN %" PRIu64
					 ": %s",
					 wal_reader_lsn(r->reader),
					 strerror(-n));
			return n;
		}
		if (b->full)
			return 0;
		if (b->entries && !first_ms)
			first_ms = repl__mono_ms();
		if (n > 0) {
			if (repl__mono_ms() - first_ms >= r->cfg.batch_ms)
				return 0;
			continue;
		}
		if (b->entries) {
			int64_t left =
				r->cfg.batch_ms - (repl__mono_ms() - first_ms);
			if (left <= 0)
				return 0;
			wait_log(r, left);
		} else {
			wait_log(r, REPL_IDLE_WAIT_MS);
		}
	}
}

static void sleep_backoff(repl *r, uint32_t ms)
{
	int64_t until = repl__mono_ms() + ms;

	while (!atomic_load(&r->stopping) && repl__mono_ms() < until) {
		lag_sample(r);
		usleep(20000);
	}
}

static void *main_thread(void *arg)
{
	repl *r = arg;
	uint32_t backoff = r->cfg.backoff_min_ms;
	char err[REPL_ERROR_SIZE];
	int rc;

	while (!atomic_load(&r->stopping)) {
		if (!r->conn[0]) {
			rc = repl__session_open(r, err, sizeof(err));
			if (rc == REPL_TRANSIENT) {
				set_error(r, false, "%s (retry in %u ms)", err,
					  backoff);
				repl__session_close(r);
				pthread_mutex_lock(&r->lock);
				r->st.reconnect_count++;
				pthread_mutex_unlock(&r->lock);
				sleep_backoff(r, backoff);
				backoff = backoff * 2 > r->cfg.backoff_max_ms
						  ? r->cfg.backoff_max_ms
						  : backoff * 2;
				continue;
			}
			if (rc) {
				stop_loudly(r, err);
				break;
			}
			pthread_mutex_lock(&r->lock);
			r->st.error[0] =
				'\0'; /* up again: the last error is history */
			pthread_mutex_unlock(&r->lock);
		}
		if (repl__mono_ms() >= r->partitions_due_ms) {
			/* daily; a failure waits for the next day (a batch
			 * still ensures the months it needs) */
			rc = repl__partitions_job(r, err, sizeof(err));
			if (rc)
				evlog(EVLOG_WARN,
				      "bookd: replicator: partitions ahead: %s",
				      err);
			if (rc == REPL_TRANSIENT) {
				repl__session_close(r);
				continue;
			}
		}
		rc = read_batch(r);
		if (rc == -ECANCELED)
			break;
		if (rc == -ENODATA) {
			wal_reader_close(r->reader);
			r->reader = NULL;
			rc = repl__resync(r, err, sizeof(err));
			if (rc == REPL_TRANSIENT) {
				set_error(r, false, "%s", err);
				repl__session_close(r);
				sleep_backoff(r, backoff);
			} else if (rc) {
				stop_loudly(r, err);
				break;
			}
			continue;
		}
		if (rc) {
			stop_loudly(r, r->b.err);
			break;
		}
		uint64_t from = r->st.applied_lsn, to = r->b.last_lsn;
		double t0 = repl__mono_s();

		ASSERT(r->b.entries > 0 && r->b.first_lsn <= to);
		ASSERT(backoff >= r->cfg.backoff_min_ms &&
		       backoff <= r->cfg.backoff_max_ms);

		if (r->b.first_lsn != from + 1 || to < from + 1) {
			snprintf(r->b.err, sizeof(r->b.err),
				 "the log gave LSN %" PRIu64 "..%" PRIu64
				 " after %" PRIu64,
				 r->b.first_lsn, to, from);
			rc = -EUCLEAN;
		} else {
			rc = repl__apply_batch(r, &r->b, to, true);
			repl__batch_done(r, &r->b, to, true,
					 repl__mono_s() - t0);
		}
		if (rc == 0) {
			backoff = r->cfg.backoff_min_ms;
			continue;
		}
		if (rc == REPL_TRANSIENT) {
			set_error(r, false,
				  "batch LSN %" PRIu64 "..%" PRIu64
				  " not applied, will retry in %u ms: %s",
				  from + 1, to, backoff, r->b.err);
			repl__session_close(r);
			sleep_backoff(r, backoff);
			backoff = backoff * 2 > r->cfg.backoff_max_ms
					  ? r->cfg.backoff_max_ms
					  : backoff * 2;
			continue;
		}
		snprintf(err, sizeof(err),
			 "batch LSN %" PRIu64 "..%" PRIu64 ": %.400s", from + 1,
			 to, r->b.err);
		stop_loudly(r, err);
		break;
	}
	repl__session_close(r);
	return NULL;
}

/* ---- public API -------------------------------------------------------------- */

void repl_config_default(struct repl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_id = "bookd";
	cfg->batch_records = 100000;
	cfg->batch_ms = 50;
	cfg->refresh_interval_ms = 60000;
	cfg->metrics_interval_ms = 1000;
	cfg->health_interval_ms = 60000;
	cfg->jobs_interval_ms = 10000;
	cfg->job_runs_retention_days = 7;
	cfg->retention_days = 30;
	cfg->backoff_min_ms = 100;
	cfg->backoff_max_ms = 10000;
	cfg->partition_months_ahead = 13;
	cfg->streams = 2;
	cfg->wake_fd = -1;
}

const char *repl_state_name(enum repl_state s)
{
	switch (s) {
	case REPL_DISABLED: return "disabled";
	case REPL_STREAMING: return "streaming";
	case REPL_CATCHING_UP: return "catching_up";
	case REPL_DOWN: return "down";
	}
	return "unknown";
}

int repl_start(const struct repl_config *cfg, wal *w, repl **out, char *err,
	       size_t err_size)
{
	PQconninfoOption *opts;
	char *perr = NULL;
	repl *r;
	int rc;

	*out = NULL;
	if (!cfg->conninfo || !cfg->conninfo[0] || !w) {
		snprintf(err, err_size, "replicator: no PostgreSQL conninfo");
		return -EINVAL;
	}
	opts = PQconninfoParse(cfg->conninfo, &perr);
	if (!opts) {
		snprintf(err, err_size, "replicator: bad conninfo: %s",
			 perr ? perr : "out of memory");
		PQfreemem(perr);
		return -EINVAL;
	}
	PQconninfoFree(opts);
	if (cfg->batch_records == 0 ||
	    cfg->batch_records > REPL_BATCH_RECORDS_MAX || cfg->batch_ms == 0 ||
	    cfg->backoff_min_ms == 0 ||
	    cfg->backoff_max_ms < cfg->backoff_min_ms ||
	    cfg->partition_months_ahead > 120 || cfg->streams == 0 ||
	    cfg->streams > REPL_STREAM_MAX || !cfg->log_id || !cfg->log_id[0] ||
	    strlen(cfg->log_id) > 200) {
		snprintf(err, err_size,
			 "replicator: configuration out of range");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out_nomem;
	r->cfg = *cfg;
	r->w = w;
	r->conninfo = strdup(cfg->conninfo);
	r->log_id = strdup(cfg->log_id);
	r->data_dir = cfg->data_dir ? strdup(cfg->data_dir) : NULL;
	if (!r->conninfo || !r->log_id || (cfg->data_dir && !r->data_dir))
		goto out_free;
	r->cfg.conninfo = r->conninfo;
	r->cfg.log_id = r->log_id;
	r->cfg.data_dir = r->data_dir;
	r->customers.slots = calloc(REPL_CUSTOMER_SET_SLOTS, sizeof(uint64_t));
	if (!r->customers.slots)
		goto out_free;
	r->customers.mask = REPL_CUSTOMER_SET_SLOTS - 1;
	struct fold_env env = { .log_id = r->log_id,
				.starts = &r->starts,
				.customers = &r->customers,
				.months = r->months };
	if (repl__batch_init(&r->b, cfg->batch_records, &env) != 0)
		goto out_free;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->starts.lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->caught_up_ms = repl__mono_ms();
	/* Until PostgreSQL says where it is, keep the whole log: a snapshot
	 * taken before the first connect must not drop what it still needs
	 * (then only a resync would do). */
	wal_retain(w, 1);
	rc = pthread_create(&r->main_thread, NULL, main_thread, r);
	if (rc) {
		snprintf(err, err_size, "replicator: thread: %s", strerror(rc));
		goto out_destroy;
	}
	r->main_started = true;
	rc = pthread_create(&r->maint_thread, NULL, repl__maint_thread, r);
	if (rc) {
		snprintf(err, err_size, "replicator: thread: %s", strerror(rc));
		repl_stop(r);
		return -rc;
	}
	r->maint_started = true;
	*out = r;
	return 0;

out_destroy:
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->starts.lock);
out_free:
	repl__batch_free(&r->b);
	free(r->customers.slots);
	free(r->conninfo);
	free(r->log_id);
	free(r->data_dir);
	free(r);
out_nomem:
	snprintf(err, err_size, "replicator: out of memory");
	return -ENOMEM;
}

void repl_status(repl *r, struct repl_status *out)
{
	int64_t now = repl__mono_ms();

	memset(out, 0, sizeof(*out));
	if (!r) {
		out->state = REPL_DISABLED;
		return;
	}
	pthread_mutex_lock(&r->lock);
	*out = r->st;
	out->durable_lsn = wal_durable_lsn(r->w);
	out->lag_records = out->durable_lsn > out->applied_lsn
				   ? out->durable_lsn - out->applied_lsn
				   : 0;
	if (r->st.entries_applied)
		out->lag_bytes = out->lag_records *
				 (r->bytes_applied / r->st.entries_applied);
	if (out->lag_records > 0 && r->sample_count > 0 &&
	    r->samples[r->sample_head].lsn > out->applied_lsn)
		out->lag_seconds =
			(double)(now - r->samples[r->sample_head].t_ms) /
			1000.0;
	else if (out->lag_records > 0)
		out->lag_seconds = (double)(now - r->caught_up_ms) / 1000.0;
	if (r->st.stopped || !r->connected)
		out->state = REPL_DOWN;
	else if (out->lag_records > r->cfg.batch_records)
		out->state = REPL_CATCHING_UP;
	else
		out->state = REPL_STREAMING;
	pthread_mutex_unlock(&r->lock);
}

int repl_refresh_views(repl *r)
{
	if (!r)
		return -ENOTCONN;
	pthread_mutex_lock(&r->lock);
	r->refresh_asked = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int repl_wait_applied(repl *r, uint64_t lsn, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (!r)
		return -ENOTCONN;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->lock);
	while (r->st.applied_lsn < lsn && !r->st.stopped && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	if (r->st.applied_lsn >= lsn)
		rc = 0;
	else if (r->st.stopped)
		rc = -EIO;
	else
		rc = -ETIMEDOUT;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void repl_stop(repl *r)
{
	if (!r)
		return;
	atomic_store(&r->stopping, true);
	pthread_mutex_lock(&r->lock);
	pthread_cond_broadcast(&r->cond);
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		if (r->cancel[k]) { /* a batch in flight is rolled back: not
				     * lost, the next start applies it again */
			char msg[128];
			(void)PQcancel(r->cancel[k], msg, sizeof(msg));
		}
	pthread_mutex_unlock(&r->lock);
	if (r->main_started)
		pthread_join(r->main_thread, NULL);
	if (r->maint_started)
		pthread_join(r->maint_thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->starts.lock);
	repl__batch_free(&r->b);
	free(r->customers.slots);
	free(r->starts.ms);
	free(r->conninfo);
	free(r->log_id);
	free(r->data_dir);
	free(r);
}
