/*
 * fold.c: log entries into a batch of row changes, in memory (fold.h). No
 * PostgreSQL here: sink.c applies what this stages.
 *
 * The records of a batch are folded per booking: its final status,
 * hold, when it joined or left the waitlist; per event whether it was
 * created, its final capacity / instructor / status, whether it was
 * cancelled; catalogue rows, payments and notifications as they come.
 * Each goes to the part of the stream its event hashes to (the catalogue:
 * stream 0), as COPY text for the staging tables of sink.c (each row the
 * list of its fields: ROW); a record its stream has already (lsn <= the
 * part's `from`) is skipped. A new event's counters are known here (all
 * its bookings are new); for the others the sink reads the previous
 * statuses from PostgreSQL and moves the counters by the difference.
 *
 * Invariants: a booking is created once per batch, an event once, and
 * never moves back to the waitlist; a record that does not fit what was
 * applied stops the batch (-EUCLEAN with b->err): it is never applied,
 * nothing skipped. The batch's memory and its bounds: batch.c.
 */
#include "fold.h"
#include "import.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- batch folding ------------------------------------------------------- */

static void customer_stage(struct batch *b, const char *id, int64_t at);

/* A booking status's name, NULL for none or one this build does not know. */
static const char *status_name(uint8_t s)
{
	const char *name = core_booking_status_name(s);

	return strcmp(name, "unknown") == 0 ? NULL : name;
}

/* One field of a COPY row (row_put): its kind and value. */
struct col {
	enum { CK_U64, CK_I64, CK_STR, CK_NULL, CK_DATE, CK_DATES } kind;
	union {
		uint64_t u;
		int64_t i;
		const char *s;
		struct core_date d;
		struct {
			const struct core_date *v;
			uint32_t n;
		} dates; /* a PostgreSQL array: {d1,d2} */
	};
};

#define COL_U64(x) ((struct col){ .kind = CK_U64, .u = (x) })
#define COL_I64(x) ((struct col){ .kind = CK_I64, .i = (x) })
#define COL_STR(x) ((struct col){ .kind = CK_STR, .s = (x) })
#define COL_BOOL(x) COL_STR((x) ? "t" : "f")
#define COL_DATE(x) ((struct col){ .kind = CK_DATE, .d = (x) })
#define COL_DATES(v, n)                                                        \
	((struct col){ .kind = CK_DATES, .dates = { (v), (n) } })
#define COL_NULL ((struct col){ .kind = CK_NULL })
/* The field c when cond holds, else \N. */
#define COL_IF(cond, c) ((cond) ? (c) : COL_NULL)

/* A new COPY row of the part's stage st, counted: its n fields, tab
 * separated. */
static void row_put(struct part *p, unsigned st, const struct col *c, size_t n)
{
	struct buf *o;

	ASSERT(st < ST_COUNT);
	ASSERT(n > 0);
	p->rows[st]++;
	o = &p->st[st];
	for (size_t i = 0; i < n; i++) {
		if (i)
			TAB(o);
		switch (c[i].kind) {
		case CK_U64: repl__buf_u64(o, c[i].u); break;
		case CK_I64: repl__buf_i64(o, c[i].i); break;
		case CK_STR: repl__buf_str(o, c[i].s); break;
		case CK_NULL: repl__buf_null(o); break;
		case CK_DATE: repl__buf_date(o, c[i].d); break;
		case CK_DATES:
			ASSERT(c[i].dates.n <= CORE_SKIP_DATE_COUNT_MAX);
			repl__buf_c(o, '{');
			for (uint32_t k = 0; k < c[i].dates.n; k++) {
				if (k)
					repl__buf_c(o, ',');
				repl__buf_date(o, c[i].dates.v[k]);
			}
			repl__buf_c(o, '}');
			break;
		}
	}
	EOL(o);
}

