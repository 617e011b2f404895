/*
 * bookbench_scenario.c: the scenarios. A scenario is a data set's defaults
 * (events, customers, orgs, capacity, waitlist) and a mix of operations; per
 * connection it makes the next operation from what that connection saw:
 *  - opening: connection k takes customers k, k+N, ...; round j books event
 *    (customer + j) mod E, so every customer tries every event once and then
 *    the opening is over;
 *  - steady, read-heavy: random customers on random events, reads (an
 *    event's availability, an org's listing for a 4-hour window) and cancels
 *    of the connection's own bookings mixed in by percentage;
 *  - cancel-storm: every event filled first (preload, not measured), then
 *    the connection's oldest bookings cancelled, each promoting the first of
 *    the waitlist.
 * Any of them replays --replay-pct of recent decisions with the same
 * idempotency key; the answer must be the same (else BB_REPLAY_DIFFERS).
 * The answer side (bb_scenario_answer) keeps the connection's own bookings
 * (a ring of BB_OWN_MAX, the oldest forgotten), the acknowledgements for the
 * check (up to the connection's share of --track-max, then marked partial)
 * and the counts and latency histograms; only the interval histogram is
 * shared with the progress line, under the worker's lock.
 */
#include "bookbench_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Fields left out are 0: waitlist 0 is as many as the customers. */
const struct bb_scenario bb_scenarios[SC_COUNT] = {
	[SC_OPENING] = {
		.name = "opening",
		.what = "a popular schedule opens: customers race for a few "
			"hundred seats in a few events, most end on waitlists",
		.events = 4, .customers = 20000, .orgs = 1, .capacity = 75,
	},
	[SC_STEADY] = {
		.name = "steady",
		.what = "a normal day: 20k events spread over orgs, bookings "
			"and cancellations mixed",
		.events = 20000, .customers = 100000, .orgs = 200,
		.capacity = 20, .waitlist = 10, .pct_cancel = 25,
	},
	[SC_CANCEL_STORM] = {
		.name = "cancel-storm",
		.what = "full events, then mass cancellations, each promoting "
			"the first of the waitlist",
		.events = 200, .customers = 20000, .orgs = 10, .capacity = 20,
		.waitlist = 20, .pct_cancel = 100, .preload = true,
	},
	[SC_READ_HEAVY] = {
		.name = "read-heavy",
		.what = "public listings and availability reads, some bookings",
		.events = 2000, .customers = 50000, .orgs = 50, .capacity = 20,
		.waitlist = 10, .pct_read = 90,
	},
};

int bb_scenario_find(const char *name, size_t n)
{
	for (int i = 0; i < SC_COUNT; i++)
		if (strlen(bb_scenarios[i].name) == n &&
		    memcmp(bb_scenarios[i].name, name, n) == 0)
			return i;
	return -1;
}

static void customer_name(const struct bb_runner *r, uint64_t c, char *out)
{
	snprintf(out, BB_CUSTOMER_SIZE_MAX + 1, "bb-%s-c%" PRIu64,
		 r->ds->run_tag, c);
}

static void own_push(struct bb_worker *w, uint64_t booking_id)
{
	if (w->own_count == BB_OWN_MAX) { /* forget the oldest */
		w->own_head = (w->own_head + 1) % BB_OWN_MAX;
		w->own_count--;
	}
	w->own[(w->own_head + w->own_count) % BB_OWN_MAX] = booking_id;
	w->own_count++;
	ASSERT(w->own_count <= BB_OWN_MAX);
}

static uint64_t own_pop_oldest(struct bb_worker *w)
{
	ASSERT(w->own_count > 0);
	uint64_t id = w->own[w->own_head];
	w->own_head = (w->own_head + 1) % BB_OWN_MAX;
	w->own_count--;
	return id;
}

static uint64_t own_pop_random(struct bb_worker *w)
{
	ASSERT(w->own_count > 0);
	uint32_t i = bb_rnd_below(&w->rng, w->own_count);
	uint32_t at = (w->own_head + i) % BB_OWN_MAX;
	uint32_t last = (w->own_head + w->own_count - 1) % BB_OWN_MAX;
	uint64_t id = w->own[at];
	w->own[at] = w->own[last];
	w->own_count--;
	return id;
}

/* opening: this connection's customers, and its share of the attempts
 * (each of its customers once on every event); then the opening is over. */
static uint64_t opening_share(const struct bb_runner *r,
			      const struct bb_worker *w)
{
	uint64_t n = (r->customer_count + r->connections - 1 - w->index) /
		     r->connections;
	return n;
}

bool bb_scenario_done(const struct bb_runner *r, const struct bb_worker *w)
{
	if (r->sc != &bb_scenarios[SC_OPENING])
		return false;
	uint64_t n = opening_share(r, w);
	return n == 0 || w->cursor >= n * r->ds->event_count;
}

void bb_scenario_next(struct bb_runner *r, struct bb_worker *w,
		      struct bb_slot *s)
{
	const struct bb_scenario *sc = r->sc;
	struct bb_dataset *ds = r->ds;
	struct bb_op *op = &s->op;

	memset(s, 0, sizeof(*s));
	w->seq++;
	snprintf(op->key, sizeof(op->key), "%s-%u-%" PRIu64, r->key_prefix,
		 w->index, w->seq);

