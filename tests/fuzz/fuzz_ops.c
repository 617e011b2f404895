/*
 * fuzz_ops.c: libFuzzer target for the JSON bodies of every operation,
 * through the operation table (api/ops.c) and the HTTP routes that decode
 * them (api/http_routes.c, api/http_json.c, api/fields.c). fuzz_http
 * reaches the same code through the framing; this target starts past it,
 * at http_route() with a well-formed request, so that every input is a
 * body for a route of the table.
 *
 * Input: byte 0 picks the operation (every row with a POST or PATCH
 * route, in table order), byte 1 the caller (bit 0: a customer JWT for
 * cus_1, else the service key; bit 1: an Idempotency-Key), the rest is
 * the body. The webhook routes get a correct Stripe-Signature for the
 * body, so the fuzzer reaches their JSON too.
 *
 * Checked, besides no crash and no read out of bounds (ASan):
 *  - one outcome: the request is submitted once and nothing is answered,
 *    or it is answered (an error: 4xx with {"error":{"code","message"}},
 *    the seed's shape on its routes) and nothing is submitted, and the
 *    catalogue slot is free again (nothing half-applied);
 *  - canonical form: a body jansson reads is dumped again canonically
 *    (sorted keys, compact, ASCII escapes) and routed again; it must have
 *    the same outcome, and when submitted the very same core request (op,
 *    fields, idempotency key and fingerprint) and catalogue slot; refused,
 *    the same status. (The webhook's fingerprint and payment reference
 *    hash its raw body: there only the outcome and status are compared.)
 * corpus/ops holds one valid body per operation (from docs/http.md) and a
 * few refused ones.
 */
#include "http_json.h"
#include "http_routes.h"
#include "jwt_test.h"
#include "ops.h"
#include "srv_fake.h"

#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW INT64_C(1772438400000) /* 2026-03-02 */

struct srv_conn {
	struct buf out;
	unsigned sub_count;
	struct core_req req;
	uint8_t ctx[SRV_CTX_SIZE_MAX];
	size_t ctx_size;
};

static struct srv_conn g_conn;

struct buf *srv_answer_begin(struct srv_conn *c) { return &c->out; }
void srv_answer_done(struct srv_conn *c) { (void)c; }
void srv_answer(struct srv_conn *c, const void *bytes, size_t size)
{
	buf_put(&c->out, bytes, size);
}

/* The request as the route built it, bytes and all (padding included:
 * the route zero-initialises it). */
int srv_submit(struct srv_conn *c, const struct core_req *req, const void *ctx,
	       size_t ctx_size)
{
	if (ctx_size > sizeof(c->ctx))
		abort();
	c->sub_count++;
	memcpy(&c->req, req, sizeof(*req));
	memcpy(c->ctx, ctx, ctx_size);
	c->ctx_size = ctx_size;
	return 0;
}

bool srv_conn_writable(const struct srv_conn *c)
{
	(void)c;
	return true;
}
void srv_count_response(struct srv_conn *c, int status)
{
	(void)c;
	if (status < 100 || status > 599)
		abort();
}
core_time srv_now(void) { return NOW; }

static const struct op_def *g_ops[OP_COUNT];
static unsigned g_op_count;
static char g_jwt[512];

static void setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	strcpy(g_srv.auth.service_key, "svc");
	strcpy(g_srv.auth.anon_key, "anon");
	strcpy(g_srv.auth.jwt_secret, "jwt");
	strcpy(g_srv.auth.stripe_secret, "whsec");
	for (int i = OP_NONE + 1; i < OP_COUNT; i++) {
		const struct op_def *op = ops_get((enum op_id)i);

		if (op && op->path && (op->method & (OP_POST | OP_PATCH)))
			g_ops[g_op_count++] = op;
	}
	if (g_op_count == 0)
		abort();
	if (getenv("FUZZ_OPS_LIST")) { /* for tests/fuzz/gen_corpus.py */
		for (unsigned i = 0; i < g_op_count; i++)
			printf("%u %s %s\n", i, g_ops[i]->name, g_ops[i]->path);
		fflush(stdout);
		_exit(0); /* not libFuzzer's exit handler */
	}
	jwt_sign(JWT_HS256_HEADER, "{\"sub\":\"cus_1\",\"exp\":4102444800}",
		 "jwt", EVP_sha256(), g_jwt);
}

/* The outcome of one request. */
struct outcome {
	unsigned subs;
	int status; /* 0: none answered */
	struct core_req req;
	struct http_cat_slot slot;
};

