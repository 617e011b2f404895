/*
 * http_routes.c: the routes of the HTTP adapter (see http.c,
 * docs/contract.md and docs/openapi.yaml): path and method -> the
 * operation's row of the table (ops.h: ops_http_match), auth, rate limits,
 * request -> core_req (http_render.c renders the core's answers; the
 * status and metrics bodies are http_status.c's). Who may call an
 * operation, whether it needs an Idempotency-Key and its rate-limit class
 * are read from its row, not decided here.
 *
 * Order of checks for a request: route (404), OPTIONS preflight (204),
 * method (405 with Allow), bearer token read, rate limit (429: the service
 * key's own limit, else the client address's, that address taken from
 * X-Forwarded-For only when the peer is a trusted proxy), bearer token
 * refusals (401 unauthorized / token_expired), role (403 forbidden), anon
 * key or customer rate limit (429), the path's id (404), Idempotency-Key
 * (400 idempotency_key_required on bookings and cancels; checked before
 * the body there, after it on the other keyed operations), query and body
 * (400 invalid_request naming the field), then the core decides (render maps
 * its outcome: fld_code_error). /health, /ready and /metrics take no
 * limit.
 *
 * Who may do what (the access of each row in ops.c; the details here):
 *   - none:     /health, /ready, /metrics; /v1/webhooks/stripe (its
 *               Stripe-Signature instead); the files of web/ (web.h:
 *               "/", "/web/<name>", "/<page>"), looked up only when no
 *               operation has the path, never rate limited (a page's own
 *               calls are);
 *   - public:   GET /v1/events, /v1/events/{id}, and the catalogue's
 *               reads: /v1/orgs, /v1/locations, /v1/instructors,
 *               /v1/series and each one's /{id} (anon key, JWT or
 *               service);
 *   - customer: bookings: a JWT's sub books, cancels and reads only its
 *               own: booking for another customer_id is 403, another's
 *               customer list is 403; another's booking is 404 (GET: the
 *               answer's customer is checked in render; cancel: the core is
 *               given the sub in req.customer_id and refuses another's
 *               booking as unknown, before deciding anything). A
 *               customer's "payment":"none" is taken as auto: a free
 *               event confirms, a priced one holds (only the service
 *               key's "none" confirms a priced event without payment).
 *   - service:  everything.
 *
 * An operation's path segment, query and body are decoded into its
 * struct op_in (ops.h; fields.h's validators, this protocol's messages and
 * defaults); ops.c turns that into the core request (ops_request) and the
 * idempotency fingerprint (submit_in). Idempotency keys are scoped by the
 * caller (auth_idem_key: service key, or the JWT's customer); the
 * fingerprint is the op's name and its canonical fields (ops_fingerprint),
 * the binary protocol's too, so a retry over either protocol is a replay.
 * Stripe webhooks use the Stripe event id as their key (scope "stripe"),
 * so a redelivered event is a replay, with auth_fingerprint(method, path,
 * body) as its fingerprint, and its hash as the payment reference.
 *
 * What render() needs travels in struct http_ctx (http_render.h, copied
 * by srv_submit).
 * A catalogue create also needs what the core reads through a pointer (the
 * series spec) and what the answer echoes (names): the connection's own
 * catalogue slot holds them until render (no allocation); while it is busy
 * (catalogue requests pipelined on one connection) a slot is allocated and
 * freed by render. net.c renders every submitted request, also for a
 * connection closed before its answer (into a discarded buffer), so the
 * slot is always freed.
 */
#include "http_routes.h"

#include "http_json.h"
#include "http_render.h"
#include "http_status.h"

#include "fields.h"
#include "hex.h"
#include "ops.h"
#include "seed_import.h"
#include "web.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#define HTTP_SEG_SIZE_MAX 128
#define HTTP_QUERY_KEY_SIZE_MAX 32
#define HTTP_QUERY_VALUE_SIZE_MAX 128
_Static_assert(FLD_IDEM_KEY_SIZE_MAX == HTTP_IDEM_KEY_SIZE_MAX, "one key rule");

/* ---- one request being handled ---- */

struct call {
	struct srv_conn *c;
	const struct http_request *rq;
	struct http_cat_slot *slot; /* the connection's */
	struct http_cat_slot *cat;  /* taken for this request (slot_take) */
	const struct auth_config *cfg;
	struct auth_limiter *limiter;
	struct http_meta meta;
	struct http_ctx ctx;
	struct auth_principal who;
	struct http_str token;
	const struct op_def *op;
	core_time now;
	char id_seg[HTTP_SEG_SIZE_MAX]; /* the {id} of the path, decoded */
	size_t id_size;
	struct http_str key; /* Idempotency-Key, checked (idem_check) */
};

static int answer(struct call *k, int status, const char *body, size_t n)
{
	ASSERT(status >= 200 && status <= 599);
	ASSERT(body || n == 0);
	srv_count_response(k->c, status);
	http_write(srv_answer_begin(k->c), status, &k->meta, body, n);
	srv_answer_done(k->c);
	return 0;
}

/* A literal body, its size from the compiler. */
#define ANSWER_LIT(k, status, lit) answer((k), (status), lit, sizeof(lit) - 1)

static int answer_error(struct call *k, int status, const char *code,
			const char *msg)
{
	ASSERT(status >= 400 && status <= 599); /* a refusal */
	ASSERT(code && msg);
	srv_count_response(k->c, status);
	http_write_error(srv_answer_begin(k->c), status, &k->meta, code, msg);
	srv_answer_done(k->c);
	return 0;
}

static int answer_invalid(struct call *k, const char *msg)
{
	return answer_error(k, 400, "invalid_request", msg);
}

/* Starts reading a request's body into r: a JSON object with no field
 * outside allowed (NULL-ended). 0, or an error in r (body_done). */
static int body_open(struct call *k, struct jr *r, const char *const *allowed)
{
	int rc = jr_open(r, k->rq->body, k->rq->body_size);

	return rc ? rc : jr_only(r, allowed);
}

/* Ends the reading of a request's body: answers r's error when rc is
 * one and closes r; gives rc back. */
static int body_done(struct call *k, struct jr *r, int rc)
{
	if (rc)
		answer_invalid(k, r->err);
	jr_close(r);
	return rc;
}

/* Answers a body built in the thread's scratch buffer. */
static int answer_jw(struct call *k, int status, const struct jw *w)
{
	if (w->overflow)
		return answer_error(k, 500, "internal", "answer too large");
	return answer(k, status, w->p, w->n);
}

/* ---- small parsers ---- */

/* Percent-decodes s[0..n) into out (NUL-terminated); -EINVAL on a bad
 * escape, a NUL, or when it does not fit. '+' stays '+'. */
static int pct_decode(const char *s, size_t n, char *out, size_t out_size,
		      size_t *out_n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -EINVAL;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			ch = (char)(hi << 4 | lo);
			i += 2;
		}
		if (ch == '\0' || o + 1 >= out_size)
			return -EINVAL;
		out[o++] = ch;
	}
	ASSERT(o < out_size && o <= n); /* decoding only shrinks */
	out[o] = '\0';
	*out_n = o;
	return 0;
}

/* The path's {event_id} or {booking_id} into in (a {customer_id} is its
 * route's to read); 0, or -ENOENT when it is no id: answered 404. */
static int path_in(struct call *k, struct op_in *in)
{
	const char *p = k->op->path;

	ASSERT(p); /* a route of ops_http_match */
	if (strstr(p, "{event_id}") &&
	    fld_id_parse(k->id_seg, k->id_size, &in->event_id) != 0) {
		answer_error(k, 404, "not_found", "no such event");
		return -ENOENT;
	}
	if (strstr(p, "{booking_id}") &&
	    fld_id_parse(k->id_seg, k->id_size, &in->booking_id) != 0) {
		answer_error(k, 404, "not_found", "no such booking");
		return -ENOENT;
	}
	if (strstr(p, "{org_id}") &&
	    fld_id_parse(k->id_seg, k->id_size, &in->u.cat.org_id) != 0) {
		answer_error(k, 404, "not_found", "no such org");
		return -ENOENT;
	}
	if (k->op->core == CORE_OP_SERIES_PATCH &&
	    fld_id_parse(k->id_seg, k->id_size, &in->u.spatch.series_id) != 0) {
		answer_error(k, 404, "not_found", "no such series");
		return -ENOENT;
	}
	if (ops_cat_kind(k->op) && k->op->core == CORE_OP_CATALOG_GET &&
	    fld_id_parse(k->id_seg, k->id_size, &in->u.read.id) != 0) {
		answer_error(k, 404, "not_found",
			     ops_cat_missing(ops_cat_kind(k->op)));
		return -ENOENT;
	}
	return 0;
}

