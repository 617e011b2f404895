/*
 * test_http.c: the HTTP adapter (api/http*.c, srv_http_proto) on its own,
 * against this test's fakes of the network side (srv_answer, srv_submit,
 * srv_answer_begin, ...): what net.c would do is done here by feed(), which keeps
 * the bytes parse() did not use and offers them again with more, like
 * net.c's parse_conn.
 *
 * Checked: each route's mapping to a core_req; render of each answer;
 * auth refusals (401 unauthorized / token_expired, 403 forbidden, 404 for
 * another's booking); idempotency keys (required, scoped, fingerprint);
 * pipelined requests in one buffer; byte-by-byte delivery; chunked bodies;
 * 413 / 431 / 400 with close; invalid UTF-8, huge numbers, duplicate keys
 * and unknown fields; 405 with Allow; CORS preflight; ETag and 304;
 * keep-alive and close; rate limits (429 + Retry-After); back-pressure
 * (srv_submit -EAGAIN, the busy catalogue slot); the JSON writer's
 * escaping; the reason phrase of every status sent; the strict framing
 * (request-smuggling shapes: 400 and a close).
 *
 * Prints "http: N checks (M failed)", exits 0 only when all passed.
 */
#include "http_json.h"
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



#define SERVICE_KEY "svc-key-0123456789"
#define ANON_KEY "anon-key-0123456789"
#define JWT_SECRET "jwt-secret-0123456789"
#define STRIPE_SECRET "whsec_test"

/* ---- fakes of the network side ---- */

#define SUB_MAX 64

struct sub {
	struct core_req req;
	uint8_t ctx[SRV_CTX_SIZE_MAX];
	size_t ctx_size;
};

struct srv {
	struct auth_config auth;
	struct auth_limiter *limiter;
	struct srv_status status;
};

struct srv_conn {
	struct buf out;     /* every answer, in order */
	unsigned answer_count;
	struct sub subs[SUB_MAX];
	unsigned sub_count;
	unsigned sub_room;      /* srv_submit -EAGAIN once sub_count reaches it */
	uint8_t in[1 << 21];    /* bytes kept, as net.c keeps them */
	size_t in_size;
	bool closed;
	void *state;
};

static struct srv g_srv;
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

int srv_submit(struct srv_conn *c, const struct core_req *req,
	       const void *ctx, size_t ctx_size)
{
	if (ctx_size > SRV_CTX_SIZE_MAX)
		abort();
	if (c->sub_count == SUB_MAX || c->sub_count >= c->sub_room)
		return -EAGAIN;
	c->subs[c->sub_count].req = *req;
	memcpy(c->subs[c->sub_count].ctx, ctx, ctx_size);
	c->subs[c->sub_count].ctx_size = ctx_size;
	c->sub_count++;
	return 0;
}

struct srv *srv_conn_srv(struct srv_conn *c) { (void)c; return &g_srv; }
bool srv_conn_writable(const struct srv_conn *c) { (void)c; return true; }
void srv_count_response(struct srv_conn *c, int status) { (void)c; g_counted[status / 100 % 6]++; }

const char *srv_conn_peer(const struct srv_conn *c) { (void)c; return "127.0.0.1"; }
uint64_t srv_conn_peer_key(const struct srv_conn *c) { (void)c; return 0x7f000001; }
bool srv_conn_in_reserve(const struct srv_conn *c) { (void)c; return false; }
const struct auth_config *srv_auth(const struct srv *s) { return &s->auth; }
struct auth_limiter *srv_limiter(struct srv *s) { return s->limiter; }
void srv_status_get(struct srv *s, struct srv_status *out) { *out = s->status; }
static int g_refresh_rc = -ENOTSUP; /* what srv_refresh_views answers */
int srv_refresh_views(struct srv *s) { (void)s; return g_refresh_rc; }
core_time srv_now(void) { return g_now; }

/* ---- helpers ---- */

static struct srv_conn *conn_new(void)
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

static void conn_free(struct srv_conn *c)
{
	free(c->out.data);
	free(c->state);
	free(c);
}

/* Like net.c's parse_conn: appends, parses, keeps what was not used. */
static long feed(struct srv_conn *c, const void *p, size_t n)
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

static long feeds(struct srv_conn *c, const char *s)
{
	return feed(c, s, strlen(s));
}

/* Parse again what is kept (net.c does after answers went out). */
static long refeed(struct srv_conn *c)
{
	return feed(c, "", 0);
}

static void out_reset(struct srv_conn *c)
{
	c->out.size = 0;
	c->answer_count = 0;
}

/* The output as a string (NUL-terminated copy). */
static const char *out_str(struct srv_conn *c)
{
	static char buf[1 << 20];
	size_t n = c->out.size < sizeof(buf) - 1 ? c->out.size : sizeof(buf) - 1;
	memcpy(buf, c->out.data ? (const char *)c->out.data : "", n);
	buf[n] = '\0';
	return buf;
}

static bool out_has(struct srv_conn *c, const char *needle)
{
	return strstr(out_str(c), needle) != NULL;
}

static int out_status(struct srv_conn *c)
{
	int st = 0;
	if (sscanf(out_str(c), "HTTP/1.1 %d", &st) != 1)
		return -1;
	return st;
}

/* The body of the (single) answer in out. */
static const char *out_body(struct srv_conn *c)
{
	const char *s = out_str(c), *b = strstr(s, "\r\n\r\n");
	return b ? b + 4 : "";
}

/* Renders submit i with resp into c->out. */
static void render(struct srv_conn *c, unsigned i, int rc,
		   const struct core_resp *resp, const struct srv_views *views)
{
	static const struct srv_views none;
	srv_http_proto.render(c, c->state, c->subs[i].ctx, rc, resp,
			      views ? views : &none, &c->out);
}

/* An HS256 JWT for sub, expiring exp_s seconds after g_now. */
static const char *jwt(const char *sub, int64_t exp_s)
{
	static char tok[1024];
	char payload[256];

	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%" PRId64 "}",
		 sub, g_now / 1000 + exp_s);
	jwt_sign(JWT_HS256_HEADER, payload, JWT_SECRET, EVP_sha256(), tok);
	return tok;
}

static const char *stripe_sig(const char *body)
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
static const char *req(const char *method, const char *path,
		       const char *headers, const char *body)
{
	static char buf[1 << 17];
	snprintf(buf, sizeof(buf),
		 "%s %s HTTP/1.1\r\nHost: t\r\n%s%s%zu\r\n\r\n%s", method, path,
		 headers, body ? "Content-Length: " : "X-No-Body: ",
		 body ? strlen(body) : (size_t)0, body ? body : "");
	return buf;
}

#define AUTH_SVC "Authorization: Bearer " SERVICE_KEY "\r\n"
#define AUTH_ANON "Authorization: Bearer " ANON_KEY "\r\n"

static char auth_jwt_buf[1200];
static const char *auth_jwt(const char *sub, int64_t exp_s)
{
	snprintf(auth_jwt_buf, sizeof(auth_jwt_buf),
		 "Authorization: Bearer %s\r\n", jwt(sub, exp_s));
	return auth_jwt_buf;
}

static char hdr_buf[2048];
static const char *hdrs(const char *a, const char *b)
{
	snprintf(hdr_buf, sizeof(hdr_buf), "%s%s", a, b);
	return hdr_buf;
}

/* ---- tests ---- */

