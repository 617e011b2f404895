/*
 * test_core_log.c: records: the state is the fold of its entries (replaying
 * them into a fresh state gives the same state), a corrupt entry is refused
 * without a change, and the runtime rebuilt from its log answers as before.
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"
#include "state.h" /* core__state_dump */

/* ==== records: state = fold(entries) ==================================== */

static void snapshot_bookings(const core_state *st, const uint64_t *ids,
			      size_t n, struct core_booking_view *out)
{
	for (size_t i = 0; i < n; i++)
		CHECK(core_state_booking(st, ids[i], &out[i]) == CORE_OK);
}

CHECK_TEST_FN(test_fold_entries)
{
	core_state *st, *re;
	struct core_series_spec spec;
	struct core_resp r, first;
	struct core_req q;
	uint64_t ids[64];
	size_t n = 0;

	elog_reset();
	g_log_on = true;
	st = st_setup();
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", MON | WED | FRI, 18 * 60,
		  D(2026, 3, 2), D(2026, 3, 20));
	spec.capacity = 2;
	spec.waitlist_capacity = 3;
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	spec.price_cents = 900;
	strcpy(spec.currency, "eur");
	strcpy(spec.title, "Paid flow");
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(st_generate(st, T0, 0, NO_DATE) == 18); /* 9 dates each */

	/* Free event 1 (series 1: ids 1-9), paid event 10 (series 2: 10-18),
	 * both on Monday 03-02. */
	for (int i = 0; i < 5; i++) {
		char cust[24];
		snprintf(cust, sizeof(cust), "cust-%d", i);
		q = q_book(T0 + i, 1, cust, CORE_PAY_AUTO);
		with_key(&q, 100, (uint64_t)i + 1, 1000 + (uint64_t)i);
		CHECK(sdo(st, &q, &r) == CORE_OK);
		ids[n++] = r.booking.id;
		if (i == 0)
			first = r;
		r = st_book(st, T0 + i, 10, cust, CORE_PAY_AUTO);
		CHECK(r.code == CORE_OK);
		ids[n++] = r.booking.id;
	}
	q = q_cancel(T0 + 10, ids[0]);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.has_promoted);
	q = q_pay(T0 + 11, ids[1], true, 900, "eur");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_pay(T0 + 12, ids[3], true, 100, "eur"); /* flagged */
	CHECK(sdo(st, &q, &r) == CORE_PAYMENT_MISMATCH);
	q = q_pay(T0 + 13, ids[3], false, 900, "eur");
	CHECK(sdo(st, &q, &r) == CORE_OK && r.has_promoted);
	q = q_patch(T0 + 14, 1, 4, false);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.count == 2);
	q = q_patch(T0 + 15, 2, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	r = st_book(st, T0 + 16, 3, "late", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK);
	ids[n++] = r.booking.id;
	g_log_on = false;

	/* Replay every entry into a fresh state. */
	struct core_config cfg;
	cfg_small(&cfg, 1);
	re = core_state_new(&cfg);
	CHECK(re != NULL);
	CHECK(elog_replay(re) == 0);

	for (uint64_t id = 1; id <= 18; id++) {
		struct core_event_view a = st_ev(st, id), b = st_ev(re, id);
		CHECK(event_eq(&a, &b));
	}
	struct core_booking_view a[64], b[64];
	snapshot_bookings(st, ids, n, a);
	snapshot_bookings(re, ids, n, b);
	for (size_t i = 0; i < n; i++)
		CHECK(view_eq(&a[i], &b[i]));
	struct core_stats sa, sb;
	core_state_stats(st, &sa);
	core_state_stats(re, &sb);
	CHECK(sa.event_count == sb.event_count && sa.event_count == 18);
	CHECK(sa.booking_count == sb.booking_count && sa.booking_count == n);
	CHECK(sa.customer_count == sb.customer_count);
	CHECK(sa.idem_count == sb.idem_count && sa.idem_count == 5);
	CHECK(sa.hold_count == sb.hold_count);
	/* The live state applied its own decisions from the records it built
	 * (state_int.h), the replay decoded them: the same state, record for
	 * record, keys and their answers included. */
	static struct dump da, db;
	dump(st, &da);
	dump(re, &db);
	CHECK(da.w.size == db.w.size && da.w.size > 0);
	CHECK(memcmp(da.buf, db.buf, da.w.size) == 0);
	/* Keys came back with the entries. */
	q = q_book(T0 + 20, 1, "cust-0", CORE_PAY_AUTO);
	with_key(&q, 100, 1, 1000);
	CHECK(sdo(re, &q, &r) == CORE_OK);
	CHECK(r.replayed && view_eq(&r.booking, &first.booking));
	core_state_free(re);
	core_state_free(st);
	elog_reset();
}

