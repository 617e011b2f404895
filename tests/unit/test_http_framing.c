/*
 * test_http_framing.c: how requests are framed and routed: 405 with Allow
 * and the CORS preflight, pipelined requests in one buffer, byte-by-byte
 * delivery, the strict framing (request-smuggling shapes: 400 and a close),
 * keep-alive and close, and random input (no crash).
 *
 * The fakes of the network side, helpers and main: http_test.h.
 */
#include "http_test.h"

CHECK_TEST_FN(test_routes_methods_cors)
{
	struct srv_conn *c = conn_new();

	CHECK(feeds(c, req("GET", "/v1/nothing", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 404 && out_has(c, "\"code\":\"not_found\""));
	CHECK(answer_is(c, "GET", "/v1/events/", AUTH_SVC, NULL, 404, NULL));
	CHECK(answer_is(c, "DELETE", "/v1/events/3", AUTH_SVC, NULL, 405,
			NULL));
	CHECK(out_has(c, "Allow: GET, HEAD, PATCH, OPTIONS\r\n"));
	CHECK(answer_is(c, "PATCH", "/v1/orgs", AUTH_SVC, NULL, 405,
			"Allow: GET, HEAD, POST, OPTIONS\r\n"));
	CHECK(answer_is(c, "GET", "/v1/admin/generate", AUTH_SVC, NULL, 405,
			"Allow: POST, OPTIONS\r\n"));
	/* Preflight from an allowed origin. */
	out_reset(c);
	CHECK(feeds(c,
		    "OPTIONS /v1/events/3/bookings HTTP/1.1\r\n"
		    "Origin: https://app.example\r\n"
		    "Access-Control-Request-Method: POST\r\n"
		    "Access-Control-Request-Headers: authorization, idempotency-key\r\n"
		    "\r\n") > 0);
	CHECK(out_status(c) == 204);
	CHECK(out_has(c,
		      "Access-Control-Allow-Origin: https://app.example\r\n"));
	CHECK(out_has(c, "Access-Control-Allow-Methods: POST, OPTIONS\r\n"));
	CHECK(out_has(c, "Access-Control-Allow-Headers: Authorization, "
			 "Content-Type, Idempotency-Key, X-Request-Id\r\n"));
	CHECK(out_has(c, "Access-Control-Max-Age: 600\r\n"));
	/* From another origin: no CORS headers. */
	out_reset(c);
	CHECK(feeds(c, "OPTIONS /v1/events HTTP/1.1\r\n"
		       "Origin: https://evil.example\r\n\r\n") > 0);
	CHECK(out_status(c) == 204);
	CHECK(!out_has(c, "Access-Control-Allow-Origin"));
	/* A normal answer to an allowed origin carries it, also after
	 * submit (render). */
	out_reset(c);
	CHECK(feeds(c,
		    "GET /health HTTP/1.1\r\nOrigin: https://app.example\r\n\r\n") >
	      0);
	CHECK(out_has(c,
		      "Access-Control-Allow-Origin: https://app.example\r\n"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/3",
			   hdrs(AUTH_ANON, "Origin: https://app.example\r\n"),
			   NULL)) > 0);
	{
		struct core_resp resp = { .op = CORE_OP_EVENT_GET };
		resp.event.id = 3;
		resp.event.status = CORE_EVENT_SCHEDULED;
		render(c, 0, 0, &resp, NULL);
		CHECK(out_has(
			c,
			"Access-Control-Allow-Origin: https://app.example\r\n"));
	}
	conn_free(c);
}

CHECK_TEST_FN(test_pipelining)
{
	struct srv_conn *c = conn_new();
	char buf[8192];
	int n;

	char get[512];
	const char *g = req("GET", "/v1/events/5", AUTH_ANON, NULL);
	if (strlen(g) >= sizeof(get))
		abort();
	memcpy(get, g, strlen(g) + 1);
	n = snprintf(buf, sizeof(buf),
		     "GET /health HTTP/1.1\r\n\r\n"
		     "%s"
		     "GET /nope HTTP/1.1\r\n\r\n"
		     "%s"
		     "GET /health HTTP/1.1\r\n\r\n",
		     get,
		     req("POST", "/v1/bookings/150994945/cancel",
			 hdrs(AUTH_SVC, "Idempotency-Key: pp\r\n"), "{}"));
	CHECK(feed(c, buf, (size_t)n) == n);
	CHECK(c->answer_count == 3);
	CHECK(c->sub_count == 2);
	CHECK(c->subs[0].req.op == CORE_OP_EVENT_GET);
	CHECK(c->subs[1].req.op == CORE_OP_CANCEL);
	CHECK(!c->closed && c->in_size == 0);
	/* A request cut in the middle: the rest waits for more. */
	out_reset(c);
	n = snprintf(buf, sizeof(buf), "GET /health HTTP/1.1\r\n\r\nGET /hea");
	CHECK(feed(c, buf, (size_t)n) == 24);
	CHECK(c->answer_count == 1 && c->in_size == 8);
	CHECK(feeds(c, "lth HTTP/1.1\r\n\r\n") > 0);
	CHECK(c->answer_count == 2 && c->in_size == 0);
	/* srv_submit full: parse stops before that request and resumes. */
	out_reset(c);
	c->sub_room = c->sub_count + 1;
	n = snprintf(buf, sizeof(buf), "%s",
		     req("GET", "/v1/events/6", AUTH_ANON, NULL));
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s",
		      req("GET", "/v1/events/7", AUTH_ANON, NULL));
	CHECK(feed(c, buf, (size_t)n) > 0);
	CHECK(c->sub_count == 3 && c->in_size > 0);
	c->sub_room = SUB_MAX;
	CHECK(refeed(c) > 0);
	CHECK(c->sub_count == 4 && c->in_size == 0);
	CHECK(c->subs[3].req.event_id == 7);
	/* Leading CRLFs between requests are tolerated. */
	out_reset(c);
	CHECK(feeds(c, "\r\nGET /health HTTP/1.1\r\n\r\n") > 0);
	CHECK(c->answer_count == 1 && out_status(c) == 200);
	conn_free(c);
}

