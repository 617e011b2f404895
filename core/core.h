/*
 * core.h: the booking core of bookd (public API).
 *
 * Two layers, one set of types:
 *
 *  - core_state: the deterministic state machine. Single-threaded, no clock,
 *    no I/O. Every decision is checked first, then expressed as an entry (a
 *    few records, see core_entry_*), and the state is changed only by applying
 *    that entry. Replaying the same entries into an empty state rebuilds the
 *    same state: state = fold(entries). Used by the runtime below for each
 *    shard, by WAL recovery, and by tests.
 *
 *  - core: the sharded runtime. N shards, events spread over them by XXH3
 *    of the event id, each run either by a worker thread of its own or by
 *    the thread that owns a host port (core_config.host_count: the network
 *    thread decides in its own loop, core_port_run). Callers talk to shards
 *    through a core_port (one per calling thread): lock-free SPSC rings in,
 *    SPSC rings back. No mutex on the booking path. Catalogue writes (orgs,
 *    series, generation) are rare and serialised by one mutex.
 *
 * Times are core_time: milliseconds since the Unix epoch, UTC, always passed
 * in by the caller (req.now), never read inside decisions.
 * Functions return 0 or -errno; decisions return an enum core_code.
 */
#ifndef BOOKD_CORE_H
#define BOOKD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t core_time; /* ms since 1970-01-01T00:00:00Z */

#define CORE_CUSTOMER_ID_SIZE_MAX 64 /* bytes, A-Za-z0-9._:@- */
#define CORE_NAME_SIZE_MAX 128
#define CORE_TZ_SIZE_MAX 64
#define CORE_SHARD_COUNT_MAX 64
#define CORE_SKIP_DATE_COUNT_MAX 64
#define CORE_LIST_LIMIT_MAX 500
#define CORE_LIST_LIMIT_DEFAULT 50 /* a list's size when none is asked */
#define CORE_CAPACITY_MAX 1000000  /* seats, and waitlist places, of an event */
#define CORE_PRICE_CENTS_MAX 100000000
#define CORE_DURATION_MIN_MAX 1440     /* an event's minutes: at most a day */
#define CORE_DAY_MINUTES 1440	       /* a start_minute is below it */
#define CORE_CATALOG_COUNT_MAX 1000000 /* orgs, locations, ... each, at most */
#define CORE_REMIND_LEAD_COUNT_MAX 4   /* reminder lead times, at most */
#define CORE_REMIND_HOURS_MAX 720      /* a lead time: 1..720 hours */
#define CORE_CUTOFF_HOURS_DEFAULT 12   /* an org's cancellation cut-off */
#define CORE_CUTOFF_HOURS_MAX 720
#define CORE_HOLD_MINUTES_MAX 1440 /* an org's hold time: 1..1440 minutes */
#define CORE_LEGACY_ID_SIZE_MAX 64 /* an imported row's old id, bytes */
#define CORE_LEGACY_DETAIL_SIZE 24 /* its old status, NUL included */
/* A payment provider's id (Stripe's pi_..., evt_..., re_...) with its NUL */
#define CORE_PAY_REF_SIZE_MAX 64

/* Outcome of a decision. Expected outcomes, not errors. */
enum core_code {
	CORE_OK = 0,
	CORE_EVENT_FULL,     /* no seat, no waitlist room */
	CORE_ALREADY_BOOKED, /* customer has an active booking on the event */
	CORE_NOT_BOOKABLE,   /* event cancelled or already started */
	CORE_NO_EVENT,
	CORE_NO_BOOKING,
	CORE_NO_ORG,
	CORE_NO_LOCATION,
	CORE_NO_INSTRUCTOR,
	CORE_NO_SERIES,
	CORE_NO_CUSTOMER,
	CORE_NOT_ACTIVE,       /* cancel of a booking already ended */
	CORE_NOT_PENDING,      /* payment for a booking not holding a seat */
	CORE_PAYMENT_MISMATCH, /* amount/currency differ: recorded, flagged */
	CORE_CAPACITY_BELOW_TAKEN, /* capacity < confirmed + held */
	CORE_IDEM_MISMATCH,	   /* key reused with another request */
	CORE_IDEM_IN_FLIGHT,	   /* same key still being decided */
	CORE_INVALID,		   /* malformed request */
	CORE_FULL,	    /* no room (memory, catalogue) or the log refused */
	CORE_LIMIT,	    /* past a configured limit: resp.id says which
				    * (enum core_limit), resp.count its value */
	CORE_EVENT_STARTED, /* a customer's cancel at or after start_at */
	CORE_CODE_COUNT
};

