/*
 * test_proto.c: the binary protocol's shared encoding (api/proto.h):
 * frames, bounded decoding, typed accessors, and the objects packed by the
 * server and read back by the client.
 *
 * Decoder inputs are placed right before a PROT_NONE guard page, so a read
 * past the end crashes the test. Truncations are tried at every byte.
 * Random inputs print their seed; rerun with PROTO_TEST_SEED=<seed>.
 *
 * Prints "proto: N checks, M failed" and exits 0 only when all passed.
 */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "guard_test.h"

#define GUARD_SIZE (256u << 10)
#define RANDOM_ROUND_COUNT 20000

/* p[0..n) copied to end right at the guard page. */
static const uint8_t *g(const void *p, size_t n) { return guard_copy(p, n); }

static msgpack_zone *zone;

static int decode(const void *p, size_t n, msgpack_object *o)
{
	msgpack_zone_clear(zone);
	return mp_decode(zone, g(p, n), n, o);
}

/* ---- frames ---- */

static void test_frames(void)
{
	uint8_t f[16] = { 0, 0, 0, 5, 0x81, 0xa1, 'v', 0x01, 0xc0 };
	uint8_t h[4];

	for (size_t n = 0; n < 9; n++)
		CHECK(mp_frame_size(g(f, n), n) == -2);
	CHECK(mp_frame_size(g(f, 9), 9) == 9);
	CHECK(mp_frame_size(g(f, 12), 12) == 9);
	mp_be32_put(h, 0);
	CHECK(mp_frame_size(g(h, 4), 4) == -1);
	mp_be32_put(h, MP_BODY_SIZE_MAX);
	CHECK(mp_frame_size(g(h, 4), 4) == -2);
	mp_be32_put(h, MP_BODY_SIZE_MAX + 1);
	CHECK(mp_frame_size(g(h, 4), 4) == -1);
	mp_be32_put(h, 0xffffffffu);
	CHECK(mp_frame_size(g(h, 4), 4) == -1);
	CHECK(mp_be32_get(h) == 0xffffffffu);
	/* Only 3 bytes of a header: still partial, whatever they say. */
	CHECK(mp_frame_size(g(h, 3), 3) == -2);

	/* mp_frame_begin / end through a packer. */
	struct buf b = { 0 };
	msgpack_packer pk;
	size_t start;
	msgpack_packer_init(&pk, &b, mp_buf_write);
	buf_put(&b, "xy", 2);
	start = mp_frame_begin(&pk, b.size);
	CHECK(start == 2);
	msgpack_pack_map(&pk, 1);
	mp_pack_kv_uint(&pk, "id", 300);
	CHECK(mp_frame_end(b.data, start, b.size) == 0);
	CHECK(mp_be32_get(b.data + 2) == b.size - 6);
	CHECK(mp_frame_size(b.data + 2, b.size - 2) == (long)(b.size - 2));
	/* An empty body is refused. */
	CHECK(mp_frame_end(b.data, b.size - 4, b.size) == -EMSGSIZE);
	buf_free(&b);
}

/* ---- decoding ---- */

