/*
 * fold.c: log entries into a batch of row changes, in memory (fold.h). No
 * PostgreSQL here: sink.c applies what this stages.
 *
 * The records of a batch are folded per booking: its final status,
 * hold, when it joined or left the waitlist; per event whether it was
 * created, its final capacity / instructor / status, whether it was
 * cancelled; catalogue rows, payments and notifications as they come.
 * Each goes to the part of the stream its event hashes to (the catalogue:
 * stream 0), as COPY text for the staging tables of sink.c; a record its
 * stream has already (lsn <= the part's `from`) is skipped. A new event's
 * counters are known here (all its bookings are new); for the others the
 * sink reads the previous statuses from PostgreSQL and moves the counters
 * by the difference.
 *
 * Invariants: a batch holds at most `cap` bookings and `cap` events (each
 * record makes at most one of each; cap = batch_records + one entry), the
 * index tables are twice that (a probe always ends); a booking is created
 * once per batch. A record that does not fit what was applied stops the
 * batch (-EUCLEAN with b->err): it is never applied, nothing skipped.
 */
#include "fold.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- growable byte buffers (COPY text) ---------------------------------- */

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

/* ---- batch folding ------------------------------------------------------- */

static void customer_stage(struct batch *b, const char *id, int64_t at);

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

int repl__batch_init(struct batch *b, uint32_t batch_records,
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

void repl__batch_free(struct batch *b)
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

void repl__batch_reset(struct batch *b, int64_t now_ms)
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
	b->now_ms = now_ms;
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

/* The customer of a booking as a COPY field: known when the batch created
 * it, else \N (the sink looks it up in registrations). */
static void buf_customer_of(struct batch *b, struct buf *o, uint64_t booking_id)
{
	const struct bk *k = bk_find(b, booking_id);

	if (k && k->kind != BK_SET)
		buf_str(o, k->customer);
	else
		buf_null(o);
}

/* ORG, LOCATION, INSTRUCTOR, CUSTOMER, SERIES, SERIES_GENERATED: a row of
 * stream 0 each (the sink keeps the last per id: seq). */
static int fold_catalogue(struct batch *b, const struct core_rec *c, int64_t at)
{
	struct part *p = &b->part[0];
	struct buf *o;

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
			return -EUCLEAN;
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
	}
	return -EUCLEAN;
}

/* EVENT_CREATE: the event as the batch will leave it; its month asked for
 * when no partition is known. Its start is cached even when its stream
 * has it already (later batches update it by its partition key). */
static int fold_event_create(struct batch *b, const struct core_rec *c,
			     uint64_t lsn, int64_t at)
{
	int64_t m = month_of(c->u.event.start_at);
	struct ev *e;

	if (!part_for(b, c->u.event.id, lsn)) {
		repl__starts_set(b->env.starts, c->u.event.id,
				 c->u.event.start_at);
		return 0;
	}
	e = ev_get(b, c->u.event.id);
	if (e->created)
		return -EUCLEAN;
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
		return -EUCLEAN;
	repl__starts_set(b->env.starts, e->id, e->start_at);
	if (m < 0 || m >= REPL_MONTH_COUNT)
		return -EUCLEAN; /* before 1970 or after 2169 */
	if (!month_known(b->env.months, m)) {
		if (!b->months || (uint32_t)m < b->month_lo)
			b->month_lo = (uint32_t)m;
		if (!b->months || (uint32_t)m > b->month_hi)
			b->month_hi = (uint32_t)m;
		b->months = true;
	}
	return 0;
}

/* EVENT_PATCH: the final capacity, instructor and status; a cancel once. */
static int fold_event_patch(struct batch *b, const struct core_rec *c,
			    uint64_t lsn, int64_t at)
{
	struct ev *e;

	if (c->u.patch.status != CORE_EVENT_SCHEDULED &&
	    c->u.patch.status != CORE_EVENT_CANCELLED)
		return -EUCLEAN;
	if (!part_for(b, c->u.patch.event_id, lsn))
		return 0;
	e = ev_get(b, c->u.patch.event_id);
	if (e->cancelled && c->u.patch.status == CORE_EVENT_SCHEDULED)
		return -EUCLEAN;
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
}

/* BOOKING_NEW, BOOKING_RESTORE (snapshots: the booking as it is): created
 * once per batch; a waitlisted one gets its order of joining. */
static int fold_booking_new(struct batch *b, const struct core_rec *c,
			    uint64_t lsn, int64_t at)
{
	struct bk *k;
	struct ev *e;
	bool existed;

	if (!status_name(c->u.booking.status) ||
	    c->u.booking.customer_id[0] == '\0')
		return -EUCLEAN;
	customer_stage(b, c->u.booking.customer_id, at);
	if (!part_for(b, core_booking_event(c->u.booking.booking_id), lsn))
		return 0;
	k = bk_get(b, c->u.booking.booking_id, &existed);
	if (existed)
		return -EUCLEAN;
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
}

/* BOOKING_SET: the booking's final status; its first move out of the
 * waitlist kept (promotion or exit). Never back to waitlisted. */