/* Query parameters: calls fn for each (decoded, empty values skipped);
 * unknown or repeated names are refused by fn / here. */
struct qparam {
	const char *name;
	char value[HTTP_QUERY_VALUE_SIZE_MAX];
	size_t n;
	bool present;
};

static int query_parse(struct call *k, struct qparam *q, size_t q_count)
{
	const char *s = k->rq->query.p;
	size_t n = k->rq->query.n, i = 0;
	char err[HTTP_ERR_SIZE_MAX];

	while (i < n) {
		size_t start = i, eq, kn;
		char key[HTTP_QUERY_KEY_SIZE_MAX];
		char val[HTTP_QUERY_VALUE_SIZE_MAX];
		size_t vn;
		size_t j;

		while (i < n && s[i] != '&')
			i++;
		if (i == start) {
			i++;
			continue;
		}
		for (eq = start; eq < i && s[eq] != '='; eq++)
			;
		if (pct_decode(s + start, eq - start, key, sizeof(key), &kn))
			return answer_invalid(k, "malformed query parameter"),
			       -EINVAL;
		if (pct_decode(s + eq + (eq < i), i - eq - (eq < i), val,
			       sizeof(val), &vn)) {
			snprintf(err, sizeof(err),
				 "query parameter '%.32s' is malformed or too long",
				 key);
			return answer_invalid(k, err), -EINVAL;
		}
		i++;
		ASSERT(i > start && i <= n + 1); /* one parameter consumed */
		for (j = 0; j < q_count; j++)
			if (strcmp(q[j].name, key) == 0)
				break;
		if (j == q_count) {
			snprintf(err, sizeof(err),
				 "unknown query parameter '%.32s'", key);
			return answer_invalid(k, err), -EINVAL;
		}
		if (q[j].present) {
			snprintf(err, sizeof(err),
				 "query parameter '%.32s' repeated", key);
			return answer_invalid(k, err), -EINVAL;
		}
		if (vn == 0)
			continue;		 /* "org_id=": as if absent */
		ASSERT(vn < sizeof(q[j].value)); /* pct_decode's bound */
		memcpy(q[j].value, val, vn + 1);
		q[j].n = vn;
		q[j].present = true;
	}
	return 0;
}

static int query_bad(struct call *k, const char *name, const char *what)
{
	char err[HTTP_ERR_SIZE_MAX];

	snprintf(err, sizeof(err), "query parameter '%s' must be %s", name,
		 what);
	answer_invalid(k, err);
	return -EINVAL;
}

static int query_id(struct call *k, const struct qparam *q, uint64_t *out)
{
	if (q->present && fld_id_parse(q->value, q->n, out))
		return query_bad(k, q->name, "an id");
	return 0;
}

static int query_limit(struct call *k, const struct qparam *q, uint32_t *out)
{
	uint64_t v = 0;

	char what[32];

	*out = CORE_LIST_LIMIT_DEFAULT;
	if (!q->present)
		return 0;
	for (size_t i = 0; i < q->n && v <= CORE_LIST_LIMIT_MAX; i++) {
		if (q->value[i] < '0' || q->value[i] > '9') {
			v = 0;
			break;
		}
		v = v * 10 + (uint64_t)(q->value[i] - '0');
	}
	if (v == 0 || v > CORE_LIST_LIMIT_MAX) {
		snprintf(what, sizeof(what), "an integer 1..%d",
			 CORE_LIST_LIMIT_MAX);
		return query_bad(k, "limit", what);
	}
	*out = (uint32_t)v;
	return 0;
}

/* ---- ETags ---- */

/* If-None-Match: up to HTTP_INM_COUNT_MAX tags, as hashes (W/ dropped). */
static void inm_parse(struct call *k)
{
	const char *s = k->rq->hdr[HTTP_H_IF_NONE_MATCH].p;
	size_t n = k->rq->hdr[HTTP_H_IF_NONE_MATCH].n, i = 0;

	if (!s)
		return;
	while (i < n) {
		size_t start;
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		if (i >= n)
			break;
		if (s[i] == '*') {
			k->ctx.flags |= X_INM_ANY;
			i++;
			continue;
		}
		if (n - i >= 2 && s[i] == 'W' && s[i + 1] == '/')
			i += 2;
		if (i >= n || s[i] != '"')
			return; /* malformed: ignore the rest */
		start = i++;
		while (i < n && s[i] != '"')
			i++;
		if (i >= n)
			return;
		i++;
		ASSERT(i <= n && i > start);
		if (k->ctx.inm_count < HTTP_INM_COUNT_MAX)
			k->ctx.inm[k->ctx.inm_count++] =
				http_tag_hash(s + start, i - start);
	}
}

/* ---- auth, limits, keys ---- */

static bool origin_star(const struct auth_config *cfg)
{
	for (unsigned i = 0; i < cfg->origin_count && i < AUTH_ORIGIN_COUNT_MAX;
	     i++)
		if (strcmp(cfg->allowed_origins[i], "*") == 0)
			return true;
	return false;
}

/* An Origin we may echo into a header: visible ASCII only. */
static bool origin_printable(const struct http_str *o)
{
	for (size_t i = 0; i < o->n; i++)
		if ((unsigned char)o->p[i] <= 0x20 ||
		    (unsigned char)o->p[i] >= 0x7f)
			return false;
	return true;
}

static int limited(struct call *k, enum auth_limit_kind kind, uint64_t key)
{
	uint32_t retry = 1;

	if (!k->limiter ||
	    auth_limit_take(k->limiter, kind, key, k->now, &retry))
		return 0;
	k->meta.retry_after_s = retry ? retry : 1;
	answer_error(k, 429, "rate_limited", "too many requests");
	return -EAGAIN;
}

/* The client's address as a limiter key: the peer's, or from
 * X-Forwarded-For when the peer is a trusted proxy (auth_client_address). */
static uint64_t client_key(struct call *k)
{
	const struct http_str *xff = &k->rq->hdr[HTTP_H_X_FORWARDED_FOR];
	char a[AUTH_ADDRESS_SIZE];
	size_t n;

	if (k->cfg->proxy_count == 0 || !xff->p)
		return srv_conn_peer_key(k->c);
	n = auth_client_address(k->cfg, srv_conn_peer(k->c), xff->p, xff->n, a);
	return auth_limit_key(a, n);
}

/* Authenticates, then limits, then authorises; 0: k->who is allowed,
 * else answered. The bearer token is read first, so that the service key
 * is held only to its own limit (AUTH_LIMIT_SERVICE), never to an
 * address's (a backend sends from one address); everyone else (anon,
 * customers, no or a bad token) takes from the client address's bucket
 * before any 401 or 403, then anon and customers from their key's or
 * sub's. Operations of OP_ACCESS_NONE take from the address's bucket
 * only. */