CHECK_TEST_FN(test_byte_by_byte)
{
	struct srv_conn *whole = conn_new(), *c = conn_new();
	const char *r =
		req("POST", "/v1/events/9/bookings",
		    hdrs(AUTH_SVC,
			 "Idempotency-Key: bb\r\nOrigin: https://app.example\r\n"),
		    "{\"customer_id\":\"cus_1\",\"payment\":\"none\"}");
	size_t n = strlen(r);
	size_t consumed = 0;

	CHECK(feed(whole, r, n) == (long)n);
	CHECK(whole->sub_count == 1);
	for (size_t i = 0; i < n; i++) {
		long used = feed(c, r + i, 1);
		CHECK(used >= 0);
		consumed += used > 0 ? (size_t)used : 0;
		if (i + 1 < n)
			CHECK(c->sub_count == 0);
	}
	CHECK(consumed == n);
	CHECK(c->sub_count == 1);
	CHECK(memcmp(&c->subs[0].req, &whole->subs[0].req,
		     sizeof(struct core_req)) == 0);
	CHECK(c->answer_count == 0);
	/* A chunked body byte by byte too. */
	{
		const char *ch =
			"POST /v1/events/9/bookings HTTP/1.1\r\n" AUTH_SVC
			"Idempotency-Key: bb\r\n"
			"Origin: https://app.example\r\n"
			"Transfer-Encoding: chunked\r\n\r\n"
			"5\r\n{\"cus\r\n"
			"a\r\ntomer_id\":\r\n"
			"19;ext=1\r\n\"cus_1\",\"payment\":\"none\"}\r\n"
			"0\r\n\r\n";
		size_t m = strlen(ch);
		for (size_t i = 0; i < m; i++)
			CHECK(feed(c, ch + i, 1) >= 0);
		CHECK(c->sub_count == 2);
		CHECK(strcmp(c->subs[1].req.customer_id, "cus_1") == 0);
		CHECK(c->subs[1].req.u.book.payment == CORE_PAY_NONE);
		/* The body is the same: so is the fingerprint. */
		CHECK(c->subs[1].req.idem.fingerprint ==
		      whole->subs[0].req.idem.fingerprint);
		CHECK(c->in_size == 0 && !c->closed);
	}
	conn_free(whole);
	conn_free(c);
}

