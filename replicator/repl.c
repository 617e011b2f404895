/*
 * repl.c: the replicator. The node's log into the PostgreSQL reporting
 * schema, exactly once, never on the booking path (repl.h,
 * docs/replication.md).
 *
 * Threads
 *   main   conn[0]: migrations at connect, then tails the log with a
 *          wal_reader from the smallest stream position + 1, gathers whole
 *          entries into a batch (batch_records records or batch_ms after
 *          the first), and applies it on `streams` connections at once,
 *          one thread per stream (run_parts): each event (its bookings,
 *          waitlist rows, payments, notifications) belongs to the stream
 *          its id hashes to, the catalogue to stream 0, an implied customer
 *          to the stream its id hashes to. Each stream commits its share in
 *          ONE transaction that also moves its own position
 *          (replication_state.streams[k], guarded: WHERE it is still the
 *          value we started from, so two replicators of one log cannot both
 *          apply); applied_lsn = the smallest position. A crash between the
 *          streams' commits leaves them unequal: each stream then skips the
 *          records at or below its position (part_for).
 *   maint  its own connection: performance_metrics from the server's
 *          counters, health_checks, and the materialized views refreshed
 *          CONCURRENTLY on a schedule and on demand. Never delays a batch.
 *
 * A stream's share of a batch, in one transaction
 *   The records are folded in memory first: per booking its final status,
 *   hold, when it joined or left the waitlist; per event whether it was
 *   created, its final capacity / instructor / status, whether it was
 *   cancelled; catalogue rows, payments and notifications as they come.
 *   These go by COPY into temporary staging tables (ON COMMIT DELETE ROWS),
 *   then set-based statements move them into the reporting tables:
 *     (missing class_events partitions are ensured before, in a
 *     transaction of their own: ensure_class_events_partitions)
 *     catalogue upserts; new events inserted as the batch leaves them
 *     (final settings and counters); the previous status of each staged
 *     booking the batch did not create read from registrations; per other
 *     event ONE update that moves the counters by (final - previous)
 *     statuses together with the final capacity and status, so the
 *     no-overbooking CHECK sees only states the core had; new customers;
 *     registrations updated, then new ones inserted (the one-active-booking
 *     index sees a customer's old booking leave before the rebooking
 *     arrives; among new ones only the last can be active), snapshot rows
 *     upserted in id order; waitlist rows (position = order of joining); an
 *     event cancel cancels its active registrations (the core's PATCH
 *     implies it); payments; notifications (ids <log_id>/<lsn>.<k>,
 *     stable); the stream's position.
 *   Counters are differences against what PostgreSQL holds, never replayed
 *   increments, so they stay equal to the count of registrations whatever
 *   the batch boundaries, and a snapshot's absolute rows (resync) fold in
 *   the same way.
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
#include "repl.h"

#include "entry.h"
#include "migrations.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define REPL_ENTRY_RECORDS_MAX (65536 / 12) /* smallest record: 12 bytes */
#define REPL_LAG_SAMPLE_COUNT 8192
#define REPL_LAG_SAMPLE_MS 20
#define REPL_COPY_SIZE_MAX (512u << 20)
#define REPL_RESYNC_ATTEMPT_MAX 3
#define REPL_LOOKUP_CHUNK 10000
#define REPL_START_CACHE_MAX (64u << 20) /* event ids cached (512 MiB) */
#define REPL_MONTH_BASE 1970
#define REPL_MONTH_COUNT (200 * 12) /* 1970..2169 tracked in a bitmap */
#define REPL_IDLE_WAIT_MS 100
#define REPL_CUSTOMER_SET_SLOTS (1u << 22) /* 32 MiB, up to 2M ids */

/* What a step returned: transient errors retry, the rest stop. */
#define REPL_TRANSIENT (-EAGAIN)

/* ---- growable byte buffers (COPY text) ---------------------------------- */

struct buf {
	char *data;
	size_t size, cap;
	bool overflow; /* REPL_COPY_SIZE_MAX reached or no memory */
};

static bool buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	char *d;

	if (b->size + n <= b->cap)
		return true;
	if (b->overflow)
		return false;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->size + n)
		cap *= 2;
	if (cap > REPL_COPY_SIZE_MAX || !(d = realloc(b->data, cap))) {
		b->overflow = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

static void buf_put(struct buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->data + b->size, p, n);
	b->size += n;
}

static void buf_c(struct buf *b, char c)
{
	buf_put(b, &c, 1);
}

static void buf_i64(struct buf *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	buf_put(b, tmp, (size_t)n);
}

static void buf_u64(struct buf *b, uint64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A string as a COPY text field: escaped; bytes that are not UTF-8 become
 * U+FFFD, so a name PostgreSQL would refuse never stops replication. */
static void buf_str(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		size_t len = utf8_len(p, n);

		if (len == 0) {
			buf_put(b, "\xef\xbf\xbd", 3);
			p++, n--;
			continue;
		}
		if (len == 1) {
			switch (*p) {
			case '\\': buf_put(b, "\\\\", 2); break;
			case '\t': buf_put(b, "\\t", 2); break;
			case '\n': buf_put(b, "\\n", 2); break;
			case '\r': buf_put(b, "\\r", 2); break;
			default: buf_c(b, (char)*p);
			}
		} else {
			buf_put(b, p, len);
		}
		p += len, n -= len;
	}
}

static void buf_null(struct buf *b)
{
	buf_put(b, "\\N", 2);
}

#define TAB(b) buf_c((b), '\t')
#define EOL(b) buf_c((b), '\n')

static void buf_date(struct buf *b, struct core_date d)
{
	char tmp[16];
	int n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", d.year, d.month,
			 d.day);
	buf_put(b, tmp, (size_t)n);
}

/* ---- the batch: records folded per booking and per event ---------------- */

enum bk_kind { BK_SET = 0, BK_NEW = 1, BK_RESTORE = 2 };

struct bk {
	uint64_t id;
	int64_t created_at, updated_at, hold, exit_at;
	uint32_t join_seq; /* order of joining the waitlist, 0: did not */
	uint8_t kind, status, exit_status, stream;
	char customer[CORE_CUSTOMER_ID_SIZE_MAX + 1];
};

struct ev {
	uint64_t id;
	int64_t start_at; /* ms; 0 until known */
	int64_t created_at, updated_at, cancel_at;
	bool created, set, cancelled;
	uint8_t stream;
	uint64_t series_id, org_id, location_id, instructor_id;
	uint32_t duration_min, capacity0, waitlist_capacity, price_cents;
	char currency[4];
	uint32_t n_conf, n_held, n_wl; /* from its new bookings (a new event: all) */
	bool needs_update;        /* counters or settings move in PostgreSQL */
	uint32_t capacity;        /* final, when set */
	uint64_t set_instructor;  /* final, when set */
	uint8_t status;           /* final, when set */
};

/* Open addressing, id -> index + 1, sized at twice the entries. */
struct idx {
	uint32_t *slots;
	uint32_t mask;
};

enum stage {
	ST_CAT, ST_CUSTOMER, ST_SERIES, ST_GEN, ST_EVENT, ST_BOOKING,
	ST_PAYMENT, ST_NOTIFY, ST_NEWCUST, ST_COUNT
};

static const char *const stage_copy[ST_COUNT] = {
	[ST_CAT] = "COPY s_cat FROM STDIN",
	[ST_CUSTOMER] = "COPY s_customer FROM STDIN",
	[ST_SERIES] = "COPY s_series FROM STDIN",
	[ST_GEN] = "COPY s_gen FROM STDIN",
	[ST_EVENT] = "COPY s_event (id, start_at, created, series_id, org_id, "
		     "location_id, instructor_id, duration_min, capacity0, "
		     "waitlist_capacity, price_cents, currency, capacity, "
		     "set_instructor, status, cancelled, cancel_at, created_at, "
		     "updated_at, needs_update, reg, held, wl) FROM STDIN",
	[ST_BOOKING] = "COPY s_booking (id, event_id, kind, customer_id, status, "
		       "hold, created_at, updated_at, join_seq, exit_at, exit_status) "
		       "FROM STDIN",
	[ST_PAYMENT] = "COPY s_payment FROM STDIN",
	[ST_NOTIFY] = "COPY s_notify FROM STDIN",
	[ST_NEWCUST] = "COPY s_newcust FROM STDIN",
};

/* Event id -> start_at in ms (0: unknown), the partition key of the events'
 * updates. The fold fills it from created events, the streams from
 * look-ups in PostgreSQL, at once: hence the lock. */
struct starts {
	pthread_mutex_t lock;
	int64_t *ms;
	uint64_t cap;
};

/* Hashes of the customer ids PostgreSQL has (open addressing, 0: free). The
 * fold reads it; it grows after a commit, and stops growing when full. */
struct custset {
	uint64_t *slots;
	uint32_t mask, count;
};

/* What the fold reads besides the records: the replicator's memory of
 * PostgreSQL, never PostgreSQL itself. */
struct fold_env {
	const char *log_id;              /* in notification ids */
	struct starts *starts;           /* filled from created events */
	const struct custset *customers; /* customers not to stage again */
	const uint8_t *months;           /* bitmap: partitions that exist */
};

/* One stream's share of a batch: its rows, staged, and what they hold. */
struct part {
	struct buf st[ST_COUNT];
	uint32_t rows[ST_COUNT];
	uint64_t from;  /* the stream's applied LSN: records up to it are in */
	bool kinds[3], cancels, created;
	uint32_t misses, updates; /* events: start_at unknown; to update */
	uint32_t customers; /* new customers it inserted */
	bool committed; /* its transaction moved the stream */
	int rc;
	char err[REPL_ERROR_SIZE];
};