/* The limits a CORE_LIMIT answer names (core_limit_message). */
enum core_limit {
	CORE_LIMIT_GENERATE_DAYS = 1, /* generate: until too far ahead */
	CORE_LIMIT_EVENTS,	      /* events in memory, per shard */
	CORE_LIMIT_BOOKINGS,	      /* bookings in memory, per shard */
	CORE_LIMIT_CUSTOMERS,	      /* customers with bookings, per shard */
	CORE_LIMIT_EVENT_BOOKINGS,    /* bookings ever made on one event */
	CORE_LIMIT_CANCEL_NOTIFY,     /* active bookings an event cancel (or an
				   * event edit) tells */
};

enum core_booking_status {
	CORE_BOOKING_NONE = 0,
	CORE_BOOKING_CONFIRMED,
	CORE_BOOKING_PENDING_PAYMENT,
	CORE_BOOKING_WAITLISTED,
	CORE_BOOKING_CANCELLED,
	CORE_BOOKING_EXPIRED,	     /* hold ran out */
	CORE_BOOKING_PAYMENT_FAILED, /* hold released by a failed payment */
	/* waitlisted when its class started (the waitlist closed) */
	CORE_BOOKING_WAITLIST_EXPIRED = 7,
};

/* The booking statuses' names, one list for core_booking_status_name and the
 * binary protocol's table (api/proto.c): X(value, name) for each status. */
#define CORE_BOOKING_STATUS_NAMES(X)                                           \
	X(CORE_BOOKING_CONFIRMED, "confirmed")                                 \
	X(CORE_BOOKING_PENDING_PAYMENT, "pending_payment")                     \
	X(CORE_BOOKING_WAITLISTED, "waitlisted")                               \
	X(CORE_BOOKING_CANCELLED, "cancelled")                                 \
	X(CORE_BOOKING_EXPIRED, "expired")                                     \
	X(CORE_BOOKING_PAYMENT_FAILED, "payment_failed")                       \
	X(CORE_BOOKING_WAITLIST_EXPIRED, "waitlist_expired")

enum core_event_status {
	CORE_EVENT_SCHEDULED = 1,
	CORE_EVENT_CANCELLED,
};

enum core_payment {
	CORE_PAY_AUTO =
		0,     /* the price decides: priced -> hold, free -> confirm */
	CORE_PAY_NONE, /* confirm at once (paid at the desk; service key) */
	CORE_PAY_STRIPE, /* hold a seat until the payment succeeds */
};

/* What a CORE_OP_PAY records (docs/core.md "Payments"). */
enum core_pay_kind {
	CORE_PAY_KIND_WEBHOOK = 0, /* a payment's outcome (Stripe's webhook) */
	CORE_PAY_KIND_INTENT,	   /* the hold's PaymentIntent was created
				    * (ref: pi_...), or, ref "", could not
				    * be: the hold is released */
	CORE_PAY_KIND_REFUND,	   /* a refund due was made (ref: re_...),
				    * or, ref "", refused for good; its
				    * state as Stripe says (refund_state) */
};

/* Why a refund is due (CORE_REC_REFUND). */
enum core_refund_reason {
	CORE_REFUND_CANCEL = 1,		 /* a paid booking cancelled before the
				   * org's cancellation cut-off */
	CORE_REFUND_LATE_PAYMENT,	 /* paid after the hold ended */
	CORE_REFUND_EVENT_CANCELLED = 3, /* the studio cancelled the event
					  * (whatever the cut-off) */
};

