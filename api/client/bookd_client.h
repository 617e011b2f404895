/*
 * bookd_client.h: the C client library of bookd's binary protocol
 * (docs/protocol.md). In the tree, link the static library bookd_client
 * (and msgpack-c); installed (docs/operations.md "Install"), use
 * `pkg-config --cflags --libs bookd-client`: libbookd_client.so.1, or
 * libbookd_client.a with --static.
 *
 * One bc_client is one connection: connect (with the hello and its key),
 * then either
 *   - synchronous calls, one request at a time: each returns < 0 (-errno)
 *     when the transport failed (the connection is then unusable), else the
 *     server's answer as an enum bc_code (BC_OK, or a refusal such as
 *     BC_EVENT_FULL); the whole last answer (code string, message,
 *     retry_after, replayed) is bc_last(c);
 *   - or the pipelined calls (*_async): each queues a request and returns
 *     its request id; bc_flush() sends what is queued; bc_recv() returns
 *     the answers one at a time, matched by their request id (the server
 *     sends them in request order, but match by id); a load generator
 *     that keeps many requests in flight takes every answer already
 *     received with bc_recv_ready() (no system call) and waits with
 *     bc_wait() only when none is. A book_batch request
 *     gets one answer per item, each with the batch's request id and the
 *     item's index. Do not mix: a synchronous call while pipelined answers
 *     are pending returns -EBUSY.
 * Blocking sockets; one thread per bc_client. Ids are uint64 (never 0),
 * customer ids strings (1-64 of A-Za-z0-9._:@-), times ms since the Unix
 * epoch (UTC), dates "YYYY-MM-DD".
 */
#ifndef BOOKD_CLIENT_H
#define BOOKD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_PROTOCOL_VERSION 1
#define BC_FRAME_SIZE_MAX (1u << 20) /* a frame, its 4-byte length included */
#define BC_CUSTOMER_ID_SIZE_MAX 64
#define BC_NAME_SIZE_MAX 128
#define BC_KEY_SIZE_MAX 255 /* idempotency key, bytes */
#define BC_CODE_SIZE 40	    /* an error code string and its NUL */
#define BC_MESSAGE_SIZE 160
#define BC_CURSOR_SIZE 64
#define BC_BATCH_COUNT_MAX 256 /* items of one book_batch */
#define BC_LIST_LIMIT_MAX 500
#define BC_PAY_REF_SIZE 64	  /* a PaymentIntent id with its NUL */
#define BC_CLIENT_SECRET_SIZE 256 /* a client_secret with its NUL */
#define BC_DEFAULT_ADDR "127.0.0.1:7070"

typedef struct bc_client bc_client;

/* The server's answer. Every code string the server sends maps to one of
 * these; an unknown one is BC_OTHER (the string is in bc_last()). */
enum bc_code {
	BC_OK = 0,
	BC_EVENT_FULL, /* no seat, no waitlist room */
	BC_ALREADY_BOOKED,
	BC_EVENT_NOT_BOOKABLE, /* cancelled or started */
	BC_NOT_FOUND,	       /* unknown id, or not yours */
	BC_BOOKING_NOT_ACTIVE,
	BC_BOOKING_NOT_PENDING,
	BC_PAYMENT_MISMATCH,
	BC_CAPACITY_BELOW_TAKEN,
	BC_IDEMPOTENCY_KEY_REUSED,    /* same key, another request */
	BC_IDEMPOTENCY_KEY_IN_FLIGHT, /* same key still being decided */
	BC_IDEMPOTENCY_KEY_REQUIRED,  /* book and cancel need a key */
	BC_INVALID_REQUEST,
	BC_UNAUTHORIZED, /* no hello, bad or expired key */
	BC_FORBIDDEN,	 /* the key may not do this */
	BC_RATE_LIMITED, /* see bc_last()->retry_after_s */
	BC_OVERLOADED,
	BC_UNAVAILABLE, /* writes refused (log failed, full) */
	BC_FRAME_TOO_LARGE,
	BC_UNSUPPORTED_VERSION,
	BC_INTERNAL,
	BC_TOKEN_EXPIRED, /* the JWT's exp passed (hello, or since:
				   * then the connection closes) */
	BC_EVENT_STARTED, /* a customer's cancel after the class started */
	BC_OTHER,
	BC_CODE_COUNT
};

