/*
 * test_bin_e2e_auth.c: bookd end to end over the binary protocol, what it
 * refuses: auth (no hello, a bad key, an anon booking, another customer's
 * JWT, an expired JWT); bad clients (an oversized frame is answered
 * frame_too_large and closed while others are served; a client that never
 * reads is disconnected and the server goes on); and bookctl against it.
 *
 * Starting bookd, connecting, the catalogue and main: bin_e2e_test.h.
 */
#include "bin_e2e_test.h"

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
	ev_free =
		first_event_of(svc, make_series(svc, "Auth free", 5, 0, NULL));
	{
		struct bc_series_spec s = daily_spec("Auth priced", 5);
		char first[16];
		uint64_t id = 0;

		s.price_cents = 1500;
		s.currency = "EUR";
		date_after(time(NULL), 2, first);
		s.first_date = first;
		s.last_date = first;
		CHECK(bc_series_create(svc, &s, NULL, &id, NULL) == BC_OK);
		ev_priced = first_event_of(svc, id);
	}

	/* No hello: the first frame is a request. */
	fd = raw_connect();
	CHECK(fd >= 0);
	if (fd >= 0) {
		struct bc_answer a;
		CHECK(raw_status(fd, 1, &a) == 0);
		CHECK(a.code == BC_UNAUTHORIZED);
		CHECK(raw_closed(fd));
		close(fd);
	}
	CHECK(bc_connect(addr, "wrong-key", &c, err, sizeof(err)) == -EACCES);
	CHECK(strstr(err, "unauthorized") != NULL);
	CHECK(bc_connect(addr, "", &c, err, sizeof(err)) == -EACCES);

	/* Anon: reads events, books nothing. */
	c = connect_as(ANON);
	CHECK(c && strcmp(bc_role(c), "anon") == 0);
	if (c) {
		CHECK(bc_event_get(c, ev, &e) == BC_OK);
		CHECK(bc_book(c, ev, "anon-1", "ak", BC_PAY_AUTO, &b) ==
		      BC_FORBIDDEN);
		CHECK(bc_org_create(c, "x", "UTC", NULL, NULL) == BC_FORBIDDEN);
		bc_close(c);
	}

	/* A customer: itself only. */
	make_jwt("jwt-alice", (long long)time(NULL) + 3600, tok);
	c = connect_as(tok);
	CHECK(c && strcmp(bc_role(c), "customer") == 0);
	if (c) {
		CHECK(bc_book(c, ev, NULL, "alice-1", BC_PAY_AUTO, &mine) ==
		      BC_OK);
		CHECK(strcmp(mine.customer_id, "jwt-alice") == 0);
		CHECK(bc_book(c, ev, "jwt-bob", "alice-2", BC_PAY_AUTO, &b) ==
		      BC_FORBIDDEN);
		/* payment "none" from a customer: a free event confirms, a
		 * priced one holds (only the service key skips payment) */
		CHECK(bc_book(c, ev_free, NULL, "alice-3", BC_PAY_NONE, &b) ==
		      BC_OK);
		CHECK(b.status == BC_BOOKING_CONFIRMED);
		CHECK(strcmp(b.customer_id, "jwt-alice") == 0);
		CHECK(bc_book(c, ev_priced, NULL, "alice-4", BC_PAY_NONE, &b) ==
		      BC_OK);
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
		CHECK(bc_cancel(c, b.id, "alice-c1", &tmp, NULL) ==
		      BC_NOT_FOUND);
		CHECK(bc_customer_bookings(c, "jwt-bob", list, 2, &n) ==
		      BC_FORBIDDEN);
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
		printf("customer burst: %u served, %u rate_limited\n", served,
		       limited);
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
		uint8_t hdr[4];
		CHECK(raw_hello(fd, SVC) == BC_OK);
		mp_be32_put(hdr, 2u << 20);
		CHECK(send_all(fd, hdr, 4));
		CHECK(raw_read_answer(fd, &a) == 0);
		CHECK(a.code == BC_FRAME_TOO_LARGE && a.req_id == 0);
		CHECK(raw_closed(fd));
		close(fd);
	}
	CHECK(bc_status(svc, &st) == BC_OK);

	/* Malformed msgpack inside a good frame: answered, connection kept. */
	fd = raw_connect();
	if (fd >= 0) {
		struct buf buf = { 0 };
		msgpack_packer pk;
		size_t start;
		static const uint8_t junk[] = { 0, 0, 0, 3, 0x82, 0xa1, 'v' };
		CHECK(raw_hello(fd, SVC) == BC_OK);
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
		CHECK(raw_status(fd, 5, &a) == 0);
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
			ssize_t k = send(fd, buf.data + sent, buf.size - sent,
					 MSG_NOSIGNAL);
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
		printf("never-reader: sent %zu of %zu bytes, %s\n", sent,
		       buf.size,
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
	snprintf(cmd, sizeof(cmd),
		 "%.2000s/bookctl --addr %s --key %s %.1500s 2>&1", ctl, addr,
		 SVC, args);
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
	CHECK(bookctl("book --event 1", out, sizeof(out)) ==
	      1); /* no customer */
	CHECK(bookctl("show event 99999999", out, sizeof(out)) == 1);
	CHECK(strstr(out, "not_found") != NULL);

	snprintf(path, sizeof(path), "%s.customers.csv", data_dir);
	f = fopen(path, "w");
	fputs("id,email,name\n"
	      "ctl-1,a@example.com,\"Alice, A.\"\n"
	      "bad id,x@example.com,Bad\n"
	      "ctl-2,,\"Bob\nB.\"\n"
	      "ctl-3,c@example.com\n"
	      "ctl-4,d@example.com,Dee\n",
	      f);
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
	fprintf(f,
		"event_id,customer_id,status\n%" PRIu64 ",ctl-1,confirmed\n"
		"%" PRIu64 ",ctl-2,cancelled\nnope,ctl-3,confirmed\n"
		"%" PRIu64 ",ctl-4,waitlisted\n",
		ev, ev, ev);
	fclose(f);
	snprintf(args, sizeof(args), "import bookings %s", path);
	CHECK(bookctl(args, out, sizeof(out)) == 1);
	CHECK(strstr(out, "\"imported\": 2, \"failed\": 1, \"skipped\": 1") !=
	      NULL);
	CHECK(bookctl(args, out, sizeof(out)) == 1);
	unlink(path);
	CHECK(bc_customer_bookings(c, "ctl-1", l, 4, &n) == BC_OK && n == 1);
	CHECK(bc_customer_bookings(c, "ctl-2", l, 4, &n) == BC_OK && n == 0);

	snprintf(args, sizeof(args),
		 "book --event %" PRIu64 " --customer ctl-9 --idem ctl-k9", ev);
	CHECK(bookctl(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"confirmed\"") != NULL);
	CHECK(bookctl(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"replayed\": true") != NULL);
	snprintf(args, sizeof(args), "show event %" PRIu64, ev);
	CHECK(bookctl(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "\"booked\": 3") != NULL);
}

static void run(bc_client **c)
{
	make_catalogue(*c);
	test_auth(*c);
	test_bad_clients(*c);
	test_bookctl(*c);
}

int main(void) { return bin_e2e_main("bin_e2e_auth", run, NULL); }
