/*
 * test_repl_fold.c: the replicator's fold (replicator/fold.h) without
 * PostgreSQL. Entries are made by the core's own state machine
 * (core_state_decide, then applied), folded into a batch, and the batch's
 * COPY text checked exactly, row by row: the catalogue, events, bookings
 * (new, moved, cancelled, promoted from the waitlist), payments (applied
 * and flagged), notifications, implied customers, the streams' shares and
 * what a stream already has, an archive (nothing to write); records that
 * cannot fit stop the batch; an import's entry (BOOKING_IMPORT with its
 * own times, LEGACY rows). A
 * seeded random run checks the folded final statuses and a new event's
 * counters against the core's own state (the seed is printed; pass one
 * as argv[1] to repeat a run).
 */
#include "check.h"
#include "fold.h"
#include "import.h"
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_MS INT64_C(60000)
#define T0 INT64_C(1772438400000)	   /* Monday 2026-03-02 08:00Z */
#define NOW_MS (T0 + 7 * 24 * 60 * MIN_MS) /* the batch's wall clock */
#define HOLD_MS (10 * MIN_MS)
#define WED 0x04
/* 2026-03-04 18:00 Berlin (UTC+1) */
#define EV_START INT64_C(1772643600000)
#define MONTH_2026_03 ((2026 - 1970) * 12 + 2)

/* ---- a core state making entries, a batch folding them ---- */

struct fx {
	core_state *st;
	struct starts starts;
	struct custset customers;
	uint8_t months[REPL_MONTH_COUNT / 8];
	struct batch b;
	uint64_t lsn; /* of the last entry */
	bool fold;    /* entries go to the batch (else only to the state) */
};

static void fx_init(struct fx *f, uint32_t parts)
{
	struct core_config cfg;
	struct fold_env env;

	memset(f, 0, sizeof(*f));
	core_config_default(&cfg);
	cfg.shard_count = 1;
	cfg.port_count = 1;
	cfg.event_count_max = 4096;
	cfg.booking_count_max = 1u << 16;
	cfg.customer_count_max = 4096;
	cfg.idem_count_max = 4096;
	cfg.ring_size = 64;
	cfg.hold_ms = HOLD_MS;
	f->st = core_state_new(&cfg);
	CHECK(f->st != NULL);
	if (!f->st)
		abort();
	pthread_mutex_init(&f->starts.lock, NULL);
	f->customers.slots = calloc(1024, sizeof(uint64_t));
	f->customers.mask = 1023;
	env = (struct fold_env){ .log_id = "node1/lane0",
				 .starts = &f->starts,
				 .customers = &f->customers,
				 .months = f->months };
	CHECK(repl__batch_init(&f->b, 1000, &env) == 0);
	f->fold = true;
	f->b.parts = parts;
}

/* A new batch; stream k has everything up to from[k] (NULL: nothing). */
static void fx_batch(struct fx *f, const uint64_t *from)
{
	uint32_t parts = f->b.parts;

	repl__batch_reset(&f->b, NOW_MS);
	f->b.parts = parts;
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		f->b.part[k].from =
			k < parts ? (from ? from[k] : 0) : UINT64_MAX;
}

static void fx_free(struct fx *f)
{
	repl__batch_free(&f->b);
	core_state_free(f->st);
	free(f->customers.slots);
	free(f->starts.ms);
	pthread_mutex_destroy(&f->starts.lock);
}

/* Decide, apply to the state, fold into the batch at the next LSN. */
static enum core_code fx_do(struct fx *f, const struct core_req *q,
			    struct core_resp *r)
{
	const void *entry = NULL;
	size_t size = 0;
	enum core_code code = core_state_decide(f->st, q, r, &entry, &size);

	if (size == 0)
		return code;
	CHECK(core_state_apply(f->st, entry, size) == 0);
	f->lsn++;
	if (f->fold)
		CHECK(repl__batch_add_entry(&f->b, f->lsn, entry, size) == 0);
	return code;
}

static struct core_req q_new(enum core_op op, core_time now)
{
	struct core_req q;

	memset(&q, 0, sizeof(q));
	q.op = op;
	q.now = now;
	return q;
}

static uint64_t fx_named(struct fx *f, enum core_op op, uint64_t org_id,
			 const char *name, const char *tz)
{
	struct core_req q = q_new(op, T0);
	struct core_resp r;

	q.u.cat.org_id = org_id;
	snprintf(q.u.cat.name, sizeof(q.u.cat.name), "%s", name);
	snprintf(q.u.cat.timezone, sizeof(q.u.cat.timezone), "%s", tz);
	CHECK(fx_do(f, &q, &r) == CORE_OK);
	return r.id;
}

/* Org 1 (Berlin), location 1, instructor 1. */
static void fx_catalogue(struct fx *f)
{
	CHECK(fx_named(f, CORE_OP_ORG_CREATE, 0, "Studio", "Europe/Berlin") ==
	      1);
	CHECK(fx_named(f, CORE_OP_LOCATION_CREATE, 1, "Hall", "") == 1);
	CHECK(fx_named(f, CORE_OP_INSTRUCTOR_CREATE, 1, "Ana", "") == 1);
}

