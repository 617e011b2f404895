/*
 * bookbench_http.c: driver bookd-http, a small HTTP/1.1 client of our own.
 *
 * One keep-alive TCP connection per bookbench connection, non-blocking,
 * pipelined: submit() appends a request to the output buffer (struct buf,
 * core/buf.h, as the input), poll() writes
 * what it can and parses whole answers (status line, Content-Length body)
 * in order (with timeout 0 it reads once, without waiting: an event loop
 * waits on the socket, for output too while some is queued). JSON answers
 * are read just enough: the few fields bookbench needs, found by key
 * inside the right object ("booking", "promoted",
 * "event", "error"). Every request carries the service key; bookings and
 * cancels an Idempotency-Key. The data set is made through the API
 * (orgs, locations, instructors, one series per event, then the listing).
 */
#include "bookbench.h"
#include "buf.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_IN_SIZE_MAX (64u << 20) /* one answer, at most */
#define HTTP_QUEUE_MAX 4096	     /* requests in flight */
#define HTTP_RAW (-1)		     /* a setup request: keep the body */
#define SETUP_RETRY_MAX 100000	     /* 429s resent during setup */

struct http_pending {
	int kind; /* enum bb_op_kind, or HTTP_RAW */
	uint64_t booking_id;
	uint32_t index; /* HTTP_RAW: the caller's */
	char *raw_req;	/* HTTP_RAW: the request, to send again after a 429 */
	size_t raw_len;
};

struct http_conn {
	int fd;
	char host[80];
	char auth[300];
	struct buf out; /* queued requests; sent up to out_off */
	size_t out_off;
	struct buf in; /* answers not yet taken; max HTTP_IN_SIZE_MAX */
	struct http_pending q[HTTP_QUEUE_MAX];
	uint32_t q_head, q_count;
	/* the last raw answer */
	int raw_status;
	char *raw_body;
	size_t raw_len;
	uint32_t raw_index;
	char *raw_req; /* owned: the answered request */
	size_t raw_req_len;
};

static _Atomic unsigned source_next;