static int authorize(struct call *k)
{
	const struct http_str *h = &k->rq->hdr[HTTP_H_AUTHORIZATION];
	enum auth_result ar = AUTH_MISSING;
	size_t i = 0;

	enum op_access a = k->op->access;

	memset(&k->who, 0, sizeof(k->who));
	if (a == OP_ACCESS_NONE) /* no credentials read */
		return k->op->limit == OP_LIMIT_NONE
			       ? 0
			       : limited(k, AUTH_LIMIT_ADDRESS, client_key(k));
	if (h->p && h->n >= 7 && strncasecmp(h->p, "Bearer ", 7) == 0) {
		for (i = 7; i < h->n && (h->p[i] == ' ' || h->p[i] == '\t');
		     i++)
			;
		k->token.p = h->p + i;
		k->token.n = h->n - i;
		while (k->token.n && (k->token.p[k->token.n - 1] == ' ' ||
				      k->token.p[k->token.n - 1] == '\t'))
			k->token.n--;
		ar = AUTH_BAD_TOKEN;
	}
	if (ar != AUTH_MISSING &&
	    auth_is_service_key(k->cfg, k->token.p, k->token.n)) {
		if (limited(k, AUTH_LIMIT_SERVICE, 0))
			return -EAGAIN;
	} else if (limited(k, AUTH_LIMIT_ADDRESS, client_key(k))) {
		return -EAGAIN; /* before any JWT signature is computed */
	}
	if (ar != AUTH_MISSING)
		ar = k->token.n == 0 || k->token.n > AUTH_TOKEN_SIZE_MAX
			     ? AUTH_BAD_TOKEN
			     : auth_bearer(k->cfg, k->token.p, k->token.n,
					   k->now, &k->who);
	if (ar == AUTH_MISSING) {
		k->meta.www_authenticate = true;
		answer_error(k, 401, "unauthorized",
			     h->p ? "Authorization must be 'Bearer <token>'"
				  : "missing Authorization: Bearer <token>");
		return -EACCES;
	}
	if (ar != AUTH_OK) {
		k->meta.www_authenticate = true;
		if (ar == AUTH_EXPIRED)
			answer_error(k, 401, "token_expired", "token expired");
		else
			answer_error(k, 401, "unauthorized",
				     "unknown or invalid token");
		return -EACCES;
	}
	if (!ops_allows(k->op, k->who.role) || k->who.role == AUTH_NONE) {
		answer_error(k, 403, "forbidden",
			     a == OP_ACCESS_SERVICE
				     ? "needs the service key"
				     : "needs a customer token or the "
				       "service key");
		return -EACCES;
	}
	if (k->who.role == AUTH_CUSTOMER)
		return limited(k, AUTH_LIMIT_CUSTOMER,
			       auth_limit_key(k->who.customer_id,
					      strnlen(k->who.customer_id,
						      sizeof(k->who.customer_id))));
	if (k->who.role == AUTH_ANON)
		return limited(k, AUTH_LIMIT_KEY,
			       auth_limit_key(k->token.p, k->token.n));
	ASSERT(k->who.role == AUTH_SERVICE);
	return 0; /* the service key: limited above */
}

/* Idempotency-Key: checked and kept in k->key (applied by submit_in,
 * with the fingerprint of the decoded input); required or not as the
 * operation's table entry says (ops.c); 0 or answered. */
static int idem_check(struct call *k)
{
	bool required = k->op->idem == OP_IDEM_REQUIRED;
	const struct http_str *h = &k->rq->hdr[HTTP_H_IDEMPOTENCY_KEY];

	ASSERT(k->op->idem == OP_IDEM_OPTIONAL || required);
	if (!h->p || h->n == 0) {
		if (!required)
			return 0;
		answer_error(k, 400, "idempotency_key_required",
			     "the Idempotency-Key header is required");
		return -EINVAL;
	}
	if (!fld_idem_key_valid(h->p, h->n)) { /* as the binary "key" */
		answer_invalid(k,
			       h->n > FLD_IDEM_KEY_SIZE_MAX
				       ? "Idempotency-Key is longer than 255 "
					 "bytes"
				       : "Idempotency-Key must be printable "
					 "ASCII");
		return -EINVAL;
	}
	k->key = *h;
	ASSERT(k->key.n > 0 && k->key.n <= FLD_IDEM_KEY_SIZE_MAX);
	return 0;
}

static int submit(struct call *k, const struct core_req *req)
{
	int rc;

	ASSERT(k->ctx.op == k->op->id); /* render reads the op from ctx */
	ASSERT(req->op == k->op->core);
	if (k->meta.head)
		k->ctx.flags |= X_HEAD;
	if (k->meta.close)
		k->ctx.flags |= X_CLOSE;
	if (k->meta.keep_alive_10)
		k->ctx.flags |= X_KEEP_ALIVE_10;
	rc = srv_submit(k->c, req, &k->ctx, sizeof(k->ctx));
	if (rc == -EAGAIN && (k->ctx.flags & X_HEAP))
		free(k->cat);
	else if (rc == -EAGAIN && (k->ctx.flags & X_SLOT))
		k->cat->busy = false;
	return rc == -EAGAIN ? -EAGAIN : 0;
}

/* Submits the operation's decoded input: its core request (ops.c's
 * ops_request), with the key idem_check kept and the input's fingerprint
 * (ops_idem: the same as the binary protocol's for the same input). */
static int submit_in(struct call *k, const struct op_in *in)
{
	struct core_req req = { .now = k->now };

	ops_request(k->op, in, &k->who, &req);
	if (k->key.n)
		ops_idem(k->op, in, &k->who, k->key.p, k->key.n, &req.idem);
	if (k->op->id == OP_SERIES_CREATE) {
		ASSERT(k->cat && k->cat->busy); /* slot_take's */
		req.u.series = &k->cat->series;
	}
	ASSERT(k->key.n || !core_idem_present(&req.idem));
	return submit(k, &req);
}

/* A catalogue slot for this request (k->cat): the connection's, or an
 * allocated one while that is busy; 0, or answered (503). */
static int slot_take(struct call *k)
{
	struct http_cat_slot *s = k->slot;

	if (s->busy) {
		s = malloc(sizeof(*s));
		if (!s) {
			answer_error(k, 503, "overloaded", "out of memory");
			return -ENOMEM;
		}
		k->ctx.flags |= X_HEAP;
		k->ctx.heap = s;
	}
	memset(s, 0, sizeof(*s));
	s->busy = true;
	k->cat = s;
	ASSERT(k->cat == k->slot || (k->ctx.flags & X_HEAP));
	k->ctx.flags |= X_SLOT;
	return 0;
}

/* A body that must be empty or {} (cancel). */
static int body_empty(struct call *k)
{
	static const char *const none[] = { NULL };
	struct jr r;
	int rc;

	if (k->rq->body_size == 0)
		return 0;
	rc = body_open(k, &r, none);
	return body_done(k, &r, rc);
}

/* ---- routes ---- */

/* An events list with its query parameters' names (the seed's routes:
 * camelCase). */
static int events_named(struct call *k, struct op_in *in,
			const char *const names[7])
{
	struct qparam q[] = { { .name = names[0] }, { .name = names[1] },
			      { .name = names[2] }, { .name = names[3] },
			      { .name = names[4] }, { .name = names[5] },
			      { .name = names[6] } };
	struct op_list_in *l = &in->u.list;

	if (query_parse(k, q, sizeof(q) / sizeof(q[0])) ||
	    query_id(k, &q[0], &l->org_id) ||
	    query_id(k, &q[3], &l->location_id) ||
	    query_id(k, &q[4], &l->instructor_id) ||
	    query_limit(k, &q[5], &l->limit))
		return 0;
	l->from = k->now;
	l->to = INT64_MAX;
	if (q[1].present && fld_time_parse(q[1].value, q[1].n, &l->from))
		return query_bad(k, "from", "an RFC 3339 time or a date"), 0;
	if (q[2].present && fld_time_parse(q[2].value, q[2].n, &l->to))
		return query_bad(k, "to", "an RFC 3339 time or a date"), 0;
	if (!q[1].present && l->to <= l->from)
		l->from = 0; /* only 'to', in the past: all before it */
	if (l->to <= l->from)
		return answer_invalid(k, "'to' must be after 'from'");
	if (q[6].present && http_cursor_decode(q[6].value, q[6].n,
					       &l->after_start, &l->after_id))
		return query_bad(k, "cursor", "a next_cursor of this list"), 0;
	ASSERT(l->limit >= 1 && l->limit <= CORE_LIST_LIMIT_MAX);
	k->ctx.limit = l->limit;
	inm_parse(k);
	return submit_in(k, in);
}

static int do_events(struct call *k, struct op_in *in)
{
	static const char *const names[7] = {
		"org_id",	 "from",  "to",	   "location_id",
		"instructor_id", "limit", "cursor"
	};

	return events_named(k, in, names);
}

