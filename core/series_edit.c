/*
 * series_edit.c: a series changed from a date on, or ended
 * (CORE_OP_SERIES_PATCH, docs/core.md "Series edits").
 *
 * What it decides reads every shard's events of the series and their
 * active bookings, and must not race a booking: the core is parked
 * (core_park: every shard stopped between decisions, the catalogue held)
 * while it reads, decides, logs and applies, then unparked. Series edits
 * are rare (an operator's), so stopping the shards for a moment is the
 * price of a decision made on one consistent state.
 *
 * The new spec is the old one with the request's changes (title, capacity,
 * waitlist capacity, price, currency, local start time, duration,
 * weekdays, last date); org, zone, location, instructor, first date and
 * skips stay. For each event of the series that starts on or after the
 * local date `from` and has not started, in start order (an end alone,
 * the last date and nothing else, looks only at those past it):
 *   - cancelled: left so (its date counts as taken);
 *   - on a date past the new last date: cancelled, its active bookings
 *     too, each told (event_cancelled), as an event cancel does;
 *   - with active bookings, unless it fits the new pattern already: kept
 *     as it is and flagged (EVENT_EDIT with CORE_EDIT_DETACHED: "detached"
 *     in its view);
 *   - without: changed to the new pattern on its date (EVENT_EDIT; a new
 *     title as its own), or cancelled when its date is no longer in it;
 * and each date of [from, generated through] the new pattern has and no
 * event of the series holds gets a new event. Later dates come from
 * generation as before, with the new spec. A new title is the series'
 * from the next event id on: events made before keep the title they had
 * (catalog.c, cat_title), as reporting's rows do.
 *
 * Entries: the first holds the SERIES_EDIT record, then the events'
 * records follow, as many per entry as fit; the last carries the key.
 * Each is made room for in every shard, logged, then applied. A failure
 * of the log between entries leaves the first ones applied; the same
 * request again (its key was not stored) decides the rest, as generation
 * resumes.
 */
#include "runtime.h"
#include "state_int.h"
#include "tz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_MAX 3000 /* per event, as an event cancel (decide.c) */
/* An event's own record at most (EVENT_EDIT or EVENT_PATCH), with room to
 * spare; a cancel's NOTIFY and REFUND records come on top
 * (CORE_NOTIFY_REC_BYTES, CORE_REFUND_REC_BYTES, state_int.h). */
#define EVENT_REC_BYTES 400

struct sev {
	uint64_t id;
	core_time start;
	int64_t day; /* local date, days since 1970 */
	unsigned shard;
	uint32_t slot;
	uint32_t active;
};