/* Request-smuggling shapes and other framing a strict server refuses:
 * each answered 400 (505 for another major version) naming what is
 * wrong, then closed, nothing submitted; whole and byte by byte. */
CHECK_TEST_FN(test_strict_framing)
{
#define POST_ "POST /v1/orgs HTTP/1.1\r\n" AUTH_SVC
#define CHUNKED_ "Transfer-Encoding: chunked\r\n"
	static const struct {
		const char *req;
		int status;
		const char *needle;
	} bad[] = {
		{ POST_ "Content-Length: 2\r\n" CHUNKED_ "\r\n0\r\n\r\n", 400,
		  "both Content-Length and Transfer-Encoding" },
		{ POST_ CHUNKED_ "Content-Length: 2\r\n\r\n0\r\n\r\n", 400,
		  "both Content-Length and Transfer-Encoding" },
		{ POST_ "Transfer-Encoding: identity\r\nContent-Length: 2\r\n"
			"\r\n{}",
		  400, "both Content-Length and Transfer-Encoding" },
		{ POST_ "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400,
		  "duplicate Content-Length" },
		{ POST_ "Content-Length: +2\r\n\r\n{}", 400,
		  "malformed Content-Length" },
		{ POST_ "Content-Length: -2\r\n\r\n{}", 400,
		  "malformed Content-Length" },
		{ POST_ "Content-Length: 2, 2\r\n\r\n{}", 400,
		  "malformed Content-Length" },
		{ POST_ "Content-Length: 0x2\r\n\r\n{}", 400,
		  "malformed Content-Length" },
		{ POST_ "Content-Length: \r\n\r\n{}", 400,
		  "malformed Content-Length" },
		{ "GET /health HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", 400,
		  "obsolete line folding" },
		{ "GET /health HTTP/1.1\r\nX-A:\r\n\tc\r\n\r\n", 400,
		  "obsolete line folding" },
		{ "GET /health HTTP/1.1\r\n Host: x\r\n\r\n", 400,
		  "obsolete line folding" },
		{ "GET /health HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF" },
		{ "GET /health HTTP/1.1\r\nHost: x\n\r\n", 400, "bare LF" },
		{ "GET /health HTTP/1.1\r\nHost: x\r\n\n", 400, "bare LF" },
		{ "\nGET /health HTTP/1.1\r\n\r\n", 400, "bare LF" },
		{ "GET /health HTTP/1.1\r\nHost: x\ry: z\r\n\r\n", 400,
		  "CR without LF" },
		{ "GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400,
		  "before its colon" },
		{ "GET /health HTTP/1.1\r\nHost\t: x\r\n\r\n", 400,
		  "before its colon" },
		{ POST_ "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400,
		  "before its colon" },
		{ "GET /health HTTP/1.1\r\nHo\"st: x\r\n\r\n", 400,
		  "invalid character in a header name" },
		{ "GET /health HTTP/1.1\r\nX@Y: x\r\n\r\n", 400,
		  "invalid character in a header name" },
		{ "GET /health HTTP/1.1\r\nX\xc3\xa9: x\r\n\r\n", 400,
		  "invalid character in a header name" },
		{ "GET /health HTTP/1.1\r\n: x\r\n\r\n", 400,
		  "empty header name" },
		{ "GET /health HTTP/1.1\r\nX-A: a\x7f"
		  "b\r\n\r\n",
		  400, "invalid character in a header value" },
		{ POST_ "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		  400, "Transfer-Encoding other than chunked" },
		{ POST_ "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
		  400, "Transfer-Encoding other than chunked" },
		{ POST_ "Transfer-Encoding: gzip\r\n\r\n", 400,
		  "Transfer-Encoding other than chunked" },
		{ POST_ "Transfer-Encoding: chunkedx\r\n\r\n", 400,
		  "Transfer-Encoding other than chunked" },
		{ POST_ CHUNKED_ CHUNKED_ "\r\n0\r\n\r\n", 400,
		  "duplicate Transfer-Encoding" },
		{ "POST /v1/orgs HTTP/1.0\r\n" AUTH_SVC CHUNKED_
		  "\r\n0\r\n\r\n",
		  400, "Transfer-Encoding in an HTTP/1.0 request" },
		{ POST_ CHUNKED_ "\r\nfffffffffffffffff\r\n", 400,
		  "chunk size too large" },
		{ POST_ CHUNKED_ "\r\n10000000000000000\r\n", 400,
		  "chunk size too large" },
		{ POST_ CHUNKED_ "\r\n2\r\n{}XY0\r\n\r\n", 400,
		  "chunk data must be followed by CRLF" },
		{ POST_ CHUNKED_ "\r\n2\r\n{}\r\n0\r\nX: y\n\r\n", 400,
		  "bare LF in the trailers" },
		{ POST_ CHUNKED_ "\r\n2\r\n{}\r\n0\r\n\n", 400,
		  "bare LF in the trailers" },
		{ POST_ CHUNKED_ "\r\n2\r\n{}\r\n0\r\nX: y\r\n z\r\n\r\n", 400,
		  "obsolete line folding in the trailers" },
		{ POST_ CHUNKED_ "\r\n2 \r\n{}\r\n0\r\n\r\n", 400,
		  "malformed chunk size" },
		{ POST_ CHUNKED_ "\r\n2\n{}\r\n0\r\n\r\n", 400,
		  "malformed chunk size" },
		{ POST_ CHUNKED_ "\r\n+2\r\n{}\r\n0\r\n\r\n", 400,
		  "malformed chunk size" },
		{ "GET /health HTTP/1.2\r\n\r\n", 400,
		  "HTTP version must be HTTP/1.0 or HTTP/1.1" },
		{ "GET /health HTTP/1.9\r\n\r\n", 400,
		  "HTTP version must be HTTP/1.0 or HTTP/1.1" },
		{ "GET /health HTTP/01.1\r\n\r\n", 400,
		  "malformed HTTP version" },
		{ "GET /health HTTP/1.10\r\n\r\n", 400,
		  "malformed HTTP version" },
		{ "GET /health http/1.1\r\n\r\n", 400,
		  "malformed HTTP version" },
		{ "GET /health\r\n\r\n", 400, "malformed request line" },
		{ "GET  /health HTTP/1.1\r\n\r\n", 400,
		  "malformed request line" },
		{ "GET /health  HTTP/1.1\r\n\r\n", 400,
		  "malformed HTTP version" },
		{ "GET\t/health HTTP/1.1\r\n\r\n", 400,
		  "invalid character in the request line" },
		{ "GET /health HTTP/2.0\r\n\r\n", 505,
		  "only HTTP/1.0 and HTTP/1.1" },
		{ "GET /health HTTP/0.9\r\n\r\n", 505,
		  "only HTTP/1.0 and HTTP/1.1" },
	};
	static const char *const good[] = {
		/* {"name":"O"}: 12 bytes */
		POST_ "Transfer-Encoding: Chunked\r\n\r\n"
		      "c\r\n{\"name\":\"O\"}\r\n0\r\n\r\n",
		POST_ "Transfer-Encoding:  chunked \r\n\r\n"
		      "c\r\n{\"name\":\"O\"}\r\n0\r\n\r\n",
		POST_ CHUNKED_ "\r\n5;a=b\r\n{\"nam\r\n7\r\ne\":\"O\"}\r\n"
			       "0\r\nX-T: 1\r\n\r\n",
		POST_ CHUNKED_ "\r\n0C ;a\r\n{\"name\":\"O\"}\r\n0\r\n\r\n",
		POST_ "Content-Length:  12 \r\n\r\n{\"name\":\"O\"}",
		"\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
		"GET /health HTTP/1.1\r\nX-A: a\tb \xc3\xa9\r\nX-B:\r\n\r\n",
		"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct srv_conn *c = conn_new();
			size_t n = strlen(bad[i].req);
			if (bytewise) {
				for (size_t k = 0; k < n && !c->closed; k++)
					feed(c, bad[i].req + k, 1);
			} else {
				feed(c, bad[i].req, n);
			}
			if (out_status(c) != bad[i].status ||
			    !out_has(c, bad[i].needle))
				fprintf(stderr, "strict %zu%s: %s\n", i,
					bytewise ? " (bytewise)" : "",
					out_str(c));
			CHECK(c->closed);
			CHECK(c->answer_count == 1);
			CHECK(out_status(c) == bad[i].status);
			CHECK(out_has(c, "Connection: close\r\n"));
			CHECK(out_has(
				c,
				bad[i].status == 400
					? "{\"error\":{\"code\":\"invalid_request\""
					: "{\"error\":{\"code\":\"http_version_not_supported\""));
			CHECK(out_has(c, bad[i].needle));
			CHECK(c->sub_count == 0);
			conn_free(c);
		}
	}
	for (size_t i = 0; i < 2 * sizeof(good) / sizeof(good[0]); i++) {
		struct srv_conn *c = conn_new();
		const char *g = good[i / 2];
		if (i % 2) { /* byte by byte */
			for (size_t k = 0; g[k]; k++)
				CHECK(feed(c, g + k, 1) >= 0);
		} else {
			CHECK(feeds(c, g) > 0);
		}
		if (c->answer_count + c->sub_count != 1 || out_status(c) == 400)
			fprintf(stderr, "strict good %zu: %s\n", i, out_str(c));
		CHECK(c->answer_count + c->sub_count == 1);
		CHECK(c->answer_count == 0 || out_status(c) == 200);
		CHECK(c->in_size == 0 && !c->closed);
		conn_free(c);
	}
	/* Trailers: at most HTTP_HEADER_COUNT_MAX lines. */
	{
		static char tr[8192];
		struct srv_conn *c = conn_new();
		size_t k = (size_t)snprintf(tr, sizeof(tr), "%s",
					    POST_ CHUNKED_ "\r\n0\r\n");
		for (int i = 0; i <= HTTP_HEADER_COUNT_MAX; i++)
			k += (size_t)snprintf(tr + k, sizeof(tr) - k,
					      "X-%d: 1\r\n", i);
		k += (size_t)snprintf(tr + k, sizeof(tr) - k, "\r\n");
		CHECK(feed(c, tr, k) < 0);
		CHECK(out_status(c) == 400 &&
		      out_has(c, "too many trailer lines"));
		conn_free(c);
	}
	/* A head whose blank line ends just past the limit: 431. */
	{
		static char big[HTTP_HEAD_SIZE_MAX + 64];
		struct srv_conn *c = conn_new();
		int n = snprintf(big, sizeof(big),
				 "GET /health HTTP/1.1\r\nX: ");
		memset(big + n, 'a', HTTP_HEAD_SIZE_MAX - 2 - (size_t)n);
		memcpy(big + HTTP_HEAD_SIZE_MAX - 2, "\r\n\r\n", 4);
		CHECK(feed(c, big, HTTP_HEAD_SIZE_MAX + 2) < 0);
		CHECK(out_status(c) == 431);
		conn_free(c);
	}
	/* A smuggled request after a chunk's data is not read as one. */
	{
		struct srv_conn *c = conn_new();
		CHECK(feeds(c, POST_ CHUNKED_ "\r\n2\r\n{}GET /health HTTP/1.1"
					      "\r\n\r\n0\r\n\r\n") < 0);
		CHECK(c->answer_count == 1 && out_status(c) == 400);
		CHECK(c->sub_count == 0);
		conn_free(c);
	}
#undef POST_
#undef CHUNKED_
}

