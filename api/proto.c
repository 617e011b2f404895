/*
 * proto.c: the binary protocol's encoding (docs/protocol.md), shared by the
 * server (bin.c) and the client library (client/client.c).
 *
 * Frame: u32 big-endian body size, then one msgpack map of that size; the
 * frame with its header is at most MP_FRAME_SIZE_MAX.
 *
 * Decoding: msgpack-c builds the object tree in a caller's zone. It would
 * allocate an array's or map's elements from the count in the bytes, before
 * reading them, so mp_decode first walks the bytes (mp__check): every
 * container's count must fit the bytes left (an element is at least one
 * byte), every string and bin its length, nesting at most MP_DEPTH_MAX.
 * The tree is then at most ~24 bytes per input byte. msgpack_unpack (not
 * msgpack_unpack_next, which makes a new zone per value) decodes into the
 * caller's zone, cleared between frames, so a steady stream of small frames
 * allocates nothing. Accessors check every type; strings are copied only
 * into buffers that hold them.
 *
 * Encoding: through a msgpack_packer with the caller's write callback.
 */
#include "proto.h"
#include "bookd_assert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MP_DEPTH_MAX 32 /* msgpack-c's own stack holds 32 levels */

_Static_assert((int)BC_BOOKING_CONFIRMED == (int)CORE_BOOKING_CONFIRMED, "st");
_Static_assert((int)BC_BOOKING_PAYMENT_FAILED ==
		       (int)CORE_BOOKING_PAYMENT_FAILED,
	       "st");
_Static_assert((int)BC_BOOKING_WAITLIST_EXPIRED ==
		       (int)CORE_BOOKING_WAITLIST_EXPIRED,
	       "st");
_Static_assert(BC_PAY_REF_SIZE >= CORE_PAY_REF_SIZE_MAX, "pay ref");
_Static_assert((int)BC_EVENT_CANCELLED == (int)CORE_EVENT_CANCELLED, "st");
_Static_assert((int)BC_PAY_STRIPE == (int)CORE_PAY_STRIPE, "pay");

static const char *const op_names[MP_OP_COUNT] = {
	[MP_OP_NONE] = "",
	[MP_OP_ORG_CREATE] = "org.create",
	[MP_OP_LOCATION_CREATE] = "location.create",
	[MP_OP_INSTRUCTOR_CREATE] = "instructor.create",
	[MP_OP_CUSTOMER_CREATE] = "customer.create",
	[MP_OP_SERIES_CREATE] = "series.create",
	[MP_OP_GENERATE] = "generate",
	[MP_OP_EVENT_GET] = "event.get",
	[MP_OP_EVENT_LIST] = "event.list",
	[MP_OP_EVENT_PATCH] = "event.patch",
	[MP_OP_BOOK] = "book",
	[MP_OP_BOOK_BATCH] = "book.batch",
	[MP_OP_CANCEL] = "cancel",
	[MP_OP_BOOKING_GET] = "booking.get",
	[MP_OP_CUSTOMER_BOOKINGS] = "customer.bookings",
	[MP_OP_STATUS] = "status",
	[MP_OP_ORG_PATCH] = "org.patch",
	[MP_OP_ORG_GET] = "org.get",
	[MP_OP_ORG_LIST] = "org.list",
	[MP_OP_LOCATION_GET] = "location.get",
	[MP_OP_LOCATION_LIST] = "location.list",
	[MP_OP_INSTRUCTOR_GET] = "instructor.get",
	[MP_OP_INSTRUCTOR_LIST] = "instructor.list",
	[MP_OP_SERIES_GET] = "series.get",
	[MP_OP_SERIES_LIST] = "series.list",
	[MP_OP_SERIES_PATCH] = "series.patch",
	[MP_OP_SERIES_END] = "series.end",
};

const char *mp_op_name(enum mp_op op)
{
	if ((unsigned)op >= MP_OP_COUNT)
		return "";
	return op_names[op];
}

enum mp_op mp_op_from(const msgpack_object *o)
{
	const char *s;
	size_t n;
	uint64_t v;

	if (!o)
		return MP_OP_NONE;
	if (mp_uint(o, &v) == 0)
		return v > 0 && v < MP_OP_COUNT ? (enum mp_op)v : MP_OP_NONE;
	if (mp_str(o, &s, &n) != 0)
		return MP_OP_NONE;
	for (unsigned i = 1; i < MP_OP_COUNT; i++)
		if (strlen(op_names[i]) == n && memcmp(op_names[i], s, n) == 0)
			return (enum mp_op)i;
	return MP_OP_NONE;
}

/* ---- Frames and decoding ---- */

long mp_frame_size(const uint8_t *in, size_t len)
{
	uint32_t body;

	if (len < MP_HEADER_SIZE)
		return -2;
	body = mp_be32_get(in);
	if (body == 0 || body > MP_BODY_SIZE_MAX)
		return -1;
	if (len - MP_HEADER_SIZE < body)
		return -2;
	ASSERT(MP_HEADER_SIZE + (size_t)body <= len); /* a whole frame */
	return (long)(MP_HEADER_SIZE + body);
}

