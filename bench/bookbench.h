/*
 * bookbench.h: the parts of bookbench (internal to bench/).
 *
 *   bookbench.c         main: flags, the commands, the reports written
 *   bookbench_scenario.c  the scenarios: each connection's next operation
 *   bookbench_load.c    one run: event-loop threads, closed and open loop,
 *                       progress
 *   bookbench_check.c   the check after a run: everything read back
 *   bookbench_bookd.c   a bookd of bookbench's own (--bookd)
 *     (these five share bookbench_internal.h, which this header does not see)
 *   bookbench_hist.c    log-linear latency histograms (bounded memory)
 *   bookbench_report.c  the end table, the JSON result, the HTML report
 *   bookbench_pg.c      driver baseline-pg: the seed's design in PostgreSQL
 *   bookbench_http.c    driver bookd-http: HTTP/1.1 keep-alive, pipelined
 *   bookbench_bin.c     driver bookd-binary: the client library (bookd_client.h)
 *
 * A driver is one way to reach a booking system. A scenario is written once
 * against the driver interface: operations (bb_op) go in on a connection,
 * results (bb_result) come back in the order they were submitted.
 */
#ifndef BOOKBENCH_H
#define BOOKBENCH_H

#include "bookd_assert.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BB_KEY_SIZE_MAX 48
#define BB_CUSTOMER_SIZE_MAX 64
#define BB_ERR_SIZE 256

/* ---- Histograms ------------------------------------------------------- */

/* Log-linear buckets over nanoseconds: below 2^BB_HIST_SUB_BITS one bucket
 * per ns; above, each power of two is cut into 2^BB_HIST_SUB_BITS equal
 * buckets (relative error < 1/64). Values above 2^BB_HIST_MAG_MAX ns
 * (~18 min) are clamped. Fixed size: no allocation. */
#define BB_HIST_SUB_BITS 6
#define BB_HIST_MAG_MAX 40
#define BB_HIST_BUCKET_COUNT                                                   \
	((BB_HIST_MAG_MAX - BB_HIST_SUB_BITS + 1) << BB_HIST_SUB_BITS)

struct bb_hist {
	uint64_t count;
	uint64_t min_ns, max_ns;
	double sum_ns;
	uint64_t buckets[BB_HIST_BUCKET_COUNT];
};

void bb_hist_reset(struct bb_hist *h);
void bb_hist_record(struct bb_hist *h, uint64_t ns);
void bb_hist_add(struct bb_hist *into, const struct bb_hist *from);
/* The value at quantile q (0..1): the upper edge of its bucket, capped by
 * the maximum seen; 0 when empty. */
uint64_t bb_hist_quantile(const struct bb_hist *h, double q);
/* Bucket index <-> value range, for plots. */
unsigned bb_hist_index(uint64_t ns);
uint64_t bb_hist_bucket_low(unsigned index);
uint64_t bb_hist_bucket_high(unsigned index); /* exclusive */

/* ---- Operations and results ------------------------------------------- */

enum bb_op_kind {
	BB_OP_BOOK = 0,
	BB_OP_CANCEL,
	BB_OP_EVENT_GET,   /* availability of one event */
	BB_OP_EVENT_LIST,  /* an org's listing for a time window */
	BB_OP_BOOKING_GET, /* read back (checks) */
	BB_OP_KIND_COUNT
};

struct bb_op {
	enum bb_op_kind kind;
	uint64_t event_id;	/* BOOK, EVENT_GET */
	uint64_t booking_id;	/* CANCEL, BOOKING_GET */
	uint64_t org_id;	/* EVENT_LIST */
	int64_t from_ms, to_ms; /* EVENT_LIST window, [from, to) */
	char customer[BB_CUSTOMER_SIZE_MAX + 1];
	char key[BB_KEY_SIZE_MAX]; /* idempotency key, "" for reads */
};

/* Outcomes. Up to BB_REFUSAL_LAST they are answers the system is right to
 * give (decisions); after it, errors. */