static int sev_order(const void *a, const void *b)
{
	const struct sev *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The local date (days since 1970) of an instant in the zone. */
static int64_t local_day(const struct tz *z, core_time t)
{
	int64_t s = floor_div(t, 1000);

	return floor_div(s + tz_offset_at(z, s), 86400);
}

static bool skipped(const struct core_series_spec *s, int64_t day)
{
	for (uint32_t i = 0; i < s->skip_count; i++)
		if (tz_days_from_civil(s->skip[i].year, s->skip[i].month,
				       s->skip[i].day) == day)
			return true;
	return false;
}

static int64_t date_days(struct core_date d)
{
	return tz_days_from_civil(d.year, d.month, d.day);
}

/* The UTC start of the new pattern's class on local day `day`, 0 if it has
 * none there. */
static core_time pattern_start(const struct core_series_spec *s,
			       const struct tz *z, int64_t day)
{
	if (!(s->weekday_mask & (1u << tz_weekday(day))) || skipped(s, day) ||
	    day < date_days(s->first_date) ||
	    (s->last_date.year && day > date_days(s->last_date)))
		return 0;
	return tz_local_to_utc(z, day * 86400 + s->start_minute * 60) * 1000;
}

/* The new spec: the old with the request's changes. */
static void spec_changed(struct core_series_spec *n, const struct core_req *q)
{
	if (q->u.spatch.title[0])
		memcpy(n->title, q->u.spatch.title, sizeof(n->title));
	if (q->u.spatch.capacity >= 0)
		n->capacity = (uint32_t)q->u.spatch.capacity;
	if (q->u.spatch.waitlist_capacity >= 0)
		n->waitlist_capacity = (uint32_t)q->u.spatch.waitlist_capacity;
	if (q->u.spatch.price_cents >= 0)
		n->price_cents = (uint32_t)q->u.spatch.price_cents;
	if (q->u.spatch.currency[0])
		memcpy(n->currency, q->u.spatch.currency, sizeof(n->currency));
	if (q->u.spatch.start_minute >= 0)
		n->start_minute = (uint16_t)q->u.spatch.start_minute;
	if (q->u.spatch.duration_min)
		n->duration_min = q->u.spatch.duration_min;
	if (q->u.spatch.weekday_mask)
		n->weekday_mask = q->u.spatch.weekday_mask;
	if (q->u.spatch.last_date.year)
		n->last_date = q->u.spatch.last_date;
}

/* The request's numbers in range (the spec's check does the rest). */
static bool request_ok(const struct core_req *q)
{
	return q->u.spatch.capacity <= CORE_CAPACITY_MAX &&
	       q->u.spatch.waitlist_capacity <= CORE_CAPACITY_MAX &&
	       q->u.spatch.price_cents <= CORE_PRICE_CENTS_MAX &&
	       q->u.spatch.start_minute < CORE_DAY_MINUTES &&
	       q->u.spatch.duration_min <= CORE_DURATION_MIN_MAX &&
	       q->u.spatch.weekday_mask <= 0x7f &&
	       strnlen(q->u.spatch.title, sizeof(q->u.spatch.title)) <
		       sizeof(q->u.spatch.title) &&
	       (!q->u.spatch.from.year ||
		tz_date_valid(q->u.spatch.from.year, q->u.spatch.from.month,
			      q->u.spatch.from.day));
}

/* ---- the entries ---- */

struct out {
	core_port *p;
	struct wbuf w;
	uint64_t lsn;
	int rc;
};

/* The entry so far: room in every shard, logged, applied. */
static void out_flush(struct out *o)
{
	core *c = o->p->c;

	if (o->rc || o->w.size == 0)
		return;
	ASSERT(!o->w.overflow);
	for (unsigned sh = 0; sh < c->shard_count && !o->rc; sh++)
		o->rc = core__state_reserve(c->shards[sh].st, o->w.data,
					    o->w.size);
	if (!o->rc)
		o->rc = log_entry(c, c->shard_count, o->w.data, o->w.size,
				  &o->lsn);
	if (!o->rc) {
		int rc = core_replay(c, o->w.data, o->w.size);
		ASSERT(rc == 0); /* decided on this state, room made */
	}
	o->w.size = 0;
}

/* Room for `bytes` more in the entry, flushing it first if need be. */
static void out_room(struct out *o, size_t bytes)
{
	if (o->w.capacity - o->w.size < bytes)
		out_flush(o);
}

static void out_rec(struct out *o, const struct core_rec *r)
{
	rec_encode(&o->w, r);
	ASSERT(!o->w.overflow); /* out_room made room */
}

/* The event cancelled, each active booking told, each paid one refunded
 * in full (an event cancel's, docs/core.md "Payments"). */
static void out_cancel(struct out *o, const core_state *st,
		       const struct event *e, core_time now)
{
	struct core_rec r = { .type = CORE_REC_EVENT_PATCH, .at = now };
	size_t bytes = EVENT_REC_BYTES;

	for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (status_active(b->status))
			bytes +=
				CORE_NOTIFY_REC_BYTES +
				(core__refundable(st, b) ? CORE_REFUND_REC_BYTES
							 : 0);
	}
	out_room(o, bytes);
	r.u.patch.event_id = e->id;
	r.u.patch.instructor_id = e->instructor_id;
	r.u.patch.capacity = e->capacity;
	r.u.patch.status = CORE_EVENT_CANCELLED;
	out_rec(o, &r);
	for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
		const struct booking *b =
			booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
		if (!status_active(b->status))
			continue;
		memset(&r.u, 0, sizeof(r.u));
		r.type = CORE_REC_NOTIFY;
		r.u.notify.booking_id = b->id;
		r.u.notify.kind = CORE_NOTIFY_EVENT_CANCELLED;
		out_rec(o, &r);
		if (core__refundable(st, b)) {
			struct core_rec x;
			core__refund_due(&x, st, b, CORE_REFUND_EVENT_CANCELLED,
					 now);
			out_rec(o, &x);
		}
	}
}

