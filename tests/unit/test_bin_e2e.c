/*
 * test_bin_e2e.c: bookd end to end over the binary protocol, through the
 * client library (bookd_client.h) and raw sockets.
 *
 * Starts bookd (BOOKD_BIN, else ../api/bookd beside this test's directory;
 * exit 77 when there is none) on a temp data dir with ports chosen by the
 * kernel (read back from its start-up line), then:
 *   - the life cycle: catalogue, series, generate, list, book, waitlist,
 *     cancel with promotion, patch, customer bookings, status;
 *   - 200 clients (threads, one connection each) racing for a 20-seat event
 *     with a 100-place waitlist: exactly 20 confirmed, 100 waitlisted with
 *     positions 1..100 in decision (booking id) order, 80 event_full, no
 *     customer twice;
 *   - pipelining: 1000 requests in flight on one connection, every answer
 *     matched once by id; a batch of 50 bookings in one frame;
 *   - idempotent replay, and again after kill -9 and a restart: the same
 *     key gives the same booking, flagged replayed; another request with
 *     the key is idempotency_key_reused;
 *   - auth: no hello, a bad key, an anon booking, another customer's JWT,
 *     an expired JWT;
 *   - an oversized frame is answered frame_too_large and closed while
 *     others are served; a client that never reads is disconnected and
 *     the server goes on;
 *   - SIGTERM: exit 0.
 * The data dir and bookd's log are removed after a clean run, unless
 * BIN_E2E_KEEP is set.
 */
#include "bookd_client.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "bookd_test.h"
#include "jwt_test.h"

#define SKIP 77
#define SVC "e2e-service-key"
#define ANON "e2e-anon-key"
#define SECRET "e2e-jwt-secret"
#define RACE_CLIENT_COUNT 200
#define RACE_CAPACITY 20
#define RACE_WAITLIST 100
#define PIPELINE_COUNT 1000
#define BATCH_COUNT 50



static char bookd_bin[4096];
static char data_dir[256];
static char log_path[300];
static char addr[128];
static char http_addr[128]; /* bookd's HTTP side, for test_same_inputs */
static char bin_listen[320] = "127.0.0.1:0";
static pid_t bookd_pid;
static unsigned start_count; /* start-up lines seen in the log */

/* ---- the server ---- */

static bool find_bookd(void)
{
	return bookd_test_find(bookd_bin, sizeof(bookd_bin));
}

/* Starts bookd, appending to its log, and waits (up to 30 s: a
 * ThreadSanitizer build on a loaded machine took 10 s to recover the log)
 * for this start's line: where it listens. */
static int start_bookd(void)
{
	char *argv[] = { "bookd", "--data-dir", data_dir, "--listen",
			 "127.0.0.1:0", "--binary-listen", bin_listen,
			 "--service-key", SVC, "--anon-key", ANON,
			 "--jwt-secret", SECRET, NULL };

	pid_t pid = bookd_test_spawn(bookd_bin, argv, log_path, true);

	if (pid < 0)
		return pid;
	bookd_pid = pid;
	return bookd_test_wait(bookd_pid, log_path, 600, &start_count, addr,
			       sizeof(addr), http_addr, sizeof(http_addr));
}

static void kill9_bookd(void)
{
	int st;

	kill(bookd_pid, SIGKILL);
	waitpid(bookd_pid, &st, 0);
}

/* ---- helpers ---- */

static bc_client *connect_as(const char *auth)
{
	bc_client *c = NULL;
	char err[256];
	int rc = bc_connect(addr, auth, &c, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "connect %s: %s (%d)\n", addr, err, rc);
		return NULL;
	}
	return c;
}

/* An HS256 JWT for customer sub, expiring exp (unix seconds). */
static void make_jwt(const char *sub, long long exp, char out[512])
{
	char claims[256];

	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", sub, exp);
	jwt_sign(JWT_HS256_HEADER, claims, SECRET, EVP_sha256(), out);
}

static int raw_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(addr, ':');
	int fd;

	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A frame from a packer callback into a struct buf. */
static void frame_map_start(struct buf *b, msgpack_packer *pk, size_t *start,
			    uint32_t n)
{
	msgpack_packer_init(pk, b, mp_buf_write);
	*start = mp_frame_begin(pk, b->size);
	msgpack_pack_map(pk, n);
}

static bool send_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n) {
		ssize_t k = send(fd, q, n, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		q += k;
		n -= (size_t)k;
	}
	return true;
}

/* Reads one answer frame from a raw socket (timeout 5 s): its code, or ""
 * when the connection closed first. */