static void test_decode(void)
{
	msgpack_object o;
	static const uint8_t ok[] = { 0x82, 0xa2, 'i', 'd', 0x07, 0xa2, 'o',
				      'p',  0xa4, 'b', 'o', 'o',  'k' };
	uint8_t buf[256];

	CHECK(decode(ok, sizeof(ok), &o) == 0);
	CHECK(o.type == MSGPACK_OBJECT_MAP);
	CHECK(mp_op_from(mp_get(&o, "op")) == MP_OP_BOOK);
	/* Truncated at every byte. */
	for (size_t n = 1; n < sizeof(ok); n++)
		CHECK(decode(ok, n, &o) == -EINVAL);
	/* Trailing bytes: refused, but the request's own id is readable (the
	 * answer carries it, not 0); not for a whole, truncated, id-less or
	 * non-map body. */
	memcpy(buf, ok, sizeof(ok));
	buf[sizeof(ok)] = 0xc0;
	CHECK(decode(buf, sizeof(ok) + 1, &o) == -EINVAL);
	{
		uint64_t id = 0;
		static const uint8_t noid[] = {
			0x81, 0xa2, 'o', 'p', 0x01, 0x01
		};
		static const uint8_t arr[] = { 0x91, 0x07, 0x01 };
		static const uint8_t zero[] = {
			0x81, 0xa2, 'i', 'd', 0x00, 0x01
		};

		CHECK(mp_frame_id(zone, buf, sizeof(ok) + 1, &id) == 0);
		CHECK(id == 7);
		buf[sizeof(ok) + 1] = 0xff;
		id = 0;
		CHECK(mp_frame_id(zone, buf, sizeof(ok) + 2, &id) == 0);
		CHECK(id == 7);
		CHECK(mp_frame_id(zone, ok, sizeof(ok), &id) == -EINVAL);
		for (size_t n = 1; n < sizeof(ok); n++)
			CHECK(mp_frame_id(zone, ok, n, &id) == -EINVAL);
		CHECK(mp_frame_id(zone, noid, sizeof(noid), &id) == -EINVAL);
		CHECK(mp_frame_id(zone, arr, sizeof(arr), &id) == -EINVAL);
		CHECK(mp_frame_id(zone, zero, sizeof(zero), &id) == -EINVAL);
		CHECK(mp_frame_id(zone, buf, 0, &id) == -EINVAL);
	}
	/* Never-used byte. */
	buf[0] = 0xc1;
	CHECK(decode(buf, 1, &o) == -EINVAL);
	/* Counts that cannot fit the bytes: refused before any allocation. */
	static const uint8_t arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
	static const uint8_t map32[] = { 0xdf, 0x7f, 0xff, 0xff,
					 0xff, 0x01, 0x01 };
	static const uint8_t str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a' };
	static const uint8_t bin32[] = { 0xc6, 0x10, 0x00, 0x00, 0x00, 'a' };
	static const uint8_t ext32[] = {
		0xc9, 0x10, 0x00, 0x00, 0x00, 0x01, 'a'
	};
	static const uint8_t arr16[] = { 0xdc, 0x00, 0x03, 0x01, 0x02 };
	static const uint8_t fixext[] = { 0xd8, 0x01, 0x00 };
	CHECK(decode(arr32, sizeof(arr32), &o) == -EINVAL);
	CHECK(decode(map32, sizeof(map32), &o) == -EINVAL);
	CHECK(decode(str32, sizeof(str32), &o) == -EINVAL);
	CHECK(decode(bin32, sizeof(bin32), &o) == -EINVAL);
	CHECK(decode(ext32, sizeof(ext32), &o) == -EINVAL);
	CHECK(decode(arr16, sizeof(arr16), &o) == -EINVAL);
	CHECK(decode(fixext, sizeof(fixext), &o) == -EINVAL);
	/* A large but honest array decodes. */
	{
		size_t n = 60000;
		uint8_t *big = malloc(n + 5);
		big[0] = 0xdd;
		mp_be32_put(big + 1, (uint32_t)n);
		memset(big + 5, 0x01, n);
		CHECK(decode(big, n + 5, &o) == 0);
		CHECK(o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == n);
		free(big);
	}
	/* Nesting: 20 levels fine, 40 refused. */
	memset(buf, 0x91, 40);
	buf[20] = 0x01;
	CHECK(decode(buf, 21, &o) == 0);
	buf[40] = 0x01;
	memset(buf, 0x91, 40);
	CHECK(decode(buf, 41, &o) == -EINVAL);
	/* Empty and oversized bodies. */
	CHECK(mp_decode(zone, buf, 0, &o) == -EINVAL);
	CHECK(mp_decode(zone, buf, MP_BODY_SIZE_MAX + 1, &o) == -EINVAL);
	/* Every header byte alone: never a crash, never accepted unless it is
	 * a complete value by itself. */
	for (unsigned t = 0; t < 256; t++) {
		uint8_t one = (uint8_t)t;
		int rc = decode(&one, 1, &o);
		bool complete = t <= 0x7f || t >= 0xe0 || t == 0xc0 ||
				t == 0xc2 || t == 0xc3 || t == 0x80 ||
				t == 0x90 || t == 0xa0;
		CHECK((rc == 0) == complete);
	}
}

