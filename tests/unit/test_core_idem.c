/*
 * test_core_idem.c: idempotency keys: a replay gets the first answer, a key
 * reused for another request is refused, refusals are not stored, retention;
 * and on the sharded runtime, keys that are global across shards, replays
 * and the keys' capacity.
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

/* ==== idempotency (state) =============================================== */

/* The ring of keys against a model: a list of (key, created, result) in
 * arrival order, the oldest dropped past the retention or the ceiling.
 * The ceiling (9000) is not a whole number of chunks (4096 entries), the
 * ring wraps several times, chunks come and go, and a tenth of the answers
 * are kept out of line (a promotion, an event patch). Every live key
 * replays its answer, a dropped one reads as new, and the dump lists the
 * model's entries in its order. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

struct ring_model {
	uint64_t hi, lo;
	core_time created;
	struct core_idem_result res;
};

struct ring_dump {
	const struct ring_model *m;
	uint32_t first, count, seen;
	bool ok;
};

static void ring_dump_rec(void *ctx, const struct core_rec *r)
{
	struct ring_dump *d = ctx;
	const struct ring_model *x;

	if (r->type != CORE_REC_IDEM)
		return;
	x = &d->m[d->first + d->seen++];
	if (d->seen > d->count || r->u.idem.hi != x->hi ||
	    r->u.idem.lo != x->lo || r->at != x->created ||
	    r->u.idem.result.op != x->res.op ||
	    r->u.idem.result.id != x->res.id ||
	    !view_eq(&r->u.idem.result.booking, &x->res.booking))
		d->ok = false;
}

static void ring_result(uint64_t *g, uint32_t n, struct core_idem_result *res)
{
	uint64_t x = rnd(g);

	memset(res, 0, sizeof(*res));
	res->lsn = n + 1;
	res->op = x % 3 ? CORE_OP_BOOK : CORE_OP_CANCEL;
	res->count = n;
	res->booking.id = (uint64_t)n << 8 | 1;
	res->booking.event_id = n % 97 + 1;
	/* customer ids of every length, up to the longest allowed */
	size_t len = 1 + n % CORE_CUSTOMER_ID_SIZE_MAX;
	for (size_t i = 0; i < len; i++)
		res->booking.customer_id[i] = (char)('a' + (n + i) % 26);
	res->booking.status = (uint8_t)(x >> 8) % 4;
	res->booking.position = (uint32_t)(x >> 16) % 5;
	res->booking.hold_expires_at = x % 7 ? 0 : T0 + n;
	res->booking.created_at = T0 + n;
	res->booking.late = x % 11 == 0;
	if (x % 10 == 1) {
		res->has_promoted = 1;
		res->promoted = res->booking;
		res->promoted.id += 2;
	} else if (x % 10 == 2) {
		res->op = CORE_OP_EVENT_PATCH;
		res->event.id = n;
		res->event.capacity = n % 50;
	}
}