/* Everything a corrupt entry could touch, to compare before and after. */
struct picture {
	struct core_event_view ev;
	struct core_booking_view b[8];
	struct core_stats stats;
	size_t n;
};

static void picture_take(const core_state *st, uint64_t ev, const uint64_t *ids,
			 size_t n, struct picture *p)
{
	memset(p, 0, sizeof(*p));
	CHECK(core_state_event(st, ev, &p->ev) == CORE_OK);
	for (size_t i = 0; i < n; i++)
		CHECK(core_state_booking(st, ids[i], &p->b[i]) == CORE_OK);
	core_state_stats(st, &p->stats);
	p->n = n;
}

static bool picture_eq(const struct picture *a, const struct picture *b)
{
	if (!event_eq(&a->ev, &b->ev) || a->n != b->n ||
	    a->stats.event_count != b->stats.event_count ||
	    a->stats.booking_count != b->stats.booking_count ||
	    a->stats.customer_count != b->stats.customer_count ||
	    a->stats.idem_count != b->stats.idem_count ||
	    a->stats.hold_count != b->stats.hold_count)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!view_eq(&a->b[i], &b->b[i]))
			return false;
	return true;
}

CHECK_TEST_FN(test_corrupt_entry_refused)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 3, 1500, "eur");
	uint64_t ids[4];
	struct picture before, after;
	struct core_resp r;
	struct core_req q;
	const void *entry;
	size_t size;
	static uint8_t buf[70000], bad[70000];
	size_t starts[16], rec_count = 0;

	st_book_each(st, ev, "k", 4, ids);
	/* A decision with several records: cancel a hold (set + notify),
	 * promote the head (set + notify), and its key. */
	q = q_cancel(T0 + 10, ids[0]);
	with_key(&q, 11, 12, 13);
	CHECK(core_state_decide(st, &q, &r, &entry, &size) == CORE_OK);
	CHECK(r.has_promoted);
	CHECK(size > 0 && size <= sizeof(buf));
	if (size == 0 || size > sizeof(buf))
		goto out;
	memcpy(buf, entry, size);
	picture_take(st, ev, ids, 4, &before);

	/* Record starts: u8 type | u8 version | u16 body size | body. */
	for (size_t pos = 0; pos + 4 <= size && rec_count < 16;) {
		starts[rec_count++] = pos;
		pos += 4 + (size_t)(buf[pos + 2] | buf[pos + 3] << 8);
		CHECK(pos <= size);
	}
	CHECK(rec_count >= 5);

	/* Every prefix that cuts a record is refused and changes nothing.
	 * (A prefix ending exactly on a record boundary is itself a
	 * well-formed, shorter entry: the record format carries no entry
	 * length, so only the log's framing and checksum can tell; those
	 * are skipped here, see the report.) */
	for (size_t len = 1; len < size; len++) {
		bool boundary = false;
		for (size_t k = 0; k < rec_count; k++)
			boundary |= starts[k] == len;
		if (boundary)
			continue;
		CHECK(core_state_apply(st, buf, len) == -EINVAL);
	}
	picture_take(st, ev, ids, 4, &after);
	CHECK(picture_eq(&before, &after));
	/* The empty entry holds no record: nothing to apply. */
	int rc0 = core_state_apply(st, buf, 0);
	CHECK(rc0 == 0 || rc0 == -EINVAL);
	/* Longer than any entry may be. */
	CHECK(core_state_apply(st, bad, sizeof(bad)) == -EINVAL);

	/* A flipped type byte (or version, or body size) in any record: the
	 * whole entry is refused, also the records before it. */
	static const uint8_t type_flips[] = { 0x80, 0x40, 0x20, 0x10 };
	for (size_t k = 0; k < rec_count; k++) {
		size_t at = starts[k];
		for (size_t f = 0; f < sizeof(type_flips); f++) {
			memcpy(bad, buf, size);
			bad[at] ^= type_flips[f];
			CHECK(core_state_apply(st, bad, size) == -EINVAL);
		}
		memcpy(bad, buf, size);
		bad[at] = 0;
		CHECK(core_state_apply(st, bad, size) == -EINVAL);
		memcpy(bad, buf, size);
		bad[at] = 0xff;
		CHECK(core_state_apply(st, bad, size) == -EINVAL);
		memcpy(bad, buf, size);
		bad[at + 1] ^= 0x01; /* version */
		CHECK(core_state_apply(st, bad, size) == -EINVAL);
		memcpy(bad, buf, size);
		bad[at + 2]++; /* body size one too long */
		CHECK(core_state_apply(st, bad, size) == -EINVAL);
	}
	/* Trailing garbage after the last record. */
	memcpy(bad, buf, size);
	bad[size] = 7;
	CHECK(core_state_apply(st, bad, size + 1) == -EINVAL);
	picture_take(st, ev, ids, 4, &after);
	CHECK(picture_eq(&before, &after));

	/* The real entry still applies. */
	CHECK(core_state_apply(st, buf, size) == 0);
	CHECK(st_bk(st, ids[0]).status == CORE_BOOKING_CANCELLED);
	CHECK(st_bk(st, ids[1]).status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(st_bk(st, ids[2]).position == 1);
out:
	core_state_free(st);
}

