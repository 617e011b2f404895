/*
 * fuzz_bin.c: libFuzzer target for the binary protocol, both sides:
 *
 *  - the server's parse path (api/bin.c, compiled in with proto.c,
 *    fields.c and auth.c, against the fakes of srv_* below): the input is
 *    a byte stream fed to srv_bin_proto.parse() in pieces of varying size
 *    the way net.c does (unused bytes kept and offered again), with
 *    srv_submit() refusing now and then (-EAGAIN) so that partial batches
 *    resume; every submitted request is rendered with a made-up answer;
 *  - the client's decode path (mp_frame_size, mp_decode, mp_read_answer).
 *
 * Checks: never a crash or a leak (ASan), parse never uses more bytes than
 * it was given, every byte the server writes is a sequence of whole frames
 * that the client's reader accepts, and each is counted once
 * (srv_count_response).
 *
 * Input: byte 0 the mode (0: raw stream, hello included; 1, 2, 3: a hello
 * with the service key, the anon key or a customer JWT comes first;
 * 4..255: client decode), byte 1 seeds the piece sizes, byte 2 makes
 * every n-th srv_submit() fail (0: never); the rest is the stream.
 */
#include "fields.h"
#include "proto.h"
#include "srv.h"
#include "srv_fake.h"

#include <errno.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1767225600000)
#define FEED_SIZE_MAX (2u << 20)

/* ---- fakes of the server's side (srv.h; the rest in srv_fake.h) ---- */

static struct buf out;
static struct sub subs[SUB_MAX];
static unsigned sub_count, submit_calls, eagain_every;
static char conn_dummy;
static struct srv_conn *const conn = (struct srv_conn *)&conn_dummy;

void srv_answer(struct srv_conn *c, const void *bytes, size_t size)
{
	(void)c;
	buf_put(&out, bytes, size);
}

struct buf *srv_answer_begin(struct srv_conn *c)
{
	(void)c;
	return &out;
}

void srv_answer_done(struct srv_conn *c) { (void)c; }

int srv_submit(struct srv_conn *c, const struct core_req *req, const void *ctx,
	       size_t ctx_size)
{
	(void)c;
	submit_calls++;
	return sub_add(subs, &sub_count,
		       eagain_every && submit_calls % eagain_every == 0
			       ? 0
			       : SUB_MAX,
		       req, ctx, ctx_size);
}

static unsigned answers_counted;

void srv_count_response(struct srv_conn *c, int status)
{
	(void)c;
	if (status < 200 || status > 599)
		abort();
	answers_counted++;
}

bool srv_conn_writable(const struct srv_conn *c)
{
	(void)c;
	return out.size < SRV_OUT_SIZE_MAX;
}

core_time srv_now(void) { return NOW; }

/* ---- answering what was submitted ---- */

static void fake_booking(const struct core_req *q, struct core_booking_view *b)
{
	memset(b, 0, sizeof(*b));
	b->event_id =
		q->event_id ? q->event_id : core_booking_event(q->booking_id);
	if (b->event_id == 0)
		b->event_id = 1; /* a customer's bookings: any event */
	b->id = q->booking_id ? q->booking_id : (b->event_id << 24) | 1;
	memcpy(b->customer_id, q->customer_id[0] ? q->customer_id : "someone",
	       q->customer_id[0] ? sizeof(b->customer_id) : 8);
	b->status = (uint8_t)(1 + q->event_id % 6);
	b->position = b->status == CORE_BOOKING_WAITLISTED ? 3 : 0;
	b->hold_expires_at =
		b->status == CORE_BOOKING_PENDING_PAYMENT ? NOW + 1 : 0;
	b->created_at = NOW;
}

static void fake_event(uint64_t id, struct core_event_view *e)
{
	memset(e, 0, sizeof(*e));
	e->id = id ? id : 1;
	e->series_id = 1;
	memcpy(e->title, "Pilates", 8);
	e->start_at = NOW + 3600000;
	e->capacity = 20;
	e->booked = 21; /* more than capacity: available must not wrap */
	e->status = CORE_EVENT_SCHEDULED;
}

