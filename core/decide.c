/*
 * decide.c: a shard's decisions (state.c has the design). Deciding reads
 * the state and writes the outcome as an entry of records into the state's
 * buffer; it changes nothing that matters (the entry is applied by
 * apply.c, from the records as built here when it is this decision's:
 * rec_new, emit). Also here: the decision to expire a due hold, and the
 * reminder runs. A keyed decision's first answer is kept by idem.c.
 */
#include "state.h"
#include "state_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PROMOTION_COUNT_MAX 512 /* promotions one entry may carry */
/* NOTIFY records in one entry (21 bytes each, CORE_ENTRY_SIZE_MAX), beside
 * the one record they follow (a REMIND, an EVENT_PATCH) */
#define NOTIFY_PER_ENTRY_MAX 3000

/* A new entry in the state's buffer, with no records yet. */
static void entry_begin(core_state *st)
{
	st->w.size = 0;
	st->w.overflow = false;
	st->decided_count = 0;
	st->decided_size = 0;
	st->decided_bookings = 0;
	st->decided_holds = 0;
	st->decided_pays = 0;
	st->book.valid = false;
}

/* The next record of the entry, to fill and then emit: built in place in
 * st->decided (state_int.h) while there is room. Its fields start as
 * decoding would leave them: zero. */
static struct core_rec *rec_new(core_state *st, uint8_t type, core_time at)
{
	struct core_rec *r = st->decided_count < STATE_DECIDED_MAX
				     ? &st->decided[st->decided_count]
				     : &st->decided_spare;

	memset(r, 0, offsetof(struct core_rec, u));
	r->type = type;
	r->at = at;
	return r;
}

/* Encodes r (from rec_new) at the end of the entry; it stays in
 * st->decided when every record before it did. */
static void emit(core_state *st, struct core_rec *r)
{
	size_t start = st->w.size;

	rec_encode(&st->w, r);
	if (r == &st->decided_spare || st->w.overflow ||
	    start != st->decided_size) {
		st->decided_count = 0; /* apply decodes this entry */
		st->decided_size = SIZE_MAX;
		return;
	}
	st->decided_count++;
	st->decided_size = st->w.size;
	ASSERT(r->type != CORE_REC_EVENT_CREATE &&
	       r->type != CORE_REC_BOOKING_RESTORE);
	if (r->type == CORE_REC_BOOKING_NEW)
		st->decided_bookings++;
	if (rec_pays(r))
		st->decided_pays++;
	if ((r->type == CORE_REC_BOOKING_NEW ||
	     r->type == CORE_REC_BOOKING_SET) &&
	    r->u.booking.status == CORE_BOOKING_PENDING_PAYMENT)
		st->decided_holds++;
}

static void emit_set_late(core_state *st, core_time at, uint64_t booking_id,
			  uint8_t status, core_time hold_expires_at, bool late)
{
	struct core_rec *r = rec_new(st, CORE_REC_BOOKING_SET, at);

	memset(&r->u.booking, 0, sizeof(r->u.booking));
	r->u.booking.booking_id = booking_id;
	r->u.booking.status = status;
	r->u.booking.hold_expires_at = hold_expires_at;
	r->u.booking.late = late;
	emit(st, r);
}

static void emit_set(core_state *st, core_time at, uint64_t booking_id,
		     uint8_t status, core_time hold_expires_at)
{
	emit_set_late(st, at, booking_id, status, hold_expires_at, false);
}

static void emit_notify(core_state *st, core_time at, uint64_t booking_id,
			uint8_t kind)
{
	struct core_rec *r = rec_new(st, CORE_REC_NOTIFY, at);

	memset(&r->u.notify, 0, sizeof(r->u.notify));
	r->u.notify.booking_id = booking_id;
	r->u.notify.kind = kind;
	emit(st, r);
}

/* Promote up to `seats` from the head of e's waitlist (a hold on a priced
 * event, a confirmed seat on a free one). The first promoted goes to *first.
 * A class that started (start_at <= now) promotes nobody: its waitlist is
 * closed (docs/core.md "Start of class"). */
static uint32_t promote(core_state *st, const struct event *e, uint32_t seats,
			core_time now, struct core_booking_view *first)
{
	uint32_t n = 0;

	if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= now)
		return 0;
	for (uint32_t s = e->wl_head; s && n < seats;
	     s = st->bookings[s].wl_next) {
		const struct booking *b = &st->bookings[s];
		bool hold = e->price_cents > 0;
		uint8_t status = hold ? CORE_BOOKING_PENDING_PAYMENT
				      : CORE_BOOKING_CONFIRMED;
		core_time expires =
			hold ? now + catalog_hold_ms(st->cat, e->org_id,
						     st->cfg.hold_ms)
			     : 0;

		emit_set(st, now, b->id, status, expires);
		emit_notify(st, now, b->id, CORE_NOTIFY_PROMOTED);
		if (n == 0 && first) {
			state__booking_view_leaving(st, b, first);
			first->status = status;
			first->hold_expires_at = expires;
		}
		n++;
	}
	return n;
}

/* A refusal at a configured ceiling: which one (resp.id) and its value
 * (resp.count), for the answer's message (core_limit_message). */
static enum core_code limit(struct core_resp *resp, enum core_limit kind,
			    uint64_t value)
{
	resp->id = kind;
	resp->count = (uint32_t)value;
	return CORE_LIMIT;
}

static enum core_code decide_book(core_state *st, const struct core_req *req,
				  struct core_resp *resp)
{
	const struct event *e = event_get(st, req->event_id);
	uint32_t cust;
	uint64_t hash;
	struct core_rec *r;
	uint8_t status;
	core_time expires = 0;
	bool hold;