CHECK_TEST_FN(test_idem_ring_model)
{
	enum { MAX = 9000, STEPS = 60000, RETAIN = 5000 };
	struct core_config cfg;
	core_state *st;
	struct ring_model *m = calloc(STEPS, sizeof(*m));
	uint32_t first = 0, count = 0; /* the model's live entries */
	uint64_t g = 42;

	cfg_small(&cfg, 1);
	cfg.idem_count_max = MAX;
	cfg.idem_retention_ms = RETAIN;
	st = core_state_new(&cfg);
	CHECK(st != NULL && m != NULL);
	if (!st || !m)
		return;
	for (uint32_t n = 0; n < STEPS; n++) {
		/* bursts and lulls: the ring is sometimes full, sometimes
		 * nearly empty */
		core_time now = T0 + n / 3 + (n / 20000) * 4 * RETAIN;
		struct core_idem k = { rnd(&g) | 1, rnd(&g), n + 7 };
		struct ring_model *x = &m[n];

		x->hi = k.hi;
		x->lo = k.lo;
		x->created = now;
		ring_result(&g, n, &x->res);
		core__idem_store(st, &k, now, &x->res);
		count++;
		while (count &&
		       (m[first].created + RETAIN <= now || count > MAX)) {
			first++;
			count--;
		}
		struct core_stats stats;
		core_state_stats(st, &stats);
		CHECK(stats.idem_count == count);
		/* a few keys, live and dropped, looked up */
		for (int t = 0; t < 4; t++) {
			uint32_t i = (uint32_t)(rnd(&g) % (n + 1));
			const struct ring_model *y = &m[i];
			struct core_idem q = { y->hi, y->lo, i + 7 };
			struct core_resp r;

			memset(&r, 0, sizeof(r));
			CHECK(core__idem_lookup(st, &q, now, &r) == CORE_OK);
			bool live = i >= first && i < first + count;
			CHECK(r.replayed == live);
			if (!live || !r.replayed)
				continue;
			CHECK(r.op == y->res.op && r.lsn == y->res.lsn &&
			      r.count == y->res.count &&
			      r.has_promoted == y->res.has_promoted);
			if (y->res.op == CORE_OP_EVENT_PATCH) {
				CHECK(r.event.id == y->res.event.id &&
				      r.event.capacity ==
					      y->res.event.capacity);
			} else {
				CHECK(view_eq(&r.booking, &y->res.booking));
				CHECK(r.booking.late == y->res.booking.late);
				CHECK(!y->res.has_promoted ||
				      view_eq(&r.promoted, &y->res.promoted));
			}
		}
		if (n % 7919 == 0 || n == STEPS - 1) {
			struct ring_dump d = { m, first, count, 0, true };
			core__state_dump(st, ring_dump_rec, &d);
			CHECK(d.ok && d.seen == count);
		}
	}
	core_state_free(st);
	free(m);
}

CHECK_TEST_FN(test_idem_replay_first_answer)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 5, 0, 0, "");
	struct core_resp first, r, again;
	struct core_req q;

	q = q_book(T0, ev, "alice", CORE_PAY_AUTO);
	with_key(&q, 1, 1, 0xb00c);
	CHECK(sdo(st, &q, &first) == CORE_OK);
	CHECK(!first.replayed);
	CHECK(first.booking.status == CORE_BOOKING_CONFIRMED);

	struct core_req c = q_cancel(T0 + 5, first.booking.id);
	with_key(&c, 2, 2, 0xca9c);
	CHECK(sdo(st, &c, &r) == CORE_OK);
	CHECK(r.booking.status == CORE_BOOKING_CANCELLED);

	/* The same key and request, after the state changed: the first answer. */
	q.now = T0 + 10;
	CHECK(sdo(st, &q, &again) == CORE_OK);
	CHECK(again.replayed);
	CHECK(again.op == CORE_OP_BOOK);
	CHECK(view_eq(&again.booking, &first.booking));
	CHECK(again.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(st_bk(st, first.booking.id).status == CORE_BOOKING_CANCELLED);
	CHECK(st_ev(st, ev).booked == 0); /* the replay booked nothing */
	c.now = T0 + 11;
	CHECK(sdo(st, &c, &again) == CORE_OK);
	CHECK(again.replayed);
	CHECK(again.op == CORE_OP_CANCEL);
	CHECK(view_eq(&again.booking, &r.booking));
	core_state_free(st);
}