static uint64_t be_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	ASSERT(n <= 8);
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Bytes of the value at p[0..n), or -1. Containers: their count checked
 * against the bytes left before anything is walked. */
static long mp__check(const uint8_t *p, size_t n, int depth)
{
	uint8_t t;
	uint64_t len = 0, count = 0;
	size_t head = 1;
	bool container = false, is_map = false;

	if (n == 0 || depth > MP_DEPTH_MAX)
		return -1;
	t = p[0];
	if (t <= 0x7f || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3 && t != 0xc1))
		return 1;
	if (t >= 0x80 && t <= 0x8f) {
		container = is_map = true;
		count = t & 0x0f;
	} else if (t >= 0x90 && t <= 0x9f) {
		container = true;
		count = t & 0x0f;
	} else if (t >= 0xa0 && t <= 0xbf) {
		len = t & 0x1f;
	} else {
		switch (t) {
		case 0xc4:
		case 0xc5:
		case 0xc6: /* bin 8/16/32 */
		case 0xd9:
		case 0xda:
		case 0xdb: { /* str 8/16/32 */
			unsigned w = (t == 0xc4 || t == 0xd9)	? 1
				     : (t == 0xc5 || t == 0xda) ? 2
								: 4;
			if (n < 1 + w)
				return -1;
			len = be_get(p + 1, w);
			head = 1 + w;
			break;
		}
		case 0xc7:
		case 0xc8:
		case 0xc9: { /* ext 8/16/32 */
			unsigned w = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
			if (n < 1 + w + 1)
				return -1;
			len = be_get(p + 1, w);
			head = 1 + w + 1;
			break;
		}
		case 0xca: len = 4; break;
		case 0xcb: len = 8; break;
		case 0xcc:
		case 0xd0: len = 1; break;
		case 0xcd:
		case 0xd1: len = 2; break;
		case 0xce:
		case 0xd2: len = 4; break;
		case 0xcf:
		case 0xd3: len = 8; break;
		case 0xd4: len = 2; break; /* fixext: type + data */
		case 0xd5: len = 3; break;
		case 0xd6: len = 5; break;
		case 0xd7: len = 9; break;
		case 0xd8: len = 17; break;
		case 0xdc:
		case 0xdd:
		case 0xde:
		case 0xdf: {
			unsigned w = (t == 0xdc || t == 0xde) ? 2 : 4;
			if (n < 1 + w)
				return -1;
			count = be_get(p + 1, w);
			head = 1 + w;
			container = true;
			is_map = t >= 0xde;
			break;
		}
		default: /* 0xc1 */ return -1;
		}
	}
	if (head > n)
		return -1;
	if (!container) {
		if (len > n - head)
			return -1;
		return (long)(head + len);
	}
	if (is_map) {
		if (count > (n - head) / 2)
			return -1;
		count *= 2;
	} else if (count > n - head) {
		return -1;
	}
	size_t at = head;
	for (uint64_t i = 0; i < count; i++) {
		long k = mp__check(p + at, n - at, depth + 1);
		if (k < 0)
			return -1;
		at += (size_t)k;
	}
	ASSERT(at <= n); /* each element was checked against what is left */
	return (long)at;
}

int mp_decode(msgpack_zone *zone, const uint8_t *body, size_t size,
	      msgpack_object *out)
{
	size_t off = 0;
	long k;

	ASSERT(zone);
	if (size == 0 || size > MP_BODY_SIZE_MAX)
		return -EINVAL;
	k = mp__check(body, size, 1);
	if (k < 0 || (size_t)k != size)
		return -EINVAL;
	switch (msgpack_unpack((const char *)body, size, &off, zone, out)) {
	case MSGPACK_UNPACK_SUCCESS: break;
	case MSGPACK_UNPACK_NOMEM_ERROR: return -ENOMEM;
	default: return -EINVAL;
	}
	if (off != size)
		return -EINVAL;
	return 0;
}

int mp_frame_id(msgpack_zone *zone, const uint8_t *body, size_t size,
		uint64_t *id)
{
	msgpack_object o;
	long k;

	ASSERT(zone);
	if (size == 0 || size > MP_BODY_SIZE_MAX)
		return -EINVAL;
	k = mp__check(body, size, 1);
	if (k <= 0 || (size_t)k >= size)
		return -EINVAL; /* malformed, or whole (not trailing bytes) */
	if (mp_decode(zone, body, (size_t)k, &o) != 0 ||
	    o.type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
	return mp_id(mp_get(&o, "id"), id);
}

/* ---- Reading ---- */

static bool key_is(const msgpack_object *k, const char *key, size_t key_size)
{
	if (k->type == MSGPACK_OBJECT_STR)
		return k->via.str.size == key_size &&
		       memcmp(k->via.str.ptr, key, key_size) == 0;
	return false;
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	size_t key_size = strlen(key);

	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (key_is(&kv->key, key, key_size))
			return kv->val.type == MSGPACK_OBJECT_NIL ? NULL
								  : &kv->val;
	}
	return NULL;
}