static void test_health_ready_metrics(void)
{
	struct srv_conn *c = conn_new();

	CHECK(feeds(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	CHECK(strcmp(out_body(c), "{\"status\":\"ok\"}") == 0);
	CHECK(out_has(c, "Content-Length: 15\r\n"));
	CHECK(out_has(c, "Content-Type: application/json\r\n"));
	out_reset(c);
	CHECK(feeds(c, "GET /ready HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	out_reset(c);
	g_srv.status.wal_error = -EIO;
	CHECK(feeds(c, "GET /ready HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 503);
	CHECK(out_has(c, "\"code\":\"unavailable\""));
	out_reset(c);
	g_srv.status.wal_error = -ENOSPC;
	CHECK(feeds(c, "GET /ready HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 503 && out_has(c, "the log's disk is full"));
	g_srv.status.wal_error = 0;
	out_reset(c);
	g_srv.status.repl_state = "streaming";
	g_srv.status.ops_total[CORE_OP_BOOK] = 42;
	CHECK(feeds(c, "GET /metrics HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "Content-Type: text/plain; version=0.0.4"));
	CHECK(out_has(c, "bookd_operations_total{op=\"book\"} 42\n"));
	CHECK(out_has(c, "bookd_replication_state{state=\"streaming\"} 1\n"));
	out_reset(c);
	/* HEAD: the headers of GET, no body. */
	CHECK(feeds(c, "HEAD /health HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "Content-Length: 15\r\n"));
	CHECK(strcmp(out_body(c), "") == 0);
	CHECK(c->sub_count == 0);
	CHECK(!c->closed);
	/* Every answer was counted by class for /metrics. */
	CHECK(g_counted[2] == 4 && g_counted[5] == 2);
	conn_free(c);
}

/* Every status bookd sends has its reason phrase in the status line (a
 * 202 went out as "202 Status"): the ones written here, and every status
 * fields.c maps core codes and errnos to. */
static void test_status_lines(void)
{
	static const struct {
		int status;
		const char *line;
	} sent[] = {
		{ 100, "HTTP/1.1 100 Continue\r\n" },
		{ 200, "HTTP/1.1 200 OK\r\n" },
		{ 201, "HTTP/1.1 201 Created\r\n" },
		{ 202, "HTTP/1.1 202 Accepted\r\n" },
		{ 204, "HTTP/1.1 204 No Content\r\n" },
		{ 304, "HTTP/1.1 304 Not Modified\r\n" },
		{ 400, "HTTP/1.1 400 Bad Request\r\n" },
		{ 401, "HTTP/1.1 401 Unauthorized\r\n" },
		{ 403, "HTTP/1.1 403 Forbidden\r\n" },
		{ 404, "HTTP/1.1 404 Not Found\r\n" },
		{ 405, "HTTP/1.1 405 Method Not Allowed\r\n" },
		{ 408, "HTTP/1.1 408 Request Timeout\r\n" },
		{ 409, "HTTP/1.1 409 Conflict\r\n" },
		{ 411, "HTTP/1.1 411 Length Required\r\n" },
		{ 413, "HTTP/1.1 413 Content Too Large\r\n" },
		{ 415, "HTTP/1.1 415 Unsupported Media Type\r\n" },
		{ 422, "HTTP/1.1 422 Unprocessable Content\r\n" },
		{ 429, "HTTP/1.1 429 Too Many Requests\r\n" },
		{ 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n" },
		{ 500, "HTTP/1.1 500 Internal Server Error\r\n" },
		{ 501, "HTTP/1.1 501 Not Implemented\r\n" },
		{ 503, "HTTP/1.1 503 Service Unavailable\r\n" },
		{ 505, "HTTP/1.1 505 HTTP Version Not Supported\r\n" },
		{ 507, "HTTP/1.1 507 Insufficient Storage\r\n" },
	};
	static const int errnos[] = { -EAGAIN, -EINVAL, -ENOSPC, -EIO, -EROFS,
				      -EDQUOT, -EFBIG, -ENOMEM, -ESHUTDOWN,
				      -ECANCELED, -EPERM };
	struct srv_conn *c = conn_new();
	int status;

	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		out_reset(c);
		http_write(&c->out, sent[i].status, NULL, "{}", 2);
		if (strncmp(out_str(c), sent[i].line, strlen(sent[i].line)))
			fprintf(stderr, "status line: %.40s\n", out_str(c));
		CHECK(strncmp(out_str(c), sent[i].line,
			      strlen(sent[i].line)) == 0);
	}
	for (int code = 1; code < CORE_CODE_COUNT; code++) {
		fld_code_error((enum core_code)code, &status);
		CHECK(http_reason(status) != NULL);
	}
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		fld_errno_error(errnos[i], &status);
		CHECK(http_reason(status) != NULL);
	}
	/* The 202 of POST /v1/admin/refresh, end to end. */
	out_reset(c);
	g_refresh_rc = 0;
	CHECK(feeds(c, "POST /v1/admin/refresh HTTP/1.1\r\n" AUTH_SVC
		       "Content-Length: 0\r\n\r\n") > 0);
	CHECK(strncmp(out_str(c), "HTTP/1.1 202 Accepted\r\n", 23) == 0);
	CHECK(strcmp(out_body(c), "{\"refresh\":\"requested\"}") == 0);
	g_refresh_rc = -ENOTSUP;
	conn_free(c);
}

static void test_admin_status(void)
{
	struct srv_conn *c = conn_new();

	g_srv.status.shard_count = 2;
	g_srv.status.wal_durable_lsn = 77;
	g_srv.status.repl_state = "down";
	g_srv.status.repl_lag_records = 5;
	g_srv.status.repl_lag_seconds = 1.5;
	CHECK(feeds(c, req("GET", "/v1/admin/status", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "\"shards\":2"));
	CHECK(out_has(c, "\"durable_lsn\":77"));
	CHECK(out_has(c, "\"replication\":{\"state\":\"down\",\"lag_records\":5,"));
	CHECK(out_has(c, "\"lag_seconds\":1.500"));
	CHECK(out_has(c, "\"name\":\"replication_down\""));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/admin/status", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 403);
	g_srv.status.repl_state = NULL;
	conn_free(c);
}

static void test_events_list(void)
{
	struct srv_conn *c = conn_new();
	struct core_event_view ev[2];
	struct srv_views views = { .events = ev };
	struct core_resp resp = { .op = CORE_OP_EVENT_LIST, .count = 2,
				  .more = true };
	char cursor[64], path[256];
	const char *p, *e;
	const struct core_req *q;

	CHECK(feeds(c, req("GET",
			   "/v1/events?org_id=3&from=2026-03-01&to=2026-03-08T00:00:00Z"
			   "&location_id=4&instructor_id=5&limit=2",
			   AUTH_ANON, NULL)) > 0);
	CHECK(c->answer_count == 0);
	CHECK(c->sub_count == 1);
	q = &c->subs[0].req;
	CHECK(q->op == CORE_OP_EVENT_LIST);
	CHECK(q->u.list.org_id == 3 && q->u.list.location_id == 4 &&
	      q->u.list.instructor_id == 5);
	CHECK(q->u.list.from == INT64_C(1772323200000)); /* 2026-03-01Z */
	CHECK(q->u.list.to == INT64_C(1772928000000));
	CHECK(q->u.list.limit == 2);
	CHECK(q->u.list.after_id == 0);

	memset(ev, 0, sizeof(ev));
	for (int i = 0; i < 2; i++) {
		ev[i].id = 10 + (uint64_t)i;
		ev[i].series_id = ev[i].org_id = ev[i].location_id =
			ev[i].instructor_id = 1;
		snprintf(ev[i].title, sizeof(ev[i].title), "Yoga \"%d\"\n", i);
		ev[i].start_at = INT64_C(1772643600000) + i * 3600000;
		ev[i].duration_min = 60;
		ev[i].capacity = 20;
		ev[i].booked = 5;
		ev[i].held = 1;
		ev[i].status = CORE_EVENT_SCHEDULED;
		ev[i].version = 7;
	}
	render(c, 0, 0, &resp, &views);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "ETag: \""));
	CHECK(out_has(c, "Cache-Control: public, max-age=5\r\n"));
	CHECK(out_has(c, "{\"events\":[{\"id\":\"10\",\"series_id\":\"1\","));
	CHECK(out_has(c, "\"title\":\"Yoga \\\"0\\\"\\n\""));
	CHECK(out_has(c, "\"start_at\":\"2026-03-04T17:00:00Z\""));
	CHECK(out_has(c, "\"available\":14"));
	CHECK(out_has(c, "\"status\":\"scheduled\""));
	p = strstr(out_str(c), "\"next_cursor\":\"");
	CHECK(p != NULL);
	if (!p)
		goto out;
	p += 15;
	e = strchr(p, '"');
	CHECK(e && e - p < (long)sizeof(cursor));
	memcpy(cursor, p, (size_t)(e - p));
	cursor[e - p] = '\0';
	{
		/* The same list again with its ETag: 304. */
		char etag[64], h[256];
		const char *t = strstr(out_str(c), "ETag: ");
		CHECK(t != NULL);
		sscanf(t, "ETag: %63[^\r]", etag);
		snprintf(h, sizeof(h), AUTH_ANON "If-None-Match: W/%s, \"x\"\r\n",
			 etag);
		out_reset(c);
		CHECK(feeds(c, req("GET", "/v1/events", h, NULL)) > 0);
		CHECK(c->sub_count == 2);
		render(c, 1, 0, &resp, &views);
		CHECK(out_status(c) == 304);
		CHECK(out_has(c, "ETag: "));
		CHECK(!out_has(c, "Content-Length"));
		/* Changed versions: a new tag, a full answer. */
		out_reset(c);
		ev[1].version = 8;
		render(c, 1, 0, &resp, &views);
		CHECK(out_status(c) == 200);
	}
	/* The cursor comes back as after_start/after_id. */
	out_reset(c);
	snprintf(path, sizeof(path), "/v1/events?cursor=%s&limit=500", cursor);
	CHECK(feeds(c, req("GET", path, AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == 3);
	q = &c->subs[2].req;
	CHECK(q->u.list.after_id == 11);
	CHECK(q->u.list.after_start == ev[1].start_at);
	CHECK(q->u.list.limit == 500);
	CHECK(q->u.list.from == g_now); /* default: from now */
	/* Refusals: 400 naming the parameter. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?limit=501", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "'limit'"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?cursor=abc", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "'cursor'"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?colour=red", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "unknown query parameter 'colour'"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?from=yesterday", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "'from'"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?org_id=1&org_id=2", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "repeated"));
	/* Empty values are absent (the contract's template form). */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?org_id=&from=&to=&limit=&cursor=",
			   AUTH_ANON, NULL)) > 0);
	CHECK(c->answer_count == 0 && c->sub_count == 4);
	CHECK(c->subs[3].req.u.list.limit == 50);
	/* Only 'to', in the past: everything before it. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?to=2026-01-01", AUTH_ANON, NULL)) > 0);
	CHECK(c->answer_count == 0 && c->sub_count == 5);
	CHECK(c->subs[4].req.u.list.from == 0);
	CHECK(c->subs[4].req.u.list.to == INT64_C(1767225600000));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?from=2026-02-01&to=2026-01-01",
			   AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && c->sub_count == 5);
	/* An empty list has no cursor. */
	out_reset(c);
	resp.count = 0;
	resp.more = false;
	render(c, 3, 0, &resp, &views);
	CHECK(strcmp(out_body(c), "{\"events\":[],\"next_cursor\":null}") == 0);
out:
	conn_free(c);
}

static void test_event_get_patch(void)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_EVENT_GET };
	char etag[64], h[160];
	const char *t;

	CHECK(feeds(c, req("GET", "/v1/events/42", AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == 1 && c->subs[0].req.op == CORE_OP_EVENT_GET);
	CHECK(c->subs[0].req.event_id == 42);
	resp.event.id = 42;
	resp.event.capacity = 10;
	resp.event.booked = 10;
	resp.event.waitlist_length = 2;
	resp.event.status = CORE_EVENT_SCHEDULED;
	resp.event.version = 3;
	strcpy(resp.event.currency, "eur");
	resp.event.price_cents = 1500;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "{\"event\":{\"id\":\"42\""));
	CHECK(out_has(c, "\"available\":0,\"waitlist_length\":2"));
	CHECK(out_has(c, "\"currency\":\"eur\""));
	t = strstr(out_str(c), "ETag: ");
	CHECK(t != NULL);
	sscanf(t, "ETag: %63[^\r]", etag);
	snprintf(h, sizeof(h), AUTH_ANON "If-None-Match: %s\r\n", etag);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/42", h, NULL)) > 0);
	render(c, 1, 0, &resp, NULL);
	CHECK(out_status(c) == 304);
	out_reset(c);
	resp.event.version = 4;
	render(c, 1, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	/* Unknown event: 404 from the core's answer; any id form: 404. */
	out_reset(c);
	resp.code = CORE_NO_EVENT;
	render(c, 1, 0, &resp, NULL);
	CHECK(out_status(c) == 404 && out_has(c, "\"code\":\"not_found\""));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/abc", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 404);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/0", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 404);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/99999999999999999999999", AUTH_ANON,
			   NULL)) > 0);
	CHECK(out_status(c) == 404);

	/* PATCH: service key only; capacity, status, instructor_id. */
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_ANON,
			   "{\"capacity\":3}")) > 0);
	CHECK(out_status(c) == 403);
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_SVC,
			   "{\"capacity\":3,\"instructor_id\":\"7\"}")) > 0);
	CHECK(c->sub_count == 3);
	CHECK(c->subs[2].req.op == CORE_OP_EVENT_PATCH);
	CHECK(c->subs[2].req.u.patch.capacity == 3);
	CHECK(c->subs[2].req.u.patch.instructor_id == 7);
	CHECK(!c->subs[2].req.u.patch.cancel);
	CHECK(!core_idem_present(&c->subs[2].req.idem)); /* optional */
	CHECK(feeds(c, req("PATCH", "/v1/events/42",
			   hdrs(AUTH_SVC, "Idempotency-Key: p1\r\n"),
			   "{\"status\":\"cancelled\"}")) > 0);
	CHECK(c->sub_count == 4);
	CHECK(c->subs[3].req.u.patch.cancel);
	CHECK(c->subs[3].req.u.patch.capacity == -1);
	CHECK(core_idem_present(&c->subs[3].req.idem));
	out_reset(c);
	resp.code = CORE_CAPACITY_BELOW_TAKEN;
	resp.op = CORE_OP_EVENT_PATCH;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 409 && out_has(c, "capacity_below_taken"));
	out_reset(c);
	resp.code = CORE_OK;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && !out_has(c, "ETag"));
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_SVC,
			   "{\"status\":\"scheduled\"}")) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "'status'"));
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_SVC, "{}")) > 0);
	CHECK(out_status(c) == 400);
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_SVC,
			   "{\"capacity\":-1}")) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "'capacity'"));
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_SVC,
			   "{\"capacity\":\"3\"}")) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "must be an integer"));
	CHECK(c->sub_count == 4);
	conn_free(c);
}

