/*
 * http_test.h: what the test_http_*.c programs share. They test the HTTP
 * adapter (api/http*.c, srv_http_proto) on its own, against fakes of the
 * network side defined here (srv_answer, srv_submit, srv_answer_begin, ...)
 * and in srv_fake.h (g_srv, the peer; shared with tests/fuzz: one program
 * includes this once, and the fakes stand in for net.c's): what
 * net.c would do is done by feed(), which keeps the bytes parse() did not
 * use and offers them again with more, like net.c's parse_conn. Also the
 * output's readers (out_*), requests (req, hdrs, auth_jwt, stripe_sig),
 * answers checked (answer_is: a request's; rendered_is: a render's), and
 * http_test_main, each program's main (g_now 2026-03-02T08:00Z, the keys).
 *
 * test_http_reads.c: health, status lines, listings, event get and patch.
 * test_http_writes.c: booking, auth refusals, cancel, catalogue, Stripe.
 * test_http_framing.c: routes, pipelining, byte by byte, strict framing.
 * test_http_limits.c: limits and malformed input, rate limits, JSON writer.
 */
#ifndef BOOKD_TEST_HTTP_H
#define BOOKD_TEST_HTTP_H

#include "http_json.h"
#include "http_render.h"
#include "http_routes.h"

#include "fields.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "jwt_test.h"
#include "srv_fake.h"

#define SERVICE_KEY "svc-key-0123456789"
#define ANON_KEY "anon-key-0123456789"
#define JWT_SECRET "jwt-secret-0123456789"
#define STRIPE_SECRET "whsec_test"

/* ---- fakes of the network side ---- */

struct srv_conn {
	struct buf out; /* every answer, in order */
	unsigned answer_count;
	struct sub subs[SUB_MAX];
	unsigned sub_count;
	unsigned sub_room;   /* srv_submit -EAGAIN once sub_count reaches it */
	uint8_t in[1 << 21]; /* bytes kept, as net.c keeps them */
	size_t in_size;
	bool closed;
	void *state;
};

static unsigned g_counted[6]; /* srv_count_response by class */
static core_time g_now;

struct buf *srv_answer_begin(struct srv_conn *c)
{
	c->answer_count++;
	return &c->out;
}

void srv_answer_done(struct srv_conn *c) { (void)c; }

void srv_answer(struct srv_conn *c, const void *bytes, size_t size)
{
	buf_put(srv_answer_begin(c), bytes, size);
}

int srv_submit(struct srv_conn *c, const struct core_req *req, const void *ctx,
	       size_t ctx_size)
{
	return sub_add(c->subs, &c->sub_count, c->sub_room, req, ctx, ctx_size);
}

bool srv_conn_writable(const struct srv_conn *c)
{
	(void)c;
	return true;
}
void srv_count_response(struct srv_conn *c, int status)
{
	(void)c;
	g_counted[status / 100 % 6]++;
}

core_time srv_now(void) { return g_now; }

/* ---- helpers ---- */

static inline struct srv_conn *conn_new(void)
{
	struct srv_conn *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->sub_room = SUB_MAX;
	c->state = calloc(1, srv_http_proto.conn_state_size);
	if (!c->state)
		abort();
	return c;
}

static inline void conn_free(struct srv_conn *c)
{
	free(c->out.data);
	free(c->state);
	free(c);
}

/* Like net.c's parse_conn: appends, parses, keeps what was not used. */
static inline long feed(struct srv_conn *c, const void *p, size_t n)
{
	long used;

	if (c->closed)
		return -1;
	if (c->in_size + n > sizeof(c->in))
		abort();
	memcpy(c->in + c->in_size, p, n);
	c->in_size += n;
	used = srv_http_proto.parse(c, c->state, c->in, c->in_size);
	if (used < 0) {
		c->closed = true;
		return used;
	}
	if ((size_t)used > c->in_size)
		abort();
	memmove(c->in, c->in + used, c->in_size - (size_t)used);
	c->in_size -= (size_t)used;
	return used;
}

static inline long feeds(struct srv_conn *c, const char *s)
{
	return feed(c, s, strlen(s));
}

/* Parse again what is kept (net.c does after answers went out). */
static inline long refeed(struct srv_conn *c) { return feed(c, "", 0); }

static inline void out_reset(struct srv_conn *c)
{
	c->out.size = 0;
	c->answer_count = 0;
}

/* The output as a string (NUL-terminated copy). */
static inline const char *out_str(struct srv_conn *c)
{
	static char buf[1 << 20];
	size_t n =
		c->out.size < sizeof(buf) - 1 ? c->out.size : sizeof(buf) - 1;
	memcpy(buf, c->out.data ? (const char *)c->out.data : "", n);
	buf[n] = '\0';
	return buf;
}

static inline bool out_has(struct srv_conn *c, const char *needle)
{
	return strstr(out_str(c), needle) != NULL;
}

