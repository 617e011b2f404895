/*
 * http_write.c: an answer's bytes (http_write.h): the status line, the
 * headers struct http_meta asks for (Date cached per second per thread,
 * CORS, caching, Retry-After, ...), the body; error bodies through the
 * JSON writer.
 */
#include "http_write.h"

#include "evlog.h"
#include "http_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A byte a request id may hold (A-Za-z0-9._:+/=-). */
static bool rid_byte(unsigned char ch)
{
	static const char ok[] = "._:+/=-";

	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && memchr(ok, ch, 7));
}

/* Every answer makes one when the client sent none: no printf. The
 * thread's prefix ("6754a3f1-2-") is made once; then the counter in hex. */
void http_request_id(const struct http_str *given,
		     char out[HTTP_REQUEST_ID_SIZE_MAX + 1])
{
	static _Atomic uint32_t threads;
	static __thread char prefix[32];
	static __thread size_t prefix_len;
	static __thread uint64_t counter;
	static const char hex[] = "0123456789abcdef";
	bool sane = given && given->p && given->n > 0 &&
		    given->n <= HTTP_REQUEST_ID_SIZE_MAX;
	char digits[16];
	size_t n = 0;
	uint64_t v;

	for (size_t i = 0; sane && i < given->n; i++)
		sane = rid_byte((unsigned char)given->p[i]);
	if (sane) {
		memcpy(out, given->p, given->n);
		out[given->n] = 0;
		return;
	}
	if (prefix_len == 0) { /* once a thread */
		int len = snprintf(prefix, sizeof(prefix),
				   "%08" PRIx32 "-%" PRIx32 "-",
				   (uint32_t)time(NULL),
				   atomic_fetch_add(&threads, 1) + 1);
		ASSERT(len > 0 && (size_t)len < sizeof(prefix));
		prefix_len = (size_t)len;
	}
	v = ++counter;
	do {
		digits[n++] = hex[v & 15];
		v >>= 4;
	} while (v);
	ASSERT(prefix_len + n <= HTTP_REQUEST_ID_SIZE_MAX);
	memcpy(out, prefix, prefix_len);
	for (size_t i = 0; i < n; i++)
		out[prefix_len + i] = digits[n - 1 - i];
	out[prefix_len + n] = 0;
}

char *http_scratch(void)
{
	static __thread char buf[HTTP_OUT_BODY_MAX];
	return buf;
}

/* Every status bookd answers with, and the rest of RFC 9110's (and RFC
 * 6585's) list, so that no answer goes out without its reason phrase. */
