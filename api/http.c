/*
 * http.c: the HTTP/1.1 + JSON adapter of bookd (srv_http_proto, srv.h).
 *
 * Parts: this file frames requests; http_routes.c routes one (auth, rate
 * limits, its fields, the core request through ops.h's table);
 * http_render.c renders the core's answers, http_status.c the status and
 * metrics bodies, http_write.c an answer's bytes; http_json.c writes and
 * reads JSON.
 * The routes, fields, status and error codes are the contract's
 * (docs/contract.md); docs/openapi.yaml describes them.
 *
 * Framing. http-parser (nodejs, Debian libhttp-parser) runs incrementally
 * over what the connection received. net.c offers all unused bytes again
 * with more (from the start of the request being read), so the parser's
 * state and the offsets of what it found (URL, the headers we use, body
 * pieces) are kept per connection relative to the request's first byte:
 * bytes are fed once, and a request delivered byte by byte costs the same
 * as one delivered whole. The parser pauses at the end of each message, so
 * several pipelined requests in one read are taken one at a time: each is
 * answered at once (srv_answer) or submitted (srv_submit) before the next
 * is looked at; net.c sends the answers in request order.
 *
 * Why http-parser, with strict checks of our own around it (issue 13):
 * Debian's build of it is not strict (it takes bare LF, obs-fold, a space
 * before a header's colon, "HTTP/1.2", "gzip, chunked", any two bytes
 * after a chunk's data) and the project is archived upstream. Weighed
 * against it: llhttp (maintained by Node.js) has no library package in
 * Debian 12 (no libllhttp-dev); its C sources ship only inside
 * node-llhttp, version 8.1.0, which even so takes obs-fold, a space before
 * the colon, "gzip, chunked" and "HTTP/2.0" (tried on each shape), so the
 * checks below would be needed with it too, plus vendoring its 550 KiB
 * generated parser into the build. picohttpparser is not packaged in
 * Debian at all. So http-parser stays (still security-patched in Debian
 * 12), and head_check(), on_headers_complete() and chunked_check() refuse
 * what a strict server refuses (see "strict framing" below): revisit when
 * the project moves to a Debian with libllhttp-dev 9 (strict by default).
 *
 * Limits, each answered and then closed (the framing is lost):
 *   - request line + headers > HTTP_HEAD_SIZE_MAX (16 KiB), or more than
 *     HTTP_HEADER_COUNT_MAX headers: 431;
 *   - Content-Length > HTTP_BODY_SIZE_MAX (64 KiB): 413 at once, from the
 *     headers, without reading the body;
 *   - malformed (http-parser's errors, and the strict checks: CRLF line
 *     ends, no obs-fold, token header names with the colon right after,
 *     no Content-Length with Transfer-Encoding, a duplicate, signed or
 *     non-digit Content-Length, Transfer-Encoding exactly "chunked" and
 *     not on HTTP/1.0, strict chunk framing, HTTP/1.0 or 1.1; a duplicate
 *     Authorization, Idempotency-Key, Origin...): 400 invalid_request
 *     naming what is wrong; an HTTP major version other than 1: 505;
 *   - not whole within the request timeout (net_timeout.c) of its first
 *     byte (the first request: of the connect): 408 request_timeout
 *     (http_timeout);
 *   - on a connection in the reserve (net_listen.c: the table nearly
 *     full), anything but /health and the service key: 503 overloaded
 *     (reserve_check).
 * Chunked request bodies are handled: up to HTTP_BODY_SPAN_MAX chunks and
 * HTTP_BODY_SIZE_MAX bytes in all (else 413), joined into a per-thread
 * buffer; trailers are ignored (at most HTTP_HEADER_COUNT_MAX lines, else
 * 400); a request of more than HTTP_REQUEST_SIZE_MAX bytes in all (chunk
 * framing, trailers) is 413.
 * Expect: 100-continue gets its interim 100 once the head is in (before
 * any check: the final answer follows).
 *
 * Connections: HTTP/1.1 keeps alive unless "Connection: close"; HTTP/1.0
 * closes unless "Connection: keep-alive". parse() returns -1 after the
 * last request's answer is queued, and net.c closes once it is sent. An
 * Upgrade request is answered as a plain one, then the connection closes.
 *
 * Per connection: struct http_conn (the parser, the spans of the request
 * being read, and the catalogue slot, see http_routes.h), about 1.3 KiB.
 * Per thread: one joined-body buffer and one answer-body buffer. Nothing is
 * allocated per request except by jansson while reading a JSON body.
 */