/* One class on Wednesday 2026-03-04 18:00 Berlin (series and generation);
 * the new event's id. */
static uint64_t fx_event(struct fx *f, uint32_t capacity, uint32_t waitlist,
			 uint32_t price, const char *currency)
{
	struct core_series_spec spec;
	struct core_req q = q_new(CORE_OP_SERIES_CREATE, T0);
	struct core_resp r;
	struct core_stats s;

	memset(&spec, 0, sizeof(spec));
	spec.org_id = spec.location_id = spec.instructor_id = 1;
	snprintf(spec.title, sizeof(spec.title), "Yoga");
	spec.capacity = capacity;
	spec.waitlist_capacity = waitlist;
	spec.price_cents = price;
	snprintf(spec.currency, sizeof(spec.currency), "%s", currency);
	snprintf(spec.timezone, sizeof(spec.timezone), "Europe/Berlin");
	spec.weekday_mask = WED;
	spec.start_minute = 18 * 60;
	spec.duration_min = 60;
	spec.first_date = spec.last_date = (struct core_date){ 2026, 3, 4 };
	q.u.series = &spec;
	CHECK(fx_do(f, &q, &r) == CORE_OK);
	q = q_new(CORE_OP_GENERATE, T0);
	q.u.generate.series_id = r.id;
	CHECK(fx_do(f, &q, &r) == CORE_OK);
	CHECK(r.count == 1);
	core_state_stats(f->st, &s);
	return s.event_count; /* ids are dense */
}

static struct core_resp fx_book(struct fx *f, core_time now, uint64_t ev,
				const char *cust, enum core_payment pay)
{
	struct core_req q = q_new(CORE_OP_BOOK, now);
	struct core_resp r;

	q.event_id = ev;
	snprintf(q.customer_id, sizeof(q.customer_id), "%s", cust);
	q.u.book.payment = pay;
	fx_do(f, &q, &r);
	return r;
}

static enum core_code fx_cancel(struct fx *f, core_time now, uint64_t id)
{
	struct core_req q = q_new(CORE_OP_CANCEL, now);
	struct core_resp r;

	q.booking_id = id;
	return fx_do(f, &q, &r);
}

static enum core_code fx_pay(struct fx *f, core_time now, uint64_t id, bool ok,
			     uint64_t amount, const char *currency,
			     uint64_t ref)
{
	struct core_req q = q_new(CORE_OP_PAY, now);
	struct core_resp r;

	q.booking_id = id;
	q.u.pay.succeeded = ok;
	q.u.pay.amount_cents = amount;
	snprintf(q.u.pay.currency, sizeof(q.u.pay.currency), "%s", currency);
	q.u.pay.payment_ref = ref;
	return fx_do(f, &q, &r);
}

static enum core_code fx_patch(struct fx *f, core_time now, uint64_t ev,
			       int64_t capacity, bool cancel)
{
	struct core_req q = q_new(CORE_OP_EVENT_PATCH, now);
	struct core_resp r;

	q.event_id = ev;
	q.u.patch.capacity = capacity;
	q.u.patch.cancel = cancel;
	return fx_do(f, &q, &r);
}

/* ---- the staged text ---- */

/* Stage s of part k as a string (static buffer, valid until the next). */
static const char *staged(const struct batch *b, uint32_t k, enum stage s)
{
	static char text[1 << 16];
	const struct buf *o = &b->part[k].st[s];
	size_t n = o->size < sizeof(text) - 1 ? o->size : sizeof(text) - 1;

	memcpy(text, o->data, n);
	text[n] = '\0';
	return text;
}