/* A refund's state (CORE_REC_REFUND). */
enum core_refund_state {
	CORE_REFUND_DUE = 1,
	CORE_REFUND_DONE,
	CORE_REFUND_FAILED,	 /* the provider kept refusing, or its refund
			     * failed or was canceled: for a person */
	CORE_REFUND_PENDING = 4, /* made (ref re_...), not final yet: the
				  * sender looks at it again */
};

enum core_notify_kind {
	CORE_NOTIFY_BOOKING_CONFIRMED = 1,
	CORE_NOTIFY_PROMOTED,
	CORE_NOTIFY_CANCELLED,
	CORE_NOTIFY_EVENT_CANCELLED,
	CORE_NOTIFY_REMINDER,
	CORE_NOTIFY_HOLD_EXPIRED,
	CORE_NOTIFY_PENDING_PAYMENT,   /* a new booking holds a seat to pay */
	CORE_NOTIFY_EVENT_CHANGED = 8, /* start, duration, location, title */
	CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED = 9,
	CORE_NOTIFY_WAITLIST_EXPIRED = 10, /* the class started: off the list */
};

enum core_op {
	CORE_OP_NONE = 0,
	/* shard operations, routed by event (or by the event inside a booking id) */
	CORE_OP_BOOK,
	CORE_OP_CANCEL,
	CORE_OP_PAY,
	CORE_OP_EVENT_PATCH,
	CORE_OP_EVENT_GET,
	CORE_OP_BOOKING_GET,
	CORE_OP_TICK, /* expire holds due at req.now, drop idempotency keys
		       * past their retention (to every shard) */
	/* fan out to every shard */
	CORE_OP_CUSTOMER_BOOKINGS,
	CORE_OP_EVENT_LIST,
	/* catalogue operations (core_call only) */
	CORE_OP_ORG_CREATE,
	CORE_OP_LOCATION_CREATE,
	CORE_OP_INSTRUCTOR_CREATE,
	CORE_OP_CUSTOMER_UPSERT,
	CORE_OP_SERIES_CREATE,
	CORE_OP_GENERATE,
	CORE_OP_ARCHIVE, /* drop events that ended u.archive.days ago */
	/* reminders due at req.now (to every shard, core_call only) */
	CORE_OP_REMIND,
	/* an org's settings (catalogue, core_call only) */
	CORE_OP_ORG_PATCH,
	/* catalogue reads (core_call only, under the catalogue lock, never on
	 * a shard's thread: lookup.c): one object, or a list by id */
	CORE_OP_CATALOG_GET,
	CORE_OP_CATALOG_LIST,
	/* catalogue: a series changed from a date on, or ended; its events
	 * regenerated (series_edit.c, docs/core.md "Series edits") */
	CORE_OP_SERIES_PATCH,
	CORE_OP_COUNT
};

/* Idempotency: the caller hashes (scope, key) into key and (method, path,
 * body) into fingerprint. key.hi == key.lo == 0 means no key. */
struct core_idem {
	uint64_t hi, lo;
	uint64_t fingerprint;
};

static inline bool core_idem_present(const struct core_idem *k)
{
	return (k->hi | k->lo) != 0;
}

/* A calendar date and a local wall-clock time, as the series states them. */
struct core_date {
	int16_t year;
	int8_t month; /* 1..12 */
	int8_t day;   /* 1..31 */
};

struct core_series_spec {
	uint64_t org_id, location_id, instructor_id;
	char title[CORE_NAME_SIZE_MAX];
	uint32_t capacity, waitlist_capacity;
	uint32_t price_cents;
	char currency[4]; /* ISO 4217, lower case, "" when free */
	char timezone[CORE_TZ_SIZE_MAX];
	uint8_t weekday_mask;  /* bit 0 = Monday ... bit 6 = Sunday */
	uint16_t start_minute; /* local minutes after midnight */
	uint32_t duration_min;
	struct core_date first_date;
	struct core_date last_date; /* year 0: open ended */
	uint32_t skip_count;
	struct core_date skip[CORE_SKIP_DATE_COUNT_MAX];
};

/* An org's settings (docs/core.md "Org settings"), set when the org is
 * created or patched; an org without any has the defaults: a cut-off of
 * CORE_CUTOFF_HOURS_DEFAULT, 0 and 0. */