/* GET /v1/orgs, /v1/locations, /v1/instructors, /v1/series: ?org_id=
 * (not for orgs), limit, cursor; in id order. */
static int do_cat_list(struct call *k, struct op_in *in)
{
	struct qparam q[] = { { .name = "limit" },
			      { .name = "cursor" },
			      { .name = "org_id" } };
	struct op_read_in *r = &in->u.read;
	size_t q_count = k->op->id == OP_ORG_LIST ? 2 : 3;
	core_time kind;

	if (query_parse(k, q, q_count) || query_limit(k, &q[0], &r->limit) ||
	    (q_count == 3 && query_id(k, &q[2], &r->org_id)))
		return 0;
	/* The cursor is the events' (http_cursor_encode) with the kind in
	 * place of the start: one list's cursor is not another's. */
	if (q[1].present &&
	    (http_cursor_decode(q[1].value, q[1].n, &kind, &r->after_id) ||
	     kind != (core_time)ops_cat_kind(k->op)))
		return query_bad(k, "cursor", "a next_cursor of this list"), 0;
	k->ctx.limit = r->limit;
	inm_parse(k);
	return submit_in(k, in);
}

static int do_cat_get(struct call *k, struct op_in *in)
{
	inm_parse(k);
	return submit_in(k, in);
}

static int do_event_get(struct call *k, struct op_in *in)
{
	inm_parse(k);
	return submit_in(k, in);
}

static int do_event_patch(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "capacity",	"status",
					       "instructor_id", "location_id",
					       "start_at",	"duration_min",
					       "title",		NULL };
	struct op_patch_in *p = &in->u.patch;
	struct jr r;
	uint64_t cap = 0, dur = 0;
	bool has_cap = false, has_ins = false, has_loc = false, has_dur = false;
	char status[16] = "", start[64] = "";
	size_t status_n = 0, start_n = 0, title_n = 0;
	int rc;

	rc = body_open(k, &r, allowed);
	if (!rc)
		rc = jr_uint(&r, "capacity", false, CORE_CAPACITY_MAX, &cap,
			     &has_cap);
	if (!rc)
		rc = jr_id(&r, "instructor_id", false, &p->instructor_id,
			   &has_ins);
	if (!rc)
		rc = jr_id(&r, "location_id", false, &p->location_id, &has_loc);
	if (!rc)
		rc = jr_uint(&r, "duration_min", false, CORE_DURATION_MIN_MAX,
			     &dur, &has_dur);
	if (!rc && has_dur && dur == 0)
		rc = jr_fail(&r, "field 'duration_min' must be 1..%d",
			     CORE_DURATION_MIN_MAX);
	if (!rc)
		rc = jr_str(&r, "title", false, p->title, sizeof(p->title),
			    &title_n);
	if (!rc && title_n == 0 && json_object_get(r.root, "title"))
		rc = jr_fail(&r, "field 'title' must not be empty");
	if (!rc)
		rc = jr_str(&r, "start_at", false, start, sizeof(start),
			    &start_n);
	if (!rc && start_n && fld_time_parse(start, start_n, &p->start_at))
		rc = jr_fail(&r, "field 'start_at' must be an RFC 3339 time");
	if (!rc && start_n && p->start_at <= k->now)
		rc = jr_fail(&r, "field 'start_at' must be in the future");
	if (!rc)
		rc = jr_str(&r, "status", false, status, sizeof(status),
			    &status_n);
	if (!rc && status_n && strcmp(status, "cancelled") != 0 &&
	    strcmp(status, "scheduled") != 0)
		rc = jr_fail(&r, "field 'status' can only be \"cancelled\" or "
				 "\"scheduled\" (a restore)");
	if (!rc && !has_cap && !has_ins && !status_n && !has_loc && !has_dur &&
	    !title_n && !start_n)
		rc = jr_fail(&r, "nothing to change: capacity, status, "
				 "instructor_id, location_id, start_at, "
				 "duration_min or title");
	if (body_done(k, &r, rc))
		return 0;
	p->capacity = has_cap ? (int64_t)cap : -1;
	p->cancel = status_n && strcmp(status, "cancelled") == 0;
	p->restore = status_n && strcmp(status, "scheduled") == 0;
	p->duration_min = (uint32_t)dur;
	if (idem_check(k))
		return 0;
	return submit_in(k, in);
}

static int do_book(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "customer_id", "payment", NULL };
	char pay[16] = "";
	size_t cust_n = 0, pay_n = 0;
	struct jr r;
	int rc;

	if (idem_check(k))
		return 0;
	rc = body_open(k, &r, allowed);
	if (!rc)
		rc = jr_str(&r, "customer_id", k->who.role == AUTH_SERVICE,
			    in->customer_id, sizeof(in->customer_id), &cust_n);
	if (!rc && cust_n && !fld_customer_id_valid(in->customer_id, cust_n))
		rc = jr_fail(&r, "field 'customer_id' must be 1-64 of "
				 "A-Za-z0-9._:@-");
	if (!rc)
		rc = jr_str(&r, "payment", false, pay, sizeof(pay), &pay_n);
	if (!rc && pay_n && strcmp(pay, "none") && strcmp(pay, "stripe"))
		rc = jr_fail(&r, "field 'payment' must be \"none\" or "
				 "\"stripe\"");
	if (body_done(k, &r, rc))
		return 0;
	if (auth_acts_for(&k->who, in->customer_id, cust_n, in->customer_id))
		return answer_error(k, 403, "forbidden",
				    "a customer books only for itself");
	/* A customer's "none" is "I am not paying": ops_request's rule. */
	in->u.payment = !pay_n			   ? CORE_PAY_AUTO
			: strcmp(pay, "none") == 0 ? CORE_PAY_NONE
						   : CORE_PAY_STRIPE;
	return submit_in(k, in);
}

static int do_cancel(struct call *k, struct op_in *in)
{
	if (idem_check(k) || body_empty(k))
		return 0;
	return submit_in(k, in);
}

static int do_booking_get(struct call *k, struct op_in *in)
{
	if (k->who.role == AUTH_CUSTOMER) {
		k->ctx.flags |= X_OWN;
		memcpy(k->ctx.customer, k->who.customer_id,
		       sizeof(k->ctx.customer));
	}
	return submit_in(k, in);
}

static int do_customer_bookings(struct call *k, struct op_in *in)
{
	struct qparam q[] = { { .name = "limit" } };

	if (!fld_customer_id_valid(k->id_seg, k->id_size))
		return answer_error(k, 404, "not_found", "no such customer");
	if (auth_acts_for(&k->who, k->id_seg, k->id_size, in->customer_id))
		return answer_error(k, 403, "forbidden",
				    "a customer reads only its own bookings");
	if (query_parse(k, q, 1) || query_limit(k, &q[0], &in->u.limit))
		return 0;
	k->ctx.limit = in->u.limit;
	return submit_in(k, in);
}

/* An org's settings (org.create, org.patch), each optional: into cat,
 * with the bits of those given. */
static int jr_org_settings(struct jr *r, struct op_cat_in *cat)
{
	static const struct {
		const char *name;
		uint64_t max;
		uint8_t bit;
	} f[] = {
		{ "cancel_cutoff_hours", CORE_CUTOFF_HOURS_MAX,
		  CORE_ORG_SET_CUTOFF },
		{ "hold_minutes", CORE_HOLD_MINUTES_MAX, CORE_ORG_SET_HOLD },
		{ "horizon_days", UINT16_MAX, CORE_ORG_SET_HORIZON },
	};
	uint16_t *at[] = { &cat->settings.cancel_cutoff_hours,
			   &cat->settings.hold_minutes,
			   &cat->settings.horizon_days };
	int rc = 0;

	for (unsigned i = 0; i < 3 && !rc; i++) {
		uint64_t v = 0;
		bool has = false;

		rc = jr_uint(r, f[i].name, false, f[i].max, &v, &has);
		if (!rc && has) {
			*at[i] = (uint16_t)v;
			cat->settings_set |= f[i].bit;
		}
	}
	return rc;
}

