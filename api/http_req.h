/*
 * http_req.h: what the HTTP adapter's parts hand each other about one
 * request (a header of types only, no code): the request as http.c parsed
 * it (struct http_request, for http_routes.c) and the connection's
 * catalogue slot (struct http_cat_slot, filled by http_routes.c, echoed by
 * http_render.c).
 */
#ifndef BOOKD_HTTP_REQ_H
#define BOOKD_HTTP_REQ_H

#include "core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The headers the adapter reads: each one's id and usual spelling (http.c
 * compares it without regard to case and answers a second one "duplicate
 * <name> header", save X-Forwarded-For: several, the last one counts).
 * Transfer-Encoding is for framing only (http.c). */
#define HTTP_HDRS(X)                                                           \
	X(AUTHORIZATION, "Authorization")                                      \
	X(IDEMPOTENCY_KEY, "Idempotency-Key")                                  \
	X(ORIGIN, "Origin")                                                    \
	X(IF_NONE_MATCH, "If-None-Match")                                      \
	X(STRIPE_SIGNATURE, "Stripe-Signature")                                \
	X(ACR_METHOD, "Access-Control-Request-Method")                         \
	X(EXPECT, "Expect")                                                    \
	X(TRANSFER_ENCODING, "Transfer-Encoding")                              \
	X(X_FORWARDED_FOR, "X-Forwarded-For")                                  \
	X(X_REQUEST_ID, "X-Request-Id")

/* (clang-format takes the list's last comma for an operator) */
/* clang-format off */
enum http_hdr {
#define HTTP_H_ID(id, name) HTTP_H_##id,
	HTTP_HDRS(HTTP_H_ID)
#undef HTTP_H_ID
	HTTP_H_COUNT
};
/* clang-format on */

struct http_str {
	const char *p;
	size_t n;
};

struct http_request {
	unsigned method; /* enum http_method (http_parser.h) */
	const char *method_name;
	struct http_str path;  /* raw, before '?' */
	struct http_str query; /* raw, after '?' (may be empty) */
	struct http_str hdr[HTTP_H_COUNT];
	const uint8_t *body;
	size_t body_size;
	bool keep_alive; /* the connection stays open after */
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

#endif
