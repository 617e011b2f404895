/*
 * test_bin_e2e.c: bookd end to end over the binary protocol: the life cycle
 * (catalogue, series, generate, list, book, waitlist, cancel with promotion,
 * patch, customer bookings, status); 200 clients (threads, one connection
 * each) racing for a 20-seat event with a 100-place waitlist: exactly 20
 * confirmed, 100 waitlisted with positions 1..100 in decision (booking id)
 * order, 80 event_full, no customer twice; pipelining: 1000 requests in
 * flight on one connection, every answer matched once by id, a batch of 50
 * bookings in one frame; the load generator's way (bc_recv_ready takes
 * every answer already received, bc_wait waits only when none is): each
 * request answered once, in order, several answers per wait; idempotent replay, and again after kill -9 and a
 * restart: the same key gives the same booking, flagged replayed, another
 * request with the key is idempotency_key_reused; the start of a class
 * (event_started, late, waitlist_expired in the answers); SIGTERM: exit
 * 0; then the protocol on a unix socket.
 *
 * Starting bookd, connecting, the catalogue and main: bin_e2e_test.h.
 */
#include "bin_e2e_test.h"

static void test_lifecycle(bc_client *c)
{
	struct bc_booking b1, b2, b3, p, got;
	struct bc_event e;
	uint32_t generated = 0, n = 0;
	uint64_t series, ev;
	static struct bc_booking list[BC_LIST_LIMIT_MAX];

	CHECK(bc_org_create(c, "E2E Studio", "Europe/Vienna", "org-key",
			    &org_id) == BC_OK);
	CHECK(org_id > 0);
	/* The same create with its key: replayed, same id. */
	uint64_t again = 0;
	CHECK(bc_org_create(c, "E2E Studio", "Europe/Vienna", "org-key",
			    &again) == BC_OK);
	CHECK(again == org_id && bc_last(c)->replayed);
	CHECK(bc_org_create(c, "Other", "Europe/Vienna", "org-key", &again) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
	CHECK(bc_org_create(c, "Bad", "Mars/Olympus", NULL, &again) ==
	      BC_INVALID_REQUEST);
	CHECK(bc_location_create(c, org_id, "Hall", NULL, &loc_id) == BC_OK);
	CHECK(bc_instructor_create(c, org_id, "Ana", NULL, &ins_id) == BC_OK);
	CHECK(bc_location_create(c, 999999, "Nowhere", NULL, &again) ==
	      BC_NOT_FOUND);
	CHECK(bc_customer_create(c, "life-1", "l1@example.com", "Life One",
				 NULL) == BC_OK);
	CHECK(bc_customer_create(c, "bad id!", NULL, NULL, NULL) ==
	      BC_INVALID_REQUEST);

	series = make_series(c, "Life", 2, 1, &generated);
	CHECK(series > 0);
	/* Series refusals name the field and the value, as HTTP's do. */
	{
		struct bc_series_spec s = daily_spec("Bad", 2);
		uint64_t id = 0;

		s.weekdays = "MO,XX";
		s.start_time = "10:00";
		s.first_date = "2030-01-10";
		CHECK(bc_series_create(c, &s, NULL, &id, NULL) ==
		      BC_INVALID_REQUEST);
		CHECK(strstr(bc_last(c)->message,
			     "weekdays: unknown day \"XX\"") != NULL);
		s.weekdays = "MO";
		s.last_date = "2030-01-09";
		CHECK(bc_series_create(c, &s, NULL, &id, NULL) ==
		      BC_INVALID_REQUEST);
		CHECK(strcmp(bc_last(c)->message,
			     "last_date: before first_date") == 0);
		s.last_date = NULL;
		s.location_id = 999999;
		CHECK(bc_series_create(c, &s, NULL, &id, NULL) == BC_NOT_FOUND);
		CHECK(strncmp(bc_last(c)->message, "location_id: ", 13) == 0);
	}
	CHECK(generated == 7);
	CHECK(bc_generate(c, NULL, series, NULL, &generated) == BC_OK);
	CHECK(generated == 0); /* idempotent */
	ev = first_event_of(c, series);
	CHECK(ev > 0);
	CHECK(bc_event_get(c, ev, &e) == BC_OK);
	CHECK(e.id == ev && e.capacity == 2 && e.available == 2);
	CHECK(e.status == BC_EVENT_SCHEDULED && strcmp(e.title, "Life") == 0);
	CHECK(bc_event_get(c, 1ull << 40, &e) == BC_NOT_FOUND);

	CHECK(bc_book(c, ev, "life-1", "lk1", BC_PAY_AUTO, &b1) == BC_OK);
	CHECK(b1.status == BC_BOOKING_CONFIRMED && b1.event_id == ev);
	CHECK(bc_book(c, ev, "life-2", "lk2", BC_PAY_AUTO, &b2) == BC_OK);
	CHECK(b2.status == BC_BOOKING_CONFIRMED);
	CHECK(bc_book(c, ev, "life-3", "lk3", BC_PAY_AUTO, &b3) == BC_OK);
	CHECK(b3.status == BC_BOOKING_WAITLISTED && b3.position == 1);
	CHECK(bc_book(c, ev, "life-4", "lk4", BC_PAY_AUTO, &got) ==
	      BC_EVENT_FULL);
	CHECK(bc_book(c, ev, "life-1", "lk5", BC_PAY_AUTO, &got) ==
	      BC_ALREADY_BOOKED);
	CHECK(bc_book(c, ev, "life-5", NULL, BC_PAY_AUTO, &got) ==
	      BC_IDEMPOTENCY_KEY_REQUIRED);
	CHECK(bc_booking_get(c, b3.id, &got) == BC_OK);
	CHECK(got.id == b3.id && got.position == 1);

	CHECK(bc_cancel(c, b1.id, "lc1", &got, &p) == BC_OK);
	CHECK(got.id == b1.id && got.status == BC_BOOKING_CANCELLED);
	CHECK(p.id == b3.id && p.status == BC_BOOKING_CONFIRMED);
	CHECK(bc_cancel(c, b1.id, "lc2", &got, &p) == BC_BOOKING_NOT_ACTIVE);
	CHECK(bc_cancel(c, b1.id, "lc1", &got, &p) == BC_OK); /* replay */
	CHECK(bc_last(c)->replayed && got.id == b1.id);
	CHECK(bc_cancel(c, 12345, NULL, &got, &p) ==
	      BC_IDEMPOTENCY_KEY_REQUIRED);

	CHECK(bc_customer_bookings(c, "life-1", list, 50, &n) == BC_OK);
	CHECK(n == 1 && list[0].id == b1.id &&
	      list[0].status == BC_BOOKING_CANCELLED);

	struct bc_event_patch patch = { .capacity = 1 };
	CHECK(bc_event_patch(c, ev, &patch, NULL, &e) ==
	      BC_CAPACITY_BELOW_TAKEN);
	patch.capacity = 5;
	CHECK(bc_event_patch(c, ev, &patch, NULL, &e) == BC_OK);
	CHECK(e.capacity == 5 && e.booked == 2 && e.available == 3);
	patch.capacity = -1;
	patch.cancel = true;
	CHECK(bc_event_patch(c, ev, &patch, "pk", &e) == BC_OK);
	CHECK(e.status == BC_EVENT_CANCELLED);
	CHECK(bc_book(c, ev, "life-6", "lk6", BC_PAY_AUTO, &got) ==
	      BC_EVENT_NOT_BOOKABLE);
	CHECK(bc_booking_get(c, b2.id, &got) == BC_OK);
	CHECK(got.status == BC_BOOKING_CANCELLED);

	/* Listing pages: limit 3 with the cursor walks every event once. */
	struct bc_list_query q = { .org_id = org_id, .limit = 3 };
	char cursor[BC_CURSOR_SIZE] = "";
	static struct bc_event page[3];
	uint64_t last_id = 0;
	int64_t last_start = 0;
	unsigned pages = 0, total = 0;
	do {
		q.cursor = cursor[0] ? cursor : NULL;
		CHECK(bc_event_list(c, &q, page, 3, &n, cursor) == BC_OK);
		for (uint32_t i = 0; i < n; i++) {
			CHECK(page[i].start_at > last_start ||
			      (page[i].start_at == last_start &&
			       page[i].id > last_id));
			last_start = page[i].start_at;
			last_id = page[i].id;
		}
		total += n;
	} while (cursor[0] && ++pages < 100);
	CHECK(total == 7);

	struct bc_status_info st;
	CHECK(bc_status(c, &st) == BC_OK);
	CHECK(st.shard_count > 0 && st.wal_durable_lsn > 0);
	CHECK(strcmp(st.repl_state, "disabled") == 0);
}

/* ---- the race ---- */

struct racer {
	unsigned index;
	uint64_t event_id;
	pthread_barrier_t *barrier;
	int code;
	struct bc_booking booking;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	bc_client *c = connect_as(SVC);
	char cust[32], key[32];

	pthread_barrier_wait(r->barrier);
	if (!c) {
		r->code = -ECONNREFUSED;
		return NULL;
	}
	snprintf(cust, sizeof(cust), "racer-%u", r->index);
	snprintf(key, sizeof(key), "race-%u", r->index);
	r->code = bc_book(c, r->event_id, cust, key, BC_PAY_AUTO, &r->booking);
	bc_close(c);
	return NULL;
}

static int booking_by_id(const void *a, const void *b)
{
	const struct racer *x = *(struct racer *const *)a,
			   *y = *(struct racer *const *)b;

	return x->booking.id < y->booking.id ? -1
					     : x->booking.id > y->booking.id;
}

static void test_race(bc_client *c)
{
	static struct racer r[RACE_CLIENT_COUNT];
	static struct racer *w[RACE_CLIENT_COUNT];
	pthread_t t[RACE_CLIENT_COUNT];
	pthread_barrier_t barrier;
	uint64_t series, ev;
	unsigned confirmed = 0, waitlisted = 0, full = 0, other = 0, nw = 0;
	struct bc_event e;

	series = make_series(c, "Race", RACE_CAPACITY, RACE_WAITLIST, NULL);
	ev = first_event_of(c, series);
	CHECK(ev > 0);
	pthread_barrier_init(&barrier, NULL, RACE_CLIENT_COUNT);
	for (unsigned i = 0; i < RACE_CLIENT_COUNT; i++) {
		r[i] = (struct racer){ .index = i,
				       .event_id = ev,
				       .barrier = &barrier };
		if (pthread_create(&t[i], NULL, race_main, &r[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned i = 0; i < RACE_CLIENT_COUNT; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (unsigned i = 0; i < RACE_CLIENT_COUNT; i++) {
		if (r[i].code == BC_OK &&
		    r[i].booking.status == BC_BOOKING_CONFIRMED)
			confirmed++;
		else if (r[i].code == BC_OK &&
			 r[i].booking.status == BC_BOOKING_WAITLISTED)
			w[nw++] = &r[i], waitlisted++;
		else if (r[i].code == BC_EVENT_FULL)
			full++;
		else
			other++;
	}
	printf("race: %u confirmed, %u waitlisted, %u full, %u other\n",
	       confirmed, waitlisted, full, other);
	CHECK(confirmed == RACE_CAPACITY);
	CHECK(waitlisted == RACE_WAITLIST);
	CHECK(full == RACE_CLIENT_COUNT - RACE_CAPACITY - RACE_WAITLIST);
	CHECK(other == 0);
	/* Waitlisted in decision order: by booking id, positions 1..N. */
	qsort(w, nw, sizeof(w[0]), booking_by_id);
	for (unsigned i = 0; i < nw; i++)
		CHECK(w[i]->booking.position == i + 1);
	/* No customer twice, and the server agrees. */
	for (unsigned i = 0; i < RACE_CLIENT_COUNT; i++) {
		struct bc_booking list[4];
		uint32_t n = 0;
		char cust[32];
		snprintf(cust, sizeof(cust), "racer-%u", i);
		CHECK(bc_customer_bookings(c, cust, list, 4, &n) == BC_OK);
		CHECK(n == (r[i].code == BC_OK ? 1u : 0u));
	}
	CHECK(bc_event_get(c, ev, &e) == BC_OK);
	CHECK(e.booked == RACE_CAPACITY && e.waitlist_length == RACE_WAITLIST);
	CHECK(e.available == 0);
}

/* ---- pipelining ---- */

static void test_pipeline(bc_client *c)
{
	static uint8_t seen[PIPELINE_COUNT + 1];
	static struct bc_book_item items[BATCH_COUNT];
	static char custs[BATCH_COUNT][32], keys[BATCH_COUNT][32];
	static int codes[BATCH_COUNT];
	static struct bc_booking out[BATCH_COUNT];
	uint64_t series, ev, first = 0, id;
	unsigned ok = 0, bad_id = 0;
	struct bc_answer a;
	char cust[32], key[32];

	series = make_series(c, "Pipe", 2000, 0, NULL);
	ev = first_event_of(c, series);
	CHECK(ev > 0);
	for (unsigned i = 0; i < PIPELINE_COUNT; i++) {
		snprintf(cust, sizeof(cust), "pipe-%u", i);
		snprintf(key, sizeof(key), "pipe-%u", i);
		int rc = i % 4 == 3 ? bc_event_get_async(c, ev, &id)
				    : bc_book_async(c, ev, cust, key,
						    BC_PAY_AUTO, &id);
		CHECK(rc == 0);
		if (i == 0)
			first = id;
	}
	CHECK(bc_pending(c) == PIPELINE_COUNT);
	CHECK(bc_flush(c) == 0);
	CHECK(bc_book(c, ev, "x", "y", BC_PAY_AUTO, NULL) == -EBUSY);
	for (unsigned i = 0; i < PIPELINE_COUNT; i++) {
		if (bc_recv(c, &a) != 0) {
			CHECK(!"recv");
			break;
		}
		if (a.req_id < first || a.req_id >= first + PIPELINE_COUNT ||
		    seen[a.req_id - first]++) {
			bad_id++;
			continue;
		}
		ok += a.code == BC_OK;
	}
	CHECK(bad_id == 0);
	CHECK(ok == PIPELINE_COUNT);
	CHECK(bc_pending(c) == 0);

	/* Listings pipelined between bookings: each answer carries its page,
	 * in request order. */
	{
		struct bc_list_query q = { .org_id = org_id, .limit = 500 };
		uint64_t ids[4];
		for (unsigned i = 0; i < 4; i++) {
			snprintf(cust, sizeof(cust), "pipe-list-%u", i);
			CHECK((i % 2 ? bc_event_list_async(c, &q, &ids[i])
				     : bc_book_async(c, ev, cust, cust,
						     BC_PAY_AUTO, &ids[i])) ==
			      0);
		}
		CHECK(bc_flush(c) == 0);
		for (unsigned i = 0; i < 4; i++) {
			bool found = false;
			CHECK(bc_recv(c, &a) == 0 && a.req_id == ids[i] &&
			      a.code == BC_OK);
			for (uint32_t k = 0; i % 2 && k < a.event_count; k++)
				found |= a.events[k].id == ev;
			CHECK(i % 2 ? found && a.event_count >= 1
				    : a.has_booking && a.event_count == 0);
		}
		CHECK(bc_pending(c) == 0);
	}

	/* A batch: one frame, one answer per item; one duplicate inside
	 * (items 6 and 7: which one wins is the core's order of decision,
	 * items with different keys may be decided in any order). */
	for (unsigned i = 0; i < BATCH_COUNT; i++) {
		snprintf(custs[i], sizeof(custs[i]), "batch-%u",
			 i == 7 ? 6 : i);
		snprintf(keys[i], sizeof(keys[i]), "batch-key-%u", i);
		items[i] = (struct bc_book_item){ .event_id = ev,
						  .customer_id = custs[i],
						  .key = keys[i] };
	}
	CHECK(bc_book_batch(c, items, BATCH_COUNT, codes, out) == BC_OK);
	CHECK((codes[6] == BC_OK && codes[7] == BC_ALREADY_BOOKED) ||
	      (codes[7] == BC_OK && codes[6] == BC_ALREADY_BOOKED));
	for (unsigned i = 0; i < BATCH_COUNT; i++) {
		if (i == 6 || i == 7) {
			continue;
		} else {
			CHECK(codes[i] == BC_OK);
			CHECK(out[i].status == BC_BOOKING_CONFIRMED);
			CHECK(strcmp(out[i].customer_id, custs[i]) == 0);
		}
	}
	/* Batches beyond the server's 1024 requests in flight: 8 x 256
	 * items pipelined (a batch cut by back-pressure resumes where it
	 * stopped): every item answered once. */
	{
		enum { BATCHES = 8, ITEMS = BC_BATCH_COUNT_MAX };
		static struct bc_book_item big[BATCHES][ITEMS];
		static char bc[BATCHES][ITEMS][24], bk[BATCHES][ITEMS][24];
		static uint8_t got[BATCHES][ITEMS];
		uint64_t ids[BATCHES];
		unsigned answers = 0, good = 0, wrong = 0;
		uint64_t s2 =
			make_series(c, "Batches", BATCHES * ITEMS, 0, NULL);
		uint64_t ev2 = first_event_of(c, s2);
		for (unsigned b = 0; b < BATCHES; b++) {
			for (unsigned i = 0; i < ITEMS; i++) {
				snprintf(bc[b][i], sizeof(bc[b][i]), "bb-%u-%u",
					 b, i);
				snprintf(bk[b][i], sizeof(bk[b][i]),
					 "bbk-%u-%u", b, i);
				big[b][i] = (struct bc_book_item){
					.event_id = ev2,
					.customer_id = bc[b][i],
					.key = bk[b][i]
				};
			}
			CHECK(bc_book_batch_async(c, big[b], ITEMS, &ids[b]) ==
			      0);
		}
		CHECK(bc_pending(c) == BATCHES);
		while (bc_pending(c) > 0 && bc_recv(c, &a) == 0) {
			unsigned b = 0;
			while (b < BATCHES && ids[b] != a.req_id)
				b++;
			answers++;
			if (b == BATCHES || a.index < 0 || a.index >= ITEMS ||
			    a.count != ITEMS || got[b][a.index]++) {
				wrong++;
				continue;
			}
			good += a.code == BC_OK && a.has_booking &&
				strcmp(a.booking.customer_id, bc[b][a.index]) ==
					0;
		}
		CHECK(answers == BATCHES * ITEMS && wrong == 0);
		CHECK(good == BATCHES * ITEMS);
		struct bc_event e2;
		CHECK(bc_event_get(c, ev2, &e2) == BC_OK);
		CHECK(e2.booked == BATCHES * ITEMS);
	}

	/* A bad item refuses the whole frame: nothing booked. */
	items[3].key = NULL;
	snprintf(custs[0], sizeof(custs[0]), "batch-new-0");
	CHECK(bc_book_batch(c, items, 5, codes, out) ==
	      BC_IDEMPOTENCY_KEY_REQUIRED);
	struct bc_booking l[2];
	uint32_t n = 9;
	CHECK(bc_customer_bookings(c, "batch-new-0", l, 2, &n) == BC_OK);
	CHECK(n == 0);
}

/* ---- idempotency across a crash ---- */

static void test_replay_across_crash(bc_client **cp)
{
	bc_client *c = *cp;
	struct bc_booking b, again;
	uint64_t series, ev;

	series = make_series(c, "Crash", 5, 5, NULL);
	ev = first_event_of(c, series);
	CHECK(bc_book(c, ev, "crash-1", "crash-key", BC_PAY_AUTO, &b) == BC_OK);
	CHECK(!bc_last(c)->replayed);
	CHECK(bc_book(c, ev, "crash-1", "crash-key", BC_PAY_AUTO, &again) ==
	      BC_OK);
	CHECK(bc_last(c)->replayed && again.id == b.id);

	bc_close(c);
	*cp = NULL;
	kill9_bookd();
	if (start_bookd() != 0) {
		CHECK(!"restart");
		return;
	}
	c = connect_as(SVC);
	CHECK(c != NULL);
	if (!c)
		return;
	*cp = c;
	CHECK(bc_book(c, ev, "crash-1", "crash-key", BC_PAY_AUTO, &again) ==
	      BC_OK);
	CHECK(bc_last(c)->replayed && again.id == b.id);
	CHECK(again.status == BC_BOOKING_CONFIRMED);
	CHECK(bc_book(c, ev, "crash-2", "crash-key", BC_PAY_AUTO, &again) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
	/* Everything acknowledged before the crash is there. */
	struct bc_event e;
	CHECK(bc_event_get(c, ev, &e) == BC_OK);
	CHECK(e.booked == 1);
}

/* The binary protocol on a unix socket: served, the socket file of a
 * killed bookd replaced at the next start, removed at a clean exit. */
static void test_unix_socket(void)
{
	struct bc_status_info si;
	char path[300];
	bc_client *c;
	int st;

	snprintf(path, sizeof(path), "%s.sock", data_dir);
	snprintf(bin_listen, sizeof(bin_listen), "unix:%s", path);
	for (int round = 0; round < 2; round++) {
		CHECK(start_bookd() == 0);
		CHECK(strcmp(addr, bin_listen) == 0);
		c = connect_as(SVC);
		CHECK(c != NULL);
		if (c) {
			CHECK(bc_status(c, &si) == BC_OK);
			bc_close(c);
		}
		CHECK(access(path, F_OK) == 0);
		if (round == 0) {
			kill9_bookd(); /* leaves the socket file */
			CHECK(access(path, F_OK) == 0);
		}
	}
	kill(bookd_pid, SIGTERM);
	CHECK(waitpid(bookd_pid, &st, 0) == bookd_pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(access(path, F_OK) != 0);
	printf("bin_e2e: served on %s, a stale socket replaced, removed at exit\n",
	       bin_listen);
}

/* The way of a load generator: queue a window, then take every answer
 * already received without blocking (bc_recv_ready) and wait (bc_wait)
 * only when none is; each answer taken refills the window. */
static void test_pipeline_ready(bc_client *c)
{
	enum { TOTAL = 3000, WINDOW = 300 };
	uint64_t series, ev, next_want = 0, id, first = 0;
	unsigned queued = 0, answered = 0, ok = 0, out_of_order = 0;
	unsigned waits = 0, most = 0;
	struct bc_answer a;
	char cust[32], key[32];

	series = make_series(c, "Ready", TOTAL + 10, 0, NULL);
	ev = first_event_of(c, series);
	CHECK(ev > 0);
	/* nothing due: neither blocks */
	CHECK(bc_recv_ready(c, &a) == 0);
	CHECK(bc_wait(c, 1000000) == 0);
	while (answered < TOTAL) {
		while (queued < TOTAL && queued - answered < WINDOW) {
			snprintf(cust, sizeof(cust), "ready-%u", queued);
			snprintf(key, sizeof(key), "ready-%u", queued);
			CHECK(bc_book_async(c, ev, cust, key, BC_PAY_AUTO,
					    &id) == 0);
			if (queued++ == 0)
				first = next_want = id;
		}
		int rc = bc_wait(c, 10 * 1000000);
		CHECK(rc == 1);
		if (rc != 1)
			break;
		waits++;
		unsigned got = 0;
		while ((rc = bc_recv_ready(c, &a)) == 1) {
			out_of_order += a.req_id != next_want++;
			ok += a.code == BC_OK;
			got++;
		}
		CHECK(rc == 0);
		answered += got;
		if (got > most)
			most = got;
	}
	CHECK(answered == TOTAL && ok == TOTAL && out_of_order == 0);
	CHECK(next_want == first + TOTAL);
	CHECK(bc_pending(c) == 0);
	CHECK(bc_recv_ready(c, &a) == 0);
	CHECK(bc_wait(c, 0) == 0);
	/* answered in groups (one per log sync), taken without a wait each */
	CHECK(most > 1 && waits < TOTAL);
	printf("bin_e2e: %u answers in %u waits (at most %u per wait)\n",
	       answered, waits, most);
	/* synchronous calls still work after it */
	struct bc_event e;
	CHECK(bc_event_get(c, ev, &e) == BC_OK);
	CHECK(e.booked == TOTAL);
}

/* The start of a class (docs/core.md "Start of class") as the binary
 * protocol's answers carry it: a class moved to start in 2 s with two
 * confirmed bookings (one a customer's, by JWT) and one waitlisted; after
 * the start the customer's cancel is event_started, the service key's is
 * recorded with late set, and the waitlisted booking reads
 * waitlist_expired once the waitlist closed (booking.get and the
 * customer's list); nothing carries a PaymentIntent (a free class). */
static void test_start_of_class(bc_client *c)
{
	struct bc_event_patch patch = { .capacity = -1 };
	struct bc_booking mine, svc, wait, got, list[4];
	struct timespec nap = { 0, 100 * 1000 * 1000 };
	uint32_t generated = 0, n = 0;
	uint64_t series, ev;
	char token[512];
	bc_client *cust;
	int64_t start;

	series = make_series(c, "Starts", 2, 1, &generated);
	ev = first_event_of(c, series);
	CHECK(ev != 0);
	start = (int64_t)time(NULL) * 1000 + 2000;
	patch.start_at = start;
	CHECK(bc_event_patch(c, ev, &patch, NULL, NULL) == BC_OK);
	make_jwt("start-cust", (long long)time(NULL) + 600, token);
	cust = connect_as(token);
	CHECK(cust != NULL);
	if (!cust)
		return;
	CHECK(bc_book(cust, ev, NULL, "start-1", BC_PAY_AUTO, &mine) == BC_OK);
	CHECK(bc_book(c, ev, "start-svc", "start-2", BC_PAY_AUTO, &svc) ==
	      BC_OK);
	CHECK(bc_book(c, ev, "start-wait", "start-3", BC_PAY_AUTO, &wait) ==
	      BC_OK);
	CHECK(mine.status == BC_BOOKING_CONFIRMED && !mine.late);
	CHECK(wait.status == BC_BOOKING_WAITLISTED && wait.position == 1);
	while ((int64_t)time(NULL) * 1000 <= start + 200)
		nanosleep(&nap, NULL);

	CHECK(bc_cancel(cust, mine.id, "start-4", &got, NULL) ==
	      BC_EVENT_STARTED);
	CHECK(strcmp(bc_last(cust)->code_name, "event_started") == 0);
	CHECK(bc_cancel(c, svc.id, "start-5", &got, NULL) == BC_OK);
	CHECK(got.status == BC_BOOKING_CANCELLED && got.late);
	CHECK(bc_booking_get(c, svc.id, &got) == BC_OK && got.late);
	CHECK(bc_booking_get(cust, mine.id, &got) == BC_OK);
	CHECK(got.status == BC_BOOKING_CONFIRMED && !got.late);
	CHECK(got.payment_intent_id[0] == '\0' && got.client_secret[0] == '\0');
	/* the waitlist closes at the next tick */
	for (int i = 0; i < 100; i++) {
		CHECK(bc_booking_get(c, wait.id, &got) == BC_OK);
		if (got.status == BC_BOOKING_WAITLIST_EXPIRED)
			break;
		nanosleep(&nap, NULL);
	}
	CHECK(got.status == BC_BOOKING_WAITLIST_EXPIRED && got.position == 0);
	CHECK(bc_customer_bookings(c, "start-wait", list, 4, &n) == BC_OK);
	CHECK(n == 1 && list[0].status == BC_BOOKING_WAITLIST_EXPIRED);
	CHECK(bc_customer_bookings(c, "start-svc", list, 4, &n) == BC_OK);
	CHECK(n == 1 && list[0].late);
	bc_close(cust);
}

/* The life cycle first: it makes the catalogue the others use. */
static void run(bc_client **c)
{
	test_lifecycle(*c);
	test_race(*c);
	test_pipeline(*c);
	test_pipeline_ready(*c);
	test_start_of_class(*c);
	test_replay_across_crash(c);
}

int main(void) { return bin_e2e_main("bin_e2e", run, test_unix_socket); }
