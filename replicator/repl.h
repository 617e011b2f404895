/*
 * repl.h: the replicator (public API). It tails the durable log of a node
 * and writes every decision into the PostgreSQL reporting schema
 * (replicator/migrations), exactly once, off the booking path: it only
 * reads the log (wal_reader_*), and holds back the removal of segments it
 * has not applied yet (wal_retain). The design is at the top of replicator.c and
 * in docs/replication.md.
 *
 *   struct repl_config cfg;
 *   repl_config_default(&cfg);
 *   cfg.conninfo = getenv("DATABASE_URL");
 *   cfg.data_dir = data_dir;          (snapshots, to resynchronise)
 *   repl_start(&cfg, node_wal(n), &r, err, sizeof(err));
 *   ... repl_status(r, &st) from any thread ...
 *   repl_stop(r);                     (before node_close)
 *
 * repl_start fails only for a bad configuration or no memory: PostgreSQL
 * down at start is the state "down", retried with capped exponential
 * backoff. Functions return 0 or -errno.
 */
#ifndef BOOKD_REPL_H
#define BOOKD_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

typedef struct repl repl;

#define REPL_BATCH_RECORDS_MAX 100000
#define REPL_STREAM_MAX 8
#define REPL_OP_STAT_COUNT_MAX 32
#define REPL_ERROR_SIZE 512

/* One request the server sampled (repl_samples_fn). */
struct repl_sample {
	int64_t at_ms;	     /* Unix ms: when it was answered */
	uint64_t ns;	     /* its duration */
	uint32_t every;	     /* 1 in `every` of its operation's were sampled */
	const char *outcome; /* "ok", "refused" (4xx) or "error" (5xx) */
	char operation[24];  /* "book", "cancel", "payment", ... */
};

/* Takes up to capacity samples the server kept since the last call
 * (*dropped: those it had to drop, its buffers full); returns how many.
 * Called from the replicator's maintenance thread every metrics
 * interval, and again at once while it fills capacity. */
typedef unsigned (*repl_samples_fn)(void *ctx, struct repl_sample *out,
				    unsigned capacity, uint64_t *dropped);

struct repl_config {
	const char *conninfo;	/* libpq connection string or URI (required) */
	const char *log_id;	/* row of replication_state (default "bookd") */
	const char *data_dir;	/* the log's directory, for snapshots (resync);
				 * NULL: a removed log stops replication */
	uint32_t batch_records; /* records per batch, 1..MAX (100000) */
	uint32_t batch_ms;	/* a partial batch waits at most this (50) */
	uint32_t refresh_interval_ms; /* materialized views (60000; 0 never) */
	uint32_t metrics_interval_ms; /* samples into performance_metrics
				       * (1000; 0 never) */
	uint32_t health_interval_ms;  /* health_checks (60000; 0 never) */
	uint32_t jobs_interval_ms;    /* the jobs registry (core/jobs.h) into
				    * bookd.jobs/job_runs (10000; 0 never) */
	uint32_t job_runs_retention_days; /* bookd.job_runs kept (7) */
	uint32_t retention_days; /* performance_metrics and health_checks rows
				  * older than this are deleted, hourly (30;
				  * 0 never) */
	uint32_t backoff_min_ms, backoff_max_ms; /* reconnects (100, 10000) */
	uint32_t partition_months_ahead;	 /* ensured at connect (13) */
	uint32_t streams; /* connections applying a batch at once, each the
			   * events hashed to it, 1..REPL_STREAM_MAX (2) */
	int wake_fd;	  /* an eventfd the log writes on durable advance
		      * (node_config.wake_fds); -1: poll every few ms */
	bool quiet;	  /* no progress lines on stderr (errors still go) */
	repl_samples_fn samples; /* NULL: no per-request samples */
	void *samples_ctx;
};

void repl_config_default(struct repl_config *cfg);

enum repl_state {
	REPL_DISABLED = 0, /* no PostgreSQL configured (r == NULL) */
	REPL_STREAMING,	   /* connected, lag within a batch */
	REPL_CATCHING_UP,  /* connected, more than a batch behind */
	REPL_DOWN,	   /* not connected (backoff), or stopped on error */
};

struct repl_status {
	enum repl_state state;
	bool stopped;	      /* a permanent error: replication stopped */
	uint64_t applied_lsn; /* in PostgreSQL (committed) */
	uint64_t durable_lsn; /* of the log */
	uint64_t lag_records; /* durable_lsn - applied_lsn */
	uint64_t lag_bytes;   /* estimate: lag_records * mean entry size */
	double lag_seconds;   /* since the oldest unapplied record became
				 * durable (0 when caught up) */
	uint64_t batch_count, records_applied, entries_applied, rows_written;
	uint64_t reconnect_count, error_count, resync_count;
	uint64_t refresh_count;	     /* materialized view refreshes done */
	uint64_t metrics_rows;	     /* performance_metrics rows written */
	uint64_t samples_dropped;    /* samples the server could not keep */
	uint64_t pruned_rows;	     /* rows the retention deleted */
	double last_batch_ms;	     /* duration of the last transaction */
	char error[REPL_ERROR_SIZE]; /* last error ("" none) */
};

/* Starts the replicator's threads. err gets a one-line message. */
int repl_start(const struct repl_config *cfg, wal *w, repl **out, char *err,
	       size_t err_size);

/* Thread-safe; r may be NULL (state REPL_DISABLED). */
void repl_status(repl *r, struct repl_status *out);
const char *repl_state_name(enum repl_state s);

/* Asks for a refresh of the materialized views (CONCURRENTLY) now, on the
 * maintenance thread; returns at once. refresh_count moves when done. */
int repl_refresh_views(repl *r);

/* Blocks until applied_lsn >= lsn (0), the replicator stopped on an error
 * (-EIO), or timeout_ms passed (-ETIMEDOUT). For tests and drains. */
int repl_wait_applied(repl *r, uint64_t lsn, int timeout_ms);

/* Stops the threads (a statement in flight is cancelled: its batch rolls
 * back and is applied again at the next start; nothing lost) and
 * frees r. Call before closing the log. */
void repl_stop(repl *r);

#endif
