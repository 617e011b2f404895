/*
 * test_ops_codec.c: one idempotency fingerprint for both protocols
 * (api/ops.c ops_fingerprint). Both codecs decode an operation into the
 * same struct op_in and fingerprint that, so a request sent with a key
 * over one protocol and retried with the same key over the other is a
 * replay, and another request with that key is idempotency_key_reused.
 *
 * bookd is started as the test_bin_e2e* programs start it
 * (bin_e2e_test.h: bin_e2e_main, the catalogue), then, by the service
 * key:
 *   - a booking over HTTP, retried over the binary protocol: replayed,
 *     the same booking; another customer with that key: reused;
 *   - a booking over the binary protocol, retried over HTTP: 201 with
 *     Idempotent-Replayed and the same booking; another body: 422 reused;
 *   - org.create over HTTP without a timezone, then over the binary
 *     protocol with "UTC" (HTTP's default): the same org, replayed;
 * and by a customer's JWT: its booking over HTTP with an empty body,
 * retried over the binary protocol without customer_id: replayed.
 * Prints "ops_codec: N checks, M failed".
 */
#include "bin_e2e_test.h"

#define ANSWER_SIZE_MAX 65536

/* One HTTP answer: its status, whether it was replayed, its body. */
struct http_answer {
	int status;
	bool replayed;
	const char *body;
};

/* One request on its own connection (Connection: close) as auth, with a
 * key when key is not NULL; -1 when no answer came. */
static int http_call(const char *method, const char *path, const char *auth,
		     const char *key, const char *body, struct http_answer *a)
{
	static char req[8192], ans[ANSWER_SIZE_MAX];
	char hdr[400] = "";
	int n;

	memset(a, 0, sizeof(*a));
	ans[0] = '\0';
	if (key)
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", key);
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
		     "Connection: close\r\n%sContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, path, auth, hdr, strlen(body), body);
	if (n < 0 || (size_t)n >= sizeof(req))
		return a->status = -1;
	a->status =
		bookd_test_http(http_addr, req, (size_t)n, ans, sizeof(ans));
	a->replayed = strstr(ans, "\r\nIdempotent-Replayed: true\r\n") != NULL;
	a->body = strstr(ans, "\r\n\r\n");
	a->body = a->body ? a->body + 4 : "";
	return a->status;
}

/* The "id" of the object named name in an answer's body ("booking",
 * "org"): ids are strings in JSON. 0 when there is none. */
static uint64_t body_id(const struct http_answer *a, const char *name)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":{\"id\":\"", name);
	p = strstr(a->body, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* HTTP first, then the binary protocol with the same key. */
static void test_http_then_binary(bc_client *c, uint64_t ev)
{
	struct http_answer a;
	struct bc_booking b;
	char path[96];
	uint64_t booking;

	snprintf(path, sizeof(path), "/v1/events/%" PRIu64 "/bookings", ev);
	CHECK(http_call("POST", path, SVC, "x-hb-1",
			"{\"customer_id\":\"codec-1\"}", &a) == 201);
	CHECK(!a.replayed);
	booking = body_id(&a, "booking");
	CHECK(booking != 0);
	memset(&b, 0, sizeof(b));
	CHECK(bc_book(c, ev, "codec-1", "x-hb-1", BC_PAY_AUTO, &b) == BC_OK);
	CHECK(bc_last(c)->replayed);
	CHECK(b.id == booking);
	/* another request with the key */
	CHECK(bc_book(c, ev, "codec-2", "x-hb-1", BC_PAY_AUTO, &b) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
	CHECK(bc_book(c, ev + 1, "codec-1", "x-hb-1", BC_PAY_AUTO, &b) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
	/* the same fields over HTTP, in other bytes: still the request */
	CHECK(http_call("POST", path, SVC, "x-hb-1",
			"{ \"payment\": \"stripe\", \"customer_id\": \"codec-1\" }",
			&a) == 422);
	CHECK(strstr(a.body, "\"idempotency_key_reused\"") != NULL);
	CHECK(http_call("POST", path, SVC, "x-hb-1",
			"{  \"customer_id\" : \"codec-1\"  }", &a) == 201);
	CHECK(a.replayed && body_id(&a, "booking") == booking);
}

/* The binary protocol first, then HTTP with the same key. */
static void test_binary_then_http(bc_client *c, uint64_t ev)
{
	struct http_answer a;
	struct bc_booking b;
	char path[96];

	memset(&b, 0, sizeof(b));
	CHECK(bc_book(c, ev, "codec-3", "x-bh-1", BC_PAY_AUTO, &b) == BC_OK);
	CHECK(!bc_last(c)->replayed && b.id != 0);
	snprintf(path, sizeof(path), "/v1/events/%" PRIu64 "/bookings", ev);
	CHECK(http_call("POST", path, SVC, "x-bh-1",
			"{\"customer_id\":\"codec-3\"}", &a) == 201);
	CHECK(a.replayed);
	CHECK(body_id(&a, "booking") == b.id);
	CHECK(http_call("POST", path, SVC, "x-bh-1",
			"{\"customer_id\":\"codec-4\"}", &a) == 422);
	CHECK(strstr(a.body, "\"idempotency_key_reused\"") != NULL);
	CHECK(!a.replayed);
}

/* A field one protocol fills in by default counts as filled. */
static void test_defaults(bc_client *c)
{
	struct http_answer a;
	uint64_t org = 0, id;

	CHECK(http_call("POST", "/v1/orgs", SVC, "x-org-1",
			"{\"name\":\"Codec org\"}", &a) == 201);
	id = body_id(&a, "org");
	CHECK(id != 0);
	CHECK(bc_org_create(c, "Codec org", "UTC", "x-org-1", &org) == BC_OK);
	CHECK(bc_last(c)->replayed && org == id);
	CHECK(bc_org_create(c, "Codec org", "Europe/Vienna", "x-org-1", &org) ==
	      BC_IDEMPOTENCY_KEY_REUSED);
}

/* A customer's own booking: the customer id it leaves out is its own. */
static void test_customer(uint64_t ev)
{
	char tok[512], path[96];
	struct http_answer a;
	struct bc_booking b;
	bc_client *c;

	make_jwt("codec-c", (long long)time(NULL) + 3600, tok);
	snprintf(path, sizeof(path), "/v1/events/%" PRIu64 "/bookings", ev);
	CHECK(http_call("POST", path, tok, "x-cu-1", "{}", &a) == 201);
	c = connect_as(tok);
	CHECK(c != NULL);
	if (!c)
		return;
	memset(&b, 0, sizeof(b));
	CHECK(bc_book(c, ev, NULL, "x-cu-1", BC_PAY_AUTO, &b) == BC_OK);
	CHECK(bc_last(c)->replayed && b.id == body_id(&a, "booking"));
	bc_close(c);
}

static void run(bc_client **cp)
{
	bc_client *c = *cp;
	uint32_t generated = 0;
	uint64_t ev;

	make_catalogue(c);
	ev = first_event_of(c, make_series(c, "Codec", 10, 0, &generated));
	CHECK(ev != 0);
	test_http_then_binary(c, ev);
	test_binary_then_http(c, ev);
	test_defaults(c);
	test_customer(ev);
}

int main(void) { return bin_e2e_main("ops_codec", run, NULL); }