enum bc_payment {
	BC_PAY_AUTO = 0, /* the price decides */
	BC_PAY_NONE,	 /* confirm at once (service key; a customer's
			  * confirms a free event, holds a priced one) */
	BC_PAY_STRIPE,	 /* hold until paid */
};

enum bc_booking_status {
	BC_BOOKING_UNKNOWN = 0,
	BC_BOOKING_CONFIRMED,
	BC_BOOKING_PENDING_PAYMENT,
	BC_BOOKING_WAITLISTED,
	BC_BOOKING_CANCELLED,
	BC_BOOKING_EXPIRED,
	BC_BOOKING_PAYMENT_FAILED,
	BC_BOOKING_WAITLIST_EXPIRED, /* still waitlisted when the class started */
};

enum bc_event_status {
	BC_EVENT_UNKNOWN = 0,
	BC_EVENT_SCHEDULED,
	BC_EVENT_CANCELLED,
};

struct bc_booking {
	uint64_t id, event_id;
	char customer_id[BC_CUSTOMER_ID_SIZE_MAX + 1];
	enum bc_booking_status status;
	uint32_t position;	 /* waitlist place (1-based), 0 when none */
	int64_t hold_expires_at; /* 0 when no hold */
	int64_t created_at;
	bool late; /* cancelled inside the org's cut-off (a seat it held) */
	/* a hold's Stripe PaymentIntent once bookd made it, "" before (and
	 * for a booking that holds no seat): for Stripe.js */
	char payment_intent_id[BC_PAY_REF_SIZE];
	char client_secret[BC_CLIENT_SECRET_SIZE];
};

struct bc_event {
	uint64_t id, series_id, org_id, location_id, instructor_id;
	char title[BC_NAME_SIZE_MAX];
	int64_t start_at;
	uint32_t duration_min;
	uint32_t capacity, booked, held, available;
	uint32_t waitlist_length, waitlist_capacity;
	uint32_t price_cents;
	char currency[4]; /* "" when free */
	enum bc_event_status status;
	uint64_t version;
};

/* A series as the HTTP body states it. Strings are NUL-terminated;
 * optional ones may be NULL. */
struct bc_series_spec {
	uint64_t org_id, location_id, instructor_id;
	const char *title;
	uint32_t capacity, waitlist_capacity;
	uint32_t price_cents;
	const char *currency;	/* NULL or "" when free */
	const char *timezone;	/* IANA, "Europe/Vienna" */
	const char *weekdays;	/* "MO,WE,FR" */
	const char *start_time; /* "HH:MM" local */
	uint32_t duration_min;
	const char *first_date; /* "YYYY-MM-DD" */
	const char *last_date;	/* NULL: open ended */
	const char *skip_dates; /* NULL, or "YYYY-MM-DD,YYYY-MM-DD" */
};

/* The catalogue's kinds (bc_cat_get, bc_cat_list). */
enum bc_cat_kind {
	BC_CAT_ORG = 1,
	BC_CAT_LOCATION,
	BC_CAT_INSTRUCTOR,
	BC_CAT_SERIES,
};

#define BC_SKIP_DATES_SIZE (64 * 11) /* 64 dates, comma separated */

/* A catalogue object as read: an org (name, timezone, settings), a location or an
 * instructor (org_id, name), a series (name is its title; the rest as it
 * was created, strings as bc_series_spec takes them). */
struct bc_cat {
	enum bc_cat_kind kind;
	uint64_t id, org_id;
	char name[BC_NAME_SIZE_MAX];
	char timezone[64];
	/* org: its settings; 0 hold_minutes, horizon_days: the server's */
	uint32_t cancel_cutoff_hours, hold_minutes, horizon_days;
	/* series */
	uint64_t location_id, instructor_id;
	uint32_t capacity, waitlist_capacity, price_cents, duration_min;
	char currency[4];		     /* "" when free */
	char weekdays[32];		     /* "MO,WE,FR" */
	char start_time[8];		     /* "HH:MM" */
	char first_date[12];		     /* "YYYY-MM-DD" */
	char last_date[12];		     /* "" when open ended */
	char skip_dates[BC_SKIP_DATES_SIZE]; /* "YYYY-MM-DD,..." or "" */
};