#define CHECK_STAGED(b, k, s, want)                                            \
	do {                                                                   \
		const char *got_ = staged((b), (k), (s));                      \
		CHECK(strcmp(got_, (want)) == 0);                              \
		if (strcmp(got_, (want)) != 0)                                 \
			fprintf(stderr,                                        \
				"  stage %s of part %u:\n  got:\n%s"           \
				"  want:\n%s",                                 \
				#s, (unsigned)(k), got_, (want));              \
	} while (0)

/* fx_init, a first batch, and the catalogue in it. */
static void fx_start(struct fx *f, uint32_t parts)
{
	fx_init(f, parts);
	fx_batch(f, NULL);
	fx_catalogue(f);
}

/* ---- the catalogue, a new event, its bookings in one batch ---- */

static void test_one_batch(void)
{
	struct fx f;
	uint64_t ev, a, b, c;
	struct core_resp r;
	char want[4096];

	printf("one batch\n");
	fx_start(&f, 1);
	ev = fx_event(&f, 2, 2, 0, "");
	CHECK(ev == 1);
	CHECK(f.lsn == 5);
	/* seq: the record's place in the batch (ORG 1, LOCATION 2, ...) */
	CHECK_STAGED(&f.b, 0, ST_CAT,
		     "1\t1\t1\t0\tStudio\tEurope/Berlin\t1772438400000\n"
		     "2\t2\t1\t1\tHall\t\t1772438400000\n"
		     "3\t3\t1\t1\tAna\t\t1772438400000\n");
	CHECK_STAGED(&f.b, 0, ST_SERIES,
		     "4\t1\t1\t1\t1\tYoga\t2\t2\t0\t\tEurope/Berlin\t4\t18:00\t60"
		     "\t2026-03-04\t2026-03-04\t{}\t1772438400000\n");
	/* the generation's entry: EVENT_CREATE (seq 5), then the mark */
	CHECK_STAGED(&f.b, 0, ST_GEN, "6\t1\t2026-03-04\t1772438400000\n");
	CHECK(f.b.part[0].rows[ST_CAT] == 3);
	/* the event's month has no known partition: asked for */
	CHECK(f.b.months && f.b.month_lo == MONTH_2026_03 &&
	      f.b.month_hi == MONTH_2026_03);
	CHECK(repl__starts_get(&f.starts, ev) == EV_START);

	r = fx_book(&f, T0 + 1000, ev, "alice", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK);
	a = r.booking.id;
	CHECK(a == (ev << 24 | 1));
	r = fx_book(&f, T0 + 2000, ev, "bob", CORE_PAY_AUTO);
	b = r.booking.id;
	r = fx_book(&f, T0 + 3000, ev, "carol", CORE_PAY_AUTO);
	c = r.booking.id;
	CHECK(r.booking.status == CORE_BOOKING_WAITLISTED);
	/* alice cancels: carol is promoted (BOOKING_SET + NOTIFY promoted) */
	CHECK(fx_cancel(&f, T0 + 4000, a) == CORE_OK);
	CHECK(f.lsn == 9);
	CHECK(f.b.entries == 9);
	CHECK(f.b.first_lsn == 1 && f.b.last_lsn == 9);

	repl__batch_finish(&f.b);
	snprintf(want, sizeof(want),
		 "%" PRIu64
		 "\t1\t1\talice\tcancelled\t0\t1772438401000\t1772438404000\t\\N\t\\N\t\\N\tf\n"
		 "%" PRIu64
		 "\t1\t1\tbob\tconfirmed\t0\t1772438402000\t1772438402000\t\\N\t\\N\t\\N\tf\n"
		 "%" PRIu64
		 "\t1\t1\tcarol\tconfirmed\t0\t1772438403000\t1772438404000\t1\t1772438404000\tconfirmed\tf\n",
		 a, b, c);
	CHECK_STAGED(&f.b, 0, ST_BOOKING, want);
	/* created in the batch: inserted as it ends (2 confirmed), no update */
	CHECK_STAGED(&f.b, 0, ST_EVENT,
		     "1\t1772643600000\tt\t1\t1\t1\t1\t60\t2\t2\t0\t\t2\t1\t"
		     "scheduled\tf\t0\t1772438400000\t1772438404000\tf\t2\t0\t0"
		     "\tf\t0\t\tf\n");
	CHECK_STAGED(&f.b, 0, ST_NEWCUST,
		     "alice\t1772438401000\nbob\t1772438402000\n"
		     "carol\t1772438403000\n");
	/* notifications: <log_id>/<lsn>.<k>, the customer known in the batch */
	snprintf(want, sizeof(want),
		 "node1/lane0/6.0\tbooking_confirmed\t%" PRIu64
		 "\t6\t1772438401000\talice\n"
		 "node1/lane0/7.0\tbooking_confirmed\t%" PRIu64
		 "\t7\t1772438402000\tbob\n"
		 "node1/lane0/9.0\tcancelled\t%" PRIu64
		 "\t9\t1772438404000\talice\n"
		 "node1/lane0/9.1\tpromoted\t%" PRIu64
		 "\t9\t1772438404000\tcarol\n",
		 a, b, a, c);
	CHECK_STAGED(&f.b, 0, ST_NOTIFY, want);
	CHECK(f.b.part[0].created && !f.b.part[0].cancels);
	CHECK(f.b.part[0].updates == 0 && f.b.part[0].misses == 0);
	CHECK(f.b.part[0].kinds[BK_NEW] && !f.b.part[0].kinds[BK_SET]);
	/* rows once applied: 3 cat + 1 series + 3 bookings + 1 event +
	 * 4 notifications (series marks and implied customers not counted) */
	CHECK(repl__part_rows(&f.b.part[0]) == 12);
	fx_free(&f);
}

/* ---- a later batch: payments, moves of bookings it did not create ---- */

static void test_later_batch(void)
{
	struct fx f;
	uint64_t ev, a, b, c;
	struct core_resp r;
	char want[4096];

	printf("later batch\n");
	fx_start(&f, 1);
	ev = fx_event(&f, 1, 1, 1500, "eur");
	r = fx_book(&f, T0 + 1000, ev, "alice", CORE_PAY_AUTO);
	a = r.booking.id;
	CHECK(r.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(r.booking.hold_expires_at == T0 + 1000 + HOLD_MS);
	r = fx_book(&f, T0 + 2000, ev, "bob", CORE_PAY_AUTO);
	b = r.booking.id;
	CHECK(r.booking.status == CORE_BOOKING_WAITLISTED);
	repl__batch_finish(&f.b);
	snprintf(want, sizeof(want),
		 "%" PRIu64
		 "\t1\t1\talice\tpending_payment\t1772439001000\t1772438401000\t1772438401000\t\\N\t\\N\t\\N\tf\n"
		 "%" PRIu64
		 "\t1\t1\tbob\twaitlisted\t0\t1772438402000\t1772438402000\t1\t\\N\t\\N\tf\n",
		 a, b);
	CHECK_STAGED(&f.b, 0, ST_BOOKING, want);
	/* as committed: these customers exist now, the month too */
	repl__custset_add(&f.customers, "alice");
	repl__custset_add(&f.customers, "bob");
	f.months[MONTH_2026_03 / 8] |= 1u << (MONTH_2026_03 % 8);

	/* the next batch: a flagged payment (wrong amount), alice pays, bob
	 * cancels from the waitlist, carol books, the event is cancelled */
	fx_batch(&f, (uint64_t[]){ f.lsn });
	CHECK(fx_pay(&f, T0 + 5000, a, true, 999, "eur", 77) ==
	      CORE_PAYMENT_MISMATCH);
	CHECK(fx_pay(&f, T0 + 6000, a, true, 1500, "eur", 78) == CORE_OK);
	CHECK(fx_cancel(&f, T0 + 7000, b) == CORE_OK);
	r = fx_book(&f, T0 + 8000, ev, "carol", CORE_PAY_AUTO);
	c = r.booking.id;
	CHECK(r.code == CORE_OK && r.booking.status == CORE_BOOKING_WAITLISTED);
	CHECK(fx_patch(&f, T0 + 9000, ev, -1, true) == CORE_OK);
	repl__batch_finish(&f.b);

	/* moves of bookings the batch did not create: kind 0, no customer
	 * (PostgreSQL has it), bob's first move is his exit from the list */
	snprintf(want, sizeof(want),
		 "%" PRIu64
		 "\t1\t0\t\\N\tconfirmed\t0\t\\N\t1772438406000\t\\N\t1772438406000\tconfirmed\tf\n"
		 "%" PRIu64
		 "\t1\t0\t\\N\tcancelled\t0\t\\N\t1772438407000\t\\N\t1772438407000\tcancelled\tf\n"
		 "%" PRIu64
		 "\t1\t1\tcarol\twaitlisted\t0\t1772438408000\t1772438408000\t1\t\\N\t\\N\tf\n",
		 a, b, c);
	CHECK_STAGED(&f.b, 0, ST_BOOKING, want);
	/* only carol is new to PostgreSQL */
	CHECK_STAGED(&f.b, 0, ST_NEWCUST, "carol\t1772438408000\n");
	/* both outcomes recorded; the mismatch flagged, its code kept */
	snprintf(want, sizeof(want),
		 "%" PRIu64
		 "\t77\t999\teur\tmismatch\tt\t%d\t1772438405000\t\\N\n"
		 "%" PRIu64
		 "\t78\t1500\teur\tsucceeded\tf\t0\t1772438406000\t\\N\n",
		 a, CORE_PAYMENT_MISMATCH, a);
	CHECK_STAGED(&f.b, 0, ST_PAYMENT, want);
	/* the event: not created here (start from the cache, an update),
	 * cancelled (its counters from new bookings emptied) */
	CHECK_STAGED(&f.b, 0, ST_EVENT,
		     "1\t1772643600000\tf\t0\t0\t0\t0\t0\t0\t0\t0\t\t1\t1\t"
		     "cancelled\tt\t1772438409000\t0\t1772438409000\tt\t0\t0\t0"
		     "\tf\t0\t\tf\n");
	CHECK(f.b.part[0].cancels && !f.b.part[0].created);
	CHECK(f.b.part[0].updates == 1 && f.b.part[0].misses == 0);
	CHECK(f.b.part[0].kinds[BK_SET] && f.b.part[0].kinds[BK_NEW]);
	CHECK(!f.b.months); /* its partition is known */
	fx_free(&f);
}

/* ---- streams: each event's rows in one stream, what a stream has skipped ---- */

static void test_streams(void)
{
	struct fx f;
	uint64_t ev[8], stream_of[8], from[2];
	uint32_t n_ev = 8, in0 = 0, in1 = 0;
	struct core_resp r;

	printf("streams\n");
	fx_init(&f, 2);
	f.fold = false; /* the catalogue and events: applied before */
	fx_catalogue(&f);
	for (uint32_t i = 0; i < n_ev; i++)
		ev[i] = fx_event(&f, 5, 0, 0, "");
	f.fold = true;
	/* a batch that found stream 1 ahead: it has the first half already
	 * (committed before a crash), stream 0 nothing of it */
	from[0] = f.lsn;
	from[1] = f.lsn + n_ev;
	fx_batch(&f, from);
	for (uint32_t i = 0; i < 2 * n_ev; i++) {
		char cust[16];

		snprintf(cust, sizeof(cust), "c%u", i);
		r = fx_book(&f, T0 + 1000 * i, ev[i % n_ev], cust,
			    CORE_PAY_AUTO);
		CHECK(r.code == CORE_OK);
	}
	repl__batch_finish(&f.b);
	/* each event's bookings in one part: stream 0 all of them, stream 1
	 * only the second round (LSN > its position) */
	for (uint32_t i = 0; i < n_ev; i++)
		stream_of[i] = 2; /* none yet */
	for (uint32_t k = 0; k < 2; k++) {
		const char *t = staged(&f.b, k, ST_EVENT);

		for (const char *line = t; *line;
		     line = strchr(line, '\n') + 1) {
			uint64_t id = strtoull(line, NULL, 10);

			CHECK(id >= 1 && id <= n_ev);
			if (id >= 1 && id <= n_ev) {
				CHECK(stream_of[id - 1] ==
				      2); /* one part only */
				stream_of[id - 1] = k;
			}
			CHECK(strstr(line, "\tf\t") != NULL); /* not created */
		}
	}
	for (uint32_t i = 0; i < n_ev; i++) {
		CHECK(stream_of[i] < 2);
		in0 += stream_of[i] == 0;
		in1 += stream_of[i] == 1;
	}
	CHECK(in0 > 0 && in1 > 0); /* 8 events: both streams have some */
	CHECK(f.b.part[0].rows[ST_BOOKING] == 2 * in0);
	CHECK(f.b.part[1].rows[ST_BOOKING] == in1);
	CHECK(f.b.part[0].rows[ST_NOTIFY] == 2 * in0);
	CHECK(f.b.part[1].rows[ST_NOTIFY] == in1);
	/* implied customers: every booking's, even those stream 1 skipped,
	 * each in the part its id hashes to */
	CHECK(f.b.part[0].rows[ST_NEWCUST] + f.b.part[1].rows[ST_NEWCUST] ==
	      2 * n_ev);
	fx_free(&f);
}

/* ---- an archive: the core forgets past events, PostgreSQL keeps them ---- */

static void test_archive(void)
{
	struct fx f;
	struct core_req q;
	struct core_resp r;
	uint64_t ev;
	uint32_t rows[ST_COUNT];

	printf("archive\n");
	fx_start(&f, 1);
	ev = fx_event(&f, 2, 0, 0, "");
	r = fx_book(&f, T0, ev, "alice", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK);
	memcpy(rows, f.b.part[0].rows, sizeof(rows));
	/* a year after the class: its one ARCHIVE record folds to nothing */
	q = q_new(CORE_OP_ARCHIVE, EV_START + INT64_C(400) * 24 * 60 * MIN_MS);
	q.u.archive.days = 365;
	CHECK(fx_do(&f, &q, &r) == CORE_OK);
	CHECK(f.b.last_lsn == f.lsn);
	CHECK(memcmp(rows, f.b.part[0].rows, sizeof(rows)) == 0);
	repl__batch_finish(&f.b);
	CHECK(f.b.part[0].rows[ST_BOOKING] == 1 &&
	      f.b.part[0].rows[ST_EVENT] == 1);
	CHECK(core_state_event(f.st, ev, &(struct core_event_view){ 0 }) ==
	      CORE_NO_EVENT); /* gone from the core, not from the batch */
	fx_free(&f);
}

/* ---- what cannot fit stops the batch ---- */

static void test_refused(void)
{
	struct fx f;
	struct core_rec c;
	uint8_t junk[3] = { 0xff, 0x01, 0x00 };
	uint64_t ev;
	struct core_resp r;

	printf("refused\n");
	fx_init(&f, 1);
	fx_batch(&f, NULL);
	CHECK(repl__batch_add_entry(&f.b, 1, junk, sizeof(junk)) == -EUCLEAN);
	CHECK(strstr(f.b.err, "entry at LSN 1 does not decode") != NULL);

	fx_batch(&f, NULL);
	fx_catalogue(&f);
	ev = fx_event(&f, 2, 0, 0, "");
	r = fx_book(&f, T0, ev, "alice", CORE_PAY_AUTO);
	/* the same booking created twice in a batch */
	memset(&c, 0, sizeof(c));
	c.type = CORE_REC_BOOKING_NEW;
	c.at = T0;
	c.u.booking.booking_id = r.booking.id;
	c.u.booking.status = CORE_BOOKING_CONFIRMED;
	snprintf(c.u.booking.customer_id, sizeof(c.u.booking.customer_id), "x");
	CHECK(repl__batch_add(&f.b, &c, 99, 0) == -EUCLEAN);
	CHECK(strstr(f.b.err, "at LSN 99 does not fit what was applied") !=
	      NULL);
	/* a booking moved back to the waitlist */
	c.type = CORE_REC_BOOKING_SET;
	c.u.booking.status = CORE_BOOKING_WAITLISTED;
	CHECK(repl__batch_add(&f.b, &c, 100, 0) == -EUCLEAN);
	/* a cancelled event scheduled again */
	CHECK(fx_patch(&f, T0, ev, -1, true) == CORE_OK);
	memset(&c, 0, sizeof(c));
	c.type = CORE_REC_EVENT_PATCH;
	c.u.patch.event_id = ev;
	c.u.patch.capacity = 2;
	c.u.patch.status = CORE_EVENT_SCHEDULED;
	CHECK(repl__batch_add(&f.b, &c, 101, 0) == -EUCLEAN);
	/* an event before 1970 */
	memset(&c, 0, sizeof(c));
	c.type = CORE_REC_EVENT_CREATE;
	c.u.event.id = 4000;
	c.u.event.start_at = -86400000;
	c.u.event.duration_min = 60;
	CHECK(repl__batch_add(&f.b, &c, 102, 0) == -EUCLEAN);
	/* a record its stream has: skipped, nothing staged */
	fx_batch(&f, (uint64_t[]){ 200 });
	c.u.event.start_at = EV_START + 86400000;
	CHECK(repl__batch_add(&f.b, &c, 150, 0) == 0);
	repl__batch_finish(&f.b);
	CHECK(f.b.part[0].rows[ST_EVENT] == 0);
	CHECK(repl__starts_get(&f.starts, 4000) == EV_START + 86400000);
	fx_free(&f);
}

/* ---- random: the fold's final statuses and counters are the core's ---- */

static uint64_t rnd_state;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state >> 16);
}