CHECK_TEST_FN(test_idem_key_reused_for_another_request)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 5, 0, 0, "");
	uint64_t ev2 = st_event(st, 5, 0, 0, "");
	struct core_resp r;
	struct core_req q;

	q = q_book(T0, ev, "alice", CORE_PAY_AUTO);
	with_key(&q, 7, 9, 111);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_book(T0 + 1, ev2, "alice", CORE_PAY_AUTO);
	with_key(&q, 7, 9, 222);
	CHECK(sdo(st, &q, &r) == CORE_IDEM_MISMATCH);
	CHECK(!r.replayed);
	CHECK(st_ev(st, ev2).booked == 0);
	/* Another op with the key: refused as well. */
	q = q_patch(T0 + 2, ev, 9, false);
	with_key(&q, 7, 9, 333);
	CHECK(sdo(st, &q, &r) == CORE_IDEM_MISMATCH);
	CHECK(st_ev(st, ev).capacity == 5);
	/* The same key halves in another order are another key. */
	q = q_book(T0 + 3, ev2, "alice", CORE_PAY_AUTO);
	with_key(&q, 9, 7, 222);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(!r.replayed);
	core_state_free(st);
}

CHECK_TEST_FN(test_idem_refusal_not_stored)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 0, 0, "");
	struct core_resp a, r;
	struct core_req q, c;

	a = st_book(st, T0, ev, "alice", CORE_PAY_AUTO);
	CHECK(a.code == CORE_OK);
	q = q_book(T0 + 1, ev, "bob", CORE_PAY_AUTO);
	with_key(&q, 5, 5, 555);
	CHECK(sdo(st, &q, &r) == CORE_EVENT_FULL);
	q.now = T0 + 2; /* retried while still full: decided again, refused */
	CHECK(sdo(st, &q, &r) == CORE_EVENT_FULL);
	CHECK(!r.replayed);
	c = q_cancel(T0 + 3, a.booking.id);
	CHECK(sdo(st, &c, &r) == CORE_OK);
	q.now = T0 + 4; /* a seat is free now: decided afresh */
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(!r.replayed);
	CHECK(r.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(r.booking.created_at == T0 + 4);
	uint64_t id = r.booking.id;
	q.now = T0 + 5; /* and now stored */
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.replayed && r.booking.id == id);
	CHECK(st_ev(st, ev).booked == 1);
	core_state_free(st);
}

CHECK_TEST_FN(test_idem_retention)
{
	struct core_config cfg;
	const core_time retention = 60 * MIN_MS;
	core_state *st;
	struct core_resp first, r;
	struct core_req q, c;

	cfg_small(&cfg, 1);
	cfg.idem_retention_ms = retention;
	st = core_state_new(&cfg);
	CHECK(st != NULL);
	st_catalog(st, "Europe/Berlin");
	uint64_t ev = st_event(st, 5, 0, 0, "");

	q = q_book(T0, ev, "alice", CORE_PAY_AUTO);
	with_key(&q, 3, 4, 34);
	CHECK(sdo(st, &q, &first) == CORE_OK);
	c = q_cancel(T0 + 1, first.booking.id);
	CHECK(sdo(st, &c, &r) == CORE_OK);

	q.now = T0 + retention - 1; /* still kept */
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.replayed && view_eq(&r.booking, &first.booking));
	q.now = T0 + retention; /* forgotten: a new decision, a new booking */
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(!r.replayed);
	CHECK(r.booking.id != first.booking.id);
	CHECK((r.booking.id & 0xffffff) == 2);
	CHECK(r.booking.created_at == T0 + retention);
	CHECK(st_ev(st, ev).booked == 1);
	/* The new decision is stored under the key in its turn. */
	q.now = T0 + retention + 1;
	struct core_resp again;
	CHECK(sdo(st, &q, &again) == CORE_OK);
	CHECK(again.replayed && view_eq(&again.booking, &r.booking));
	core_state_free(st);
}

/* A key (hi, lo) whose home shard is `home`. */
static void key_for_home(unsigned home, unsigned shards, uint64_t salt,
			 uint64_t *hi, uint64_t *lo)
{
	*hi = UINT64_C(0x5eed000000000000) + salt * 1000;
	for (*lo = 1; (*hi ^ *lo) % shards != home; (*lo)++)
		;
}