static const struct {
	int status;
	const char *phrase;
} reasons[] = {
	{ 100, "Continue" },
	{ 101, "Switching Protocols" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 203, "Non-Authoritative Information" },
	{ 204, "No Content" },
	{ 205, "Reset Content" },
	{ 206, "Partial Content" },
	{ 300, "Multiple Choices" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 402, "Payment Required" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 407, "Proxy Authentication Required" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 410, "Gone" },
	{ 411, "Length Required" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" },
	{ 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" },
	{ 426, "Upgrade Required" },
	{ 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
	{ 507, "Insufficient Storage" },
};

const char *http_reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].phrase;
	return NULL;
}

/* "Date: ..." per second, cached per thread. */
static const char *date_header(void)
{
	static __thread time_t last;
	static __thread char buf[64];
	time_t now = time(NULL);

	if (now != last || buf[0] == '\0') {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	ASSERT(buf[0] != '\0'); /* the format fits: 29 bytes */
	return buf;
}

static void put(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void put_u64(struct buf *b, uint64_t v)
{
	char d[HTTP_U64_DEC_SIZE];
	buf_put(b, d, http_u64_dec(v, d));
}

/* "name: value\r\n" when value is set. */
static void put_header(struct buf *b, const char *name, const char *value)
{
	if (!value)
		return;
	ASSERT(strpbrk(value, "\r\n") == NULL); /* one header line, ours */
	put(b, name);
	put(b, ": ");
	put(b, value);
	put(b, "\r\n");
}

/* No printf here: this runs for every answer. */
void http_write(struct buf *out, int status, const struct http_meta *m,
		const char *body, size_t body_size)
{
	static const struct http_meta none;
	bool no_body = status == 204 || status == 304 ||
		       (status >= 100 && status < 200);

	if (!m)
		m = &none;
	ASSERT(status >= 100 && status <= 599);
	ASSERT(body || body_size == 0);
	put(out, "HTTP/1.1 ");
	put_u64(out, (uint64_t)status);
	put(out, " ");
	/* A status missing from reasons[] is our bug (test_http_reads checks the
	 * ones we send); the line stays valid: the phrase may be empty. */
	put(out, http_reason(status) ? http_reason(status) : "");
	put(out, "\r\nDate: ");
	put(out, date_header());
	put(out, "\r\n");
	if (!no_body) {
		put(out, "Content-Type: ");
		put(out,
		    m->content_type ? m->content_type : "application/json");
		put(out, "\r\nContent-Length: ");
		put_u64(out, body_size);
		put(out, "\r\n");
	}
	if (m->close)
		put(out, "Connection: close\r\n");
	else if (m->keep_alive_10)
		put(out, "Connection: keep-alive\r\n");
	if (m->replayed)
		put(out, "Idempotent-Replayed: true\r\n");
	if (m->request_id) { /* made or checked by http_request_id */
		put(out, "X-Request-Id: ");
		put(out, m->request_id);
		put(out, "\r\n");
	}
	put_header(out, "ETag", m->etag);
	put_header(out, "Cache-Control", m->cache_control);
	if (m->csp) {
		put_header(out, "Content-Security-Policy", m->csp);
		put(out, "X-Content-Type-Options: nosniff\r\n");
	}
	put_header(out, "Location", m->location);
	put_header(out, "Allow", m->allow);
	if (m->retry_after_s) {
		put(out, "Retry-After: ");
		put_u64(out, m->retry_after_s);
		put(out, "\r\n");
	}
	if (m->www_authenticate)
		put(out, "WWW-Authenticate: Bearer\r\n");
	if (m->origin && m->origin_size) {
		put(out, "Access-Control-Allow-Origin: ");
		buf_put(out, m->origin, m->origin_size);
		put(out, "\r\nVary: Origin\r\n");
		if (m->preflight) {
			put(out, "Access-Control-Allow-Methods: ");
			put(out, m->preflight_methods ? m->preflight_methods
						      : "GET");
			put(out,
			    "\r\nAccess-Control-Allow-Headers: "
			    "Authorization, Content-Type, Idempotency-Key, "
			    "X-Request-Id\r\nAccess-Control-Max-Age: "
			    "600\r\n");
		} else {
			put(out, "Access-Control-Expose-Headers: ETag, "
				 "Idempotent-Replayed, Retry-After, "
				 "X-Request-Id\r\n");
		}
	}
	put(out, "\r\n");
	if (!no_body && !m->head)
		buf_put(out, body, body_size);
}

/* A 5xx answer: a line with the request's id (at most 10 a second: a
 * storm of them is summed up in the next line that passes, "dropped"). The
 * message is ours (fields.c), never a request's bytes. */
static void log_error(int status, const struct http_meta *m, const char *code,
		      const char *message)
{
	static struct evlog_limit limit;
	char st[16], dropped_s[16];
	uint32_t dropped;

	if (!evlog_allow(&limit, 10, &dropped))
		return;
	snprintf(st, sizeof(st), "%d", status);
	snprintf(dropped_s, sizeof(dropped_s), "%" PRIu32, dropped);
	evlog_kv(EVLOG_ERROR, "error answer", "request_id",
		 m && m->request_id ? m->request_id : "", "status", st, "op",
		 m && m->op ? m->op : "", "code", code, "message",
		 message ? message : code, dropped ? "dropped" : NULL,
		 dropped_s, NULL);
}

void http_write_error(struct buf *out, int status, const struct http_meta *m,
		      const char *code, const char *message)
{
	char buf[512];
	struct jw w;

	ASSERT(code && status >= 400);
	if (status >= 500)
		log_error(status, m, code, message);
	jw_init(&w, buf, sizeof(buf));
	jw_obj_begin(&w);
	if (m->compat) {
		jw_key(&w, "success");
		jw_bool(&w, false);
		jw_key(&w, "error");
		jw_cstr(&w, message ? message : code);
		jw_key(&w, "code");
		jw_cstr(&w, code);
	} else {
		jw_key(&w, "error");
		jw_obj_begin(&w);
		jw_key(&w, "code");
		jw_cstr(&w, code);
		jw_key(&w, "message");
		jw_cstr(&w, message ? message : code);
		jw_obj_end(&w);
	}
	jw_obj_end(&w);
	if (w.overflow && m->compat) {
		jw_init(&w, buf, sizeof(buf));
		jw_raw(&w, "{\"success\":false,\"error\":\"\",\"code\":", 35);
		jw_cstr(&w, code);
		jw_raw(&w, "}", 1);
	} else if (w.overflow) { /* a message too long for buf: drop it */
		jw_init(&w, buf, sizeof(buf));
		jw_raw(&w, "{\"error\":{\"code\":", 17);
		jw_cstr(&w, code);
		jw_raw(&w, ",\"message\":\"\"}}", 15);
	}
	http_write(out, status, m, buf, w.n);
}