static int do_org_patch(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "cancel_cutoff_hours",
					       "hold_minutes", "horizon_days",
					       NULL };
	struct jr r;
	int rc;

	rc = body_open(k, &r, allowed);
	if (!rc)
		rc = jr_org_settings(&r, &in->u.cat);
	if (!rc && !in->u.cat.settings_set)
		rc = jr_fail(&r, "nothing to change: cancel_cutoff_hours, "
				 "hold_minutes or horizon_days");
	if (body_done(k, &r, rc))
		return 0;
	if (idem_check(k))
		return 0;
	return submit_in(k, in);
}

/* Orgs, locations, instructors, customers. */
static int do_catalogue(struct call *k, struct op_in *in)
{
	static const char *const org[] = {
		"name",		"timezone",	"cancel_cutoff_hours",
		"hold_minutes", "horizon_days", NULL
	};
	static const char *const named[] = { "org_id", "name", NULL };
	static const char *const cust[] = { "id", "email", "name", NULL };
	struct op_cat_in *cat = &in->u.cat;
	struct http_cat_slot *s;
	size_t n = 0;
	struct jr r;
	int rc;

	rc = jr_open(&r, k->rq->body, k->rq->body_size);
	if (rc)
		goto out_invalid;
	switch (k->op->id) {
	case OP_ORG_CREATE:
		rc = jr_only(&r, org);
		if (!rc)
			rc = jr_str(&r, "name", true, cat->name,
				    sizeof(cat->name), &n);
		if (!rc && n == 0)
			rc = jr_fail(&r, "field 'name' must not be empty");
		strcpy(cat->timezone, "UTC"); /* HTTP's default (openapi) */
		if (!rc)
			rc = jr_str(&r, "timezone", false, cat->timezone,
				    sizeof(cat->timezone), NULL);
		if (!rc && !fld_timezone_valid(cat->timezone))
			rc = jr_fail(&r, "field 'timezone' must be an IANA "
					 "time zone");
		if (!rc)
			rc = jr_org_settings(&r, cat);
		break;
	case OP_LOCATION_CREATE:
	case OP_INSTRUCTOR_CREATE:
		rc = jr_only(&r, named);
		if (!rc)
			rc = jr_id(&r, "org_id", true, &cat->org_id, NULL);
		if (!rc)
			rc = jr_str(&r, "name", true, cat->name,
				    sizeof(cat->name), &n);
		if (!rc && n == 0)
			rc = jr_fail(&r, "field 'name' must not be empty");
		break;
	default:
		ASSERT(k->op->id == OP_CUSTOMER_CREATE);
		rc = jr_only(&r, cust);
		if (!rc)
			rc = jr_str(&r, "id", true, in->customer_id,
				    sizeof(in->customer_id), &n);
		if (!rc && !fld_customer_id_valid(in->customer_id, n))
			rc = jr_fail(&r, "field 'id' must be 1-64 of "
					 "A-Za-z0-9._:@-");
		if (!rc)
			rc = jr_str(&r, "email", false, cat->email,
				    sizeof(cat->email), NULL);
		if (!rc)
			rc = jr_str(&r, "name", false, cat->name,
				    sizeof(cat->name), NULL);
		break;
	}
	if (rc)
		goto out_invalid;
	jr_close(&r);
	if (idem_check(k) || slot_take(k))
		return 0;
	s = k->cat;
	memcpy(s->name, cat->name, sizeof(s->name));
	memcpy(s->timezone, cat->timezone, sizeof(s->timezone));
	memcpy(s->email, cat->email, sizeof(s->email));
	memcpy(s->customer_id, in->customer_id, sizeof(s->customer_id));
	s->org_id = cat->org_id;
	return submit_in(k, in);

out_invalid:
	answer_invalid(k, r.err);
	jr_close(&r);
	return 0;
}

static int do_series(struct call *k, struct op_in *in)
{
	struct jr r;
	int rc;

	rc = jr_open(&r, k->rq->body, k->rq->body_size);
	if (!rc)
		rc = jr_series(&r, &in->u.series);
	if (body_done(k, &r, rc))
		return 0;
	if (idem_check(k) || slot_take(k))
		return 0;
	k->cat->series = in->u.series;
	return submit_in(k, in);
}

/* PATCH /v1/series/{id} (every field optional, at least one) and POST
 * /v1/series/{id}/end (last_date): docs/core.md "Series edits". */
static int series_patch_body(struct call *k, struct op_in *in, bool end)
{
	static const char *const allowed[] = {
		"title",	"capacity", "waitlist_capacity",
		"price_cents",	"currency", "start_time",
		"duration_min", "weekdays", "last_date",
		"from",		NULL
	};
	static const char *const allowed_end[] = { "last_date", NULL };
	struct core_series_patch *x = &in->u.spatch;
	uint64_t v = 0;
	bool has = false, any = false;
	char buf[16];
	size_t n = 0, title_n = 0;
	json_t *a;
	int rc;

	x->capacity = x->waitlist_capacity = x->price_cents = -1;
	x->start_minute = -1;
	{
		struct jr r;
		rc = body_open(k, &r, end ? allowed_end : allowed);
		if (!rc && end)
			rc = jr_date(&r, "last_date", true, &x->last_date,
				     &any);
		if (!rc && !end) {
			if (!rc)
				rc = jr_str(&r, "title", false, x->title,
					    sizeof(x->title), &title_n);
			any |= title_n > 0;
			if (!rc && json_object_get(r.root, "title") && !title_n)
				rc = jr_fail(&r, "field 'title' must not be "
						 "empty");
			if (!rc &&
			    !(rc = jr_uint(&r, "capacity", false,
					   CORE_CAPACITY_MAX, &v, &has)) &&
			    has)
				x->capacity = (int64_t)v, any = true;
			if (!rc &&
			    !(rc = jr_uint(&r, "waitlist_capacity", false,
					   CORE_CAPACITY_MAX, &v, &has)) &&
			    has)
				x->waitlist_capacity = (int64_t)v, any = true;
			if (!rc &&
			    !(rc = jr_uint(&r, "price_cents", false,
					   CORE_PRICE_CENTS_MAX, &v, &has)) &&
			    has)
				x->price_cents = (int64_t)v, any = true;
			n = 0;
			if (!rc)
				rc = jr_str(&r, "currency", false, buf,
					    sizeof(buf), &n);
			if (!rc && n && fld_currency_parse(buf, n, x->currency))
				rc = jr_fail(&r, "field 'currency' must be "
						 "three letters");
			any |= n > 0;
			n = 0;
			if (!rc)
				rc = jr_str(&r, "start_time", false, buf,
					    sizeof(buf), &n);
			if (!rc && n) {
				uint16_t m;
				if (fld_hhmm_parse(buf, n, &m))
					rc = jr_fail(&r, "field 'start_time' "
							 "must be HH:MM");
				x->start_minute = m;
				any = true;
			}
			if (!rc &&
			    !(rc = jr_uint(&r, "duration_min", false,
					   CORE_DURATION_MIN_MAX, &v, &has)) &&
			    has) {
				if (v == 0)
					rc = jr_fail(&r, "field 'duration_min' "
							 "must be 1..1440");
				x->duration_min = (uint32_t)v;
				any = true;
			}
			a = json_object_get(r.root, "weekdays");
			if (!rc && a) {
				size_t i;
				json_t *e;
				if (!json_is_array(a) ||
				    json_array_size(a) == 0 ||
				    json_array_size(a) > 7)
					rc = jr_fail(&r,
						     "field 'weekdays' must "
						     "be an array of 1-7 "
						     "of \"MO\"..\"SU\"");
				json_array_foreach(a, i, e)
				{
					uint8_t bit;
					if (rc)
						break;
					if (!json_is_string(e) ||
					    fld_weekday_parse(json_string_value(
								      e),
							      json_string_length(
								      e),
							      &bit))
						rc = jr_fail(&r,
							     "field 'weekdays': "
							     "\"MO\"..\"SU\"");
					else
						x->weekday_mask |= bit;
				}
				any = true;
			}
			if (!rc &&
			    !(rc = jr_date(&r, "last_date", false,
					   &x->last_date, &has)) &&
			    has)
				any = true;
			if (!rc)
				rc = jr_date(&r, "from", false, &x->from, NULL);
			if (!rc && !any)
				rc = jr_fail(&r, "nothing to change");
		}
		if (body_done(k, &r, rc))
			return 0;
	}
	if (idem_check(k))
		return 0;
	return submit_in(k, in);
}