CHECK_TEST_FN(test_rt_idem_keys_global)
{
	static struct core_event_view all[64];

	for (unsigned shards = 2; shards <= 3; shards++) {
		struct core_config cfg;
		struct rt rt;
		uint64_t e1, e2 = 0;
		uint32_t n;

		cfg_small(&cfg, shards);
		rt_open(&rt, &cfg);
		rt_catalog(rt.p);
		n = rt_daily(rt.p, D(2026, 3, 3), D(2026, 3, 12), all, 64);
		CHECK(n == 10);
		e1 = all[0].id;
		for (uint32_t i = 1; i < n && !e2; i++)
			if (core_shard_of_event(rt.c, all[i].id) !=
			    core_shard_of_event(rt.c, e1))
				e2 = all[i].id;
		CHECK(e2 != 0);

		for (unsigned home = 0; home < shards; home++) {
			uint64_t hi, lo;
			char cust[24];
			struct core_resp r1, r;
			struct core_req q;

			key_for_home(home, shards, home + 1, &hi, &lo);
			snprintf(cust, sizeof(cust), "k%u", home);
			q = q_book(T0, e1, cust, CORE_PAY_AUTO);
			with_key(&q, hi, lo, 0xf1);
			r1 = rcall(rt.p, &q);
			CHECK(r1.code == CORE_OK && !r1.replayed);
			/* The same key on an event of another shard. */
			q = q_book(T0 + 1, e2, cust, CORE_PAY_AUTO);
			with_key(&q, hi, lo, 0xf2);
			r = rcall(rt.p, &q);
			CHECK(r.code == CORE_IDEM_MISMATCH);
			CHECK(!r.replayed);
			/* ... and for a cancel. */
			q = q_cancel(T0 + 2, r1.booking.id);
			with_key(&q, hi, lo, 0xf3);
			CHECK(rcall(rt.p, &q).code == CORE_IDEM_MISMATCH);
			CHECK(rt_bk(rt.p, T0 + 2, r1.booking.id).status ==
			      CORE_BOOKING_CONFIRMED);
			/* The first request again: its answer, from any shard. */
			q = q_book(T0 + 3, e1, cust, CORE_PAY_AUTO);
			with_key(&q, hi, lo, 0xf1);
			r = rcall(rt.p, &q);
			CHECK(r.code == CORE_OK && r.replayed);
			CHECK(view_eq(&r.booking, &r1.booking));
			/* Without a key the customer may book e2: the refused
			 * request booked nothing there. */
			q = q_book(T0 + 4, e2, cust, CORE_PAY_AUTO);
			CHECK(rcall(rt.p, &q).code == CORE_OK);
		}
		CHECK(rt_ev(rt.p, T0 + 5, e1).booked == shards);
		CHECK(rt_ev(rt.p, T0 + 5, e2).booked == shards);
		core_close(rt.c);
	}
}

/* A replay is the first answer: the same view, and not released before the
 * first decision is durable. */
CHECK_TEST_FN(test_rt_idem_replay_answer)
{
	struct core_config cfg;
	struct rt rt;
	struct core_resp first, r;
	struct core_req q;

	cfg_small(&cfg, 2);
	rt_open_logged(&rt, &cfg);
	uint64_t ev = rt_event(rt.p, 5, 2, 0, "");

	q = q_book(T0, ev, "alice", CORE_PAY_AUTO);
	with_key(&q, 21, 22, 23);
	first = rcall(rt.p, &q);
	CHECK(first.code == CORE_OK && !first.replayed);
	CHECK(first.lsn > 0);
	q.now = T0 + 1;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.replayed);
	CHECK(view_eq(&r.booking, &first.booking));
	/* Regression: a replay answered with lsn 0, so a retry that arrives
	 * before the first decision's record is durable may be answered at
	 * once (docs/contract.md: a reply leaves only after its record is on disk). The
	 * stored result has the lsn (home_finish: res.lsn), but
	 * core__idem_lookup (core/state.c) never copies it into resp->lsn. */
	CHECK(r.lsn == first.lsn);

	/* EVENT_PATCH answers with the event; so must its replay. */
	q = q_patch(T0 + 2, ev, 7, false);
	with_key(&q, 31, 32, 33);
	first = rcall(rt.p, &q);
	CHECK(first.code == CORE_OK && !first.replayed);
	CHECK(first.event.id == ev && first.event.capacity == 7);
	q.now = T0 + 3;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.replayed);
	/* Regression: the replay of a PATCH did not carry the first answer's
	 * event: the stored first answer (core/idem.c) kept only booking
	 * views, and as resp.booking shares a union with resp.event,
	 * core__idem_result stores the first ~100 bytes of the event view as
	 * a "booking"; the replay gets back id, series, org, location,
	 * instructor and the start of the title, but capacity 0, start_at 0,
	 * status 0, version 0. So PATCH /v1/events/{id} cannot replay its
	 * first body. */
	CHECK(r.event.id == ev);
	CHECK(r.event.capacity == 7);
	CHECK(r.event.start_at == first.event.start_at);
	CHECK(event_eq(&r.event, &first.event));
	core_close(rt.c);
	elog_reset();
}