struct batch {
	struct fold_env env;
	struct bk *bk;
	struct ev *ev;
	uint32_t bk_count, ev_count, cap; /* cap: bookings and events each */
	struct idx bk_idx, ev_idx;
	struct part part[REPL_STREAM_MAX];
	uint32_t parts;     /* streams (parts in use) */
	uint32_t seq, join_seq, restore_count;
	uint32_t records, entries;
	uint64_t bytes, first_lsn, last_lsn;
	bool full;          /* stop adding: the next entry may not fit */
	bool snapshot;      /* records from a snapshot (resync) */
	int64_t now_ms;     /* wall clock at the start of the batch */
	uint32_t month_lo, month_hi; /* months of new events not yet ensured */
	bool months;
	char err[REPL_ERROR_SIZE];
};

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
	uint32_t streams;              /* in this session */
	uint64_t stream_lsn[REPL_STREAM_MAX]; /* applied per stream */
	wal_reader *reader;
	struct batch b;
	struct starts starts; /* shared with the streams: its own lock */
	uint8_t months[REPL_MONTH_COUNT / 8]; /* partitions known to exist */
	struct custset customers; /* customer ids PostgreSQL has */

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

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(repl *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(repl *r, const char *fmt, ...)
{
	va_list ap;

	if (r->cfg.quiet)
		return;
	va_start(ap, fmt);
	fputs("bookd: replicator: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
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
		fprintf(stderr, "bookd: replicator: %s\n", msg);
}

/* ---- batch folding ------------------------------------------------------- */

static void starts_set(struct starts *s, uint64_t id, int64_t ms);
static int64_t starts_get(struct starts *s, uint64_t id);
static void customer_stage(struct batch *b, const char *id, int64_t at);

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

static int batch_init(struct batch *b, uint32_t batch_records,
		      const struct fold_env *env)
{
	/* A batch stops taking entries at batch_records records; one more
	 * entry may bring REPL_ENTRY_RECORDS_MAX more. Each record makes at
	 * most one booking and touches at most one event. */
	uint32_t cap = batch_records + REPL_ENTRY_RECORDS_MAX;
	uint32_t slots = pow2_at_least(cap * 2);

	memset(b, 0, sizeof(*b));
	b->env = *env;
	b->cap = cap;
	b->bk = calloc(cap, sizeof(*b->bk));
	b->ev = calloc(cap, sizeof(*b->ev));
	b->bk_idx.slots = calloc(slots, sizeof(uint32_t));
	b->ev_idx.slots = calloc(slots, sizeof(uint32_t));
	b->bk_idx.mask = b->ev_idx.mask = slots - 1;
	if (!b->bk || !b->ev || !b->bk_idx.slots || !b->ev_idx.slots)
		return -ENOMEM;
	for (int k = 0; k < REPL_STREAM_MAX; k++)
		for (int s = 0; s < ST_COUNT; s++)
			if (!buf_reserve(&b->part[k].st[s], 1u << 12))
				return -ENOMEM;
	b->parts = 1;
	return 0;
}

static void batch_free(struct batch *b)
{
	free(b->bk);
	free(b->ev);
	free(b->bk_idx.slots);
	free(b->ev_idx.slots);
	for (int k = 0; k < REPL_STREAM_MAX; k++)
		for (int s = 0; s < ST_COUNT; s++)
			free(b->part[k].st[s].data);
	memset(b, 0, sizeof(*b));
}

static void batch_reset(struct batch *b)
{
	/* Clear only the slots in use: batches are often small. */
	for (uint32_t i = 0; i < b->bk_count; i++) {
		uint32_t h = (uint32_t)(b->bk[i].id * 0x9E3779B97F4A7C15ull >> 32) &
			     b->bk_idx.mask;
		while (b->bk_idx.slots[h]) {
			b->bk_idx.slots[h] = 0;
			h = (h + 1) & b->bk_idx.mask;
		}
	}
	for (uint32_t i = 0; i < b->ev_count; i++) {
		uint32_t h = (uint32_t)(b->ev[i].id * 0x9E3779B97F4A7C15ull >> 32) &
			     b->ev_idx.mask;
		while (b->ev_idx.slots[h]) {
			b->ev_idx.slots[h] = 0;
			h = (h + 1) & b->ev_idx.mask;
		}
	}
	b->bk_count = b->ev_count = 0;
	for (int k = 0; k < REPL_STREAM_MAX; k++) {
		struct part *p = &b->part[k];

		for (int s = 0; s < ST_COUNT; s++) {
			p->st[s].size = 0;
			p->st[s].overflow = false;
			p->rows[s] = 0;
		}
		memset(p->kinds, 0, sizeof(p->kinds));
		p->cancels = p->created = p->committed = false;
		p->misses = p->updates = p->customers = 0;
		p->rc = 0;
		p->err[0] = '\0';
	}
	b->seq = b->join_seq = b->restore_count = 0;
	b->records = b->entries = 0;
	b->bytes = b->first_lsn = b->last_lsn = 0;
	b->full = b->snapshot = b->months = false;
	b->now_ms = wall_ms();
	b->err[0] = '\0';
}

/* The entry of id in the table, created (zeroed, id set) when asked. */
static uint32_t idx_find(struct idx *x, uint64_t id, bool *found,
			 uint64_t (*key)(const void *base, uint32_t i),
			 const void *base)
{
	uint32_t h = (uint32_t)(id * 0x9E3779B97F4A7C15ull >> 32) & x->mask;

	for (uint32_t probes = 0; probes <= x->mask; probes++) {
		uint32_t v = x->slots[h];
		if (v == 0) {
			*found = false;
			return h;
		}
		if (key(base, v - 1) == id) {
			*found = true;
			return h;
		}
		h = (h + 1) & x->mask;
	}
	assert(!"index full: batch capacity bound broken");
	abort();
}

static uint64_t bk_key(const void *base, uint32_t i)
{
	return ((const struct bk *)base)[i].id;
}

static uint64_t ev_key(const void *base, uint32_t i)
{
	return ((const struct ev *)base)[i].id;
}

/* The stream of an event. All rows about an event (the event, its
 * bookings, their waitlist rows, payments and notifications) go through
 * one stream, in log order; the catalogue goes through stream 0. A
 * snapshot's batches (resync) go through stream 0 alone. */
static uint32_t event_stream(const struct batch *b, uint64_t event_id)
{
	if (b->parts == 1 || b->snapshot)
		return 0;
	return (uint32_t)((event_id * 0xD6E8FEB86659FD93ull) >> 40) % b->parts;
}

/* The part a record about event_id goes to (0: the catalogue, stream 0),
 * or NULL when its stream has the record already (lsn <= from: the batch
 * before a crash committed on some streams only; those skip what they
 * have). */
static struct part *part_for(struct batch *b, uint64_t event_id, uint64_t lsn)
{
	struct part *p = &b->part[event_id ? event_stream(b, event_id) : 0];

	return lsn > p->from ? p : NULL;
}

static struct bk *bk_get(struct batch *b, uint64_t id, bool *existed)
{
	uint32_t h = idx_find(&b->bk_idx, id, existed, bk_key, b->bk);
	struct bk *k;

	if (*existed)
		return &b->bk[b->bk_idx.slots[h] - 1];
	assert(b->bk_count < b->cap);
	k = &b->bk[b->bk_count++];
	memset(k, 0, sizeof(*k));
	k->id = id;
	k->stream = (uint8_t)event_stream(b, core_booking_event(id));
	b->bk_idx.slots[h] = b->bk_count;
	return k;
}

static const struct bk *bk_find(struct batch *b, uint64_t id)
{
	bool found;
	uint32_t h = idx_find(&b->bk_idx, id, &found, bk_key, b->bk);

	return found ? &b->bk[b->bk_idx.slots[h] - 1] : NULL;
}

static struct ev *ev_get(struct batch *b, uint64_t id)
{
	bool found;
	uint32_t h = idx_find(&b->ev_idx, id, &found, ev_key, b->ev);
	struct ev *e;

	if (found)
		return &b->ev[b->ev_idx.slots[h] - 1];
	assert(b->ev_count < b->cap);
	e = &b->ev[b->ev_count++];
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->stream = (uint8_t)event_stream(b, id);
	b->ev_idx.slots[h] = b->ev_count;
	return e;
}

/* Months since 1970-01 (UTC) of a time in ms. */
static int64_t month_of(int64_t ms)
{
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	/* civil from days (H. Hinnant) */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	return (y - REPL_MONTH_BASE) * 12 + (m - 1);
}

static bool month_known(const uint8_t *months, int64_t m)
{
	return m >= 0 && m < REPL_MONTH_COUNT && (months[m / 8] >> (m % 8) & 1);
}

static const char *status_name(uint8_t s)
{
	switch (s) {
	case CORE_BOOKING_CONFIRMED: return "confirmed";
	case CORE_BOOKING_PENDING_PAYMENT: return "pending_payment";
	case CORE_BOOKING_WAITLISTED: return "waitlisted";
	case CORE_BOOKING_CANCELLED: return "cancelled";
	case CORE_BOOKING_EXPIRED: return "expired";
	case CORE_BOOKING_PAYMENT_FAILED: return "payment_failed";
	default: return NULL;
	}
}

/* Folds one record into the batch; -EUCLEAN (with b->err) when it cannot
 * be right: the log and PostgreSQL would diverge. */
static int batch_add(struct batch *b, const struct core_rec *c,
		     uint64_t lsn, uint32_t notify_index)
{
	/* Snapshot records of events and the catalogue carry no time. */
	const int64_t at = c->at ? c->at : b->now_ms;
	struct part *p = &b->part[0]; /* the catalogue's */
	struct buf *o;
	struct bk *k;
	struct ev *e;
	bool existed;

	b->seq++;
	if (c->type >= CORE_REC_ORG && c->type <= CORE_REC_SERIES_GENERATED &&
	    !part_for(b, 0, lsn))
		return 0; /* the catalogue: stream 0 has it */
	switch (c->type) {
	case CORE_REC_ORG:
	case CORE_REC_LOCATION:
	case CORE_REC_INSTRUCTOR:
		o = &p->st[ST_CAT];
		buf_u64(o, b->seq); TAB(o);
		buf_u64(o, c->type); TAB(o);
		buf_u64(o, c->u.cat.id); TAB(o);
		buf_u64(o, c->u.cat.org_id); TAB(o);
		buf_str(o, c->u.cat.name); TAB(o);
		buf_str(o, c->u.cat.timezone); TAB(o);
		buf_i64(o, at); EOL(o);
		p->rows[ST_CAT]++;
		return 0;
	case CORE_REC_CUSTOMER:
		o = &p->st[ST_CUSTOMER];
		buf_u64(o, b->seq); TAB(o);
		buf_str(o, c->u.customer.id); TAB(o);
		buf_str(o, c->u.customer.email); TAB(o);
		buf_str(o, c->u.customer.name); TAB(o);
		buf_i64(o, at); EOL(o);
		p->rows[ST_CUSTOMER]++;
		return 0;
	case CORE_REC_SERIES: {
		const struct core_series_spec *s = &c->u.series.spec;
		char t[8];

		if (s->skip_count > CORE_SKIP_DATE_COUNT_MAX || s->start_minute >= 1440)
			goto bad;
		o = &p->st[ST_SERIES];
		buf_u64(o, b->seq); TAB(o);
		buf_u64(o, c->u.series.id); TAB(o);
		buf_u64(o, s->org_id); TAB(o);
		buf_u64(o, s->location_id); TAB(o);
		buf_u64(o, s->instructor_id); TAB(o);
		buf_str(o, s->title); TAB(o);
		buf_u64(o, s->capacity); TAB(o);
		buf_u64(o, s->waitlist_capacity); TAB(o);
		buf_u64(o, s->price_cents); TAB(o);
		buf_str(o, s->currency); TAB(o);
		buf_str(o, s->timezone); TAB(o);
		buf_u64(o, s->weekday_mask); TAB(o);
		snprintf(t, sizeof(t), "%02u:%02u", s->start_minute / 60u,
			 s->start_minute % 60u);
		buf_str(o, t); TAB(o);
		buf_u64(o, s->duration_min); TAB(o);
		buf_date(o, s->first_date); TAB(o);
		if (s->last_date.year == 0)
			buf_null(o);
		else
			buf_date(o, s->last_date);
		TAB(o);
		buf_c(o, '{');
		for (uint32_t i = 0; i < s->skip_count; i++) {
			if (i)
				buf_c(o, ',');
			buf_date(o, s->skip[i]);
		}
		buf_c(o, '}'); TAB(o);
		buf_i64(o, at); EOL(o);
		p->rows[ST_SERIES]++;
		return 0;
	}
	case CORE_REC_SERIES_GENERATED:
		o = &p->st[ST_GEN];
		buf_u64(o, b->seq); TAB(o);
		buf_u64(o, c->u.generated.series_id); TAB(o);
		buf_date(o, c->u.generated.through); TAB(o);
		buf_i64(o, at); EOL(o);
		p->rows[ST_GEN]++;
		return 0;
	case CORE_REC_EVENT_CREATE: {
		int64_t m = month_of(c->u.event.start_at);

		if (!part_for(b, c->u.event.id, lsn)) {
			starts_set(b->env.starts, c->u.event.id,
				   c->u.event.start_at);
			return 0;
		}
		e = ev_get(b, c->u.event.id);
		if (e->created)
			goto bad;
		e->created = e->set = true;
		e->created_at = at;
		e->start_at = c->u.event.start_at;
		e->series_id = c->u.event.series_id;
		e->org_id = c->u.event.org_id;
		e->location_id = c->u.event.location_id;
		e->instructor_id = e->set_instructor = c->u.event.instructor_id;
		e->duration_min = c->u.event.duration_min;
		e->capacity0 = e->capacity = c->u.event.capacity;
		e->waitlist_capacity = c->u.event.waitlist_capacity;
		e->price_cents = c->u.event.price_cents;
		memcpy(e->currency, c->u.event.currency, sizeof(e->currency));
		e->status = CORE_EVENT_SCHEDULED;
		if (at > e->updated_at)
			e->updated_at = at;
		if (e->start_at == 0 || e->duration_min == 0)
			goto bad;
		starts_set(b->env.starts, e->id, e->start_at);
		if (!month_known(b->env.months, m) && m >= 0 && m < REPL_MONTH_COUNT) {
			if (!b->months || (uint32_t)m < b->month_lo)
				b->month_lo = (uint32_t)m;
			if (!b->months || (uint32_t)m > b->month_hi)
				b->month_hi = (uint32_t)m;
			b->months = true;
		} else if (m < 0 || m >= REPL_MONTH_COUNT) {
			goto bad; /* before 1970 or after 2169 */
		}
		return 0;
	}
	case CORE_REC_EVENT_PATCH:
		if (c->u.patch.status != CORE_EVENT_SCHEDULED &&
		    c->u.patch.status != CORE_EVENT_CANCELLED)
			goto bad;
		if (!part_for(b, c->u.patch.event_id, lsn))
			return 0;
		e = ev_get(b, c->u.patch.event_id);
		if (e->cancelled && c->u.patch.status == CORE_EVENT_SCHEDULED)
			goto bad;
		e->set = true;
		e->capacity = c->u.patch.capacity;
		e->set_instructor = c->u.patch.instructor_id;
		e->status = c->u.patch.status;
		if (c->u.patch.status == CORE_EVENT_CANCELLED && !e->cancelled) {
			e->cancelled = true;
			e->cancel_at = b->snapshot ? b->now_ms : at;
		}
		if (at > e->updated_at)
			e->updated_at = at;
		return 0;
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_RESTORE:
		if (!status_name(c->u.booking.status) ||
		    c->u.booking.customer_id[0] == '\0')
			goto bad;
		customer_stage(b, c->u.booking.customer_id, at);
		if (!part_for(b, core_booking_event(c->u.booking.booking_id), lsn))
			return 0;
		k = bk_get(b, c->u.booking.booking_id, &existed);
		if (existed)
			goto bad;
		k->kind = c->type == CORE_REC_BOOKING_NEW ? BK_NEW : BK_RESTORE;
		memcpy(k->customer, c->u.booking.customer_id, sizeof(k->customer));
		k->status = c->u.booking.status;
		k->hold = c->u.booking.hold_expires_at;
		k->created_at = at;
		k->updated_at = c->type == CORE_REC_BOOKING_NEW ? at : b->now_ms;
		if (k->status == CORE_BOOKING_WAITLISTED)
			k->join_seq = ++b->join_seq;
		else if (k->kind == BK_RESTORE) { /* left the waitlist, maybe */
			k->exit_status = k->status;
			k->exit_at = b->now_ms;
		}
		if (k->kind == BK_RESTORE)
			b->restore_count++;
		e = ev_get(b, core_booking_event(k->id));
		if (k->updated_at > e->updated_at)
			e->updated_at = k->updated_at;
		return 0;
	case CORE_REC_BOOKING_SET: {
		uint8_t was;

		if (!status_name(c->u.booking.status) ||
		    c->u.booking.status == CORE_BOOKING_WAITLISTED)
			goto bad;
		if (!part_for(b, core_booking_event(c->u.booking.booking_id), lsn))
			return 0;
		k = bk_get(b, c->u.booking.booking_id, &existed);
		if (!existed)
			k->kind = BK_SET;
		was = existed ? k->status : 0;
		if (k->exit_status == 0 &&
		    (k->kind == BK_SET || was == CORE_BOOKING_WAITLISTED)) {
			/* For a booking this batch did not create, its first
			 * move is its exit from the waitlist if PostgreSQL
			 * has it waitlisted (checked there). */
			k->exit_status = c->u.booking.status;
			k->exit_at = at;
		}
		k->status = c->u.booking.status;
		k->hold = c->u.booking.hold_expires_at;
		k->updated_at = at;
		e = ev_get(b, core_booking_event(k->id));
		if (at > e->updated_at)
			e->updated_at = at;
		return 0;
	}
	case CORE_REC_PAYMENT: {
		const char *st;
		uint64_t amount = c->u.payment.amount_cents;

		switch (c->u.payment.code) {
		case CORE_OK:
			st = c->u.payment.succeeded ? "succeeded" : "failed";
			break;
		case CORE_PAYMENT_MISMATCH:
			st = "mismatch";
			break;
		case CORE_NOT_PENDING:
			st = "not_pending";
			break;
		default:
			goto bad;
		}
		if (amount > INT64_MAX) /* a bogus webhook: keep it visible */
			amount = INT64_MAX;
		if (!(p = part_for(b, core_booking_event(c->u.payment.booking_id),
				   lsn)))
			return 0;
		o = &p->st[ST_PAYMENT];
		buf_u64(o, c->u.payment.booking_id); TAB(o);
		buf_u64(o, c->u.payment.payment_ref); TAB(o);
		buf_u64(o, amount); TAB(o);
		buf_str(o, c->u.payment.currency); TAB(o);
		buf_str(o, st); TAB(o);
		buf_str(o, c->u.payment.code != CORE_OK ? "t" : "f"); TAB(o);
		buf_u64(o, c->u.payment.code); TAB(o);
		buf_i64(o, at); TAB(o);
		k = (struct bk *)bk_find(b, c->u.payment.booking_id);
		if (k && k->kind != BK_SET)
			buf_str(o, k->customer);
		else
			buf_null(o);
		EOL(o);
		p->rows[ST_PAYMENT]++;
		return 0;
	}
	case CORE_REC_NOTIFY: {
		const char *kind = core_notify_kind_name(c->u.notify.kind);
		char id[240];

		if (strcmp(kind, "unknown") == 0)
			goto bad;
		if (!(p = part_for(b, core_booking_event(c->u.notify.booking_id),
				   lsn)))
			return 0;
		/* stable: the log, its LSN, the k-th NOTIFY of the entry */
		snprintf(id, sizeof(id), "%.200s/%" PRIu64 ".%" PRIu32, b->env.log_id,
			 lsn, notify_index);
		o = &p->st[ST_NOTIFY];
		buf_str(o, id); TAB(o);
		buf_str(o, kind); TAB(o);
		buf_u64(o, c->u.notify.booking_id); TAB(o);
		buf_u64(o, lsn); TAB(o);
		buf_i64(o, at); TAB(o);
		k = (struct bk *)bk_find(b, c->u.notify.booking_id);
		if (k && k->kind != BK_SET)
			buf_str(o, k->customer);
		else
			buf_null(o); /* looked up in registrations */
		EOL(o);
		p->rows[ST_NOTIFY]++;
		return 0;
	}
	case CORE_REC_IDEM:
		return 0;
	default:
		break;
	}
bad:
	snprintf(b->err, sizeof(b->err),
		 "record %s at LSN %" PRIu64 " does not fit what was applied "
		 "(log and PostgreSQL diverged)",
		 core_rec_type_name(c->type), lsn);
	return -EUCLEAN;
}

/* Folds one entry (all its records) into the batch. */
static int batch_add_entry(struct batch *b, uint64_t lsn,
			   const void *payload, size_t size)
{
	struct core_rec c;
	size_t pos = 0;
	uint32_t notify_index = 0;
	int rc;

	while ((rc = core_entry_next(payload, size, &pos, &c)) > 0) {
		rc = batch_add(b, &c, lsn,
			       c.type == CORE_REC_NOTIFY ? notify_index++ : 0);
		if (rc)
			return rc;
		b->records++;
	}
	if (rc < 0) {
		snprintf(b->err, sizeof(b->err),
			 "entry at LSN %" PRIu64 " does not decode (offset %zu "
			 "of %zu)", lsn, pos, size);
		return -EUCLEAN;
	}
	b->entries++;
	b->bytes += size;
	if (!b->first_lsn)
		b->first_lsn = lsn;
	b->last_lsn = lsn;
	return 0;
}

static uint64_t customer_hash(const char *id)
{
	uint64_t h = XXH3_64bits(id, strlen(id));
	return h ? h : 1;
}

static bool custset_has(const struct custset *cs, const char *id)
{
	uint64_t h = customer_hash(id);

	if (!cs->slots)
		return false;
	for (uint32_t i = (uint32_t)h & cs->mask;; i = (i + 1) & cs->mask) {
		if (cs->slots[i] == h)
			return true;
		if (cs->slots[i] == 0)
			return false;
	}
}

/* After a commit: these customers exist (a full set stops growing). */
static void custset_add(struct custset *cs, const char *id)
{
	uint64_t h = customer_hash(id);

	if (!cs->slots || cs->count >= cs->mask / 2)
		return;
	for (uint32_t i = (uint32_t)h & cs->mask;; i = (i + 1) & cs->mask) {
		if (cs->slots[i] == h)
			return;
		if (cs->slots[i] == 0) {
			cs->slots[i] = h;
			cs->count++;
			return;
		}
	}
}

/* A booking's customer, unless known to exist, staged in the part of the
 * stream the customer id hashes to: each customer is inserted by one stream
 * only (streams never wait for each other's rows), and from every booking
 * of the batch, even those a stream skips as already applied (their
 * customer's stream may not have them). */
static void customer_stage(struct batch *b, const char *id, int64_t at)
{
	struct part *p;
	struct buf *o;

	if (custset_has(b->env.customers, id))
		return;
	p = &b->part[b->parts == 1 || b->snapshot ? 0
						  : customer_hash(id) % b->parts];
	o = &p->st[ST_NEWCUST];
	buf_str(o, id); TAB(o);
	buf_i64(o, at); EOL(o);
	p->rows[ST_NEWCUST]++;
}

/* Staged bookings and events as COPY rows, each in its stream's part, once
 * the batch is complete. */
static void batch_finish(struct batch *b)
{
	/* A new event's bookings are all new in this batch: its counters
	 * are known here and it is inserted as it ends, with no update. A
	 * snapshot's events may exist already: they are updated. */
	for (uint32_t i = 0; i < b->ev_count; i++) {
		struct ev *e = &b->ev[i];
		struct part *p = &b->part[e->stream];

		e->needs_update = !e->created || b->snapshot;
		if (!e->start_at)
			e->start_at = starts_get(b->env.starts, e->id);
		p->misses += !e->start_at;
		p->updates += e->needs_update;
		p->created |= e->created;
		p->cancels |= e->cancelled;
	}
	/* A booking new in this batch had no status before: its share of
	 * the counters' change is known here. Only the others' previous
	 * statuses are read from PostgreSQL (sql_event_delta). */
	for (uint32_t i = 0; i < b->bk_count; i++) {
		const struct bk *k = &b->bk[i];
		struct ev *e = ev_get(b, k->id >> 24);

		b->part[k->stream].kinds[k->kind] = true;
		if (k->kind != BK_NEW)
			continue;
		e->n_conf += k->status == CORE_BOOKING_CONFIRMED;
		e->n_held += k->status == CORE_BOOKING_PENDING_PAYMENT;
		e->n_wl += k->status == CORE_BOOKING_WAITLISTED;
	}
	for (uint32_t i = 0; i < b->ev_count; i++)
		if (b->ev[i].cancelled) /* the cancel emptied it */
			b->ev[i].n_conf = b->ev[i].n_held = b->ev[i].n_wl = 0;

	for (uint32_t i = 0; i < b->bk_count; i++) {
		const struct bk *k = &b->bk[i];
		struct part *p = &b->part[k->stream];
		struct buf *o = &p->st[ST_BOOKING];

		buf_u64(o, k->id); TAB(o);
		buf_u64(o, k->id >> 24); TAB(o);
		buf_u64(o, k->kind); TAB(o);
		if (k->kind == BK_SET)
			buf_null(o);
		else
			buf_str(o, k->customer);
		TAB(o);
		buf_str(o, status_name(k->status)); TAB(o);
		buf_i64(o, k->hold); TAB(o);
		if (k->kind == BK_SET)
			buf_null(o);
		else
			buf_i64(o, k->created_at);
		TAB(o);
		buf_i64(o, k->updated_at); TAB(o);
		if (k->join_seq)
			buf_u64(o, k->join_seq);
		else
			buf_null(o);
		TAB(o);
		if (k->exit_status) {
			buf_i64(o, k->exit_at); TAB(o);
			buf_str(o, status_name(k->exit_status));
		} else {
			buf_null(o); TAB(o);
			buf_null(o);
		}
		EOL(o);
		p->rows[ST_BOOKING]++;
	}
	for (uint32_t i = 0; i < b->ev_count; i++) {
		const struct ev *e = &b->ev[i];
		struct part *p = &b->part[e->stream];
		struct buf *o = &p->st[ST_EVENT];

		buf_u64(o, e->id); TAB(o);
		buf_i64(o, e->start_at); TAB(o);
		buf_str(o, e->created ? "t" : "f"); TAB(o);
		buf_u64(o, e->series_id); TAB(o);
		buf_u64(o, e->org_id); TAB(o);
		buf_u64(o, e->location_id); TAB(o);
		buf_u64(o, e->instructor_id); TAB(o);
		buf_u64(o, e->duration_min); TAB(o);
		buf_u64(o, e->capacity0); TAB(o);
		buf_u64(o, e->waitlist_capacity); TAB(o);
		buf_u64(o, e->price_cents); TAB(o);
		buf_str(o, e->currency); TAB(o);
		if (e->set) {
			buf_u64(o, e->capacity); TAB(o);
			buf_u64(o, e->set_instructor); TAB(o);
			buf_str(o, e->status == CORE_EVENT_CANCELLED ? "cancelled"
								     : "scheduled");
			TAB(o);
		} else {
			buf_null(o); TAB(o);
			buf_null(o); TAB(o);
			buf_null(o); TAB(o);
		}
		buf_str(o, e->cancelled ? "t" : "f"); TAB(o);
		buf_i64(o, e->cancel_at); TAB(o);
		buf_i64(o, e->created_at); TAB(o);
		buf_i64(o, e->updated_at); TAB(o);
		buf_str(o, e->needs_update ? "t" : "f"); TAB(o);
		buf_u64(o, e->n_conf); TAB(o);
		buf_u64(o, e->n_held); TAB(o);
		buf_u64(o, e->n_wl); EOL(o);
		p->rows[ST_EVENT]++;
	}
}

/* Rows a part wrote (series marks not counted; customers implied by
 * bookings as inserted, when new). */
static uint64_t part_rows(const struct part *p)
{
	uint64_t n = p->customers;
	for (int s = 0; s < ST_COUNT; s++)
		if (s != ST_GEN && s != ST_NEWCUST)
			n += p->rows[s];
	return n;
}

/* ---- SQL ------------------------------------------------------------------ */

#define TS(x) "to_timestamp((" x ") / 1000.0)"
#define ACTIVE "('confirmed', 'pending_payment', 'waitlisted')"
#define SEATED "('confirmed', 'pending_payment')"

/* Staging tables, one set per connection, emptied at every commit. */
static const char sql_stage[] =
	"SET TimeZone = 'UTC';"
	/* a hung statement becomes an error (57014: retried), not a stall */
	"SET statement_timeout = '300s';"
	/* a commit it acknowledged survives a crash of PostgreSQL: the log
	 * is released (wal_retain) only behind a durable applied_lsn */
	"SET synchronous_commit = on;"
	"CREATE TEMP TABLE IF NOT EXISTS s_cat (seq int, kind smallint, id bigint,"
	" org_id bigint, name text, tz text, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_customer (seq int, id text, email text,"
	" name text, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_series (seq int, id bigint, org_id bigint,"
	" location_id bigint, instructor_id bigint, title text, capacity bigint,"
	" waitlist_capacity bigint, price_cents bigint, currency text, timezone text,"
	" weekday_mask smallint, start_time time, duration_min bigint,"
	" first_date date, last_date date, skip_dates date[], at bigint)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_gen (seq int, series_id bigint,"
	" through date, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_event (id bigint, start_at bigint,"
	" created bool, series_id bigint, org_id bigint, location_id bigint,"
	" instructor_id bigint, duration_min bigint, capacity0 bigint,"
	" waitlist_capacity bigint, price_cents bigint, currency text,"
	" capacity bigint, set_instructor bigint, status text, cancelled bool,"
	" cancel_at bigint, created_at bigint, updated_at bigint,"
	" needs_update bool, reg int, held int, wl int, dc int NOT NULL DEFAULT 0,"
	" dh int NOT NULL DEFAULT 0, dw int NOT NULL DEFAULT 0)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_booking (id bigint, event_id bigint,"
	" kind smallint, customer_id text, status text, hold bigint,"
	" created_at bigint, updated_at bigint, join_seq int, exit_at bigint,"
	" exit_status text, old_status text) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_payment (booking_id bigint, ref text,"
	" amount bigint, currency text, status text, flagged bool, code smallint,"
	" at bigint, customer_id text) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_newcust (id text, at bigint)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_notify (id text, kind text,"
	" booking_id bigint, lsn bigint, at bigint, customer_id text)"
	" ON COMMIT DELETE ROWS;";

static const char sql_catalog[] =
	"INSERT INTO organizations AS t (id, name, timezone, created_at, updated_at)"
	" SELECT DISTINCT ON (id) id, name, coalesce(nullif(tz, ''), 'UTC'),"
	" " TS("at") ", " TS("at") " FROM s_cat WHERE kind = 1 ORDER BY id, seq DESC"
	" ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
	" timezone = excluded.timezone, updated_at = excluded.updated_at;"
	"INSERT INTO locations AS t (id, org_id, name, timezone, created_at, updated_at)"
	" SELECT DISTINCT ON (id) id, org_id, name, nullif(tz, ''),"
	" " TS("at") ", " TS("at") " FROM s_cat WHERE kind = 2 ORDER BY id, seq DESC"
	" ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name,"
	" timezone = excluded.timezone, updated_at = excluded.updated_at;"
	"INSERT INTO instructors AS t (id, org_id, name, created_at, updated_at)"
	" SELECT DISTINCT ON (id) id, org_id, name,"
	" " TS("at") ", " TS("at") " FROM s_cat WHERE kind = 3 ORDER BY id, seq DESC"
	" ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name,"
	" updated_at = excluded.updated_at;"
	"INSERT INTO customers AS t (id, email, name, created_at, updated_at)"
	" SELECT DISTINCT ON (id) id, nullif(email, ''), nullif(name, ''),"
	" " TS("at") ", " TS("at") " FROM s_customer ORDER BY id, seq DESC"
	" ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name,"
	" updated_at = excluded.updated_at;"
	"INSERT INTO class_series AS t (id, org_id, location_id, instructor_id, title,"
	" capacity, waitlist_capacity, price_cents, currency, timezone, weekday_mask,"
	" start_time, duration_min, first_date, last_date, skip_dates, created_at,"
	" updated_at)"
	" SELECT DISTINCT ON (id) id, org_id, location_id, instructor_id, title,"
	" capacity, waitlist_capacity, price_cents, currency, timezone, weekday_mask,"
	" start_time, duration_min, first_date, last_date, skip_dates,"
	" " TS("at") ", " TS("at") " FROM s_series ORDER BY id, seq DESC"
	" ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id,"
	" location_id = excluded.location_id, instructor_id = excluded.instructor_id,"
	" title = excluded.title, capacity = excluded.capacity,"
	" waitlist_capacity = excluded.waitlist_capacity,"
	" price_cents = excluded.price_cents, currency = excluded.currency,"
	" timezone = excluded.timezone, weekday_mask = excluded.weekday_mask,"
	" start_time = excluded.start_time, duration_min = excluded.duration_min,"
	" first_date = excluded.first_date, last_date = excluded.last_date,"
	" skip_dates = excluded.skip_dates, updated_at = excluded.updated_at;"
	"UPDATE class_series t SET generated_through = g.through,"
	" updated_at = greatest(t.updated_at, " TS("g.at") ")"
	" FROM (SELECT DISTINCT ON (series_id) series_id, through, at FROM s_gen"
	" ORDER BY series_id, seq DESC) g WHERE t.id = g.series_id;";

/* Events this batch touches but did not create: their start_at (the
 * partition key) from PostgreSQL, for the cache. */
static const char sql_event_start[] =
	"UPDATE s_event s SET start_at = (extract(epoch FROM c.start_at) * 1000)::bigint"
	" FROM class_events c WHERE c.id = s.id AND s.start_at = 0"
	" RETURNING s.id, s.start_at";

/* New events as they end the batch (final settings and counters); an
 * event that exists already is an error (a unique violation stops). */
#define EVENT_INSERT                                                           \
	"INSERT INTO class_events (id, series_id, org_id, location_id,"        \
	" instructor_id, title, start_at, duration_min, capacity,"             \
	" waitlist_capacity, price_cents, currency, reg_count, held_count,"    \
	" waitlist_count, status, created_at, updated_at)"                     \
	" SELECT e.id, nullif(e.series_id, 0), e.org_id,"                      \
	" nullif(e.location_id, 0), nullif(e.set_instructor, 0),"              \
	" coalesce(s.title, ''), " TS("e.start_at") ", e.duration_min,"        \
	" e.capacity, e.waitlist_capacity, e.price_cents, e.currency, e.reg,"  \
	" e.held, e.wl, e.status, " TS("e.created_at") ","                     \
	" " TS("e.updated_at")                                                 \
	" FROM s_event e LEFT JOIN class_series s ON s.id = e.series_id"      \
	" WHERE e.created ORDER BY e.id"
static const char sql_event_insert[] = EVENT_INSERT;
/* From a snapshot: the event may be there; the update below sets it. */
static const char sql_event_insert_snapshot[] =
	EVENT_INSERT " ON CONFLICT (id, start_at) DO NOTHING";

static const char sql_old_status[] =
	"UPDATE s_booking s SET old_status = r.status FROM registrations r"
	" WHERE r.id = s.id AND s.kind <> 1";

static const char sql_missing_booking[] =
	"SELECT id FROM s_booking WHERE kind = 0 AND old_status IS NULL"
	" ORDER BY id LIMIT 1";

/* Per event, the counters' change from bookings this batch did not create:
 * (final - previous) statuses. */
static const char sql_event_delta[] =
	"UPDATE s_event e SET dc = d.dc, dh = d.dh, dw = d.dw FROM"
	" (SELECT event_id,"
	"  count(*) FILTER (WHERE status = 'confirmed')"
	"   - count(*) FILTER (WHERE old_status = 'confirmed') AS dc,"
	"  count(*) FILTER (WHERE status = 'pending_payment')"
	"   - count(*) FILTER (WHERE old_status = 'pending_payment') AS dh,"
	"  count(*) FILTER (WHERE status = 'waitlisted')"
	"   - count(*) FILTER (WHERE old_status = 'waitlisted') AS dw"
	"  FROM s_booking WHERE kind <> 1 GROUP BY event_id) d"
	" WHERE d.event_id = e.id AND e.needs_update";

/* From here on, the staging tables are small and the reporting tables
 * large: index look-ups (nested loops), never a scan of a whole table
 * (the partition key in the events' join prunes to one partition). */
static const char sql_nested_loops[] =
	"SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

/* One update per event: the counters' change with the final capacity,
 * instructor and status, so the CHECK sees one row version the core had. */
static const char sql_event_update[] =
	"UPDATE class_events c SET"
	" reg_count = CASE WHEN x.cancelled THEN 0"
	"  ELSE c.reg_count + x.reg + x.dc END,"
	" held_count = CASE WHEN x.cancelled THEN 0"
	"  ELSE c.held_count + x.held + x.dh END,"
	" waitlist_count = CASE WHEN x.cancelled THEN 0"
	"  ELSE c.waitlist_count + x.wl + x.dw END,"
	" capacity = coalesce(x.capacity, c.capacity),"
	" instructor_id = coalesce(nullif(x.set_instructor, 0), c.instructor_id),"
	" status = coalesce(x.status, c.status),"
	" updated_at = greatest(c.updated_at, " TS("x.updated_at") ")"
	" FROM s_event x"
	" WHERE x.needs_update AND c.id = x.id AND c.start_at = " TS("x.start_at");

/* Customers the bookings imply (a repeat does nothing). */
/* Touched events that are archived (archive_class_events_month, migration
 * 0007): their own row is gone, their bookings still apply. */
static const char sql_event_archived[] =
	"SELECT count(*) FROM s_event x WHERE x.needs_update"
	" AND EXISTS (SELECT 1 FROM archived_class_events a WHERE a.id = x.id)"
	" AND NOT EXISTS (SELECT 1 FROM class_events c WHERE c.id = x.id)";

static const char sql_customers_new[] =
	"INSERT INTO customers (id, created_at, updated_at)"
	" SELECT id, " TS("min(at)") ", " TS("min(at)")
	" FROM s_newcust GROUP BY id ORDER BY id ON CONFLICT (id) DO NOTHING";

static const char sql_reg_update[] =
	"UPDATE registrations r SET status = s.status,"
	" hold_expires_at = " TS("nullif(s.hold, 0)") ","
	" updated_at = " TS("s.updated_at")
	" FROM s_booking s WHERE r.id = s.id AND s.kind = 0;";

static const char sql_reg_insert[] =
	"INSERT INTO registrations (id, event_id, customer_id, status,"
	" hold_expires_at, created_at, updated_at)"
	" SELECT id, event_id, customer_id, status, " TS("nullif(hold, 0)") ","
	" " TS("created_at") ", " TS("updated_at")
	" FROM s_booking WHERE kind = 1 ORDER BY id;"; /* new ones, in id order:
							* an event's rows land
							* on one index leaf */

static const char sql_reg_restore[] =
	"INSERT INTO registrations AS r (id, event_id, customer_id, status,"
	" hold_expires_at, created_at, updated_at)"
	" SELECT id, event_id, customer_id, status, " TS("nullif(hold, 0)") ","
	" " TS("created_at") ", " TS("updated_at")
	" FROM s_booking WHERE kind = 2 ORDER BY id"
	" ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
	" hold_expires_at = excluded.hold_expires_at, updated_at = excluded.updated_at"
	" WHERE r.status IS DISTINCT FROM excluded.status"
	" OR r.hold_expires_at IS DISTINCT FROM excluded.hold_expires_at;";

static const char sql_waitlist[] =
	"INSERT INTO event_waitlists (booking_id, event_id, customer_id, position,"
	" joined_at, promoted_at, left_at)"
	" SELECT s.id, s.event_id, s.customer_id,"
	" coalesce((SELECT max(w.position) FROM event_waitlists w"
	"  WHERE w.event_id = s.event_id), 0)"
	" + row_number() OVER (PARTITION BY s.event_id ORDER BY s.join_seq),"
	" " TS("s.created_at") ","
	" CASE WHEN s.exit_status IN " SEATED " THEN " TS("s.exit_at") " END,"
	" CASE WHEN s.exit_status NOT IN " SEATED " THEN " TS("s.exit_at") " END"
	" FROM s_booking s"
	" WHERE s.join_seq IS NOT NULL AND (s.kind = 1 OR s.old_status IS NULL)"
	" ON CONFLICT (booking_id) DO NOTHING;"
	"UPDATE event_waitlists w SET"
	" promoted_at = CASE WHEN s.exit_status IN " SEATED " THEN " TS("s.exit_at") " END,"
	" left_at = CASE WHEN s.exit_status IN " SEATED " THEN NULL ELSE " TS("s.exit_at") " END"
	" FROM s_booking s WHERE w.booking_id = s.id AND s.kind <> 1"
	" AND s.old_status = 'waitlisted' AND s.exit_status IS NOT NULL"
	" AND w.promoted_at IS NULL AND w.left_at IS NULL;";

/* The core's event cancel cancels every active booking (no record each). */
static const char sql_event_cancel[] =
	"UPDATE registrations r SET status = 'cancelled', hold_expires_at = NULL,"
	" updated_at = " TS("e.cancel_at")
	" FROM s_event e WHERE e.cancelled AND r.event_id = e.id"
	" AND r.status IN " ACTIVE ";"
	"UPDATE event_waitlists w SET left_at = " TS("e.cancel_at")
	" FROM s_event e WHERE e.cancelled AND w.event_id = e.id"
	" AND w.promoted_at IS NULL AND w.left_at IS NULL;";

static const char sql_payments[] =
	"INSERT INTO payments (booking_id, customer_id, provider, payment_ref,"
	" amount_cents, currency, status, flagged, code, recorded_at)"
	" SELECT p.booking_id, coalesce(p.customer_id, (SELECT r.customer_id FROM"
	" registrations r WHERE r.id = p.booking_id)), 'stripe', p.ref, p.amount,"
	" p.currency, p.status, p.flagged, p.code, " TS("p.at")
	" FROM s_payment p"
	" ON CONFLICT (provider, payment_ref, booking_id) DO NOTHING;";

static const char sql_notify[] =
	"INSERT INTO notifications (id, kind, booking_id, event_id, customer_id,"
	" payload, created_at)"
	" SELECT n.id, n.kind, n.booking_id, n.booking_id >> 24,"
	" coalesce(n.customer_id, (SELECT r.customer_id FROM registrations r"
	" WHERE r.id = n.booking_id)), jsonb_build_object('lsn', n.lsn), " TS("n.at")
	" FROM s_notify n ORDER BY 5;"; /* ids are unique per log: a conflict
					  * stops; in customer order, the
					  * only index that is not appended
					  * to at its end */

/* A stream moves its own position, guarded by where it started from (two
 * replicators of one log cannot both apply). applied_lsn is what every
 * stream has: the first statement locks the row, so the second sees the
 * other streams' committed moves. */
static const char sql_state_stream[] =
	"UPDATE replication_state SET streams[$2::int] = $3::bigint,"
	" updated_at = now() WHERE log_id = $1 AND streams[$2::int] = $4::bigint";
static const char sql_state_min[] =
	"UPDATE replication_state SET applied_lsn ="
	" (SELECT min(v) FROM unnest(streams) v) WHERE log_id = $1";
/* A resync's batch moves every stream at once ($3 NULL: the guard only). */
static const char sql_state_all[] =
	"UPDATE replication_state SET streams = CASE WHEN $3::bigint IS NULL"
	" THEN streams ELSE array_fill($3::bigint, ARRAY[cardinality(streams)]) END,"
	" applied_lsn = coalesce($3::bigint, applied_lsn), updated_at = now()"
	" WHERE log_id = $1 AND streams = $2::bigint[]";

/* ---- libpq helpers -------------------------------------------------------- */

/* Is this failure worth a retry on a new connection? */
static bool pg_transient(PGconn *c, const PGresult *res)
{
	const char *state;

	if (!c || PQstatus(c) != CONNECTION_OK)
		return true;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!state || strlen(state) != 5)
		return true; /* no SQLSTATE: the client side or the link */
	if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) ||
	    !strncmp(state, "57", 2) || !strncmp(state, "58", 2) ||
	    !strncmp(state, "40", 2) || !strcmp(state, "55P03") ||
	    !strcmp(state, "55006"))
		return true;
	return false;
}