static void test_book(void)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_BOOK };
	const char *body = "{\"customer_id\":\"cus_1\",\"payment\":\"none\"}";
	const struct core_req *q;
	struct core_idem first;

	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: k1\r\n"), body)) > 0);
	CHECK(c->sub_count == 1);
	q = &c->subs[0].req;
	CHECK(q->op == CORE_OP_BOOK && q->event_id == 9);
	CHECK(strcmp(q->customer_id, "cus_1") == 0);
	CHECK(q->u.book.payment == CORE_PAY_NONE);
	CHECK(core_idem_present(&q->idem) && q->idem.fingerprint != 0);
	CHECK(q->now == g_now);
	first = q->idem;
	/* The same key and request: the same key and fingerprint. Another
	 * body: the same key, another fingerprint (the core says 422). */
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: k1\r\n"), body)) > 0);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: k1\r\n"),
			   "{\"customer_id\":\"cus_2\"}")) > 0);
	CHECK(c->sub_count == 3);
	CHECK(memcmp(&c->subs[1].req.idem, &first, sizeof(first)) == 0);
	CHECK(c->subs[2].req.idem.hi == first.hi &&
	      c->subs[2].req.idem.lo == first.lo);
	CHECK(c->subs[2].req.idem.fingerprint != first.fingerprint);
	CHECK(c->subs[2].req.u.book.payment == CORE_PAY_AUTO);

	/* Render: 201, the booking; replay: the header. */
	resp.booking.id = (UINT64_C(9) << 24) | 1;
	resp.booking.event_id = 9;
	strcpy(resp.booking.customer_id, "cus_1");
	resp.booking.status = CORE_BOOKING_CONFIRMED;
	resp.booking.created_at = g_now;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(out_has(c, "{\"booking\":{\"id\":\"150994945\",\"event_id\":\"9\","
			 "\"customer_id\":\"cus_1\",\"status\":\"confirmed\","
			 "\"created_at\":\""));
	CHECK(!out_has(c, "position") && !out_has(c, "hold_expires_at"));
	CHECK(!out_has(c, "Idempotent-Replayed"));
	out_reset(c);
	resp.replayed = true;
	resp.booking.status = CORE_BOOKING_WAITLISTED;
	resp.booking.position = 3;
	render(c, 1, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(out_has(c, "Idempotent-Replayed: true\r\n"));
	CHECK(out_has(c, "\"status\":\"waitlisted\",\"position\":3,"));
	out_reset(c);
	resp.replayed = false;
	resp.booking.status = CORE_BOOKING_PENDING_PAYMENT;
	resp.booking.position = 0;
	resp.booking.hold_expires_at = g_now + 600000;
	render(c, 1, 0, &resp, NULL);
	CHECK(out_has(c, "\"status\":\"pending_payment\",\"hold_expires_at\":\""));
	/* Refusals. */
	out_reset(c);
	resp.code = CORE_EVENT_FULL;
	render(c, 1, 0, &resp, NULL);
	CHECK(out_status(c) == 409 && out_has(c, "\"code\":\"event_full\""));
	out_reset(c);
	resp.code = CORE_IDEM_MISMATCH;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 422 &&
	      out_has(c, "\"code\":\"idempotency_key_reused\""));
	out_reset(c);
	render(c, 2, -ENOSPC, &resp, NULL);
	CHECK(out_status(c) == 503);
	CHECK(out_has(c, "\"code\":\"unavailable\",\"message\":\"the log's "
			 "disk is full; bookings are refused until space is "
			 "freed"));
	out_reset(c); /* a series' unknown location names the field */
	resp.code = CORE_NO_LOCATION;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 404 && out_has(c, "location_id: no such"));
	resp.code = CORE_IDEM_MISMATCH;
	out_reset(c);
	render(c, 2, -EAGAIN, &resp, NULL);
	CHECK(out_status(c) == 503);

	/* Missing key: 400 idempotency_key_required, nothing submitted. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", AUTH_SVC, body)) > 0);
	CHECK(out_status(c) == 400 &&
	      out_has(c, "\"code\":\"idempotency_key_required\""));
	out_reset(c);
	/* A control character in a header value: 400 and a close. */
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: \x01\r\n"),
			   body)) < 0);
	CHECK(out_status(c) == 400);
	conn_free(c);
	c = conn_new();
	/* Bodies: unknown field, wrong type, bad customer id, bad payment,
	 * service key without customer_id. */
	struct {
		const char *body, *needle;
	} bad[] = {
		{ "{\"customer_id\":\"c\",\"seats\":2}", "unknown field 'seats'" },
		{ "{\"customer_id\":5}", "'customer_id' must be a string" },
		{ "{\"customer_id\":\"a b\"}", "'customer_id' must be 1-64" },
		{ "{\"customer_id\":\"c\",\"payment\":\"cash\"}", "'payment'" },
		{ "{\"payment\":\"none\"}", "'customer_id' is required" },
		{ "{\"customer_id\":\"c\",\"customer_id\":\"d\"}", "malformed JSON" },
		{ "[1]", "must be a JSON object" },
		{ "{\"customer_id\":\"c\"", "malformed JSON" },
		{ "", "body is required" },
		{ "{\"customer_id\":\"\xff\xfe\"}", "malformed JSON" },
		{ "{\"customer_id\":\"c\\u0000d\"}", "malformed JSON" },
		{ "{\"customer_id\":\"c\",\"payment\":123456789012345678901234567890}",
		  "malformed JSON" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned before = c->sub_count;
		out_reset(c);
		CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
				   hdrs(AUTH_SVC, "Idempotency-Key: kb\r\n"),
				   bad[i].body)) > 0);
		CHECK(out_status(c) == 400);
		CHECK(out_has(c, "\"code\":\"invalid_request\""));
		if (!out_has(c, bad[i].needle))
			fprintf(stderr, "body %zu: %s\n", i, out_str(c));
		CHECK(out_has(c, bad[i].needle));
		CHECK(c->sub_count == before);
		CHECK(!c->closed);
	}
	conn_free(c);
}

