/*
 * http_internal.h: the parts of the HTTP adapter (internal to api/http*.c).
 *
 *   http.c         framing: http-parser glue, the per-connection state,
 *                  limits, answers (status line, headers, body).
 *   http_routes.c  routing, auth, request bodies -> core_req, and render.
 *   http_json.c    the JSON writer (RFC 8259 escaping, UTF-8 checked) and
 *                  strict readers of request bodies (jansson).
 */
#ifndef BOOKD_HTTP_INTERNAL_H
#define BOOKD_HTTP_INTERNAL_H

#include "auth.h"
#include "core.h"
#include "srv.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_SIZE_MAX (16u << 10)  /* request line + headers: 431 */
#define HTTP_BODY_SIZE_MAX (64u << 10)  /* request body: 413 */
#define HTTP_BODY_SPAN_MAX 32           /* chunks of a chunked body */
#define HTTP_REQUEST_SIZE_MAX (128u << 10) /* all of one request: 413 */
#define HTTP_HEADER_COUNT_MAX 100       /* headers per request: 431 */
#define HTTP_OUT_BODY_MAX (1u << 20)    /* one answer's body */
#define HTTP_ORIGIN_SIZE_MAX 112        /* an Origin echoed after submit */
#define HTTP_INM_COUNT_MAX 4            /* If-None-Match tags remembered */
#define HTTP_IDEM_KEY_SIZE_MAX 255
#define HTTP_ERR_SIZE_MAX 160           /* an error message */

/* Our own invariants (never input): on in release builds too. */
#define HTTP_ASSERT(x)                                                       \
	do {                                                                 \
		if (!(x))                                                    \
			http_assert_fail(__FILE__, __LINE__, #x);            \
	} while (0)
_Noreturn void http_assert_fail(const char *file, int line, const char *what);

_Static_assert(HTTP_HEAD_SIZE_MAX + HTTP_BODY_SIZE_MAX < HTTP_REQUEST_SIZE_MAX,
	       "head and body fit a request");
_Static_assert(HTTP_REQUEST_SIZE_MAX < SRV_IN_SIZE_MAX,
	       "a request fits the network's input limit");

/* ---- the JSON writer: into a bounded buffer, never fails but overflows */

struct jw {
	char *p;
	size_t n, cap;
	bool overflow;
	uint32_t depth;
	uint32_t first; /* bit d: nothing written yet at depth d */
};

void jw_init(struct jw *w, char *buf, size_t cap);
void jw_raw(struct jw *w, const char *s, size_t n);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
/* A key inside an object (escaped); then one value. */
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s, size_t n); /* escaped, UTF-8 fixed */
void jw_cstr(struct jw *w, const char *s);          /* NULL: null */
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_double(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
void jw_id(struct jw *w, uint64_t id);        /* "123" (ids are strings) */
void jw_time(struct jw *w, core_time t);      /* RFC 3339 UTC */
void jw_date(struct jw *w, struct core_date d); /* "YYYY-MM-DD" or null */

void jw_event(struct jw *w, const struct core_event_view *e);
void jw_booking(struct jw *w, const struct core_booking_view *b);
void jw_series(struct jw *w, uint64_t id, const struct core_series_spec *s);

/* ---- strict readers of request bodies (jansson) ----
 * Each returns 0, or -EINVAL with a message in err (naming the field). A
 * missing optional field leaves *out unchanged and returns 0; *present
 * (when not NULL) says whether it was there. */

struct jr {
	json_t *root;
	char err[HTTP_ERR_SIZE_MAX];
};

/* Parses body into an object (duplicates, invalid UTF-8, NUL, huge
 * numbers refused); 0 or -EINVAL. */
int jr_open(struct jr *r, const void *body, size_t size);
void jr_close(struct jr *r);
/* Every key of the object is one of allowed (NULL-terminated). */
int jr_only(struct jr *r, const char *const *allowed);
int jr_str(struct jr *r, const char *key, bool required, char *out,
	   size_t out_size, size_t *len);
int jr_uint(struct jr *r, const char *key, bool required, uint64_t max,
	    uint64_t *out, bool *present);
int jr_id(struct jr *r, const char *key, bool required, uint64_t *out,
	  bool *present);
int jr_date(struct jr *r, const char *key, bool required,
	    struct core_date *out, bool *present);
int jr_fail(struct jr *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- answers (http.c) ---- */

/* What goes into an answer's headers besides status and body. */
struct http_meta {
	bool close;          /* Connection: close */
	bool keep_alive_10;  /* an HTTP/1.0 client asked for keep-alive */
	bool head;           /* HEAD: headers only */
	bool replayed;       /* Idempotent-Replayed: true */
	const char *origin;  /* allowed Origin to echo, or NULL */
	size_t origin_size;
	const char *content_type; /* NULL: application/json */
	const char *etag;    /* quoted entity tag, or NULL */
	const char *cache_control;
	const char *allow;   /* 405, OPTIONS */
	uint32_t retry_after_s; /* 0: none */
	bool www_authenticate;
	bool preflight;      /* CORS preflight headers */
	const char *preflight_methods;
};

#define HTTP_U64_DEC_SIZE 21 /* 20 digits and a NUL */
/* v in decimal into out (NUL-terminated); returns the length. */
size_t http_u64_dec(uint64_t v, char out[HTTP_U64_DEC_SIZE]);

/* The reason phrase of a status ("Accepted" for 202), NULL if unknown. */
const char *http_reason(int status);
/* Writes a whole answer into out. */
void http_write(struct srv_buf *out, int status, const struct http_meta *m,
		const char *body, size_t body_size);
/* An error answer: {"error":{"code":...,"message":...}}. */
void http_write_error(struct srv_buf *out, int status,
		      const struct http_meta *m, const char *code,
		      const char *message);
/* The thread's body buffer (HTTP_OUT_BODY_MAX) for one answer. */
char *http_scratch(void);

/* ---- one parsed request (http.c -> http_routes.c) ---- */

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

/* render() of srv_http_proto. */
void http_render(struct srv_conn *c, void *state, const void *ctx, int rc,
		 const struct core_resp *resp, const struct srv_views *views,
		 struct srv_buf *out);
/* The catalogue slot inside the connection state (for render). */
struct http_cat_slot *http_conn_slot(void *state);

#endif