struct bc_event_patch {
	int64_t capacity;	/* < 0: unchanged */
	bool cancel;		/* set status cancelled */
	uint64_t instructor_id; /* 0: unchanged */
	/* an edit (docs/core.md "Event edits"): */
	bool restore;	       /* status scheduled: a cancelled event back */
	uint64_t location_id;  /* 0: unchanged */
	int64_t start_at;      /* ms since the epoch; 0: unchanged */
	uint32_t duration_min; /* 0: unchanged */
	const char *title;     /* NULL: unchanged */
};

struct bc_list_query {
	uint64_t org_id, location_id, instructor_id; /* 0: any */
	int64_t from, to;   /* ms, [from, to); 0: unset */
	uint32_t limit;	    /* 0: the server's default (50) */
	const char *cursor; /* NULL, or a next_cursor */
};

#define BC_JOB_COUNT_MAX 32

/* A scheduled job of the server (docs/operations.md, Jobs). */
struct bc_job_info {
	char name[32];
	char schedule[64];    /* "every 1 s", "daily, and at start"; "" */
	bool active;	      /* scheduled (not configured off) */
	char result[8];	      /* of the last run: "ok", "failed", "never" */
	int64_t last_run_at;  /* ms; 0 never */
	uint64_t duration_us; /* of the last run */
	int64_t next_run_at;  /* ms; 0 not known */
	uint64_t runs, failures;
	char message[160]; /* of the last run; "" */
};

struct bc_status_info {
	uint32_t shard_count, thread_count;
	uint64_t conn_count;
	uint64_t wal_appended_lsn, wal_durable_lsn, wal_sync_count;
	uint64_t wal_sync_us_avg, wal_sync_us_max;
	int64_t wal_error; /* 0 or -errno */
	char repl_state[24];
	uint64_t repl_lag_records;
	double repl_lag_seconds;
	uint64_t requests_total;
	int64_t started_at;
	uint32_t job_count;
	struct bc_job_info jobs[BC_JOB_COUNT_MAX];
};

/* An org's settings (docs/core.md "Org settings"). In a request, a field
 * < 0 is not given (org create: its default; org patch: unchanged). In an
 * answer, hold_minutes and horizon_days 0 mean the server's own. */
struct bc_org_settings {
	int32_t cancel_cutoff_hours; /* 0..720, default 12 */
	int32_t hold_minutes;	     /* 0..1440 */
	int32_t horizon_days;	     /* 0..the server's generate_max_days */
};

/* One answer, as bc_recv() returns it and as bc_last() keeps it. The
 * pointers (events, bookings) stay valid until the next call on the
 * client. */
struct bc_answer {
	uint64_t req_id;
	int32_t index;	/* book_batch: the item's index, else -1 */
	uint32_t count; /* book_batch: the batch's item count */
	int code;	/* enum bc_code */
	char code_name[BC_CODE_SIZE]; /* "ok", "event_full", ... */
	char message[BC_MESSAGE_SIZE];
	uint32_t retry_after_s;
	bool replayed; /* an idempotent replay of the first answer */
	uint64_t id;   /* org, location, instructor, series created */
	char customer_id[BC_CUSTOMER_ID_SIZE_MAX + 1]; /* customer created */
	bool has_org_settings; /* an org created or patched: its settings */
	struct bc_org_settings org_settings;
	uint32_t generated;
	bool has_booking, has_promoted, has_event, has_status;
	struct bc_booking booking, promoted;
	struct bc_event event;
	const struct bc_event *events;
	uint32_t event_count;
	const struct bc_booking *bookings;
	uint32_t booking_count;
	bool more;
	char next_cursor[BC_CURSOR_SIZE]; /* "" at the end */
	struct bc_status_info status;
	/* series.patch, series.end: the series and its events made anew or
	 * moved, kept (detached), cancelled */
	uint64_t series_id;
	uint32_t regenerated, kept, cancelled;
};

/* ---- Connection ---- */