struct core_org_settings {
	/* a cancel at or after start - cut-off is late (0..720 hours) */
	uint16_t cancel_cutoff_hours;
	/* a paid booking's hold: 0 the core's (core_config.hold_ms), else
	 * 1..CORE_HOLD_MINUTES_MAX minutes */
	uint16_t hold_minutes;
	/* how far ahead series are generated: 0 the core's
	 * (core_config.horizon_days), else 1..generate_max_days */
	uint16_t horizon_days;
};

/* Which settings a request gives (core_req.u.cat.settings_set). */
enum core_org_set {
	CORE_ORG_SET_CUTOFF = 1,
	CORE_ORG_SET_HOLD = 2,
	CORE_ORG_SET_HORIZON = 4,
};

/* The catalogue's kinds a read names (CORE_OP_CATALOG_GET, _LIST). */
enum core_cat_kind {
	CORE_CAT_ORG = 1,
	CORE_CAT_LOCATION,
	CORE_CAT_INSTRUCTOR,
	CORE_CAT_SERIES,
};

/* One catalogue object as read: an org (name, timezone, settings), a location or an
 * instructor (org_id, name), a series (its spec as it stands: org_id and
 * the rest in series; name is its title). */
struct core_cat_view {
	uint8_t kind; /* enum core_cat_kind */
	uint64_t id, org_id;
	char name[CORE_NAME_SIZE_MAX];
	char timezone[CORE_TZ_SIZE_MAX];
	struct core_org_settings settings; /* CORE_CAT_ORG */
	struct core_series_spec series;	   /* CORE_CAT_SERIES */
};