	if (!e)
		return CORE_NO_EVENT;
	if (!core__customer_id_ok(req->customer_id))
		return CORE_INVALID;
	if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= req->now)
		return CORE_NOT_BOOKABLE;
	hash = hash_bytes(req->customer_id, strlen(req->customer_id));
	cust = customer_find_hashed(st, req->customer_id, hash);
	if (cust == UINT32_MAX)
		return CORE_FULL;
	if (cust &&
	    set_has(&st->active, active_key((uint32_t)(e - st->events), cust)))
		return CORE_ALREADY_BOOKED;
	if (e->booking_seq == CORE_BOOKING_SEQ_MAX)
		return limit(resp, CORE_LIMIT_EVENT_BOOKINGS,
			     CORE_BOOKING_SEQ_MAX);
	if (st->booking_count >= st->cfg.booking_count_max)
		return limit(resp, CORE_LIMIT_BOOKINGS,
			     st->cfg.booking_count_max);
	if (!cust && st->customer_count >= st->cfg.customer_count_max)
		return limit(resp, CORE_LIMIT_CUSTOMERS,
			     st->cfg.customer_count_max);

	hold = e->price_cents > 0 && req->u.book.payment != CORE_PAY_NONE;
	if (seats_free(e) > 0) {
		status = hold ? CORE_BOOKING_PENDING_PAYMENT
			      : CORE_BOOKING_CONFIRMED;
		expires = hold ? req->now + catalog_hold_ms(st->cat, e->org_id,
							    st->cfg.hold_ms)
			       : 0;
	} else if (e->waitlist_len < e->waitlist_capacity) {
		status = CORE_BOOKING_WAITLISTED;
	} else {
		return CORE_EVENT_FULL;
	}
	r = rec_new(st, CORE_REC_BOOKING_NEW, req->now);
	r->u.booking.booking_id =
		e->id << CORE_BOOKING_SEQ_BITS | (e->booking_seq + 1);
	r->u.booking.status = status;
	r->u.booking.hold_expires_at = expires;
	/* NUL-padded, as decoding the record would leave it */
	strncpy(r->u.booking.customer_id, req->customer_id,
		sizeof(r->u.booking.customer_id));

	struct core_booking_view *v = &resp->booking;
	v->id = r->u.booking.booking_id;
	v->event_id = e->id;
	memcpy(v->customer_id, r->u.booking.customer_id,
	       sizeof(v->customer_id));
	v->status = status;
	v->position =
		status == CORE_BOOKING_WAITLISTED ? e->waitlist_len + 1 : 0;
	v->hold_expires_at = expires;
	v->created_at = req->now;
	st->book.applied_count = st->applied_count;
	st->book.customer_hash = hash;
	st->book.event_slot = (uint32_t)(e - st->events);
	st->book.customer_slot = cust;
	st->book.valid = true;
	emit(st, r);
	if (status == CORE_BOOKING_CONFIRMED)
		emit_notify(st, req->now, v->id, CORE_NOTIFY_BOOKING_CONFIRMED);
	else if (status == CORE_BOOKING_PENDING_PAYMENT)
		emit_notify(st, req->now, v->id, CORE_NOTIFY_PENDING_PAYMENT);
	return CORE_OK;
}

/* A booking leaves: cancelled, hold expired, payment failed. Its seat (if it
 * held one) goes to the head of the waitlist in the same entry. */
static void decide_release(core_state *st, const struct booking *b,
			   uint8_t status, uint8_t notify, bool late,
			   core_time now, struct core_resp *resp)
{
	const struct event *e = &st->events[b->event_slot];
	bool seat = b->status != CORE_BOOKING_WAITLISTED;

	emit_set_late(st, now, b->id, status, 0, late);
	emit_notify(st, now, b->id, notify);
	state__booking_view_leaving(st, b, &resp->booking);
	resp->booking.status = status;
	resp->booking.hold_expires_at = 0;
	resp->booking.late = late;
	if (seat) {
		uint32_t n =
			promote(st, e, seats_free(e) + 1, now, &resp->promoted);
		resp->has_promoted = n > 0;
		resp->count = n;
	}
}

/* ---- payments: refunds, intents (docs/core.md "Payments") ---- */

#define HOUR_MS INT64_C(3600000)

/* The org's cancellation cut-off (catalog.c: its settings, else 12 h): a
 * paid booking cancelled earlier than this before its start is refunded. */
static core_time cancel_cutoff_ms(const core_state *st, const struct event *e)
{
	return catalog_cutoff_ms(st->cat, e->org_id);
}

/* Was b paid through an intent (confirmed with one, on a paid event) and
 * not refunded yet? A cancel gives it back in full: the customer's (or the
 * service key's) before the org's cut-off, the studio's event cancel at
 * any time (core__refund_paid). */
bool core__refundable(const core_state *st, const struct booking *b)
{
	const struct event *e = &st->events[b->event_slot];
	const struct pay *p = pay_get(st, b->id);

	return b->status == CORE_BOOKING_CONFIRMED && p &&
	       p->intent_id[0] != '\0' && p->refund == 0 && e->price_cents > 0;
}

/* Does cancelling b at now refund it? Paid, not refunded, and the class
 * is more than the org's cut-off away. */
static bool refund_on_cancel(const core_state *st, const struct booking *b,
			     core_time now)
{
	const struct event *e = &st->events[b->event_slot];

	return core__refundable(st, b) &&
	       now < e->start_at - cancel_cutoff_ms(st, e);
}

void core__refund_due(struct core_rec *r, const core_state *st,
		      const struct booking *b, uint8_t reason, core_time at)
{
	const struct event *e = &st->events[b->event_slot];
	const struct pay *p = pay_get(st, b->id);

	ASSERT(p); /* refundable: paid */
	memset(r, 0, sizeof(*r));
	r->type = CORE_REC_REFUND;
	r->at = at;
	r->u.refund.booking_id = b->id;
	r->u.refund.amount_cents = e->price_cents;
	memcpy(r->u.refund.currency, e->currency, strnlen(e->currency, 3));
	memcpy(r->u.refund.intent_id, p->intent_id,
	       strnlen(p->intent_id, CORE_PAY_REF_SIZE_MAX - 1));
	r->u.refund.reason = reason;
	r->u.refund.state = CORE_REFUND_DUE;
}

/* Copies a provider id into a zeroed record field (pay_ref_ok checked its
 * length: at most CORE_PAY_REF_SIZE_MAX - 1 bytes). */