/* An EVENT_EDIT of e: as it is, with what the caller set in r after. */
static void edit_of(struct core_rec *r, const core_state *st,
		    const struct event *e, core_time now)
{
	const char *own = state__title(st, e);

	memset(r, 0, sizeof(*r));
	r->type = CORE_REC_EVENT_EDIT;
	r->at = now;
	r->u.edit.event_id = e->id;
	r->u.edit.location_id = e->location_id;
	r->u.edit.instructor_id = e->instructor_id;
	r->u.edit.start_at = e->start_at;
	r->u.edit.duration_min = e->duration_min;
	r->u.edit.capacity = e->capacity;
	r->u.edit.waitlist_capacity = e->waitlist_capacity;
	r->u.edit.price_cents = e->price_cents;
	memcpy(r->u.edit.currency, e->currency, sizeof(r->u.edit.currency));
	if (own)
		memcpy(r->u.edit.title, own, strlen(own));
}

/* Does e hold the new pattern's settings at start (its title aside)? */
static bool fits(const struct event *e, const struct core_series_spec *n,
		 core_time start)
{
	return e->start_at == start && e->duration_min == n->duration_min &&
	       e->capacity == n->capacity &&
	       e->waitlist_capacity == n->waitlist_capacity &&
	       e->price_cents == n->price_cents &&
	       memcmp(e->currency, n->currency, sizeof(e->currency)) == 0;
}

/* ---- the decision ---- */

struct plan {
	struct sev *ev;
	uint32_t n, cap;
};

/* The series' events from `from_at` on, every shard (parked). */
static int collect(core *c, uint64_t series_id, const struct tz *z,
		   core_time from_at, struct plan *pl)
{
	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		const core_state *st = c->shards[sh].st;

		for (uint32_t slot = 1; slot <= st->event_slots; slot++) {
			const struct event *e = &st->events[slot];
			struct sev *v;

			if (e->id == 0 || e->series_id != series_id ||
			    e->start_at < from_at)
				continue;
			if (pl->n == pl->cap) {
				uint32_t cap = pl->cap ? pl->cap * 2 : 64;
				struct sev *m =
					realloc(pl->ev, cap * sizeof(*m));
				if (!m)
					return -ENOMEM;
				pl->ev = m;
				pl->cap = cap;
			}
			v = &pl->ev[pl->n++];
			v->id = e->id;
			v->start = e->start_at;
			v->day = local_day(z, e->start_at);
			v->shard = sh;
			v->slot = slot;
			v->active = e->status == CORE_EVENT_SCHEDULED
					    ? e->confirmed + e->held +
						      e->waitlist_len
					    : 0;
		}
	}
	if (pl->n > 1) /* none: ev is still NULL */
		qsort(pl->ev, pl->n, sizeof(*pl->ev), sev_order);
	return 0;
}

static bool day_taken(const struct plan *pl, int64_t day)
{
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->ev[i].day == day)
			return true;
	return false;
}

/* New events on the pattern's dates [lo, hi] that hold none: how many
 * (count), or written (o). */