static void test_auth_refusals(void)
{
	struct srv_conn *c = conn_new();
	const char *body = "{\"customer_id\":\"alice\"}";
	char h[1400];

	/* No key, a bad key, a malformed header: 401 unauthorized. */
	CHECK(feeds(c, req("GET", "/v1/events", "", NULL)) > 0);
	CHECK(out_status(c) == 401 && out_has(c, "\"code\":\"unauthorized\""));
	CHECK(out_has(c, "WWW-Authenticate: Bearer\r\n"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events",
			   "Authorization: Bearer nope\r\n", NULL)) > 0);
	CHECK(out_status(c) == 401);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events",
			   "Authorization: Basic " SERVICE_KEY "\r\n", NULL)) > 0);
	CHECK(out_status(c) == 401);
	/* An expired JWT: 401 token_expired. */
	out_reset(c);
	snprintf(h, sizeof(h), "%sIdempotency-Key: a1\r\n", auth_jwt("alice", -10));
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h, body)) > 0);
	CHECK(out_status(c) == 401 && out_has(c, "\"code\":\"token_expired\""));
	/* A JWT signed with another secret: 401. */
	out_reset(c);
	{
		char tok[1200];
		strcpy(tok, jwt("alice", 60));
		tok[strlen(tok) - 2] ^= 1;
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
		CHECK(feeds(c, req("GET", "/v1/events", h, NULL)) > 0);
		CHECK(out_status(c) == 401);
	}
	/* Anon key booking: 403. Anon on admin: 403. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_ANON, "Idempotency-Key: a2\r\n"), body)) > 0);
	CHECK(out_status(c) == 403 && out_has(c, "\"code\":\"forbidden\""));
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_ANON,
			   "{\"name\":\"x\",\"timezone\":\"UTC\"}")) > 0);
	CHECK(out_status(c) == 403);
	/* A customer on a service route: 403. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/orgs", auth_jwt("alice", 60),
			   "{\"name\":\"x\"}")) > 0);
	CHECK(out_status(c) == 403);
	/* A JWT booking for another customer: 403. */
	out_reset(c);
	snprintf(h, sizeof(h), "%sIdempotency-Key: a3\r\n", auth_jwt("bob", 60));
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h, body)) > 0);
	CHECK(out_status(c) == 403);
	CHECK(c->sub_count == 0);
	/* A customer's payment "none": accepted, as auto (the price decides:
	 * a free event confirms, a priced one holds). */
	out_reset(c);
	snprintf(h, sizeof(h), "%sIdempotency-Key: a3n\r\n",
		 auth_jwt("bob", 60));
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h,
			   "{\"payment\":\"none\"}")) > 0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.u.book.payment == CORE_PAY_AUTO);
	CHECK(strcmp(c->subs[0].req.customer_id, "bob") == 0);
	c->sub_count = 0;
	snprintf(h, sizeof(h), "%sIdempotency-Key: a3\r\n", auth_jwt("bob", 60));
	/* A JWT booking for itself, customer_id implied by sub. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h,
			   "{\"payment\":\"stripe\"}")) > 0);
	CHECK(c->sub_count == 1);
	CHECK(strcmp(c->subs[0].req.customer_id, "bob") == 0);
	CHECK(c->subs[0].req.u.book.payment == CORE_PAY_STRIPE);
	/* Keys are scoped: the same Idempotency-Key from the service key is
	 * another key. */
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: a3\r\n"),
			   "{\"customer_id\":\"bob\",\"payment\":\"stripe\"}")) > 0);
	CHECK(c->sub_count == 2);
	CHECK(c->subs[1].req.idem.hi != c->subs[0].req.idem.hi ||
	      c->subs[1].req.idem.lo != c->subs[0].req.idem.lo);
	/* Another customer's list: 403; own: submitted. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/customers/alice/bookings",
			   auth_jwt("bob", 60), NULL)) > 0);
	CHECK(out_status(c) == 403);
	CHECK(feeds(c, req("GET", "/v1/customers/bob/bookings?limit=10",
			   auth_jwt("bob", 60), NULL)) > 0);
	CHECK(c->sub_count == 3);
	CHECK(c->subs[2].req.op == CORE_OP_CUSTOMER_BOOKINGS);
	CHECK(strcmp(c->subs[2].req.customer_id, "bob") == 0);
	CHECK(c->subs[2].req.u.customer.capacity == 10);
	/* Public listing with a JWT: allowed. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/1", auth_jwt("bob", 60), NULL)) > 0);
	CHECK(c->sub_count == 4 && c->answer_count == 0);
	conn_free(c);
}

static void test_cancel_and_get_own(void)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_CANCEL };
	char h[1400];

	snprintf(h, sizeof(h), "%sIdempotency-Key: c1\r\n", auth_jwt("alice", 60));
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel", h, NULL)) > 0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.op == CORE_OP_CANCEL);
	CHECK(c->subs[0].req.booking_id == 150994945);
	CHECK(strcmp(c->subs[0].req.customer_id, "alice") == 0);
	CHECK(core_idem_present(&c->subs[0].req.idem));
	/* The service key cancels any: no customer given to the core. */
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel",
			   hdrs(AUTH_SVC, "Idempotency-Key: c2\r\n"), "{}")) > 0);
	CHECK(c->sub_count == 2 && c->subs[1].req.customer_id[0] == '\0');
	/* Without a key: 400; with a body field: 400. */
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel",
			   auth_jwt("alice", 60), NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "idempotency_key_required"));
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel",
			   hdrs(AUTH_SVC, "Idempotency-Key: c3\r\n"),
			   "{\"reason\":\"x\"}")) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "unknown field 'reason'"));
	CHECK(c->sub_count == 2);

	/* Render: booking + promoted. */
	out_reset(c);
	resp.booking.id = 150994945;
	resp.booking.event_id = 9;
	strcpy(resp.booking.customer_id, "alice");
	resp.booking.status = CORE_BOOKING_CANCELLED;
	resp.has_promoted = true;
	resp.promoted.id = 150994946;
	resp.promoted.event_id = 9;
	strcpy(resp.promoted.customer_id, "carol");
	resp.promoted.status = CORE_BOOKING_CONFIRMED;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "\"status\":\"cancelled\""));
	CHECK(out_has(c, "\"promoted\":{\"id\":\"150994946\""));
	out_reset(c);
	resp.has_promoted = false;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_has(c, "\"promoted\":null}"));
	/* The core refused another's booking as unknown: 404. */
	out_reset(c);
	resp.code = CORE_NO_BOOKING;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 404);

	/* GET: a JWT reads only its own (404 otherwise, nothing leaks). */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945", auth_jwt("bob", 60),
			   NULL)) > 0);
	CHECK(c->sub_count == 3 && c->subs[2].req.op == CORE_OP_BOOKING_GET);
	resp.code = CORE_OK;
	resp.op = CORE_OP_BOOKING_GET;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 404);
	CHECK(!out_has(c, "alice"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945", auth_jwt("alice", 60),
			   NULL)) > 0);
	render(c, 3, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && out_has(c, "\"customer_id\":\"alice\""));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945", AUTH_SVC, NULL)) > 0);
	render(c, 4, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945", AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 403);
	conn_free(c);
}