static void ref_copy(char *dst, const char *src)
{
	memcpy(dst, src, strnlen(src, CORE_PAY_REF_SIZE_MAX - 1));
}

static void emit_refund(core_state *st, core_time at, uint64_t booking_id,
			uint64_t amount_cents, const char *currency,
			const char *intent_id, const char *ref, uint8_t reason,
			uint8_t state)
{
	struct core_rec *r = rec_new(st, CORE_REC_REFUND, at);

	memset(&r->u.refund, 0, sizeof(r->u.refund));
	r->u.refund.booking_id = booking_id;
	r->u.refund.amount_cents = amount_cents;
	/* NUL-padded, as decoding the record would leave them */
	memcpy(r->u.refund.currency, currency, strnlen(currency, 3));
	ref_copy(r->u.refund.intent_id, intent_id);
	ref_copy(r->u.refund.ref, ref);
	r->u.refund.reason = reason;
	r->u.refund.state = state;
	emit(st, r);
}

/* A provider id as a record keeps it: at most CORE_PAY_REF_SIZE_MAX - 1
 * printable ASCII bytes, no space ("" is valid: none). */
static bool pay_ref_ok(const char *ref)
{
	size_t n = strnlen(ref, CORE_PAY_REF_SIZE_MAX);

	if (n == CORE_PAY_REF_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ref[i] <= ' ' || ref[i] > '~')
			return false;
	return true;
}

/* The sender's outcome for a hold's intent (CORE_PAY_KIND_INTENT): the
 * intent's id, recorded once; or "" (could not be created): the hold, if
 * still held, is released as payment_failed. */
static enum core_code decide_intent(core_state *st, const struct core_req *req,
				    const struct booking *b,
				    struct core_resp *resp)
{
	const struct pay *p = pay_get(st, b->id);
	const char *id = req->u.pay.ref;
	struct core_rec *r;

	state__booking_view(st, b, &resp->booking);
	if (id[0] == '\0' ? b->status != CORE_BOOKING_PENDING_PAYMENT
			  : p && strcmp(p->intent_id, id) == 0)
		return CORE_NOT_ACTIVE; /* nothing to record */
	r = rec_new(st, CORE_REC_PAY_INTENT, req->now);
	memset(&r->u.intent, 0, sizeof(r->u.intent));
	r->u.intent.booking_id = b->id;
	ref_copy(r->u.intent.intent_id, id);
	emit(st, r);
	if (id[0] == '\0')
		decide_release(st, b, CORE_BOOKING_PAYMENT_FAILED,
			       CORE_NOTIFY_CANCELLED, false, req->now, resp);
	return CORE_OK;
}

/* The sender's outcome for a refund due or pending (CORE_PAY_KIND_REFUND,
 * the state in refund_state): done with the provider's refund id, failed
 * (with it, or "" when refused for good), or pending with it (once: not
 * final, looked at again). */
static enum core_code decide_refund(core_state *st, const struct core_req *req,
				    const struct booking *b,
				    struct core_resp *resp)
{
	const struct pay *p = pay_get(st, b->id);
	const struct event *e = &st->events[b->event_slot];
	uint8_t state = req->u.pay.refund_state;

	if (!state)
		state = req->u.pay.ref[0] ? CORE_REFUND_DONE
					  : CORE_REFUND_FAILED;
	if ((state != CORE_REFUND_DONE && state != CORE_REFUND_FAILED &&
	     state != CORE_REFUND_PENDING) ||
	    (state != CORE_REFUND_FAILED && !req->u.pay.ref[0]))
		return CORE_INVALID;
	state__booking_view(st, b, &resp->booking);
	if (!p ||
	    (p->refund != CORE_REFUND_DUE &&
	     p->refund != CORE_REFUND_PENDING) ||
	    (state == CORE_REFUND_PENDING && p->refund == CORE_REFUND_PENDING))
		return CORE_NOT_ACTIVE; /* no refund due, or pending already */
	emit_refund(st, req->now, b->id, req->u.pay.amount_cents,
		    req->u.pay.currency[0] ? req->u.pay.currency : e->currency,
		    p->intent_id, req->u.pay.ref, p->refund_reason, state);
	return CORE_OK;
}

/* An active booking's cancel, by its customer (req.customer_id set) or by
 * the service key, against the class's start (docs/core.md "Start of
 * class"): a customer's at or after start_at is refused (the service key
 * may still record it); one at or after start_at - the org's cut-off that
 * gives up a seat (confirmed or held) is late. */
static enum core_code decide_cancel_at(core_state *st, const struct booking *b,
				       const struct core_req *req,
				       struct core_resp *resp)
{
	const struct event *e = &st->events[b->event_slot];
	bool late;

	if (req->customer_id[0] != '\0' && e->start_at <= req->now)
		return CORE_EVENT_STARTED;
	late = b->status != CORE_BOOKING_WAITLISTED &&
	       req->now >= e->start_at - catalog_cutoff_ms(st->cat, e->org_id);
	decide_release(st, b, CORE_BOOKING_CANCELLED, CORE_NOTIFY_CANCELLED,
		       late, req->now, resp);
	return CORE_OK;
}

static enum core_code decide_cancel(core_state *st, const struct core_req *req,
				    struct core_resp *resp)
{
	const struct booking *b = booking_get(st, req->booking_id);
	enum core_code code;
	bool refund;

	if (!b)
		return CORE_NO_BOOKING;
	/* A customer cancelling for itself (req.customer_id set, e.g. from a
	 * JWT): another customer's booking is as good as unknown. */
	if (req->customer_id[0] != '\0' &&
	    strncmp(st->customers[b->customer_slot].id, req->customer_id,
		    sizeof(req->customer_id)) != 0)
		return CORE_NO_BOOKING;
	if (!status_active(b->status))
		return CORE_NOT_ACTIVE;
	refund = refund_on_cancel(st, b, req->now);
	code = decide_cancel_at(st, b, req, resp);
	if (code == CORE_OK && refund) {
		const struct event *e = &st->events[b->event_slot];
		const struct pay *p = pay_get(st, b->id);

		emit_refund(st, req->now, b->id, e->price_cents, e->currency,
			    p->intent_id, "", CORE_REFUND_CANCEL,
			    CORE_REFUND_DUE);
	}
	return code;
}