static int status_of(const struct buf *b)
{
	const char *s = (const char *)b->data;

	if (b->size < 12 || memcmp(s, "HTTP/1.1 ", 9) != 0)
		abort();
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

/* An error answer's body: {"error":{"code":..,"message":..}} or the
 * seed's {"success":false,"error":..,"code":..}. */
static void check_error(const struct buf *b)
{
	const char *s = (const char *)b->data;
	const char *body = memmem(s, b->size, "\r\n\r\n", 4);
	json_error_t e;
	json_t *j, *err;

	if (!body)
		abort();
	body += 4;
	j = json_loadb(body, b->size - (size_t)(body - s), 0, &e);
	if (!j)
		abort();
	err = json_object_get(j, "error");
	if (json_is_object(err)) {
		if (!json_is_string(json_object_get(err, "code")) ||
		    json_string_length(json_object_get(err, "message")) == 0)
			abort();
	} else if (!json_is_string(err) ||
		   !json_is_string(json_object_get(j, "code"))) {
		abort();
	}
	json_decref(j);
}

static void route(const struct op_def *op, uint8_t who, const char *body,
		  size_t size, struct outcome *o)
{
	static char path[256], sig[160];
	struct http_request rq;
	struct srv_conn *c = &g_conn;
	const char *brace;
	char *copy;
	size_t n = 0;
	int rc;

	memset(&rq, 0, sizeof(rq));
	rq.method = (op->method & OP_POST) ? HTTP_POST : HTTP_PATCH;
	rq.method_name = (op->method & OP_POST) ? "POST" : "PATCH";
	brace = strchr(op->path, '{');
	if (brace) {
		n = (size_t)(brace - op->path);
		memcpy(path, op->path, n);
		n += (size_t)sprintf(path + n, "%s",
				     strstr(op->path, "customer") ? "cus_1"
								  : "7");
		strcpy(path + n, strchr(brace, '}') + 1);
	} else {
		strcpy(path, op->path);
	}
	rq.path = (struct http_str){ path, strlen(path) };
	rq.query = (struct http_str){ "", 0 };
	rq.keep_alive = true;
	if (op->access != OP_ACCESS_NONE) {
		static char bearer[600];

		snprintf(bearer, sizeof(bearer), "Bearer %s",
			 (who & 1) ? g_jwt : "svc");
		rq.hdr[HTTP_H_AUTHORIZATION] =
			(struct http_str){ bearer, strlen(bearer) };
	}
	if (who & 2)
		rq.hdr[HTTP_H_IDEMPOTENCY_KEY] =
			(struct http_str){ "key-1", 5 };
	if (op->idem == OP_IDEM_STRIPE) {
		uint8_t mac[EVP_MAX_MD_SIZE];
		unsigned mac_size = 0, k;
		char *hex;
		size_t t_n;

		t_n = (size_t)sprintf(sig, "t=%" PRId64 ",v1=", NOW / 1000);
		copy = malloc(t_n + size + 1);
		if (!copy)
			abort();
		memcpy(copy, sig + 2, t_n - 6);
		copy[t_n - 6] = '.';
		memcpy(copy + t_n - 5, body, size);
		HMAC(EVP_sha256(), "whsec", 5, (const uint8_t *)copy,
		     t_n - 5 + size, mac, &mac_size);
		free(copy);
		hex = sig + t_n;
		for (k = 0; k < mac_size; k++)
			sprintf(hex + 2 * k, "%02x", mac[k]);
		rq.hdr[HTTP_H_STRIPE_SIGNATURE] =
			(struct http_str){ sig, strlen(sig) };
	}
	/* An exact-size copy: a read past the body is ASan's. */
	copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, body, size);
	rq.body = (const uint8_t *)copy;
	rq.body_size = size;

	c->out.size = 0;
	c->sub_count = 0;
	memset(&c->req, 0, sizeof(c->req));
	memset(o, 0, sizeof(*o));
	rc = http_route(c, &o->slot, &rq);
	free(copy);
	if (rc != 0 && rc != -EPIPE)
		abort(); /* srv_submit never refuses here */
	o->subs = c->sub_count;
	o->req = c->req;
	if (c->out.size)
		o->status = status_of(&c->out);
	/* one outcome: submitted and silent, or answered and not submitted */
	if (o->subs > 1 || (o->subs == 1) == (c->out.size > 0))
		abort();
	if (o->subs == 0) {
		if (o->slot.busy)
			abort(); /* the catalogue slot was left taken */
		if (op->core != CORE_OP_NONE && op->idem != OP_IDEM_STRIPE &&
		    o->status < 400)
			abort(); /* answered without the core, not refused */
		if (o->status >= 400)
			check_error(&c->out);
	} else if (o->req.op != op->core) {
		abort();
	}
	/* A submitted catalogue create keeps its slot until render; free it
	 * for the next request (net.c's render would). */
	o->slot.busy = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct op_def *op;
	struct outcome a, b;
	json_error_t e;
	json_t *j;
	char *canon;

	setup();
	if (size < 2 || size > 8192)
		return 0;
	op = g_ops[data[0] % g_op_count];
	route(op, data[1], (const char *)data + 2, size - 2, &a);
	if (getenv("FUZZ_OPS_TRACE")) /* what each input came to */
		fprintf(stderr, "%s: %s\n", op->name,
			a.subs ? "submitted" : "answered");

	j = json_loadb((const char *)data + 2, size - 2, JSON_REJECT_DUPLICATES,
		       &e);
	if (!j)
		return 0;
	canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS |
				      JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	json_decref(j);
	if (!canon)
		abort();
	route(op, data[1], canon, strlen(canon), &b);
	free(canon);
	if (a.subs != b.subs || a.status != b.status)
		abort(); /* the same body read differently */
	if (op->idem == OP_IDEM_STRIPE || a.subs == 0)
		return 0;
	if (a.req.op == CORE_OP_SERIES_CREATE) /* points at each slot */
		a.req.u.series = b.req.u.series = NULL;
	if (memcmp(&a.req, &b.req, sizeof(a.req)) != 0 ||
	    memcmp(&a.slot, &b.slot, sizeof(a.slot)) != 0)
		abort();
	return 0;
}
