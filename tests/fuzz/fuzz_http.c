/*
 * fuzz_http.c: libFuzzer target for the HTTP adapter (api/http*.c): the
 * framing (http-parser glue, the strict checks around it, limits, chunked
 * bodies, pipelining; corpus/http/strict-* hold the refused shapes), routing,
 * auth, the strict JSON readers, and render() of every submitted request.
 *
 * Input: byte 0 picks how the rest is delivered (whole, or in pieces of
 * 1..64 bytes, like reads from a socket); the rest is the byte stream of
 * one connection. The network side is faked here as in
 * tests/unit/http_test.h (with its srv_fake.h: g_srv, the peer): bytes
 * parse() did not use are kept and offered again with more.
 *
 * Checked: no crash, no out-of-bounds access (ASan), parse() never uses
 * more than it was given, every answer starts with a status line, and
 * every JSON body rendered (errors included) parses back with jansson.
 * The keys below are in the corpus so the fuzzer starts past auth.
 */
#include "http_json.h"
#include "http_routes.h"
#include "srv_fake.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srv_conn {
	struct buf out;
	struct sub subs[SUB_MAX];
	unsigned sub_count;
};

static struct srv_conn g_conn;

static void check_answer(const struct buf *b, size_t from)
{
	if (b->size - from < 12 || memcmp(b->data + from, "HTTP/1.1 ", 9) != 0)
		abort();
}

struct buf *srv_answer_begin(struct srv_conn *c) { return &c->out; }
void srv_answer_done(struct srv_conn *c) { (void)c; }
void srv_answer(struct srv_conn *c, const void *bytes, size_t size)
{
	buf_put(&c->out, bytes, size);
}

int srv_submit(struct srv_conn *c, const struct core_req *req, const void *ctx,
	       size_t ctx_size)
{
	return sub_add(c->subs, &c->sub_count, SUB_MAX, req, ctx, ctx_size);
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

core_time srv_now(void) { return INT64_C(1772438400000); }

/* The JSON body of the answer written at out[from..), if any, parses. */
static void check_json(const struct buf *b, size_t from)
{
	const char *s = (const char *)b->data + from;
	size_t n = b->size - from;
	const char *end = memmem(s, n, "\r\n\r\n", 4);
	json_error_t e;
	json_t *j;

	check_answer(b, from);
	if (!end)
		abort();
	end += 4;
	if ((size_t)(end - s) == n)
		return; /* no body (304, HEAD) */
	if (!memmem(s, (size_t)(end - s), "application/json", 16))
		return;
	j = json_loadb(end, n - (size_t)(end - s), JSON_REJECT_DUPLICATES, &e);
	if (!j)
		abort();
	json_decref(j);
}

static void render_all(struct srv_conn *c, void *state, uint8_t salt)
{
	static struct core_event_view ev[3];
	static struct core_booking_view bk[2];
	struct srv_views views = { .events = ev, .bookings = bk };

	for (int i = 0; i < 3; i++) {
		ev[i].id = (uint64_t)i + 1;
		ev[i].status = (uint8_t)(salt % 3);
		ev[i].start_at = (core_time)salt * 1000 * i;
		memset(ev[i].title, 'a' + salt % 26, sizeof(ev[i].title) - 1);
		ev[i].title[salt % sizeof(ev[i].title)] = '\0';
		ev[i].title[0] = (char)salt; /* any byte: escaped or replaced */
	}
	for (int i = 0; i < 2; i++) {
		bk[i].id = (uint64_t)i + 100;
		bk[i].status = (uint8_t)(salt % 8);
		strcpy(bk[i].customer_id, "c");
	}
	for (unsigned i = 0; i < c->sub_count; i++) {
		struct core_resp resp;
		size_t from = c->out.size;
		int rc = salt % 11 == 0 ? -EIO : 0;

		memset(&resp, 0, sizeof(resp));
		resp.op = c->subs[i].req.op;
		resp.code = (enum core_code)(salt % CORE_CODE_COUNT);
		if (salt & 1)
			resp.code = CORE_OK;
		resp.count = salt % 4;
		resp.more = salt & 2;
		resp.replayed = salt & 4;
		resp.has_promoted = salt & 8;
		resp.id = salt;
		strcpy(resp.booking.customer_id, (salt & 16) ? "c" : "x");
		resp.event = ev[0];
		if (resp.op == CORE_OP_BOOK || resp.op == CORE_OP_CANCEL ||
		    resp.op == CORE_OP_PAY || resp.op == CORE_OP_BOOKING_GET) {
			resp.booking = bk[0];
			resp.promoted = bk[1];
		}
		if (resp.op == CORE_OP_EVENT_LIST && resp.count > 3)
			resp.count = 3;
		if (resp.op == CORE_OP_CUSTOMER_BOOKINGS && resp.count > 2)
			resp.count = 2;
		srv_http_proto.render(c, state, c->subs[i].ctx, rc, &resp,
				      &views, &c->out);
		check_json(&c->out, from);
	}
	c->sub_count = 0;
}

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
	if (auth_config_set_origins(&g_srv.auth, "https://a.example"))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t in[1 << 17];
	struct srv_conn *c = &g_conn;
	void *state;
	size_t kept = 0, off = 1, piece;
	uint8_t mode;

	setup();
	if (size < 1 || size > sizeof(in) / 2)
		return 0;
	mode = data[0];
	piece = mode == 0 ? size : 1 + mode % 64;
	state = calloc(1, srv_http_proto.conn_state_size);
	if (!state)
		abort();
	c->out.size = 0;
	c->sub_count = 0;
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;
		long used;

		memcpy(in + kept, data + off, n);
		kept += n;
		off += n;
		used = srv_http_proto.parse(c, state, in, kept);
		if (used < 0)
			break;
		if ((size_t)used > kept)
			abort();
		memmove(in, in + used, kept - (size_t)used);
		kept -= (size_t)used;
		render_all(c, state, data[off - 1]);
		/* Parse what was kept once more (net.c does after answers). */
		used = srv_http_proto.parse(c, state, in, kept);
		if (used < 0)
			break;
		memmove(in, in + used, kept - (size_t)used);
		kept -= (size_t)used;
	}
	render_all(c, state, (uint8_t)size);
	free(state);
	return 0;
}