/* idem_count_max keys per shard are kept within the retention. */
CHECK_TEST_FN(test_rt_idem_capacity)
{
	static struct core_event_view all[64];
	struct core_config cfg;
	struct core_series_spec spec;
	struct rt rt;
	uint64_t ev;
	unsigned target;

	cfg_small(&cfg, 2);
	cfg.idem_count_max = 4;
	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", WED, 18 * 60, D(2026, 3, 4),
		  D(2026, 3, 4));
	spec.capacity = 20;
	rt_series(rt.p, T0, &spec);
	CHECK(rt_all_events(rt.p, T0, all, 64) == 1);
	ev = all[0].id;
	target = core_shard_of_event(rt.c, ev);

	/* Four keys homed on the other shard, then four on the event's own
	 * shard; each time the first of the four must still replay. */
	for (int round = 0; round < 2; round++) {
		unsigned home = round == 0 ? 1 - target : target;
		struct core_resp first, r;
		struct core_req q;
		uint64_t hi[4], lo[4];

		for (int i = 0; i < 4; i++) {
			char cust[24];
			snprintf(cust, sizeof(cust), "r%d-%d", round, i);
			key_for_home(home, 2, (uint64_t)(10 * round + i + 1),
				     &hi[i], &lo[i]);
			q = q_book(T0 + i, ev, cust, CORE_PAY_AUTO);
			with_key(&q, hi[i], lo[i], 0xabc);
			r = rcall(rt.p, &q);
			CHECK(r.code == CORE_OK && !r.replayed);
			if (i == 0)
				first = r;
		}
		char cust0[24];
		snprintf(cust0, sizeof(cust0), "r%d-0", round);
		q = q_book(T0 + 10, ev, cust0, CORE_PAY_AUTO);
		with_key(&q, hi[0], lo[0], 0xabc);
		r = rcall(rt.p, &q);
		if (round == 0) { /* keys homed on the other shard: kept */
			CHECK(r.code == CORE_OK);
			CHECK(r.replayed);
			CHECK(view_eq(&r.booking, &first.booking));
			continue;
		}
		/* Regression (home == target): a keyed decision was
		 * stored twice at its home when the home is also the target
		 * shard: once when its entry's REC_IDEM record is applied
		 * (apply_rec in core/apply.c) and again by home_finish
		 * (core/worker.c). Each key then takes two of the shard's
		 * idem_count_max ring slots, so keys are dropped early: here
		 * the first of 4 keys (idem_count_max 4) is already forgotten
		 * and the retry is decided afresh -> already_booked. */
		CHECK(r.code == CORE_OK);
		CHECK(r.replayed);
		CHECK(view_eq(&r.booking, &first.booking));
	}
	core_close(rt.c);
}

int main(int argc, char **argv)
{
	return core_test_main("core_idem", argc, argv);
}
