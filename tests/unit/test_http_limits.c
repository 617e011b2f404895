/*
 * test_http_limits.c: limits and malformed input (413 / 431 / 400 with
 * close; invalid UTF-8, huge numbers, duplicate keys, unknown fields;
 * chunked bodies; back-pressure: srv_submit -EAGAIN, the busy catalogue
 * slot), rate limits (429 + Retry-After) and the order limits are applied
 * in, and the JSON writer's escaping.
 *
 * The fakes of the network side, helpers and main: http_test.h.
 */
#include "http_test.h"

CHECK_TEST_FN(test_limits_and_malformed)
{
	struct srv_conn *c = conn_new();
	static char big[HTTP_HEAD_SIZE_MAX + 4096];
	int n;

	/* Content-Length over 64 KiB: 413 from the headers, then close. */
	CHECK(feeds(c, "POST /v1/orgs HTTP/1.1\r\n" AUTH_SVC
		       "Content-Length: 70000\r\n\r\n{") < 0);
	CHECK(out_status(c) == 413 && out_has(c, "Connection: close\r\n"));
	CHECK(out_has(c, "payload_too_large"));
	conn_free(c);
	/* A chunked body over 64 KiB: 413. */
	c = conn_new();
	CHECK(feeds(c,
		    "POST /v1/orgs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "20000\r\n") < 0);
	CHECK(out_status(c) == 413);
	conn_free(c);
	/* Too many chunks: 413. */
	c = conn_new();
	{
		char chunks[4096];
		size_t k = 0;
		k += (size_t)snprintf(
			chunks + k, sizeof(chunks) - k,
			"POST /v1/orgs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < HTTP_BODY_SPAN_MAX + 2; i++)
			k += (size_t)snprintf(chunks + k, sizeof(chunks) - k,
					      "1\r\n \r\n");
		CHECK(feed(c, chunks, k) < 0);
		CHECK(out_status(c) == 413);
	}
	conn_free(c);
	/* Endless chunk extensions: refused, the connection closed. */
	c = conn_new();
	{
		static char ext[HTTP_REQUEST_SIZE_MAX + 1024];
		size_t k = (size_t)
			snprintf(ext, sizeof(ext),
				 "POST /v1/orgs HTTP/1.1\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n1;x=");
		memset(ext + k, 'a', sizeof(ext) - k);
		for (size_t off = 0; off < sizeof(ext) && !c->closed;
		     off += 4096)
			feed(c, ext + off,
			     4096 < sizeof(ext) - off ? 4096
						      : sizeof(ext) - off);
		/* http-parser counts chunk-size lines as head bytes (431 at
		 * 80 KiB); our total limit (413) is the backstop. */
		CHECK(c->closed &&
		      (out_status(c) == 413 || out_status(c) == 431));
	}
	conn_free(c);
	/* Trailers are ignored: an Idempotency-Key there does not count. */
	c = conn_new();
	CHECK(feeds(c,
		    "POST /v1/bookings/150994945/cancel HTTP/1.1\r\n" AUTH_SVC
		    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
		    "Idempotency-Key: late\r\n\r\n") > 0);
	CHECK(out_status(c) == 400 && out_has(c, "idempotency_key_required"));
	conn_free(c);
	/* Headers over 16 KiB: 431, whole or in pieces. */
	c = conn_new();
	n = snprintf(big, sizeof(big), "GET /health HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', HTTP_HEAD_SIZE_MAX);
	memcpy(big + n + HTTP_HEAD_SIZE_MAX, "\r\n\r\n", 4);
	CHECK(feed(c, big, (size_t)n + HTTP_HEAD_SIZE_MAX + 4) < 0);
	CHECK(out_status(c) == 431);
	conn_free(c);
	c = conn_new();
	for (size_t off = 0; off < (size_t)n + HTTP_HEAD_SIZE_MAX && !c->closed;
	     off += 1000)
		feed(c, big + off, 1000);
	CHECK(c->closed && out_status(c) == 431);
	conn_free(c);
	/* Too many headers: 431. */
	c = conn_new();
	{
		char many[8192];
		size_t k = (size_t)snprintf(many, sizeof(many),
					    "GET /health HTTP/1.1\r\n");
		for (int i = 0; i < HTTP_HEADER_COUNT_MAX + 1; i++)
			k += (size_t)snprintf(many + k, sizeof(many) - k,
					      "X-%d: 1\r\n", i);
		k += (size_t)snprintf(many + k, sizeof(many) - k, "\r\n");
		CHECK(feed(c, many, k) < 0);
		CHECK(out_status(c) == 431);
	}
	conn_free(c);
	/* Malformed: 400 and close. */
	const char *bad[] = {
		"GARBAGE\r\n\r\n",
		"GET /health HTTP/9.9\r\n\r\n",
		"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
		"POST /v1/orgs HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"POST /v1/orgs HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
		"POST /v1/orgs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET /health HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
		"GET /he\x01lth HTTP/1.1\r\n\r\n",
		"POST /v1/orgs HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = conn_new();
		CHECK(feeds(c, bad[i]) < 0);
		if (out_status(c) != (i == 1 ? 505 : 400))
			fprintf(stderr, "malformed %zu: %s\n", i, out_str(c));
		CHECK(out_status(c) == (i == 1 ? 505 : 400));
		CHECK(out_has(c, "Connection: close\r\n"));
		CHECK(c->sub_count == 0);
		conn_free(c);
	}
	/* A good request before a bad one is answered first. */
	c = conn_new();
	CHECK(feeds(c, "GET /health HTTP/1.1\r\n\r\nBAD\r\n\r\n") < 0);
	CHECK(c->answer_count == 2 && out_status(c) == 200);
	CHECK(out_has(c, "HTTP/1.1 400 "));
	conn_free(c);
}

/* g_srv's limiter: rate per second and burst for kind, 64 buckets. */
static void limiter_start(enum auth_limit_kind kind, unsigned rate,
			  unsigned burst)
{
	struct auth_limit_config lc;

	auth_limit_config_default(&lc);
	lc.rate[kind] = rate;
	lc.burst[kind] = burst;
	lc.bucket_count = 64;
	g_srv.limiter = auth_limiter_new(&lc);
	CHECK(g_srv.limiter != NULL);
}

CHECK_TEST_FN(test_rate_limit)
{
	struct srv_conn *c = conn_new();
	char h[1400];
	unsigned ok = 0, limited = 0;

	limiter_start(AUTH_LIMIT_CUSTOMER, 1, 3);
	snprintf(h, sizeof(h), "%sIdempotency-Key: r\r\n", auth_jwt("rl", 60));
	for (int i = 0; i < 6; i++) {
		unsigned before = c->sub_count;
		out_reset(c);
		CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h, "{}")) >
		      0);
		if (c->sub_count > before)
			ok++;
		else if (out_status(c) == 429 && out_has(c, "Retry-After: ") &&
			 out_has(c, "\"code\":\"rate_limited\""))
			limited++;
	}
	CHECK(ok == 3 && limited == 3);
	auth_limiter_free(g_srv.limiter);
	g_srv.limiter = NULL;
	conn_free(c);
}

/* The order of limits (issue 13): the service key is authenticated before
 * any address limit and not held to it; anon, customers and bad tokens
 * take from the address's bucket (429 with Retry-After before 401/403);
 * X-Forwarded-For names the client only from a trusted proxy. The fake
 * peer is 127.0.0.1. */
/* GET /v1/events/9 with the anon key and X-Forwarded-For: xff; the
 * answer's status. */
static int get_via(struct srv_conn *c, const char *xff)
{
	char h[512];

	out_reset(c);
	snprintf(h, sizeof(h), "%sX-Forwarded-For: %s\r\n", AUTH_ANON, xff);
	CHECK(feeds(c, req("GET", "/v1/events/9", h, NULL)) > 0);
	return out_status(c);
}

CHECK_TEST_FN(test_limit_order)
{
	struct srv_conn *c = conn_new();
	char h[512], xff[64];
	unsigned svc_ok = 0, anon_ok = 0, anon_429 = 0;

	limiter_start(AUTH_LIMIT_ADDRESS, 1, 2);
	/* 50 service-key requests from one address: none refused. */
	for (int i = 0; i < 50; i++) {
		out_reset(c);
		CHECK(feeds(c, req("GET", "/v1/admin/status", AUTH_SVC, NULL)) >
		      0);
		svc_ok += out_status(c) == 200;
	}
	CHECK(svc_ok == 50);
	/* The anon key from the same address: the burst of 2, then 429. */
	for (int i = 0; i < 5; i++) {
		out_reset(c);
		CHECK(feeds(c, req("GET", "/v1/events/9", AUTH_ANON, NULL)) >
		      0);
		if (out_status(c) == 429 && out_has(c, "Retry-After: 1\r\n") &&
		    out_has(c, "\"code\":\"rate_limited\""))
			anon_429++;
		else if (out_status(c) != 429)
			anon_ok++;
	}
	CHECK(anon_ok == 2 && anon_429 == 3);
	/* A bad token and no token are held to the address's limit too. */
	CHECK(answer_is(c, "GET", "/v1/events/9",
			"Authorization: Bearer nope\r\n", NULL, 429, NULL));
	CHECK(answer_is(c, "GET", "/v1/events/9", "", NULL, 429, NULL));
	/* The service key still gets in; so do /health and /metrics. */
	CHECK(answer_is(c, "GET", "/v1/admin/status", AUTH_SVC, NULL, 200,
			NULL));
	out_reset(c);
	CHECK(feeds(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);

	/* X-Forwarded-For from an untrusted peer: ignored (still 429). */
	CHECK(answer_is(c, "GET", "/v1/events/9",
			hdrs(AUTH_ANON, "X-Forwarded-For: 203.0.113.7\r\n"),
			NULL, 429, NULL));
	/* From a trusted proxy: each client its own bucket. */
	CHECK(auth_config_set_proxies(&g_srv.auth, "10.0.0.0/8, 127.0.0.1") ==
	      0);
	for (int i = 0; i < 3; i++) {
		snprintf(xff, sizeof(xff), "198.51.100.9, 203.0.113.%d", i + 1);
		CHECK(get_via(c, xff) != 429);
	}
	/* One client behind it: the burst, then 429; a forged left-most
	 * entry does not help it (the right-most untrusted one counts). */
	for (int i = 0; i < 2; i++) {
		snprintf(xff, sizeof(xff), "192.0.2.%d, 203.0.113.50, 10.1.2.3",
			 i + 1);
		CHECK(get_via(c, xff) != 429);
	}
	CHECK(get_via(c, "192.0.2.99, 203.0.113.50") == 429 &&
	      out_has(c, "Retry-After: "));
	/* Two X-Forwarded-For lines (a proxy adding its own): the last one. */
	out_reset(c);
	snprintf(h, sizeof(h),
		 "%sX-Forwarded-For: 203.0.113.50\r\n"
		 "X-Forwarded-For: 203.0.113.60\r\n",
		 AUTH_ANON);
	CHECK(feeds(c, req("GET", "/v1/events/9", h, NULL)) > 0);
	CHECK(out_status(c) != 429 && out_status(c) != 400);
	CHECK(auth_config_set_proxies(&g_srv.auth, "") == 0);
	auth_limiter_free(g_srv.limiter);
	g_srv.limiter = NULL;
	conn_free(c);
}

CHECK_TEST_FN(test_json_writer)
{
	char buf[256];
	struct jw w;

	jw_init(&w, buf, sizeof(buf));
	jw_obj_begin(&w);
	jw_key(&w, "s");
	jw_str(&w, "a\"b\\c\x01\x1f\n\t\x7f", 10);
	jw_key(&w, "u");
	jw_str(&w, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9); /* é € 😀 */
	jw_key(&w, "bad");
	jw_str(&w, "x\xff\xc0\xafy\xed\xa0\x80z\xe2\x82", 11);
	jw_key(&w, "a");
	jw_arr_begin(&w);
	jw_u64(&w, 1);
	jw_null(&w);
	jw_bool(&w, false);
	jw_obj_begin(&w);
	jw_obj_end(&w);
	jw_arr_end(&w);
	jw_key(&w, "d");
	jw_double(&w, 0.0 / 0.0);
	jw_obj_end(&w);
	CHECK(!w.overflow);
	buf[w.n] = '\0';
	CHECK(strcmp(buf,
		     "{\"s\":\"a\\\"b\\\\c\\u0001\\u001f\\n\\t\\u007f\","
		     "\"u\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
		     "\"bad\":\"x\\ufffd\\ufffd\\ufffdy\\ufffd\\ufffd\\ufffdz"
		     "\\ufffd\\ufffd\","
		     "\"a\":[1,null,false,{}],\"d\":null}") == 0);
	if (strcmp(buf, "") && check_fail_count)
		fprintf(stderr, "writer: %s\n", buf);
	/* The output parses back (valid JSON, valid UTF-8). */
	{
		json_error_t e;
		json_t *j = json_loadb(buf, w.n, JSON_REJECT_DUPLICATES, &e);
		CHECK(j != NULL);
		json_decref(j);
	}
	/* Overflow: flagged, never written past the buffer. */
	jw_init(&w, buf, 8);
	jw_cstr(&w, "a long string");
	CHECK(w.overflow && w.n <= 8);
}

int main(int argc, char **argv)
{
	return http_test_main("http_limits", argc, argv);
}