static int raw_read_answer(int fd, struct bc_answer *a)
{
	static uint8_t buf[1 << 16];
	size_t have = 0;
	msgpack_zone z;

	for (;;) {
		long f = mp_frame_size(buf, have);
		if (f > 0 && (size_t)f <= sizeof(buf)) {
			msgpack_object o;
			int rc;
			msgpack_zone_init(&z, 4096);
			rc = mp_decode(&z, buf + 4, (size_t)f - 4, &o);
			if (rc == 0)
				rc = mp_read_answer(&o, a, NULL, 0, NULL, 0);
			msgpack_zone_destroy(&z);
			return rc;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
		ssize_t k = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (k <= 0)
			return -ECONNRESET;
		have += (size_t)k;
	}
}

/* After an error answer: the server closes (EOF within 5 s). */
static bool raw_closed(int fd)
{
	uint8_t b[4096];

	for (int i = 0; i < 1000; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			return false;
		ssize_t k = recv(fd, b, sizeof(b), 0);
		if (k <= 0)
			return true;
	}
	return false;
}

/* ---- the catalogue every part uses ---- */

static uint64_t org_id, loc_id, ins_id;

static uint64_t make_series_days(bc_client *c, const char *title, uint32_t cap,
				 uint32_t waitlist, unsigned days,
				 uint32_t *generated)
{
	struct bc_series_spec s = {
		.org_id = org_id, .location_id = loc_id, .instructor_id = ins_id,
		.title = title, .capacity = cap, .waitlist_capacity = waitlist,
		.timezone = "Europe/Vienna", .weekdays = "MO,TU,WE,TH,FR,SA,SU",
		.start_time = "23:30", .duration_min = 30, .first_date = NULL,
	};
	char first[16], last[16];
	time_t t = time(NULL) + 2 * 86400;
	struct tm tm;
	uint64_t id = 0;

	gmtime_r(&t, &tm);
	strftime(first, sizeof(first), "%Y-%m-%d", &tm);
	t += (time_t)(days - 1) * 86400;
	gmtime_r(&t, &tm);
	strftime(last, sizeof(last), "%Y-%m-%d", &tm);
	s.first_date = first;
	s.last_date = last;
	CHECK(bc_series_create(c, &s, NULL, &id, generated) == BC_OK);
	return id;
}

static uint64_t make_series(bc_client *c, const char *title, uint32_t cap,
			    uint32_t waitlist, uint32_t *generated)
{
	return make_series_days(c, title, cap, waitlist, 7, generated);
}

/* The first event of a series (list by org, ordered by start). */
static uint64_t first_event_of(bc_client *c, uint64_t series)
{
	static struct bc_event ev[BC_LIST_LIMIT_MAX];
	struct bc_list_query q = { .org_id = org_id, .limit = 500 };
	uint32_t n = 0;

	CHECK(bc_event_list(c, &q, ev, BC_LIST_LIMIT_MAX, &n, NULL) == BC_OK);
	for (uint32_t i = 0; i < n; i++)
		if (ev[i].series_id == series)
			return ev[i].id;
	return 0;
}

static void test_lifecycle(bc_client *c)
{
	struct bc_booking b1, b2, b3, p, got;
	struct bc_event e;
	uint32_t generated = 0, n = 0;
	uint64_t series, ev;
	static struct bc_booking list[BC_LIST_LIMIT_MAX];

	CHECK(bc_org_create(c, "E2E Studio", "Europe/Vienna", "org-key", &org_id) == BC_OK);
	CHECK(org_id > 0);
	/* The same create with its key: replayed, same id. */
	uint64_t again = 0;
	CHECK(bc_org_create(c, "E2E Studio", "Europe/Vienna", "org-key", &again) == BC_OK);
	CHECK(again == org_id && bc_last(c)->replayed);
	CHECK(bc_org_create(c, "Other", "Europe/Vienna", "org-key", &again) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
	CHECK(bc_org_create(c, "Bad", "Mars/Olympus", NULL, &again) == BC_INVALID_REQUEST);
	CHECK(bc_location_create(c, org_id, "Hall", NULL, &loc_id) == BC_OK);
	CHECK(bc_instructor_create(c, org_id, "Ana", NULL, &ins_id) == BC_OK);
	CHECK(bc_location_create(c, 999999, "Nowhere", NULL, &again) == BC_NOT_FOUND);
	CHECK(bc_customer_create(c, "life-1", "l1@example.com", "Life One", NULL) == BC_OK);
	CHECK(bc_customer_create(c, "bad id!", NULL, NULL, NULL) == BC_INVALID_REQUEST);

	series = make_series(c, "Life", 2, 1, &generated);
	CHECK(series > 0);
	/* Series refusals name the field and the value, as HTTP's do. */
	{
		struct bc_series_spec s = {
			.org_id = org_id, .location_id = loc_id,
			.instructor_id = ins_id, .title = "Bad",
			.capacity = 2, .timezone = "UTC",
			.weekdays = "MO,XX", .start_time = "10:00",
			.duration_min = 30, .first_date = "2030-01-10",
		};
		uint64_t id = 0;

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
	CHECK(bc_book(c, ev, "life-4", "lk4", BC_PAY_AUTO, &got) == BC_EVENT_FULL);
	CHECK(bc_book(c, ev, "life-1", "lk5", BC_PAY_AUTO, &got) == BC_ALREADY_BOOKED);
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
	CHECK(bc_cancel(c, 12345, NULL, &got, &p) == BC_IDEMPOTENCY_KEY_REQUIRED);

	CHECK(bc_customer_bookings(c, "life-1", list, 50, &n) == BC_OK);
	CHECK(n == 1 && list[0].id == b1.id && list[0].status == BC_BOOKING_CANCELLED);

	struct bc_event_patch patch = { .capacity = 1 };
	CHECK(bc_event_patch(c, ev, &patch, NULL, &e) == BC_CAPACITY_BELOW_TAKEN);
	patch.capacity = 5;
	CHECK(bc_event_patch(c, ev, &patch, NULL, &e) == BC_OK);
	CHECK(e.capacity == 5 && e.booked == 2 && e.available == 3);
	patch.capacity = -1;
	patch.cancel = true;
	CHECK(bc_event_patch(c, ev, &patch, "pk", &e) == BC_OK);
	CHECK(e.status == BC_EVENT_CANCELLED);
	CHECK(bc_book(c, ev, "life-6", "lk6", BC_PAY_AUTO, &got) == BC_EVENT_NOT_BOOKABLE);
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
			      (page[i].start_at == last_start && page[i].id > last_id));
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
	const struct racer *x = *(struct racer *const *)a, *y = *(struct racer *const *)b;

	return x->booking.id < y->booking.id ? -1 : x->booking.id > y->booking.id;
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
		r[i] = (struct racer){ .index = i, .event_id = ev, .barrier = &barrier };
		if (pthread_create(&t[i], NULL, race_main, &r[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned i = 0; i < RACE_CLIENT_COUNT; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (unsigned i = 0; i < RACE_CLIENT_COUNT; i++) {
		if (r[i].code == BC_OK && r[i].booking.status == BC_BOOKING_CONFIRMED)
			confirmed++;
		else if (r[i].code == BC_OK &&
			 r[i].booking.status == BC_BOOKING_WAITLISTED)
			w[nw++] = &r[i], waitlisted++;
		else if (r[i].code == BC_EVENT_FULL)
			full++;
		else
			other++;
	}
	printf("race: %u confirmed, %u waitlisted, %u full, %u other\n", confirmed,
	       waitlisted, full, other);
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
		int rc = i % 4 == 3 ? bc_event_get_async(c, ev, &id) :
				      bc_book_async(c, ev, cust, key, BC_PAY_AUTO, &id);
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

	/* A batch: one frame, one answer per item; one duplicate inside
	 * (items 6 and 7: which one wins is the core's order of decision,
	 * items with different keys may be decided in any order). */
	for (unsigned i = 0; i < BATCH_COUNT; i++) {
		snprintf(custs[i], sizeof(custs[i]), "batch-%u", i == 7 ? 6 : i);
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
		uint64_t s2 = make_series(c, "Batches", BATCHES * ITEMS, 0, NULL);
		uint64_t ev2 = first_event_of(c, s2);
		for (unsigned b = 0; b < BATCHES; b++) {
			for (unsigned i = 0; i < ITEMS; i++) {
				snprintf(bc[b][i], sizeof(bc[b][i]), "bb-%u-%u", b, i);
				snprintf(bk[b][i], sizeof(bk[b][i]), "bbk-%u-%u", b, i);
				big[b][i] = (struct bc_book_item){ .event_id = ev2,
					.customer_id = bc[b][i], .key = bk[b][i] };
			}
			CHECK(bc_book_batch_async(c, big[b], ITEMS, &ids[b]) == 0);
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
				strcmp(a.booking.customer_id, bc[b][a.index]) == 0;
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
	CHECK(bc_book_batch(c, items, 5, codes, out) == BC_IDEMPOTENCY_KEY_REQUIRED);
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
	CHECK(bc_book(c, ev, "crash-1", "crash-key", BC_PAY_AUTO, &again) == BC_OK);
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
	CHECK(bc_book(c, ev, "crash-1", "crash-key", BC_PAY_AUTO, &again) == BC_OK);
	CHECK(bc_last(c)->replayed && again.id == b.id);
	CHECK(again.status == BC_BOOKING_CONFIRMED);
	CHECK(bc_book(c, ev, "crash-2", "crash-key", BC_PAY_AUTO, &again) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
	/* Everything acknowledged before the crash is there. */
	struct bc_event e;
	CHECK(bc_event_get(c, ev, &e) == BC_OK);
	CHECK(e.booked == 1);
}

/* ---- auth ---- */

static void test_auth(bc_client *svc)
{
	char tok[512], err[256];
	bc_client *c = NULL;
	struct bc_booking b, mine;
	struct bc_event e;
	uint64_t series, ev, ev_free, ev_priced = 0;
	int fd;

	series = make_series(svc, "Auth", 5, 0, NULL);
	ev = first_event_of(svc, series);
	ev_free = first_event_of(svc, make_series(svc, "Auth free", 5, 0, NULL));
	{
		struct bc_series_spec s = {
			.org_id = org_id, .location_id = loc_id,
			.instructor_id = ins_id, .title = "Auth priced",
			.capacity = 5, .price_cents = 1500, .currency = "EUR",
			.timezone = "UTC", .weekdays = "MO,TU,WE,TH,FR,SA,SU",
			.start_time = "23:30", .duration_min = 30,
		};
		char first[16];
		time_t t = time(NULL) + 2 * 86400;
		struct tm tm;
		uint64_t id = 0;

		gmtime_r(&t, &tm);
		strftime(first, sizeof(first), "%Y-%m-%d", &tm);
		s.first_date = first;
		s.last_date = first;
		CHECK(bc_series_create(svc, &s, NULL, &id, NULL) == BC_OK);
		ev_priced = first_event_of(svc, id);
	}

	/* No hello: the first frame is a request. */
	fd = raw_connect();
	CHECK(fd >= 0);
	if (fd >= 0) {
		struct buf buf = { 0 };
		msgpack_packer pk;
		size_t start;
		struct bc_answer a;
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "id", 1);
		mp_pack_kv_str(&pk, "op", "status");
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(fd, buf.data, buf.size));
		CHECK(raw_read_answer(fd, &a) == 0);
		CHECK(a.code == BC_UNAUTHORIZED);
		CHECK(raw_closed(fd));
		close(fd);
		buf_free(&buf);
	}
	CHECK(bc_connect(addr, "wrong-key", &c, err, sizeof(err)) == -EACCES);
	CHECK(strstr(err, "unauthorized") != NULL);
	CHECK(bc_connect(addr, "", &c, err, sizeof(err)) == -EACCES);

	/* Anon: reads events, books nothing. */
	c = connect_as(ANON);
	CHECK(c && strcmp(bc_role(c), "anon") == 0);
	if (c) {
		CHECK(bc_event_get(c, ev, &e) == BC_OK);
		CHECK(bc_book(c, ev, "anon-1", "ak", BC_PAY_AUTO, &b) == BC_FORBIDDEN);
		CHECK(bc_org_create(c, "x", "UTC", NULL, NULL) == BC_FORBIDDEN);
		bc_close(c);
	}

	/* A customer: itself only. */
	make_jwt("jwt-alice", (long long)time(NULL) + 3600, tok);
	c = connect_as(tok);
	CHECK(c && strcmp(bc_role(c), "customer") == 0);
	if (c) {
		CHECK(bc_book(c, ev, NULL, "alice-1", BC_PAY_AUTO, &mine) == BC_OK);
		CHECK(strcmp(mine.customer_id, "jwt-alice") == 0);
		CHECK(bc_book(c, ev, "jwt-bob", "alice-2", BC_PAY_AUTO, &b) == BC_FORBIDDEN);
		/* payment "none" from a customer: a free event confirms, a
		 * priced one holds (only the service key skips payment) */
		CHECK(bc_book(c, ev_free, NULL, "alice-3", BC_PAY_NONE, &b) == BC_OK);
		CHECK(b.status == BC_BOOKING_CONFIRMED);
		CHECK(strcmp(b.customer_id, "jwt-alice") == 0);
		CHECK(bc_book(c, ev_priced, NULL, "alice-4", BC_PAY_NONE, &b) == BC_OK);
		CHECK(b.status == BC_BOOKING_PENDING_PAYMENT);
		CHECK(b.hold_expires_at > 0);
		CHECK(bc_status(c, NULL) == BC_FORBIDDEN);
		CHECK(bc_booking_get(c, mine.id, &b) == BC_OK);
		bc_close(c);
	}
	/* Bob's booking, made by the service. */
	CHECK(bc_book(svc, ev, "jwt-bob", "bob-1", BC_PAY_AUTO, &b) == BC_OK);
	c = connect_as(tok);
	if (c) {
		struct bc_booking tmp, list[4];
		uint32_t n = 0;
		CHECK(bc_booking_get(c, b.id, &tmp) == BC_NOT_FOUND);
		CHECK(bc_cancel(c, b.id, "alice-c1", &tmp, NULL) == BC_NOT_FOUND);
		CHECK(bc_customer_bookings(c, "jwt-bob", list, 2, &n) == BC_FORBIDDEN);
		CHECK(bc_customer_bookings(c, NULL, list, 4, &n) == BC_OK);
		CHECK(n == 3); /* mine, the free and the priced ones */
		CHECK(list[0].id == mine.id || list[1].id == mine.id ||
		      list[2].id == mine.id);
		CHECK(bc_cancel(c, mine.id, "alice-c2", &tmp, NULL) == BC_OK);
		/* A customer's rate limit (20/s, burst 40 by default): a burst
		 * of reads is refused in part, with retry_after. */
		unsigned limited = 0, served = 0;
		for (unsigned i = 0; i < 100; i++) {
			int rc = bc_booking_get(c, mine.id, &tmp);
			if (rc == BC_RATE_LIMITED) {
				limited++;
				CHECK(bc_last(c)->retry_after_s >= 1);
			} else {
				served += rc == BC_OK;
			}
		}
		printf("customer burst: %u served, %u rate_limited\n", served, limited);
		CHECK(limited > 0 && served > 0);
		bc_close(c);
	}
	CHECK(bc_booking_get(svc, b.id, &b) == BC_OK);
	CHECK(b.status == BC_BOOKING_CONFIRMED);
	/* Expired, and signed with another secret. */
	make_jwt("jwt-alice", (long long)time(NULL) - 10, tok);
	CHECK(bc_connect(addr, tok, &c, err, sizeof(err)) == -EACCES);
	CHECK(strstr(err, "expired") != NULL);
	make_jwt("jwt-alice", (long long)time(NULL) + 3600, tok);
	tok[strlen(tok) - 2] ^= 1;
	CHECK(bc_connect(addr, tok, &c, err, sizeof(err)) == -EACCES);
	/* A token that runs out while connected: the next request is
	 * refused (token_expired) and the connection closed. */
	long long exp = (long long)time(NULL) + 2;
	make_jwt("jwt-alice", exp, tok);
	c = connect_as(tok);
	CHECK(c != NULL);
	if (c) {
		struct bc_booking tmp;
		int rc = bc_booking_get(c, mine.id, &tmp);
		CHECK(rc == BC_OK || rc == BC_RATE_LIMITED); /* alice's burst */
		while ((long long)time(NULL) < exp)
			usleep(50000);
		CHECK(bc_booking_get(c, mine.id, &tmp) == BC_TOKEN_EXPIRED);
		CHECK(bc_booking_get(c, mine.id, &tmp) < 0); /* closed */
		bc_close(c);
	}
}

/* ---- both protocols accept the same inputs ---- */

/* One HTTP request on its own connection: the answer's status. */
static int http_status(const char *method, const char *path,
		       const char *headers, const char *body, size_t body_n)
{
	static char req[70000], ans[65536];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(http_addr, ':');
	char host[64];
	int fd, n, st = -1;
	size_t have = 0;

	if (!colon || (size_t)(colon - http_addr) >= sizeof(host))
		return -1;
	memcpy(host, http_addr, (size_t)(colon - http_addr));
	host[colon - http_addr] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n"
		     "Authorization: Bearer " SVC "\r\nConnection: close\r\n"
		     "%sContent-Length: %zu\r\n\r\n", method, path, headers,
		     body_n);
	if (n < 0 || (size_t)n + body_n > sizeof(req))
		return -1;
	memcpy(req + n, body, body_n);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send_all(fd, req, (size_t)n + body_n)) {
		for (;;) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			ssize_t k;
			if (poll(&pf, 1, 5000) <= 0)
				break;
			k = recv(fd, ans + have, sizeof(ans) - 1 - have, 0);
			if (k <= 0)
				break;
			have += (size_t)k;
			if (have == sizeof(ans) - 1)
				break;
		}
		ans[have] = '\0';
		if (sscanf(ans, "HTTP/1.1 %d", &st) != 1)
			st = -1;
	}
	close(fd);
	return st;
}

/* JSON string of n bytes: quotes, backslash and control bytes escaped
 * (NUL as \u0000), every other byte as it is (so invalid UTF-8 stays
 * invalid). */
static size_t json_str(char *o, const char *v, size_t n)
{
	size_t k = 0;

	o[k++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)v[i];
		if (b == '"' || b == '\\') {
			o[k++] = '\\';
			o[k++] = (char)b;
		} else if (b < 0x20) {
			k += (size_t)sprintf(o + k, "\\u%04x", b);
		} else {
			o[k++] = (char)b;
		}
	}
	o[k++] = '"';
	return k;
}

/* A binary request on fd with one string field (name, n bytes) besides
 * the fixed ones: the answer's code. */
static int bin_one(int fd, const char *op, const char *name, const char *v,
		   size_t n, const char *k1, const char *v1, const char *k2,
		   uint64_t v2)
{
	static uint64_t id = 100;
	struct buf buf = { 0 };
	msgpack_packer pk;
	struct bc_answer a;
	size_t start;
	int rc;

	frame_map_start(&buf, &pk, &start, 3 + (k1 != NULL) + (k2 != NULL));
	mp_pack_kv_uint(&pk, "id", ++id);
	mp_pack_kv_str(&pk, "op", op);
	mp_pack_str(&pk, name);
	mp_pack_strn(&pk, v, n);
	if (k1)
		mp_pack_kv_str(&pk, k1, v1);
	if (k2)
		mp_pack_kv_uint(&pk, k2, v2);
	mp_frame_end(buf.data, start, buf.size);
	rc = send_all(fd, buf.data, buf.size) ? raw_read_answer(fd, &a) : -1;
	buf_free(&buf);
	if (rc != 0)
		return -1;
	CHECK(a.req_id == id);
	return a.code;
}

struct same_case {
	const char *v;
	size_t n; /* 0: strlen */
	bool ok;  /* what both must say: accepted */
};

/* The same good and bad values through HTTP and the binary protocol:
 * ids, idempotency keys, customer ids and free text; both must accept
 * exactly the same ones (the binary protocol took "01" and keys with NUL
 * or control bytes, and invalid UTF-8 in names). */
static void test_same_inputs(bc_client *svc)
{
	static char big[300], path[512], body[2048], esc[1400];
	char ev_s[32], org_s[32];
	uint64_t ev, org = 0;
	unsigned diff = 0;
	int fd, hs, bc;

	ev = first_event_of(svc, make_series(svc, "Same", 1000, 0, NULL));
	CHECK(bc_org_create(svc, "Same", "UTC", NULL, &org) == BC_OK);
	snprintf(ev_s, sizeof(ev_s), "%" PRIu64, ev);
	snprintf(org_s, sizeof(org_s), "%" PRIu64, org);
	fd = raw_connect();
	CHECK(fd >= 0);
	if (fd < 0 || !http_addr[0])
		return;
	{
		struct buf buf = { 0 };
		msgpack_packer pk;
		struct bc_answer a;
		size_t start;
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "v", 1);
		mp_pack_kv_str(&pk, "auth", SVC);
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(fd, buf.data, buf.size));
		CHECK(raw_read_answer(fd, &a) == 0 && a.code == BC_OK);
		buf_free(&buf);
	}

	/* Ids: an event's in the path (HTTP) or event_id (binary); an org's
	 * in a location's body. */
	char id0[40], idp[40], ids[40], ide[40];
	snprintf(id0, sizeof(id0), "0%s", ev_s);
	snprintf(idp, sizeof(idp), "+%s", ev_s);
	snprintf(ids, sizeof(ids), "%s ", ev_s);
	snprintf(ide, sizeof(ide), "%se0", ev_s);
	const struct same_case ids_[] = {
		{ ev_s, 0, true }, { id0, 0, false }, { idp, 0, false },
		{ ids, 0, false }, { ide, 0, false }, { "0", 0, false },
		{ "00", 0, false }, { "18446744073709551616", 0, false },
		{ "", 0, false },
	};
	for (size_t i = 0; i < sizeof(ids_) / sizeof(ids_[0]); i++) {
		const struct same_case *c = &ids_[i];
		size_t n = c->n ? c->n : strlen(c->v);
		bool h_ok, b_ok;
		/* the path: as it would be typed, a space percent-encoded */
		snprintf(path, sizeof(path), "/v1/events/%.*s", (int)n, c->v);
		if (n && c->v[n - 1] == ' ')
			snprintf(path, sizeof(path), "/v1/events/%.*s%%20",
				 (int)(n - 1), c->v);
		hs = http_status("GET", path, "", "", 0);
		bc = bin_one(fd, "event.get", "event_id", c->v, n, NULL, NULL,
			     NULL, 0);
		h_ok = hs == 200;
		b_ok = bc == BC_OK;
		if (h_ok != c->ok || b_ok != c->ok) {
			fprintf(stderr, "event id \"%s\": http %d, binary %d\n",
				c->v, hs, bc);
			diff++;
		}
		/* the same value as a body id (location.create's org_id) */
		const char *v = c->v == ev_s ? org_s : c->v;
		char o0[40];
		if (c->v == id0) {
			snprintf(o0, sizeof(o0), "0%s", org_s);
			v = o0;
		}
		n = strlen(v);
		esc[json_str(esc, v, n)] = '\0';
		snprintf(body, sizeof(body), "{\"org_id\":%s,\"name\":\"L\"}",
			 esc);
		hs = http_status("POST", "/v1/locations", "", body, strlen(body));
		bc = bin_one(fd, "location.create", "org_id", v, n, "name", "L",
			     NULL, 0);
		if ((hs == 201) != (bc == BC_OK) || (hs == 201) != c->ok) {
			fprintf(stderr, "org id \"%s\": http %d, binary %d\n",
				v, hs, bc);
			diff++;
		}
	}

	/* Idempotency keys, on a book: HTTP by the service key, the binary
	 * protocol by a customer (keys are scoped by the caller: the same key
	 * from the service key on both would be one key, reused). Accepted:
	 * decided (booked, or already booked), not refused as invalid. */
	int cfd = raw_connect();
	CHECK(cfd >= 0);
	if (cfd < 0)
		return;
	{
		struct buf buf = { 0 };
		msgpack_packer pk;
		struct bc_answer a;
		size_t start;
		char tok[512];
		make_jwt("same-bk", (long long)time(NULL) + 3600, tok);
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "v", 1);
		mp_pack_kv_str(&pk, "auth", tok);
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(cfd, buf.data, buf.size));
		CHECK(raw_read_answer(cfd, &a) == 0 && a.code == BC_OK);
		buf_free(&buf);
	}
	memset(big, 'k', 256);
	const struct same_case keys[] = {
		{ "k-1", 0, true },   { "a b", 0, true },    { "~!@#", 0, true },
		{ big, 255, true },   { big, 256, false },   { "a\x01" "b", 0, false },
		{ "a\tb", 0, false }, { "a\x7f", 0, false }, { "\xc3\xa9", 0, false },
		{ "a\0b", 3, false },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct same_case *c = &keys[i];
		size_t n = c->n ? c->n : strlen(c->v);
		char hdr[400], cust[32], bkey[300];
		snprintf(cust, sizeof(cust), "same-h-%zu", i);
		snprintf(body, sizeof(body), "{\"customer_id\":\"%s\"}", cust);
		snprintf(path, sizeof(path), "/v1/events/%s/bookings", ev_s);
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %.*s\r\n", (int)n,
			 c->v);
		/* a NUL cannot be in a header line: HTTP sees the cut key,
		 * which the parser refuses as a malformed header anyway */
		hs = memchr(c->v, 0, n) ? 400
				       : http_status("POST", path, hdr, body,
						     strlen(body));
		snprintf(cust, sizeof(cust), "same-bk");
		memcpy(bkey, c->v, n);
		{
			struct buf buf = { 0 };
			msgpack_packer pk;
			struct bc_answer a;
			size_t start;
			frame_map_start(&buf, &pk, &start, 5);
			mp_pack_kv_uint(&pk, "id", 7000 + i);
			mp_pack_kv_str(&pk, "op", "book");
			mp_pack_kv_uint(&pk, "event_id", ev);
			mp_pack_kv_str(&pk, "customer_id", cust);
			mp_pack_str(&pk, "key");
			mp_pack_strn(&pk, bkey, n);
			mp_frame_end(buf.data, start, buf.size);
			CHECK(send_all(cfd, buf.data, buf.size));
			bc = raw_read_answer(cfd, &a) == 0 ? a.code : -1;
			buf_free(&buf);
		}
		if ((hs == 201) != c->ok ||
		    (bc == BC_OK || bc == BC_ALREADY_BOOKED) != c->ok) {
			fprintf(stderr, "key %zu (%zu bytes): http %d, binary %d\n",
				i, n, hs, bc);
			diff++;
		}
	}

	/* Customer ids and free text (an org's name). */
	memset(big, 'c', 65);
	const struct same_case custs[] = {
		{ "c-1", 0, true }, { "a.b_c:d@e-f", 0, true }, { big, 64, true },
		{ big, 65, false }, { "a b", 0, false }, { "\xc3\xa9", 0, false },
		{ "", 0, false },   { "a\0b", 3, false },
	};
	for (size_t i = 0; i < sizeof(custs) / sizeof(custs[0]); i++) {
		const struct same_case *c = &custs[i];
		size_t n = c->n ? c->n : strlen(c->v);
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: cu-h-%zu\r\n", i);
		esc[json_str(esc, c->v, n)] = '\0';
		snprintf(body, sizeof(body), "{\"customer_id\":%s}", esc);
		snprintf(path, sizeof(path), "/v1/events/%s/bookings", ev_s);
		hs = http_status("POST", path, hdr, body, strlen(body));
		snprintf(hdr, sizeof(hdr), "cu-b-%zu", i);
		bc = bin_one(fd, "book", "customer_id", c->v, n, "key", hdr,
			     "event_id", ev);
		/* the same customer as HTTP's: already booked, yet decided */
		if ((hs == 201) != c->ok ||
		    (bc == BC_OK || bc == BC_ALREADY_BOOKED) != c->ok) {
			fprintf(stderr, "customer %zu: http %d, binary %d\n", i,
				hs, bc);
			diff++;
		}
	}
	const struct same_case texts[] = {
		{ "Studio", 0, true },         { "caf\xc3\xa9", 0, true },
		{ "a\x01" "b", 0, true },         { "\xf0\x9f\x98\x80", 0, true },
		{ "\xff", 0, false },          { "\xc3", 0, false },
		{ "\xc0\x80", 0, false },      { "\xed\xa0\x80", 0, false },
		{ "\xf4\x90\x80\x80", 0, false }, { "a\0b", 3, false },
		{ "", 0, false },
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const struct same_case *c = &texts[i];
		size_t n = c->n ? c->n : strlen(c->v);
		esc[json_str(esc, c->v, n)] = '\0';
		snprintf(body, sizeof(body), "{\"name\":%s,\"timezone\":\"UTC\"}",
			 esc);
		hs = http_status("POST", "/v1/orgs", "", body, strlen(body));
		bc = bin_one(fd, "org.create", "name", c->v, n, "timezone",
			     "UTC", NULL, 0);
		if ((hs == 201) != c->ok || (bc == BC_OK) != c->ok) {
			fprintf(stderr, "name %zu: http %d, binary %d\n", i, hs,
				bc);
			diff++;
		}
	}
	printf("same inputs: %u differences\n", diff);
	CHECK(diff == 0);
	close(cfd);
	close(fd);
}