static inline int out_status(struct srv_conn *c)
{
	int st = 0;
	if (sscanf(out_str(c), "HTTP/1.1 %d", &st) != 1)
		return -1;
	return st;
}

/* The body of the (single) answer in out. */
static inline const char *out_body(struct srv_conn *c)
{
	const char *s = out_str(c), *b = strstr(s, "\r\n\r\n");
	return b ? b + 4 : "";
}

/* Renders submit i with resp into c->out. */
static inline void render(struct srv_conn *c, unsigned i, int rc,
			  const struct core_resp *resp,
			  const struct srv_views *views)
{
	static const struct srv_views none;
	srv_http_proto.render(c, c->state, c->subs[i].ctx, rc, resp,
			      views ? views : &none, &c->out);
}

/* out_reset, then render(c, i, rc, resp, NULL): whether the answer's status
 * is status and, if has, it holds has. */
static inline bool rendered_is(struct srv_conn *c, unsigned i, int rc,
			       const struct core_resp *resp, int status,
			       const char *has)
{
	bool ok;

	out_reset(c);
	render(c, i, rc, resp, NULL);
	ok = out_status(c) == status && (!has || out_has(c, has));
	if (!ok)
		fprintf(stderr, "render %u: %s\n", i, out_str(c));
	return ok;
}

/* An HS256 JWT for sub, expiring exp_s seconds after g_now. */
static inline const char *jwt(const char *sub, int64_t exp_s)
{
	static char tok[1024];
	char payload[256];

	snprintf(payload, sizeof(payload),
		 "{\"sub\":\"%s\",\"exp\":%" PRId64 "}", sub,
		 g_now / 1000 + exp_s);
	jwt_sign(JWT_HS256_HEADER, payload, JWT_SECRET, EVP_sha256(), tok);
	return tok;
}

static inline const char *stripe_sig(const char *body)
{
	static char out[256];
	char msg[8192], hex[65];
	uint8_t mac[32];
	unsigned mac_size = 0;
	int64_t t = g_now / 1000;
	int n = snprintf(msg, sizeof(msg), "%" PRId64 ".%s", t, body);

	HMAC(EVP_sha256(), STRIPE_SECRET, (int)strlen(STRIPE_SECRET),
	     (uint8_t *)msg, (size_t)n, mac, &mac_size);
	for (unsigned i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	snprintf(out, sizeof(out), "t=%" PRId64 ",v1=%s", t, hex);
	return out;
}

/* A request with a body and Content-Length. */
static inline const char *req(const char *method, const char *path,
			      const char *headers, const char *body)
{
	static char buf[1 << 17];
	snprintf(buf, sizeof(buf),
		 "%s %s HTTP/1.1\r\nHost: t\r\n%s%s%zu\r\n\r\n%s", method, path,
		 headers, body ? "Content-Length: " : "X-No-Body: ",
		 body ? strlen(body) : (size_t)0, body ? body : "");
	return buf;
}

/* The answer to a request fed to c (out emptied first) has status, and
 * has in it if has is not NULL; prints the answer if not. */
static inline bool answer_is(struct srv_conn *c, const char *method,
			     const char *path, const char *headers,
			     const char *body, int status, const char *has)
{
	bool ok;

	out_reset(c);
	ok = feeds(c, req(method, path, headers, body)) > 0 &&
	     out_status(c) == status && (!has || out_has(c, has));
	if (!ok)
		fprintf(stderr, "%s %s: %s\n", method, path, out_str(c));
	return ok;
}

#define AUTH_SVC "Authorization: Bearer " SERVICE_KEY "\r\n"
#define AUTH_ANON "Authorization: Bearer " ANON_KEY "\r\n"

static char auth_jwt_buf[1200];
static inline const char *auth_jwt(const char *sub, int64_t exp_s)
{
	snprintf(auth_jwt_buf, sizeof(auth_jwt_buf),
		 "Authorization: Bearer %s\r\n", jwt(sub, exp_s));
	return auth_jwt_buf;
}

static char hdr_buf[2048];
static inline const char *hdrs(const char *a, const char *b)
{
	snprintf(hdr_buf, sizeof(hdr_buf), "%s%s", a, b);
	return hdr_buf;
}

/* Sets the fake server up (time, keys, allowed origin), runs the program's
 * tests (CHECK_TEST_FN; argv[1]: only the one named so) and prints
 * "<prog>: N checks (M failed)". */
static inline int http_test_main(const char *prog, int argc, char **argv)
{
	g_now = INT64_C(1772438400000); /* 2026-03-02T08:00:00Z */
	strcpy(g_srv.auth.service_key, SERVICE_KEY);
	strcpy(g_srv.auth.anon_key, ANON_KEY);
	strcpy(g_srv.auth.jwt_secret, JWT_SECRET);
	strcpy(g_srv.auth.stripe_secret, STRIPE_SECRET);
	if (auth_config_set_origins(&g_srv.auth, "https://app.example"))
		return 1;
	return check_run_all(prog, argc > 1 ? argv[1] : NULL);
}

#endif