/* ---- accessors ---- */

static void test_accessors(void)
{
	struct buf b = { 0 };
	msgpack_packer pk;
	msgpack_object o;
	uint64_t u = 0;
	int64_t i = 0;
	char s[8];

	msgpack_packer_init(&pk, &b, mp_buf_write);
	msgpack_pack_map(&pk, 10);
	mp_pack_kv_uint(&pk, "u", 42);
	mp_pack_kv_int(&pk, "neg", -5);
	mp_pack_kv_str(&pk, "s", "1234");
	mp_pack_kv_str(&pk, "big", "18446744073709551615");
	mp_pack_kv_str(&pk, "over", "18446744073709551616");
	mp_pack_kv_str(&pk, "long", "abcdefgh");
	mp_pack_str(&pk, "nul");
	mp_pack_strn(&pk, "a\0b", 3);
	mp_pack_str(&pk, "nil");
	msgpack_pack_nil(&pk);
	mp_pack_kv_uint(&pk, "zero", 0);
	mp_pack_str(&pk, "f");
	msgpack_pack_double(&pk, 1.5);
	CHECK(!b.broken);
	CHECK(decode(b.data, b.size, &o) == 0);
	CHECK(mp_get_uint(&o, "u", &u) == 0 && u == 42);
	CHECK(mp_uint(mp_get(&o, "neg"), &u) == -EINVAL);
	CHECK(mp_int(mp_get(&o, "neg"), &i) == 0 && i == -5);
	CHECK(mp_int(mp_get(&o, "s"), &i) == -EINVAL);
	CHECK(mp_id(mp_get(&o, "s"), &u) == 0 && u == 1234);
	CHECK(mp_id(mp_get(&o, "big"), &u) == 0 && u == UINT64_MAX);
	CHECK(mp_id(mp_get(&o, "over"), &u) == -EINVAL);
	CHECK(mp_id(mp_get(&o, "zero"), &u) == -EINVAL);
	CHECK(mp_id(mp_get(&o, "f"), &u) == -EINVAL);
	CHECK(mp_id(mp_get(&o, "long"), &u) == -EINVAL);
	CHECK(mp_str_copy(mp_get(&o, "long"), s, sizeof(s)) == -EINVAL);
	CHECK(mp_str_copy(mp_get(&o, "s"), s, sizeof(s)) == 0 &&
	      strcmp(s, "1234") == 0);
	CHECK(mp_str_copy(mp_get(&o, "nul"), s, sizeof(s)) == -EINVAL);
	CHECK(mp_get(&o, "nil") == NULL);
	CHECK(mp_get(&o, "absent") == NULL);
	u = 9;
	CHECK(mp_get_uint(&o, "absent", &u) == 0 && u == 9);
	CHECK(mp_get_uint(&o, "s", &u) == -EINVAL);
	CHECK(mp_get(mp_get(&o, "u"), "x") == NULL); /* not a map */
	buf_free(&b);

	/* Op names and numbers. */
	msgpack_object v = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER };
	for (unsigned k = 0; k < MP_OP_COUNT + 2; k++) {
		v.via.u64 = k;
		CHECK(mp_op_from(&v) == (k > 0 && k < MP_OP_COUNT ? k : 0));
	}
	for (unsigned k = 1; k < MP_OP_COUNT; k++) {
		msgpack_object n = { .type = MSGPACK_OBJECT_STR };
		n.via.str.ptr = mp_op_name(k);
		n.via.str.size = (uint32_t)strlen(mp_op_name(k));
		CHECK(mp_op_from(&n) == k);
		n.via.str.size--; /* a prefix is not a name */
		CHECK(mp_op_from(&n) != k);
	}
	CHECK(mp_op_from(NULL) == MP_OP_NONE);
	CHECK(bc_code_from_name("event_full", 10) == BC_EVENT_FULL);
	CHECK(bc_code_from_name("ok", 2) == BC_OK);
	CHECK(bc_code_from_name("brand_new", 9) == BC_OTHER);
	for (int k = 0; k < BC_OTHER; k++) {
		const char *n = bc_code_name(k);
		CHECK(bc_code_from_name(n, strlen(n)) == k);
	}
}