struct core_req {
	enum core_op op;
	core_time now;
	struct core_idem idem;
	uint64_t event_id;   /* BOOK, EVENT_PATCH, EVENT_GET */
	uint64_t booking_id; /* CANCEL, PAY, BOOKING_GET */
	/* BOOK, CUSTOMER_BOOKINGS, CUSTOMER_UPSERT; CANCEL: when set, only
	 * that customer's booking (another's is CORE_NO_BOOKING) */
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	union {
		struct {
			enum core_payment payment;
		} book;
		struct {
			bool succeeded;
			uint64_t amount_cents;
			char currency[4];
			uint64_t payment_ref; /* hash of the Stripe event id, for dedup */
			uint8_t kind;	/* enum core_pay_kind */
			uint8_t reason; /* REFUND: enum core_refund_reason */
			/* REFUND: the outcome (enum core_refund_state): 0
			 * done with ref, failed without; PENDING, or DONE
			 * or FAILED with Stripe's re_... */
			uint8_t refund_state;
			/* Stripe's own id: WEBHOOK the event's (evt_...), ""
			 * when too long; INTENT pi_...; REFUND re_... */
			char ref[CORE_PAY_REF_SIZE_MAX];
			/* WEBHOOK: the intent paid (pi_...), "" unknown */
			char intent_id[CORE_PAY_REF_SIZE_MAX];
		} pay;
		/* EVENT_PATCH: what changes; the rest stays. Moving the
		 * start, the duration, the location or the title, or a
		 * restore, is an edit (docs/core.md "Event edits"). */
		struct {
			int64_t capacity; /* < 0: unchanged */
			bool cancel;	  /* set status cancelled */
			bool restore; /* a cancelled event scheduled again */
			uint64_t instructor_id;		/* 0: unchanged */
			uint64_t location_id;		/* 0: unchanged */
			core_time start_at;		/* 0: unchanged */
			uint32_t duration_min;		/* 0: unchanged */
			char title[CORE_NAME_SIZE_MAX]; /* "": unchanged */
		} patch;
		struct {
			uint64_t org_id, location_id,
				instructor_id; /* 0: any */
			core_time from, to;    /* [from, to) */
			uint64_t after_id; /* cursor: strictly after (after_start, after_id) */
			core_time after_start;
			uint32_t limit;
			struct core_event_view
				*out; /* caller's buffer, limit entries */
		} list;
		struct {
			struct core_booking_view *out; /* caller's buffer */
			uint32_t capacity;
		} customer;
		struct {
			char name[CORE_NAME_SIZE_MAX];
			char timezone[CORE_TZ_SIZE_MAX];
			uint64_t org_id; /* location, instructor */
			char email[CORE_NAME_SIZE_MAX]; /* customer */
			/* ORG_CREATE, ORG_PATCH (u.cat.org_id): the settings
			 * whose bits (enum core_org_set) are set; the rest
			 * stay as they are (the defaults, at creation) */
			struct core_org_settings settings;
			uint8_t settings_set;
		} cat;
		struct core_series_spec *series; /* SERIES_CREATE: caller-owned */
		/* SERIES_PATCH: what changes (< 0, 0, "" or year 0:
		 * unchanged), from a local date on (year 0: today in the
		 * series' zone); last_date alone ends the series. */
		struct core_series_patch {
			uint64_t series_id;
			char title[CORE_NAME_SIZE_MAX];
			int64_t capacity, waitlist_capacity, price_cents;
			int32_t start_minute;
			uint32_t duration_min;
			uint8_t weekday_mask;
			char currency[4];
			struct core_date last_date, from;
		} spatch;
		struct {
			struct core_date until; /* year 0: horizon from config */
			uint64_t series_id;	/* 0: every series */
		} generate;
		/* Events that ended at or before now - days (1..36600) leave
		 * memory with their bookings (entry.h ARCHIVE); resp.count:
		 * how many (runtime only). Read after, they are unknown. */
		struct {
			uint32_t days;
		} archive;
		/* Reminders (docs/core.md "Reminders"): each scheduled event
		 * whose start is after now and at most one of these leads
		 * away gets, once per lead, a NOTIFY REMINDER per confirmed
		 * booking (the closest lead only, when several are due);
		 * resp.count: the notifications. count 0: nothing to do. */
		struct {
			uint16_t hours[CORE_REMIND_LEAD_COUNT_MAX]; /* 1..720 */
			uint8_t count;
		} remind;
		/* Catalogue reads: GET the object id (resp.count 1, or
		 * CORE_NO_ORG, _LOCATION, _INSTRUCTOR, _SERIES); LIST up to
		 * limit objects with id > after_id (of org_id when set), in
		 * id order, resp.more when others follow. Into the caller's
		 * out (1 or limit entries). */
		struct {
			uint8_t kind; /* enum core_cat_kind */
			uint64_t id;
			uint64_t org_id, after_id; /* LIST: 0: any, none */
			uint32_t limit; /* LIST: 1..CORE_LIST_LIMIT_MAX */
			struct core_cat_view *out;
		} catalog;
	} u;
};

struct core_booking_view {
	uint64_t id, event_id;
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	uint8_t status;	   /* enum core_booking_status */
	uint32_t position; /* 1-based waitlist place, 0 when not waitlisted */
	core_time hold_expires_at; /* 0 when no hold */
	core_time created_at;
	/* cancelled at or after start_at - the org's cut-off (a seat it
	 * held; docs/core.md "Start of class") */
	bool late;
};

struct core_event_view {
	uint64_t id, series_id, org_id, location_id, instructor_id;
	char title[CORE_NAME_SIZE_MAX];
	core_time start_at;
	uint32_t duration_min;
	uint32_t capacity, booked, held, waitlist_length, waitlist_capacity;
	uint32_t price_cents;
	char currency[4];
	uint8_t status;	  /* enum core_event_status */
	bool detached;	  /* kept off its series' pattern by a series edit */
	uint64_t version; /* changes whenever the view changes: ETags */
};

struct core_resp {
	uint64_t tag; /* caller's, copied from core_submit */
	enum core_op op;
	enum core_code code;
	bool replayed;	       /* an idempotent replay of the first result */
	uint64_t lsn;	       /* log position to be durable before answering */
	uint64_t id;	       /* created object (catalogue) */
	uint32_t count;	       /* list length, generated events, promotions */
	uint32_t keys_expired; /* TICK: idempotency keys dropped */
	bool more;	       /* list cut at its limit */
	bool has_promoted;
	union {
		struct { /* booking operations */
			struct core_booking_view booking;
			struct core_booking_view promoted;
		};
		struct core_event_view event; /* EVENT_GET, EVENT_PATCH */
		/* ORG_CREATE, ORG_PATCH: the org's settings as they are now */
		struct core_org_settings org;
		/* SERIES_PATCH: its future events made anew or changed to the
		 * new pattern, kept as they were (active bookings: flagged
		 * detached), cancelled (no longer in it) */
		struct {
			uint32_t regenerated, kept, cancelled;
		} series;
	};
};

