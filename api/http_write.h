/*
 * http_write.h: writing HTTP answers (http_write.c): status line,
 * headers from struct http_meta, body; the error body; the thread's
 * answer buffer. Also the adapter's size limits.
 */
#ifndef BOOKD_HTTP_WRITE_H
#define BOOKD_HTTP_WRITE_H

#include "core.h"
#include "http_req.h"
#include "srv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_SIZE_MAX (16u << 10)	   /* request line + headers: 431 */
#define HTTP_BODY_SIZE_MAX (64u << 10)	   /* request body: 413 */
#define HTTP_BODY_SPAN_MAX 32		   /* chunks of a chunked body */
#define HTTP_REQUEST_SIZE_MAX (128u << 10) /* all of one request: 413 */
#define HTTP_HEADER_COUNT_MAX 100	   /* headers per request: 431 */
#define HTTP_OUT_BODY_MAX (1u << 20)	   /* one answer's body */
#define HTTP_ORIGIN_SIZE_MAX 112	   /* an Origin echoed after submit */
#define HTTP_INM_COUNT_MAX 4		   /* If-None-Match tags remembered */
#define HTTP_IDEM_KEY_SIZE_MAX 255
#define HTTP_REQUEST_ID_SIZE_MAX 64 /* X-Request-Id taken from a client */

_Static_assert(HTTP_HEAD_SIZE_MAX + HTTP_BODY_SIZE_MAX < HTTP_REQUEST_SIZE_MAX,
	       "head and body fit a request");
_Static_assert(HTTP_REQUEST_SIZE_MAX < SRV_IN_SIZE_MAX,
	       "a request fits the network's input limit");

/* What goes into an answer's headers besides status and body. */
struct http_meta {
	bool close;	    /* Connection: close */
	bool keep_alive_10; /* an HTTP/1.0 client asked for keep-alive */
	bool head;	    /* HEAD: headers only */
	bool replayed;	    /* Idempotent-Replayed: true */
	const char *origin; /* allowed Origin to echo, or NULL */
	size_t origin_size;
	const char *content_type; /* NULL: application/json */
	const char *etag;	  /* quoted entity tag, or NULL */
	const char *cache_control;
	/* a page of web/ (web.h): its Content-Security-Policy, sent with
	 * X-Content-Type-Options: nosniff; NULL: neither */
	const char *csp;
	const char *location;	/* 201: the created object's path, or NULL */
	const char *allow;	/* 405, OPTIONS */
	uint32_t retry_after_s; /* 0: none */
	bool www_authenticate;
	bool preflight; /* CORS preflight headers */
	const char *preflight_methods;
	const char *request_id; /* X-Request-Id (http_request_id) */
	const char *op;		/* the operation's name, for the error log */
	bool compat; /* a seed-compatible route: its error shape (below) */
};

/* The request's id into out: the client's X-Request-Id when it is sane
 * (1..HTTP_REQUEST_ID_SIZE_MAX bytes of A-Za-z0-9 and ._:+/=-), else a new
 * one, unique in this run and across restarts: the thread's first second
 * (hex), its number, its counter ("6754a3f1-2-1f"). given may be NULL. */
void http_request_id(const struct http_str *given,
		     char out[HTTP_REQUEST_ID_SIZE_MAX + 1]);

/* The reason phrase of a status ("Accepted" for 202), NULL if unknown. */
const char *http_reason(int status);
/* Writes a whole answer into out. */
void http_write(struct buf *out, int status, const struct http_meta *m,
		const char *body, size_t body_size);
/* An error answer: {"error":{"code":...,"message":...}}; on a
 * seed-compatible route (m->compat) as the seed's edge functions answered:
 * {"success":false,"error":message,"code":code}. */
void http_write_error(struct buf *out, int status, const struct http_meta *m,
		      const char *code, const char *message);
/* The thread's body buffer (HTTP_OUT_BODY_MAX) for one answer. */
char *http_scratch(void);

#endif