/* ROW(p, st, field, ...): row_put of the fields listed. */
#define ROW(p, st, ...)                                                        \
	row_put((p), (st), (const struct col[]){ __VA_ARGS__ },                \
		sizeof((const struct col[]){ __VA_ARGS__ }) /                  \
			sizeof(struct col))

/* The customer of a booking as a COPY field: known when the batch created
 * it, else \N (the sink looks it up in registrations). */
static struct col customer_of(struct batch *b, uint64_t booking_id)
{
	const struct bk *k = repl__bk_find(b, booking_id);

	return COL_IF(k && k->kind != BK_SET, COL_STR(k->customer));
}

/* ORG, LOCATION, INSTRUCTOR, CUSTOMER, SERIES, SERIES_GENERATED,
 * ORG_SETTINGS: a row of stream 0 each (the sink keeps the last per id:
 * seq). */
static int fold_catalogue(struct batch *b, const struct core_rec *c, int64_t at)
{
	struct part *p = &b->part[0];

	ASSERT((c->type >= CORE_REC_ORG &&
		c->type <= CORE_REC_SERIES_GENERATED) ||
	       c->type == CORE_REC_ORG_SETTINGS ||
	       c->type == CORE_REC_SERIES_EDIT);
	switch (c->type) {
	case CORE_REC_ORG_SETTINGS: {
		const struct core_org_settings *s = &c->u.org_settings.s;

		if (s->cancel_cutoff_hours > CORE_CUTOFF_HOURS_MAX ||
		    s->hold_minutes > CORE_HOLD_MINUTES_MAX)
			return -EUCLEAN;
		/* 0: the server's own (NULL) */
		ROW(p, ST_ORGSET, COL_U64(b->seq),
		    COL_U64(c->u.org_settings.org_id),
		    COL_U64(s->cancel_cutoff_hours),
		    COL_IF(s->hold_minutes != 0, COL_U64(s->hold_minutes)),
		    COL_IF(s->horizon_days != 0, COL_U64(s->horizon_days)),
		    COL_I64(at));
		return 0;
	}
	case CORE_REC_ORG:
	case CORE_REC_LOCATION:
	case CORE_REC_INSTRUCTOR:
		ROW(p, ST_CAT, COL_U64(b->seq), COL_U64(c->type),
		    COL_U64(c->u.cat.id), COL_U64(c->u.cat.org_id),
		    COL_STR(c->u.cat.name), COL_STR(c->u.cat.timezone),
		    COL_I64(at));
		return 0;
	case CORE_REC_CUSTOMER:
		ROW(p, ST_CUSTOMER, COL_U64(b->seq), COL_STR(c->u.customer.id),
		    COL_STR(c->u.customer.email), COL_STR(c->u.customer.name),
		    COL_I64(at));
		return 0;
	case CORE_REC_SERIES:
	case CORE_REC_SERIES_EDIT: { /* an edit: the row upserted as it is */
		const struct core_series_spec *s = &c->u.series.spec;
		char t[8];

		if (s->skip_count > CORE_SKIP_DATE_COUNT_MAX ||
		    s->start_minute >= 1440)
			return -EUCLEAN;
		snprintf(t, sizeof(t), "%02u:%02u", s->start_minute / 60u,
			 s->start_minute % 60u);
		ROW(p, ST_SERIES, COL_U64(b->seq), COL_U64(c->u.series.id),
		    COL_U64(s->org_id), COL_U64(s->location_id),
		    COL_U64(s->instructor_id), COL_STR(s->title),
		    COL_U64(s->capacity), COL_U64(s->waitlist_capacity),
		    COL_U64(s->price_cents), COL_STR(s->currency),
		    COL_STR(s->timezone), COL_U64(s->weekday_mask), COL_STR(t),
		    COL_U64(s->duration_min), COL_DATE(s->first_date),
		    COL_IF(s->last_date.year != 0, COL_DATE(s->last_date)),
		    COL_DATES(s->skip, s->skip_count), COL_I64(at));
		return 0;
	}
	case CORE_REC_SERIES_GENERATED:
		ROW(p, ST_GEN, COL_U64(b->seq),
		    COL_U64(c->u.generated.series_id),
		    COL_DATE(c->u.generated.through), COL_I64(at));
		return 0;
	}
	return -EUCLEAN;
}