/* ---- Configuration ---------------------------------------------------- */

/* The log hook: called with each decision's entry before its answer is
 * released; returns 0 and the entry's log position in *lsn, or -errno
 * (then nothing is applied and the caller gets the error). Called from
 * shard threads and from catalogue callers (serialised per shard). */
typedef int (*core_log_fn)(void *ctx, unsigned shard_index, const void *entry,
			   size_t entry_size, uint64_t *lsn);

/* The *_count_max are ceilings: tables start small and grow as needed up
 * to them (memory is used for what is held, not for the ceiling); a
 * decision that would pass one is refused with CORE_LIMIT, before it is
 * logged. */
struct core_config {
	unsigned shard_count;	     /* 1..CORE_SHARD_COUNT_MAX */
	unsigned port_count;	     /* calling threads */
	uint32_t event_count_max;    /* per shard */
	uint32_t booking_count_max;  /* per shard */
	uint32_t customer_count_max; /* per shard */
	uint32_t idem_count_max;     /* per shard (oldest dropped early) */
	uint32_t catalog_count_max;  /* orgs, locations, ... series: each */
	uint32_t ring_size;	     /* entries, power of two */
	/* 0: each shard has a worker thread. N > 0: no worker threads; shard
	 * s is run by the owner of port host_first + s % N, in
	 * core_port_run(), or by a core_call waiting for it while that owner
	 * is not running it (before the owner starts, say). */
	unsigned host_first, host_count;
	core_time hold_ms;	     /* default 10 min */
	core_time idem_retention_ms; /* default 24 h */
	uint32_t horizon_days;	     /* default 120: automatic generation */
	uint32_t generate_max_days;  /* default 366: the furthest `until` */
	core_log_fn log;	     /* NULL: no log */
	void *log_ctx;
};

void core_config_default(struct core_config *cfg);

/* ---- The deterministic state machine (one shard) ---------------------- */

typedef struct core_state core_state;

core_state *core_state_new(const struct core_config *cfg);
void core_state_free(core_state *st);

/* Decide req; on success *entry holds the records (valid until the next
 * call) and resp the answer. The state is not changed: apply the entry. */
enum core_code core_state_decide(core_state *st, const struct core_req *req,
				 struct core_resp *resp, const void **entry,
				 size_t *entry_size);
/* Apply an entry (from decide, or from the log). -EINVAL: a malformed
 * entry, not applied at all. -EUCLEAN: a well-formed record that does not
 * fit the state (log and state diverged): the state is no longer usable. */
int core_state_apply(core_state *st, const void *entry, size_t entry_size);

/* Reads. */
enum core_code core_state_event(const core_state *st, uint64_t event_id,
				struct core_event_view *out);
enum core_code core_state_booking(const core_state *st, uint64_t booking_id,
				  struct core_booking_view *out);

struct core_stats {
	uint64_t event_count, booking_count, customer_count, idem_count,
		hold_count;
	uint64_t bytes_allocated; /* records in use + index tables as sized */
};
void core_state_stats(const core_state *st, struct core_stats *out);

/* ---- The sharded runtime ---------------------------------------------- */

typedef struct core core;
typedef struct core_port core_port;

int core_open(const struct core_config *cfg, core **out);
/* Stops the workers after the requests already submitted. */
void core_close(core *c);

unsigned core_shard_of_event(const core *c, uint64_t event_id);
static inline uint64_t core_booking_event(uint64_t booking_id)
{
	return booking_id >> 24;
}