CHECK_TEST_FN(test_keep_alive_and_close)
{
	struct srv_conn *c = conn_new();

	/* HTTP/1.0: closes after the answer (unless keep-alive). */
	CHECK(feeds(c,
		    "GET /health HTTP/1.0\r\n\r\nGET /health HTTP/1.0\r\n\r\n") <
	      0);
	CHECK(c->answer_count == 1);
	CHECK(out_has(c, "Connection: close\r\n"));
	conn_free(c);
	c = conn_new();
	CHECK(feeds(c,
		    "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") >
	      0);
	CHECK(!c->closed && out_has(c, "Connection: keep-alive\r\n"));
	conn_free(c);
	/* HTTP/1.1 Connection: close, also after a submit: the render says so. */
	c = conn_new();
	CHECK(feeds(c, req("GET", "/v1/events/1",
			   hdrs(AUTH_ANON, "Connection: close\r\n"), NULL)) <
	      0);
	CHECK(c->sub_count == 1);
	{
		struct core_resp resp = { .op = CORE_OP_EVENT_GET };
		resp.event.id = 1;
		resp.event.status = CORE_EVENT_SCHEDULED;
		render(c, 0, 0, &resp, NULL);
		CHECK(out_has(c, "Connection: close\r\n"));
	}
	conn_free(c);
	/* Expect: 100-continue: the interim answer once the head is in. */
	c = conn_new();
	CHECK(feeds(c,
		    "POST /v1/orgs HTTP/1.1\r\n" AUTH_SVC
		    "Expect: 100-continue\r\nContent-Length: 14\r\n\r\n") == 0);
	CHECK(c->answer_count == 1 &&
	      out_has(c, "HTTP/1.1 100 Continue\r\n\r\n"));
	CHECK(feeds(c, "{\"name\":\"Org\"}") > 0);
	CHECK(c->answer_count == 1 && c->sub_count == 1);
	conn_free(c);
}