/* The first line of a message, for one-line reports. */
static void one_line(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; src && *src && *src != '\n' && n + 1 < size; src++)
		dst[n++] = *src;
	dst[n] = '\0';
}

/* BOOKD_REPL_TRACE=1: each statement's time on stderr (tuning). */
static bool trace_on(void)
{
	static int on = -1;
	if (on < 0)
		on = getenv("BOOKD_REPL_TRACE") != NULL;
	return on;
}

static void pg_notice_quiet(void *arg, const char *message)
{
	(void)arg, (void)message; /* "already exists, skipping" and the like */
}

/* Runs sql expecting `want`; on failure fills err and returns
 * REPL_TRANSIENT or -EPROTO (permanent). *out (if given) keeps the result. */
static int pg_run(PGconn *c, const char *what, const char *sql, int nparams,
		  const char *const *params, ExecStatusType want,
		  PGresult **out, char *err, size_t err_size)
{
	double t0 = trace_on() ? mono_s() : 0;
	PGresult *res = nparams ? PQexecParams(c, sql, nparams, NULL, params,
					       NULL, NULL, 0)
				: PQexec(c, sql);
	char msg[300];

	if (t0)
		fprintf(stderr, "trace: %-28s %8.2f ms\n", what,
			(mono_s() - t0) * 1000);

	if (res && PQresultStatus(res) == want) {
		if (out)
			*out = res;
		else
			PQclear(res);
		return 0;
	}
	one_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
				       : PQerrorMessage(c));
	if (!msg[0])
		one_line(msg, sizeof(msg), PQerrorMessage(c));
	snprintf(err, err_size, "%s: %s%s%s%s", what, msg,
		 res && PQresultErrorField(res, PG_DIAG_SQLSTATE) ? " (SQLSTATE " : "",
		 res && PQresultErrorField(res, PG_DIAG_SQLSTATE)
			 ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "",
		 res && PQresultErrorField(res, PG_DIAG_SQLSTATE) ? ")" : "");
	bool transient = pg_transient(c, res);
	PQclear(res);
	return transient ? REPL_TRANSIENT : -EPROTO;
}