/* Was this intent's late payment already refunded (or due)? */
static bool late_refunded(const core_state *st, const struct booking *b,
			  const char *intent_id)
{
	const struct pay *p = pay_get(st, b->id);

	return p && p->refund && strcmp(p->intent_id, intent_id) == 0;
}

static enum core_code decide_pay(core_state *st, const struct core_req *req,
				 struct core_resp *resp)
{
	const struct booking *b = booking_get(st, req->booking_id);
	const struct event *e;
	struct core_rec *r;
	enum core_code code = CORE_OK;

	if (!b)
		return CORE_NO_BOOKING;
	if (!pay_ref_ok(req->u.pay.ref) || !pay_ref_ok(req->u.pay.intent_id))
		return CORE_INVALID;
	if (req->u.pay.kind == CORE_PAY_KIND_INTENT)
		return decide_intent(st, req, b, resp);
	if (req->u.pay.kind == CORE_PAY_KIND_REFUND)
		return decide_refund(st, req, b, resp);
	if (req->u.pay.kind != CORE_PAY_KIND_WEBHOOK)
		return CORE_INVALID;
	e = &st->events[b->event_slot];
	if (b->status != CORE_BOOKING_PENDING_PAYMENT)
		code = CORE_NOT_PENDING;
	else if (req->u.pay.succeeded &&
		 (req->u.pay.amount_cents != e->price_cents ||
		  strncmp(req->u.pay.currency, e->currency, 4) != 0))
		code = CORE_PAYMENT_MISMATCH;
	r = rec_new(st, CORE_REC_PAYMENT, req->now);
	memset(&r->u.payment, 0, sizeof(r->u.payment));
	r->u.payment.booking_id = b->id;
	r->u.payment.amount_cents = req->u.pay.amount_cents;
	r->u.payment.payment_ref = req->u.pay.payment_ref;
	/* NUL-padded, as decoding the record would leave it */
	memcpy(r->u.payment.currency, req->u.pay.currency,
	       strnlen(req->u.pay.currency, 3));
	r->u.payment.succeeded = req->u.pay.succeeded;
	r->u.payment.code = (uint8_t)code;
	ref_copy(r->u.payment.ref, req->u.pay.ref);
	ref_copy(r->u.payment.intent_id, req->u.pay.intent_id);
	emit(st, r); /* recorded whatever the outcome, flagged by its code */
	/* Paid after the hold ended, the seat gone: the money goes back. */
	if (code == CORE_NOT_PENDING && req->u.pay.succeeded &&
	    !status_active(b->status) && req->u.pay.intent_id[0] != '\0' &&
	    !late_refunded(st, b, req->u.pay.intent_id))
		emit_refund(st, req->now, b->id, req->u.pay.amount_cents,
			    req->u.pay.currency, req->u.pay.intent_id, "",
			    CORE_REFUND_LATE_PAYMENT, CORE_REFUND_DUE);
	if (code != CORE_OK) {
		state__booking_view(st, b, &resp->booking);
		return code;
	}
	if (req->u.pay.succeeded) {
		emit_set(st, req->now, b->id, CORE_BOOKING_CONFIRMED, 0);
		emit_notify(st, req->now, b->id, CORE_NOTIFY_BOOKING_CONFIRMED);
		state__booking_view(st, b, &resp->booking);
		resp->booking.status = CORE_BOOKING_CONFIRMED;
		resp->booking.hold_expires_at = 0;
	} else {
		decide_release(st, b, CORE_BOOKING_PAYMENT_FAILED,
			       CORE_NOTIFY_CANCELLED, false, req->now, resp);
	}
	return CORE_OK;
}

/* ---- event edits (docs/core.md "Event edits") ---- */

/* The notifications an edit that changed `changed` sends: to each active
 * booking, EVENT_CHANGED for a new start, duration, location or title,
 * INSTRUCTOR_SUBSTITUTED for a new instructor; 0, 1 or 2 each. */
static uint32_t edit_kinds(uint8_t changed)
{
	return ((changed & (CORE_EDIT_START | CORE_EDIT_DURATION |
			    CORE_EDIT_LOCATION | CORE_EDIT_TITLE)) != 0) +
	       ((changed & CORE_EDIT_INSTRUCTOR) != 0);
}

static void edit_notify(core_state *st, const struct event *e, uint8_t changed,
			core_time now)
{
	bool moved = changed & (CORE_EDIT_START | CORE_EDIT_DURATION |
				CORE_EDIT_LOCATION | CORE_EDIT_TITLE);
	bool subst = changed & CORE_EDIT_INSTRUCTOR;

	for (uint32_t seq = 1; (moved || subst) && seq <= e->booking_seq;
	     seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (!status_active(b->status))
			continue;
		if (moved)
			emit_notify(st, now, b->id, CORE_NOTIFY_EVENT_CHANGED);
		if (subst)
			emit_notify(st, now, b->id,
				    CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED);
	}
}

/* Does the patch change what only an EVENT_EDIT says? */
static bool patch_is_edit(const struct core_req *req)
{
	return req->u.patch.restore || req->u.patch.location_id ||
	       req->u.patch.start_at || req->u.patch.duration_min ||
	       req->u.patch.title[0] != '\0';
}

/* An edit: checked whole, then one EVENT_EDIT, the notifications of the
 * bookings active before it, the promotions a larger capacity makes. */
static enum core_code decide_edit(core_state *st, const struct event *e,
				  const struct core_req *req,
				  struct core_resp *resp)
{
	const struct core_req *q = req;
	struct core_rec *out, x = { .type = CORE_REC_EVENT_EDIT };
	bool cancelled = e->status == CORE_EVENT_CANCELLED;
	uint32_t taken = e->confirmed + e->held, seats = 0, active;
	const char *own = state__title(st, e);
	size_t title_n = strnlen(q->u.patch.title, sizeof(q->u.patch.title));