/* Field i (0-based) of a tab-separated line, into out. */
static void field(const char *line, int i, char *out, size_t size)
{
	size_t n = 0;

	for (; i > 0 && *line && *line != '\n'; line++)
		if (*line == '\t')
			i--;
	while (line[n] && line[n] != '\t' && line[n] != '\n' && n + 1 < size) {
		out[n] = line[n];
		n++;
	}
	out[n] = '\0';
}

static void test_random(uint64_t seed)
{
	enum { EVENTS = 6, OPS = 400 };
	struct fx f;
	uint64_t ev[EVENTS], booked[OPS];
	uint32_t n_booked = 0, checked = 0;

	printf("random (seed %" PRIu64 ")\n", seed);
	rnd_state = seed ? seed : 1;
	fx_start(&f, 1 + rnd() % 3);
	for (uint32_t i = 0; i < EVENTS; i++)
		ev[i] = fx_event(&f, 1 + rnd() % 4, rnd() % 3,
				 rnd() % 2 ? 1000 : 0, "eur");
	for (uint32_t i = 0; i < OPS; i++) {
		core_time now = T0 + 1000 * (core_time)i;
		uint32_t op = rnd() % 10;

		if (op < 5 || n_booked == 0) {
			char cust[16];
			struct core_resp r;

			snprintf(cust, sizeof(cust), "c%u", rnd() % 40);
			r = fx_book(&f, now, ev[rnd() % EVENTS], cust,
				    CORE_PAY_AUTO);
			if (r.code == CORE_OK)
				booked[n_booked++] = r.booking.id;
		} else if (op < 8) {
			fx_cancel(&f, now, booked[rnd() % n_booked]);
		} else if (op < 9) {
			uint64_t id = booked[rnd() % n_booked];

			fx_pay(&f, now, id, rnd() % 4 != 0, 1000, "eur", i);
		} else {
			fx_patch(&f, now, ev[rnd() % EVENTS], 1 + rnd() % 5,
				 rnd() % 20 == 0);
		}
	}
	repl__batch_finish(&f.b);
	/* every booking: its final status is the core's; every event (all
	 * new here): its counters are the core's */
	for (uint32_t k = 0; k < f.b.parts; k++) {
		char text[1 << 16], id_s[24], v[32];

		snprintf(text, sizeof(text), "%s", staged(&f.b, k, ST_BOOKING));
		for (char *line = text; *line; line = strchr(line, '\n') + 1) {
			struct core_booking_view bv;

			field(line, 0, id_s, sizeof(id_s));
			CHECK(core_state_booking(f.st, strtoull(id_s, NULL, 10),
						 &bv) == CORE_OK);
			struct core_event_view e;

			CHECK(core_state_event(f.st, bv.event_id, &e) ==
			      CORE_OK);
			field(line, 4, v, sizeof(v));
			if (e.status == CORE_EVENT_CANCELLED) /* no record each:
							       * the sink cancels
							       * what is active */
				CHECK(strcmp(v, core_booking_status_name(
							bv.status)) == 0 ||
				      strcmp(v, "confirmed") == 0 ||
				      strcmp(v, "pending_payment") == 0 ||
				      strcmp(v, "waitlisted") == 0);
			else
				CHECK(strcmp(v, core_booking_status_name(
							bv.status)) == 0);
			field(line, 3, v, sizeof(v));
			CHECK(strcmp(v, bv.customer_id) == 0);
			checked++;
		}
		snprintf(text, sizeof(text), "%s", staged(&f.b, k, ST_EVENT));
		for (char *line = text; *line; line = strchr(line, '\n') + 1) {
			struct core_event_view e;
			char reg[16], held[16], wl[16], cap[16];

			field(line, 0, id_s, sizeof(id_s));
			CHECK(core_state_event(f.st, strtoull(id_s, NULL, 10),
					       &e) == CORE_OK);
			field(line, 12, cap, sizeof(cap));
			field(line, 20, reg, sizeof(reg));
			field(line, 21, held, sizeof(held));
			field(line, 22, wl, sizeof(wl));
			CHECK(strtoul(cap, NULL, 10) == e.capacity);
			CHECK(strtoul(reg, NULL, 10) == e.booked);
			CHECK(strtoul(held, NULL, 10) == e.held);
			CHECK(strtoul(wl, NULL, 10) == e.waitlist_length);
		}
	}
	CHECK(checked == n_booked);
	fx_free(&f);
}