static int do_series_patch(struct call *k, struct op_in *in)
{
	return series_patch_body(k, in, false);
}

static int do_series_end(struct call *k, struct op_in *in)
{
	return series_patch_body(k, in, true);
}

static int do_generate(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "until", "series_id", NULL };
	struct jr r;
	int rc = 0;

	if (k->rq->body_size) {
		rc = body_open(k, &r, allowed);
		if (!rc)
			rc = jr_date(&r, "until", false, &in->u.generate.until,
				     NULL);
		if (!rc)
			rc = jr_id(&r, "series_id", false,
				   &in->u.generate.series_id, NULL);
		if (body_done(k, &r, rc))
			return 0;
	}
	if (idem_check(k))
		return 0;
	return submit_in(k, in);
}

/* {"days": N}: events that ended N days ago or earlier leave memory
 * (core.h CORE_OP_ARCHIVE); bookd also does it daily (--archive-after-days). */
static int do_archive(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "days", NULL };
	struct jr r;
	uint64_t days = 0;
	int rc;

	rc = body_open(k, &r, allowed);
	if (!rc)
		rc = jr_uint(&r, "days", true, 36600, &days, NULL);
	if (!rc && days == 0)
		rc = jr_fail(&r, "field 'days' must be within 1..36600");
	if (body_done(k, &r, rc))
		return 0;
	in->u.days = (uint32_t)days;
	if (idem_check(k))
		return 0;
	return submit_in(k, in);
}

/* A Stripe id into a core field of CORE_PAY_REF_SIZE_MAX bytes: as it is
 * when it fits and is printable ASCII without spaces, else "" (the record
 * keeps the hash; the intent is unknown). */
static void stripe_id_copy(char *out, const char *id, size_t n)
{
	out[0] = '\0';
	if (n >= CORE_PAY_REF_SIZE_MAX)
		return;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return;
	memcpy(out, id, n);
	out[n] = '\0';
}

static int do_stripe(struct call *k, struct op_in *in)
{
	const struct http_str *sig = &k->rq->hdr[HTTP_H_STRIPE_SIGNATURE];
	struct core_req req = { .op = k->op->core, .now = k->now };
	struct auth_principal stripe = { .role = AUTH_NONE };
	json_t *root, *id, *type, *obj, *meta, *bid, *amount, *cur, *pi;
	json_error_t e;
	const char *t;
	int rc;

	(void)in; /* the webhook's fields are Stripe's event (below) */
	if (!sig->p)
		return answer_error(k, 400, "invalid_signature",
				    "missing Stripe-Signature");
	rc = auth_stripe_verify(k->cfg, sig->p, sig->n, k->rq->body,
				k->rq->body_size, k->now);
	if (rc)
		return answer_error(k, 400, "invalid_signature",
				    rc == -ETIME ? "signature too old or new"
						 : "bad signature");
	root = json_loadb((const char *)k->rq->body, k->rq->body_size,
			  JSON_REJECT_DUPLICATES, &e);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return answer_invalid(k, "malformed event");
	}
	id = json_object_get(root, "id");
	type = json_object_get(root, "type");
	obj = json_object_get(json_object_get(root, "data"), "object");
	if (!json_is_string(id) || json_string_length(id) == 0 ||
	    json_string_length(id) > 255 || !json_is_string(type)) {
		json_decref(root);
		return answer_invalid(k, "an event needs an id and a type");
	}
	t = json_string_value(type);
	if (strcmp(t, "payment_intent.succeeded") != 0 &&
	    strcmp(t, "payment_intent.payment_failed") != 0) {
		json_decref(root);
		return ANSWER_LIT(k, 200,
				  "{\"received\":true,\"ignored\":true}");
	}
	req.u.pay.succeeded = strcmp(t, "payment_intent.succeeded") == 0;
	meta = json_object_get(obj, "metadata");
	bid = json_object_get(meta, "booking_id");
	if (!json_is_object(obj) || !bid) {
		json_decref(root);
		return ANSWER_LIT(k, 200,
				  "{\"received\":true,\"ignored\":true}");
	}
	if (!json_is_string(bid) ||
	    fld_id_parse(json_string_value(bid), json_string_length(bid),
			 &req.booking_id)) {
		json_decref(root);
		return ANSWER_LIT(k, 200,
				  "{\"received\":true,\"outcome\":"
				  "\"booking_not_found\"}");
	}
	amount = json_object_get(obj, "amount_received");
	if (!json_is_integer(amount) || json_integer_value(amount) <= 0)
		amount = json_object_get(obj, "amount");
	cur = json_object_get(obj, "currency");
	if (!json_is_integer(amount) || json_integer_value(amount) < 0 ||
	    !json_is_string(cur) ||
	    fld_currency_parse(json_string_value(cur), json_string_length(cur),
			       req.u.pay.currency)) {
		json_decref(root);
		return answer_invalid(k, "a payment intent needs amount and "
					 "currency");
	}
	req.u.pay.amount_cents = (uint64_t)json_integer_value(amount);
	/* Stripe's own ids for the record (payments rows, refunds): kept
	 * when they fit (CORE_PAY_REF_SIZE_MAX) and are plain ASCII */
	stripe_id_copy(req.u.pay.ref, json_string_value(id),
		       json_string_length(id));
	pi = json_object_get(obj, "id");
	if (json_is_string(pi))
		stripe_id_copy(req.u.pay.intent_id, json_string_value(pi),
			       json_string_length(pi));
	req.u.pay.payment_ref =
		XXH3_64bits(json_string_value(id), json_string_length(id));
	if (req.u.pay.payment_ref == 0)
		req.u.pay.payment_ref = 1;
	strcpy(stripe.customer_id, "stripe");
	auth_idem_key(&stripe, json_string_value(id), json_string_length(id),
		      &req.idem);
	/* the canonical path: the seed's alias (/functions/v1/webhooks-stripe)
	 * delivering the same event is a replay, not another request */
	req.idem.fingerprint =
		auth_fingerprint("POST", 4, ops_get(OP_STRIPE_WEBHOOK)->path,
				 strlen(ops_get(OP_STRIPE_WEBHOOK)->path),
				 k->rq->body, k->rq->body_size);
	json_decref(root);
	return submit(k, &req);
}

/* ---- the seed's routes (docs/http.md "Seed-compatible routes") ----
 * The seed's edge functions' paths and camelCase bodies, decoded into the
 * same struct op_in as the /v1 routes and submitted as the same
 * operations (ops.c: ops_base), so a booking made here is the booking
 * /v1/bookings/{id} shows, and a key used on both is a replay. Who may
 * call: the service key and a customer JWT as on /v1; the anon key too,
 * as the seed's frontends call with it, but then for the customer the
 * body names (customerId, required), held to that customer's rate limit
 * as well as the anon key's and the address's, with a customer's rights
 * (its "none" payment is auto; a cancel only of that customer's
 * booking). */

/* The anon key acting for the body's customer: a customer's principal
 * and limit; 0, or answered. */
static int compat_acts_for(struct call *k, const char *cust, size_t n)
{
	if (k->who.role != AUTH_ANON)
		return 0;
	if (n == 0) {
		answer_invalid(k, "field 'customerId' is required with the "
				  "anon key");
		return -EINVAL;
	}
	ASSERT(n <= CORE_CUSTOMER_ID_SIZE_MAX);
	memset(&k->who, 0, sizeof(k->who));
	k->who.role = AUTH_CUSTOMER;
	memcpy(k->who.customer_id, cust, n);
	return limited(k, AUTH_LIMIT_CUSTOMER, auth_limit_key(cust, n));
}