#include "http_render.h"
#include "http_routes.h"

#include "hex.h"
#include "http_json.h"

#include <errno.h>
#include <http_parser.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct span {
	uint32_t off, len;
};

enum last_cb { LAST_NONE = 0, LAST_FIELD, LAST_VALUE };

struct http_conn {
	http_parser p;
	bool started; /* p is reading a request */
	bool headers_done;
	bool continue_sent;  /* 100 Continue queued for this request */
	uint32_t fed;	     /* bytes of this request given to p */
	uint32_t scanned;    /* bytes of the head head_check() has seen */
	uint32_t line_start; /* where the line head_check() is in began */
	uint32_t head_size;  /* request line to blank line; 0 until seen */
	bool in_headers;     /* head_check() is past the request line */
	bool colon_seen;     /* in the header line head_check() is in */
	int status_err;	     /* set by a callback: answer this and close */
	const char *err_msg;
	char dup_msg[48];    /* "duplicate <name> header" (err_msg) */
	const uint8_t *base; /* the request's first byte, during execute */
	struct span url, field;
	struct span hdr[HTTP_H_COUNT];
	uint32_t hdr_seen; /* bit per enum http_hdr */
	int cur;	   /* the header whose value is being read, or -1 */
	uint8_t last;	   /* enum last_cb */
	uint32_t header_count;
	struct span body[HTTP_BODY_SPAN_MAX];
	uint32_t body_span_count, body_size;
	struct http_cat_slot slot;
};

/* The headers we read, by their usual spelling (http_req.h). */
static const char *const hdr_names[HTTP_H_COUNT] = {
#define HTTP_H_NAME(id, name) [HTTP_H_##id] = name,
	HTTP_HDRS(HTTP_H_NAME)
#undef HTTP_H_NAME
};

/* ---- http-parser callbacks ---- */

static int fail(struct http_conn *h, int status, const char *msg)
{
	ASSERT(status >= 400 && status <= 599);
	ASSERT(msg);
	if (!h->status_err) {
		h->status_err = status;
		h->err_msg = msg;
	}
	return 1; /* any non-zero stops the parser with an error */
}

static uint32_t off_of(const struct http_conn *h, const char *at)
{
	return (uint32_t)((const uint8_t *)at - h->base);
}

/* Extends s with the piece at off (pieces of one item are contiguous);
 * false when it is not contiguous. */
static bool span_add(struct span *s, uint32_t off, size_t len)
{
	if (s->len == 0) {
		s->off = off;
		s->len = (uint32_t)len;
		return true;
	}
	if (s->off + s->len != off)
		return false;
	s->len += (uint32_t)len;
	return true;
}

static bool head_too_big(const struct http_conn *h, uint32_t off, size_t len)
{
	return !h->headers_done && (size_t)off + len > HTTP_HEAD_SIZE_MAX;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *h = p->data;
	uint32_t off = off_of(h, at);

	if (head_too_big(h, off, len))
		return fail(h, 431, "request head too large");
	if (!span_add(&h->url, off, len))
		return fail(h, 400, "malformed request line");
	return 0;
}

static int header_name(struct http_conn *h, uint32_t off, size_t len)
{
	if (h->last == LAST_FIELD && span_add(&h->field, off, len))
		return 0;
	if (++h->header_count > HTTP_HEADER_COUNT_MAX)
		return fail(h, 431, "too many headers");
	h->field.off = off;
	h->field.len = (uint32_t)len;
	h->last = LAST_FIELD;
	h->cur = -1;
	return 0;
}