/* ---- bad clients ---- */

static void test_bad_clients(bc_client *svc)
{
	struct bc_status_info st;
	struct bc_answer a;
	int fd;

	/* Oversized frame: answered, closed; the others go on. */
	fd = raw_connect();
	CHECK(fd >= 0);
	if (fd >= 0) {
		struct buf buf = { 0 };
		msgpack_packer pk;
		size_t start;
		uint8_t hdr[4];
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "v", 1);
		mp_pack_kv_str(&pk, "auth", SVC);
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(fd, buf.data, buf.size));
		CHECK(raw_read_answer(fd, &a) == 0 && a.code == BC_OK);
		mp_be32_put(hdr, 2u << 20);
		CHECK(send_all(fd, hdr, 4));
		CHECK(raw_read_answer(fd, &a) == 0);
		CHECK(a.code == BC_FRAME_TOO_LARGE && a.req_id == 0);
		CHECK(raw_closed(fd));
		close(fd);
		buf_free(&buf);
	}
	CHECK(bc_status(svc, &st) == BC_OK);

	/* Malformed msgpack inside a good frame: answered, connection kept. */
	fd = raw_connect();
	if (fd >= 0) {
		struct buf buf = { 0 };
		msgpack_packer pk;
		size_t start;
		static const uint8_t junk[] = { 0, 0, 0, 3, 0x82, 0xa1, 'v' };
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "v", 1);
		mp_pack_kv_str(&pk, "auth", SVC);
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(fd, buf.data, buf.size));
		CHECK(raw_read_answer(fd, &a) == 0 && a.code == BC_OK);
		CHECK(send_all(fd, junk, sizeof(junk)));
		CHECK(raw_read_answer(fd, &a) == 0);
		CHECK(a.code == BC_INVALID_REQUEST && a.req_id == 0);
		/* A good request map with a trailing byte: refused with its
		 * own id (was 0), the connection kept. */
		buf.size = 0;
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "id", 9);
		mp_pack_kv_str(&pk, "op", "status");
		msgpack_pack_nil(&pk);
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(fd, buf.data, buf.size));
		CHECK(raw_read_answer(fd, &a) == 0);
		CHECK(a.code == BC_INVALID_REQUEST && a.req_id == 9);
		CHECK(strstr(a.message, "trailing") != NULL);
		buf.size = 0;
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "id", 5);
		mp_pack_kv_str(&pk, "op", "status");
		mp_frame_end(buf.data, start, buf.size);
		CHECK(send_all(fd, buf.data, buf.size));
		CHECK(raw_read_answer(fd, &a) == 0);
		CHECK(a.code == BC_OK && a.req_id == 5);
		close(fd);
		buf_free(&buf);
	}

	/* A client that never reads: large answers pile up; the server drops
	 * it (its connection count goes back) and goes on. */
	uint64_t conns_before;
	CHECK(bc_status(svc, &st) == BC_OK);
	conns_before = st.conn_count;
	make_series_days(svc, "Bulk", 5, 0, 100, NULL);
	fd = raw_connect();
	if (fd >= 0) {
		struct buf buf = { 0 };
		msgpack_packer pk;
		size_t start, sent = 0;
		bool dropped = false;
		frame_map_start(&buf, &pk, &start, 2);
		mp_pack_kv_uint(&pk, "v", 1);
		mp_pack_kv_str(&pk, "auth", SVC);
		mp_frame_end(buf.data, start, buf.size);
		for (unsigned i = 0; i < 2000; i++) {
			frame_map_start(&buf, &pk, &start, 4);
			mp_pack_kv_uint(&pk, "id", i + 1);
			mp_pack_kv_str(&pk, "op", "event.list");
			mp_pack_kv_uint(&pk, "org_id", org_id);
			mp_pack_kv_uint(&pk, "limit", 500);
			mp_frame_end(buf.data, start, buf.size);
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		for (int tries = 0; sent < buf.size && tries < 300; tries++) {
			ssize_t k = send(fd, buf.data + sent, buf.size - sent, MSG_NOSIGNAL);
			if (k > 0)
				sent += (size_t)k;
			else if (k < 0 && errno != EAGAIN)
				break;
			else
				usleep(10 * 1000);
		}
		for (int i = 0; i < 100 && !dropped; i++) {
			/* Meanwhile the server answers others at once. */
			CHECK(bc_status(svc, &st) == BC_OK);
			dropped = st.conn_count <= conns_before;
			if (!dropped)
				usleep(50 * 1000);
		}
		printf("never-reader: sent %zu of %zu bytes, %s\n", sent, buf.size,
		       dropped ? "dropped by the server" : "still connected");
		CHECK(dropped);
		close(fd);
		buf_free(&buf);
	}
	CHECK(bc_status(svc, &st) == BC_OK);
}