/* ---- objects both ways ---- */

static struct core_booking_view sample_booking(unsigned k)
{
	struct core_booking_view b;

	memset(&b, 0, sizeof(b));
	b.id = (UINT64_C(1234) << 24) | (k + 1);
	b.event_id = 1234;
	snprintf(b.customer_id, sizeof(b.customer_id), "cust-%u", k);
	b.status = (uint8_t)(1 + k % 6);
	b.position = b.status == CORE_BOOKING_WAITLISTED ? k + 1 : 0;
	b.hold_expires_at = b.status == CORE_BOOKING_PENDING_PAYMENT
				    ? INT64_C(1764090600000)
				    : 0;
	b.created_at = INT64_C(1764090000000) + k;
	return b;
}

static bool booking_equal(const struct core_booking_view *v,
			  const struct bc_booking *b)
{
	return v->id == b->id && v->event_id == b->event_id &&
	       strcmp(v->customer_id, b->customer_id) == 0 &&
	       (unsigned)v->status == (unsigned)b->status &&
	       v->position == b->position &&
	       v->hold_expires_at == b->hold_expires_at &&
	       v->created_at == b->created_at;
}

static struct core_event_view sample_event(unsigned k)
{
	struct core_event_view e;

	memset(&e, 0, sizeof(e));
	e.id = 100 + k;
	e.series_id = 7;
	e.org_id = 1;
	e.location_id = 2;
	e.instructor_id = 3;
	snprintf(e.title, sizeof(e.title), "Yoga \"%u\" \xc3\xa9", k);
	e.start_at = INT64_C(1764090000000) + k * 3600000;
	e.duration_min = 60;
	e.capacity = 20;
	e.booked = 18;
	e.held = 1;
	e.waitlist_length = k;
	e.waitlist_capacity = 10;
	e.price_cents = k % 2 ? 1500 : 0;
	memcpy(e.currency, k % 2 ? "eur" : "", k % 2 ? 4 : 1);
	e.status = k % 3 == 2 ? CORE_EVENT_CANCELLED : CORE_EVENT_SCHEDULED;
	e.version = 99 + k;
	return e;
}

static bool event_equal(const struct core_event_view *v,
			const struct bc_event *e)
{
	return v->id == e->id && v->series_id == e->series_id &&
	       v->org_id == e->org_id && v->location_id == e->location_id &&
	       v->instructor_id == e->instructor_id &&
	       strcmp(v->title, e->title) == 0 && v->start_at == e->start_at &&
	       v->duration_min == e->duration_min &&
	       v->capacity == e->capacity && v->booked == e->booked &&
	       v->held == e->held && e->available == 1 &&
	       v->waitlist_length == e->waitlist_length &&
	       v->waitlist_capacity == e->waitlist_capacity &&
	       v->price_cents == e->price_cents &&
	       strcmp(v->currency, e->currency) == 0 &&
	       (unsigned)v->status == (unsigned)e->status &&
	       v->version == e->version;
}

/* pk packing into b, emptied. */
static void packer_reset(msgpack_packer *pk, struct buf *b)
{
	b->size = 0;
	msgpack_packer_init(pk, b, mp_buf_write);
}

/* b decodes whole into *o, and the decoder refuses each truncation of it. */
static bool decodes_whole(const struct buf *b, msgpack_object *o)
{
	bool refused = true;

	for (size_t n = 1; n < b->size; n++)
		refused &= decode(b->data, n, o) == -EINVAL;
	return refused && decode(b->data, b->size, o) == 0;
}