/* Random bytes and random cuts of valid requests: no crash, no hang, the
 * fakes' invariants hold (a seeded sanity run; fuzz_http goes further). */
CHECK_TEST_FN(test_random_input)
{
	unsigned seed = (unsigned)time(NULL);
	const char *valid = req("POST", "/v1/events/9/bookings",
				hdrs(AUTH_SVC, "Idempotency-Key: z\r\n"),
				"{\"customer_id\":\"c\"}");
	size_t vn = strlen(valid);

	printf("http: random seed %u\n", seed);
	srand(seed);
	for (int round = 0; round < 2000; round++) {
		struct srv_conn *c = conn_new();
		char buf[1024];
		size_t n = vn < sizeof(buf) ? vn : sizeof(buf);
		memcpy(buf, valid, n);
		for (int k = rand() % 4; k >= 0; k--)
			buf[rand() % n] = (char)(rand() & 0xff);
		for (size_t off = 0; off < n && !c->closed;) {
			size_t step = 1 + (size_t)rand() % 64;
			if (step > n - off)
				step = n - off;
			feed(c, buf + off, step);
			off += step;
		}
		CHECK(c->sub_count <= 1);
		conn_free(c);
	}
}

int main(int argc, char **argv)
{
	return http_test_main("http_framing", argc, argv);
}