	if (q->u.patch.cancel || q->u.patch.capacity > CORE_CAPACITY_MAX ||
	    q->u.patch.duration_min > CORE_DURATION_MIN_MAX ||
	    title_n == sizeof(q->u.patch.title) || q->u.patch.start_at < 0)
		return CORE_INVALID;
	if (q->u.patch.location_id) {
		if (!catalog_has(st->cat, CORE_OP_LOCATION_CREATE,
				 q->u.patch.location_id) ||
		    st->cat->locations[q->u.patch.location_id - 1].org_id !=
			    e->org_id)
			return CORE_NO_LOCATION;
	}
	if (q->u.patch.instructor_id) {
		if (!catalog_has(st->cat, CORE_OP_INSTRUCTOR_CREATE,
				 q->u.patch.instructor_id) ||
		    st->cat->instructors[q->u.patch.instructor_id - 1].org_id !=
			    e->org_id)
			return CORE_NO_INSTRUCTOR;
	}
	/* A cancelled event changes only when restored; a class that
	 * started, or would start in the past, is not edited. */
	if ((cancelled && !q->u.patch.restore) || e->start_at <= q->now)
		return CORE_NOT_BOOKABLE;
	if (q->u.patch.start_at && q->u.patch.start_at <= q->now)
		return CORE_INVALID;
	x.u.edit.event_id = e->id;
	x.u.edit.location_id = q->u.patch.location_id ? q->u.patch.location_id
						      : e->location_id;
	x.u.edit.instructor_id = q->u.patch.instructor_id
					 ? q->u.patch.instructor_id
					 : e->instructor_id;
	x.u.edit.start_at =
		q->u.patch.start_at ? q->u.patch.start_at : e->start_at;
	x.u.edit.duration_min = q->u.patch.duration_min
					? q->u.patch.duration_min
					: e->duration_min;
	x.u.edit.capacity = q->u.patch.capacity >= 0
				    ? (uint32_t)q->u.patch.capacity
				    : e->capacity;
	x.u.edit.waitlist_capacity = e->waitlist_capacity;
	x.u.edit.price_cents = e->price_cents;
	memcpy(x.u.edit.currency, e->currency, sizeof(x.u.edit.currency));
	if (title_n)
		memcpy(x.u.edit.title, q->u.patch.title, title_n);
	else if (own)
		memcpy(x.u.edit.title, own, strlen(own));
	if (x.u.edit.capacity < taken)
		return CORE_CAPACITY_BELOW_TAKEN;
	/* what changed */
	if (x.u.edit.start_at != e->start_at)
		x.u.edit.changed |= CORE_EDIT_START;
	if (x.u.edit.duration_min != e->duration_min)
		x.u.edit.changed |= CORE_EDIT_DURATION;
	if (x.u.edit.location_id != e->location_id)
		x.u.edit.changed |= CORE_EDIT_LOCATION;
	if (x.u.edit.instructor_id != e->instructor_id)
		x.u.edit.changed |= CORE_EDIT_INSTRUCTOR;
	if (x.u.edit.capacity != e->capacity)
		x.u.edit.changed |= CORE_EDIT_CAPACITY;
	if (cancelled)
		x.u.edit.changed |= CORE_EDIT_RESTORED;
	if (title_n) {
		struct core_event_view v = { .id = e->id,
					     .series_id = e->series_id };
		const char *was = own;
		if (!was) {
			core__event_title(st->cat, &v);
			was = v.title;
		}
		if (strcmp(was, x.u.edit.title) != 0)
			x.u.edit.changed |= CORE_EDIT_TITLE;
	}
	if (x.u.edit.capacity > taken && !cancelled) {
		seats = x.u.edit.capacity - taken;
		if (seats > e->waitlist_len)
			seats = e->waitlist_len;
		if (seats > PROMOTION_COUNT_MAX)
			return CORE_FULL; /* raise in smaller steps */
	}
	active = cancelled ? 0 : taken + e->waitlist_len;
	if ((uint64_t)active * edit_kinds(x.u.edit.changed) >
	    NOTIFY_PER_ENTRY_MAX) {
		resp->id = CORE_LIMIT_CANCEL_NOTIFY;
		resp->count = NOTIFY_PER_ENTRY_MAX;
		return CORE_LIMIT;
	}
	out = rec_new(st, CORE_REC_EVENT_EDIT, q->now);
	out->u.edit = x.u.edit;
	emit(st, out);
	if (!cancelled)
		edit_notify(st, e, x.u.edit.changed, q->now);
	resp->count = promote(st, e, seats, q->now, NULL);
	/* The answer: the event as the entry leaves it (apply_edit and
	 * booking_move count one version per change). */
	struct core_event_view *v = &resp->event;
	state__event_view(st, e, v);
	v->location_id = x.u.edit.location_id;
	v->instructor_id = x.u.edit.instructor_id;
	v->start_at = x.u.edit.start_at;
	v->duration_min = x.u.edit.duration_min;
	v->capacity = x.u.edit.capacity;
	if (x.u.edit.title[0])
		memcpy(v->title, x.u.edit.title, sizeof(v->title));
	else
		core__event_title(st->cat, v);
	v->status = CORE_EVENT_SCHEDULED;
	v->version += 1 + resp->count;
	v->waitlist_length -= resp->count;
	if (e->price_cents)
		v->held += resp->count;
	else
		v->booked += resp->count;
	return CORE_OK;
}

/* Do an event cancel's NOTIFY and REFUND records fit one entry (with room
 * for the cancel's own record and its key)? */
bool core__cancel_fits(const core_state *st, const struct event *e)
{
	size_t bytes = CORE_CANCEL_ROOM;

	for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (!status_active(b->status))
			continue;
		bytes += CORE_NOTIFY_REC_BYTES;
		if (core__refundable(st, b))
			bytes += CORE_REFUND_REC_BYTES;
	}
	return bytes <= CORE_ENTRY_SIZE_MAX;
}

static enum core_code decide_patch(core_state *st, const struct core_req *req,
				   struct core_resp *resp)
{
	const struct event *e = event_get(st, req->event_id);
	struct core_rec r = { .type = CORE_REC_EVENT_PATCH, .at = req->now };
	struct core_rec *out;
	uint32_t taken, seats = 0;
	bool cancel;