core_port *core_port_get(core *c, unsigned port_index);
/* Asynchronous: 0, or -EAGAIN when the ring is full (poll, then retry). */
int core_submit(core_port *p, const struct core_req *req, uint64_t tag);
/* Up to max answers; returns how many. */
int core_poll(core_port *p, struct core_resp *out, int max);
/* Blocks until an answer may be waiting (or a short timeout passed). */
void core_wait(core_port *p);
/* For event loops (io_uring) instead of core_wait: with a wake fd (an
 * eventfd), answers arriving while the port's owner is idle write 1 to it.
 * Idle: core_port_idle_begin() returns true (no answer waiting; now block
 * on the fd), and core_port_idle_end() once awake; false means answers are
 * waiting: poll, do not block. */
void core_port_set_wake_fd(core_port *p, int fd);
bool core_port_idle_begin(core_port *p);
void core_port_idle_end(core_port *p);
/* On a host port (core_config.host_count), from its owner's loop: decide
 * what waits for the shards it hosts (at most a batch per ring; call it
 * every turn). Returns the slots handled: 0 when nothing waits, when
 * another thread is running them, or while the core is parked. Answers
 * then come through core_poll as usual, the owner's own too. */
unsigned core_port_run(core_port *p);
/* p hosts every shard: a core_call on another port its owner keeps (a
 * fan-out read, say) then waits on nothing but the pass it runs itself. */
bool core_port_hosts_all(const core_port *p);
/* Synchronous: submit and wait; fan-out reads and catalogue ops too. Only
 * on a port with nothing else in flight. */
int core_call(core_port *p, const struct core_req *req, struct core_resp *resp);

/* What a notification names besides its booking and event (lookup.c; for
 * the notification sender, off the booking path): read under the
 * catalogue lock from any thread but a shard's. "" (and offset 0) for what
 * the catalogue does not know. */
struct core_names {
	char org_name[CORE_NAME_SIZE_MAX];
	char timezone[CORE_TZ_SIZE_MAX]; /* the series' zone */
	int32_t utc_offset_s;		 /* the zone's offset at `at` */
	char customer_email[CORE_NAME_SIZE_MAX];
	char customer_name[CORE_NAME_SIZE_MAX];
};
void core_names_get(core *c, uint64_t org_id, uint64_t series_id,
		    const char *customer_id, core_time at,
		    struct core_names *out);

/* An org's settings (the defaults for an org without any): 0, or -ENOENT
 * for an unknown org. Any thread but a shard's; a read under the catalogue
 * lock. */
int core_org_settings_get(core *c, uint64_t org_id,
			  struct core_org_settings *out);
/* The org's cancellation cut-off in ms (the default for an unknown org): a
 * cancel at or after start_at - cut-off is late. Any thread, no lock. */
core_time core_org_cutoff_ms(core *c, uint64_t org_id);

/* ---- Snapshots and recovery (with the log) ----------------------------
 * Recovery: core_open, core_park, core_snapshot_load (if any), core_replay
 * of every logged entry after the snapshot's position in log order,
 * core_unpark. Snapshot: core_park (the state is then exactly the log up
 * to the last position handed out), core_snapshot_write, core_unpark. */

/* Stop every shard between two decisions, with nothing travelling between
 * them, and hold the catalogue: the caller owns all state until unpark. */
int core_park(core *c);
void core_unpark(core *c);
/* Parked: write all state through fn as snapshot bytes. */
int core_snapshot_write(core *c,
			int (*fn)(void *ctx, const void *buf, size_t size),
			void *ctx);
/* Parked, on a fresh core: load snapshot bytes. */
int core_snapshot_load(core *c, const void *buf, size_t size);
/* Parked: apply an entry read back from the log. -EINVAL malformed (not
 * applied), -EUCLEAN does not fit the state (stop: state unusable). */
int core_replay(core *c, const void *entry, size_t size);

const char *core_code_name(enum core_code code);
/* The operation's name in the metrics (the op label); "other" outside. */
const char *core_op_name(enum core_op op);
/* A CORE_LIMIT answer in words, e.g. "until is more than 366 days ahead
 * (generate_max_days)"; returns buf. */
const char *core_limit_message(const struct core_resp *resp, char *buf,
			       size_t size);
const char *core_booking_status_name(uint8_t status);

#endif