static uint32_t new_dates(core *c, const struct plan *pl, uint64_t series_id,
			  const struct core_series_spec *n, const struct tz *z,
			  int64_t lo, int64_t hi, core_time now, struct out *o)
{
	uint64_t id = c->cat->next_event_id;
	uint32_t made = 0;

	for (int64_t day = lo; day <= hi; day++) {
		core_time start = pattern_start(n, z, day);
		struct core_rec r = { .type = CORE_REC_EVENT_CREATE,
				      .at = now };

		if (start <= now || day_taken(pl, day))
			continue;
		made++;
		if (!o)
			continue;
		r.u.event.id = id++;
		r.u.event.series_id = series_id;
		r.u.event.org_id = n->org_id;
		r.u.event.location_id = n->location_id;
		r.u.event.instructor_id = n->instructor_id;
		r.u.event.start_at = start;
		r.u.event.duration_min = n->duration_min;
		r.u.event.capacity = n->capacity;
		r.u.event.waitlist_capacity = n->waitlist_capacity;
		r.u.event.price_cents = n->price_cents;
		memcpy(r.u.event.currency, n->currency, 4);
		out_room(o, EVENT_REC_BYTES);
		out_rec(o, &r);
	}
	return made;
}

/* Would `made` new events from the next id on pass a shard's ceiling? */
static bool fits_shards(core *c, uint32_t made)
{
	uint64_t add[CORE_SHARD_COUNT_MAX] = { 0 };

	for (uint32_t k = 0; k < made; k++)
		add[core__shard_of(c->cat->next_event_id + k, c->shard_count)]++;
	for (unsigned sh = 0; sh < c->shard_count; sh++)
		if (c->shards[sh].st->event_count + add[sh] >
		    c->cfg.event_count_max)
			return false;
	return true;
}

static enum core_code decide_and_write(core_port *p, const struct core_req *q,
				       struct core_resp *resp)
{
	core *c = p->c;
	const struct cat_series *s =
		catalog_series(c->cat, q->u.spatch.series_id);
	struct core_series_spec n;
	struct plan pl = { 0 };
	struct out o = { .p = p };
	int64_t today, from, through;
	core_time from_at, now = q->now;
	enum core_code code;
	bool retitled, reshaped;
	uint32_t made;

	if (!s)
		return CORE_NO_SERIES;
	if (!request_ok(q))
		return CORE_INVALID;
	n = s->spec;
	spec_changed(&n, q);
	code = catalog_series_check(c->cat, &n);
	if (code != CORE_OK)
		return code;
	retitled = strcmp(n.title, s->spec.title) != 0;
	/* an end alone (last_date) leaves the events before it as they are */
	reshaped = retitled || n.capacity != s->spec.capacity ||
		   n.waitlist_capacity != s->spec.waitlist_capacity ||
		   n.price_cents != s->spec.price_cents ||
		   memcmp(n.currency, s->spec.currency, 4) ||
		   n.start_minute != s->spec.start_minute ||
		   n.duration_min != s->spec.duration_min ||
		   n.weekday_mask != s->spec.weekday_mask;
	today = local_day(s->zone, now);
	from = q->u.spatch.from.year ? date_days(q->u.spatch.from) : today;
	if (from < today)
		from = today;
	from_at = tz_local_to_utc(s->zone, from * 86400) * 1000;
	through = s->generated_through.year ? date_days(s->generated_through)
					    : from - 1;
	if (n.last_date.year && through > date_days(n.last_date))
		through = date_days(n.last_date);
	if (collect(c, q->u.spatch.series_id, s->zone, from_at, &pl) != 0) {
		free(pl.ev);
		return CORE_FULL;
	}
	/* Checked whole before anything is written. */
	for (uint32_t i = 0; i < pl.n; i++)
		if (pl.ev[i].active > NOTIFY_MAX ||
		    (pl.ev[i].active &&
		     !core__cancel_fits(c->shards[pl.ev[i].shard].st,
					&c->shards[pl.ev[i].shard]
						 .st->events[pl.ev[i].slot]))) {
			free(pl.ev);
			resp->id = CORE_LIMIT_CANCEL_NOTIFY;
			resp->count = NOTIFY_MAX;
			return CORE_LIMIT;
		}
	made = new_dates(c, &pl, q->u.spatch.series_id, &n, s->zone, from,
			 through, now, NULL);
	if (!fits_shards(c, made)) {
		free(pl.ev);
		resp->id = CORE_LIMIT_EVENTS;
		resp->count = c->cfg.event_count_max;
		return CORE_LIMIT;
	}