enum bb_code {
	BB_OK = 0,
	BB_EVENT_FULL,
	BB_ALREADY_BOOKED,
	BB_NOT_BOOKABLE,
	BB_NOT_ACTIVE, /* cancel of a booking already ended */
	BB_REFUSAL_LAST = BB_NOT_ACTIVE,
	BB_NOT_FOUND,
	BB_IDEM_MISMATCH, /* key reused with another request */
	BB_RATE_LIMITED,  /* 429 */
	BB_UNAVAILABLE,	  /* 503 */
	BB_BAD_REQUEST,	  /* 400, 401, 403, 422 */
	BB_SERVER_ERROR,  /* other 5xx */
	BB_TRANSPORT,	  /* connection lost, malformed answer */
	BB_REPLAY_DIFFERS, /* an idempotent replay answered differently (bookbench's own check) */
	BB_OTHER,
	BB_CODE_COUNT
};

const char *bb_code_name(enum bb_code code);
/* The code an answer's error name stands for (bb_code_name's names, and
 * bookd's and the baseline's own spellings); BB_OTHER when unknown. */
enum bb_code bb_code_of(const char *name);
/* A driver's set-up listed `found` of the `want` events it made: 0, or
 * -EIO with the message in err. */
int bb_events_found(uint32_t found, uint32_t want, char *err, size_t err_size);
static inline bool bb_code_is_error(enum bb_code code)
{
	return code > BB_REFUSAL_LAST;
}

enum bb_status {
	BB_ST_NONE = 0,
	BB_ST_CONFIRMED,
	BB_ST_PENDING,
	BB_ST_WAITLISTED,
	BB_ST_CANCELLED,
	BB_ST_OTHER, /* expired, payment_failed */
};

static inline bool bb_status_active(enum bb_status st)
{
	return st == BB_ST_CONFIRMED || st == BB_ST_PENDING ||
	       st == BB_ST_WAITLISTED;
}

struct bb_result {
	enum bb_code code;
	enum bb_status status;
	uint64_t booking_id;  /* BOOK, CANCEL, BOOKING_GET */
	uint64_t event_id;    /* BOOKING_GET */
	uint64_t promoted_id; /* CANCEL: the booking that got the seat, 0 none */
	uint32_t position;    /* waitlist place, 0 when not waiting */
	/* EVENT_GET */
	uint32_t capacity, booked, held, waitlist_length;
	bool event_cancelled;
	uint32_t count; /* EVENT_LIST: events returned */
	bool replayed;
};

/* ---- The data set ----------------------------------------------------- */

struct bb_dataset {
	/* asked for */
	uint32_t org_count;
	uint32_t event_count; /* series of one event each, on one day */
	uint32_t capacity, waitlist_capacity;
	char day[11];	  /* YYYY-MM-DD (UTC) the events are on */
	int64_t day_ms;	  /* its midnight, UTC */
	char run_tag[24]; /* names objects of this run */
	/* made by the driver's setup */
	uint64_t *org_ids;   /* org_count */
	uint64_t *event_ids; /* event_count */
	uint32_t *event_org; /* event_count: index into org_ids */
};

/* ---- Drivers ---------------------------------------------------------- */

struct bb_config; /* bookbench.c */