/* LEGACY: an imported row's old id, a row of stream 0 (bookd.legacy_ids;
 * a customer keeps its id: the old id is the customer id). */
static int fold_legacy(struct batch *b, const struct core_rec *c, int64_t at)
{
	const char *kind = core_legacy_kind_name(c->u.legacy.kind);

	if (strcmp(kind, "unknown") == 0 || c->u.legacy.id[0] == '\0')
		return -EUCLEAN;
	ROW(&b->part[0], ST_LEGACY, COL_STR(kind), COL_STR(c->u.legacy.id),
	    COL_IF(c->u.legacy.kind != CORE_LEGACY_CUSTOMER,
		   COL_U64(c->u.legacy.bookd_id)),
	    COL_IF(c->u.legacy.detail[0], COL_STR(c->u.legacy.detail)),
	    COL_I64(at));
	return 0;
}

/* An event's row changed at `at`: its updated_at is the latest change. */
static void ev_touch(struct ev *e, int64_t at)
{
	if (at > e->updated_at)
		e->updated_at = at;
	ASSERT(e->updated_at >= at);
}

/* The batch's booking a BOOKING_* record is about, created if new; NULL
 * when the booking's event belongs to another part. */
static struct bk *bk_of(struct batch *b, const struct core_rec *c, uint64_t lsn,
			bool *existed)
{
	uint64_t id = c->u.booking.booking_id;

	if (!repl__part_for(b, core_booking_event(id), lsn))
		return NULL;
	return repl__bk_get(b, id, existed);
}

/* The month of a start that has no partition known asked for. */
static int month_want(struct batch *b, int64_t start_at)
{
	int64_t m = repl__month_of(start_at);

	if (m < 0 || m >= REPL_MONTH_COUNT)
		return -EUCLEAN; /* before 1970 or after 2169 */
	if (!repl__month_known(b->env.months, m)) {
		if (!b->months || (uint32_t)m < b->month_lo)
			b->month_lo = (uint32_t)m;
		if (!b->months || (uint32_t)m > b->month_hi)
			b->month_hi = (uint32_t)m;
		b->months = true;
	}
	ASSERT(!b->months || b->month_lo <= b->month_hi);
	ASSERT(!b->months || b->month_hi < REPL_MONTH_COUNT);
	return 0;
}

/* EVENT_CREATE: the event as the batch will leave it; its month asked for
 * when no partition is known. Its start is cached even when its stream
 * has it already (later batches update it by its partition key). */
static int fold_event_create(struct batch *b, const struct core_rec *c,
			     uint64_t lsn, int64_t at)
{
	struct ev *e;

	if (!repl__part_for(b, c->u.event.id, lsn)) {
		repl__starts_set(b->env.starts, c->u.event.id,
				 c->u.event.start_at);
		return 0;
	}
	e = repl__ev_get(b, c->u.event.id);
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
	ev_touch(e, at);
	if (e->start_at == 0 || e->duration_min == 0)
		return -EUCLEAN;
	repl__starts_set(b->env.starts, e->id, e->start_at);
	return month_want(b, e->start_at);
}

/* EVENT_PATCH: the final capacity, instructor and status; a cancel once. */
static int fold_event_patch(struct batch *b, const struct core_rec *c,
			    uint64_t lsn, int64_t at)
{
	struct ev *e;

	if (c->u.patch.status != CORE_EVENT_SCHEDULED &&
	    c->u.patch.status != CORE_EVENT_CANCELLED)
		return -EUCLEAN;
	if (!repl__part_for(b, c->u.patch.event_id, lsn))
		return 0;
	e = repl__ev_get(b, c->u.patch.event_id);
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
	ev_touch(e, at);
	ASSERT(e->set);
	ASSERT(e->status == CORE_EVENT_SCHEDULED || e->cancelled);
	return 0;
}

