/*
 * test_ops_codec.c: one idempotency fingerprint for both protocols
 * (api/ops.c ops_fingerprint). Both codecs decode an operation into the
 * same struct op_in and fingerprint that, so a request sent with a key
 * over one protocol and retried with the same key over the other is a
 * replay, and another request with that key is idempotency_key_reused.
 *
 * Starts bookd (BOOKD_BIN, else ../api/bookd beside this test's
 * directory; exit 77 when there is none) on a temp data dir, both
 * listeners on 127.0.0.1 with ports chosen by the kernel, then, by the
 * service key:
 *   - a booking over HTTP, retried over the binary protocol: replayed,
 *     the same booking; another customer with that key: reused;
 *   - a booking over the binary protocol, retried over HTTP: 201 with
 *     Idempotent-Replayed and the same booking; another body: 422 reused;
 *   - org.create over HTTP without a timezone, then over the binary
 *     protocol with "UTC" (HTTP's default): the same org, replayed;
 * and by a customer's JWT: its booking over HTTP with an empty body,
 * retried over the binary protocol without customer_id: replayed.
 * Prints "ops_codec: N checks, M failed"; the data dir and the log are
 * removed after a clean run.
 */
#include "bookd_client.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bookd_test.h"
#include "check.h"
#include "jwt_test.h"

#define SKIP 77
#define SVC "codec-service-key"
#define SECRET "codec-jwt-secret"
#define ANSWER_SIZE_MAX 65536

static char bookd_bin[4096];
static char data_dir[256];
static char log_path[300];
static char bin_addr[128];
static char http_addr[128];
static pid_t bookd_pid;

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
	a->status = bookd_test_http(http_addr, req, (size_t)n, ans,
				    sizeof(ans));
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

static bc_client *connect_as(const char *auth)
{
	bc_client *c = NULL;
	char err[256];

	if (bc_connect(bin_addr, auth, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "ops_codec: connect %s: %s\n", bin_addr, err);
		return NULL;
	}
	return c;
}

/* A free class each day from the day after tomorrow, for a week: the
 * first event's id. */
static uint64_t make_event(bc_client *c)
{
	static struct bc_event ev[BC_LIST_LIMIT_MAX];
	struct bc_series_spec s = {
		.title = "Codec", .capacity = 10, .timezone = "UTC",
		.weekdays = "MO,TU,WE,TH,FR,SA,SU", .start_time = "10:00",
		.duration_min = 60,
	};
	struct bc_list_query q = { .limit = 500 };
	uint64_t org = 0, series = 0;
	uint32_t generated = 0, n = 0;
	char first[16], last[16];
	time_t t = time(NULL) + 2 * 86400;
	struct tm tm;

	CHECK(bc_org_create(c, "Codec studio", "UTC", NULL, &org) == BC_OK);
	s.org_id = org;
	CHECK(bc_location_create(c, org, "Room", NULL, &s.location_id) == BC_OK);
	CHECK(bc_instructor_create(c, org, "Ann", NULL, &s.instructor_id) ==
	      BC_OK);
	gmtime_r(&t, &tm);
	strftime(first, sizeof(first), "%Y-%m-%d", &tm);
	t += 6 * 86400;
	gmtime_r(&t, &tm);
	strftime(last, sizeof(last), "%Y-%m-%d", &tm);
	s.first_date = first;
	s.last_date = last;
	CHECK(bc_series_create(c, &s, NULL, &series, &generated) == BC_OK);
	CHECK(generated > 0);
	q.org_id = org;
	CHECK(bc_event_list(c, &q, ev, BC_LIST_LIMIT_MAX, &n, NULL) == BC_OK);
	return n > 0 ? ev[0].id : 0;
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
	char claims[128], tok[512], path[96];
	struct http_answer a;
	struct bc_booking b;
	bc_client *c;

	snprintf(claims, sizeof(claims), "{\"sub\":\"codec-c\",\"exp\":%lld}",
		 (long long)time(NULL) + 3600);
	jwt_sign(JWT_HS256_HEADER, claims, SECRET, EVP_sha256(), tok);
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

int main(void)
{
	char *argv[] = { "bookd", "--data-dir", data_dir, "--listen",
			 "127.0.0.1:0", "--binary-listen", "127.0.0.1:0",
			 "--service-key", SVC, "--jwt-secret", SECRET, NULL };
	unsigned starts = 0;
	bc_client *c;
	uint64_t ev;
	int st;

	signal(SIGPIPE, SIG_IGN);
	if (!bookd_test_find(bookd_bin, sizeof(bookd_bin))) {
		printf("ops_codec: no bookd binary (BOOKD_BIN or ../api/bookd): "
		       "skip\n");
		return SKIP;
	}
	snprintf(data_dir, sizeof(data_dir), "/tmp/bookd-ops-codec-XXXXXX");
	if (!mkdtemp(data_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(log_path, sizeof(log_path), "%s.log", data_dir);
	bookd_pid = bookd_test_spawn(bookd_bin, argv, log_path, false);
	if (bookd_pid < 0 ||
	    bookd_test_wait(bookd_pid, log_path, 600, &starts, bin_addr,
			    sizeof(bin_addr), http_addr, sizeof(http_addr))) {
		fprintf(stderr, "ops_codec: bookd did not start (log %s)\n",
			log_path);
		return 1;
	}
	c = connect_as(SVC);
	if (!c) {
		kill(bookd_pid, SIGKILL);
		waitpid(bookd_pid, &st, 0);
		return 1;
	}
	ev = make_event(c);
	CHECK(ev != 0);
	test_http_then_binary(c, ev);
	test_binary_then_http(c, ev);
	test_defaults(c);
	test_customer(ev);
	bc_close(c);
	kill(bookd_pid, SIGTERM);
	CHECK(waitpid(bookd_pid, &st, 0) == bookd_pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("ops_codec: %u checks, %u failed\n", check_count,
	       check_fail_count);
	if (check_fail_count == 0) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", data_dir,
			 log_path);
		if (system(cmd) != 0)
			fprintf(stderr, "ops_codec: could not remove %s\n",
				data_dir);
	} else {
		fprintf(stderr, "ops_codec: data %s, log %s\n", data_dir,
			log_path);
	}
	return check_fail_count ? 1 : 0;
}