struct bb_driver {
	const char *name;
	/* Largest useful --inflight per connection (1: one at a time). */
	unsigned inflight_max;
	/* Creates the data set (fills org_ids, event_ids, event_org). */
	int (*setup)(const struct bb_config *cfg, struct bb_dataset *ds,
		     char *err, size_t err_size);
	int (*open)(const struct bb_config *cfg, void **conn, char *err,
		    size_t err_size);
	/* Queues an operation (sent at the latest by the next poll). 0 or
	 * -errno (the connection is then unusable). */
	int (*submit)(void *conn, const struct bb_op *op);
	/* Sends what was submitted, takes the results there are and waits up
	 * to timeout_ns for one when there were none; returns how many were
	 * written to out (in submit order), or -errno. With timeout 0 it
	 * never waits: an event loop over many connections calls it so. */
	int (*poll)(void *conn, struct bb_result *out, int max,
		    int64_t timeout_ns);
	/* Sends what was submitted, as far as the socket takes it now: 1 when
	 * results are there already (a poll takes them without the descriptor
	 * being ready), else 0; or -errno. An event loop calls it after
	 * submitting, and poll when the descriptor is ready or flush said 1. */
	int (*flush)(void *conn);
	/* The descriptor an event loop waits on for conn, and the poll events
	 * to wait for into *events: POLLIN, with POLLOUT while output the
	 * socket did not take is queued. */
	int (*fd)(void *conn, short *events);
	void (*close)(void *conn); /* a connection open() made */
	/* Optional: the driver's own consistency checks after a run (e.g. the
	 * SQL invariants of the baseline). Appends lines to report; returns
	 * the number of problems found, or -errno. */
	int (*check)(const struct bb_config *cfg, const struct bb_dataset *ds,
		     char *report, size_t report_size);
	/* Optional: what the system says about itself, JSON object text. */
	void (*describe)(const struct bb_config *cfg, char *out,
			 size_t out_size);
};

/* A driver's functions are named <prefix>_setup, _open, _submit, _poll,
 * _flush, _fd, _close and _describe (check, optional, is set on its own):
 * BB_DRIVER_FUNCS(http) in a struct bb_driver initializer sets them. */
#define BB_DRIVER_FUNCS(prefix)                                                \
	.setup = prefix##_setup, .open = prefix##_open,                        \
	.submit = prefix##_submit, .poll = prefix##_poll,                      \
	.flush = prefix##_flush, .fd = prefix##_fd, .close = prefix##_close,   \
	.describe = prefix##_describe

extern const struct bb_driver bb_driver_pg;
extern const struct bb_driver bb_driver_http;
extern const struct bb_driver bb_driver_bin; /* .submit NULL when not built */

/* What the drivers' files do for the rest of bookbench besides a run. */
struct bb_bookd_info; /* below */
/* baseline-pg (bookbench_pg.c): creates the schema `baseline` from the SQL
 * files (setup-baseline). 0 or -errno, err filled. */
int bb_pg_setup_schema(const struct bb_config *cfg, char *err, size_t err_size);
/* A fresh database `name` next to url's; new_url is url pointing at it. */
int bb_pg_create_db(const char *url, const char *name, char *new_url,
		    size_t new_url_size, char *err, size_t err_size);
int bb_pg_drop_db(const char *url, const char *name);
/* Whether libpq reaches url through a unix socket (no host, or a host
 * that is a directory). */
bool bb_pg_url_is_unix(const char *url);
/* The replication check: waits up to wait_s for bookd's tables in url to
 * hold the events' booked counts and the acknowledged bookings (cancelled
 * or not); appends a line to report; the number of problems, or -errno. */
int bb_pg_replica_check(const char *url, const uint64_t *event_ids,
			const uint32_t *booked, size_t count,
			const uint64_t *booking_ids, const uint8_t *cancelled,
			size_t booking_count, double wait_s, char *report,
			size_t report_size);
/* bookd over HTTP (bookbench_http.c): 0 when /health answers 200. */
int bb_http_health(const struct bb_config *cfg);
/* A short JSON object of /v1/admin/status for the report (both bookd
 * drivers); via names the driver's protocol. */
void bb_bookd_describe(const struct bb_config *cfg, const char *via, char *out,
		       size_t out_size);
/* The version and build type a bookd reports in /v1/admin/status. */
int bb_bookd_version(const struct bb_config *cfg, struct bb_bookd_info *out);

/* ---- Configuration (flags) -------------------------------------------- */

