/*
 * proto.h: the binary protocol's encoding, shared by the server (bin.c) and
 * the client library (client/client.c) so that they cannot drift
 * (docs/protocol.md). Frames, op names, msgpack decoding with bounds and
 * typed accessors, and the objects both ways: core views packed by the
 * server, read back into the client's bc_ structs.
 *
 * Decoders never trust a length: every object is type-checked, strings are
 * copied only into buffers that fit them. Packers write through a
 * msgpack_packer whose callback the caller chooses (mp_buf_write into a
 * struct buf, buf.h, in the client and tests; bin.c's own on the server).
 */
#ifndef BOOKD_PROTO_H
#define BOOKD_PROTO_H

#include "bookd_client.h"
#include "buf.h"
#include "core.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MP_VERSION 1
#define MP_HEADER_SIZE 4
#define MP_FRAME_SIZE_MAX (1u << 20) /* header included */
#define MP_BODY_SIZE_MAX (MP_FRAME_SIZE_MAX - MP_HEADER_SIZE)
#define MP_BATCH_COUNT_MAX BC_BATCH_COUNT_MAX
#define MP_KEY_SIZE_MAX BC_KEY_SIZE_MAX
#define MP_ZONE_CHUNK_SIZE 8192

_Static_assert(BC_FRAME_SIZE_MAX == MP_FRAME_SIZE_MAX, "frame size");
_Static_assert(BC_LIST_LIMIT_MAX == CORE_LIST_LIMIT_MAX, "list limit");
_Static_assert(BC_CUSTOMER_ID_SIZE_MAX == CORE_CUSTOMER_ID_SIZE_MAX, "cust");

enum mp_op {
	MP_OP_NONE = 0,
	MP_OP_ORG_CREATE,
	MP_OP_LOCATION_CREATE,
	MP_OP_INSTRUCTOR_CREATE,
	MP_OP_CUSTOMER_CREATE,
	MP_OP_SERIES_CREATE,
	MP_OP_GENERATE,
	MP_OP_EVENT_GET,
	MP_OP_EVENT_LIST,
	MP_OP_EVENT_PATCH,
	MP_OP_BOOK,
	MP_OP_BOOK_BATCH,
	MP_OP_CANCEL,
	MP_OP_BOOKING_GET,
	MP_OP_CUSTOMER_BOOKINGS,
	MP_OP_STATUS,
	MP_OP_ORG_PATCH,
	MP_OP_ORG_GET,
	MP_OP_ORG_LIST,
	MP_OP_LOCATION_GET,
	MP_OP_LOCATION_LIST,
	MP_OP_INSTRUCTOR_GET,
	MP_OP_INSTRUCTOR_LIST,
	MP_OP_SERIES_GET,
	MP_OP_SERIES_LIST,
	MP_OP_SERIES_PATCH = 25, /* series.patch: a series from a date on */
	MP_OP_SERIES_END = 26,	 /* series.end: its last date */
	MP_OP_COUNT
};

const char *mp_op_name(enum mp_op op);
/* The "op" field: a name or a number. MP_OP_NONE when neither. */
enum mp_op mp_op_from(const msgpack_object *o);

/* ---- Frames ---- */

static inline void mp_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t mp_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The frame at in[0..len): its whole size (header + body) when complete,
 * -2 when more bytes are needed, -1 when its length is 0 or over
 * MP_BODY_SIZE_MAX (the stream cannot go on). */
long mp_frame_size(const uint8_t *in, size_t len);

/* Decodes a frame body that must hold exactly one msgpack value into *out,
 * allocating from zone (cleared by the caller between frames). 0, or
 * -EINVAL (malformed, truncated, trailing bytes, too deep), -ENOMEM. */
int mp_decode(msgpack_zone *zone, const uint8_t *body, size_t size,
	      msgpack_object *out);
/* For a body mp_decode refused: when it starts with one well-formed map
 * (trailing bytes after it) whose "id" is a request id, that id in *id and
 * 0 (the answer then carries the request's own id); else -EINVAL. */