/* EVENT_EDIT: the event's new start, place, settings and title, and
 * scheduled (a restore); detached when the edit flags it so (a series
 * edit kept it, booked: class_events.detached, migration 0018). A new event takes them as it is inserted; an
 * existing one is moved from the start PostgreSQL has (read afresh:
 * start_at 0, a miss) by sql_event_edit. One per event and batch
 * (repl__batch_cut). */
static int fold_event_edit(struct batch *b, const struct core_rec *c,
			   uint64_t lsn, int64_t at)
{
	struct ev *e;

	if (c->u.edit.start_at <= 0 || c->u.edit.duration_min == 0 ||
	    month_want(b, c->u.edit.start_at) != 0)
		return -EUCLEAN;
	if (!repl__part_for(b, c->u.edit.event_id, lsn)) {
		repl__starts_set(b->env.starts, c->u.edit.event_id,
				 c->u.edit.start_at);
		return 0;
	}
	e = repl__ev_get(b, c->u.edit.event_id);
	if (e->cancelled || (e->edited && !b->snapshot))
		return -EUCLEAN; /* cut before (repl__batch_cut) */
	e->set = true;
	e->capacity = c->u.edit.capacity;
	e->set_instructor = c->u.edit.instructor_id;
	e->status = CORE_EVENT_SCHEDULED;
	e->location_id = c->u.edit.location_id;
	e->duration_min = c->u.edit.duration_min;
	e->waitlist_capacity = c->u.edit.waitlist_capacity;
	e->price_cents = c->u.edit.price_cents;
	memcpy(e->currency, c->u.edit.currency, sizeof(e->currency));
	memcpy(e->title, c->u.edit.title, sizeof(e->title));
	/* kept off its series' new pattern by a series edit (booked) */
	e->detached = (c->u.edit.changed & CORE_EDIT_DETACHED) != 0;
	e->edited = true;
	e->new_start = c->u.edit.start_at;
	if (e->created) { /* inserted as it ends */
		e->start_at = c->u.edit.start_at;
		repl__starts_set(b->env.starts, e->id, e->start_at);
	} /* else moved by the sink, which then caches the new start */
	ev_touch(e, at);
	return 0;
}

bool repl__batch_cut(struct batch *b, const void *payload, size_t size)
{
	struct core_rec c;
	size_t pos = 0;

	if (!b->entries || b->snapshot)
		return false;
	while (core_entry_next(payload, size, &pos, &c) > 0)
		if ((c.type == CORE_REC_EVENT_EDIT &&
		     repl__ev_has(b, c.u.edit.event_id)) ||
		    c.type == CORE_REC_SERIES_EDIT)
			return true;
	return false;
}

/* BOOKING_NEW, BOOKING_RESTORE (snapshots: the booking as it is),
 * BOOKING_IMPORT (imported history: a new row with its own times): created
 * once per batch; a waitlisted one gets its order of joining, an imported
 * one that left the waitlist its promotion or departure. */