static int do_compat_book(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "eventId", "customerId",
					       "paymentMethod", NULL };
	char pay[16] = "";
	size_t cust_n = 0, pay_n = 0;
	struct jr r;
	int rc;

	if (idem_check(k))
		return 0;
	rc = body_open(k, &r, allowed);
	if (!rc)
		rc = jr_ref(&r, "eventId", true, &in->event_id, NULL);
	if (!rc)
		rc = jr_str(&r, "customerId", k->who.role != AUTH_CUSTOMER,
			    in->customer_id, sizeof(in->customer_id), &cust_n);
	if (!rc && cust_n && !fld_customer_id_valid(in->customer_id, cust_n))
		rc = jr_fail(&r, "field 'customerId' must be 1-64 of "
				 "A-Za-z0-9._:@-");
	if (!rc)
		rc = jr_str(&r, "paymentMethod", false, pay, sizeof(pay),
			    &pay_n);
	if (!rc && pay_n && strcmp(pay, "none") && strcmp(pay, "stripe"))
		rc = jr_fail(&r, "field 'paymentMethod' must be \"stripe\" or "
				 "\"none\"");
	if (body_done(k, &r, rc))
		return 0;
	if (in->event_id == 0)
		return answer_error(k, 404, "not_found", "no such event");
	if (compat_acts_for(k, in->customer_id, cust_n))
		return 0;
	if (auth_acts_for(&k->who, in->customer_id, cust_n, in->customer_id))
		return answer_error(k, 403, "forbidden",
				    "a customer books only for itself");
	in->u.payment = !pay_n			   ? CORE_PAY_AUTO
			: strcmp(pay, "none") == 0 ? CORE_PAY_NONE
						   : CORE_PAY_STRIPE;
	return submit_in(k, in);
}

/* {"bookingId"} or {"registrationId"} (the seed's name), and with the
 * anon key the booking's customerId. */
static int do_compat_cancel(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "bookingId", "registrationId",
					       "customerId", NULL };
	char cust[CORE_CUSTOMER_ID_SIZE_MAX + 1] = "";
	bool has_b = false, has_r = false;
	uint64_t reg = 0;
	size_t cust_n = 0;
	struct jr r;
	int rc;

	if (idem_check(k))
		return 0;
	rc = body_open(k, &r, allowed);
	if (!rc)
		rc = jr_ref(&r, "bookingId", false, &in->booking_id, &has_b);
	if (!rc)
		rc = jr_ref(&r, "registrationId", false, &reg, &has_r);
	if (!rc && has_b == has_r)
		rc = jr_fail(&r, "one of 'bookingId' or 'registrationId' is "
				 "required");
	if (!rc)
		rc = jr_str(&r, "customerId", false, cust, sizeof(cust),
			    &cust_n);
	if (!rc && cust_n && !fld_customer_id_valid(cust, cust_n))
		rc = jr_fail(&r, "field 'customerId' must be 1-64 of "
				 "A-Za-z0-9._:@-");
	if (body_done(k, &r, rc))
		return 0;
	if (has_r)
		in->booking_id = reg;
	if (in->booking_id == 0)
		return answer_error(k, 404, "not_found", "no such booking");
	if (compat_acts_for(k, cust, cust_n))
		return 0;
	if (k->who.role == AUTH_CUSTOMER && cust_n &&
	    strcmp(cust, k->who.customer_id) != 0)
		return answer_error(k, 403, "forbidden",
				    "a customer cancels only its own");
	return submit_in(k, in);
}

static int do_compat_events(struct call *k, struct op_in *in)
{
	static const char *const names[7] = { "orgId",	      "from",
					      "to",	      "locationId",
					      "instructorId", "limit",
					      "cursor" };

	return events_named(k, in, names);
}

/* ---- status, metrics, health ---- */

static int do_admin_refresh(struct call *k, struct op_in *in)
{
	int rc = srv_refresh_views(srv_conn_srv(k->c));

	(void)in; /* no fields */
	if (rc == -ENOTSUP)
		return answer_error(k, 409, "replication_disabled",
				    "no PostgreSQL configured (DATABASE_URL)");
	if (rc)
		return answer_error(k, 503, "unavailable",
				    "the refresh could not be asked for");
	return answer(k, 202, "{\"refresh\":\"requested\"}", 23);
}

/* POST /v1/admin/import: {"dir": absolute path on bookd's machine, or
 * "files": [absolute paths], "dry_run", "accept_past_conflicts"}; the
 * import runs on its own thread (api/seed_import.h), GET
 * /v1/admin/import follows it. */
#define IMPORT_FILES_MAX 16

static int do_admin_import(struct call *k, struct op_in *in)
{
	static const char *const allowed[] = { "dir", "files", "dry_run",
					       "accept_past_conflicts", NULL };
	struct import_server *is = srv_import(srv_conn_srv(k->c));
	struct import_opts o = { .now = k->now };
	char dir[4096] = "", msg[300] = "";
	const char *files[IMPORT_FILES_MAX];
	unsigned nfiles = 0;
	json_t *fv = NULL;
	struct jr r;
	int rc;

	(void)in; /* the body's fields, read here */
	if (!is)
		return answer_error(k, 503, "unavailable",
				    "imports are not available here");
	rc = body_open(k, &r, allowed);
	if (!rc) {
		fv = json_object_get(r.root, "files");
		rc = jr_str(&r, "dir", !fv, dir, sizeof(dir), NULL);
	}
	if (!rc && fv && dir[0])
		rc = jr_fail(&r, "give 'dir' or 'files', not both");
	if (!rc && !fv && dir[0] != '/')
		rc = jr_fail(&r, "field 'dir' must be an absolute path");
	if (!rc && fv &&
	    (!json_is_array(fv) || json_array_size(fv) == 0 ||
	     json_array_size(fv) > IMPORT_FILES_MAX))
		rc = jr_fail(&r,
			     "field 'files' must be an array of 1 to %d "
			     "absolute paths",
			     IMPORT_FILES_MAX);
	for (size_t i = 0; !rc && fv && i < json_array_size(fv); i++) {
		const char *f = json_string_value(json_array_get(fv, i));
		if (!f || f[0] != '/' || strlen(f) >= 4096)
			rc = jr_fail(&r,
				     "field 'files' must be an array of 1 to "
				     "%d absolute paths",
				     IMPORT_FILES_MAX);
		else
			files[nfiles++] = f; /* r.root holds it */
	}
	if (!rc) {
		json_t *v = json_object_get(r.root, "dry_run");
		json_t *a = json_object_get(r.root, "accept_past_conflicts");
		if ((v && !json_is_boolean(v)) || (a && !json_is_boolean(a)))
			rc = jr_fail(&r,
				     "fields 'dry_run' and "
				     "'accept_past_conflicts' are booleans");
		o.dry_run = v && json_is_true(v);
		o.accept_past = a && json_is_true(a);
	}
	if (rc)
		return body_done(k, &r, rc), 0;
	/* the files are read before the body goes (body_done frees it) */
	rc = import_server_start(is, fv ? NULL : dir, files, nfiles, &o, msg,
				 sizeof(msg));
	body_done(k, &r, 0);
	if (rc == -EBUSY)
		return answer_error(k, 409, "import_running", msg);
	if (rc)
		return answer_error(k, 422, "import_unreadable", msg);
	return ANSWER_LIT(k, 202, "{\"state\":\"running\"}");
}

static int do_admin_import_status(struct call *k, struct op_in *in)
{
	struct import_server *is = srv_import(srv_conn_srv(k->c));
	struct buf out = { .max = HTTP_OUT_BODY_MAX };
	int rc;

	(void)in; /* no fields */
	if (!is)
		return answer_error(k, 503, "unavailable",
				    "imports are not available here");
	import_server_status(is, &out);
	if (out.broken)
		rc = answer_error(k, 500, "internal", "report too large");
	else
		rc = answer(k, 200, (const char *)out.data, out.size);
	buf_free(&out);
	return rc;
}

/* The server's status as write makes it (http_status.c: the status's
 * JSON, the metrics' text). */
static int answer_status(struct call *k,
			 void (*write)(struct jw *w,
				       const struct srv_status *st))
{
	struct srv_status st;
	struct jw w;

	memset(&st, 0, sizeof(st));
	srv_status_get(srv_conn_srv(k->c), &st);
	jw_init(&w, http_scratch(), HTTP_OUT_BODY_MAX);
	write(&w, &st);
	return answer_jw(k, 200, &w);
}