static int pg_copy(PGconn *c, const char *sql, const struct buf *b, char *err,
		   size_t err_size)
{
	double t0 = trace_on() ? mono_s() : 0;
	PGresult *res = PQexec(c, sql);
	int rc;

	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		char msg[300];
		bool transient = pg_transient(c, res);

		one_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
					       : PQerrorMessage(c));
		snprintf(err, err_size, "%s: %s", sql, msg);
		PQclear(res);
		return transient ? REPL_TRANSIENT : -EPROTO;
	}
	PQclear(res);
	rc = PQputCopyData(c, b->data, (int)b->size) == 1 ? 0 : -1;
	if (PQputCopyEnd(c, rc ? "replicator: copy failed" : NULL) != 1)
		rc = -1;
	res = PQgetResult(c);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		char msg[300];
		bool transient = pg_transient(c, res);

		one_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
					       : PQerrorMessage(c));
		snprintf(err, err_size, "%s: %s", sql, msg);
		PQclear(res);
		while ((res = PQgetResult(c)))
			PQclear(res);
		return transient ? REPL_TRANSIENT : -EPROTO;
	}
	PQclear(res);
	while ((res = PQgetResult(c)))
		PQclear(res);
	if (t0)
		fprintf(stderr, "trace: %-28.28s %8.2f ms (%zu bytes)\n", sql,
			(mono_s() - t0) * 1000, b->size);
	return rc ? REPL_TRANSIENT : 0;
}