static void test_objects(void)
{
	static struct bc_event events[BC_LIST_LIMIT_MAX];
	static struct bc_booking bookings[BC_LIST_LIMIT_MAX];
	struct buf b = { 0 };
	msgpack_packer pk;
	msgpack_object o;
	struct bc_answer a;

	/* Each sample booking and event read back as it was written. */
	for (unsigned k = 0; k < 12; k++) {
		struct core_booking_view bv = sample_booking(k);
		struct core_event_view ev = sample_event(k);
		struct bc_booking bo;
		struct bc_event eo;

		packer_reset(&pk, &b);
		mp_pack_booking(&pk, &bv);
		CHECK(decodes_whole(&b, &o) && mp_read_booking(&o, &bo) == 0 &&
		      booking_equal(&bv, &bo));
		packer_reset(&pk, &b);
		mp_pack_event(&pk, &ev);
		CHECK(decodes_whole(&b, &o) && mp_read_event(&o, &eo) == 0 &&
		      event_equal(&ev, &eo));
	}

	/* The fields a booking has only sometimes: late, waitlist_expired,
	 * a hold's PaymentIntent (bin_render.c); absent, they read empty. */
	{
		struct core_booking_view bv = sample_booking(1);
		struct bc_booking bo;

		bv.late = true;
		packer_reset(&pk, &b);
		mp_pack_booking_paid(&pk, &bv, "pi_3Nx", "pi_3Nx_secret_abc");
		CHECK(decodes_whole(&b, &o) && mp_read_booking(&o, &bo) == 0 &&
		      booking_equal(&bv, &bo));
		CHECK(bo.late && strcmp(bo.payment_intent_id, "pi_3Nx") == 0 &&
		      strcmp(bo.client_secret, "pi_3Nx_secret_abc") == 0);
		bv.late = false;
		bv.status = CORE_BOOKING_WAITLIST_EXPIRED;
		packer_reset(&pk, &b);
		mp_pack_booking(&pk, &bv);
		CHECK(decodes_whole(&b, &o) && mp_read_booking(&o, &bo) == 0);
		CHECK(bo.status == BC_BOOKING_WAITLIST_EXPIRED && !bo.late &&
		      bo.payment_intent_id[0] == '\0' &&
		      bo.client_secret[0] == '\0');
		CHECK(strcmp(mp_booking_status_name(bo.status),
			     "waitlist_expired") == 0);
	}

	/* A cancel answer as bin.c writes it, framed. */
	struct core_booking_view bk = sample_booking(3), pr = sample_booking(2);
	size_t start;
	packer_reset(&pk, &b);
	start = mp_frame_begin(&pk, b.size);
	msgpack_pack_map(&pk, 5);
	mp_pack_kv_uint(&pk, "id", UINT64_MAX);
	mp_pack_kv_str(&pk, "code", "ok");
	mp_pack_str(&pk, "booking");
	mp_pack_booking(&pk, &bk);
	mp_pack_str(&pk, "promoted");
	mp_pack_booking(&pk, &pr);
	mp_pack_str(&pk, "replayed");
	msgpack_pack_true(&pk);
	CHECK(mp_frame_end(b.data, start, b.size) == 0);
	for (size_t n = 0; n < b.size; n++)
		CHECK(mp_frame_size(g(b.data, n), n) == -2);
	CHECK(mp_frame_size(g(b.data, b.size), b.size) == (long)b.size);
	CHECK(decode(b.data + 4, b.size - 4, &o) == 0);
	CHECK(mp_read_answer(&o, &a, events, 4, bookings, 4) == 0);
	CHECK(a.req_id == UINT64_MAX && a.code == BC_OK && a.replayed);
	CHECK(strcmp(a.code_name, "ok") == 0 && a.index == -1);
	CHECK(a.has_booking && booking_equal(&bk, &a.booking));
	CHECK(a.has_promoted && booking_equal(&pr, &a.promoted));
	CHECK(!a.has_event && a.event_count == 0);

	/* A list answer; more events than the reader's room is refused. */
	packer_reset(&pk, &b);
	msgpack_pack_map(&pk, 5);
	mp_pack_kv_uint(&pk, "id", 9);
	mp_pack_kv_str(&pk, "code", "ok");
	mp_pack_str(&pk, "events");
	msgpack_pack_array(&pk, 5);
	for (unsigned k = 0; k < 5; k++) {
		struct core_event_view v = sample_event(k);
		mp_pack_event(&pk, &v);
	}
	mp_pack_str(&pk, "more");
	msgpack_pack_true(&pk);
	mp_pack_kv_str(&pk, "next_cursor", "1764090000000.104");
	CHECK(decode(b.data, b.size, &o) == 0);
	CHECK(mp_read_answer(&o, &a, events, BC_LIST_LIMIT_MAX, bookings,
			     BC_LIST_LIMIT_MAX) == 0);
	CHECK(a.event_count == 5 && a.more && a.events == events);
	CHECK(strcmp(a.next_cursor, "1764090000000.104") == 0);
	for (unsigned k = 0; k < 5; k++) {
		struct core_event_view v = sample_event(k);
		CHECK(event_equal(&v, &a.events[k]));
	}
	CHECK(mp_read_answer(&o, &a, events, 4, bookings, 4) == -EINVAL);

	/* An error answer of a batch item. */
	packer_reset(&pk, &b);
	msgpack_pack_map(&pk, 6);
	mp_pack_kv_uint(&pk, "id", 5);
	mp_pack_kv_uint(&pk, "index", 3);
	mp_pack_kv_uint(&pk, "count", 4);
	mp_pack_kv_str(&pk, "code", "rate_limited");
	mp_pack_kv_str(&pk, "message", "slow down");
	mp_pack_kv_uint(&pk, "retry_after", 2);
	CHECK(decode(b.data, b.size, &o) == 0);
	CHECK(mp_read_answer(&o, &a, events, 4, bookings, 4) == 0);
	CHECK(a.code == BC_RATE_LIMITED && a.index == 3 && a.count == 4);
	CHECK(a.retry_after_s == 2 && strcmp(a.message, "slow down") == 0);
	buf_free(&b);
}