	if (w->preload_next <
	    w->preload_end) { /* cancel-storm: fill the events first */
		uint64_t i = w->preload_next++;
		uint32_t per_event = ds->capacity + ds->waitlist_capacity;
		ASSERT(per_event > 0);	       /* else nothing to preload */
		ASSERT(i < r->customer_count); /* raised to cover the preload */
		op->kind = BB_OP_BOOK;
		op->event_id = ds->event_ids[(i / per_event) % ds->event_count];
		customer_name(r, i, op->customer);
		s->preload = true;
		return;
	}
	if (r->replay_pct > 0 && w->recent_count > 0 &&
	    bb_rnd_below(&w->rng, 100) < r->replay_pct) {
		const struct bb_recent *p =
			&w->recent[bb_rnd_below(&w->rng, w->recent_count)];
		*op = p->op;
		ASSERT(op->kind == BB_OP_BOOK ||
		       op->kind == BB_OP_CANCEL); /* decisions only */
		s->replay = true;
		s->expect_id = p->booking_id;
		return;
	}
	unsigned dice = bb_rnd_below(&w->rng, 100);
	if (dice < sc->pct_read) {
		if (bb_rnd_below(&w->rng, 2) == 0) {
			op->kind = BB_OP_EVENT_GET;
			op->event_id =
				ds->event_ids[bb_rnd_below(&w->rng,
							   ds->event_count)];
		} else {
			uint32_t o = bb_rnd_below(&w->rng, ds->org_count);
			uint32_t hour = bb_rnd_below(&w->rng, 24);
			op->kind = BB_OP_EVENT_LIST;
			op->org_id = ds->org_ids[o];
			op->from_ms = ds->day_ms + (int64_t)hour * 3600000;
			op->to_ms = op->from_ms + 4 * 3600000;
		}
		op->key[0] = 0;
		return;
	}
	if (dice < sc->pct_read + sc->pct_cancel && w->own_count > 0) {
		op->kind = BB_OP_CANCEL;
		op->booking_id =
			sc->preload ? own_pop_oldest(w) : own_pop_random(w);
		return;
	}
	op->kind = BB_OP_BOOK;
	if (sc == &bb_scenarios[SC_OPENING]) {
		/* connection k takes customers k, k+N, ...; round j books event
		 * (customer + j) mod E: first every customer once, then again */
		uint64_t i = w->cursor++;
		uint64_t per_round = opening_share(r, w);
		if (per_round == 0)
			per_round = 1;
		uint64_t c = w->index + (i % per_round) * r->connections;
		ASSERT(c <
		       r->customer_count); /* bb_scenario_done stops a share of 0 */
		uint64_t round = i / per_round;
		op->event_id = ds->event_ids[(c + round) % ds->event_count];
		customer_name(r, c, op->customer);
	} else {
		op->event_id =
			ds->event_ids[bb_rnd_below(&w->rng, ds->event_count)];
		customer_name(r, bb_rnd_below(&w->rng, r->customer_count),
			      op->customer);
	}
}

/* The next acknowledgement kept for the check, zeroed; NULL once the
 * connection's share of --track-max is used (the check is then partial). */
static struct bb_ack *ack_next(struct bb_worker *w)
{
	ASSERT(w->ack_count <= w->ack_cap);
	if (w->ack_count == w->ack_cap) {
		w->ack_overflow = true;
		return NULL;
	}
	struct bb_ack *a = &w->acks[w->ack_count++];
	memset(a, 0, sizeof(*a));
	return a;
}

static void ack_add(struct bb_worker *w, const struct bb_slot *s,
		    const struct bb_result *res, int64_t now)
{
	struct bb_ack *a = ack_next(w);
	if (a == NULL)
		return;
	a->booking_id = res->booking_id;
	a->event_id = s->op.event_id;
	a->sent_ns = s->sent_ns;
	a->acked_ns = now;
	a->status = (uint8_t)res->status;
}

void bb_scenario_answer(struct bb_runner *r, struct bb_worker *w,
			struct bb_slot *s, struct bb_result *res, int64_t now)
{
	enum bb_code code = res->code;

	ASSERT((unsigned)code <
	       BB_CODE_COUNT); /* the drivers map every answer */
	ASSERT((unsigned)s->op.kind < BB_OP_KIND_COUNT);
	if (s->replay) {
		/* the same answer again; an error (429, transport) stays itself */
		if ((code == BB_OK && res->booking_id != s->expect_id) ||
		    (code != BB_OK && !bb_code_is_error(code)))
			code = BB_REPLAY_DIFFERS;
	} else if (code == BB_OK &&
		   (s->op.kind == BB_OP_BOOK || s->op.kind == BB_OP_CANCEL)) {
		if (s->op.kind == BB_OP_BOOK) {
			if (!s->preload)
				w->bookings_acked++;
			ack_add(w, s, res, now);
			own_push(w, res->booking_id);
		} else {
			w->cancels_acked++;
			if (res->promoted_id != 0)
				w->promotions++;
			/* marked in the acks at check time (by booking id) */
			struct bb_ack *a = ack_next(w);
			if (a != NULL) {
				a->booking_id = s->op.booking_id;
				a->cancelled = 1;
			}
		}
		struct bb_recent *p =
			w->recent_count < BB_REPLAY_MAX
				? &w->recent[w->recent_count++]
				: &w->recent[bb_rnd_below(&w->rng,
							  BB_REPLAY_MAX)];
		p->op = s->op;
		p->booking_id = s->op.kind == BB_OP_BOOK ? res->booking_id
							 : s->op.booking_id;
	}
	if (s->preload)
		return;

	uint64_t ns =
		now > s->intended_ns ? (uint64_t)(now - s->intended_ns) : 0;
	w->by_code[code]++;
	w->by_kind[s->op.kind]++;
	bb_hist_record(&w->hist, ns);
	bb_hist_record(&w->hist_kind[s->op.kind], ns);
	pthread_mutex_lock(&w->lock);
	bb_hist_record(&w->interval, ns);
	if (bb_code_is_error(code))
		w->interval_errors++;
	pthread_mutex_unlock(&w->lock);
}