/* A decimal integer PostgreSQL sent, validated. */
static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* ---- status and lag ---------------------------------------------------- */

static void lag_sample(repl *r)
{
	int64_t now = mono_ms();
	uint64_t d = wal_durable_lsn(r->w);

	pthread_mutex_lock(&r->lock);
	if (r->sample_count == 0 ||
	    (d > r->samples[(r->sample_head + r->sample_count - 1) %
			     REPL_LAG_SAMPLE_COUNT].lsn &&
	     now - r->samples[(r->sample_head + r->sample_count - 1) %
			      REPL_LAG_SAMPLE_COUNT].t_ms >= REPL_LAG_SAMPLE_MS)) {
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
static void lag_pop(repl *r)
{
	while (r->sample_count > 0 &&
	       r->samples[r->sample_head].lsn <= r->st.applied_lsn) {
		if (r->samples[r->sample_head].t_ms > r->caught_up_ms)
			r->caught_up_ms = r->samples[r->sample_head].t_ms;
		r->sample_head = (r->sample_head + 1) % REPL_LAG_SAMPLE_COUNT;
		r->sample_count--;
	}
}

static void set_connected(repl *r, bool up)
{
	pthread_mutex_lock(&r->lock);
	r->connected = up;
	pthread_mutex_unlock(&r->lock);
}

/* A permanent error: say it once, loudly, and stop applying. */
static void stop_loudly(repl *r, const char *msg)
{
	fprintf(stderr,
		"bookd: replicator: STOPPED: %s. Nothing was skipped: fix the "
		"cause and restart bookd; replication resumes after applied_lsn "
		"%" PRIu64 ".\n",
		msg, r->st.applied_lsn);
	pthread_mutex_lock(&r->lock);
	snprintf(r->st.error, sizeof(r->st.error), "%s", msg);
	r->st.error_count++;
	r->st.stopped = true;
	r->connected = false;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* ---- the event start cache (partition key of updates) ------------------ */

static void starts_set(struct starts *s, uint64_t id, int64_t ms)
{
	pthread_mutex_lock(&s->lock);
	if (id >= s->cap) {
		uint64_t cap = s->cap ? s->cap : 1u << 16;
		int64_t *p;

		while (cap <= id)
			cap *= 2;
		if (cap > REPL_START_CACHE_MAX)
			goto out; /* beyond: looked up in PostgreSQL */
		p = realloc(s->ms, cap * sizeof(*p));
		if (!p)
			goto out;
		memset(p + s->cap, 0, (cap - s->cap) * sizeof(*p));
		s->ms = p;
		s->cap = cap;
	}
	s->ms[id] = ms;
out:
	pthread_mutex_unlock(&s->lock);
}

/* The start of event id, 0 when unknown. */
static int64_t starts_get(struct starts *s, uint64_t id)
{
	int64_t ms = 0;

	pthread_mutex_lock(&s->lock);
	if (id < s->cap)
		ms = s->ms[id];
	pthread_mutex_unlock(&s->lock);
	return ms;
}

/* ---- partitions ---------------------------------------------------------- */

static void month_date(uint32_t m, char out[16])
{
	snprintf(out, 16, "%04u-%02u-01", REPL_MONTH_BASE + m / 12, m % 12 + 1);
}

/* The partitions that exist, into r->months. */
static int partitions_load(repl *r, char *err, size_t es)
{
	PGresult *res;
	int rc = pg_run(r->conn[0], "listing partitions",
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

		if (sscanf(name, "class_events_%4u_%2u%c", &y, &m, &tail) != 2 ||
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
static int partitions_ensure(repl *r, uint32_t lo, uint32_t hi, char *err,
			     size_t es)
{
	for (uint32_t a = lo; a <= hi; a += 120) {
		uint32_t z = hi - a >= 119 ? a + 119 : hi;
		char from[16], to[16];
		const char *p[2] = { from, to };
		int rc;

		month_date(a, from);
		month_date(z, to);
		rc = pg_run(r->conn[0], "ensure_class_events_partitions",
			    "SELECT ensure_class_events_partitions($1::date, $2::date)",
			    2, p, PGRES_TUPLES_OK, NULL, err, es);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- migrations ------------------------------------------------------------ */

static int migrate(repl *r, char *err, size_t es)
{
	PGconn *c = r->conn[0];
	int rc = pg_run(c, "schema_migrations",
			"CREATE TABLE IF NOT EXISTS schema_migrations ("
			" version bigint PRIMARY KEY, name text,"
			" applied_at timestamptz NOT NULL DEFAULT now())",
			0, NULL, PGRES_COMMAND_OK, NULL, err, es);

	for (unsigned i = 0; rc == 0 && i < repl_migration_count; i++) {
		const struct repl_migration *m = &repl_migrations[i];
		char version[24];
		const char *p[2] = { version, m->name };
		PGresult *res;

		snprintf(version, sizeof(version), "%ld", m->version);
		/* One runner at a time (nodes sharing a database). */
		rc = pg_run(c, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL,
			    err, es);
		if (!rc)
			rc = pg_run(c, "migration lock",
				    "SELECT pg_advisory_xact_lock(hashtext('bookd.migrations'))",
				    0, NULL, PGRES_TUPLES_OK, NULL, err, es);
		if (!rc)
			rc = pg_run(c, "schema_migrations",
				    "SELECT 1 FROM schema_migrations WHERE version = $1",
				    1, p, PGRES_TUPLES_OK, &res, err, es);
		if (rc)
			break;
		bool applied = PQntuples(res) > 0;
		PQclear(res);
		if (applied) {
			rc = pg_run(c, "COMMIT", "COMMIT", 0, NULL,
				    PGRES_COMMAND_OK, NULL, err, es);
			continue;
		}
		res = PQexec(c, m->sql);
		if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK &&
			     PQresultStatus(res) != PGRES_TUPLES_OK)) {
			char msg[300];
			bool transient = pg_transient(c, res);

			one_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
						       : PQerrorMessage(c));
			snprintf(err, es, "migration %s: %s", m->name, msg);
			PQclear(res);
			PQclear(PQexec(c, "ROLLBACK"));
			return transient ? REPL_TRANSIENT : -EPROTO;
		}
		PQclear(res);
		rc = pg_run(c, "schema_migrations",
			    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
			    2, p, PGRES_COMMAND_OK, NULL, err, es);
		if (!rc)
			rc = pg_run(c, "COMMIT", "COMMIT", 0, NULL,
				    PGRES_COMMAND_OK, NULL, err, es);
		if (!rc)
			say(r, "migration %s applied", m->name);
	}
	if (rc && PQstatus(c) == CONNECTION_OK)
		PQclear(PQexec(c, "ROLLBACK"));
	return rc;
}

/* ---- applying a batch -------------------------------------------------------- */

/* The replication_state move of part k, in its transaction: 0 or an
 * error. A resync's batch (b->snapshot) moves every stream (move false:
 * none, the guard only). */
static int move_state(repl *r, struct batch *b, uint32_t k, uint64_t to,
		      bool move)
{
	PGconn *c = r->conn[k];
	struct part *p = &b->part[k];
	char stream_s[12], to_s[24], from_s[24], all_s[REPL_STREAM_MAX * 24 + 2];
	PGresult *res;
	int rc;

	snprintf(to_s, sizeof(to_s), "%" PRIu64, to);
	if (b->snapshot) {
		size_t n = 0;
		const char *pa[3] = { r->log_id, all_s, move ? to_s : NULL };

		all_s[n++] = '{';
		for (uint32_t i = 0; i < r->streams; i++)
			n += (size_t)snprintf(all_s + n, sizeof(all_s) - n,
					      "%s%" PRIu64, i ? "," : "",
					      r->stream_lsn[i]);
		snprintf(all_s + n, sizeof(all_s) - n, "}");
		rc = pg_run(c, "replication_state", sql_state_all, 3, pa,
			    PGRES_COMMAND_OK, &res, p->err, sizeof(p->err));
		snprintf(from_s, sizeof(from_s), "%.20s", all_s);
	} else {
		const char *ps[4] = { r->log_id, stream_s, to_s, from_s };

		snprintf(stream_s, sizeof(stream_s), "%u", k + 1);
		snprintf(from_s, sizeof(from_s), "%" PRIu64, p->from);
		rc = pg_run(c, "replication_state", sql_state_stream, 4, ps,
			    PGRES_COMMAND_OK, &res, p->err, sizeof(p->err));
	}
	if (rc)
		return rc;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		snprintf(p->err, sizeof(p->err),
			 "replication_state of log '%s' is no longer at %s: "
			 "another replicator applies this log", r->log_id, from_s);
		rc = -EUCLEAN;
	}
	PQclear(res);
	if (!rc && !b->snapshot) {
		const char *pm[1] = { r->log_id };
		rc = pg_run(c, "replication_state", sql_state_min, 1, pm,
			    PGRES_COMMAND_OK, NULL, p->err, sizeof(p->err));
	}
	return rc;
}

/* Applies part k of the batch on stream k's connection in one transaction
 * that also moves the stream's position to `to`. 0, REPL_TRANSIENT (retry
 * on a new connection) or -EPROTO / -EUCLEAN (permanent), with p->err. */
static int apply_part(repl *r, struct batch *b, uint32_t k, uint64_t to,
		      bool move)
{
	PGconn *c = r->conn[k];
	struct part *p = &b->part[k];
	char *err = p->err;
	size_t es = sizeof(p->err);
	PGresult *res;
	char *multi;
	size_t multi_size = 0;
	int rc;

	assert(c);
	rc = pg_run(c, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, err, es);
	for (int s = 0; !rc && s < ST_COUNT; s++)
		if (p->rows[s])
			rc = pg_copy(c, stage_copy[s], &p->st[s], err, es);
	if (!rc && (p->rows[ST_CAT] || p->rows[ST_CUSTOMER] ||
		    p->rows[ST_SERIES] || p->rows[ST_GEN]))
		rc = pg_run(c, "catalogue", sql_catalog, 0, NULL,
			    PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && p->misses) {
		rc = pg_run(c, "event look-up", sql_event_start, 0, NULL,
			    PGRES_TUPLES_OK, &res, err, es);
		for (int i = 0; !rc && i < PQntuples(res); i++) {
			int64_t id, ms;

			if (PQnfields(res) != 2 ||
			    !parse_i64(PQgetvalue(res, i, 0), &id) ||
			    !parse_i64(PQgetvalue(res, i, 1), &ms) || id <= 0 ||
			    ms == 0) {
				snprintf(err, es, "event look-up: unexpected row");
				rc = -EPROTO;
				break;
			}
			starts_set(&r->starts, (uint64_t)id, ms);
		}
		if (res && !rc)
			PQclear(res);
		else if (rc && res && PQresultStatus(res) == PGRES_TUPLES_OK)
			PQclear(res);
	}
	if (!rc && p->created)
		rc = pg_run(c, "inserting events",
			    b->snapshot ? sql_event_insert_snapshot : sql_event_insert,
			    0, NULL, PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && (p->kinds[BK_SET] || p->kinds[BK_RESTORE]))
		rc = pg_run(c, "previous statuses", sql_old_status, 0, NULL,
			    PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && p->kinds[BK_SET]) {
		rc = pg_run(c, "previous statuses", sql_missing_booking, 0, NULL,
			    PGRES_TUPLES_OK, &res, err, es);
		if (!rc) {
			if (PQntuples(res) > 0) {
				snprintf(err, es,
					 "booking %s changed in the log but is not "
					 "in registrations (log and PostgreSQL "
					 "diverged)",
					 PQgetvalue(res, 0, 0));
				rc = -EUCLEAN;
			}
			PQclear(res);
		}
	}
	if (!rc && p->updates && (p->kinds[BK_SET] || p->kinds[BK_RESTORE]))
		rc = pg_run(c, "event deltas", sql_event_delta, 0, NULL,
			    PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = pg_run(c, "nested loops", sql_nested_loops, 0, NULL,
			    PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && p->updates) {
		int64_t n = -1, archived = 0;

		rc = pg_run(c, "updating events", sql_event_update, 0, NULL,
			    PGRES_COMMAND_OK, &res, err, es);
		if (!rc) {
			if (!parse_i64(PQcmdTuples(res), &n))
				n = -1;
			PQclear(res);
		}
		if (!rc && n >= 0 && n < p->updates) { /* archived ones? */
			rc = pg_run(c, "archived events", sql_event_archived, 0,
				    NULL, PGRES_TUPLES_OK, &res, err, es);
			if (!rc) {
				if (PQntuples(res) != 1 ||
				    !parse_i64(PQgetvalue(res, 0, 0), &archived))
					archived = -1;
				PQclear(res);
			}
		}
		if (!rc && n + archived != p->updates) {
			snprintf(err, es,
				 "%u events touched, %" PRId64 " found in class_events "
				 "and %" PRId64 " archived (an event the log has is "
				 "missing: a partition detached without "
				 "archive_class_events_month, or another log's data?)",
				 p->updates, n, archived);
			rc = -EUCLEAN;
		}
	}
	if (!rc && p->rows[ST_NEWCUST]) {
		rc = pg_run(c, "customers", sql_customers_new, 0, NULL,
			    PGRES_COMMAND_OK, &res, err, es);
		if (!rc) {
			int64_t n;

			if (parse_i64(PQcmdTuples(res), &n) && n > 0)
				p->customers = (uint32_t)n;
			PQclear(res);
		}
	}
	if (!rc) {
		/* The rest needs no answer: one round trip. */
		const char *parts[8];
		size_t np = 0;

		if (p->kinds[BK_SET])
			parts[np++] = sql_reg_update;
		if (p->kinds[BK_NEW])
			parts[np++] = sql_reg_insert;
		if (p->kinds[BK_RESTORE])
			parts[np++] = sql_reg_restore;
		if (p->rows[ST_BOOKING])
			parts[np++] = sql_waitlist;
		if (p->cancels)
			parts[np++] = sql_event_cancel;
		if (p->rows[ST_PAYMENT])
			parts[np++] = sql_payments;
		if (p->rows[ST_NOTIFY])
			parts[np++] = sql_notify;
		for (size_t i = 0; i < np; i++)
			multi_size += strlen(parts[i]);
		if (np && trace_on()) { /* one by one, timed */
			for (size_t i = 0; !rc && i < np; i++) {
				char what[40];
				snprintf(what, sizeof(what), "%.36s", parts[i]);
				rc = pg_run(c, what, parts[i], 0, NULL,
					    PGRES_COMMAND_OK, NULL, err, es);
			}
			np = 0;
		}
		if (np) {
			multi = malloc(multi_size + 1);
			if (!multi) {
				snprintf(err, es, "out of memory");
				rc = -ENOMEM;
			} else {
				multi[0] = '\0';
				for (size_t i = 0; i < np; i++)
					strcat(multi, parts[i]);
				rc = pg_run(c, "applying bookings", multi, 0, NULL,
					    PGRES_COMMAND_OK, NULL, err, es);
				free(multi);
			}
		}
	}
	if (!rc && (p->from < to || b->snapshot))
		rc = move_state(r, b, k, to, move);
	if (!rc)
		rc = pg_run(c, "COMMIT", "COMMIT", 0, NULL, PGRES_COMMAND_OK,
			    NULL, err, es);
	if (rc && rc != REPL_TRANSIENT && PQstatus(c) == CONNECTION_OK)
		PQclear(PQexec(c, "ROLLBACK"));
	return rc;
}

/* Part k's transaction, on a thread of its own (or the caller's). A stream
 * that has the whole batch already may still have customers to insert. */
struct job {
	repl *r;
	struct batch *b;
	uint32_t k;
	uint64_t to;
	bool move;
	pthread_t thread;
	bool started;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct part *p = &j->b->part[j->k];

	p->rc = 0;
	if (p->from < j->to || j->b->snapshot || p->rows[ST_NEWCUST])
		p->committed = (p->rc = apply_part(j->r, j->b, j->k, j->to,
						   j->move)) == 0;
	return NULL;
}

/* Parts lo..hi-1 at once. 0, or the first permanent error (else a
 * transient one) into b->err. */
static int run_parts(repl *r, struct batch *b, uint32_t lo, uint32_t hi,
		     uint64_t to, bool move)
{
	struct job jobs[REPL_STREAM_MAX];
	int rc = 0;

	for (uint32_t k = lo; k < hi; k++) {
		jobs[k] = (struct job){ .r = r, .b = b, .k = k, .to = to,
					.move = move };
		if (k > lo)
			jobs[k].started = pthread_create(&jobs[k].thread, NULL,
							 job_run, &jobs[k]) == 0;
		if (k > lo && !jobs[k].started)
			job_run(&jobs[k]); /* no thread: in turn */
	}
	job_run(&jobs[lo]);
	for (uint32_t k = lo; k < hi; k++) {
		struct part *p = &b->part[k];

		if (jobs[k].started)
			pthread_join(jobs[k].thread, NULL);
		if (p->rc == 0 || (rc && rc != REPL_TRANSIENT) ||
		    (rc == REPL_TRANSIENT && p->rc == REPL_TRANSIENT))
			continue;
		rc = p->rc;
		if (r->streams > 1)
			snprintf(b->err, sizeof(b->err), "stream %u: %s", k + 1,
				 p->err);
		else
			snprintf(b->err, sizeof(b->err), "%s", p->err);
	}
	return rc;
}

/* Applies the batch: each stream's part in a transaction of its own that
 * moves the stream's position to `to` (a resync's batch: stream 0 alone,
 * moving every stream; move false: none). Partitions first (harmless
 * ahead of time), then the parts: stream 0 first when it has catalogue
 * rows (the events of a new series read its title), else all at once.
 * 0, REPL_TRANSIENT (retry on new connections) or a permanent -errno,
 * with b->err; b->part[k].committed says which streams moved. */
static int apply_batch(repl *r, struct batch *b, uint64_t to, bool move)
{
	const struct part *p0 = &b->part[0];
	uint32_t n = b->snapshot ? 1 : b->parts;
	int rc;

	batch_finish(b);
	for (uint32_t k = 0; k < n; k++)
		for (int s = 0; s < ST_COUNT; s++)
			if (b->part[k].st[s].overflow) {
				snprintf(b->err, sizeof(b->err),
					 "batch too large to stage (out of memory)");
				return -ENOMEM;
			}
	if (b->months) {
		rc = partitions_ensure(r, b->month_lo, b->month_hi, b->err,
				       sizeof(b->err));
		if (rc)
			return rc;
		for (uint32_t m = b->month_lo; m <= b->month_hi; m++)
			r->months[m / 8] |= (uint8_t)(1u << (m % 8));
	}
	if (n > 1 && (p0->rows[ST_CAT] || p0->rows[ST_CUSTOMER] ||
		      p0->rows[ST_SERIES] || p0->rows[ST_GEN])) {
		rc = run_parts(r, b, 0, 1, to, move);
		return rc ? rc : run_parts(r, b, 1, n, to, move);
	}
	return run_parts(r, b, 0, n, to, move);
}

/* ---- sessions: connect, migrate, position, reader ---------------------------- */

static void session_close(repl *r)
{
	if (r->reader) {
		wal_reader_close(r->reader);
		r->reader = NULL;
	}
	pthread_mutex_lock(&r->lock);
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		if (r->cancel[k]) {
			PQfreeCancel(r->cancel[k]);
			r->cancel[k] = NULL;
		}
	pthread_mutex_unlock(&r->lock);
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		if (r->conn[k]) {
			PQfinish(r->conn[k]);
			r->conn[k] = NULL;
		}
	set_connected(r, false);
}

/* A new batch, each part knowing where its stream is. */
static void batch_start(repl *r, struct batch *b)
{
	batch_reset(b);
	b->parts = r->streams;
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		b->part[k].from = k < r->streams ? r->stream_lsn[k] : UINT64_MAX;
}

/* After a batch, whole or not: the streams that committed are at `to`
 * (a resync's batch moves them all, when move); applied_lsn is what every
 * stream has. */
static void batch_done(repl *r, const struct batch *b, uint64_t to, bool move,
		       double seconds)
{
	uint64_t lo = UINT64_MAX;
	bool whole = true;

	for (uint32_t k = 0; k < r->streams; k++) {
		const struct part *p = &b->part[b->snapshot ? 0 : k];

		if (p->committed && move && r->stream_lsn[k] < to)
			r->stream_lsn[k] = to; /* (one ahead only inserted
						* customers) */
		if (r->stream_lsn[k] < lo)
			lo = r->stream_lsn[k];
		whole &= r->stream_lsn[k] >= to;
	}
	pthread_mutex_lock(&r->lock);
	r->st.applied_lsn = lo;
	for (uint32_t k = 0; k < (b->snapshot ? 1 : r->streams); k++)
		if (b->part[k].committed)
			r->st.rows_written += part_rows(&b->part[k]);
	if (whole) {
		r->st.batch_count++;
		r->st.records_applied += b->records;
		r->st.entries_applied += b->entries;
		r->st.last_batch_ms = seconds * 1000;
		r->bytes_applied += b->bytes;
	}
	lag_pop(r);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	wal_retain(r->w, lo + 1);
	if (whole) /* these customers exist now */
		for (uint32_t i = 0; i < b->bk_count; i++)
			if (b->bk[i].kind != BK_SET)
				custset_add(&r->customers, b->bk[i].customer);
}

static int resync(repl *r, char *err, size_t es);

static PGconn *pg_connect(repl *r, uint32_t k, char *err, size_t es)
{
	/* Before dbname: the conninfo's own settings win. Keepalives find a
	 * dead server on TCP within a minute. */
	const char *keys[] = { "connect_timeout", "keepalives_idle",
			       "keepalives_interval", "keepalives_count",
			       "application_name", "dbname", NULL };
	const char *vals[] = { "5", "30", "10", "3", "bookd-replicator",
			       r->conninfo, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (!c || PQstatus(c) != CONNECTION_OK) {
		char msg[300];
		one_line(msg, sizeof(msg), c ? PQerrorMessage(c) : "out of memory");
		snprintf(err, es, "cannot connect to PostgreSQL: %s", msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, pg_notice_quiet, NULL);
	r->conn[k] = c;
	pthread_mutex_lock(&r->lock);
	r->cancel[k] = PQgetCancel(c);
	pthread_mutex_unlock(&r->lock);
	return c;
}

/* Where each stream is, from replication_state, into r->stream_lsn and
 * r->streams: the configured count when all are at one LSN (a row from
 * before streams, or another count, is set to it), else the stored count
 * until the streams behind have caught up (a batch committed on some
 * streams only). */
static int streams_load(repl *r, char *err, size_t es)
{
	const char *p[1] = { r->log_id };
	char n_s[12], v_s[24];
	const char *pu[3] = { r->log_id, n_s, v_s };
	PGresult *res;
	bool equal = true;
	int rows, rc;

	rc = pg_run(r->conn[0], "replication_state",
		    "SELECT u.v, s.streams IS NULL FROM replication_state s,"
		    " unnest(coalesce(s.streams, ARRAY[s.applied_lsn]))"
		    " WITH ORDINALITY u(v, i) WHERE s.log_id = $1 ORDER BY u.i",
		    1, p, PGRES_TUPLES_OK, &res, err, es);
	if (rc)
		return rc;
	rows = PQntuples(res);
	for (int i = 0; i < rows && i < REPL_STREAM_MAX; i++) {
		int64_t v;

		if (PQnfields(res) != 2 || !parse_i64(PQgetvalue(res, i, 0), &v) ||
		    v < 0) {
			rows = 0;
			break;
		}
		r->stream_lsn[i] = (uint64_t)v;
		equal &= r->stream_lsn[i] == r->stream_lsn[0];
	}
	bool legacy = rows > 0 && PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (rows < 1 || rows > REPL_STREAM_MAX) {
		snprintf(err, es, "replication_state of log '%s': unexpected "
				  "streams (%d)", r->log_id, rows);
		return -EPROTO;
	}
	r->streams = (uint32_t)rows;
	if (!equal) {
		say(r, "%d streams at different LSNs (a batch committed on some "
		       "only): those behind catch up first", rows);
		return 0;
	}
	if (!legacy && r->streams == r->cfg.streams)
		return 0;
	snprintf(n_s, sizeof(n_s), "%u", r->cfg.streams);
	snprintf(v_s, sizeof(v_s), "%" PRIu64, r->stream_lsn[0]);
	rc = pg_run(r->conn[0], "replication_state",
		    "UPDATE replication_state SET streams ="
		    " array_fill($3::bigint, ARRAY[$2::int]) WHERE log_id = $1"
		    " AND applied_lsn = $3::bigint AND coalesce(streams,"
		    " ARRAY[applied_lsn]) <@ ARRAY[$3::bigint]",
		    3, pu, PGRES_COMMAND_OK, &res, err, es);
	if (rc)
		return rc;
	rc = strcmp(PQcmdTuples(res), "1") ? -EUCLEAN : 0;
	PQclear(res);
	if (rc) {
		snprintf(err, es, "replication_state of log '%s' moved while "
				  "starting: another replicator applies this log",
			 r->log_id);
		return rc;
	}
	r->streams = r->cfg.streams;
	for (uint32_t k = 1; k < r->streams; k++)
		r->stream_lsn[k] = r->stream_lsn[0];
	return 0;
}

static int session_open(repl *r, char *err, size_t es)
{
	const char *p[1] = { r->log_id };
	uint64_t applied = UINT64_MAX, top = 0, durable;
	char ahead[8];
	int rc;

	if (!pg_connect(r, 0, err, es))
		return REPL_TRANSIENT;
	rc = migrate(r, err, es);
	if (!rc)
		rc = pg_run(r->conn[0], "staging tables", sql_stage, 0, NULL,
			    PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = pg_run(r->conn[0], "replication_state",
			    "INSERT INTO replication_state (log_id, streams)"
			    " VALUES ($1, '{0}') ON CONFLICT (log_id) DO NOTHING",
			    1, p, PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = streams_load(r, err, es);
	if (rc)
		return rc;
	for (uint32_t k = 0; k < r->streams; k++) {
		applied = r->stream_lsn[k] < applied ? r->stream_lsn[k] : applied;
		top = r->stream_lsn[k] > top ? r->stream_lsn[k] : top;
	}
	durable = wal_durable_lsn(r->w);
	if (top > durable) {
		snprintf(err, es,
			 "PostgreSQL has log '%s' applied up to LSN %" PRIu64
			 " but the log ends at %" PRIu64
			 ": another log's data (set another log_id) or a lost log",
			 r->log_id, top, durable);
		return -EUCLEAN;
	}
	for (uint32_t k = 1; !rc && k < r->streams; k++) {
		if (!pg_connect(r, k, err, es))
			return REPL_TRANSIENT;
		rc = pg_run(r->conn[k], "staging tables", sql_stage, 0, NULL,
			    PGRES_COMMAND_OK, NULL, err, es);
	}
	snprintf(ahead, sizeof(ahead), "%u", r->cfg.partition_months_ahead);
	const char *pa[1] = { ahead };
	if (!rc)
		rc = pg_run(r->conn[0], "partitions ahead",
			    "SELECT ensure_class_events_partitions("
			    "(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date,"
			    " ((now() AT TIME ZONE 'UTC') + make_interval(months => $1::int))::date)",
			    1, pa, PGRES_TUPLES_OK, NULL, err, es);
	if (!rc)
		rc = partitions_load(r, err, es);
	if (rc)
		return rc;

	pthread_mutex_lock(&r->lock);
	r->st.applied_lsn = applied;
	r->schema_ready = true;
	r->connected = true;
	lag_pop(r);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);

	wal_retain(r->w, applied + 1);
	rc = wal_reader_open(r->w, applied + 1, &r->reader);
	if (rc == -ENODATA)
		return resync(r, err, es);
	if (rc) {
		snprintf(err, es, "cannot read the log from LSN %" PRIu64 ": %s",
			 applied + 1, strerror(-rc));
		return rc;
	}
	say(r, "connected (%u stream%s); log '%s' applied up to LSN %" PRIu64
	       ", log at %" PRIu64,
	    r->streams, r->streams == 1 ? "" : "s", r->log_id, applied, durable);
	return 0;
}

/* The log before applied_lsn + 1 is gone: apply the newest snapshot (its
 * records are absolute), then tail after it. */
static int resync(repl *r, char *err, size_t es)
{
	for (int attempt = 0; attempt < REPL_RESYNC_ATTEMPT_MAX; attempt++) {
		uint64_t applied = r->st.applied_lsn, snap_lsn = 0, top = 0;
		void *snap = NULL;
		size_t size = 0, pos = 0;
		const void *entry;
		size_t entry_size;
		char lerr[256];
		struct batch *b = &r->b;
		int rc;

		if (!r->data_dir) {
			snprintf(err, es,
				 "the log from LSN %" PRIu64 " was removed and no "
				 "data_dir is set to resynchronise from a snapshot",
				 applied + 1);
			return -ENODATA;
		}
		rc = wal_snapshot_load(r->data_dir, &snap_lsn, &snap, &size, lerr,
				       sizeof(lerr));
		if (rc) {
			snprintf(err, es, "resync: no snapshot: %s", lerr);
			return rc;
		}
		for (uint32_t k = 0; k < r->streams; k++)
			top = r->stream_lsn[k] > top ? r->stream_lsn[k] : top;
		if (snap_lsn <= applied || snap_lsn < top) {
			free(snap);
			snprintf(err, es,
				 "the log lacks LSN %" PRIu64 " and the newest "
				 "snapshot is at %" PRIu64 ": cannot resynchronise",
				 applied + 1, snap_lsn);
			return -ENODATA;
		}
		say(r, "log from LSN %" PRIu64 " removed: resynchronising from "
		       "the snapshot at LSN %" PRIu64 " (%zu bytes)",
		    applied + 1, snap_lsn, size);
		batch_start(r, b);
		b->snapshot = true;
		while (!rc && (rc = core_snapshot_next(snap, size, &pos, &entry,
						       &entry_size)) > 0) {
			struct core_rec c;
			size_t at = 0;
			int n;

			rc = 0;
			while (!rc && (n = core_entry_next(entry, entry_size, &at,
							   &c)) > 0) {
				/* Cut only before an event: an event's
				 * capacity and its bookings go together. */
				if (c.type == CORE_REC_EVENT_CREATE &&
				    b->records >= r->cfg.batch_records / 2) {
					b->first_lsn = b->last_lsn = snap_lsn;
					rc = apply_batch(r, b, applied, false);
					if (rc)
						break;
					batch_done(r, b, applied, false, 0);
					batch_start(r, b);
					b->snapshot = true;
				}
				rc = batch_add(b, &c, snap_lsn, 0);
				b->records++;
				if (!rc && (b->bk_count + 1 >= b->cap ||
					    b->ev_count + 1 >= b->cap)) {
					/* one event with more bookings than a
					 * batch holds: not expected (24-bit
					 * sequence, batch >= 10k) */
					snprintf(b->err, sizeof(b->err),
						 "resync: an event with more bookings "
						 "than a batch holds");
					rc = -E2BIG;
				}
			}
			if (!rc && n < 0) {
				snprintf(b->err, sizeof(b->err),
					 "snapshot at LSN %" PRIu64 ": an entry does "
					 "not decode", snap_lsn);
				rc = -EUCLEAN;
			}
		}
		if (rc < 0 && b->err[0] == '\0')
			snprintf(b->err, sizeof(b->err),
				 "snapshot at LSN %" PRIu64 " is malformed", snap_lsn);
		if (!rc) {
			b->entries = 1;
			b->first_lsn = b->last_lsn = snap_lsn;
			rc = apply_batch(r, b, snap_lsn, true);
		}
		free(snap);
		if (rc) {
			snprintf(err, es, "resync: %.400s", b->err);
			return rc;
		}
		batch_done(r, b, snap_lsn, true, 0);
		pthread_mutex_lock(&r->lock);
		r->st.resync_count++;
		pthread_mutex_unlock(&r->lock);
		say(r, "resynchronised at LSN %" PRIu64, snap_lsn);
		rc = wal_reader_open(r->w, snap_lsn + 1, &r->reader);
		if (rc == 0)
			return 0;
		if (rc != -ENODATA) {
			snprintf(err, es, "cannot read the log from LSN %" PRIu64
					  ": %s", snap_lsn + 1, strerror(-rc));
			return rc;
		}
	}
	snprintf(err, es, "resync: the log keeps moving past the snapshots");
	return REPL_TRANSIENT;
}

/* ---- the main thread ---------------------------------------------------------- */

static int on_entry(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	repl *r = ctx;
	struct batch *b = &r->b;
	int rc;

	if (b->records >= r->cfg.batch_records) {
		b->full = true;
		return 1; /* passed again next time */
	}
	rc = batch_add_entry(b, lsn, payload, size);
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

	batch_start(r, b);
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
					 "reading the log at LSN %" PRIu64 ": %s",
					 wal_reader_lsn(r->reader), strerror(-n));
			return n;
		}
		if (b->full)
			return 0;
		if (b->entries && !first_ms)
			first_ms = mono_ms();
		if (n > 0) {
			if (mono_ms() - first_ms >= r->cfg.batch_ms)
				return 0;
			continue;
		}
		if (b->entries) {
			int64_t left = r->cfg.batch_ms - (mono_ms() - first_ms);
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
	int64_t until = mono_ms() + ms;

	while (!atomic_load(&r->stopping) && mono_ms() < until) {
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
			rc = session_open(r, err, sizeof(err));
			if (rc == REPL_TRANSIENT) {
				set_error(r, false, "%s (retry in %u ms)", err, backoff);
				session_close(r);
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
			r->st.error[0] = '\0'; /* up again: the last error is history */
			pthread_mutex_unlock(&r->lock);
		}
		rc = read_batch(r);
		if (rc == -ECANCELED)
			break;
		if (rc == -ENODATA) {
			wal_reader_close(r->reader);
			r->reader = NULL;
			rc = resync(r, err, sizeof(err));
			if (rc == REPL_TRANSIENT) {
				set_error(r, false, "%s", err);
				session_close(r);
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
		double t0 = mono_s();

		if (r->b.first_lsn != from + 1 || to < from + 1) {
			snprintf(r->b.err, sizeof(r->b.err),
				 "the log gave LSN %" PRIu64 "..%" PRIu64
				 " after %" PRIu64, r->b.first_lsn, to, from);
			rc = -EUCLEAN;
		} else {
			rc = apply_batch(r, &r->b, to, true);
			batch_done(r, &r->b, to, true, mono_s() - t0);
		}
		if (rc == 0) {
			backoff = r->cfg.backoff_min_ms;
			continue;
		}
		if (rc == REPL_TRANSIENT) {
			set_error(r, false, "batch LSN %" PRIu64 "..%" PRIu64
				  " not applied, will retry in %u ms: %s", from + 1,
				  to, backoff, r->b.err);
			session_close(r);
			sleep_backoff(r, backoff);
			backoff = backoff * 2 > r->cfg.backoff_max_ms
					  ? r->cfg.backoff_max_ms
					  : backoff * 2;
			continue;
		}
		snprintf(err, sizeof(err), "batch LSN %" PRIu64 "..%" PRIu64 ": %.400s",
			 from + 1, to, r->b.err);
		stop_loudly(r, err);
		break;
	}
	session_close(r);
	return NULL;
}

/* ---- the maintenance thread: metrics, health, views ------------------------- */

static bool op_name_ok(const char *s)
{
	size_t n = strnlen(s, sizeof(((struct repl_op_stat *)0)->operation));

	if (n == 0 || n >= sizeof(((struct repl_op_stat *)0)->operation))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

struct maint {
	PGconn *conn;
	struct repl_op_stat prev[REPL_OP_STAT_COUNT_MAX];
	unsigned prev_count;
	int64_t prev_ms;
};

static const struct repl_op_stat *op_find(const struct maint *m,
					  const char *name)
{
	for (unsigned i = 0; i < m->prev_count; i++)
		if (strcmp(m->prev[i].operation, name) == 0)
			return &m->prev[i];
	return NULL;
}

/* One aggregated row per operation and interval: value = mean ms, tags
 * carry the count, so the table stays small whatever the booking rate. */
static int maint_metrics(repl *r, struct maint *m, char *err, size_t es)
{
	struct repl_op_stat cur[REPL_OP_STAT_COUNT_MAX];
	unsigned n = r->cfg.metrics(r->cfg.metrics_ctx, cur, REPL_OP_STAT_COUNT_MAX);
	int64_t now = mono_ms(), interval = now - m->prev_ms;
	uint64_t rows = 0;
	int rc = 0;

	if (n > REPL_OP_STAT_COUNT_MAX)
		n = REPL_OP_STAT_COUNT_MAX;
	rc = pg_run(m->conn, "metrics", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL,
		    err, es);
	for (unsigned i = 0; !rc && i < n; i++) {
		const struct repl_op_stat *p;
		uint64_t count, errors, ns;
		char v[32], c_s[24], iv[24], e_s[24];
		const char *params[4] = { cur[i].operation, v, c_s, iv };

		cur[i].operation[sizeof(cur[i].operation) - 1] = '\0';
		if (!op_name_ok(cur[i].operation))
			continue;
		p = op_find(m, cur[i].operation);
		count = cur[i].count - (p ? p->count : 0);
		errors = cur[i].error_count - (p ? p->error_count : 0);
		ns = cur[i].ns_total - (p ? p->ns_total : 0);
		if (p && (cur[i].count < p->count || cur[i].ns_total < p->ns_total ||
			  cur[i].error_count < p->error_count))
			continue; /* counters went back (server restarted?) */
		snprintf(iv, sizeof(iv), "%" PRId64, interval);
		if (count > 0) {
			snprintf(v, sizeof(v), "%.6f", (double)ns / 1e6 / (double)count);
			snprintf(c_s, sizeof(c_s), "%" PRIu64, count);
			rc = pg_run(m->conn, "metrics",
				    "INSERT INTO performance_metrics (metric_name,"
				    " metric_value, tags) VALUES"
				    " ('booking_operation_duration', $2::float8,"
				    " jsonb_build_object('operation', $1::text, 'outcome', 'ok',"
				    " 'count', $3::bigint, 'interval_ms', $4::bigint))",
				    4, params, PGRES_COMMAND_OK, NULL, err, es);
			rows++;
		}
		if (!rc && errors > 0) {
			const char *ep[3] = { cur[i].operation, e_s, iv };

			snprintf(e_s, sizeof(e_s), "%" PRIu64, errors);
			rc = pg_run(m->conn, "metrics",
				    "INSERT INTO performance_metrics (metric_name,"
				    " metric_value, tags) VALUES"
				    " ('booking_operation_errors', $2::float8,"
				    " jsonb_build_object('operation', $1::text,"
				    " 'interval_ms', $3::bigint))",
				    3, ep, PGRES_COMMAND_OK, NULL, err, es);
			rows++;
		}
	}
	if (!rc)
		rc = pg_run(m->conn, "metrics", "COMMIT", 0, NULL, PGRES_COMMAND_OK,
			    NULL, err, es);
	if (rc) {
		if (PQstatus(m->conn) == CONNECTION_OK)
			PQclear(PQexec(m->conn, "ROLLBACK"));
		return rc; /* the deltas stay for the next interval */
	}
	memcpy(m->prev, cur, n * sizeof(cur[0]));
	m->prev_count = n;
	m->prev_ms = now;
	pthread_mutex_lock(&r->lock);
	r->st.metrics_rows += rows;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int maint_health(repl *r, struct maint *m, char *err, size_t es)
{
	struct repl_status st;
	const char *status;
	char applied[24], lag_r[24], lag_s[32];
	int rc;

	rc = pg_run(m->conn, "health_check_database",
		    "SELECT health_check_database()", 0, NULL, PGRES_TUPLES_OK,
		    NULL, err, es);
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
	const char *p[7] = { status, repl_state_name(st.state), applied, lag_r,
			     lag_s, r->log_id, st.error };
	return pg_run(m->conn, "health_checks",
		      "INSERT INTO health_checks (check_name, status, details)"
		      " VALUES ('replication', $1, jsonb_build_object('state', $2::text,"
		      " 'applied_lsn', $3::bigint, 'lag_records', $4::bigint,"
		      " 'lag_seconds', $5::float8, 'log_id', $6::text,"
		      " 'error', nullif($7::text, '')))",
		      7, p, PGRES_COMMAND_OK, NULL, err, es);
}

static void *maint_thread(void *arg)
{
	repl *r = arg;
	struct maint m = { 0 };
	char err[REPL_ERROR_SIZE];
	int64_t now = mono_ms();
	int64_t next_metrics = now + r->cfg.metrics_interval_ms;
	int64_t next_health = now + 1000; /* a first check soon after start */
	int64_t next_refresh = now + r->cfg.refresh_interval_ms;
	int64_t next_connect = 0;
	uint32_t backoff = r->cfg.backoff_min_ms;

	if (r->cfg.metrics) { /* the baseline: rows cover one interval each */
		m.prev_count = r->cfg.metrics(r->cfg.metrics_ctx, m.prev,
					      REPL_OP_STAT_COUNT_MAX);
		if (m.prev_count > REPL_OP_STAT_COUNT_MAX)
			m.prev_count = REPL_OP_STAT_COUNT_MAX;
	}
	m.prev_ms = now;
	pthread_mutex_lock(&r->lock);
	while (!atomic_load(&r->stopping)) {
		bool metrics, health, refresh;
		int64_t due = INT64_MAX;
		int rc = 0;

		now = mono_ms();
		if (r->cfg.metrics && r->cfg.metrics_interval_ms)
			due = next_metrics;
		if (r->cfg.health_interval_ms && next_health < due)
			due = next_health;
		if (r->cfg.refresh_interval_ms && next_refresh < due)
			due = next_refresh;
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
		now = mono_ms();
		metrics = r->cfg.metrics && r->cfg.metrics_interval_ms &&
			  now >= next_metrics;
		health = r->cfg.health_interval_ms && now >= next_health;
		refresh = r->refresh_asked ||
			  (r->cfg.refresh_interval_ms && now >= next_refresh);
		if (!metrics && !health && !refresh)
			continue;
		pthread_mutex_unlock(&r->lock);

		if (!m.conn && now >= next_connect) {
			const char *keys[] = { "connect_timeout", "application_name",
					       "dbname", NULL };
			const char *vals[] = { "5", "bookd-maintenance",
					       r->conninfo, NULL };

			m.conn = PQconnectdbParams(keys, vals, 1);
			if (!m.conn || PQstatus(m.conn) != CONNECTION_OK) {
				PQfinish(m.conn);
				m.conn = NULL;
				next_connect = now + backoff;
				backoff = backoff * 2 > r->cfg.backoff_max_ms
						  ? r->cfg.backoff_max_ms
						  : backoff * 2;
			} else {
				PQsetNoticeProcessor(m.conn, pg_notice_quiet, NULL);
				backoff = r->cfg.backoff_min_ms;
			}
		}
		if (m.conn && metrics) {
			rc = maint_metrics(r, &m, err, sizeof(err));
			if (!rc)
				next_metrics = now + r->cfg.metrics_interval_ms;
		}
		if (m.conn && !rc && health) {
			rc = maint_health(r, &m, err, sizeof(err));
			if (!rc)
				next_health = now + r->cfg.health_interval_ms;
		}
		if (m.conn && !rc && refresh) {
			double t0 = mono_s();

			rc = pg_run(m.conn, "refresh_all_materialized_views",
				    "SELECT refresh_all_materialized_views()", 0,
				    NULL, PGRES_TUPLES_OK, NULL, err, sizeof(err));
			if (!rc) {
				say(r, "materialized views refreshed in %.0f ms",
				    (mono_s() - t0) * 1000);
				next_refresh = mono_ms() + r->cfg.refresh_interval_ms;
				pthread_mutex_lock(&r->lock);
				r->refresh_asked = false;
				r->st.refresh_count++;
				pthread_cond_broadcast(&r->cond);
				pthread_mutex_unlock(&r->lock);
			}
		}
		if (rc) {
			fprintf(stderr, "bookd: replicator (maintenance): %s\n", err);
			if (rc == REPL_TRANSIENT) {
				PQfinish(m.conn);
				m.conn = NULL;
				next_connect = mono_ms() + backoff;
			} else {
				/* a permanent error here does not touch the
				 * data: try again next interval */
				int64_t t = mono_ms();
				if (metrics)
					next_metrics = t + r->cfg.metrics_interval_ms;
				if (health)
					next_health = t + r->cfg.health_interval_ms;
				if (refresh) {
					next_refresh = t + r->cfg.refresh_interval_ms;
					pthread_mutex_lock(&r->lock);
					r->refresh_asked = false;
					pthread_mutex_unlock(&r->lock);
				}
			}
		} else if (!m.conn) {
			usleep(20000); /* wait for next_connect, not spin */
		}
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	PQfinish(m.conn);
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
	cfg->metrics_interval_ms = 10000;
	cfg->health_interval_ms = 60000;
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
	if (cfg->batch_records == 0 || cfg->batch_records > REPL_BATCH_RECORDS_MAX ||
	    cfg->batch_ms == 0 || cfg->backoff_min_ms == 0 ||
	    cfg->backoff_max_ms < cfg->backoff_min_ms ||
	    cfg->partition_months_ahead > 120 || cfg->streams == 0 ||
	    cfg->streams > REPL_STREAM_MAX ||
	    !cfg->log_id || !cfg->log_id[0] || strlen(cfg->log_id) > 200) {
		snprintf(err, err_size, "replicator: configuration out of range");
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
	struct fold_env env = { .log_id = r->log_id, .starts = &r->starts,
				.customers = &r->customers,
				.months = r->months };
	if (batch_init(&r->b, cfg->batch_records, &env) != 0)
		goto out_free;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->starts.lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->caught_up_ms = mono_ms();
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
	rc = pthread_create(&r->maint_thread, NULL, maint_thread, r);
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
	batch_free(&r->b);
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
	int64_t now = mono_ms();

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
			(double)(now - r->samples[r->sample_head].t_ms) / 1000.0;
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
	batch_free(&r->b);
	free(r->customers.slots);
	free(r->starts.ms);
	free(r->conninfo);
	free(r->log_id);
	free(r->data_dir);
	free(r);
}