static void test_customer_bookings_render(void)
{
	struct srv_conn *c = conn_new();
	struct core_booking_view b[2];
	struct srv_views views = { .bookings = b };
	struct core_resp resp = { .op = CORE_OP_CUSTOMER_BOOKINGS, .count = 2 };

	memset(b, 0, sizeof(b));
	for (int i = 0; i < 2; i++) {
		b[i].id = 100 + (uint64_t)i;
		b[i].event_id = 1;
		strcpy(b[i].customer_id, "cu@x.y");
		b[i].status = CORE_BOOKING_CONFIRMED;
	}
	CHECK(feeds(c, req("GET", "/v1/customers/cu%40x.y/bookings", AUTH_SVC,
			   NULL)) > 0);
	CHECK(c->sub_count == 1);
	CHECK(strcmp(c->subs[0].req.customer_id, "cu@x.y") == 0);
	CHECK(c->subs[0].req.u.customer.capacity == 50);
	render(c, 0, 0, &resp, &views);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "{\"bookings\":[{\"id\":\"100\""));
	CHECK(out_has(c, "\"next_cursor\":null"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/customers/a%20b/bookings", AUTH_SVC,
			   NULL)) > 0);
	CHECK(out_status(c) == 404);
	conn_free(c);
}

static void test_catalogue(void)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_ORG_CREATE, .id = 1 };
	const struct core_series_spec *s;

	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_SVC,
			   "{\"name\":\"Studio \\u00e9\",\"timezone\":\"Europe/Berlin\"}")) > 0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.op == CORE_OP_ORG_CREATE);
	CHECK(strcmp(c->subs[0].req.u.cat.name, "Studio \xc3\xa9") == 0);
	CHECK(strcmp(c->subs[0].req.u.cat.timezone, "Europe/Berlin") == 0);
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(strcmp(out_body(c), "{\"org\":{\"id\":\"1\",\"name\":\"Studio \xc3\xa9\","
				  "\"timezone\":\"Europe/Berlin\"}}") == 0);
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_SVC,
			   "{\"name\":\"S\",\"timezone\":\"Mars/Olympus\"}")) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "'timezone'"));

	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/locations", AUTH_SVC,
			   "{\"org_id\":\"1\",\"name\":\"Hall\"}")) > 0);
	CHECK(c->sub_count == 2 && c->subs[1].req.op == CORE_OP_LOCATION_CREATE);
	CHECK(c->subs[1].req.u.cat.org_id == 1);
	resp.op = CORE_OP_LOCATION_CREATE;
	resp.id = 4;
	render(c, 1, 0, &resp, NULL);
	CHECK(strcmp(out_body(c), "{\"location\":{\"id\":\"4\",\"org_id\":\"1\","
				  "\"name\":\"Hall\"}}") == 0);
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/instructors", AUTH_SVC,
			   "{\"org_id\":1,\"name\":\"Ann\"}")) > 0);
	CHECK(c->sub_count == 3 && c->subs[2].req.op == CORE_OP_INSTRUCTOR_CREATE);
	render(c, 2, 0, &resp, NULL);
	CHECK(out_has(c, "{\"instructor\":{\"id\":\"4\""));
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/customers", AUTH_SVC,
			   "{\"id\":\"cus_9\",\"email\":\"a@b.c\"}")) > 0);
	CHECK(c->sub_count == 4 && c->subs[3].req.op == CORE_OP_CUSTOMER_UPSERT);
	CHECK(strcmp(c->subs[3].req.customer_id, "cus_9") == 0);
	CHECK(strcmp(c->subs[3].req.u.cat.email, "a@b.c") == 0);
	render(c, 3, 0, &resp, NULL);
	CHECK(strcmp(out_body(c), "{\"customer\":{\"id\":\"cus_9\",\"email\":"
				  "\"a@b.c\",\"name\":null}}") == 0);

	/* Series: every field into the spec the core reads by pointer. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/series",
			   hdrs(AUTH_SVC, "Idempotency-Key: s1\r\n"),
			   "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
			   "\"title\":\"Flow\",\"capacity\":20,\"waitlist_capacity\":5,"
			   "\"price_cents\":1500,\"currency\":\"EUR\","
			   "\"timezone\":\"Europe/Berlin\",\"weekdays\":[\"MO\",\"WE\"],"
			   "\"start_time\":\"18:30\",\"duration_min\":60,"
			   "\"first_date\":\"2026-03-02\",\"last_date\":\"2026-06-30\","
			   "\"skip_dates\":[\"2026-04-06\"]}")) > 0);
	CHECK(c->sub_count == 5);
	CHECK(c->subs[4].req.op == CORE_OP_SERIES_CREATE);
	s = c->subs[4].req.u.series;
	CHECK(s != NULL);
	if (s) {
		CHECK(s->org_id == 1 && s->location_id == 2 && s->instructor_id == 3);
		CHECK(strcmp(s->title, "Flow") == 0);
		CHECK(s->capacity == 20 && s->waitlist_capacity == 5);
		CHECK(s->price_cents == 1500 && strcmp(s->currency, "eur") == 0);
		CHECK(s->weekday_mask == 0x05);
		CHECK(s->start_minute == 18 * 60 + 30);
		CHECK(s->duration_min == 60);
		CHECK(s->first_date.year == 2026 && s->first_date.month == 3 &&
		      s->first_date.day == 2);
		CHECK(s->last_date.month == 6 && s->last_date.day == 30);
		CHECK(s->skip_count == 1 && s->skip[0].day == 6);
	}
	/* A second catalogue request while the connection's slot is busy
	 * gets a slot of its own (freed by render: ASan checks). */
	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_SVC,
			   "{\"name\":\"Second\"}")) > 0);
	CHECK(c->sub_count == 6 && c->in_size == 0);
	resp.op = CORE_OP_SERIES_CREATE;
	resp.id = 7;
	resp.count = 34;
	out_reset(c);
	render(c, 4, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(out_has(c, "{\"series\":{\"id\":\"7\",\"org_id\":\"1\""));
	CHECK(out_has(c, "\"weekdays\":[\"MO\",\"WE\"],\"start_time\":\"18:30\""));
	CHECK(out_has(c, "\"skip_dates\":[\"2026-04-06\"]},\"generated\":34}"));
	CHECK(strcmp(c->subs[5].req.u.cat.timezone, "UTC") == 0);
	out_reset(c);
	resp.op = CORE_OP_ORG_CREATE;
	resp.id = 2;
	render(c, 5, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(strcmp(out_body(c), "{\"org\":{\"id\":\"2\",\"name\":\"Second\","
				  "\"timezone\":\"UTC\"}}") == 0);
	/* The connection's slot is free again: a third uses it. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_SVC, "{\"name\":\"Third\"}")) > 0);
	CHECK(c->sub_count == 7);
	resp.code = CORE_NO_ORG;
	render(c, 6, 0, &resp, NULL);
	CHECK(out_status(c) == 404);

	/* Series refusals name the field. */
	struct {
		const char *body, *needle;
	} bad[] = {
		{ "{\"org_id\":\"1\"}", "'location_id' is required" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"XX\"],\"start_time\":\"18:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-03-02\"}",
		  "weekdays: unknown day \\\"XX\\\"" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"18:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-03-02\","
		  "\"last_date\":\"2026-03-01\"}",
		  "last_date: before first_date" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"18:30\","
		  "\"duration_min\":60,\"first_date\":\"1900-03-02\"}",
		  "'first_date'" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"25:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-03-02\"}",
		  "'start_time'" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"08:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-02-30\"}",
		  "'first_date'" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"price_cents\":100,"
		  "\"weekdays\":[\"MO\"],\"start_time\":\"08:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-02-03\"}",
		  "'currency' is required" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":1e3,\"timezone\":\"UTC\"}",
		  "'capacity' must be an integer" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"08:30\",\"colour\":1,"
		  "\"duration_min\":60,\"first_date\":\"2026-02-03\"}",
		  "unknown field 'colour'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out_reset(c);
		CHECK(feeds(c, req("POST", "/v1/series", AUTH_SVC, bad[i].body)) > 0);
		CHECK(out_status(c) == 400);
		if (!out_has(c, bad[i].needle))
			fprintf(stderr, "series %zu: %s\n", i, out_str(c));
		CHECK(out_has(c, bad[i].needle));
	}
	CHECK(c->sub_count == 7);

	/* Generate. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/admin/generate", AUTH_SVC,
			   "{\"until\":\"2026-05-01\"}")) > 0);
	CHECK(c->sub_count == 8 && c->subs[7].req.op == CORE_OP_GENERATE);
	CHECK(c->subs[7].req.u.generate.until.month == 5);
	resp.code = CORE_OK;
	resp.op = CORE_OP_GENERATE;
	resp.count = 12;
	render(c, 7, 0, &resp, NULL);
	CHECK(strcmp(out_body(c), "{\"generated\":12}") == 0);
	CHECK(feeds(c, req("POST", "/v1/admin/generate", AUTH_SVC, NULL)) > 0);
	CHECK(c->sub_count == 9 && c->subs[8].req.u.generate.until.year == 0);
	conn_free(c);
}

static void test_stripe(void)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_PAY };
	const char *ok = "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\","
			 "\"data\":{\"object\":{\"id\":\"pi_1\",\"amount\":1500,"
			 "\"currency\":\"eur\",\"metadata\":{\"booking_id\":"
			 "\"150994945\"},\"extra\":[1,2,3]}}}";
	const char *failed = "{\"id\":\"evt_2\",\"type\":\"payment_intent.payment_failed\","
			     "\"data\":{\"object\":{\"amount\":1500,\"currency\":\"EUR\","
			     "\"metadata\":{\"booking_id\":\"150994945\"}}}}";
	const char *other = "{\"id\":\"evt_3\",\"type\":\"charge.refunded\","
			    "\"data\":{\"object\":{}}}";
	char h[512];
	uint64_t ref;

	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(ok));
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, ok)) > 0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.op == CORE_OP_PAY);
	CHECK(c->subs[0].req.booking_id == 150994945);
	CHECK(c->subs[0].req.u.pay.succeeded);
	CHECK(c->subs[0].req.u.pay.amount_cents == 1500);
	CHECK(strcmp(c->subs[0].req.u.pay.currency, "eur") == 0);
	CHECK(c->subs[0].req.u.pay.payment_ref != 0);
	CHECK(core_idem_present(&c->subs[0].req.idem));
	ref = c->subs[0].req.u.pay.payment_ref;
	/* The same event again: the same reference and key. */
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, ok)) > 0);
	CHECK(c->sub_count == 2 && c->subs[1].req.u.pay.payment_ref == ref);
	CHECK(c->subs[1].req.idem.lo == c->subs[0].req.idem.lo);
	resp.booking.id = 150994945;
	resp.booking.status = CORE_BOOKING_CONFIRMED;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && out_has(c, "\"outcome\":\"applied\""));
	out_reset(c);
	resp.code = CORE_PAYMENT_MISMATCH;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && out_has(c, "\"received\":true"));
	out_reset(c);
	render(c, 0, -EIO, &resp, NULL);
	CHECK(out_status(c) == 503); /* Stripe retries */

	out_reset(c);
	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(failed));
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, failed)) > 0);
	CHECK(c->sub_count == 3 && !c->subs[2].req.u.pay.succeeded);
	CHECK(c->subs[2].req.u.pay.payment_ref != ref);
	/* Unknown types: 200 ignored, nothing submitted. */
	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(other));
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, other)) > 0);
	CHECK(out_status(c) == 200);
	CHECK(strcmp(out_body(c), "{\"received\":true,\"ignored\":true}") == 0);
	CHECK(c->sub_count == 3);
	/* Bad or missing signature: 400, no bearer needed either way. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe",
			   "Stripe-Signature: t=1,v1=00\r\n", ok)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "invalid_signature"));
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", "", ok)) > 0);
	CHECK(out_status(c) == 400);
	/* Signed, then tampered with: 400. */
	out_reset(c);
	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(ok));
	{
		char tampered[1024];
		strcpy(tampered, ok);
		tampered[strlen(tampered) - 20] ^= 1;
		CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, tampered)) > 0);
		CHECK(out_status(c) == 400);
	}
	CHECK(c->sub_count == 3);
	conn_free(c);
}