static int fold_booking_set(struct batch *b, const struct core_rec *c,
			    uint64_t lsn, int64_t at)
{
	struct bk *k;
	struct ev *e;
	bool existed;
	uint8_t was;

	if (!status_name(c->u.booking.status) ||
	    c->u.booking.status == CORE_BOOKING_WAITLISTED)
		return -EUCLEAN;
	if (!part_for(b, core_booking_event(c->u.booking.booking_id), lsn))
		return 0;
	k = bk_get(b, c->u.booking.booking_id, &existed);
	if (!existed)
		k->kind = BK_SET;
	was = existed ? k->status : 0;
	if (k->exit_status == 0 &&
	    (k->kind == BK_SET || was == CORE_BOOKING_WAITLISTED)) {
		/* For a booking this batch did not create, its first move is
		 * its exit from the waitlist if PostgreSQL has it waitlisted
		 * (checked there). */
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

/* PAYMENT: one row per recorded outcome; flagged when not applied. */
static int fold_payment(struct batch *b, const struct core_rec *c,
			uint64_t lsn, int64_t at)
{
	uint64_t amount = c->u.payment.amount_cents;
	const char *st;
	struct part *p;
	struct buf *o;

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
		return -EUCLEAN;
	}
	if (amount > INT64_MAX) /* a bogus webhook: keep it visible */
		amount = INT64_MAX;
	if (!(p = part_for(b, core_booking_event(c->u.payment.booking_id), lsn)))
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
	buf_customer_of(b, o, c->u.payment.booking_id);
	EOL(o);
	p->rows[ST_PAYMENT]++;
	return 0;
}

/* NOTIFY: one row, its id stable: the log, the LSN, the k-th NOTIFY of the
 * entry (notify_index). */
static int fold_notify(struct batch *b, const struct core_rec *c, uint64_t lsn,
		       int64_t at, uint32_t notify_index)
{
	const char *kind = core_notify_kind_name(c->u.notify.kind);
	struct part *p;
	struct buf *o;
	char id[240];

	if (strcmp(kind, "unknown") == 0)
		return -EUCLEAN;
	if (!(p = part_for(b, core_booking_event(c->u.notify.booking_id), lsn)))
		return 0;
	snprintf(id, sizeof(id), "%.200s/%" PRIu64 ".%" PRIu32, b->env.log_id,
		 lsn, notify_index);
	o = &p->st[ST_NOTIFY];
	buf_str(o, id); TAB(o);
	buf_str(o, kind); TAB(o);
	buf_u64(o, c->u.notify.booking_id); TAB(o);
	buf_u64(o, lsn); TAB(o);
	buf_i64(o, at); TAB(o);
	buf_customer_of(b, o, c->u.notify.booking_id);
	EOL(o);
	p->rows[ST_NOTIFY]++;
	return 0;
}

/* Folds one record into the batch; -EUCLEAN (with b->err) when it cannot
 * be right: the log and PostgreSQL would diverge. */
int repl__batch_add(struct batch *b, const struct core_rec *c,
		    uint64_t lsn, uint32_t notify_index)
{
	/* Snapshot records of events and the catalogue carry no time. */
	const int64_t at = c->at ? c->at : b->now_ms;
	int rc = -EUCLEAN;

	b->seq++;
	switch (c->type) {
	case CORE_REC_ORG:
	case CORE_REC_LOCATION:
	case CORE_REC_INSTRUCTOR:
	case CORE_REC_CUSTOMER:
	case CORE_REC_SERIES:
	case CORE_REC_SERIES_GENERATED:
		/* the catalogue: stream 0, unless it has it */
		rc = part_for(b, 0, lsn) ? fold_catalogue(b, c, at) : 0;
		break;
	case CORE_REC_EVENT_CREATE:
		rc = fold_event_create(b, c, lsn, at);
		break;
	case CORE_REC_EVENT_PATCH:
		rc = fold_event_patch(b, c, lsn, at);
		break;
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_RESTORE:
		rc = fold_booking_new(b, c, lsn, at);
		break;
	case CORE_REC_BOOKING_SET:
		rc = fold_booking_set(b, c, lsn, at);
		break;
	case CORE_REC_PAYMENT:
		rc = fold_payment(b, c, lsn, at);
		break;
	case CORE_REC_NOTIFY:
		rc = fold_notify(b, c, lsn, at, notify_index);
		break;
	case CORE_REC_IDEM:
		rc = 0; /* nothing for reporting */
		break;
	}
	if (rc == 0)
		return 0;
	snprintf(b->err, sizeof(b->err),
		 "record %s at LSN %" PRIu64 " does not fit what was applied "
		 "(log and PostgreSQL diverged)",
		 core_rec_type_name(c->type), lsn);
	return -EUCLEAN;
}

/* Folds one entry (all its records) into the batch. */
int repl__batch_add_entry(struct batch *b, uint64_t lsn,
			   const void *payload, size_t size)
{
	struct core_rec c;
	size_t pos = 0;
	uint32_t notify_index = 0;
	int rc;

	while ((rc = core_entry_next(payload, size, &pos, &c)) > 0) {
		rc = repl__batch_add(b, &c, lsn,
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
void repl__custset_add(struct custset *cs, const char *id)
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
void repl__batch_finish(struct batch *b)
{
	/* A new event's bookings are all new in this batch: its counters
	 * are known here and it is inserted as it ends, with no update. A
	 * snapshot's events may exist already: they are updated. */
	for (uint32_t i = 0; i < b->ev_count; i++) {
		struct ev *e = &b->ev[i];
		struct part *p = &b->part[e->stream];

		e->needs_update = !e->created || b->snapshot;
		if (!e->start_at)
			e->start_at = repl__starts_get(b->env.starts, e->id);
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
uint64_t repl__part_rows(const struct part *p)
{
	uint64_t n = p->customers;
	for (int s = 0; s < ST_COUNT; s++)
		if (s != ST_GEN && s != ST_NEWCUST)
			n += p->rows[s];
	return n;
}

/* ---- the event start cache (partition key of updates) ------------------ */

void repl__starts_set(struct starts *s, uint64_t id, int64_t ms)
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
int64_t repl__starts_get(struct starts *s, uint64_t id)
{
	int64_t ms = 0;

	pthread_mutex_lock(&s->lock);
	if (id < s->cap)
		ms = s->ms[id];
	pthread_mutex_unlock(&s->lock);
	return ms;
}