static void render_all(void)
{
	static struct core_event_view events[3];
	static struct core_booking_view bookings[3];

	for (unsigned i = 0; i < sub_count; i++) {
		const struct core_req *q = &subs[i].req;
		struct core_resp r;
		struct srv_views v = { .events = NULL, .bookings = NULL };
		int rc = 0;
		unsigned pick =
			(unsigned)((q->event_id + q->booking_id + i) % 11);

		memset(&r, 0, sizeof(r));
		r.op = q->op;
		r.code = pick < 7 ? CORE_OK
				  : (enum core_code)(pick % CORE_CODE_COUNT);
		if (r.code == CORE_OK && pick == 6)
			r.code = CORE_EVENT_FULL;
		if (pick == 10)
			rc = -ENOSPC;
		r.replayed = pick == 3;
		r.id = 42;
		r.count = pick;
		r.more = pick % 2;
		fake_booking(q, &r.booking);
		if (pick % 2) {
			fake_booking(q, &r.promoted);
			r.has_promoted = true;
		}
		if (q->op == CORE_OP_EVENT_GET || q->op == CORE_OP_EVENT_PATCH)
			fake_event(q->event_id, &r.event);
		if (q->op == CORE_OP_EVENT_LIST) {
			for (unsigned k = 0; k < 3; k++)
				fake_event(k + 1, &events[k]);
			v.events = events;
			r.count = q->u.list.limit < 3 ? q->u.list.limit : 3;
		}
		if (q->op == CORE_OP_CUSTOMER_BOOKINGS) {
			for (unsigned k = 0; k < 3; k++)
				fake_booking(q, &bookings[k]);
			v.bookings = bookings;
			r.count = q->u.customer.capacity < 3
					  ? q->u.customer.capacity
					  : 3;
		}
		if (q->op == CORE_OP_SERIES_CREATE && !q->u.series)
			abort();
		srv_bin_proto.render(conn, NULL, subs[i].ctx, rc, &r, &v, &out);
	}
	sub_count = 0;
}

/* ---- checks ---- */

static struct bc_event check_events[BC_LIST_LIMIT_MAX];
static struct bc_booking check_bookings[BC_LIST_LIMIT_MAX];

/* Every byte the server wrote: whole frames the client reads. */
static void check_output(msgpack_zone *z)
{
	size_t at = 0;
	unsigned frames = 0;

	while (at < out.size) {
		long n = mp_frame_size(out.data + at, out.size - at);
		msgpack_object o;
		struct bc_answer a;
		if (n <= 0)
			abort();
		msgpack_zone_clear(z);
		if (mp_decode(z, out.data + at + MP_HEADER_SIZE,
			      (size_t)n - MP_HEADER_SIZE, &o) != 0)
			abort();
		if (mp_read_answer(&o, &a, check_events, BC_LIST_LIMIT_MAX,
				   check_bookings, BC_LIST_LIMIT_MAX) != 0)
			abort();
		at += (size_t)n;
		frames++;
	}
	/* Every answer counted once for the metrics. */
	if (frames != answers_counted)
		abort();
	answers_counted = 0;
	out.size = 0;
}

/* ---- set-up ---- */

static size_t b64url(const void *in, size_t n, char *o)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const uint8_t *p = in;
	size_t k = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];
		o[k++] = t[v >> 18];
		o[k++] = t[(v >> 12) & 63];
		o[k++] = t[(v >> 6) & 63];
		o[k++] = t[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		o[k++] = t[v >> 18];
		o[k++] = t[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		o[k++] = t[v >> 18];
		o[k++] = t[(v >> 12) & 63];
		o[k++] = t[(v >> 6) & 63];
	}
	return k;
}

static char jwt[512];

static void make_jwt(void)
{
	const char *h = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	const char *c = "{\"sub\":\"cust-1\",\"exp\":4102444800}";
	uint8_t mac[32];
	unsigned mac_size = sizeof(mac);
	size_t n = b64url(h, strlen(h), jwt);

	jwt[n++] = '.';
	n += b64url(c, strlen(c), jwt + n);
	HMAC(EVP_sha256(), g_srv.auth.jwt_secret,
	     (int)strlen(g_srv.auth.jwt_secret), (const uint8_t *)jwt, n, mac,
	     &mac_size);
	jwt[n++] = '.';
	n += b64url(mac, mac_size, jwt + n);
	jwt[n] = '\0';
}