	if (!e)
		return CORE_NO_EVENT;
	if (patch_is_edit(req))
		return decide_edit(st, e, req, resp);
	if (req->u.patch.capacity > CORE_CAPACITY_MAX)
		return CORE_INVALID;
	if (req->u.patch.instructor_id) {
		const struct cat_series *s =
			catalog_series(st->cat, e->series_id);
		if (!catalog_has(st->cat, CORE_OP_INSTRUCTOR_CREATE,
				 req->u.patch.instructor_id) ||
		    (s && st->cat->instructors[req->u.patch.instructor_id - 1]
					  .org_id != s->spec.org_id))
			return CORE_NO_INSTRUCTOR;
	}
	if (e->status == CORE_EVENT_CANCELLED &&
	    (req->u.patch.capacity >= 0 || req->u.patch.instructor_id))
		return CORE_NOT_BOOKABLE;
	taken = e->confirmed + e->held;
	r.u.patch.event_id = e->id;
	r.u.patch.capacity = req->u.patch.capacity >= 0
				     ? (uint32_t)req->u.patch.capacity
				     : e->capacity;
	r.u.patch.instructor_id = req->u.patch.instructor_id
					  ? req->u.patch.instructor_id
					  : e->instructor_id;
	r.u.patch.status =
		req->u.patch.cancel ? CORE_EVENT_CANCELLED : e->status;
	if (r.u.patch.status == CORE_EVENT_SCHEDULED &&
	    r.u.patch.capacity < taken)
		return CORE_CAPACITY_BELOW_TAKEN;
	if (r.u.patch.status == CORE_EVENT_SCHEDULED &&
	    r.u.patch.capacity > taken) {
		seats = r.u.patch.capacity - taken;
		if (seats > e->waitlist_len)
			seats = e->waitlist_len;
		if (seats > PROMOTION_COUNT_MAX)
			return CORE_FULL; /* raise in smaller steps */
	}
	cancel = r.u.patch.status == CORE_EVENT_CANCELLED &&
		 e->status == CORE_EVENT_SCHEDULED;
	if ((cancel || (r.u.patch.status == CORE_EVENT_SCHEDULED &&
			r.u.patch.instructor_id != e->instructor_id)) &&
	    (e->confirmed + e->held + e->waitlist_len > NOTIFY_PER_ENTRY_MAX ||
	     (cancel && !core__cancel_fits(st, e)))) {
		resp->id = CORE_LIMIT_CANCEL_NOTIFY;
		resp->count = NOTIFY_PER_ENTRY_MAX;
		return CORE_LIMIT;
	}
	out = rec_new(st, CORE_REC_EVENT_PATCH, req->now);
	out->u.patch = r.u.patch;
	emit(st, out);
	/* Cancelling the event cancels its active bookings: implied by the
	 * record, applied in apply_patch; each is told (NOTIFY after it).
	 * Raising capacity promotes. */
	for (uint32_t seq = 1; cancel && seq <= e->booking_seq; seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (!status_active(b->status))
			continue;
		emit_notify(st, req->now, b->id, CORE_NOTIFY_EVENT_CANCELLED);
		/* the studio cancelled: a paid seat is refunded in full,
		 * whatever the cut-off */
		if (core__refundable(st, b)) {
			struct core_rec *x =
				rec_new(st, CORE_REC_REFUND, req->now);
			core__refund_due(x, st, b, CORE_REFUND_EVENT_CANCELLED,
					 req->now);
			emit(st, x);
		}
	}
	/* A new instructor: each active booking is told (edit_notify). */
	if (!cancel && r.u.patch.status == CORE_EVENT_SCHEDULED &&
	    r.u.patch.instructor_id != e->instructor_id)
		edit_notify(st, e, CORE_EDIT_INSTRUCTOR, req->now);
	resp->count = promote(st, e, seats, req->now, NULL);
	/* The answer is the event as the entry leaves it (apply_patch and
	 * booking_move count one version per change). */
	struct core_event_view *v = &resp->event;
	state__event_view(st, e, v);
	v->capacity = r.u.patch.capacity;
	v->instructor_id = r.u.patch.instructor_id;
	v->version += 1;
	if (cancel) {
		v->version += e->confirmed + e->held + e->waitlist_len;
		v->booked = v->held = v->waitlist_length = 0;
	} else {
		v->version += resp->count;
		v->waitlist_length -= resp->count;
		if (e->price_cents)
			v->held += resp->count;
		else
			v->booked += resp->count;
	}
	v->status = r.u.patch.status;
	return CORE_OK;
}

static enum core_code decide(core_state *st, const struct core_req *req,
			     struct core_resp *resp)
{
	enum core_code code;

	switch (req->op) {
	case CORE_OP_BOOK: return decide_book(st, req, resp);
	case CORE_OP_CANCEL: return decide_cancel(st, req, resp);
	case CORE_OP_PAY: return decide_pay(st, req, resp);
	case CORE_OP_EVENT_PATCH: return decide_patch(st, req, resp);
	case CORE_OP_ORG_CREATE:
	case CORE_OP_ORG_PATCH:
	case CORE_OP_LOCATION_CREATE:
	case CORE_OP_INSTRUCTOR_CREATE:
	case CORE_OP_CUSTOMER_UPSERT:
	case CORE_OP_SERIES_CREATE:
	case CORE_OP_ARCHIVE:
		if (!st->owns_cat)
			return CORE_INVALID;
		return catalog_decide(st->cat, req, resp, &st->w);
	case CORE_OP_GENERATE:
		if (!st->owns_cat)
			return CORE_INVALID;
		code = catalog_generate(st->cat, req->u.generate.series_id,
					req->u.generate.until, req->now, resp,
					&st->w);
		/* A chunk is one entry: it fits whole, or is refused. */
		if (code == CORE_OK && (uint64_t)st->event_count + resp->count >
					       st->cfg.event_count_max) {
			st->w.size = 0;
			resp->more = false;
			return limit(resp, CORE_LIMIT_EVENTS,
				     st->cfg.event_count_max);
		}
		return code;
	default: return CORE_INVALID;
	}
}