int mp_uint(const msgpack_object *o, uint64_t *out)
{
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -EINVAL;
	*out = o->via.u64;
	return 0;
}

int mp_int(const msgpack_object *o, int64_t *out)
{
	if (!o)
		return -EINVAL;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= (uint64_t)INT64_MAX) {
		*out = (int64_t)o->via.u64;
		return 0;
	}
	return -EINVAL;
}

int mp_id(const msgpack_object *o, uint64_t *out)
{
	const char *s;
	size_t n;
	uint64_t v = 0;

	if (mp_uint(o, &v) == 0) {
		if (v == 0)
			return -EINVAL;
		*out = v;
		return 0;
	}
	if (mp_str(o, &s, &n) != 0 || n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int mp_bool(const msgpack_object *o, bool *out)
{
	if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
		return -EINVAL;
	*out = o->via.boolean;
	return 0;
}

int mp_str(const msgpack_object *o, const char **s, size_t *n)
{
	if (!o)
		return -EINVAL;
	if (o->type == MSGPACK_OBJECT_STR) {
		*s = o->via.str.ptr;
		*n = o->via.str.size;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		*s = o->via.bin.ptr;
		*n = o->via.bin.size;
		return 0;
	}
	return -EINVAL;
}

int mp_str_copy(const msgpack_object *o, char *dst, size_t cap)
{
	const char *s;
	size_t n;

	ASSERT(cap > 0);
	if (mp_str(o, &s, &n) != 0 || n >= cap || memchr(s, 0, n))
		return -EINVAL;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int mp_get_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
	const msgpack_object *o = mp_get(map, key);

	return o ? mp_uint(o, out) : 0;
}

int mp_get_id(const msgpack_object *map, const char *key, uint64_t *out)
{
	const msgpack_object *o = mp_get(map, key);

	return o ? mp_id(o, out) : 0;
}

int mp_get_str_copy(const msgpack_object *map, const char *key, char *dst,
		    size_t cap)
{
	const msgpack_object *o = mp_get(map, key);

	return o ? mp_str_copy(o, dst, cap) : 0;
}

static int get_u32(const msgpack_object *map, const char *key, uint32_t *out)
{
	uint64_t v = 0;

	if (mp_get_uint(map, key, &v) != 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int get_i64(const msgpack_object *map, const char *key, int64_t *out)
{
	const msgpack_object *o = mp_get(map, key);

	return o ? mp_int(o, out) : 0;
}

/* ---- Writing ---- */

int mp_buf_write(void *data, const char *buf, size_t len)
{
	struct buf *b = data;

	buf_put(b, buf, len);
	return b->broken ? -1 : 0;
}

size_t mp_frame_begin(msgpack_packer *pk, size_t size_now)
{
	static const char zero[MP_HEADER_SIZE];

	pk->callback(pk->data, zero, sizeof(zero));
	return size_now;
}

int mp_frame_end(uint8_t *data, size_t frame_start, size_t size_now)
{
	size_t body;

	ASSERT(size_now >= frame_start + MP_HEADER_SIZE);
	body = size_now - frame_start - MP_HEADER_SIZE;
	if (body == 0 || body > MP_BODY_SIZE_MAX)
		return -EMSGSIZE;
	mp_be32_put(data + frame_start, (uint32_t)body);
	ASSERT(mp_be32_get(data + frame_start) ==
	       body); /* mp_frame_size's view */
	return 0;
}

#define NAME_AT(value, name) [value] = name,
static const char *const booking_status_names[] = {
	[CORE_BOOKING_NONE] = "unknown",
	CORE_BOOKING_STATUS_NAMES(NAME_AT) /* as core_booking_status_name */
};
#undef NAME_AT
#define BOOKING_STATUS_COUNT                                                   \
	(sizeof(booking_status_names) / sizeof(booking_status_names[0]))

static const char *const event_status_names[] = {
	"unknown",
	"scheduled",
	"cancelled",
};
#define EVENT_STATUS_COUNT                                                     \
	(sizeof(event_status_names) / sizeof(event_status_names[0]))

const char *mp_booking_status_name(unsigned status)
{
	return status < BOOKING_STATUS_COUNT ? booking_status_names[status]
					     : "unknown";
}

const char *mp_event_status_name(unsigned status)
{
	return status < EVENT_STATUS_COUNT ? event_status_names[status]
					   : "unknown";
}

void mp_pack_booking(msgpack_packer *pk, const struct core_booking_view *b)
{
	mp_pack_booking_paid(pk, b, NULL, NULL);
}

void mp_pack_booking_paid(msgpack_packer *pk, const struct core_booking_view *b,
			  const char *intent_id, const char *client_secret)
{
	bool waiting = b->status == CORE_BOOKING_WAITLISTED && b->position;
	bool hold = b->hold_expires_at != 0;
	bool pay = intent_id && client_secret;

	msgpack_pack_map(pk, 5 + waiting + hold + 2 * pay + b->late);
	mp_pack_kv_uint(pk, "id", b->id);
	mp_pack_kv_uint(pk, "event_id", b->event_id);
	mp_pack_str(pk, "customer_id");
	mp_pack_strn(pk, b->customer_id,
		     strnlen(b->customer_id, sizeof(b->customer_id)));
	mp_pack_kv_str(pk, "status", mp_booking_status_name(b->status));
	if (waiting)
		mp_pack_kv_uint(pk, "position", b->position);
	if (hold)
		mp_pack_kv_int(pk, "hold_expires_at", b->hold_expires_at);
	mp_pack_kv_int(pk, "created_at", b->created_at);
	if (pay) {
		mp_pack_kv_str(pk, "payment_intent_id", intent_id);
		mp_pack_kv_str(pk, "client_secret", client_secret);
	}
	if (b->late) { /* a cancel inside the org's cut-off: only when so */
		mp_pack_str(pk, "late");
		msgpack_pack_true(pk);
	}
}

void mp_pack_event(msgpack_packer *pk, const struct core_event_view *e)
{
	uint32_t taken = e->booked + e->held;

	msgpack_pack_map(pk, 18);
	mp_pack_kv_uint(pk, "id", e->id);
	mp_pack_kv_uint(pk, "series_id", e->series_id);
	mp_pack_kv_uint(pk, "org_id", e->org_id);
	mp_pack_kv_uint(pk, "location_id", e->location_id);
	mp_pack_kv_uint(pk, "instructor_id", e->instructor_id);
	mp_pack_str(pk, "title");
	mp_pack_strn(pk, e->title, strnlen(e->title, sizeof(e->title)));
	mp_pack_kv_int(pk, "start_at", e->start_at);
	mp_pack_kv_uint(pk, "duration_min", e->duration_min);
	mp_pack_kv_uint(pk, "capacity", e->capacity);
	mp_pack_kv_uint(pk, "booked", e->booked);
	mp_pack_kv_uint(pk, "held", e->held);
	mp_pack_kv_uint(pk, "available",
			e->capacity > taken ? e->capacity - taken : 0);
	mp_pack_kv_uint(pk, "waitlist_length", e->waitlist_length);
	mp_pack_kv_uint(pk, "waitlist_capacity", e->waitlist_capacity);
	mp_pack_kv_uint(pk, "price_cents", e->price_cents);
	mp_pack_str(pk, "currency");
	mp_pack_strn(pk, e->currency,
		     strnlen(e->currency, sizeof(e->currency)));
	mp_pack_kv_str(pk, "status", mp_event_status_name(e->status));
	mp_pack_kv_uint(pk, "version", e->version);
}

/* ---- The client's side ---- */

/* The map's "status" by its name in names[]: absent, or a name not in it,
 * is 0 ("unknown"). */
static int status_from(const msgpack_object *map, const char *const *names,
		       unsigned count, unsigned *out)
{
	const msgpack_object *o = mp_get(map, "status");
	const char *s;
	size_t n;

	ASSERT(count >= 2); /* 0 is "unknown", never read */
	*out = 0;
	if (!o)
		return 0;
	if (mp_str(o, &s, &n) != 0)
		return -EINVAL;
	for (unsigned i = 1; i < count; i++)
		if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) {
			*out = i;
			return 0;
		}
	return 0; /* a newer server's status: unknown, not an error */
}

/* out cleared; o must be a map. */
static int map_begin(const msgpack_object *o, void *out, size_t size)
{
	memset(out, 0, size);
	return o && o->type == MSGPACK_OBJECT_MAP ? 0 : -EINVAL;
}

int mp_read_booking(const msgpack_object *o, struct bc_booking *out)
{
	unsigned status;

	if (map_begin(o, out, sizeof(*out)) || mp_get_id(o, "id", &out->id) ||
	    mp_get_id(o, "event_id", &out->event_id) ||
	    mp_get_str_copy(o, "customer_id", out->customer_id,
			    sizeof(out->customer_id)) ||
	    get_u32(o, "position", &out->position) ||
	    get_i64(o, "hold_expires_at", &out->hold_expires_at) ||
	    get_i64(o, "created_at", &out->created_at) ||
	    mp_get_str_copy(o, "payment_intent_id", out->payment_intent_id,
			    sizeof(out->payment_intent_id)) ||
	    mp_get_str_copy(o, "client_secret", out->client_secret,
			    sizeof(out->client_secret)) ||
	    (mp_get(o, "late") && mp_bool(mp_get(o, "late"), &out->late)) ||
	    status_from(o, booking_status_names, BOOKING_STATUS_COUNT, &status))
		return -EINVAL;
	out->status = (enum bc_booking_status)status;
	return out->id ? 0 : -EINVAL;
}

int mp_read_event(const msgpack_object *o, struct bc_event *out)
{
	unsigned status;

	if (map_begin(o, out, sizeof(*out)) || mp_get_id(o, "id", &out->id) ||
	    mp_get_uint(o, "series_id", &out->series_id) ||
	    mp_get_uint(o, "org_id", &out->org_id) ||
	    mp_get_uint(o, "location_id", &out->location_id) ||
	    mp_get_uint(o, "instructor_id", &out->instructor_id) ||
	    mp_get_str_copy(o, "title", out->title, sizeof(out->title)) ||
	    get_i64(o, "start_at", &out->start_at) ||
	    get_u32(o, "duration_min", &out->duration_min) ||
	    get_u32(o, "capacity", &out->capacity) ||
	    get_u32(o, "booked", &out->booked) ||
	    get_u32(o, "held", &out->held) ||
	    get_u32(o, "available", &out->available) ||
	    get_u32(o, "waitlist_length", &out->waitlist_length) ||
	    get_u32(o, "waitlist_capacity", &out->waitlist_capacity) ||
	    get_u32(o, "price_cents", &out->price_cents) ||
	    mp_get_str_copy(o, "currency", out->currency,
			    sizeof(out->currency)) ||
	    mp_get_uint(o, "version", &out->version) ||
	    status_from(o, event_status_names, EVENT_STATUS_COUNT, &status))
		return -EINVAL;
	out->status = (enum bc_event_status)status;
	return out->id ? 0 : -EINVAL;
}

static int read_job(const msgpack_object *o, struct bc_job_info *out)
{
	const msgpack_object *a = mp_get(o, "active");

	if (map_begin(o, out, sizeof(*out)) ||
	    mp_get_str_copy(o, "name", out->name, sizeof(out->name)) ||
	    mp_get_str_copy(o, "schedule", out->schedule,
			    sizeof(out->schedule)) ||
	    (a && mp_bool(a, &out->active)) ||
	    mp_get_str_copy(o, "result", out->result, sizeof(out->result)) ||
	    get_i64(o, "last_run_at", &out->last_run_at) ||
	    mp_get_uint(o, "duration_us", &out->duration_us) ||
	    get_i64(o, "next_run_at", &out->next_run_at) ||
	    mp_get_uint(o, "runs", &out->runs) ||
	    mp_get_uint(o, "failures", &out->failures) ||
	    mp_get_str_copy(o, "message", out->message, sizeof(out->message)))
		return -EINVAL;
	return out->name[0] ? 0 : -EINVAL;
}

int mp_read_status(const msgpack_object *o, struct bc_status_info *out)
{
	const msgpack_object *lag, *jobs;

	if (map_begin(o, out, sizeof(*out)) ||
	    get_u32(o, "shard_count", &out->shard_count) ||
	    get_u32(o, "thread_count", &out->thread_count) ||
	    mp_get_uint(o, "conn_count", &out->conn_count) ||
	    mp_get_uint(o, "wal_appended_lsn", &out->wal_appended_lsn) ||
	    mp_get_uint(o, "wal_durable_lsn", &out->wal_durable_lsn) ||
	    mp_get_uint(o, "wal_sync_count", &out->wal_sync_count) ||
	    mp_get_uint(o, "wal_sync_us_avg", &out->wal_sync_us_avg) ||
	    mp_get_uint(o, "wal_sync_us_max", &out->wal_sync_us_max) ||
	    get_i64(o, "wal_error", &out->wal_error) ||
	    mp_get_str_copy(o, "repl_state", out->repl_state,
			    sizeof(out->repl_state)) ||
	    mp_get_uint(o, "repl_lag_records", &out->repl_lag_records) ||
	    mp_get_uint(o, "requests_total", &out->requests_total) ||
	    get_i64(o, "started_at", &out->started_at))
		return -EINVAL;
	lag = mp_get(o, "repl_lag_seconds");
	if (lag) {
		int64_t i;
		if (lag->type == MSGPACK_OBJECT_FLOAT64 ||
		    lag->type == MSGPACK_OBJECT_FLOAT32)
			out->repl_lag_seconds = lag->via.f64;
		else if (mp_int(lag, &i) == 0)
			out->repl_lag_seconds = (double)i;
		else
			return -EINVAL;
	}
	jobs = mp_get(o, "jobs"); /* absent from servers before jobs */
	if (jobs) {
		if (jobs->type != MSGPACK_OBJECT_ARRAY ||
		    jobs->via.array.size > BC_JOB_COUNT_MAX)
			return -EINVAL;
		for (uint32_t i = 0; i < jobs->via.array.size; i++)
			if (read_job(&jobs->via.array.ptr[i], &out->jobs[i]))
				return -EINVAL;
		out->job_count = jobs->via.array.size;
	}
	return 0;
}

static const char *const code_names[BC_CODE_COUNT] = {
	[BC_OK] = "ok",
	[BC_EVENT_FULL] = "event_full",
	[BC_ALREADY_BOOKED] = "already_booked",
	[BC_EVENT_NOT_BOOKABLE] = "event_not_bookable",
	[BC_NOT_FOUND] = "not_found",
	[BC_BOOKING_NOT_ACTIVE] = "booking_not_active",
	[BC_BOOKING_NOT_PENDING] = "booking_not_pending",
	[BC_PAYMENT_MISMATCH] = "payment_mismatch",
	[BC_CAPACITY_BELOW_TAKEN] = "capacity_below_taken",
	[BC_IDEMPOTENCY_KEY_REUSED] = "idempotency_key_reused",
	[BC_IDEMPOTENCY_KEY_IN_FLIGHT] = "idempotency_key_in_flight",
	[BC_IDEMPOTENCY_KEY_REQUIRED] = "idempotency_key_required",
	[BC_INVALID_REQUEST] = "invalid_request",
	[BC_UNAUTHORIZED] = "unauthorized",
	[BC_FORBIDDEN] = "forbidden",
	[BC_RATE_LIMITED] = "rate_limited",
	[BC_OVERLOADED] = "overloaded",
	[BC_UNAVAILABLE] = "unavailable",
	[BC_FRAME_TOO_LARGE] = "frame_too_large",
	[BC_UNSUPPORTED_VERSION] = "unsupported_version",
	[BC_INTERNAL] = "internal",
	[BC_TOKEN_EXPIRED] = "token_expired",
	[BC_EVENT_STARTED] = "event_started",
	[BC_OTHER] = "other",
};

const char *bc_code_name(int code)
{
	if (code < 0 || code >= BC_CODE_COUNT)
		return "other";
	return code_names[code];
}

int bc_code_from_name(const char *s, size_t n)
{
	for (int i = 0; i < BC_OTHER; i++)
		if (strlen(code_names[i]) == n &&
		    memcmp(code_names[i], s, n) == 0)
			return i;
	return BC_OTHER;
}

const char *bc_booking_status_name(enum bc_booking_status s)
{
	return mp_booking_status_name((unsigned)s);
}

const char *bc_event_status_name(enum bc_event_status s)
{
	return mp_event_status_name((unsigned)s);
}

static void pack_date(msgpack_packer *pk, const char *k, struct core_date d)
{
	char b[16];
	int n;

	mp_pack_str(pk, k);
	if (d.year == 0) {
		msgpack_pack_nil(pk);
		return;
	}
	n = snprintf(b, sizeof(b), "%04d-%02d-%02d", d.year, d.month, d.day);
	ASSERT(n == 10);
	mp_pack_strn(pk, b, (size_t)n);
}

static void pack_strz(msgpack_packer *pk, const char *k, const char *s,
		      size_t size)
{
	mp_pack_str(pk, k);
	mp_pack_strn(pk, s, strnlen(s, size));
}

void mp_pack_cat(msgpack_packer *pk, const struct core_cat_view *v)
{
	static const char *const day[7] = { "MO", "TU", "WE", "TH",
					    "FR", "SA", "SU" };
	const struct core_series_spec *s = &v->series;
	unsigned days = 0;
	char hhmm[8];

	if (v->kind != CORE_CAT_SERIES) {
		bool org = v->kind == CORE_CAT_ORG;
		msgpack_pack_map(pk, org ? 6 : 3);
		mp_pack_kv_uint(pk, "id", v->id);
		if (!org)
			mp_pack_kv_uint(pk, "org_id", v->org_id);
		pack_strz(pk, "name", v->name, sizeof(v->name));
		if (!org)
			return;
		pack_strz(pk, "timezone", v->timezone, sizeof(v->timezone));
		mp_pack_kv_uint(pk, "cancel_cutoff_hours",
				v->settings.cancel_cutoff_hours);
		mp_pack_str(pk, "hold_minutes");
		if (v->settings.hold_minutes)
			msgpack_pack_uint64(pk, v->settings.hold_minutes);
		else
			msgpack_pack_nil(pk); /* the server's own */
		mp_pack_str(pk, "horizon_days");
		if (v->settings.horizon_days)
			msgpack_pack_uint64(pk, v->settings.horizon_days);
		else
			msgpack_pack_nil(pk);
		return;
	}
	ASSERT(s->skip_count <= CORE_SKIP_DATE_COUNT_MAX);
	msgpack_pack_map(pk, 16);
	mp_pack_kv_uint(pk, "id", v->id);
	mp_pack_kv_uint(pk, "org_id", s->org_id);
	mp_pack_kv_uint(pk, "location_id", s->location_id);
	mp_pack_kv_uint(pk, "instructor_id", s->instructor_id);
	pack_strz(pk, "title", s->title, sizeof(s->title));
	mp_pack_kv_uint(pk, "capacity", s->capacity);
	mp_pack_kv_uint(pk, "waitlist_capacity", s->waitlist_capacity);
	mp_pack_kv_uint(pk, "price_cents", s->price_cents);
	pack_strz(pk, "currency", s->currency, sizeof(s->currency));
	pack_strz(pk, "timezone", s->timezone, sizeof(s->timezone));
	for (int i = 0; i < 7; i++)
		days += (s->weekday_mask >> i) & 1u;
	mp_pack_str(pk, "weekdays");
	msgpack_pack_array(pk, days);
	for (int i = 0; i < 7; i++)
		if (s->weekday_mask & (1u << i))
			mp_pack_str(pk, day[i]);
	snprintf(hhmm, sizeof(hhmm), "%02u:%02u", s->start_minute / 60u % 100u,
		 s->start_minute % 60u);
	mp_pack_kv_str(pk, "start_time", hhmm);
	mp_pack_kv_uint(pk, "duration_min", s->duration_min);
	pack_date(pk, "first_date", s->first_date);
	pack_date(pk, "last_date", s->last_date);
	mp_pack_str(pk, "skip_dates");
	msgpack_pack_array(pk, s->skip_count);
	for (uint32_t i = 0; i < s->skip_count; i++) {
		char b[16];
		int n = snprintf(b, sizeof(b), "%04d-%02d-%02d",
				 s->skip[i].year, s->skip[i].month,
				 s->skip[i].day);
		ASSERT(n == 10);
		mp_pack_strn(pk, b, (size_t)n);
	}
}

/* An array of strings at key joined with commas into dst (cap bytes). */
static int read_joined(const msgpack_object *map, const char *key, char *dst,
		       size_t cap)
{
	const msgpack_object *v = mp_get(map, key);
	size_t used = 0;

	dst[0] = '\0';
	if (!v)
		return 0;
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return -EINVAL;
	for (uint32_t i = 0; i < v->via.array.size; i++) {
		const char *s;
		size_t n;
		if (mp_str(&v->via.array.ptr[i], &s, &n) != 0 ||
		    used + (i > 0) + n >= cap)
			return -EINVAL;
		if (i > 0)
			dst[used++] = ',';
		memcpy(dst + used, s, n);
		used += n;
		dst[used] = '\0';
	}
	ASSERT(used < cap);
	return 0;
}

int mp_read_cat(const msgpack_object *o, enum bc_cat_kind kind,
		struct bc_cat *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	if (!o || o->type != MSGPACK_OBJECT_MAP ||
	    mp_get_id(o, "id", &out->id) || out->id == 0 ||
	    mp_get_id(o, "org_id", &out->org_id))
		return -EINVAL;
	if (kind != BC_CAT_SERIES)
		return mp_get_str_copy(o, "name", out->name,
				       sizeof(out->name)) ||
				       mp_get_str_copy(o, "timezone",
						       out->timezone,
						       sizeof(out->timezone)) ||
				       get_u32(o, "cancel_cutoff_hours",
					       &out->cancel_cutoff_hours) ||
				       get_u32(o, "hold_minutes",
					       &out->hold_minutes) ||
				       get_u32(o, "horizon_days",
					       &out->horizon_days)
			       ? -EINVAL
			       : 0;
	if (mp_get_str_copy(o, "title", out->name, sizeof(out->name)) ||
	    mp_get_str_copy(o, "timezone", out->timezone,
			    sizeof(out->timezone)) ||
	    mp_get_id(o, "location_id", &out->location_id) ||
	    mp_get_id(o, "instructor_id", &out->instructor_id) ||
	    get_u32(o, "capacity", &out->capacity) ||
	    get_u32(o, "waitlist_capacity", &out->waitlist_capacity) ||
	    get_u32(o, "price_cents", &out->price_cents) ||
	    get_u32(o, "duration_min", &out->duration_min) ||
	    mp_get_str_copy(o, "currency", out->currency,
			    sizeof(out->currency)) ||
	    mp_get_str_copy(o, "start_time", out->start_time,
			    sizeof(out->start_time)) ||
	    mp_get_str_copy(o, "first_date", out->first_date,
			    sizeof(out->first_date)) ||
	    mp_get_str_copy(o, "last_date", out->last_date,
			    sizeof(out->last_date)) ||
	    read_joined(o, "weekdays", out->weekdays, sizeof(out->weekdays)) ||
	    read_joined(o, "skip_dates", out->skip_dates,
			sizeof(out->skip_dates)))
		return -EINVAL;
	return 0;
}

/* The readers above with one signature, for read_opt and read_array. */
typedef int (*reader_fn)(const msgpack_object *o, void *out);

static int read_booking(const msgpack_object *o, void *out)
{
	return mp_read_booking(o, out);
}

static int read_event(const msgpack_object *o, void *out)
{
	return mp_read_event(o, out);
}

static int read_status(const msgpack_object *o, void *out)
{
	return mp_read_status(o, out);
}

/* The map's optional object at key, read into out; *has if it is there. */
static int read_opt(const msgpack_object *map, const char *key, reader_fn read,
		    void *out, bool *has)
{
	const msgpack_object *v = mp_get(map, key);

	if (!v)
		return 0;
	if (read(v, out))
		return -EINVAL;
	*has = true;
	return 0;
}

/* The map's optional array at key, each item read into items[] (at most
 * cap, each size bytes): 0 if absent, 1 with *count set, or -EINVAL. */
static int read_array(const msgpack_object *map, const char *key,
		      reader_fn read, void *items, size_t size, uint32_t cap,
		      uint32_t *count)
{
	const msgpack_object *v = mp_get(map, key);

	if (!v)
		return 0;
	if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > cap)
		return -EINVAL;
	for (uint32_t i = 0; i < v->via.array.size; i++)
		if (read(&v->via.array.ptr[i], (char *)items + i * size))
			return -EINVAL;
	*count = v->via.array.size;
	return 1;
}

/* An org answer's settings (org.create, org.patch), when it has them: nil
 * is 0 (the server's own). */
static int read_org_settings(const msgpack_object *org, struct bc_answer *out)
{
	static const char *const names[] = { "cancel_cutoff_hours",
					     "hold_minutes", "horizon_days" };
	int32_t *at[] = { &out->org_settings.cancel_cutoff_hours,
			  &out->org_settings.hold_minutes,
			  &out->org_settings.horizon_days };

	if (!mp_get(org, names[0]))
		return 0;
	for (unsigned i = 0; i < 3; i++) {
		const msgpack_object *v = mp_get(org, names[i]);
		uint64_t u = 0;

		if (v && v->type != MSGPACK_OBJECT_NIL &&
		    (mp_uint(v, &u) != 0 || u > UINT16_MAX))
			return -EINVAL;
		*at[i] = (int32_t)u;
	}
	out->has_org_settings = true;
	return 0;
}

int mp_read_answer(const msgpack_object *o, struct bc_answer *out,
		   struct bc_event *events, uint32_t event_cap,
		   struct bc_booking *bookings, uint32_t booking_cap)
{
	const msgpack_object *v;
	const char *s;
	size_t n;
	int64_t index = -1;
	uint64_t u = 0;
	int rc;

	ASSERT(events || event_cap == 0);
	ASSERT(bookings || booking_cap == 0);
	memset(out, 0, sizeof(*out));
	out->index = -1;
	if (!o || o->type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
	if (mp_get_uint(o, "id", &out->req_id) || get_i64(o, "index", &index) ||
	    index < -1 || index >= BC_BATCH_COUNT_MAX ||
	    get_u32(o, "count", &out->count) ||
	    mp_get_str_copy(o, "message", out->message, sizeof(out->message)))
		return -EINVAL;
	out->index = (int32_t)index;
	if (mp_str(mp_get(o, "code"), &s, &n) != 0 || n == 0 ||
	    n >= sizeof(out->code_name))
		return -EINVAL;
	memcpy(out->code_name, s, n);
	out->code = bc_code_from_name(s, n);
	if (mp_get_uint(o, "retry_after", &u) || u > UINT32_MAX)
		return -EINVAL;
	out->retry_after_s = (uint32_t)u;
	v = mp_get(o, "replayed");
	if (v && mp_bool(v, &out->replayed))
		return -EINVAL;
	if (read_opt(o, "booking", read_booking, &out->booking,
		     &out->has_booking) ||
	    read_opt(o, "promoted", read_booking, &out->promoted,
		     &out->has_promoted) ||
	    read_opt(o, "event", read_event, &out->event, &out->has_event) ||
	    read_opt(o, "status", read_status, &out->status, &out->has_status))
		return -EINVAL;
	static const char *const created[] = { "org", "location", "instructor",
					       "series" };
	/* (series.list's "series" is an array: bc_cat_list reads it) */
	for (unsigned i = 0; i < 4; i++)
		if ((v = mp_get(o, created[i])) &&
		    v->type != MSGPACK_OBJECT_ARRAY &&
		    (v->type != MSGPACK_OBJECT_MAP ||
		     mp_get_id(v, "id", &out->id)))
			return -EINVAL;
	if ((v = mp_get(o, "org")) && read_org_settings(v, out))
		return -EINVAL;
	if ((v = mp_get(o, "customer")) &&
	    (v->type != MSGPACK_OBJECT_MAP ||
	     mp_get_str_copy(v, "id", out->customer_id,
			     sizeof(out->customer_id))))
		return -EINVAL;
	if (get_u32(o, "generated", &out->generated) ||
	    mp_get_uint(o, "series_id", &out->series_id) ||
	    get_u32(o, "regenerated", &out->regenerated) ||
	    get_u32(o, "kept", &out->kept) ||
	    get_u32(o, "cancelled", &out->cancelled))
		return -EINVAL;
	v = mp_get(o, "more");
	if (v && mp_bool(v, &out->more))
		return -EINVAL;
	if (mp_get_str_copy(o, "next_cursor", out->next_cursor,
			    sizeof(out->next_cursor)))
		return -EINVAL;
	rc = read_array(o, "events", read_event, events, sizeof(*events),
			event_cap, &out->event_count);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->events = events;
	rc = read_array(o, "bookings", read_booking, bookings,
			sizeof(*bookings), booking_cap, &out->booking_count);
	if (rc < 0)
		return rc;
	if (rc > 0)
		out->bookings = bookings;
	return 0;
}