	o.w = (struct wbuf){ .data = p->entry,
			     .capacity = CORE_ENTRY_SIZE_MAX };
	{
		struct core_rec r = { .type = CORE_REC_SERIES_EDIT, .at = now };
		r.u.series.id = q->u.spatch.series_id;
		r.u.series.spec = n;
		r.u.series.first_event_id = c->cat->next_event_id;
		out_rec(&o, &r);
	}
	for (uint32_t i = 0; i < pl.n && !o.rc; i++) {
		const struct sev *v = &pl.ev[i];
		const core_state *st = c->shards[v->shard].st;
		const struct event *e = &st->events[v->slot];
		core_time start = pattern_start(&n, s->zone, v->day);
		struct core_rec r;

		if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= now)
			continue;
		if (n.last_date.year && v->day > date_days(n.last_date)) {
			out_cancel(&o, st, e, now);
			resp->series.cancelled++;
			continue;
		}
		if (!reshaped || (start && fits(e, &n, start) && !retitled))
			continue; /* as the new pattern has it */
		if (v->active) {  /* kept as it is (its title too), flagged */
			if (start && fits(e, &n, start))
				continue;
			edit_of(&r, st, e, now);
			r.u.edit.changed = CORE_EDIT_DETACHED;
			out_room(&o, EVENT_REC_BYTES);
			out_rec(&o, &r);
			resp->series.kept++;
			continue;
		}
		if (!start || start <= now) {
			out_cancel(&o, st, e, now);
			resp->series.cancelled++;
			continue;
		}
		edit_of(&r, st, e, now);
		r.u.edit.start_at = start;
		r.u.edit.duration_min = n.duration_min;
		r.u.edit.capacity = n.capacity;
		r.u.edit.waitlist_capacity = n.waitlist_capacity;
		r.u.edit.price_cents = n.price_cents;
		memcpy(r.u.edit.currency, n.currency, sizeof(n.currency));
		/* the series' title now: its own when the title its id
		 * derives (made before a retitle) is another */
		memset(r.u.edit.title, 0, sizeof(r.u.edit.title));
		{
			struct core_event_view d = { .id = e->id,
						     .series_id =
							     e->series_id };
			core__event_title(c->cat, &d);
			if (retitled || strcmp(d.title, n.title) != 0)
				memcpy(r.u.edit.title, n.title,
				       sizeof(r.u.edit.title));
		}
		r.u.edit.changed =
			(uint8_t)((start != e->start_at ? CORE_EDIT_START : 0) |
				  (n.duration_min != e->duration_min
					   ? CORE_EDIT_DURATION
					   : 0) |
				  (fits(e, &n, e->start_at)
					   ? 0
					   : CORE_EDIT_CAPACITY) |
				  ((e->flags & EVENT_TITLED) || retitled
					   ? CORE_EDIT_TITLE
					   : 0));
		out_room(&o, EVENT_REC_BYTES);
		out_rec(&o, &r);
		resp->series.regenerated++;
	}
	if (!o.rc)
		resp->series.regenerated +=
			new_dates(c, &pl, q->u.spatch.series_id, &n, s->zone,
				  from, through, now, &o);
	free(pl.ev);
	if (!o.rc && core_idem_present(&q->idem)) {
		resp->code = CORE_OK;
		resp->id = q->u.spatch.series_id;
		resp->count = resp->series.regenerated;
		out_room(&o, 1024);
		core__idem_emit(&o.w, q, resp);
		ASSERT(!o.w.overflow);
	}
	out_flush(&o);
	if (o.rc) {
		resp->lsn = 0;
		return CORE_FULL;
	}
	resp->lsn = o.lsn;
	resp->id = q->u.spatch.series_id;
	resp->count = resp->series.regenerated;
	return CORE_OK;
}

int core__series_patch(core_port *p, const struct core_req *req,
		       struct core_resp *resp)
{
	core *c = p->c;
	int rc = core_park(c);

	if (rc)
		return rc;
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	resp->code = decide_and_write(p, req, resp);
	if (resp->code != CORE_OK && resp->code != CORE_LIMIT)
		memset(&resp->series, 0, sizeof(resp->series));
	core_unpark(c);
	return 0;
}
