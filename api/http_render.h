/*
 * http_render.h: what travels from a request to its answer (struct
 * http_ctx, copied by srv_submit) and the pieces both sides use: the list
 * cursor and the ETag hash. http_render.c renders the core's answers
 * (http_render); http_routes.c fills the context.
 */
#ifndef BOOKD_HTTP_RENDER_H
#define BOOKD_HTTP_RENDER_H

#include "http_req.h"
#include "http_write.h"
#include "srv.h"

#include <stdint.h>

#define HTTP_CACHE_CONTROL "public, max-age=5"
#define HTTP_CURSOR_SIZE 22 /* base64url of 16 bytes, unpadded */

enum {
	X_HEAD = 1 << 0,
	X_CLOSE = 1 << 1,
	X_KEEP_ALIVE_10 = 1 << 2,
	X_OWN = 1 << 3,	    /* the answer's booking must be customer's */
	X_SLOT = 1 << 4,    /* free the catalogue slot */
	X_INM_ANY = 1 << 5, /* If-None-Match: * */
	X_HEAP = 1 << 6, /* the slot is ctx.heap (allocated), not the conn's */
};

struct http_ctx {
	uint8_t op; /* enum op_id */
	uint8_t flags;
	uint8_t origin_size; /* 0: no CORS header */
	uint8_t inm_count;
	uint32_t limit;
	uint64_t inm[HTTP_INM_COUNT_MAX]; /* hashes of If-None-Match tags */
	struct http_cat_slot *heap;	  /* X_HEAP */
	char customer[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	char origin[HTTP_ORIGIN_SIZE_MAX];
	char request_id[HTTP_REQUEST_ID_SIZE_MAX + 1]; /* X-Request-Id */
};
_Static_assert(sizeof(struct http_ctx) <= SRV_CTX_SIZE_MAX, "ctx fits");

/* The events list's cursor: base64url of (after_start i64, after_id u64),
 * little-endian; decode gives -EINVAL for anything not made by encode. */
void http_cursor_encode(core_time start, uint64_t id,
			char out[HTTP_CURSOR_SIZE + 1]);
int http_cursor_decode(const char *s, size_t n, core_time *start, uint64_t *id);

/* The hash an entity tag is remembered by (If-None-Match). */
uint64_t http_tag_hash(const char *s, size_t n);

/* render() of srv_http_proto, given the connection's catalogue slot. */
void http_render(struct srv_conn *c, struct http_cat_slot *slot,
		 const void *ctx, int rc, const struct core_resp *resp,
		 const struct srv_views *views, struct buf *out);

#endif