static int header_value(struct http_conn *h, uint32_t off, size_t len)
{
	if (h->last == LAST_FIELD) {
		const char *name = (const char *)h->base + h->field.off;
		h->cur = -1;
		for (int i = 0; i < HTTP_H_COUNT; i++) {
			if (strlen(hdr_names[i]) == h->field.len &&
			    strncasecmp(name, hdr_names[i], h->field.len) ==
				    0) {
				h->cur = i;
				break;
			}
		}
		h->last = LAST_VALUE;
		if (h->cur < 0)
			return 0;
		ASSERT(h->cur < HTTP_H_COUNT);
		/* X-Forwarded-For may come as several lines (a proxy that
		 * adds its own): the last one, which its proxy wrote, counts */
		if ((h->hdr_seen & (1u << h->cur)) &&
		    h->cur != HTTP_H_X_FORWARDED_FOR) {
			snprintf(h->dup_msg, sizeof(h->dup_msg),
				 "duplicate %s header", hdr_names[h->cur]);
			return fail(h, 400, h->dup_msg);
		}
		h->hdr_seen |= 1u << h->cur;
		h->hdr[h->cur].off = off;
		h->hdr[h->cur].len = (uint32_t)len;
		return 0;
	}
	if (h->cur >= 0 && !span_add(&h->hdr[h->cur], off, len))
		return fail(h, 400, "obsolete line folding");
	return 0;
}

/* A piece of a header's name (is_name) or of its value: http-parser may
 * hand either over in several pieces. */