/* Answers with a wrong type somewhere: -EINVAL, never a crash. */
static void test_wrong_types(void)
{
	static struct bc_event events[4];
	static struct bc_booking bookings[4];
	static const char *const bad[] = {
		"code", /* code missing entirely: see below */
		"id:str",
		"index:str",
		"index:big",
		"count:neg",
		"code:int",
		"code:long",
		"message:int",
		"replayed:int",
		"booking:int",
		"booking.id:str",
		"booking.id:zero",
		"booking.customer_id:long",
		"booking.status:int",
		"event:arr",
		"event.capacity:big",
		"event.title:long",
		"events:map",
		"bookings:int",
		"status:str",
		"org:int",
		"org.id:neg",
		"customer.id:int",
		"retry_after:big",
		"more:str",
		"generated:neg",
	};
	struct buf b = { 0 };
	msgpack_packer pk;
	msgpack_object o;
	struct bc_answer a;
	char longs[300];

	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		const char *w = bad[k];
		packer_reset(&pk, &b);
		if (k == 0) {
			msgpack_pack_map(&pk, 1);
			mp_pack_kv_uint(&pk, "id", 1);
		} else {
			bool id_bad = strncmp(w, "id:", 3) == 0;
			msgpack_pack_map(&pk, id_bad ? 2 : 3);
			if (!id_bad)
				mp_pack_kv_uint(&pk, "id", 1);
			if (strncmp(w, "code:", 5) != 0) {
				mp_pack_kv_str(&pk, "code", "ok");
			} else {
				mp_pack_kv_str(&pk, "message", "m");
			}
			const char *colon = strchr(w, ':'),
				   *dot = strchr(w, '.');
			char key[32];
			size_t kn =
				(size_t)((dot && dot < colon ? dot : colon) -
					 w);
			memcpy(key, w, kn);
			key[kn] = '\0';
			mp_pack_str(&pk, key);
			if (dot && dot < colon) { /* a field inside an object */
				char sub[32];
				size_t sn = (size_t)(colon - dot - 1);
				memcpy(sub, dot + 1, sn);
				sub[sn] = '\0';
				msgpack_pack_map(&pk, 1);
				mp_pack_str(&pk, sub);
			}
			const char *t = colon + 1;
			if (strcmp(t, "str") == 0)
				mp_pack_str(&pk, "x");
			else if (strcmp(t, "int") == 0)
				msgpack_pack_int(&pk, 5);
			else if (strcmp(t, "big") == 0)
				msgpack_pack_uint64(&pk, UINT64_MAX);
			else if (strcmp(t, "neg") == 0)
				msgpack_pack_int(&pk, -1);
			else if (strcmp(t, "zero") == 0)
				msgpack_pack_int(&pk, 0);
			else if (strcmp(t, "long") == 0)
				mp_pack_str(&pk, longs);
			else if (strcmp(t, "arr") == 0)
				msgpack_pack_array(&pk, 0);
			else if (strcmp(t, "map") == 0)
				msgpack_pack_map(&pk, 0);
		}
		CHECK(!b.broken);
		CHECK(decode(b.data, b.size, &o) == 0);
		int rc = mp_read_answer(&o, &a, events, 4, bookings, 4);
		if (rc != -EINVAL)
			fprintf(stderr, "accepted: %s\n", w);
		CHECK(rc == -EINVAL);
	}
	buf_free(&b);

	/* A status this client does not know is "unknown", not an error. */
	packer_reset(&pk, &b);
	msgpack_pack_map(&pk, 2);
	mp_pack_kv_uint(&pk, "id", 77);
	mp_pack_kv_str(&pk, "status", "teleported");
	struct bc_booking bk;
	CHECK(decode(b.data, b.size, &o) == 0);
	CHECK(mp_read_booking(&o, &bk) == 0 && bk.status == BC_BOOKING_UNKNOWN);
	buf_free(&b);
}