static int fold_booking_new(struct batch *b, const struct core_rec *c,
			    uint64_t lsn, int64_t at)
{
	struct bk *k;
	bool existed;

	if (!status_name(c->u.booking.status) ||
	    c->u.booking.customer_id[0] == '\0')
		return -EUCLEAN;
	customer_stage(b, c->u.booking.customer_id, at);
	if (!(k = bk_of(b, c, lsn, &existed)))
		return 0;
	if (existed)
		return -EUCLEAN;
	k->kind = c->type == CORE_REC_BOOKING_RESTORE ? BK_RESTORE : BK_NEW;
	memcpy(k->customer, c->u.booking.customer_id, sizeof(k->customer));
	k->status = c->u.booking.status;
	k->hold = c->u.booking.hold_expires_at;
	k->late = c->u.booking.late; /* RESTORE: a late cancel */
	k->created_at = at;
	k->updated_at = c->type == CORE_REC_BOOKING_RESTORE ? b->now_ms : at;
	if (c->type == CORE_REC_BOOKING_IMPORT) {
		const int64_t promoted = c->u.booking.promoted_at;
		if (c->u.booking.updated_at > at)
			k->updated_at = c->u.booking.updated_at;
		if (k->status != CORE_BOOKING_WAITLISTED &&
		    c->u.booking.joined_at) { /* joined, then left */
			k->join_seq = ++b->join_seq;
			k->exit_status =
				promoted ? CORE_BOOKING_CONFIRMED : k->status;
			k->exit_at = promoted ? promoted : k->updated_at;
		}
	}
	if (k->status == CORE_BOOKING_WAITLISTED)
		k->join_seq = ++b->join_seq;
	else if (k->kind == BK_RESTORE) { /* left the waitlist, maybe */
		k->exit_status = k->status;
		k->exit_at = b->now_ms;
	}
	if (k->kind == BK_RESTORE)
		b->restore_count++;
	ASSERT(k->join_seq <= b->join_seq);
	ev_touch(repl__ev_get(b, core_booking_event(k->id)), k->updated_at);
	return 0;
}

/* BOOKING_SET: the booking's final status; its first move out of the
 * waitlist kept (promotion or exit). Never back to waitlisted. */
static int fold_booking_set(struct batch *b, const struct core_rec *c,
			    uint64_t lsn, int64_t at)
{
	struct bk *k;
	bool existed;
	uint8_t was;

	if (!status_name(c->u.booking.status) ||
	    c->u.booking.status == CORE_BOOKING_WAITLISTED)
		return -EUCLEAN;
	if (!(k = bk_of(b, c, lsn, &existed)))
		return 0;
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
	k->late = c->u.booking.late;
	k->updated_at = at;
	ASSERT(k->status != CORE_BOOKING_WAITLISTED); /* never back */
	ASSERT(k->exit_status != CORE_BOOKING_WAITLISTED);
	ev_touch(repl__ev_get(b, core_booking_event(k->id)), at);
	return 0;
}

/* PAYMENT: one row per recorded outcome; flagged when not applied. */
static int fold_payment(struct batch *b, const struct core_rec *c, uint64_t lsn,
			int64_t at)
{
	uint64_t amount = c->u.payment.amount_cents;
	const char *st;
	struct part *p;

	switch (c->u.payment.code) {
	case CORE_OK:
		st = c->u.payment.succeeded ? "succeeded" : "failed";
		break;
	case CORE_PAYMENT_MISMATCH: st = "mismatch"; break;
	case CORE_NOT_PENDING: st = "not_pending"; break;
	default: return -EUCLEAN;
	}
	if (amount > INT64_MAX) /* a bogus webhook: keep it visible */
		amount = INT64_MAX;
	if (!(p = repl__part_for(b, core_booking_event(c->u.payment.booking_id),
				 lsn)))
		return 0;
	/* Stripe's event id (evt_...); a version 1 record has its hash */
	ROW(p, ST_PAYMENT, COL_U64(c->u.payment.booking_id),
	    c->u.payment.ref[0] ? COL_STR(c->u.payment.ref)
				: COL_U64(c->u.payment.payment_ref),
	    COL_U64(amount), COL_STR(c->u.payment.currency), COL_STR(st),
	    COL_BOOL(c->u.payment.code != CORE_OK), COL_U64(c->u.payment.code),
	    COL_I64(at), customer_of(b, c->u.payment.booking_id));
	return 0;
}

/* REFUND: a row when it is done (payment_ref re_..., 'refunded') or failed
 * for good ('refund_failed', flagged, payment_ref Stripe's re_... when its
 * refund failed, else the intent's id); a refund due or pending (not final
 * at Stripe) has none yet. */