static int header_piece(http_parser *p, const char *at, size_t len,
			bool is_name)
{
	struct http_conn *h = p->data;
	uint32_t off = off_of(h, at);

	if (h->headers_done)
		return 0; /* a trailer: ignored */
	if (head_too_big(h, off, len))
		return fail(h, 431, "request head too large");
	return is_name ? header_name(h, off, len) : header_value(h, off, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	return header_piece(p, at, len, true);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	return header_piece(p, at, len, false);
}

/* The Transfer-Encoding value is exactly "chunked" (coding names are
 * case-insensitive; OWS around it is not part of the value). */
static bool te_is_chunked(const struct http_conn *h)
{
	const struct span *te = &h->hdr[HTTP_H_TRANSFER_ENCODING];
	const char *v = (const char *)h->base + te->off;
	size_t n = te->len;

	while (n && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n == 7 && strncasecmp(v, "chunked", 7) == 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *h = p->data;

	h->headers_done = true;
	/* 1 and 2 mean "skip the body" and "upgrade" here: errors are -1.
	 * head_check() read every byte the parser did, up to its limit, and
	 * saw this head end first unless it is longer than that. */
	if (!h->head_size) {
		fail(h, 431, "request head too large");
		return -1;
	}
	if (p->http_major != 1) {
		fail(h, 505, "only HTTP/1.0 and HTTP/1.1");
		return -1;
	}
	if (p->http_minor > 1) {
		fail(h, 400, "HTTP version must be HTTP/1.0 or HTTP/1.1");
		return -1;
	}
	if ((h->hdr_seen & (1u << HTTP_H_TRANSFER_ENCODING)) &&
	    !te_is_chunked(h)) {
		fail(h, 400, "Transfer-Encoding other than chunked");
		return -1;
	}
	if ((h->hdr_seen & (1u << HTTP_H_TRANSFER_ENCODING)) &&
	    p->http_minor == 0) {
		fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
		return -1;
	}
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > HTTP_BODY_SIZE_MAX) {
		fail(h, 413, "request body too large (at most 64 KiB)");
		return -1;
	}
	return 0;
}

/* A chunk's size is known before its bytes: refuse a body that will not
 * fit at once. */
static int on_chunk_header(http_parser *p)
{
	struct http_conn *h = p->data;

	if (p->content_length > HTTP_BODY_SIZE_MAX - h->body_size)
		return fail(h, 413, "request body too large (at most 64 KiB)");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *h = p->data;
	uint32_t off = off_of(h, at);

	if (len > HTTP_BODY_SIZE_MAX - h->body_size)
		return fail(h, 413, "request body too large (at most 64 KiB)");
	h->body_size += (uint32_t)len;
	if (h->body_span_count &&
	    span_add(&h->body[h->body_span_count - 1], off, len))
		return 0;
	if (h->body_span_count == HTTP_BODY_SPAN_MAX)
		return fail(h, 413, "too many chunks in the request body");
	h->body[h->body_span_count].off = off;
	h->body[h->body_span_count].len = (uint32_t)len;
	h->body_span_count++;
	ASSERT(h->body_size <= HTTP_BODY_SIZE_MAX);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	http_parser_pause(p, 1); /* one request at a time */
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
};

static void request_start(struct http_conn *h)
{
	memset(h, 0, offsetof(struct http_conn, slot));
	http_parser_init(&h->p, HTTP_REQUEST);
	h->p.data = h;
	h->cur = -1;
	h->started = true;
}

/* ---- strict framing around http-parser ----
 * Debian's http-parser is built without its strict mode: it takes bare LF
 * for CRLF, folded header lines, a space before a header's colon, any
 * version digits, "gzip, chunked", and any two bytes after a chunk's data
 * for its CRLF. What a proxy in front of bookd may read differently
 * (request smuggling) is refused here, as 400 and a close:
 *   - head_check() reads the head's bytes as they arrive, before the
 *     parser does: request line "METHOD SP target SP HTTP/d.d" (one space
 *     each, version 1.0 or 1.1, else 505 for another major version),
 *     every line ending in CRLF, no obs-fold, header names of token
 *     characters followed at once by the colon, no control characters;
 *   - on_headers_complete(): Transfer-Encoding exactly "chunked" and not
 *     on HTTP/1.0 (http-parser refuses Content-Length with
 *     Transfer-Encoding, a duplicate or non-digit Content-Length, and a
 *     chunk size that overflows: parser_error_msg() names them);
 *   - chunked_check() reads a chunked body again once http-parser found
 *     its end: CRLF after each size line and after each chunk's data, no
 *     space after a size without an extension, trailer lines in CRLF. */

/* fail() for the checks below, which return false. */
static bool refuse(struct http_conn *h, int status, const char *msg)
{
	fail(h, status, msg);
	return false;
}

/* RFC 9110 tchar. */
static bool is_tchar(uint8_t ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_ctl(uint8_t ch) { return ch < 0x20 || ch == 0x7f; }

/* "METHOD SP request-target SP HTTP-version", without its CRLF. */
static bool request_line_check(struct http_conn *h, const uint8_t *l, size_t n)
{
	const uint8_t *sp1 = memchr(l, ' ', n), *sp2, *v;

	ASSERT(n > 0); /* an empty line is not a request line */
	if (!sp1 || sp1 == l)
		return refuse(h, 400, "malformed request line");
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - l));
	if (!sp2 || sp2 == sp1 + 1)
		return refuse(h, 400, "malformed request line");
	v = sp2 + 1;
	if (l + n - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' ||
	    v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return refuse(h, 400,
			      "malformed HTTP version (HTTP/1.1 or HTTP/1.0)");
	if (v[5] != '1')
		return refuse(h, 505, "only HTTP/1.0 and HTTP/1.1");
	if (v[7] > '1')
		return refuse(h, 400,
			      "HTTP version must be HTTP/1.0 or HTTP/1.1");
	return true;
}

/* Checks the bytes of the head from where it stopped to avail (all of
 * them from the request's first byte b are there: net.c offers them
 * again); stops at the blank line. false: failed (h->status_err). */
static bool head_check(struct http_conn *h, const uint8_t *b, size_t avail)
{
	size_t end = avail < HTTP_HEAD_SIZE_MAX ? avail : HTTP_HEAD_SIZE_MAX;
	size_t i;

	for (i = h->scanned; i < end && !h->head_size; i++) {
		uint8_t ch = b[i];

		if (i > 0 && b[i - 1] == '\r' && ch != '\n')
			return refuse(h, 400,
				      "CR without LF (lines end in CRLF)");
		if (ch == '\n') {
			if (i == 0 || b[i - 1] != '\r')
				return refuse(h, 400,
					      "bare LF (lines end in CRLF)");
			if (i - 1 == h->line_start) { /* an empty line */
				if (h->in_headers)
					h->head_size = (uint32_t)i + 1;
				h->line_start = (uint32_t)i + 1;
				continue;
			}
			if (!h->in_headers &&
			    !request_line_check(h, b + h->line_start,
						i - 1 - h->line_start))
				return false;
			if (h->in_headers && !h->colon_seen)
				return refuse(h, 400,
					      "header line without a colon");
			h->in_headers = true;
			h->colon_seen = false;
			h->line_start = (uint32_t)i + 1;
			continue;
		}
		if (ch == '\r')
			continue; /* its LF is checked with the next byte */
		if (!h->in_headers) {
			if (is_ctl(ch))
				return refuse(
					h, 400,
					"invalid character in the request line");
			continue;
		}
		if (h->colon_seen) {
			if (is_ctl(ch) && ch != '\t')
				return refuse(
					h, 400,
					"invalid character in a header value");
			continue;
		}
		if (i == h->line_start && (ch == ' ' || ch == '\t'))
			return refuse(
				h, 400,
				"obsolete line folding (a header line starts with a space or tab)");
		if (ch == ':') {
			if (i == h->line_start)
				return refuse(h, 400, "empty header name");
			h->colon_seen = true;
		} else if (ch == ' ' || ch == '\t') {
			return refuse(
				h, 400,
				"whitespace in a header name or before its colon");
		} else if (!is_tchar(ch)) {
			return refuse(h, 400,
				      "invalid character in a header name");
		}
	}
	ASSERT(i <= end && h->line_start <= i);
	h->scanned = (uint32_t)i;
	return true;
}

/* b[i..end) is a chunked body http-parser took whole: NULL when it is
 * one strictly, else what is wrong. */
static const char *chunked_check(const uint8_t *b, size_t i, size_t end)
{
	uint32_t chunk_count = 0, line_count = 0;

	ASSERT(i <= end);
	for (;;) {
		uint64_t size = 0;
		size_t digits = 0;

		/* http-parser let through at most HTTP_BODY_SPAN_MAX data
		 * chunks and the last one: more is a misreading of ours */
		if (++chunk_count > HTTP_BODY_SPAN_MAX + 1)
			return "too many chunks in the request body";
		for (; i < end && hex_value(b[i]) >= 0; i++, digits++) {
			if (size >> 60)
				return "chunk size too large";
			size = size << 4 | (uint64_t)hex_value(b[i]);
		}
		if (!digits)
			return "malformed chunk size";
		if (i < end && b[i] != '\r') {
			/* chunk-ext: BWS ";" ... up to the CRLF */
			while (i < end && (b[i] == ' ' || b[i] == '\t'))
				i++;
			if (i == end || b[i] != ';')
				return "malformed chunk size";
			for (; i < end && b[i] != '\r'; i++)
				if (is_ctl(b[i]) && b[i] != '\t')
					return "invalid character in a chunk "
					       "extension";
		}
		if (end - i < 2 || b[i] != '\r' || b[i + 1] != '\n')
			return "a chunk size line must end in CRLF";
		i += 2;
		if (size == 0)
			break;
		if (size > end - i || end - i - size < 2)
			return "malformed chunked body";
		i += size;
		if (b[i] != '\r' || b[i + 1] != '\n')
			return "chunk data must be followed by CRLF";
		i += 2;
	}
	for (;;) { /* trailer lines, then an empty line */
		size_t start = i;

		if (++line_count > HTTP_HEADER_COUNT_MAX + 1)
			return "too many trailer lines";
		for (; i < end && b[i] != '\n'; i++)
			if (b[i] == '\r' && (i + 1 == end || b[i + 1] != '\n'))
				return "CR without LF in the trailers";
		if (i == end || i == start || b[i - 1] != '\r')
			return "bare LF in the trailers (lines end in CRLF)";
		i++;
		if (i - start == 2)
			break;
		if (b[start] == ' ' || b[start] == '\t')
			return "obsolete line folding in the trailers";
	}
	return i == end ? NULL : "malformed chunked body";
}

/* What http-parser refused, in words naming it. */
static const char *parser_error_msg(const struct http_conn *h,
				    enum http_errno e)
{
	switch (e) {
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		if ((h->p.flags & F_CHUNKED) ||
		    (h->hdr_seen & (1u << HTTP_H_TRANSFER_ENCODING)))
			return "both Content-Length and Transfer-Encoding";
		return "duplicate Content-Length";
	case HPE_INVALID_CONTENT_LENGTH:
		/* http-parser says so of a chunk size that overflows too */
		if (h->headers_done)
			return "chunk size too large";
		return "malformed Content-Length (one number, digits only)";
	case HPE_INVALID_TRANSFER_ENCODING:
		return "Transfer-Encoding other than chunked";
	case HPE_INVALID_CHUNK_SIZE: return "malformed chunk size";
	case HPE_INVALID_HEADER_TOKEN: return "invalid character in a header";
	case HPE_INVALID_VERSION:
	case HPE_INVALID_CONSTANT: /* a request's: "HTTP/" */
		return "malformed HTTP version (HTTP/1.1 or HTTP/1.0)";
	case HPE_INVALID_METHOD: return "unknown method";
	case HPE_INVALID_URL: return "malformed request target";
	default: return http_errno_description(e);
	}
}

/* A framing error: answer it and close. */
static void answer_broken(struct srv_conn *c, int status, const char *msg)
{
	struct http_meta m = { .close = true };
	char rid[HTTP_REQUEST_ID_SIZE_MAX + 1];
	const char *code = status == 408   ? "request_timeout"
			   : status == 413 ? "payload_too_large"
			   : status == 431 ? "headers_too_large"
			   : status == 505 ? "http_version_not_supported"
					   : "invalid_request";

	ASSERT(status >= 400 && status <= 599 && msg);
	http_request_id(NULL, rid); /* the request was not read whole */
	m.request_id = rid;
	srv_count_response(c, status);
	http_write_error(srv_answer_begin(c), status, &m, code, msg);
	srv_answer_done(c);
}

/* net.c: the request being read did not arrive whole in time (or the
 * first one did not come). */
static void http_timeout(struct srv_conn *c, void *state)
{
	(void)state;
	answer_broken(c, 408, "the request did not arrive whole in time");
}

/* A connection accepted into net_listen.c's reserve (the table is nearly full)
 * is served /health (then closed, to free the slot) and the service key's
 * requests; anything else is answered 503 overloaded and closed. */
static int reserve_check(struct srv_conn *c, struct http_request *rq)
{
	const struct http_str *a = &rq->hdr[HTTP_H_AUTHORIZATION];
	struct http_meta m = { .close = true };
	char rid[HTTP_REQUEST_ID_SIZE_MAX + 1];

	if (a->n > 7 && strncasecmp(a->p, "Bearer ", 7) == 0 &&
	    auth_is_service_key(srv_auth(srv_conn_srv(c)), a->p + 7, a->n - 7))
		return 0;
	if (rq->path.n == 7 && memcmp(rq->path.p, "/health", 7) == 0) {
		rq->keep_alive = false;
		return 0;
	}
	http_request_id(&rq->hdr[HTTP_H_X_REQUEST_ID], rid);
	m.request_id = rid;
	srv_count_response(c, 503);
	http_write_error(srv_answer_begin(c), 503, &m, "overloaded",
			 "the server is at its connection limit: only /health "
			 "and the service key are served; retry later");
	srv_answer_done(c);
	return -EPIPE;
}

/* ---- one complete request ---- */

static int request_done(struct srv_conn *c, struct http_conn *h,
			const uint8_t *base)
{
	static __thread uint8_t joined[HTTP_BODY_SIZE_MAX];
	struct http_request rq;
	const char *url = (const char *)base + h->url.off;
	size_t url_size = h->url.len, q;
	int rc;

	ASSERT(h->headers_done); /* a whole message */
	ASSERT(h->body_span_count <= HTTP_BODY_SPAN_MAX);
	memset(&rq, 0, sizeof(rq));
	rq.method = h->p.method;
	rq.method_name = http_method_str((enum http_method)h->p.method);
	rq.http10 = h->p.http_major == 1 && h->p.http_minor == 0;
	rq.keep_alive = http_should_keep_alive(&h->p) && !h->p.upgrade;
	for (q = 0; q < url_size && url[q] != '?' && url[q] != '#'; q++)
		;
	rq.path.p = url;
	rq.path.n = q;
	if (q < url_size && url[q] == '?') {
		size_t e = q + 1;
		while (e < url_size && url[e] != '#')
			e++;
		rq.query.p = url + q + 1;
		rq.query.n = e - q - 1;
	}
	for (int i = 0; i < HTTP_H_COUNT; i++) {
		if (h->hdr_seen & (1u << i)) {
			rq.hdr[i].p = (const char *)base + h->hdr[i].off;
			rq.hdr[i].n = h->hdr[i].len;
		}
	}
	if (h->body_span_count == 1) {
		rq.body = base + h->body[0].off;
		rq.body_size = h->body[0].len;
	} else if (h->body_span_count > 1) {
		size_t n = 0;
		for (uint32_t i = 0; i < h->body_span_count; i++) {
			/* on_body kept the sum within the buffer */
			ASSERT(h->body[i].len <= sizeof(joined) - n);
			memcpy(joined + n, base + h->body[i].off,
			       h->body[i].len);
			n += h->body[i].len;
		}
		rq.body = joined;
		rq.body_size = n;
	}
	if (srv_conn_in_reserve(c) && (rc = reserve_check(c, &rq)) != 0)
		return rc;
	rc = http_route(c, &h->slot, &rq);
	if (rc == 0 && !rq.keep_alive)
		rc = -EPIPE;
	return rc;
}

/* Expect: 100-continue, once the head is in and the body is not. */
static void maybe_continue(struct srv_conn *c, struct http_conn *h,
			   const uint8_t *base)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	const struct span *e = &h->hdr[HTTP_H_EXPECT];

	if (!h->headers_done || h->continue_sent ||
	    !(h->hdr_seen & (1u << HTTP_H_EXPECT)) || e->len != 12 ||
	    strncasecmp((const char *)base + e->off, "100-continue", 12) != 0)
		return;
	h->continue_sent = true;
	srv_answer(c, cont, sizeof(cont) - 1);
}