/* Random bytes and mutated answers: the decoder and the reader never crash
 * (ASan) and never accept a truncated body. */
static void test_random(uint64_t seed)
{
	static struct bc_event events[8];
	static struct bc_booking bookings[8];
	uint64_t x = seed | 1;
	struct buf b = { 0 };
	msgpack_packer pk;
	msgpack_object o;
	struct bc_answer a;
	struct core_booking_view bk = sample_booking(1);
	struct core_event_view ev = sample_event(1);

	msgpack_packer_init(&pk, &b, mp_buf_write);
	msgpack_pack_map(&pk, 5);
	mp_pack_kv_uint(&pk, "id", 1);
	mp_pack_kv_str(&pk, "code", "ok");
	mp_pack_str(&pk, "booking");
	mp_pack_booking(&pk, &bk);
	mp_pack_str(&pk, "events");
	msgpack_pack_array(&pk, 2);
	mp_pack_event(&pk, &ev);
	mp_pack_event(&pk, &ev);
	mp_pack_kv_str(&pk, "next_cursor", "1.2");
	uint8_t *orig = malloc(b.size), *m = malloc(b.size + 64);
	size_t size = b.size;
	memcpy(orig, b.data, size);
	for (unsigned r = 0; r < RANDOM_ROUND_COUNT; r++) {
		size_t n = size;
		memcpy(m, orig, size);
		unsigned flips = 1 + (unsigned)(x % 4);
		for (unsigned f = 0; f < flips; f++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			m[x % n] = (uint8_t)(x >> 32);
		}
		if (r % 5 == 0)
			n = (size_t)(x % n) + 1;
		if (decode(m, n, &o) == 0)
			(void)mp_read_answer(&o, &a, events, 8, bookings, 8);
	}
	free(orig);
	free(m);
	buf_free(&b);
}

int main(void)
{
	const char *env = getenv("PROTO_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);

	printf("proto: seed %" PRIu64 " (PROTO_TEST_SEED)\n", seed);
	guard_init(GUARD_SIZE);
	zone = msgpack_zone_new(MP_ZONE_CHUNK_SIZE);
	if (!zone)
		return 1;
	test_frames();
	test_decode();
	test_accessors();
	test_objects();
	test_wrong_types();
	test_random(seed);
	msgpack_zone_free(zone);
	printf("proto: %u checks, %u failed\n", check_count, check_fail_count);
	return check_fail_count ? 1 : 0;
}