static size_t hello(uint8_t *dst, const char *tok)
{
	struct buf b = { 0 };
	msgpack_packer pk;
	size_t n;

	msgpack_packer_init(&pk, &b, mp_buf_write);
	mp_frame_begin(&pk, 0);
	msgpack_pack_map(&pk, 2);
	mp_pack_kv_uint(&pk, "v", 1);
	mp_pack_kv_str(&pk, "auth", tok);
	mp_frame_end(b.data, 0, b.size);
	memcpy(dst, b.data, b.size);
	n = b.size;
	buf_free(&b);
	return n;
}

static void init(void)
{
	struct auth_limit_config lc;

	strcpy(g_srv.auth.service_key, "svc");
	strcpy(g_srv.auth.anon_key, "anon");
	strcpy(g_srv.auth.jwt_secret, "secret");
	auth_limit_config_default(&lc);
	g_srv.limiter = auth_limiter_new(&lc);
	g_srv.status.shard_count = 2;
	g_srv.status.repl_state = "disabled";
	g_srv.status.wal_sync_count = 3;
	g_srv.status.wal_sync_ns_total = 3000000;
	make_jwt();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static msgpack_zone *z;
	static uint8_t *stream;
	static struct bin_state_buf {
		uint8_t bytes[512];
	} state;
	uint8_t mode, seed;
	size_t n = 0, in_size = 0, fed = 0;
	unsigned stuck = 0;
	uint8_t *in;

	if (!ready) {
		init();
		z = msgpack_zone_new(MP_ZONE_CHUNK_SIZE);
		stream = malloc(FEED_SIZE_MAX + 1024);
		if (!z || !stream)
			abort();
		ready = true;
	}
	if (size < 3 || size > FEED_SIZE_MAX)
		return 0;
	mode = data[0];
	seed = data[1];
	eagain_every = data[2] % 8;
	data += 3;
	size -= 3;

	if (mode >= 4) { /* the client's decode path */
		size_t at = 0;
		while (at < size) {
			long f = mp_frame_size(data + at, size - at);
			msgpack_object o;
			struct bc_answer a;
			if (f < 0)
				break;
			msgpack_zone_clear(z);
			if (mp_decode(z, data + at + MP_HEADER_SIZE,
				      (size_t)f - MP_HEADER_SIZE, &o) == 0)
				(void)mp_read_answer(&o, &a, check_events, 8,
						     check_bookings, 8);
			at += (size_t)f;
		}
		return 0;
	}

	if (mode == 1)
		n = hello(stream, "svc");
	else if (mode == 2)
		n = hello(stream, "anon");
	else if (mode == 3)
		n = hello(stream, jwt);
	memcpy(stream + n, data, size);
	n += size;

	/* Feed it in pieces, keeping what parse did not use (net.c). */
	if (srv_bin_proto.conn_state_size > sizeof(state.bytes))
		abort();
	memset(&state, 0, sizeof(state));
	in = malloc(n + 1);
	if (!in)
		abort();
	submit_calls = 0;
	uint32_t x = seed * 2654435761u + 1;
	while (fed < n || in_size > 0) {
		size_t piece = 0;
		long used;
		if (fed < n) {
			x = x * 1103515245u + 12345u;
			piece = 1 + (x >> 16) % 97;
			if (seed & 1)
				piece = n - fed; /* all at once */
			if (piece > n - fed)
				piece = n - fed;
			memcpy(in + in_size, stream + fed, piece);
			in_size += piece;
			fed += piece;
		}
		used = srv_bin_proto.parse(conn, &state, in, in_size);
		if (used < -1 || used > (long)in_size)
			abort();
		render_all(); /* answers went out: room again */
		check_output(z);
		if (used < 0)
			break;
		memmove(in, in + used, in_size - (size_t)used);
		in_size -= (size_t)used;
		if (fed == n && used == 0 && ++stuck > 8)
			break; /* a partial frame at the end */
	}
	render_all();
	check_output(z);
	free(in);
	return 0;
}