static void test_routes_methods_cors(void)
{
	struct srv_conn *c = conn_new();

	CHECK(feeds(c, req("GET", "/v1/nothing", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 404 && out_has(c, "\"code\":\"not_found\""));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 404);
	out_reset(c);
	CHECK(feeds(c, req("DELETE", "/v1/events/3", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 405);
	CHECK(out_has(c, "Allow: GET, HEAD, PATCH, OPTIONS\r\n"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/orgs", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 405 && out_has(c, "Allow: POST, OPTIONS\r\n"));
	/* Preflight from an allowed origin. */
	out_reset(c);
	CHECK(feeds(c, "OPTIONS /v1/events/3/bookings HTTP/1.1\r\n"
		       "Origin: https://app.example\r\n"
		       "Access-Control-Request-Method: POST\r\n"
		       "Access-Control-Request-Headers: authorization, idempotency-key\r\n"
		       "\r\n") > 0);
	CHECK(out_status(c) == 204);
	CHECK(out_has(c, "Access-Control-Allow-Origin: https://app.example\r\n"));
	CHECK(out_has(c, "Access-Control-Allow-Methods: POST, OPTIONS\r\n"));
	CHECK(out_has(c, "Access-Control-Allow-Headers: Authorization, "
			 "Content-Type, Idempotency-Key\r\n"));
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
	CHECK(feeds(c, "GET /health HTTP/1.1\r\nOrigin: https://app.example\r\n\r\n") > 0);
	CHECK(out_has(c, "Access-Control-Allow-Origin: https://app.example\r\n"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/3",
			   hdrs(AUTH_ANON, "Origin: https://app.example\r\n"),
			   NULL)) > 0);
	{
		struct core_resp resp = { .op = CORE_OP_EVENT_GET };
		resp.event.id = 3;
		resp.event.status = CORE_EVENT_SCHEDULED;
		render(c, 0, 0, &resp, NULL);
		CHECK(out_has(c, "Access-Control-Allow-Origin: https://app.example\r\n"));
	}
	conn_free(c);
}

static void test_pipelining(void)
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
	n = snprintf(buf, sizeof(buf), "%s", req("GET", "/v1/events/6", AUTH_ANON, NULL));
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

static void test_byte_by_byte(void)
{
	struct srv_conn *whole = conn_new(), *c = conn_new();
	const char *r = req("POST", "/v1/events/9/bookings",
			    hdrs(AUTH_SVC, "Idempotency-Key: bb\r\nOrigin: https://app.example\r\n"),
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
		const char *ch = "POST /v1/events/9/bookings HTTP/1.1\r\n"
				 AUTH_SVC "Idempotency-Key: bb\r\n"
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

static void test_limits_and_malformed(void)
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
	CHECK(feeds(c, "POST /v1/orgs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		       "20000\r\n") < 0);
	CHECK(out_status(c) == 413);
	conn_free(c);
	/* Too many chunks: 413. */
	c = conn_new();
	{
		char chunks[4096];
		size_t k = 0;
		k += (size_t)snprintf(chunks + k, sizeof(chunks) - k,
				      "POST /v1/orgs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < HTTP_BODY_SPAN_MAX + 2; i++)
			k += (size_t)snprintf(chunks + k, sizeof(chunks) - k, "1\r\n \r\n");
		CHECK(feed(c, chunks, k) < 0);
		CHECK(out_status(c) == 413);
	}
	conn_free(c);
	/* Endless chunk extensions: refused, the connection closed. */
	c = conn_new();
	{
		static char ext[HTTP_REQUEST_SIZE_MAX + 1024];
		size_t k = (size_t)snprintf(ext, sizeof(ext),
					    "POST /v1/orgs HTTP/1.1\r\n"
					    "Transfer-Encoding: chunked\r\n\r\n1;x=");
		memset(ext + k, 'a', sizeof(ext) - k);
		for (size_t off = 0; off < sizeof(ext) && !c->closed; off += 4096)
			feed(c, ext + off, 4096 < sizeof(ext) - off ? 4096 : sizeof(ext) - off);
		/* http-parser counts chunk-size lines as head bytes (431 at
		 * 80 KiB); our total limit (413) is the backstop. */
		CHECK(c->closed &&
		      (out_status(c) == 413 || out_status(c) == 431));
	}
	conn_free(c);
	/* Trailers are ignored: an Idempotency-Key there does not count. */
	c = conn_new();
	CHECK(feeds(c, "POST /v1/bookings/150994945/cancel HTTP/1.1\r\n" AUTH_SVC
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
		size_t k = (size_t)snprintf(many, sizeof(many), "GET /health HTTP/1.1\r\n");
		for (int i = 0; i < HTTP_HEADER_COUNT_MAX + 1; i++)
			k += (size_t)snprintf(many + k, sizeof(many) - k, "X-%d: 1\r\n", i);
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

/* Request-smuggling shapes and other framing a strict server refuses:
 * each answered 400 (505 for another major version) naming what is
 * wrong, then closed, nothing submitted; whole and byte by byte. */
static void test_strict_framing(void)
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
			"\r\n{}", 400,
		  "both Content-Length and Transfer-Encoding" },
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
		{ "GET /health HTTP/1.1\r\nX-A: a\x7f" "b\r\n\r\n", 400,
		  "invalid character in a header value" },
		{ POST_ "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
		  "Transfer-Encoding other than chunked" },
		{ POST_ "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
		  400, "Transfer-Encoding other than chunked" },
		{ POST_ "Transfer-Encoding: gzip\r\n\r\n", 400,
		  "Transfer-Encoding other than chunked" },
		{ POST_ "Transfer-Encoding: chunkedx\r\n\r\n", 400,
		  "Transfer-Encoding other than chunked" },
		{ POST_ CHUNKED_ CHUNKED_ "\r\n0\r\n\r\n", 400,
		  "duplicate Transfer-Encoding" },
		{ "POST /v1/orgs HTTP/1.0\r\n" AUTH_SVC CHUNKED_ "\r\n0\r\n\r\n",
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
		{ "GET /health http/1.1\r\n\r\n", 400, "malformed HTTP version" },
		{ "GET /health\r\n\r\n", 400, "malformed request line" },
		{ "GET  /health HTTP/1.1\r\n\r\n", 400, "malformed request line" },
		{ "GET /health  HTTP/1.1\r\n\r\n", 400, "malformed HTTP version" },
		{ "GET\t/health HTTP/1.1\r\n\r\n", 400,
		  "invalid character in the request line" },
		{ "GET /health HTTP/2.0\r\n\r\n", 505,
		  "only HTTP/1.0 and HTTP/1.1" },
		{ "GET /health HTTP/0.9\r\n\r\n", 505,
		  "only HTTP/1.0 and HTTP/1.1" },
	};
	static const char *const good[] = { /* {"name":"O"}: 12 bytes */
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
			CHECK(out_has(c, bad[i].status == 400
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
		if (c->answer_count + c->sub_count != 1 ||
		    out_status(c) == 400)
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
		CHECK(out_status(c) == 400 && out_has(c, "too many trailer lines"));
		conn_free(c);
	}
	/* A head whose blank line ends just past the limit: 431. */
	{
		static char big[HTTP_HEAD_SIZE_MAX + 64];
		struct srv_conn *c = conn_new();
		int n = snprintf(big, sizeof(big), "GET /health HTTP/1.1\r\nX: ");
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

static void test_keep_alive_and_close(void)
{
	struct srv_conn *c = conn_new();

	/* HTTP/1.0: closes after the answer (unless keep-alive). */
	CHECK(feeds(c, "GET /health HTTP/1.0\r\n\r\nGET /health HTTP/1.0\r\n\r\n") < 0);
	CHECK(c->answer_count == 1);
	CHECK(out_has(c, "Connection: close\r\n"));
	conn_free(c);
	c = conn_new();
	CHECK(feeds(c, "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") > 0);
	CHECK(!c->closed && out_has(c, "Connection: keep-alive\r\n"));
	conn_free(c);
	/* HTTP/1.1 Connection: close, also after a submit: the render says so. */
	c = conn_new();
	CHECK(feeds(c, req("GET", "/v1/events/1",
			   hdrs(AUTH_ANON, "Connection: close\r\n"), NULL)) < 0);
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
	CHECK(feeds(c, "POST /v1/orgs HTTP/1.1\r\n" AUTH_SVC
		       "Expect: 100-continue\r\nContent-Length: 14\r\n\r\n") == 0);
	CHECK(c->answer_count == 1 && out_has(c, "HTTP/1.1 100 Continue\r\n\r\n"));
	CHECK(feeds(c, "{\"name\":\"Org\"}") > 0);
	CHECK(c->answer_count == 1 && c->sub_count == 1);
	conn_free(c);
}

static void test_rate_limit(void)
{
	struct auth_limit_config lc;
	struct srv_conn *c = conn_new();
	char h[1400];
	unsigned ok = 0, limited = 0;

	auth_limit_config_default(&lc);
	lc.rate[AUTH_LIMIT_CUSTOMER] = 1;
	lc.burst[AUTH_LIMIT_CUSTOMER] = 3;
	lc.bucket_count = 64;
	g_srv.limiter = auth_limiter_new(&lc);
	CHECK(g_srv.limiter != NULL);
	snprintf(h, sizeof(h), "%sIdempotency-Key: r\r\n", auth_jwt("rl", 60));
	for (int i = 0; i < 6; i++) {
		unsigned before = c->sub_count;
		out_reset(c);
		CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h, "{}")) > 0);
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
static void test_limit_order(void)
{
	struct auth_limit_config lc;
	struct srv_conn *c = conn_new();
	char h[512];
	unsigned svc_ok = 0, anon_ok = 0, anon_429 = 0;

	auth_limit_config_default(&lc);
	lc.rate[AUTH_LIMIT_ADDRESS] = 1;
	lc.burst[AUTH_LIMIT_ADDRESS] = 2;
	lc.bucket_count = 64;
	g_srv.limiter = auth_limiter_new(&lc);
	CHECK(g_srv.limiter != NULL);
	/* 50 service-key requests from one address: none refused. */
	for (int i = 0; i < 50; i++) {
		out_reset(c);
		CHECK(feeds(c, req("GET", "/v1/admin/status", AUTH_SVC, NULL)) > 0);
		svc_ok += out_status(c) == 200;
	}
	CHECK(svc_ok == 50);
	/* The anon key from the same address: the burst of 2, then 429. */
	for (int i = 0; i < 5; i++) {
		out_reset(c);
		CHECK(feeds(c, req("GET", "/v1/events/9", AUTH_ANON, NULL)) > 0);
		if (out_status(c) == 429 && out_has(c, "Retry-After: 1\r\n") &&
		    out_has(c, "\"code\":\"rate_limited\""))
			anon_429++;
		else if (out_status(c) != 429)
			anon_ok++;
	}
	CHECK(anon_ok == 2 && anon_429 == 3);
	/* A bad token and no token are held to the address's limit too. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/9",
			   "Authorization: Bearer nope\r\n", NULL)) > 0);
	CHECK(out_status(c) == 429);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/9", "", NULL)) > 0);
	CHECK(out_status(c) == 429);
	/* The service key still gets in; so do /health and /metrics. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/admin/status", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 200);
	out_reset(c);
	CHECK(feeds(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);

	/* X-Forwarded-For from an untrusted peer: ignored (still 429). */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/9",
			   hdrs(AUTH_ANON, "X-Forwarded-For: 203.0.113.7\r\n"),
			   NULL)) > 0);
	CHECK(out_status(c) == 429);
	/* From a trusted proxy: each client its own bucket. */
	CHECK(auth_config_set_proxies(&g_srv.auth, "10.0.0.0/8, 127.0.0.1") == 0);
	for (int i = 0; i < 3; i++) {
		out_reset(c);
		snprintf(h, sizeof(h), "%sX-Forwarded-For: 198.51.100.9, "
			 "203.0.113.%d\r\n", AUTH_ANON, i + 1);
		CHECK(feeds(c, req("GET", "/v1/events/9", h, NULL)) > 0);
		CHECK(out_status(c) != 429);
	}
	/* One client behind it: the burst, then 429; a forged left-most
	 * entry does not help it (the right-most untrusted one counts). */
	for (int i = 0; i < 2; i++) {
		out_reset(c);
		snprintf(h, sizeof(h), "%sX-Forwarded-For: 192.0.2.%d, "
			 "203.0.113.50, 10.1.2.3\r\n", AUTH_ANON, i + 1);
		CHECK(feeds(c, req("GET", "/v1/events/9", h, NULL)) > 0);
		CHECK(out_status(c) != 429);
	}
	out_reset(c);
	snprintf(h, sizeof(h), "%sX-Forwarded-For: 192.0.2.99, 203.0.113.50\r\n",
		 AUTH_ANON);
	CHECK(feeds(c, req("GET", "/v1/events/9", h, NULL)) > 0);
	CHECK(out_status(c) == 429 && out_has(c, "Retry-After: "));
	/* Two X-Forwarded-For lines (a proxy adding its own): the last one. */
	out_reset(c);
	snprintf(h, sizeof(h), "%sX-Forwarded-For: 203.0.113.50\r\n"
		 "X-Forwarded-For: 203.0.113.60\r\n", AUTH_ANON);
	CHECK(feeds(c, req("GET", "/v1/events/9", h, NULL)) > 0);
	CHECK(out_status(c) != 429 && out_status(c) != 400);
	CHECK(auth_config_set_proxies(&g_srv.auth, "") == 0);
	auth_limiter_free(g_srv.limiter);
	g_srv.limiter = NULL;
	conn_free(c);
}

static void test_json_writer(void)
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
	CHECK(strcmp(buf, "{\"s\":\"a\\\"b\\\\c\\u0001\\u001f\\n\\t\\u007f\","
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

/* Random bytes and random cuts of valid requests: no crash, no hang, the
 * fakes' invariants hold (a seeded sanity run; fuzz_http goes further). */
static void test_random_input(void)
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

int main(void)
{
	g_now = INT64_C(1772438400000); /* 2026-03-02T08:00:00Z */
	strcpy(g_srv.auth.service_key, SERVICE_KEY);
	strcpy(g_srv.auth.anon_key, ANON_KEY);
	strcpy(g_srv.auth.jwt_secret, JWT_SECRET);
	strcpy(g_srv.auth.stripe_secret, STRIPE_SECRET);
	if (auth_config_set_origins(&g_srv.auth, "https://app.example"))
		return 1;

	test_health_ready_metrics();
	test_status_lines();
	test_admin_status();
	test_events_list();
	test_event_get_patch();
	test_book();
	test_auth_refusals();
	test_cancel_and_get_own();
	test_customer_bookings_render();
	test_catalogue();
	test_stripe();
	test_routes_methods_cors();
	test_pipelining();
	test_byte_by_byte();
	test_limits_and_malformed();
	test_strict_framing();
	test_keep_alive_and_close();
	test_rate_limit();
	test_limit_order();
	test_json_writer();
	test_random_input();
	printf("http: %u checks (%u failed)\n", check_count, check_fail_count);
	return check_fail_count ? 1 : 0;
}