static int fold_refund(struct batch *b, const struct core_rec *c, uint64_t lsn,
		       int64_t at)
{
	uint64_t amount = c->u.refund.amount_cents;
	bool done = c->u.refund.state == CORE_REFUND_DONE;
	struct part *p;

	if (c->u.refund.state < CORE_REFUND_DUE ||
	    c->u.refund.state > CORE_REFUND_PENDING)
		return -EUCLEAN;
	if (c->u.refund.state == CORE_REFUND_DUE ||
	    c->u.refund.state == CORE_REFUND_PENDING)
		return 0;
	if (amount > INT64_MAX)
		amount = INT64_MAX;
	if (!(p = repl__part_for(b, core_booking_event(c->u.refund.booking_id),
				 lsn)))
		return 0;
	ROW(p, ST_PAYMENT, COL_U64(c->u.refund.booking_id),
	    COL_STR(done || c->u.refund.ref[0] ? c->u.refund.ref
					       : c->u.refund.intent_id),
	    COL_U64(amount), COL_STR(c->u.refund.currency),
	    COL_STR(done ? "refunded" : "refund_failed"), COL_BOOL(!done),
	    COL_U64(0), COL_I64(at), customer_of(b, c->u.refund.booking_id));
	return 0;
}

/* NOTIFY: one row, its id stable: the log, the LSN, the k-th NOTIFY of the
 * entry (notify_index). */
static int fold_notify(struct batch *b, const struct core_rec *c, uint64_t lsn,
		       int64_t at, uint32_t notify_index)
{
	const char *kind = core_notify_kind_name(c->u.notify.kind);
	struct part *p;
	char id[240];
	int n;

	if (strcmp(kind, "unknown") == 0)
		return -EUCLEAN;
	if (!(p = repl__part_for(b, core_booking_event(c->u.notify.booking_id),
				 lsn)))
		return 0;
	n = snprintf(id, sizeof(id), "%.200s/%" PRIu64 ".%" PRIu32,
		     b->env.log_id, lsn, notify_index);
	ASSERT(n > 0 && (size_t)n < sizeof(id)); /* never cut: ids are unique */
	ROW(p, ST_NOTIFY, COL_STR(id), COL_STR(kind),
	    COL_U64(c->u.notify.booking_id), COL_U64(lsn), COL_I64(at),
	    customer_of(b, c->u.notify.booking_id));
	return 0;
}

/* Folds one record into the batch; -EUCLEAN (with b->err) when it cannot
 * be right: the log and PostgreSQL would diverge. */
int repl__batch_add(struct batch *b, const struct core_rec *c, uint64_t lsn,
		    uint32_t notify_index)
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
	case CORE_REC_SERIES_EDIT:
	case CORE_REC_SERIES_GENERATED:
	case CORE_REC_ORG_SETTINGS:
		/* the catalogue: stream 0, unless it has it */
		rc = repl__part_for(b, 0, lsn) ? fold_catalogue(b, c, at) : 0;
		break;
	case CORE_REC_EVENT_CREATE:
		rc = fold_event_create(b, c, lsn, at);
		break;
	case CORE_REC_EVENT_PATCH: rc = fold_event_patch(b, c, lsn, at); break;
	case CORE_REC_EVENT_EDIT: rc = fold_event_edit(b, c, lsn, at); break;
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_RESTORE:
	case CORE_REC_BOOKING_IMPORT:
		rc = fold_booking_new(b, c, lsn, at);
		break;
	case CORE_REC_LEGACY:
		rc = repl__part_for(b, 0, lsn) ? fold_legacy(b, c, at) : 0;
		break;
	case CORE_REC_BOOKING_SET: rc = fold_booking_set(b, c, lsn, at); break;
	case CORE_REC_PAYMENT: rc = fold_payment(b, c, lsn, at); break;
	case CORE_REC_NOTIFY:
		rc = fold_notify(b, c, lsn, at, notify_index);
		break;
	case CORE_REC_IDEM:
		rc = 0; /* nothing for reporting */
		break;
	case CORE_REC_ARCHIVE:
		/* The core drops past events from memory; PostgreSQL keeps
		 * them (archive_class_events_month moves months there). */
		rc = 0;
		break;
	case CORE_REC_REMIND:
		/* the reminder's rows are its NOTIFY records */
		rc = 0;
		break;
	case CORE_REC_PAY_INTENT:
		/* the intent is no payment yet; a failed one's BOOKING_SET
		 * is the registration's row */
		rc = 0;
		break;
	case CORE_REC_REFUND: rc = fold_refund(b, c, lsn, at); break;
	}
	if (rc == 0) {
		ASSERT(b->bk_count <= b->cap && b->ev_count <= b->cap);
		return 0;
	}
	ASSERT(rc == -EUCLEAN);
	snprintf(b->err, sizeof(b->err),
		 "record %s at LSN %" PRIu64 " does not fit what was applied "
		 "(log and PostgreSQL diverged)",
		 core_rec_type_name(c->type), lsn);
	return -EUCLEAN;
}