/* Entries from the log hook, applied to a fresh core_state, rebuild the
 * same views, and replays there give the first answers. */
CHECK_TEST_FN(test_rt_rebuild_from_log)
{
	static struct core_event_view live[256];
	struct core_config cfg;
	struct core_series_spec spec;
	struct rt rt;
	struct core_resp r, first_book, first_cancel;
	struct core_req q, qbook, qcancel;
	uint64_t ids[32];
	struct core_booking_view live_b[32];
	size_t n = 0;
	uint32_t ne;

	cfg_small(&cfg, 2);
	rt_open_logged(&rt, &cfg);
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 3), D(2026, 3, 8));
	spec.capacity = 1;
	spec.waitlist_capacity = 2;
	rt_series(rt.p, T0, &spec);
	spec.price_cents = 2500;
	strcpy(spec.currency, "chf");
	rt_series(rt.p, T0, &spec);
	ne = rt_all_events(rt.p, T0, live, 256);
	CHECK(ne == 12);

	for (uint32_t e = 0; e < ne; e++)
		for (int i = 0; i < 2; i++) {
			char cust[24];
			snprintf(cust, sizeof(cust), "u%d", i);
			q = q_book(T0 + e * 10 + i, live[e].id, cust,
				   CORE_PAY_AUTO);
			with_key(&q, 500 + e, (uint64_t)i + 1, 77);
			r = rcall(rt.p, &q);
			CHECK(r.code == CORE_OK);
			ids[n++] = r.booking.id;
			if (e == 0 && i == 0) {
				qbook = q;
				first_book = r;
			}
		}
	qcancel = q_cancel(T0 + 500, ids[0]);
	with_key(&qcancel, 900, 1, 88);
	first_cancel = rcall(rt.p, &qcancel);
	CHECK(first_cancel.code == CORE_OK && first_cancel.has_promoted);
	q = q_pay(T0 + 501, ids[12], true, 2500, "chf"); /* event 7's hold */
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	q = q_patch(T0 + 502, live[2].id, 3, false);
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	q = q_patch(T0 + 503, live[3].id, -1, true);
	CHECK(rcall(rt.p, &q).code == CORE_OK);

	ne = rt_all_events(rt.p, T0 + 504, live, 256);
	for (size_t i = 0; i < n; i++)
		live_b[i] = rt_bk(rt.p, T0 + 504, ids[i]);
	core_close(rt.c);

	core_state *re = st_new();
	CHECK(elog_replay(re) == 0);
	for (uint32_t e = 0; e < ne; e++) {
		struct core_event_view v = st_ev(re, live[e].id);
		CHECK(event_eq(&v, &live[e]));
	}
	for (size_t i = 0; i < n; i++) {
		struct core_booking_view v = st_bk(re, ids[i]);
		CHECK(view_eq(&v, &live_b[i]));
	}
	/* The replays, decided by the rebuilt state. */
	qbook.now = T0 + 600;
	CHECK(sdo(re, &qbook, &r) == CORE_OK);
	CHECK(r.replayed);
	CHECK(view_eq(&r.booking, &first_book.booking));
	CHECK(r.booking.status == CORE_BOOKING_CONFIRMED);
	qcancel.now = T0 + 601;
	CHECK(sdo(re, &qcancel, &r) == CORE_OK);
	CHECK(r.replayed && r.has_promoted);
	CHECK(view_eq(&r.booking, &first_cancel.booking));
	CHECK(view_eq(&r.promoted, &first_cancel.promoted));
	qbook.idem.fingerprint ^= 1;
	CHECK(sdo(re, &qbook, &r) == CORE_IDEM_MISMATCH);
	core_state_free(re);
	elog_reset();
}

int main(int argc, char **argv)
{
	return core_test_main("core_log", argc, argv);
}