/* ---- event edits: moved from the start PostgreSQL has, one per batch ---- */

static void test_edit(void)
{
	struct fx f;
	uint64_t ev;
	struct core_req q;
	struct core_resp r;
	const void *entry = NULL;
	size_t size = 0;

	printf("edit\n");
	fx_start(&f, 1);
	ev = fx_event(&f, 2, 1, 0, "");
	/* created and edited in one batch: inserted as the edit left it */
	q = q_new(CORE_OP_EVENT_PATCH, T0 + 1000);
	q.event_id = ev;
	q.u.patch.capacity = -1;
	q.u.patch.start_at = EV_START + 40 * 24 * 60 * MIN_MS; /* April */
	q.u.patch.duration_min = 45;
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Moved");
	CHECK(fx_do(&f, &q, &r) == CORE_OK);
	repl__batch_finish(&f.b);
	CHECK_STAGED(&f.b, 0, ST_EVENT,
		     "1\t1776099600000\tt\t1\t1\t1\t1\t45\t2\t1\t0\t\t2\t1\t"
		     "scheduled\tf\t0\t1772438400000\t1772438401000\tf\t0\t0\t0"
		     "\tt\t1776099600000\tMoved\tf\n");
	CHECK(f.b.months && f.b.month_hi == MONTH_2026_03 + 1);
	CHECK(!f.b.part[0].edits); /* inserted: no update */
	CHECK(repl__starts_get(&f.starts, ev) ==
	      EV_START + 40 * 24 * 60 * MIN_MS);

	/* the next batch: the edit of an event it did not create is found
	 * by the start PostgreSQL has (a miss, looked up), then moved */
	fx_batch(&f, (uint64_t[]){ f.lsn });
	q.now = T0 + 2000;
	q.u.patch.start_at = EV_START + 2 * 24 * 60 * MIN_MS;
	q.u.patch.title[0] = '\0';
	q.u.patch.location_id = 1;
	CHECK(fx_do(&f, &q, &r) == CORE_OK);
	repl__batch_finish(&f.b);
	CHECK_STAGED(&f.b, 0, ST_EVENT,
		     "1\t0\tf\t0\t0\t1\t0\t45\t0\t1\t0\t\t2\t1\t"
		     "scheduled\tf\t0\t0\t1772438402000\tt\t0\t0\t0"
		     "\tt\t1772816400000\tMoved\tf\n");
	CHECK(f.b.part[0].edits && f.b.part[0].misses == 1 &&
	      f.b.part[0].updates == 1);
	/* a second edit of it in the same batch: the batch ends before it */
	q.now = T0 + 3000;
	q.u.patch.duration_min = 50;
	CHECK(core_state_decide(f.st, &q, &r, &entry, &size) == CORE_OK);
	CHECK(repl__batch_cut(&f.b, entry, size));
	CHECK(core_state_apply(f.st, entry, size) == 0);
	fx_batch(&f, (uint64_t[]){ f.lsn });
	CHECK(!repl__batch_cut(&f.b, entry, size)); /* a batch's first */
	fx_free(&f);
}