/* addr: "host:port" ("127.0.0.1:7070", "[::1]:7070", "localhost:7070"),
 * or a unix socket path ("unix:/run/bookd.sock" or "/run/bookd.sock").
 * auth: the service key, the anon key or a customer JWT. Sends the hello
 * and waits for its answer. 0, or -errno with a message in err:
 * -ECONNREFUSED, -EACCES (key refused: bc code unauthorized), -EPROTO. */
int bc_connect(const char *addr, const char *auth, bc_client **out, char *err,
	       size_t err_size);
void bc_close(bc_client *c);
/* Receive timeout for every blocking wait, ms (default 30000; 0: none). */
void bc_set_timeout(bc_client *c, int timeout_ms);
/* "service", "anon" or "customer", as the hello answer said. */
const char *bc_role(const bc_client *c);
/* The last answer received (code string, message, retry_after, ...). */
const struct bc_answer *bc_last(const bc_client *c);
int bc_fd(const bc_client *c);

/* ---- Synchronous calls: < 0 -errno (transport), else enum bc_code ----
 * key: the idempotency key, NULL for none (book and cancel require one). */

int bc_org_create(bc_client *c, const char *name, const char *timezone,
		  const char *key, uint64_t *id);
/* bc_org_create with settings (NULL: none given). */
int bc_org_create_with(bc_client *c, const char *name, const char *timezone,
		       const struct bc_org_settings *settings, const char *key,
		       uint64_t *id);
/* Changes the settings given (at least one); out (NULL: not wanted): the
 * org's settings as they are now. */
int bc_org_patch(bc_client *c, uint64_t org_id,
		 const struct bc_org_settings *settings, const char *key,
		 struct bc_org_settings *out);
int bc_location_create(bc_client *c, uint64_t org_id, const char *name,
		       const char *key, uint64_t *id);
int bc_instructor_create(bc_client *c, uint64_t org_id, const char *name,
			 const char *key, uint64_t *id);
/* email, name: NULL for none. */
int bc_customer_create(bc_client *c, const char *customer_id, const char *email,
		       const char *name, const char *key);
int bc_series_create(bc_client *c, const struct bc_series_spec *spec,
		     const char *key, uint64_t *series_id, uint32_t *generated);
/* A series changed from a date on (docs/protocol.md series.patch): what
 * is NULL or < 0 (duration_min 0) stays; at least one change. weekdays
 * "MO,WE,FR"; dates "YYYY-MM-DD"; start_time "HH:MM". */
struct bc_series_patch {
	const char *title, *currency, *start_time, *weekdays, *last_date;
	int64_t capacity, waitlist_capacity, price_cents;
	uint32_t duration_min;
	const char *from; /* NULL: today in the series' zone */
};
/* The counts in bc_last(c): series_id, regenerated, kept, cancelled. */
int bc_series_patch(bc_client *c, uint64_t series_id,
		    const struct bc_series_patch *patch, const char *key);
/* The series ends on last_date: its later classes cancelled, their
 * customers told (series.end). */
int bc_series_end(bc_client *c, uint64_t series_id, const char *last_date,
		  const char *key);
/* until: "YYYY-MM-DD" or NULL (the horizon); series_id 0: every series. */
int bc_generate(bc_client *c, const char *until, uint64_t series_id,
		const char *key, uint32_t *generated);
int bc_event_get(bc_client *c, uint64_t event_id, struct bc_event *out);
/* Up to cap events into out; next_cursor (BC_CURSOR_SIZE) "" at the end. */
int bc_event_list(bc_client *c, const struct bc_list_query *q,
		  struct bc_event *out, uint32_t cap, uint32_t *count,
		  char *next_cursor);
/* An org, location, instructor or series by id into out. */
int bc_cat_get(bc_client *c, enum bc_cat_kind kind, uint64_t id,
	       struct bc_cat *out);
/* A page of them in id order (of org_id when not 0; not for orgs): at
 * most limit (0: the server's 50), after cursor (NULL: from the first),
 * into out[0..cap); how many in *count; the next page's cursor in
 * next_cursor (BC_CURSOR_SIZE bytes; "" at the end). */
int bc_cat_list(bc_client *c, enum bc_cat_kind kind, uint64_t org_id,
		uint32_t limit, const char *cursor, struct bc_cat *out,
		uint32_t cap, uint32_t *count, char *next_cursor);