static bool op_mutates(enum core_op op)
{
	return op == CORE_OP_BOOK || op == CORE_OP_CANCEL ||
	       op == CORE_OP_PAY || op == CORE_OP_EVENT_PATCH ||
	       op == CORE_OP_ORG_CREATE || op == CORE_OP_LOCATION_CREATE ||
	       op == CORE_OP_INSTRUCTOR_CREATE ||
	       op == CORE_OP_CUSTOMER_UPSERT || op == CORE_OP_SERIES_CREATE ||
	       op == CORE_OP_GENERATE || op == CORE_OP_ARCHIVE ||
	       op == CORE_OP_ORG_PATCH;
}

enum core_code core__state_decide_nokey(core_state *st,
					const struct core_req *req,
					struct core_resp *resp,
					const void **entry, size_t *entry_size)
{
	enum core_code code;
	size_t records_end;

	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	entry_begin(st);
	code = decide(st, req, resp);
	resp->code = code;
	records_end = st->w.size;
	if (st->w.overflow) {
		resp->code = code = CORE_FULL;
		records_end = 0;
	}
	/* A decision that made records is kept under its key, with its first
	 * answer; a refusal made none and is decided afresh on a retry. */
	if (records_end && core_idem_present(&req->idem)) {
		struct core_rec *r = rec_new(st, CORE_REC_IDEM, req->now);

		state__idem_rec(req, resp, r);
		emit(st, r);
		if (st->w.overflow) {
			resp->code = code = CORE_FULL;
			records_end = 0;
		}
	}
	*entry = st->w.data;
	*entry_size = records_end ? st->w.size : 0;
	return code;
}

enum core_code core_state_decide(core_state *st, const struct core_req *req,
				 struct core_resp *resp, const void **entry,
				 size_t *entry_size)
{
	*entry = NULL;
	*entry_size = 0;
	if (!op_mutates(req->op)) {
		memset(resp, 0, sizeof(*resp));
		resp->op = req->op;
		return resp->code = CORE_INVALID;
	}
	if (core_idem_present(&req->idem)) {
		enum core_code code;
		memset(resp, 0, sizeof(*resp));
		code = core__idem_lookup(st, &req->idem, req->now, resp);
		if (code != CORE_OK || resp->replayed) {
			if (code != CORE_OK) {
				memset(resp, 0, sizeof(*resp));
				resp->op = req->op;
				resp->code = code;
			}
			return resp->code;
		}
	}
	return core__state_decide_nokey(st, req, resp, entry, entry_size);
}

/* ---- holds ---- */

bool core__state_expire_one(core_state *st, core_time now, const void **entry,
			    size_t *entry_size)
{
	struct core_resp resp;

	while (st->hold_count) {
		const struct hold *h = &st->holds[0];
		const struct booking *b = &st->bookings[h->slot];
		if (b->id != h->booking_id ||
		    b->status != CORE_BOOKING_PENDING_PAYMENT ||
		    b->hold_expires_at != h->expires) {
			state__hold_pop(st); /* stale: the booking moved on */
			continue;
		}
		if (h->expires > now)
			return false;
		memset(&resp, 0, sizeof(resp));
		entry_begin(st);
		decide_release(st, b, CORE_BOOKING_EXPIRED,
			       CORE_NOTIFY_HOLD_EXPIRED, false, now, &resp);
		ASSERT(!st->w.overflow);
		*entry = st->w.data;
		*entry_size = st->w.size;
		return true;
	}
	return false;
}

/* ---- the start of a class: its waitlist closes ----
 *
 * At start_at every booking still waitlisted on the event moves to
 * waitlist_expired, each told by a NOTIFY WAITLIST_EXPIRED, in FIFO order,
 * CLOSE_PER_ENTRY_MAX to an entry (BOOKING_SET + NOTIFY: 50 bytes a
 * booking); a longer waitlist takes several entries, each closing the
 * head of what is left. Held (pending_payment) bookings keep their hold
 * until it expires or is paid; nobody is promoted after start (promote).
 * The events to look at come from the watch heap (apply.c): an event
 * enters it when its waitlist goes from empty to one, or when an edit
 * moves the start of one that has a waitlist. */

#define CLOSE_PER_ENTRY_MAX 1000

bool core__state_close_one(core_state *st, core_time now, const void **entry,
			   size_t *entry_size, uint32_t *closed)
{
	while (st->wl_watch_count) {
		const struct wl_watch top = st->wl_watch[0];
		const struct event *e = event_get(st, top.event_id);
		uint32_t n = 0;

		if (!e || e->waitlist_len == 0 ||
		    e->status != CORE_EVENT_SCHEDULED ||
		    e->start_at != top.start) {
			state__wl_watch_pop(st); /* stale: it moved on */
			continue;
		}
		if (top.start > now)
			return false;
		entry_begin(st);
		for (uint32_t s = e->wl_head; s && n < CLOSE_PER_ENTRY_MAX;
		     s = st->bookings[s].wl_next, n++) {
			emit_set(st, now, st->bookings[s].id,
				 CORE_BOOKING_WAITLIST_EXPIRED, 0);
			emit_notify(st, now, st->bookings[s].id,
				    CORE_NOTIFY_WAITLIST_EXPIRED);
		}
		ASSERT(n > 0 && !st->w.overflow);
		*entry = st->w.data;
		*entry_size = st->w.size;
		*closed = n;
		return true;
	}
	return false;
}

/* ---- reminders ----
 *
 * A run (CORE_OP_REMIND at now with the leads L1..Ln, in hours) decides,
 * for each scheduled event that starts after now: the closest lead due,
 * the smallest L with now >= start - L. If the event was not reminded yet,
 * or only for a larger lead, one entry goes out: REMIND (event, L) and a
 * NOTIFY REMINDER for each booking confirmed then, in booking order. So a
 * lead goes out once per event whatever the restarts (the REMIND record is
 * in the log and in snapshots), several leads due at once (after downtime)
 * send the closest only, and a changed list of leads is safe (a lead is
 * kept in hours, not as a place in the list).
 *
 * Which events: a lead's reminders come due as time passes start - L, so
 * a run after one at prev (with the same leads) reads the events starting
 * in (prev + L, now + L] for each L, through the day buckets (the shard's
 * start-time order), and those created since prev that start before the
 * last run's window ended (remind_dirty). The first run, or one with other
 * leads, reads the whole window (now, now + the longest lead]. What one run
 * decided is in the state: a second run at the same time decides nothing. */