/* ---- an import: bookings as they were, the old ids ---- */

static void test_import(void)
{
	struct fx f;
	struct core_rec r[6];
	uint8_t buf[4096];
	struct wbuf w = { .data = buf, .capacity = sizeof(buf) };
	const uint64_t ev = 9, b1 = ev << 24 | 1, b2 = ev << 24 | 2,
		       b3 = ev << 24 | 3;
	char line[3][512], v[64];
	const char *rows;

	printf("import\n");
	fx_init(&f, 1);
	fx_batch(&f, NULL);
	memset(r, 0, sizeof(r));
	r[0].type = CORE_REC_EVENT_CREATE;
	r[0].at = T0 - 9000;
	r[0].u.event = (typeof(r[0].u.event)){ .id = ev,
					       .series_id = 1,
					       .org_id = 1,
					       .location_id = 1,
					       .instructor_id = 1,
					       .start_at = EV_START,
					       .duration_min = 60,
					       .capacity = 2,
					       .waitlist_capacity = 2 };
	/* promoted from the waitlist, then confirmed */
	r[1].type = CORE_REC_BOOKING_IMPORT;
	r[1].at = T0 - 2000;
	r[1].u.booking.booking_id = b1;
	r[1].u.booking.status = CORE_BOOKING_CONFIRMED;
	strcpy(r[1].u.booking.customer_id, "c1");
	r[1].u.booking.updated_at = T0;
	r[1].u.booking.joined_at = T0 - 2000;
	r[1].u.booking.promoted_at = T0 - 1500;
	/* waiting */
	r[2] = r[1];
	r[2].at = T0 - 1000;
	r[2].u.booking.booking_id = b2;
	r[2].u.booking.status = CORE_BOOKING_WAITLISTED;
	strcpy(r[2].u.booking.customer_id, "c2");
	r[2].u.booking.updated_at = 0;
	r[2].u.booking.joined_at = T0 - 1000;
	r[2].u.booking.promoted_at = 0;
	/* left the waitlist */
	r[3] = r[2];
	r[3].u.booking.booking_id = b3;
	r[3].u.booking.status = CORE_BOOKING_CANCELLED;
	strcpy(r[3].u.booking.customer_id, "c3");
	r[3].u.booking.updated_at = T0 - 500;
	r[4].type = CORE_REC_LEGACY;
	r[4].at = NOW_MS;
	r[4].u.legacy.kind = CORE_LEGACY_BOOKING;
	r[4].u.legacy.bookd_id = b1;
	strcpy(r[4].u.legacy.id, "r-1");
	strcpy(r[4].u.legacy.detail, "attended");
	r[5] = r[4];
	r[5].u.legacy.kind = CORE_LEGACY_CUSTOMER;
	r[5].u.legacy.bookd_id = 0;
	strcpy(r[5].u.legacy.id, "c1");
	r[5].u.legacy.detail[0] = '\0';
	for (int i = 0; i < 6; i++)
		rec_encode(&w, &r[i]);
	CHECK(!w.overflow);
	CHECK(repl__batch_add_entry(&f.b, 1, buf, w.size) == 0);
	repl__batch_finish(&f.b);

	CHECK_STAGED(&f.b, 0, ST_LEGACY,
		     "booking\tr-1\t"
		     "150994945\tattended\t1773043200000\n"
		     "customer\tc1\t\\N\t\\N\t1773043200000\n");
	/* bookings as new rows (kind 1) with their own times */
	rows = staged(&f.b, 0, ST_BOOKING);
	for (int i = 0; i < 3; i++) {
		const char *l = rows;
		for (int k = 0; k < i && l; k++)
			l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL;
		CHECK(l != NULL);
		snprintf(line[i], sizeof(line[i]), "%.*s",
			 (int)strcspn(l ? l : "", "\n"), l ? l : "");
	}
	/* id, event, kind, customer, status, hold, created, updated,
	 * join_seq, exit_at, exit_status */
	field(line[0], 2, v, sizeof(v));
	CHECK(strcmp(v, "1") == 0);
	field(line[0], 4, v, sizeof(v));
	CHECK(strcmp(v, "confirmed") == 0);
	field(line[0], 6, v, sizeof(v));
	CHECK(strtoll(v, NULL, 10) == T0 - 2000);
	field(line[0], 7, v, sizeof(v));
	CHECK(strtoll(v, NULL, 10) == T0);
	field(line[0], 9, v, sizeof(v));
	CHECK(strtoll(v, NULL, 10) == T0 - 1500); /* promoted */
	field(line[0], 10, v, sizeof(v));
	CHECK(strcmp(v, "confirmed") == 0);
	field(line[1], 4, v, sizeof(v));
	CHECK(strcmp(v, "waitlisted") == 0);
	field(line[1], 8, v, sizeof(v));
	CHECK(strcmp(v, "\\N") != 0); /* joined */
	field(line[1], 9, v, sizeof(v));
	CHECK(strcmp(v, "\\N") == 0); /* still there */
	field(line[2], 9, v, sizeof(v));
	CHECK(strtoll(v, NULL, 10) == T0 - 500); /* left */
	field(line[2], 10, v, sizeof(v));
	CHECK(strcmp(v, "cancelled") == 0);
	/* the new event's counters from them: one seated, one waiting */
	rows = staged(&f.b, 0, ST_EVENT);
	field(rows, 20, v, sizeof(v));
	CHECK(strcmp(v, "1") == 0);
	field(rows, 22, v, sizeof(v));
	CHECK(strcmp(v, "1") == 0);
	fx_free(&f);
}

int main(int argc, char **argv)
{
	uint64_t seed =
		argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);

	test_one_batch();
	test_later_batch();
	test_streams();
	test_archive();
	test_refused();
	test_edit();
	test_import();
	printf("test_repl_fold: seed %" PRIu64 "\n", seed);
	for (uint32_t i = 0; i < 20; i++)
		test_random(seed + i);
	printf("test_repl_fold: %u checks, %u failed\n", check_count,
	       check_fail_count);
	return check_fail_count ? 1 : 0;
}