int bc_event_patch(bc_client *c, uint64_t event_id,
		   const struct bc_event_patch *patch, const char *key,
		   struct bc_event *out);
int bc_book(bc_client *c, uint64_t event_id, const char *customer_id,
	    const char *key, enum bc_payment payment, struct bc_booking *out);
/* promoted: NULL, or filled (id 0 when nobody was promoted). */
int bc_cancel(bc_client *c, uint64_t booking_id, const char *key,
	      struct bc_booking *out, struct bc_booking *promoted);
int bc_booking_get(bc_client *c, uint64_t booking_id, struct bc_booking *out);
/* Newest first, up to cap (<= BC_LIST_LIMIT_MAX). */
int bc_customer_bookings(bc_client *c, const char *customer_id,
			 struct bc_booking *out, uint32_t cap, uint32_t *count);
int bc_status(bc_client *c, struct bc_status_info *out);

struct bc_book_item {
	uint64_t event_id;
	const char *customer_id;
	const char *key; /* required */
	enum bc_payment payment;
};
/* n <= BC_BATCH_COUNT_MAX bookings in one frame. Returns < 0 (transport),
 * or the batch's own code (BC_OK, or a refusal of the whole batch such as
 * BC_INVALID_REQUEST: then nothing was booked); each item's code
 * (enum bc_code) in codes[i] and its booking in out[i] (out may be NULL). */
int bc_book_batch(bc_client *c, const struct bc_book_item *items, uint32_t n,
		  int *codes, struct bc_booking *out);

/* ---- Pipelined calls ----
 * Each queues one request and gives its id; 0 or -errno (-EBUSY: too many
 * unanswered, BC_PIPELINE_MAX). Send with bc_flush(), then bc_recv(). */
#define BC_PIPELINE_MAX 65536

int bc_book_async(bc_client *c, uint64_t event_id, const char *customer_id,
		  const char *key, enum bc_payment payment, uint64_t *req_id);
/* One answer per item (answer.index, answer.count), or one answer with
 * index -1 when the whole batch was refused. */
int bc_book_batch_async(bc_client *c, const struct bc_book_item *items,
			uint32_t n, uint64_t *req_id);
int bc_cancel_async(bc_client *c, uint64_t booking_id, const char *key,
		    uint64_t *req_id);
int bc_event_get_async(bc_client *c, uint64_t event_id, uint64_t *req_id);
int bc_booking_get_async(bc_client *c, uint64_t booking_id, uint64_t *req_id);
/* The page is in the answer (events, event_count, next_cursor), valid
 * until the next bc_recv. */
int bc_event_list_async(bc_client *c, const struct bc_list_query *q,
			uint64_t *req_id);
/* Sends everything queued (reading answers meanwhile so that neither side
 * blocks). 0 or -errno. */
int bc_flush(bc_client *c);
/* The next answer: one already received, else flushes what is queued and
 * blocks until one comes. 0, -ETIMEDOUT, -ECONNRESET
 * (closed: a connection-level error answer, if any, is in bc_last()),
 * -EPROTO (malformed answer). */
int bc_recv(bc_client *c, struct bc_answer *out);
/* Never blocks, makes no system call: the next answer when its frame is
 * whole in what was received already: 1 (the answer in *out, out may be
 * NULL, and in bc_last()), 0 when none is, or < 0 as bc_recv (-EPROTO).
 * Take answers with it until it returns 0, then bc_wait(). */
int bc_recv_ready(bc_client *c, struct bc_answer *out);
/* Sends what is queued (one send when the socket takes it all; a poll only
 * when it does not), then waits up to timeout_us (< 0: no limit) until a
 * whole answer is received (reading first without waiting when many are
 * due). 1: bc_recv_ready() has one; 0: the time ran out, or nothing is due
 * (bc_pending() 0); < 0 -errno (the connection is then unusable). */
int bc_wait(bc_client *c, int64_t timeout_us);
/* Requests still unanswered (a batch counts until its last item's answer,
 * or its one refusal). */
uint64_t bc_pending(const bc_client *c);

/* ---- Names ---- */
const char *bc_code_name(int code);
int bc_code_from_name(const char *s, size_t n);
const char *bc_booking_status_name(enum bc_booking_status s);
const char *bc_event_status_name(enum bc_event_status s);

#endif