/* ---- bookctl ---- */

/* Runs bookctl with args against the server: its exit status; its stdout
 * and stderr (merged) in out. */
static int bookctl(const char *args, char *out, size_t out_size)
{
	char cmd[4096], ctl[4096];
	FILE *p;
	size_t n;
	int st;

	snprintf(ctl, sizeof(ctl), "%s", bookd_bin);
	*strrchr(ctl, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "%.2000s/bookctl --addr %s --key %s %.1500s 2>&1", ctl,
		 addr, SVC, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, out_size - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_bookctl(bc_client *c)
{
	static char out[1 << 16];
	char path[300], args[600];
	FILE *f;
	struct bc_booking l[4];
	uint32_t n = 0;
	uint64_t series, ev;

	CHECK(bookctl("--help", out, sizeof(out)) == 0);
	CHECK(strstr(out, "import customers FILE") != NULL);
	CHECK(bookctl("status", out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"shards\"") != NULL);
	CHECK(bookctl("frobnicate", out, sizeof(out)) == 2);
	CHECK(bookctl("book --event 1", out, sizeof(out)) == 1); /* no customer */
	CHECK(bookctl("show event 99999999", out, sizeof(out)) == 1);
	CHECK(strstr(out, "not_found") != NULL);

	snprintf(path, sizeof(path), "%s.customers.csv", data_dir);
	f = fopen(path, "w");
	fputs("id,email,name\n"
	      "ctl-1,a@example.com,\"Alice, A.\"\n"
	      "bad id,x@example.com,Bad\n"
	      "ctl-2,,\"Bob\nB.\"\n"
	      "ctl-3,c@example.com\n"
	      "ctl-4,d@example.com,Dee\n", f);
	fclose(f);
	snprintf(args, sizeof(args), "import customers %s", path);
	CHECK(bookctl(args, out, sizeof(out)) == 1);
	CHECK(strstr(out, "\"imported\": 3, \"failed\": 2") != NULL);
	CHECK(strstr(out, ":3: customer id") != NULL); /* line numbers */
	CHECK(strstr(out, ":6: 2 fields") != NULL);
	/* Again: the same rows apply nothing twice (replays). */
	CHECK(bookctl(args, out, sizeof(out)) == 1);
	CHECK(strstr(out, "\"imported\": 3, \"failed\": 2") != NULL);
	unlink(path);

	series = make_series(c, "Ctl", 10, 0, NULL);
	ev = first_event_of(c, series);
	snprintf(path, sizeof(path), "%s.bookings.csv", data_dir);
	f = fopen(path, "w");
	fprintf(f, "event_id,customer_id,status\n%" PRIu64 ",ctl-1,confirmed\n"
		   "%" PRIu64 ",ctl-2,cancelled\nnope,ctl-3,confirmed\n"
		   "%" PRIu64 ",ctl-4,waitlisted\n", ev, ev, ev);
	fclose(f);
	snprintf(args, sizeof(args), "import bookings %s", path);
	CHECK(bookctl(args, out, sizeof(out)) == 1);
	CHECK(strstr(out, "\"imported\": 2, \"failed\": 1, \"skipped\": 1") != NULL);
	CHECK(bookctl(args, out, sizeof(out)) == 1);
	unlink(path);
	CHECK(bc_customer_bookings(c, "ctl-1", l, 4, &n) == BC_OK && n == 1);
	CHECK(bc_customer_bookings(c, "ctl-2", l, 4, &n) == BC_OK && n == 0);

	snprintf(args, sizeof(args), "book --event %" PRIu64 " --customer ctl-9 --idem ctl-k9", ev);
	CHECK(bookctl(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"confirmed\"") != NULL);
	CHECK(bookctl(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"replayed\": true") != NULL);
	snprintf(args, sizeof(args), "show event %" PRIu64, ev);
	CHECK(bookctl(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"booked\": 3") != NULL);
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

int main(void)
{
	bc_client *c;
	int st;

	signal(SIGPIPE, SIG_IGN);
	if (!find_bookd()) {
		printf("bin_e2e: no bookd binary (BOOKD_BIN or ../api/bookd): skip\n");
		return SKIP;
	}
	snprintf(data_dir, sizeof(data_dir), "/tmp/bookd-bin-e2e-XXXXXX");
	if (!mkdtemp(data_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(log_path, sizeof(log_path), "%s.log", data_dir);
	if (start_bookd() != 0) {
		fprintf(stderr, "bin_e2e: bookd did not start (log %s)\n", log_path);
		return 1;
	}
	printf("bin_e2e: %s on %s, data %s\n", bookd_bin, addr, data_dir);
	c = connect_as(SVC);
	if (!c) {
		kill9_bookd();
		return 1;
	}
	CHECK(strcmp(bc_role(c), "service") == 0);
	test_lifecycle(c);
	test_race(c);
	test_pipeline(c);
	test_auth(c);
	test_bad_clients(c);
	test_same_inputs(c);
	test_bookctl(c);
	test_replay_across_crash(&c);
	bc_close(c);

	/* SIGTERM: drain, sync, exit 0. */
	kill(bookd_pid, SIGTERM);
	CHECK(waitpid(bookd_pid, &st, 0) == bookd_pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	test_unix_socket();
	/* A sanitizer build of bookd reports into its log. */
	{
		static char logbuf[1 << 20];
		FILE *f = fopen(log_path, "r");
		size_t n = f ? fread(logbuf, 1, sizeof(logbuf) - 1, f) : 0;
		if (f)
			fclose(f);
		logbuf[n] = '\0';
		CHECK(strstr(logbuf, "Sanitizer") == NULL);
		CHECK(strstr(logbuf, "runtime error") == NULL);
		if (strstr(logbuf, "Sanitizer") || strstr(logbuf, "runtime error"))
			fprintf(stderr, "bookd's log %s:\n%s\n", log_path, logbuf);
	}
	printf("bin_e2e: %u checks, %u failed\n", check_count, check_fail_count);
	if (check_fail_count == 0 && !getenv("BIN_E2E_KEEP")) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", data_dir, log_path);
		(void)!system(cmd);
	}
	return check_fail_count ? 1 : 0;
}