static int tcp_connect(const char *addr, unsigned source_count, char *err,
		       size_t err_size)
{
	char host[256];
	int port;
	if (bb_parse_addr(addr, host, sizeof(host), &port) < 0) {
		bb_errf(err, err_size, "bad address '%s' (host:port)", addr);
		return -EINVAL;
	}
	char ports[16];
	snprintf(ports, sizeof(ports), "%d", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc = getaddrinfo(host, ports, &hints, &ai);
	if (rc != 0) {
		bb_errf(err, err_size, "%s: %s", addr, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && source_count > 0 && ai->ai_family == AF_INET &&
	    (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >>
	     24) == 127) {
		unsigned k = source_next++ % source_count;
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl((127u << 24) | (2 + k));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			bb_errf(err, err_size, "bind 127.0.0.%u: %s", 2 + k,
				strerror(errno));
			close(fd);
			freeaddrinfo(ai);
			return -EADDRNOTAVAIL;
		}
	}
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = -errno;
		bb_errf(err, err_size, "connect %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int http_open(const struct bb_config *cfg, void **out, char *err,
		     size_t err_size)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->fd = tcp_connect(cfg->http_addr, cfg->source_count, err, err_size);
	if (c->fd < 0) {
		int rc = c->fd;
		free(c);
		return rc;
	}
	snprintf(c->host, sizeof(c->host), "%s", cfg->http_addr);
	snprintf(c->auth, sizeof(c->auth), "%s",
		 cfg->service_key ? cfg->service_key : "");
	c->in.max = HTTP_IN_SIZE_MAX;
	if (buf_reserve(&c->out, 1 << 16) < 0 ||
	    buf_reserve(&c->in, 1 << 16) < 0) {
		close(c->fd);
		buf_free(&c->out);
		buf_free(&c->in);
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static void http_close(void *conn)
{
	struct http_conn *c = conn;
	close(c->fd);
	buf_free(&c->out);
	buf_free(&c->in);
	free(c->raw_body);
	free(c->raw_req);
	for (uint32_t i = 0; i < c->q_count; i++)
		free(c->q[(c->q_head + i) % HTTP_QUEUE_MAX].raw_req);
	free(c);
}

/* Room for n more bytes of output; what was sent already is dropped
 * first when the room is short. 0 or -ENOMEM. */
static int out_reserve(struct http_conn *c, size_t n)
{
	ASSERT(c->out_off <= c->out.size);
	if (c->out_off > 0 &&
	    (c->out_off == c->out.size || c->out.cap - c->out.size < n)) {
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	return buf_reserve(&c->out, n) < 0 ? -ENOMEM : 0;
}

static int queue_request(struct http_conn *c, const char *method,
			 const char *path, const char *key, const char *body,
			 int kind, uint64_t booking_id)
{
	if (c->q_count == HTTP_QUEUE_MAX)
		return -EBUSY;
	size_t body_len = body ? strlen(body) : 0;
	size_t need = strlen(method) + strlen(path) + strlen(c->host) +
		      strlen(c->auth) + (key ? strlen(key) : 0) + body_len +
		      200;
	if (out_reserve(c, need) < 0)
		return -ENOMEM;
	size_t start = c->out.size;
	buf_printf(&c->out,
		   "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n",
		   method, path, c->host, c->auth);
	if (key != NULL && key[0])
		buf_printf(&c->out, "Idempotency-Key: %s\r\n", key);
	if (body != NULL)
		buf_printf(&c->out,
			   "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			   body_len, body);
	else
		buf_put(&c->out, "\r\n", 2);
	ASSERT(!c->out.broken); /* out_reserve made room for all of it */
	struct http_pending *p =
		&c->q[(c->q_head + c->q_count) % HTTP_QUEUE_MAX];
	p->kind = kind;
	p->booking_id = booking_id;
	p->index = (uint32_t)booking_id;
	p->raw_req = NULL;
	if (kind == HTTP_RAW) {
		size_t len = c->out.size - start;
		p->raw_req = malloc(len);
		if (p->raw_req == NULL)
			return -ENOMEM;
		memcpy(p->raw_req, c->out.data + start, len);
		p->raw_len = len;
	}
	c->q_count++;
	return 0;
}

/* Queues a raw request again (after a 429). */
static int requeue_raw(struct http_conn *c, char *req, size_t len,
		       uint32_t index)
{
	if (c->q_count == HTTP_QUEUE_MAX || out_reserve(c, len) < 0) {
		free(req);
		return -ENOMEM;
	}
	buf_put(&c->out, req, len);
	ASSERT(!c->out.broken); /* out_reserve made room */
	struct http_pending *p =
		&c->q[(c->q_head + c->q_count) % HTTP_QUEUE_MAX];
	p->kind = HTTP_RAW;
	p->index = index;
	p->raw_req = req;
	p->raw_len = len;
	c->q_count++;
	return 0;
}

static int http_submit(void *conn, const struct bb_op *op)
{
	struct http_conn *c = conn;
	char path[256], body[256];
	switch (op->kind) {
	case BB_OP_BOOK:
		snprintf(path, sizeof(path), "/v1/events/%" PRIu64 "/bookings",
			 op->event_id);
		snprintf(body, sizeof(body),
			 "{\"customer_id\":\"%s\",\"payment\":\"none\"}",
			 op->customer);
		return queue_request(c, "POST", path, op->key, body, op->kind,
				     0);
	case BB_OP_CANCEL:
		snprintf(path, sizeof(path), "/v1/bookings/%" PRIu64 "/cancel",
			 op->booking_id);
		return queue_request(c, "POST", path, op->key, "{}", op->kind,
				     op->booking_id);
	case BB_OP_EVENT_GET:
		snprintf(path, sizeof(path), "/v1/events/%" PRIu64,
			 op->event_id);
		return queue_request(c, "GET", path, NULL, NULL, op->kind, 0);
	case BB_OP_EVENT_LIST: {
		char from[32], to[32];
		time_t a = (time_t)(op->from_ms / 1000),
		       b = (time_t)(op->to_ms / 1000);
		struct tm tm;
		gmtime_r(&a, &tm);
		strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", &tm);
		gmtime_r(&b, &tm);
		strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(path, sizeof(path),
			 "/v1/events?org_id=%" PRIu64 "&from=%s&to=%s&limit=50",
			 op->org_id, from, to);
		return queue_request(c, "GET", path, NULL, NULL, op->kind, 0);
	}
	case BB_OP_BOOKING_GET:
		snprintf(path, sizeof(path), "/v1/bookings/%" PRIu64,
			 op->booking_id);
		return queue_request(c, "GET", path, NULL, NULL, op->kind,
				     op->booking_id);
	default: return -EINVAL;
	}
}

/* ---- Just enough JSON -------------------------------------------------- */

/* The value of "key" at the top level of the object starting at p (just
 * after its '{'), or NULL. Skips nested values and strings. */
static const char *jget(const char *p, const char *end, const char *key)
{
	size_t klen = strlen(key);
	int depth = 0;
	while (p < end) {
		char ch = *p;
		if (ch == '"') {
			const char *s = ++p;
			while (p < end && *p != '"') {
				if (*p == '\\')
					p++;
				p++;
			}
			if (p >= end)
				return NULL;
			size_t n = (size_t)(p - s);
			p++;
			if (depth == 0) {
				const char *q = p;
				while (q < end && (*q == ' ' || *q == '\t' ||
						   *q == '\n' || *q == '\r'))
					q++;
				if (q < end && *q == ':') {
					q++;
					while (q < end &&
					       (*q == ' ' || *q == '\n' ||
						*q == '\r' || *q == '\t'))
						q++;
					if (n == klen && memcmp(s, key, n) == 0)
						return q;
					p = q;
				}
			}
			continue;
		}
		if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']') {
			if (depth == 0)
				return NULL; /* end of our object */
			depth--;
		}
		p++;
	}
	return NULL;
}

/* Inside an object value: the position after its '{', or NULL. */
static const char *jobj(const char *v, const char *end)
{
	if (v == NULL || v >= end || *v != '{')
		return NULL;
	return v + 1;
}

static uint64_t jnum(const char *v, const char *end)
{
	if (v == NULL)
		return 0;
	if (v < end && *v == '"')
		v++;
	uint64_t x = 0;
	while (v < end && *v >= '0' && *v <= '9')
		x = x * 10 + (uint64_t)(*v++ - '0');
	return x;
}

static bool jstr_is(const char *v, const char *end, const char *s)
{
	size_t n = strlen(s);
	return v != NULL && v + n + 2 <= end && v[0] == '"' &&
	       memcmp(v + 1, s, n) == 0 && v[n + 1] == '"';
}

static void jstr_copy(const char *v, const char *end, char *out, size_t size)
{
	out[0] = 0;
	if (v == NULL || v >= end || *v != '"')
		return;
	v++;
	size_t n = 0;
	while (v < end && *v != '"' && n + 1 < size)
		out[n++] = *v++;
	out[n] = 0;
}

static enum bb_status jstatus(const char *v, const char *end)
{
	if (jstr_is(v, end, "confirmed"))
		return BB_ST_CONFIRMED;
	if (jstr_is(v, end, "pending_payment"))
		return BB_ST_PENDING;
	if (jstr_is(v, end, "waitlisted"))
		return BB_ST_WAITLISTED;
	if (jstr_is(v, end, "cancelled"))
		return BB_ST_CANCELLED;
	return v ? BB_ST_OTHER : BB_ST_NONE;
}

static enum bb_code code_from_status(int status)
{
	if (status >= 200 && status < 300)
		return BB_OK;
	switch (status) {
	case 404: return BB_NOT_FOUND;
	case 422: return BB_IDEM_MISMATCH;
	case 429: return BB_RATE_LIMITED;
	case 503: return BB_UNAVAILABLE;
	case 400:
	case 401:
	case 403:
	case 413: return BB_BAD_REQUEST;
	default: return status >= 500 ? BB_SERVER_ERROR : BB_OTHER;
	}
}

static void parse_booking(const char *o, const char *end, struct bb_result *out)
{
	out->booking_id = jnum(jget(o, end, "id"), end);
	out->event_id = jnum(jget(o, end, "event_id"), end);
	out->status = jstatus(jget(o, end, "status"), end);
	out->position = (uint32_t)jnum(jget(o, end, "position"), end);
}

static void parse_answer(const struct http_pending *p, int status,
			 bool replayed, const char *body, size_t len,
			 struct bb_result *out)
{
	const char *end = body + len;
	const char *top = len > 0 && body[0] == '{' ? body + 1 : NULL;
	memset(out, 0, sizeof(*out));
	out->replayed = replayed;
	out->code = code_from_status(status);
	if (out->code != BB_OK) {
		const char *e = top ? jobj(jget(top, end, "error"), end) : NULL;
		if (e != NULL &&
		    (status == 409 || status == 404 || status == 422)) {
			char name[48];
			jstr_copy(jget(e, end, "code"), end, name,
				  sizeof(name));
			enum bb_code c = bb_code_of(name);
			if (c != BB_OTHER || status == 409)
				out->code = c;
		}
		return;
	}
	if (top == NULL) {
		out->code = BB_TRANSPORT;
		return;
	}
	switch (p->kind) {
	case BB_OP_BOOK:
	case BB_OP_CANCEL:
	case BB_OP_BOOKING_GET: {
		const char *b = jobj(jget(top, end, "booking"), end);
		if (b == NULL) {
			out->code = BB_TRANSPORT;
			return;
		}
		parse_booking(b, end, out);
		if (p->kind == BB_OP_CANCEL) {
			const char *pr = jobj(jget(top, end, "promoted"), end);
			if (pr != NULL)
				out->promoted_id =
					jnum(jget(pr, end, "id"), end);
		}
		break;
	}
	case BB_OP_EVENT_GET: {
		const char *e = jobj(jget(top, end, "event"), end);
		if (e == NULL) {
			out->code = BB_TRANSPORT;
			return;
		}
		out->capacity = (uint32_t)jnum(jget(e, end, "capacity"), end);
		out->booked = (uint32_t)jnum(jget(e, end, "booked"), end);
		out->held = (uint32_t)jnum(jget(e, end, "held"), end);
		out->waitlist_length =
			(uint32_t)jnum(jget(e, end, "waitlist_length"), end);
		out->event_cancelled =
			jstr_is(jget(e, end, "status"), end, "cancelled");
		break;
	}
	case BB_OP_EVENT_LIST: {
		const char *v = jget(top, end, "events");
		uint32_t n = 0;
		if (v != NULL && *v == '[') {
			const char *s = v;
			while ((s = memmem(s, (size_t)(end - s), "\"start_at\"",
					   10)) != NULL) {
				n++;
				s += 10;
			}
		}
		out->count = n;
		break;
	}
	default: break;
	}
}

/* Parses one whole answer at the front of the input; 1, 0 (need more) or
 * -EPROTO. */
static int take_answer(struct http_conn *c, struct bb_result *out)
{
	const char *in = (const char *)c->in.data;
	size_t in_len = c->in.size;
	const char *hend = in_len ? memmem(in, in_len, "\r\n\r\n", 4) : NULL;
	if (hend == NULL) {
		if (in_len > 65536)
			return -EPROTO;
		return 0;
	}
	size_t head_len = (size_t)(hend - in) + 4;
	if (in_len < 12 || memcmp(in, "HTTP/1.", 7) != 0)
		return -EPROTO;
	int status = atoi(in + 9);
	size_t body_len = 0;
	bool replayed = false, close_after = false;
	const char *line = memchr(in, '\n', head_len);
	while (line != NULL && line + 1 < hend) {
		line++;
		const char *eol = memchr(line, '\n', (size_t)(hend + 2 - line));
		size_t n = eol ? (size_t)(eol - line) : 0;
		if (n > 15 && strncasecmp(line, "content-length:", 15) == 0)
			body_len = strtoul(line + 15, NULL, 10);
		else if (n > 20 &&
			 strncasecmp(line, "idempotent-replayed:", 20) == 0)
			replayed =
				strstr(line + 20, "true") != NULL &&
				(size_t)(strstr(line + 20, "true") - line) < n;
		else if (n > 18 &&
			 strncasecmp(line, "transfer-encoding:", 18) == 0)
			return -EPROTO; /* bookd answers with Content-Length */
		else if (n > 11 && strncasecmp(line, "connection:", 11) == 0 &&
			 strncasecmp(line + 11, " close", 6) == 0)
			close_after = true;
		line = eol;
	}
	if (body_len > HTTP_IN_SIZE_MAX)
		return -EPROTO;
	if (in_len < head_len + body_len)
		return 0;
	if (c->q_count == 0)
		return -EPROTO; /* an answer nobody asked for */
	struct http_pending *p = &c->q[c->q_head];
	const char *body = in + head_len;
	if (p->kind == HTTP_RAW) {
		free(c->raw_body);
		c->raw_body = malloc(body_len + 1);
		if (c->raw_body == NULL)
			return -ENOMEM;
		memcpy(c->raw_body, body, body_len);
		c->raw_body[body_len] = 0;
		c->raw_len = body_len;
		c->raw_status = status;
		c->raw_index = p->index;
		free(c->raw_req);
		c->raw_req = p->raw_req;
		c->raw_req_len = p->raw_len;
		p->raw_req = NULL;
		memset(out, 0, sizeof(*out));
	} else {
		parse_answer(p, status, replayed, body, body_len, out);
		if (p->kind == BB_OP_BOOKING_GET && out->booking_id == 0)
			out->booking_id = p->booking_id;
	}
	c->q_head = (c->q_head + 1) % HTTP_QUEUE_MAX;
	c->q_count--;
	size_t used = head_len + body_len;
	buf_consume(&c->in, used);
	(void)close_after;
	return 1;
}

/* Sends what the socket takes now of the queued output, without waiting;
 * the buffer is reset once all of it went. 0 or -errno. */
static int send_some(struct http_conn *c)
{
	ASSERT(c->out_off < c->out.size);
	ssize_t n = send(c->fd, c->out.data + c->out_off,
			 c->out.size - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	if (n > 0) {
		c->out_off += (size_t)n;
		ASSERT(c->out_off <= c->out.size);
		if (c->out_off == c->out.size) {
			c->out_off = 0;
			buf_clear(&c->out);
		}
	}
	return 0;
}

/* Writes what it can, reads what is there; waits up to timeout_ns (< 0:
 * no limit) for progress (0: tries both without asking ppoll: an event
 * loop calls it so once the socket is ready). 0 or -errno. */
static int pump(struct http_conn *c, int64_t timeout_ns)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	if (c->out_off < c->out.size)
		pfd.events |= POLLOUT;
	/* ppoll: to the ns (a poll's ms, rounded up, sent an open loop's
	 * request up to 1 ms after its time) */
	struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
			       .tv_nsec = timeout_ns % 1000000000 };
	int rc = 1;
	if (timeout_ns == 0)
		pfd.revents = pfd.events;
	else
		rc = ppoll(&pfd, 1, timeout_ns < 0 ? NULL : &ts, NULL);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc == 0)
		return 0;
	if (pfd.revents & POLLOUT) {
		int sent = send_some(c);
		if (sent < 0)
			return sent;
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
		rc = buf_reserve(&c->in, 16384);
		if (rc < 0)
			return rc == -ENOBUFS ? -EPROTO
					      : rc; /* HTTP_IN_SIZE_MAX */
		ssize_t n = recv(c->fd, c->in.data + c->in.size,
				 c->in.cap - c->in.size, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n > 0)
			c->in.size += (size_t)n;
	}
	return 0;
}

static int http_poll(void *conn, struct bb_result *out, int max,
		     int64_t timeout_ns)
{
	struct http_conn *c = conn;
	int got = 0;
	int64_t deadline = bb_now_ns() + timeout_ns;
	bool pumped = false;
	/* send first, without waiting */
	if (c->out_off < c->out.size) {
		int sent = send_some(c);
		if (sent < 0)
			return sent;
	}
	for (;;) {
		while (got < max && c->q_count > 0) {
			int rc = take_answer(c, &out[got]);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
			got++;
		}
		if (got > 0 || c->q_count == 0)
			return got;
		int64_t left = deadline - bb_now_ns();
		if (pumped && left <= 0)
			return 0;
		/* timeout 0: reads what is there, once */
		int rc = pump(c, left > 0 ? left : 0);
		if (rc < 0)
			return rc;
		pumped = true;
	}
}

static int http_flush(void *conn)
{
	struct http_conn *c = conn;
	return c->out_off < c->out.size ? send_some(c) : 0;
}

static int http_fd(void *conn, short *events)
{
	struct http_conn *c = conn;
	*events = c->out_off < c->out.size ? POLLIN | POLLOUT : POLLIN;
	return c->fd;
}

/* ---- Setup through the API -------------------------------------------- */

/* Sends a batch of raw requests already queued and waits for every answer;
 * calls fn on each (status, body). */
static int raw_drain(struct http_conn *c,
		     int (*fn)(void *ctx, unsigned i, int status,
			       const char *body, size_t len),
		     void *ctx, char *err, size_t err_size)
{
	struct bb_result dummy;
	unsigned retries = 0;
	while (c->q_count > 0) {
		int n = http_poll(c, &dummy, 1, 30 * 1000000000LL);
		if (n < 0) {
			bb_errf(err, err_size, "HTTP connection: %s",
				strerror(-n));
			return n;
		}
		if (n == 0) {
			bb_errf(err, err_size, "HTTP: no answer within 30 s");
			return -ETIMEDOUT;
		}
		if (c->raw_status == 429 && retries < SETUP_RETRY_MAX) {
			/* bookd's rate limits: wait a little, send it again */
			retries++;
			usleep(2000);
			int rc = requeue_raw(c, c->raw_req, c->raw_req_len,
					     c->raw_index);
			c->raw_req = NULL;
			if (rc < 0)
				return rc;
			continue;
		}
		int rc = fn(ctx, c->raw_index, c->raw_status, c->raw_body,
			    c->raw_len);
		if (rc < 0) {
			bb_errf(err, err_size, "HTTP %d: %.200s", c->raw_status,
				c->raw_body);
			return rc;
		}
	}
	return 0;
}

struct setup_ctx {
	struct bb_dataset *ds;
	uint64_t *ids;	  /* written by index */
	const char *wrap; /* the object name: "org", "location", ... */
	uint32_t base;
};

static int take_id(void *ctx, unsigned i, int status, const char *body,
		   size_t len)
{
	struct setup_ctx *s = ctx;
	if (status != 200 && status != 201)
		return -EIO;
	const char *end = body + len;
	const char *o = len > 0 && body[0] == '{'
				? jobj(jget(body + 1, end, s->wrap), end)
				: NULL;
	uint64_t id = o ? jnum(jget(o, end, "id"), end) : 0;
	if (id == 0)
		return -EPROTO;
	s->ids[i] = id;
	return 0;
}

static int series_ok(void *ctx, unsigned i, int status, const char *body,
		     size_t len)
{
	(void)ctx;
	(void)i;
	(void)len;
	(void)body;
	return status == 200 || status == 201 ? 0 : -EIO;
}

#define SETUP_BATCH                                                            \
	1 /* bookd answers pipelined catalogue requests badly (stalls): one at a time */

static int http_setup(const struct bb_config *cfg, struct bb_dataset *ds,
		      char *err, size_t err_size)
{
	struct http_conn *c;
	int rc = http_open(cfg, (void **)&c, err, err_size);
	if (rc < 0)
		return rc;
	uint32_t no = ds->org_count, ne = ds->event_count;
	uint64_t *locs = calloc(no, sizeof(*locs)),
		 *insts = calloc(no, sizeof(*insts));
	if (bb_dataset_alloc(ds) < 0 || locs == NULL || insts == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	char body[1024], key[96], path[512];
	struct setup_ctx sx = { .ds = ds };
	/* orgs, then a location and an instructor each */
	for (int pass = 0; pass < 3; pass++) {
		static const char *paths[] = { "/v1/orgs", "/v1/locations",
					       "/v1/instructors" };
		static const char *wraps[] = { "org", "location",
					       "instructor" };
		uint64_t *ids = pass == 0   ? ds->org_ids
				: pass == 1 ? locs
					    : insts;
		for (uint32_t b = 0; b < no; b += SETUP_BATCH) {
			for (uint32_t i = b; i < no && i < b + SETUP_BATCH;
			     i++) {
				if (pass == 0)
					snprintf(body, sizeof(body),
						 "{\"name\":\"bb-%s-org-%u\",\"timezone\":\"UTC\"}",
						 ds->run_tag, i);
				else
					snprintf(body, sizeof(body),
						 "{\"org_id\":\"%" PRIu64
						 "\",\"name\":\"%s %u\"}",
						 ds->org_ids[i],
						 pass == 1 ? "studio" : "coach",
						 i);
				snprintf(key, sizeof(key), "bb-%s-%s-%u",
					 ds->run_tag, wraps[pass], i);
				rc = queue_request(c, "POST", paths[pass], key,
						   body, HTTP_RAW, i);
				if (rc < 0)
					goto out;
			}
			sx.ids = ids;
			sx.wrap = wraps[pass];
			sx.base = b;
			rc = raw_drain(c, take_id, &sx, err, err_size);
			if (rc < 0)
				goto out;
		}
	}
	/* one series per event, on ds->day only */
	for (uint32_t b = 0; b < ne; b += SETUP_BATCH) {
		for (uint32_t i = b; i < ne && i < b + SETUP_BATCH; i++) {
			uint32_t o = i % no;
			unsigned minute = (unsigned)((uint64_t)i * 1440 / ne);
			snprintf(body, sizeof(body),
				 "{\"org_id\":\"%" PRIu64
				 "\",\"location_id\":\"%" PRIu64
				 "\",\"instructor_id\":\"%" PRIu64
				 "\",\"title\":\"class %u\","
				 "\"capacity\":%u,\"waitlist_capacity\":%u,\"price_cents\":0,"
				 "\"currency\":\"usd\",\"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\","
				 "\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"%02u:%02u\","
				 "\"duration_min\":60,\"first_date\":\"%s\",\"last_date\":\"%s\"}",
				 ds->org_ids[o], locs[o], insts[o], i,
				 ds->capacity, ds->waitlist_capacity,
				 minute / 60, minute % 60, ds->day, ds->day);
			snprintf(key, sizeof(key), "bb-%s-series-%u",
				 ds->run_tag, i);
			rc = queue_request(c, "POST", "/v1/series", key, body,
					   HTTP_RAW, i);
			if (rc < 0)
				goto out;
		}
		rc = raw_drain(c, series_ok, NULL, err, err_size);
		if (rc < 0)
			goto out;
	}
	/* the events, by org */
	uint32_t found = 0;
	for (uint32_t o = 0; o < no; o++) {
		char cursor[128] = "";
		for (int page = 0; page < 100000; page++) {
			snprintf(path, sizeof(path),
				 "/v1/events?org_id=%" PRIu64
				 "&from=%s&limit=500%s%s",
				 ds->org_ids[o], ds->day,
				 cursor[0] ? "&cursor=" : "", cursor);
			rc = queue_request(c, "GET", path, NULL, NULL, HTTP_RAW,
					   0);
			if (rc < 0)
				goto out;
			struct bb_result dummy;
			int n = http_poll(c, &dummy, 1, 30 * 1000000000LL);
			if (n == 1 && c->raw_status == 429 &&
			    page < SETUP_RETRY_MAX) {
				usleep(2000);
				page--; /* the same page again */
				continue;
			}
			if (n <= 0 || c->raw_status != 200) {
				bb_errf(err, err_size,
					"listing events: HTTP %d %.200s",
					c->raw_status,
					c->raw_body ? c->raw_body : "");
				rc = -EIO;
				goto out;
			}
			const char *end = c->raw_body + c->raw_len;
			const char *top = c->raw_body + 1;
			const char *arr = jget(top, end, "events");
			if (arr == NULL || *arr != '[') {
				rc = -EPROTO;
				bb_errf(err, err_size,
					"listing events: no events array");
				goto out;
			}
			/* each element: an object; take its top-level "id" */
			const char *p = arr + 1;
			while (p < end && *p != ']') {
				while (p < end &&
				       (*p == ' ' || *p == ',' || *p == '\n'))
					p++;
				if (p >= end || *p != '{')
					break;
				uint64_t id = jnum(jget(p + 1, end, "id"), end);
				if (found < ne) {
					ds->event_ids[found] = id;
					ds->event_org[found] = o;
				}
				found++;
				/* skip the object */
				int depth = 0;
				bool in_str = false;
				for (; p < end; p++) {
					if (in_str) {
						if (*p == '\\')
							p++;
						else if (*p == '"')
							in_str = false;
					} else if (*p == '"')
						in_str = true;
					else if (*p == '{')
						depth++;
					else if (*p == '}' && --depth == 0) {
						p++;
						break;
					}
				}
			}
			jstr_copy(jget(top, end, "next_cursor"), end, cursor,
				  sizeof(cursor));
			if (cursor[0] == 0)
				break;
		}
	}
	rc = bb_events_found(found, ne, err, err_size);
out:
	if (rc < 0 && err[0] == 0)
		bb_errf(err, err_size, "setup: %s", strerror(-rc));
	free(locs);
	free(insts);
	http_close(c);
	return rc;
}

/* ---- Helpers for bookbench.c ------------------------------------------- */

static int http_get_raw(const struct bb_config *cfg, const char *path,
			int *status, char *out, size_t out_size)
{
	char err[BB_ERR_SIZE];
	struct http_conn *c;
	int rc = http_open(cfg, (void **)&c, err, sizeof(err));
	if (rc < 0)
		return rc;
	rc = queue_request(c, "GET", path, NULL, NULL, HTTP_RAW, 0);
	struct bb_result dummy;
	int n = rc < 0 ? rc : http_poll(c, &dummy, 1, 2 * 1000000000LL);
	if (n == 1) {
		*status = c->raw_status;
		if (out != NULL)
			snprintf(out, out_size, "%s",
				 c->raw_body ? c->raw_body : "");
		rc = 0;
	} else {
		rc = n < 0 ? n : -ETIMEDOUT;
	}
	http_close(c);
	return rc;
}

int bb_http_health(const struct bb_config *cfg)
{
	int status = 0;
	int rc = http_get_raw(cfg, "/health", &status, NULL, 0);
	return rc == 0 && status == 200 ? 0 : -EAGAIN;
}

void bb_bookd_describe(const struct bb_config *cfg, const char *via, char *out,
		       size_t out_size)
{
	static char body[1 << 16];
	int status = 0;
	if (http_get_raw(cfg, "/v1/admin/status", &status, body, sizeof(body)) <
		    0 ||
	    status != 200) {
		snprintf(out, out_size, "{\"system\":\"bookd (%s)\"}", via);
		return;
	}
	const char *end = body + strlen(body);
	const char *top = body[0] == '{' ? body + 1 : NULL;
	char state[32] = "unknown";
	const char *r = top ? jobj(jget(top, end, "replication"), end) : NULL;
	if (r != NULL)
		jstr_copy(jget(r, end, "state"), end, state, sizeof(state));
	uint64_t shards = top ? jnum(jget(top, end, "shards"), end) : 0;
	if (shards == 0 && top != NULL) {
		const char *s = jget(top, end, "shards");
		if (s != NULL && *s == '{')
			shards = jnum(jget(s + 1, end, "count"), end);
	}
	snprintf(out, out_size,
		 "{\"system\":\"bookd (%s)\",\"replication\":\"%s\",\"shards\":%" PRIu64
		 ",\"http\":\"%s\",\"binary\":\"%s\"}",
		 via, state, shards, cfg->http_addr, cfg->binary_addr);
}

int bb_bookd_version(const struct bb_config *cfg, struct bb_bookd_info *out)
{
	static char body[1 << 16];
	int status = 0;
	if (http_get_raw(cfg, "/v1/admin/status", &status, body, sizeof(body)) <
		    0 ||
	    status != 200 || body[0] != '{')
		return -ENOENT;
	const char *end = body + strlen(body);
	jstr_copy(jget(body + 1, end, "version"), end, out->version,
		  sizeof(out->version));
	jstr_copy(jget(body + 1, end, "build_type"), end, out->build_type,
		  sizeof(out->build_type));
	return out->version[0] ? 0 : -ENOENT;
}

static void http_describe(const struct bb_config *cfg, char *out,
			  size_t out_size)
{
	bb_bookd_describe(cfg, "HTTP", out, out_size);
}

const struct bb_driver bb_driver_http = {
	.name = "bookd-http",
	.inflight_max = 1024,
	BB_DRIVER_FUNCS(http),
};