static int do_admin_status(struct call *k, struct op_in *in)
{
	(void)in; /* no fields */
	return answer_status(k, http_status_json);
}

static int do_metrics(struct call *k)
{
	k->meta.content_type = "text/plain; version=0.0.4; charset=utf-8";
	return answer_status(k, http_metrics_text);
}

static int do_simple(struct call *k, struct op_in *in)
{
	struct srv_status st;

	(void)in; /* probes and scrapers: no fields */
	if (k->op->id == OP_HEALTH)
		return ANSWER_LIT(k, 200, "{\"status\":\"ok\"}");
	if (k->op->id == OP_METRICS)
		return do_metrics(k);
	memset(&st, 0, sizeof(st));
	srv_status_get(srv_conn_srv(k->c), &st);
	if (st.wal_error)
		return answer_error(k, 503, "unavailable",
				    fld_errno_message(st.wal_error));
	return ANSWER_LIT(k, 200, "{\"status\":\"ready\"}");
}

/* ---- the files of web/ ---- */

/* A file of web/ (web.h): GET and HEAD with its strong ETag (304 on a
 * matching If-None-Match), revalidated on each use (no-cache: the names
 * carry no hash); its Content-Security-Policy lets a page reach bookd
 * only (same origin). OPTIONS: 204; other methods: 405. */
static int answer_web(struct call *k, const struct web_file *f)
{
	static const char allow[] = "GET, HEAD, OPTIONS";
	uint64_t tag;

	ASSERT(f && f->data && f->etag);
	k->meta.op = "web";
	if (k->rq->method == HTTP_OPTIONS) {
		k->meta.allow = allow;
		return answer(k, 204, NULL, 0);
	}
	if (k->rq->method != HTTP_GET && k->rq->method != HTTP_HEAD) {
		k->meta.allow = allow;
		return answer_error(k, 405, "method_not_allowed",
				    "method not allowed on this route");
	}
	k->meta.etag = f->etag;
	k->meta.cache_control = "no-cache";
	inm_parse(k);
	tag = http_tag_hash(f->etag, strlen(f->etag));
	for (unsigned i = 0; i < k->ctx.inm_count; i++)
		if (k->ctx.inm[i] == tag)
			return answer(k, 304, NULL, 0);
	if (k->ctx.flags & X_INM_ANY)
		return answer(k, 304, NULL, 0);
	k->meta.content_type = web_content_type(f);
	k->meta.csp = "default-src 'self'; img-src 'self' data:; "
		      "object-src 'none'; base-uri 'none'; "
		      "form-action 'self'; frame-ancestors 'none'";
	return answer(k, 200, f->data, f->size);
}

/* ---- the entry ---- */

/* Each operation with an HTTP route: what reads its fields (into in) and
 * submits or answers it. */
static int (*const routes[OP_COUNT])(struct call *k, struct op_in *in) = {
	[OP_EVENT_LIST] = do_events,
	[OP_EVENT_GET] = do_event_get,
	[OP_EVENT_PATCH] = do_event_patch,
	[OP_BOOK] = do_book,
	[OP_BOOKING_GET] = do_booking_get,
	[OP_CANCEL] = do_cancel,
	[OP_CUSTOMER_BOOKINGS] = do_customer_bookings,
	[OP_ORG_CREATE] = do_catalogue,
	[OP_ORG_PATCH] = do_org_patch,
	[OP_LOCATION_CREATE] = do_catalogue,
	[OP_INSTRUCTOR_CREATE] = do_catalogue,
	[OP_CUSTOMER_CREATE] = do_catalogue,
	[OP_SERIES_CREATE] = do_series,
	[OP_SERIES_PATCH] = do_series_patch,
	[OP_SERIES_END] = do_series_end,
	[OP_GENERATE] = do_generate,
	[OP_ARCHIVE] = do_archive,
	[OP_STATUS] = do_admin_status,
	[OP_REFRESH] = do_admin_refresh,
	[OP_IMPORT] = do_admin_import,
	[OP_IMPORT_STATUS] = do_admin_import_status,
	[OP_STRIPE_WEBHOOK] = do_stripe,
	[OP_HEALTH] = do_simple,
	[OP_READY] = do_simple,
	[OP_METRICS] = do_simple,
	[OP_ORG_LIST] = do_cat_list,
	[OP_ORG_GET] = do_cat_get,
	[OP_LOCATION_LIST] = do_cat_list,
	[OP_LOCATION_GET] = do_cat_get,
	[OP_INSTRUCTOR_LIST] = do_cat_list,
	[OP_INSTRUCTOR_GET] = do_cat_get,
	[OP_SERIES_LIST] = do_cat_list,
	[OP_SERIES_GET] = do_cat_get,
	[OP_COMPAT_BOOK] = do_compat_book,
	[OP_COMPAT_CANCEL] = do_compat_cancel,
	[OP_COMPAT_EVENTS] = do_compat_events,
	[OP_COMPAT_STRIPE] = do_stripe,
};

static enum op_method method_bit(unsigned method)
{
	switch (method) {
	case HTTP_GET:
	case HTTP_HEAD: return OP_GET;
	case HTTP_POST: return OP_POST;
	case HTTP_PATCH: return OP_PATCH;
	default: return 0;
	}
}

int http_route(struct srv_conn *c, struct http_cat_slot *slot,
	       const struct http_request *rq)
{
	struct srv *s = srv_conn_srv(c);
	const struct http_str *origin = &rq->hdr[HTTP_H_ORIGIN];
	struct call k;
	struct op_in in;
	const struct web_file *page;
	const char *arg, *allow;
	size_t arg_size;
	int rc;

	memset(&k, 0, sizeof(k));
	k.c = c;
	k.rq = rq;
	k.slot = slot;
	k.cfg = srv_auth(s);
	k.limiter = srv_limiter(s);
	k.now = srv_now();
	k.meta.close = !rq->keep_alive;
	k.meta.keep_alive_10 = rq->http10 && rq->keep_alive;
	k.meta.head = rq->method == HTTP_HEAD;
	http_request_id(&rq->hdr[HTTP_H_X_REQUEST_ID], k.ctx.request_id);
	k.meta.request_id = k.ctx.request_id;
	if (origin->p && origin->n && origin_printable(origin) &&
	    auth_origin_allowed(k.cfg, origin->p, origin->n)) {
		k.meta.origin = origin->p;
		k.meta.origin_size = origin->n;
		if (origin->n <= HTTP_ORIGIN_SIZE_MAX) {
			memcpy(k.ctx.origin, origin->p, origin->n);
			k.ctx.origin_size = (uint8_t)origin->n;
		} else if (origin_star(k.cfg)) {
			k.ctx.origin[0] = '*';
			k.ctx.origin_size = 1;
		}
	}
	rc = ops_http_match(rq->path.p, rq->path.n, method_bit(rq->method),
			    &k.op, &arg, &arg_size, &allow);
	if (rc == -ENOENT && (page = web_find(rq->path.p, rq->path.n)))
		return answer_web(&k, page);
	if (rc == -ENOENT ||
	    pct_decode(arg, arg_size, k.id_seg, sizeof(k.id_seg), &k.id_size))
		return answer_error(&k, 404, "not_found", "no such route");
	if (rq->method == HTTP_OPTIONS) {
		k.meta.allow = allow;
		k.meta.preflight = true;
		k.meta.preflight_methods = allow;
		return answer(&k, 204, NULL, 0);
	}
	if (rc != 0) {
		k.meta.allow = allow;
		return answer_error(&k, 405, "method_not_allowed",
				    "method not allowed on this route");
	}
	k.ctx.op = (uint8_t)k.op->id;
	k.meta.op = k.op->name;
	k.meta.compat = ops_compat(k.op);
	/* /health, /ready, /metrics: never limited (probes, scrapers) */
	if (k.op->limit != OP_LIMIT_NONE && authorize(&k))
		return 0;
	memset(&in, 0, sizeof(in));
	if (path_in(&k, &in))
		return 0;
	ASSERT(routes[k.op->id]); /* every row with a path has its route */
	rc = routes[k.op->id](&k, &in);
	return rc == -EAGAIN ? -EAGAIN : 0;
}