static long http_parse(struct srv_conn *c, void *state, const uint8_t *in,
		       size_t len)
{
	struct http_conn *h = state;
	size_t used = 0;

	while (used < len) {
		const uint8_t *base = in + used;
		size_t avail = len - used, n;
		const char *chunk_err = NULL;
		enum http_errno e;
		int rc;

		if (!srv_conn_writable(c))
			return -1; /* closing: read no more */
		if (!h->started)
			request_start(h);
		if (avail <= h->fed)
			break; /* nothing new for this request */
		if (!head_check(h, base, avail)) {
			answer_broken(c, h->status_err, h->err_msg);
			h->started = false;
			return -1;
		}
		h->base = base;
		n = http_parser_execute(&h->p, &settings,
					(const char *)base + h->fed,
					avail - h->fed);
		ASSERT(n <= avail - h->fed);
		e = HTTP_PARSER_ERRNO(&h->p);
		if (e == HPE_PAUSED && !h->status_err &&
		    (h->p.flags & F_CHUNKED))
			chunk_err =
				chunked_check(base, h->head_size, h->fed + n);
		h->base = NULL;
		if (e == HPE_PAUSED && !chunk_err) {
			size_t size = h->fed + n;
			ASSERT(size > 0 && size <= avail);
			rc = request_done(c, h, base);
			h->started = false; /* read the next one afresh */
			if (rc == -EAGAIN)
				break; /* this one again later */
			if (rc < 0)
				return -1;
			used += size;
			continue;
		}
		if (chunk_err || (e != HPE_OK && e != HPE_PAUSED) ||
		    h->status_err) {
			int status = h->status_err		? h->status_err
				     : e == HPE_HEADER_OVERFLOW ? 431
								: 400;
			answer_broken(c, status,
				      h->err_msg  ? h->err_msg
				      : chunk_err ? chunk_err
						  : parser_error_msg(h, e));
			h->started = false;
			return -1;
		}
		h->fed += (uint32_t)n;
		if (!h->headers_done && h->fed > HTTP_HEAD_SIZE_MAX) {
			answer_broken(c, 431, "request head too large");
			h->started = false;
			return -1;
		}
		if (h->fed > HTTP_REQUEST_SIZE_MAX) {
			/* chunk extensions or trailers without end */
			answer_broken(c, 413, "request too large");
			h->started = false;
			return -1;
		}
		maybe_continue(c, h, base);
		break;
	}
	ASSERT(used <= len);
	return (long)used;
}

static void render(struct srv_conn *c, void *state, const void *ctx, int rc,
		   const struct core_resp *resp, const struct srv_views *views,
		   struct buf *out)
{
	http_render(c, &((struct http_conn *)state)->slot, ctx, rc, resp, views,
		    out);
}

static const char *http_ctx_request_id(const void *ctx)
{
	return ((const struct http_ctx *)ctx)->request_id;
}

const struct srv_proto srv_http_proto = {
	.name = "http",
	.conn_state_size = sizeof(struct http_conn),
	.parse = http_parse,
	.render = render,
	.timeout = http_timeout,
	.request_id = http_ctx_request_id,
};