/* The closest lead of q due for e at now (its smallest hours), 0: none. */
static uint16_t remind_due(const struct event *e, const struct core_req *q)
{
	uint16_t best = 0;

	for (uint8_t i = 0; i < q->u.remind.count; i++) {
		uint16_t h = q->u.remind.hours[i];
		if (q->now >= e->start_at - h * HOUR_MS && (!best || h < best))
			best = h;
	}
	return best;
}

/* The reminder e needs at now, as an entry, or false. A chunk of a large
 * event's: its REMIND carries where the next one starts. */
static bool remind_decide(core_state *st, const struct event *e,
			  const struct core_req *q, const void **entry,
			  size_t *entry_size, uint32_t *notifies)
{
	const struct remind_part *p;
	uint32_t from = 1, end = 0, n = 0;
	uint16_t hours;
	struct core_rec *r;

	if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= q->now)
		return false;
	hours = remind_due(e, q);
	if (!hours)
		return false;
	p = state__remind_part(st, e->id);
	if (p && p->hours <= hours) { /* the rest of the one half-way */
		hours = p->hours;
		from = p->next_seq;
	} else if (e->reminded_hours && e->reminded_hours <= hours) {
		return false;
	}
	for (uint32_t seq = from; seq <= e->booking_seq; seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (b->status != CORE_BOOKING_CONFIRMED)
			continue;
		if (n == NOTIFY_PER_ENTRY_MAX) {
			end = seq;
			break;
		}
		n++;
	}
	if (end && !p && st->remind_part_count == REMIND_PART_MAX)
		return false; /* no room to go half-way: a later run */
	entry_begin(st);
	r = rec_new(st, CORE_REC_REMIND, q->now);
	memset(&r->u.remind, 0, sizeof(r->u.remind));
	r->u.remind.event_id = e->id;
	r->u.remind.hours = hours;
	r->u.remind.next_seq = end;
	emit(st, r);
	for (uint32_t seq = from; seq <= e->booking_seq && seq != end; seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (b->status == CORE_BOOKING_CONFIRMED)
			emit_notify(st, q->now, b->id, CORE_NOTIFY_REMINDER);
	}
	ASSERT(!st->w.overflow);
	*entry = st->w.data;
	*entry_size = st->w.size;
	*notifies = n;
	return true;
}

/* Decides the reminders of the events starting in (lo, hi], committing
 * each as it is made; 0 or the commit's -errno. */
static int remind_range(core_state *st, const struct core_req *q, core_time lo,
			core_time hi, core__commit_fn commit, void *ctx,
			uint32_t *notified)
{
	int64_t day, last;

	if (hi <= lo || st->day_count == 0)
		return 0;
	day = (lo + 1) / DAY_MS;
	last = hi / DAY_MS;
	if (day < st->day_min)
		day = st->day_min;
	if (last > st->day_max)
		last = st->day_max;
	for (; day <= last; day++) {
		const struct day_bucket *d =
			state__day_bucket(st, day * DAY_MS, false);

		for (uint32_t i = 0; d && i < d->count; i++) {
			const struct event *e = &st->events[d->slots[i]];
			const void *entry;
			size_t size;
			uint32_t n;

			if (e->start_at <= lo || e->start_at > hi)
				continue;
			while (remind_decide(st, e, q, &entry, &size, &n)) {
				int rc = commit(ctx, entry, size);
				if (rc)
					return rc;
				*notified += n;
			}
		}
	}
	return 0;
}

static int hours_order(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

int core__state_remind(core_state *st, const struct core_req *req,
		       core__commit_fn commit, void *ctx, uint32_t *notified)
{
	struct core_req q = *req;
	core_time now = q.now, prev = st->remind_prev, longest;
	uint8_t n = 0;
	int rc = 0;

	*notified = 0;
	if (q.u.remind.count > CORE_REMIND_LEAD_COUNT_MAX)
		return -EINVAL;
	/* sorted, each once */
	qsort(q.u.remind.hours, q.u.remind.count, sizeof(uint16_t),
	      hours_order);
	for (uint8_t i = 0; i < q.u.remind.count; i++) {
		uint16_t h = q.u.remind.hours[i];
		if (h == 0 || h > CORE_REMIND_HOURS_MAX)
			return -EINVAL;
		if (n == 0 || q.u.remind.hours[n - 1] != h)
			q.u.remind.hours[n++] = h;
	}
	q.u.remind.count = n;
	if (n == 0)
		return 0;
	longest = q.u.remind.hours[n - 1] * HOUR_MS;
	if (!st->remind_armed || now < prev || st->remind_count != n ||
	    memcmp(st->remind_hours, q.u.remind.hours, n * sizeof(uint16_t))) {
		rc = remind_range(st, &q, now, now + longest, commit, ctx,
				  notified);
	} else {
		for (uint8_t i = 0; i < n && rc == 0; i++) {
			core_time lead = q.u.remind.hours[i] * HOUR_MS;
			rc = remind_range(st, &q,
					  prev + lead > now ? prev + lead : now,
					  now + lead, commit, ctx, notified);
		}
		if (rc == 0 && st->remind_dirty <= prev + longest)
			rc = remind_range(st, &q,
					  st->remind_dirty - 1 > now
						  ? st->remind_dirty - 1
						  : now,
					  prev + longest, commit, ctx,
					  notified);
	}
	if (rc)
		return rc; /* the next run reads the same events again */
	st->remind_armed = true;
	st->remind_prev = now;
	st->remind_dirty = INT64_MAX;
	st->remind_count = n;
	memcpy(st->remind_hours, q.u.remind.hours, n * sizeof(uint16_t));
	return 0;
}