/* Folds one entry (all its records) into the batch. */
int repl__batch_add_entry(struct batch *b, uint64_t lsn, const void *payload,
			  size_t size)
{
	struct core_rec c;
	size_t pos = 0;
	uint32_t notify_index = 0;
	int rc;

	ASSERT(lsn > b->last_lsn); /* the reader goes forward */
	while ((rc = core_entry_next(payload, size, &pos, &c)) > 0) {
		rc = repl__batch_add(b, &c, lsn,
				     c.type == CORE_REC_NOTIFY ? notify_index++
							       : 0);
		if (rc)
			return rc;
		b->records++;
	}
	if (rc < 0) {
		snprintf(b->err, sizeof(b->err),
			 "entry at LSN %" PRIu64 " does not decode (offset %zu "
			 "of %zu)",
			 lsn, pos, size);
		return -EUCLEAN;
	}
	ASSERT(pos == size);
	b->entries++;
	b->bytes += size;
	if (!b->first_lsn)
		b->first_lsn = lsn;
	b->last_lsn = lsn;
	ASSERT(b->first_lsn <= b->last_lsn);
	return 0;
}

/* A booking's customer, unless known to exist, staged in the part of the
 * stream the customer id hashes to: each customer is inserted by one stream
 * only (streams never wait for each other's rows), and from every booking
 * of the batch, even those a stream skips as already applied (their
 * customer's stream may not have them). */
static void customer_stage(struct batch *b, const char *id, int64_t at)
{
	uint32_t k;

	if (repl__custset_has(b->env.customers, id))
		return;
	k = b->parts == 1 || b->snapshot
		    ? 0
		    : (uint32_t)(repl__customer_hash(id) % b->parts);
	ASSERT(k < b->parts);
	ROW(&b->part[k], ST_NEWCUST, COL_STR(id), COL_I64(at));
}

/* A booking as its COPY row (s_booking), in its stream's part. */
static void stage_booking(struct batch *b, const struct bk *k)
{
	ROW(&b->part[k->stream], ST_BOOKING, COL_U64(k->id),
	    COL_U64(k->id >> 24), COL_U64(k->kind),
	    COL_IF(k->kind != BK_SET, COL_STR(k->customer)),
	    COL_STR(status_name(k->status)), COL_I64(k->hold),
	    COL_IF(k->kind != BK_SET, COL_I64(k->created_at)),
	    COL_I64(k->updated_at), COL_IF(k->join_seq, COL_U64(k->join_seq)),
	    COL_IF(k->exit_status, COL_I64(k->exit_at)),
	    COL_IF(k->exit_status, COL_STR(status_name(k->exit_status))),
	    COL_BOOL(k->late));
}

