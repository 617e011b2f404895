/*
 * http_routes.h: from one parsed request to its answer (http_routes.c):
 * what http.c hands over (struct http_request, the connection's catalogue
 * slot) and the two calls it makes, http_route() and http_render().
 */
#ifndef BOOKD_HTTP_ROUTES_H
#define BOOKD_HTTP_ROUTES_H

#include "auth.h"
#include "core.h"
#include "http_write.h"
#include "srv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_hdr {
	HTTP_H_AUTHORIZATION = 0,
	HTTP_H_IDEMPOTENCY_KEY,
	HTTP_H_ORIGIN,
	HTTP_H_IF_NONE_MATCH,
	HTTP_H_STRIPE_SIGNATURE,
	HTTP_H_ACR_METHOD, /* Access-Control-Request-Method */
	HTTP_H_EXPECT,
	HTTP_H_TRANSFER_ENCODING, /* framing only (http.c) */
	HTTP_H_X_FORWARDED_FOR, /* several: the last one (http.c) */
	HTTP_H_COUNT
};

struct http_str {
	const char *p;
	size_t n;
};

struct http_request {
	unsigned method;      /* enum http_method (http_parser.h) */
	const char *method_name;
	struct http_str path; /* raw, before '?' */
	struct http_str query; /* raw, after '?' (may be empty) */
	struct http_str hdr[HTTP_H_COUNT];
	const uint8_t *body;
	size_t body_size;
	bool keep_alive;      /* the connection stays open after */
	bool http10;
};

/* The per-connection slot for the one catalogue request in flight: the
 * series spec the core reads through req.u.series, and what the answer
 * echoes. It lives in the connection's state, which outlives every
 * request in flight on it (net.c frees it only after the last answer). */
struct http_cat_slot {
	bool busy;
	char name[CORE_NAME_SIZE_MAX];
	char timezone[CORE_TZ_SIZE_MAX];
	char email[CORE_NAME_SIZE_MAX];
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	uint64_t org_id;
	struct core_series_spec series;
};

/* Handles one complete request: queues its answer or submits it.
 * 0: handled (keep going if keep_alive), -EAGAIN: srv_submit is full (the
 * request stays unparsed: the caller returns the bytes used before it;
 * net.c parses again once answers went out), -EPIPE: handled, close the
 * connection after its answer. */
int http_route(struct srv_conn *c, struct http_cat_slot *slot,
	       const struct http_request *rq);

/* render() of srv_http_proto, given the connection's catalogue slot. */
void http_render(struct srv_conn *c, struct http_cat_slot *slot,
		 const void *ctx, int rc, const struct core_resp *resp,
		 const struct srv_views *views, struct buf *out);

#endif