struct bb_config {
	const char *database_url; /* baseline-pg, and the replication check */
	const char *http_addr;	  /* host:port */
	const char *binary_addr;  /* host:port */
	const char *service_key;
	const char *baseline_sql_dir;
	bool pg_durable; /* ALTER SYSTEM fsync = on before the baseline */
	unsigned batch; /* bookd-binary: bookings per book.batch frame (<= 1: none) */
	unsigned source_count; /* HTTP to loopback: spread connections over
				      127.0.0.2.. (as many clients would come) */
	bool verbose;
};

/* Small helpers shared by the drivers (bookbench.c). */
int64_t bb_now_ns(void);
/* A driver's setup: the data set's arrays for org_count orgs and
 * event_count events, zeroed. 0 or -ENOMEM. bb_dataset_free frees them and
 * ds (made by calloc). */
int bb_dataset_alloc(struct bb_dataset *ds);
void bb_dataset_free(struct bb_dataset *ds);
int bb_parse_addr(const char *addr, char *host, size_t host_size, int *port);
void bb_errf(char *err, size_t err_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- Results and reports ---------------------------------------------- */

#define BB_TIMELINE_MAX 86400

struct bb_second {
	double t; /* seconds since start, end of the interval */
	uint64_t count, errors;
	uint64_t p50_ns, p99_ns, max_ns;
};

struct bb_run {
	char scenario[32];
	char driver[32];
	char mode[16]; /* closed | open */
	unsigned connections, inflight;
	unsigned threads; /* the load's threads (event loops) */
	double rate;	  /* open loop, requests/s offered */
	struct bb_dataset *ds;
	double elapsed_s;
	uint64_t count; /* completed requests */
	uint64_t by_code[BB_CODE_COUNT];
	uint64_t by_kind[BB_OP_KIND_COUNT];
	uint64_t bookings_acked; /* confirmed + waitlisted answers */
	uint64_t cancels_acked;
	uint64_t promotions;
	uint64_t unsent; /* open loop: due but not sent at the end (fell behind) */
	struct bb_hist hist; /* all requests */
	struct bb_hist hist_kind[BB_OP_KIND_COUNT];
	struct bb_second *timeline;
	unsigned timeline_count;
	/* the check */
	bool checked;
	int check_problems;
	char check_report[4096];
	char system[1024]; /* describe(): JSON object, or "" */
	/* the error budget: errors (429, 5xx, transport, ...) over at most
	 * --max-error-pct of the answers, else the run failed */
	double error_pct;
	char failed[256]; /* why the run failed its budget, "" when it did not */
};

/* The bookd a run measured: its version and build type, from `bookd
 * --version` (bookbench started it) or /v1/admin/status; "" when unknown. */
struct bb_bookd_info {
	char version[32], build_type[48];
	char source[16];       /* "--version" | "admin/status" | "" */
	bool started;	       /* bookbench started it (--bookd) */
	bool limits_off;       /* ... with its rate limits off */
	char binary_socket[8]; /* ... its binary protocol on "tcp" | "unix" */
};

uint64_t bb_run_errors(const struct bb_run *run);

void bb_report_table(const struct bb_run *run, FILE *f);
/* Each non-baseline run against the baseline run of the same scenario. */
void bb_report_compare(const struct bb_run *const *runs, unsigned run_count,
		       FILE *f);
/* result.json (BB_REPORT_JSON) or report.html (BB_REPORT_HTML) of the runs,
 * written to path: 0, or -1 when the file cannot be written. */
enum bb_report_format { BB_REPORT_JSON, BB_REPORT_HTML };
/* What the reports are written from: the runs, and how and where they ran. */
struct bb_report_in {
	const struct bb_run *const *runs;
	unsigned run_count;
	const char *command;
	char machine[256];		   /* CPUs and kernel (machine_line) */
	const struct bb_bookd_info *bookd; /* NULL: the runs did not use bookd */
};
int bb_report_write(enum bb_report_format format, const struct bb_report_in *in,
		    const char *path);

#endif