/* An event as its COPY row (s_event), in its stream's part. */
static void stage_event(struct batch *b, const struct ev *e)
{
	ROW(&b->part[e->stream], ST_EVENT, COL_U64(e->id), COL_I64(e->start_at),
	    COL_BOOL(e->created), COL_U64(e->series_id), COL_U64(e->org_id),
	    COL_U64(e->location_id), COL_U64(e->instructor_id),
	    COL_U64(e->duration_min), COL_U64(e->capacity0),
	    COL_U64(e->waitlist_capacity), COL_U64(e->price_cents),
	    COL_STR(e->currency), COL_IF(e->set, COL_U64(e->capacity)),
	    COL_IF(e->set, COL_U64(e->set_instructor)),
	    COL_IF(e->set,
		   COL_STR(e->status == CORE_EVENT_CANCELLED ? "cancelled"
							     : "scheduled")),
	    COL_BOOL(e->cancelled), COL_I64(e->cancel_at),
	    COL_I64(e->created_at), COL_I64(e->updated_at),
	    COL_BOOL(e->needs_update), COL_U64(e->n_conf), COL_U64(e->n_held),
	    COL_U64(e->n_wl), COL_BOOL(e->edited), COL_I64(e->new_start),
	    COL_STR(e->title), COL_BOOL(e->detached));
}

/* Staged bookings and events as COPY rows, each in its stream's part, once
 * the batch is complete. */
void repl__batch_finish(struct batch *b)
{
	/* A new event's bookings are all new in this batch: its counters
	 * are known here and it is inserted as it ends, with no update. A
	 * snapshot's events may exist already: they are updated. */
	uint32_t ev_count = b->ev_count, staged[2] = { 0, 0 };

	for (uint32_t i = 0; i < b->ev_count; i++) {
		struct ev *e = &b->ev[i];
		struct part *p = &b->part[e->stream];

		ASSERT(e->stream < b->parts);
		e->needs_update = !e->created || b->snapshot;
		/* An edited event is found by the start PostgreSQL has, read
		 * in the transaction (a retry after a failed commit must not
		 * take the new start the sink cached). */
		if (e->edited && !e->created)
			e->start_at = 0;
		else if (!e->start_at)
			e->start_at = repl__starts_get(b->env.starts, e->id);
		p->misses += !e->start_at;
		p->updates += e->needs_update;
		p->created |= e->created;
		p->cancels |= e->cancelled;
		p->edits |= e->edited && e->needs_update;
	}
	/* A booking new in this batch had no status before: its share of
	 * the counters' change is known here. Only the others' previous
	 * statuses are read from PostgreSQL (sink.c, sql_event_delta). */
	for (uint32_t i = 0; i < b->bk_count; i++) {
		const struct bk *k = &b->bk[i];
		struct ev *e = repl__ev_get(b, k->id >> 24);

		b->part[k->stream].kinds[k->kind] = true;
		if (k->kind != BK_NEW)
			continue;
		e->n_conf += k->status == CORE_BOOKING_CONFIRMED;
		e->n_held += k->status == CORE_BOOKING_PENDING_PAYMENT;
		e->n_wl += k->status == CORE_BOOKING_WAITLISTED;
	}
	ASSERT(b->ev_count == ev_count); /* every booking's event is there */
	for (uint32_t i = 0; i < b->ev_count; i++)
		if (b->ev[i].cancelled) /* the cancel emptied it */
			b->ev[i].n_conf = b->ev[i].n_held = b->ev[i].n_wl = 0;

	for (uint32_t i = 0; i < b->bk_count; i++)
		stage_booking(b, &b->bk[i]);
	for (uint32_t i = 0; i < b->ev_count; i++)
		stage_event(b, &b->ev[i]);
	/* staged once per batch: every booking and event, each in one part */
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++) {
		staged[0] += b->part[k].rows[ST_BOOKING];
		staged[1] += b->part[k].rows[ST_EVENT];
	}
	ASSERT(staged[0] == b->bk_count);
	ASSERT(staged[1] == b->ev_count);
}
