/*
 * internal.h: what the files of replicator/ share; not part of the public
 * API (repl.h). fold.c and batch.c (the pure fold, fold.h), sink.c (a
 * batch into PostgreSQL), pg.c (libpq helpers, migrations), session.c
 * (connect, positions, resync), maint.c (partitions, metrics, health,
 * views), jobsync.c (the jobs registry into bookd.jobs), replicator.c
 * (threads, status, public API).
 */
#ifndef BOOKD_REPL_INTERNAL_H
#define BOOKD_REPL_INTERNAL_H

#include "fold.h"
#include "repl.h"
#include "wal.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#define REPL_LAG_SAMPLE_COUNT 8192
#define REPL_PARTITIONS_EVERY_MS (24 * 3600 * 1000) /* and at connect */

/* What a step returned: transient errors retry, the rest stop. */
#define REPL_TRANSIENT (-EAGAIN)

/* ---- the replicator ------------------------------------------------------ */

struct lag_sample {
	int64_t t_ms;
	uint64_t lsn;
};

struct repl {
	struct repl_config cfg;
	char *conninfo, *log_id, *data_dir;
	wal *w;

	pthread_t main_thread, maint_thread;
	bool main_started, maint_started;
	atomic_bool stopping;

	/* main thread only (conn[k]: stream k's thread during run_parts) */
	PGconn *conn[REPL_STREAM_MAX]; /* [0] also migrations and partitions */
	uint32_t streams;	       /* in this session */
	uint64_t stream_lsn[REPL_STREAM_MAX]; /* applied per stream */
	wal_reader *reader;
	struct batch b;
	struct starts starts; /* shared with the streams: its own lock */
	uint8_t months[REPL_MONTH_COUNT / 8]; /* partitions known to exist */
	int64_t partitions_due_ms; /* monotonic: the next partitions_ahead */
	struct custset customers;  /* customer ids PostgreSQL has */

	/* shared, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* applied, refreshed, stop, refresh asked */
	struct repl_status st;
	bool connected, schema_ready, refresh_asked;
	PGcancel *cancel[REPL_STREAM_MAX]; /* repl_stop interrupts them */
	uint64_t bytes_applied;
	struct lag_sample samples[REPL_LAG_SAMPLE_COUNT];
	uint32_t sample_head, sample_count;
	int64_t caught_up_ms; /* last time applied == durable, or the time of
			       * a sample applied since: what is not applied
			       * became durable after it */
};

/* ---- replicator.c -------------------------------------------------------- */

int64_t repl__mono_ms(void);
double repl__mono_s(void);
void repl__say(repl *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Under r->lock: applied moved; samples it covers are history. */
void repl__lag_pop(repl *r);
void repl__set_connected(repl *r, bool up);

/* ---- session.c: connect, migrate, positions, reader, resync ---------------- */

/* 0, REPL_TRANSIENT (retry after a backoff) or a permanent -errno, with err. */
int repl__session_open(repl *r, char *err, size_t es);
void repl__session_close(repl *r);
/* The log before applied_lsn + 1 is gone: the newest snapshot, then tail. */
int repl__resync(repl *r, char *err, size_t es);
/* A new batch, each part knowing where its stream is. */
void repl__batch_start(repl *r, struct batch *b);
/* After a batch, whole or not: positions, status, wal_retain, customers. */
void repl__batch_done(repl *r, const struct batch *b, uint64_t to, bool move,
		      double seconds);

/* ---- sink.c: a batch into PostgreSQL ---------------------------------------- */

/* Staging tables, one set per connection (run at connect). */
extern const char repl__sql_stage[];
/* 0, REPL_TRANSIENT or a permanent -errno, with b->err; b->part[k].committed
 * says which streams moved to `to`. */
int repl__apply_batch(repl *r, struct batch *b, uint64_t to, bool move);

/* ---- pg.c: libpq helpers, migrations ---------------------------------------- */

bool repl__pg_transient(PGconn *c, const PGresult *res);
void repl__one_line(char *dst, size_t size, const char *src);
bool repl__trace_on(void);
void repl__pg_notice_quiet(void *arg, const char *message);
/* Runs sql expecting `want`; on failure fills err and returns
 * REPL_TRANSIENT or -EPROTO (permanent). *out (if given) keeps the result. */
int repl__pg_run(PGconn *c, const char *what, const char *sql, int nparams,
		 const char *const *params, ExecStatusType want, PGresult **out,
		 char *err, size_t err_size);
/* A guarded update of exactly one row: 0, -EUCLEAN when it changed none
 * (err not set), or repl__pg_run's error. */
int repl__pg_update_one(PGconn *c, const char *what, const char *sql,
			int nparams, const char *const *params, char *err,
			size_t err_size);
int repl__pg_copy(PGconn *c, const char *sql, const struct buf *b, char *err,
		  size_t err_size);
/* A decimal integer PostgreSQL sent, validated. */
bool repl__parse_i64(const char *s, int64_t *out);
/* The embedded migrations (replicator/migrations) on r->conn[0]. */
int repl__migrate(repl *r, char *err, size_t es);

/* ---- maint.c: partitions, the maintenance thread ------------------------------ */

/* ensure_class_events_partitions for months lo..hi. */
int repl__partitions_ensure(repl *r, uint32_t lo, uint32_t hi, char *err,
			    size_t es);
/* Those of the months from last month to cfg.partition_months_ahead, then
 * the list of those that exist into r->months (at connect). */
int repl__partitions_ahead(repl *r, char *err, size_t es);
/* repl__partitions_ahead as a run of the job partitions_ahead (at connect,
 * then every REPL_PARTITIONS_EVERY_MS, main thread). */
int repl__partitions_job(repl *r, char *err, size_t es);
void *repl__maint_thread(void *arg);

/* ---- jobsync.c: the jobs registry into PostgreSQL ------------------------------ */

/* One copy on c (maintenance thread): every job's state, the registry's
 * runs after *after (moved on success), the old runs pruned; *lost grows
 * by the runs the registry no longer held. 0 or repl__pg_run's error. */
int repl__jobs_sync(repl *r, PGconn *c, uint64_t *after, uint64_t *lost,
		    char *err, size_t es);

#endif
