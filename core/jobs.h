/*
 * jobs.h: the registry of bookd's scheduled jobs (jobs.c), one process-wide
 * table that every subsystem running a job writes and every reader shows:
 * GET /v1/admin/status, `bookctl status`, /metrics, and the replicator's
 * copy in PostgreSQL (bookd.jobs, bookd.job_runs). Its own target,
 * bookd_jobs (core/ links it), depending on bookd_assert only, so the
 * replicator and the notification sender use it without api/.
 *
 * The jobs are the list below (one name each, fixed); a job that never ran
 * shows as "never". A run:
 *
 *   jobs_schedule(JOBS_VIEW_REFRESH, "every 60 s", next_ms);   (at set-up)
 *   struct jobs_run run = jobs_begin(JOBS_VIEW_REFRESH);
 *   ... the work ...
 *   jobs_end(&run, rc, "refreshed 4 views", next_ms);
 *
 * rc 0 is "ok", anything else "failed"; message may be NULL; next_ms is
 * the next run's wall time (Unix ms), 0 when not known (a job run on
 * demand or by a count, not a clock). Times are wall-clock Unix ms,
 * durations from the monotonic clock. Every call is thread-safe (one
 * mutex, held for a copy) and never on the booking path.
 *
 * History: each run that failed or has a message is also kept in a ring
 * of JOBS_HISTORY_COUNT_MAX runs with a sequence number, which the
 * replicator reads with jobs_history (runs the ring overwrote before it
 * read them are counted as lost). A run that succeeded without a message
 * (the every-second tick that expired nothing) updates the state only.
 */
#ifndef BOOKD_JOBS_H
#define BOOKD_JOBS_H

#include <stdbool.h>
#include <stdint.h>

/* X(id, name): every job bookd runs; the name is what status, metrics and
 * PostgreSQL show. */
#define JOBS_LIST(X)                                                           \
	X(JOBS_HOLD_EXPIRY, "hold_expiry")                                     \
	X(JOBS_IDEMPOTENCY_EXPIRY, "idempotency_expiry")                       \
	X(JOBS_GENERATION, "generation")                                       \
	X(JOBS_ARCHIVE, "archive")                                             \
	X(JOBS_REMINDERS, "reminders")                                         \
	X(JOBS_SNAPSHOT, "snapshot")                                           \
	X(JOBS_PARTITIONS, "partitions_ahead")                                 \
	X(JOBS_VIEW_REFRESH, "view_refresh")                                   \
	X(JOBS_HEALTH_CHECKS, "health_checks")                                 \
	X(JOBS_METRICS_FLUSH, "metrics_flush")                                 \
	X(JOBS_PRUNE, "prune")                                                 \
	X(JOBS_NOTIFY_DELIVERY, "notification_delivery")                       \
	X(JOBS_JOBS_SYNC, "jobs_sync")

enum jobs_id {
#define JOBS_ENUM(id, name) id,
	JOBS_LIST(JOBS_ENUM)
#undef JOBS_ENUM
		JOBS_COUNT
};

#define JOBS_COUNT_MAX 32
#define JOBS_NAME_SIZE 32
#define JOBS_SCHEDULE_SIZE 64
#define JOBS_MESSAGE_SIZE 160
#define JOBS_HISTORY_COUNT_MAX 1024
_Static_assert(JOBS_COUNT <= JOBS_COUNT_MAX, "jobs: too many jobs");

enum jobs_result { JOBS_NEVER = 0, JOBS_OK, JOBS_FAILED };

/* One job's state, as jobs_get copies it. */
struct jobs_state {
	enum jobs_id id;
	char name[JOBS_NAME_SIZE];
	char schedule[JOBS_SCHEDULE_SIZE]; /* "every 1 s", "daily", "" unset */
	bool active;			   /* scheduled (jobs_schedule) */
	bool running;			   /* begun, not yet ended */
	enum jobs_result result;	   /* of the last run */
	int64_t last_run_at_ms;		   /* its start, Unix ms; 0 never */
	uint64_t duration_us;		   /* its duration */
	int64_t next_run_at_ms;		   /* Unix ms; 0 not known */
	uint64_t runs, failures;	   /* since start */
	char message[JOBS_MESSAGE_SIZE];   /* of the last run ("" none) */
};

/* One run in the history (jobs_history). */
struct jobs_record {
	uint64_t seq; /* 1, 2, ... since start */
	enum jobs_id id;
	bool ok;
	int64_t started_at_ms; /* Unix ms */
	uint64_t duration_us;
	char message[JOBS_MESSAGE_SIZE];
};

/* A run under way (jobs_begin's answer, jobs_end's argument). */
struct jobs_run {
	enum jobs_id id;
	int64_t started_at_ms; /* Unix */
	int64_t started_ns;    /* monotonic */
};

const char *jobs_name(enum jobs_id id);
/* The id of a name, or -ENOENT. */
int jobs_find(const char *name);

/* Marks id scheduled, with a human schedule ("every 10 s", "daily",
 * "every 10000000 log records") and its first run (Unix ms; 0 unknown).
 * active false: configured off (schedule says why, e.g. "off"). */
void jobs_schedule(enum jobs_id id, const char *schedule, bool active,
		   int64_t next_run_at_ms);
/* Moves the next run (Unix ms; 0 unknown) without a run. */
void jobs_next(enum jobs_id id, int64_t next_run_at_ms);

struct jobs_run jobs_begin(enum jobs_id id);
/* rc 0: ok; else failed. message: NULL or a line (cut to fit). */
void jobs_end(const struct jobs_run *run, int rc, const char *message,
	      int64_t next_run_at_ms);

/* A copy of id's state. */
void jobs_get(enum jobs_id id, struct jobs_state *out);

/* Up to capacity runs with seq > after, oldest first; returns how many.
 * *lost (may be NULL): runs after `after` the ring no longer holds. */
unsigned jobs_history(uint64_t after, struct jobs_record *out,
		      unsigned capacity, uint64_t *lost);

/* Wall-clock now, Unix ms (the clock every job time is on). */
int64_t jobs_now_ms(void);

#endif