int mp_frame_id(msgpack_zone *zone, const uint8_t *body, size_t size,
		uint64_t *id);

/* ---- Reading objects (all return 0 or -EINVAL on a wrong type) ---- */

/* The value of key in a map (NULL if absent, or if map is not a map). A
 * nil value counts as absent. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
int mp_uint(const msgpack_object *o, uint64_t *out);
int mp_int(const msgpack_object *o, int64_t *out);
/* A positive integer, or its decimal string. */
int mp_id(const msgpack_object *o, uint64_t *out);
int mp_bool(const msgpack_object *o, bool *out);
/* str or bin; points into the decoded object. */
int mp_str(const msgpack_object *o, const char **s, size_t *n);
/* Copies a string of at most cap - 1 bytes and NUL-terminates it; longer,
 * or with a NUL inside: -EINVAL. */
int mp_str_copy(const msgpack_object *o, char *dst, size_t cap);
/* Optional variants: absent leaves *out unchanged and returns 0. */
int mp_get_uint(const msgpack_object *map, const char *key, uint64_t *out);
int mp_get_id(const msgpack_object *map, const char *key, uint64_t *out);
int mp_get_str_copy(const msgpack_object *map, const char *key, char *dst,
		    size_t cap);

/* ---- Writing ---- */

/* A msgpack_packer write callback appending to a struct buf (buf.h: the
 * one buffer of the server, the client and the tests); -1 once broken. */
int mp_buf_write(void *data, const char *buf, size_t len);
/* Frames: reserve the header at data + size (returns its offset), pack the
 * body, then mp_frame_end writes the length (the body must be at most
 * MP_BODY_SIZE_MAX: -EMSGSIZE otherwise). */
size_t mp_frame_begin(msgpack_packer *pk, size_t size_now);
int mp_frame_end(uint8_t *data, size_t frame_start, size_t size_now);

/* Inline: a key given as a literal costs no strlen. */
static inline void mp_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static inline void mp_pack_str(msgpack_packer *pk, const char *s)
{
	mp_pack_strn(pk, s, strlen(s));
}

static inline void mp_pack_kv_str(msgpack_packer *pk, const char *k,
				  const char *v)
{
	mp_pack_str(pk, k);
	mp_pack_str(pk, v);
}

static inline void mp_pack_kv_uint(msgpack_packer *pk, const char *k,
				   uint64_t v)
{
	mp_pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

static inline void mp_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	mp_pack_str(pk, k);
	msgpack_pack_int64(pk, v);
}

/* Objects, as the server sends them. */
void mp_pack_booking(msgpack_packer *pk, const struct core_booking_view *b);
/* The same with the hold's PaymentIntent (both strings, or both NULL):
 * payment_intent_id and client_secret. */
void mp_pack_booking_paid(msgpack_packer *pk, const struct core_booking_view *b,
			  const char *intent_id, const char *client_secret);
void mp_pack_event(msgpack_packer *pk, const struct core_event_view *e);
/* A catalogue object: the HTTP JSON's fields (ids as integers, a series'
 * dates and times as strings, last_date nil when open ended). */
void mp_pack_cat(msgpack_packer *pk, const struct core_cat_view *v);

const char *mp_booking_status_name(unsigned status);
const char *mp_event_status_name(unsigned status);

/* ---- The client's side ---- */

int mp_read_booking(const msgpack_object *o, struct bc_booking *out);
int mp_read_event(const msgpack_object *o, struct bc_event *out);
int mp_read_status(const msgpack_object *o, struct bc_status_info *out);
int mp_read_cat(const msgpack_object *o, enum bc_cat_kind kind,
		struct bc_cat *out);
/* A whole answer (or hello answer) into out; lists into the caller's
 * arrays (at most their capacity: more is -EINVAL). 0 or -EINVAL. */
int mp_read_answer(const msgpack_object *o, struct bc_answer *out,
		   struct bc_event *events, uint32_t event_cap,
		   struct bc_booking *bookings, uint32_t booking_cap);

#endif
