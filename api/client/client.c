/*
 * client.c: the C client library of the binary protocol (bookd_client.h,
 * docs/protocol.md).
 *
 * One socket per bc_client, read and written without waiting (MSG_DONTWAIT)
 * and polled only when that found nothing to do. Requests are packed
 * (proto.c) into an output buffer (struct buf, core/buf.h, as the input
 * buffer); bc_flush() sends it with one send when the socket takes it all,
 * else polls for output and input and reads whatever answers arrive into
 * the input buffer meanwhile, so that a client sending many requests never
 * deadlocks against a server that blocks on answers nobody reads.
 * bc_recv() takes one frame from the input buffer (reading more when
 * needed), decodes it in the client's zone and fills a struct bc_answer
 * (mp_read_answer); bc_recv_ready() does the same only for a frame already
 * whole (no system call), bc_wait() reads until one is. Synchronous calls
 * are one request, flush, and bc_recv until the answer with its id.
 *
 * Limits: the input buffer holds at most CLIENT_IN_SIZE_MAX bytes (its
 * max: when full of unread answers, bc_flush only sends); a frame announced over MP_BODY_SIZE_MAX is -EPROTO.
 */
#include "bookd_client.h"
#include "bookd_assert.h"
#include "proto.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_IN_SIZE_MAX (64u << 20)
#define CLIENT_READ_SIZE (64u << 10)
#define CLIENT_TIMEOUT_MS_DEFAULT 30000
#define CLIENT_FLUSH_AT (256u << 10) /* queued bytes: send without waiting */

struct bc_client {
	int fd;
	int timeout_ms;
	bool broken;
	uint64_t next_id;
	uint64_t pending;
	struct buf out;
	size_t out_sent;
	msgpack_packer pk;
	struct buf in; /* max CLIENT_IN_SIZE_MAX; read from in_off */
	size_t in_off;
	bool read_idle; /* the last read without waiting found nothing */
	msgpack_zone zone;
	char role[16];
	struct bc_answer last;
	/* the last answer as decoded (in zone: valid until the next one),
	 * for what struct bc_answer does not hold (bc_cat_get, _list) */
	msgpack_object last_obj;
	struct bc_event *events;
	struct bc_booking *bookings;
};

/* ---- connection ---- */

static int client__dial(const char *addr, char *err, size_t err_size)
{
	const char *path = NULL;
	int fd, one = 1;

	if (strncmp(addr, "unix:", 5) == 0)
		path = addr + 5;
	else if (addr[0] == '/')
		path = addr;
	if (path) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(path) >= sizeof(sa.sun_path)) {
			snprintf(err, err_size, "%s: path too long", path);
			return -ENAMETOOLONG;
		}
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			int rc = -errno;
			snprintf(err, err_size, "connect %s: %s", path,
				 strerror(-rc));
			close(fd);
			return rc;
		}
		return fd;
	}

	char host[256];
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t hn;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc;

	if (!colon || colon[1] == '\0') {
		snprintf(err, err_size, "%s: want host:port or a unix path",
			 addr);
		return -EINVAL;
	}
	hn = (size_t)(colon - addr);
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (hn == 0 || hn >= sizeof(host)) {
		snprintf(err, err_size, "%s: bad host", addr);
		return -EINVAL;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "%s: %s", addr, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	rc = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					 sizeof(one));
			freeaddrinfo(res);
			return fd;
		}
		rc = -errno;
		close(fd);
	}
	freeaddrinfo(res);
	snprintf(err, err_size, "connect %s: %s", addr, strerror(-rc));
	return rc;
}

/* The client's timeout (bc_set_timeout) in µs, -1 when none. */
static int64_t client__timeout_us(const bc_client *c)
{
	return c->timeout_ms > 0 ? (int64_t)c->timeout_ms * 1000 : -1;
}

/* Waits up to timeout_us (< 0: no limit) for events: the revents,
 * -ETIMEDOUT, or -errno. */
static int client__poll(bc_client *c, short events, int64_t timeout_us)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	struct timespec ts = { .tv_sec = timeout_us / 1000000,
			       .tv_nsec = timeout_us % 1000000 * 1000 };
	int rc;

	do
		rc = ppoll(&p, 1, timeout_us < 0 ? NULL : &ts, NULL);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	return p.revents;
}

/* Reads what the socket holds now into the input buffer, without
 * waiting: the bytes read (> 0), 0 when there were none (EAGAIN), or -errno
 * (-ECONNRESET: the server closed; -ENOBUFS: full of unread answers). */
static long client__read(bc_client *c)
{
	ssize_t n;
	int rc;

	ASSERT(c->in_off <= c->in.size);
	ASSERT(c->in.max == CLIENT_IN_SIZE_MAX);
	/* Moves unread bytes to the front only when the room is short. */
	if (c->in_off > 0 && (c->in_off == c->in.size ||
			      c->in.cap - c->in.size < CLIENT_READ_SIZE)) {
		buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
	rc = buf_reserve(&c->in, CLIENT_READ_SIZE);
	if (rc < 0)
		return rc; /* -ENOBUFS: full of unread answers */
	ASSERT(c->in.cap - c->in.size >= CLIENT_READ_SIZE);
	do
		n = recv(c->fd, c->in.data + c->in.size, c->in.cap - c->in.size,
			 MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->in.size += (size_t)n;
	ASSERT(c->in.size <= c->in.cap);
	return n;
}

/* Sends what the socket takes now of the queued output, without waiting.
 * 0 or -errno. */
static int client__send(bc_client *c)
{
	ssize_t n;

	ASSERT(c->out_sent < c->out.size);
	do
		n = send(c->fd, c->out.data + c->out_sent,
			 c->out.size - c->out_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	c->out_sent += (size_t)n;
	ASSERT(c->out_sent <= c->out.size);
	return 0;
}

int bc_flush(bc_client *c)
{
	int rc = 0;

	if (c->broken)
		return -ECONNRESET;
	if (c->out.broken) {
		c->broken = true;
		return -ENOMEM;
	}
	/* Sends first; polls only when the socket took not all of it, then
	 * reads answers meanwhile so that neither side blocks. */
	while (c->out_sent < c->out.size) {
		rc = client__send(c);
		if (rc < 0 || c->out_sent == c->out.size)
			break;
		int ev = client__poll(c, POLLOUT | POLLIN,
				      client__timeout_us(c));
		if (ev < 0) {
			rc = ev;
			break;
		}
		if (ev & POLLIN) {
			long n = client__read(c);
			if (n < 0 && n != -ENOBUFS) { /* full: just send */
				rc = (int)n;
				break;
			}
		}
	}
	if (rc < 0) {
		c->broken = true;
		return rc;
	}
	ASSERT(c->out_sent == c->out.size); /* all of it went */
	buf_clear(&c->out);
	c->out_sent = 0;
	return 0;
}

/* The size of the whole frame at the front of the unread input (header
 * included), or mp_frame_size's -2 (need more) or -1 (malformed). */
static long client__frame_size(const bc_client *c)
{
	ASSERT(c->in_off <= c->in.size);
	if (c->in.size == c->in_off)
		return -2; /* nothing unread (data may be NULL) */
	return mp_frame_size(c->in.data + c->in_off, c->in.size - c->in_off);
}

static int64_t client__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads until a whole frame is at the front of the unread input, waiting
 * up to timeout_us in all (< 0: no limit). 0, or -ETIMEDOUT, -EPROTO
 * (malformed), -errno. Reads first, without waiting, when more than one
 * answer is due and the last such try found bytes (under load the answers
 * are there already: no poll), and whenever timeout_us is 0 (an event
 * loop that saw the socket readable asks so: the read is the look); polls
 * first otherwise (the one answer due to a synchronous call is seldom
 * there the moment its request left). */
static int client__fill(bc_client *c, int64_t timeout_us)
{
	int64_t deadline = -1, left = timeout_us;

	for (;;) {
		long size = client__frame_size(c);
		if (size > 0)
			return 0;
		if (size == -1)
			return -EPROTO;
		if (timeout_us == 0 || (c->pending > 1 && !c->read_idle)) {
			long n = client__read(c);
			if (n < 0)
				return (int)n;
			c->read_idle = n == 0;
			if (n > 0)
				continue;
			if (timeout_us == 0)
				return -ETIMEDOUT;
		}
		if (timeout_us >= 0) {
			if (deadline < 0)
				deadline = client__now_us() + timeout_us;
			else
				left = deadline - client__now_us();
			if (left < 0)
				return -ETIMEDOUT;
		}
		int ev = client__poll(c, POLLIN, left);
		if (ev < 0)
			return ev;
		long n = client__read(c);
		if (n < 0)
			return (int)n;
		c->read_idle = false;
	}
}

/* The whole frame at the front of the unread input, decoded into *o
 * (valid until the zone is cleared) and taken. 0 or -EPROTO. */
static int client__take(bc_client *c, msgpack_object *o)
{
	long size = client__frame_size(c);
	const uint8_t *body;
	int rc;

	ASSERT(size > 0); /* client__fill found it whole */
	ASSERT((size_t)size > MP_HEADER_SIZE);
	ASSERT((size_t)size <= c->in.size - c->in_off);
	body = c->in.data + c->in_off + MP_HEADER_SIZE;
	msgpack_zone_clear(&c->zone);
	rc = mp_decode(&c->zone, body, (size_t)size - MP_HEADER_SIZE, o);
	c->in_off += (size_t)size;
	return rc == 0 ? 0 : -EPROTO;
}

/* The next frame's body, decoded into *o, waiting for it up to the
 * client's timeout. 0 or -errno. */
static int client__frame(bc_client *c, msgpack_object *o)
{
	int rc = client__fill(c, client__timeout_us(c));

	return rc < 0 ? rc : client__take(c, o);
}

static void client__copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
}

int bc_connect(const char *addr, const char *auth, bc_client **out, char *err,
	       size_t err_size)
{
	bc_client *c;
	msgpack_object o;
	const msgpack_object *v;
	struct bc_answer a;
	char dummy[8];
	size_t start;
	int rc;

	if (!err) {
		err = dummy;
		err_size = sizeof(dummy);
	}
	err[0] = '\0';
	if (!addr)
		addr = BC_DEFAULT_ADDR;
	if (!auth)
		auth = "";
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->in.max = CLIENT_IN_SIZE_MAX;
	c->timeout_ms = CLIENT_TIMEOUT_MS_DEFAULT;
	c->next_id = 1;
	c->events = calloc(BC_LIST_LIMIT_MAX, sizeof(*c->events));
	c->bookings = calloc(BC_LIST_LIMIT_MAX, sizeof(*c->bookings));
	if (!c->events || !c->bookings ||
	    !msgpack_zone_init(&c->zone, MP_ZONE_CHUNK_SIZE)) {
		free(c->events);
		free(c->bookings);
		free(c);
		return -ENOMEM;
	}
	msgpack_packer_init(&c->pk, &c->out, mp_buf_write);
	c->fd = client__dial(addr, err, err_size);
	if (c->fd < 0) {
		rc = c->fd;
		c->fd = -1;
		goto out_free;
	}
	start = mp_frame_begin(&c->pk, c->out.size);
	msgpack_pack_map(&c->pk, 2);
	mp_pack_kv_uint(&c->pk, "v", MP_VERSION);
	mp_pack_kv_str(&c->pk, "auth", auth);
	if (c->out.broken || mp_frame_end(c->out.data, start, c->out.size)) {
		snprintf(err, err_size, "auth too long");
		rc = -EINVAL;
		goto out_free;
	}
	rc = bc_flush(c);
	if (rc == 0)
		rc = client__frame(c, &o);
	if (rc < 0) {
		snprintf(err, err_size, "hello: %s", strerror(-rc));
		goto out_free;
	}
	if (mp_read_answer(&o, &a, NULL, 0, NULL, 0) != 0) {
		snprintf(err, err_size, "hello: malformed answer");
		rc = -EPROTO;
		goto out_free;
	}
	c->last = a;
	if (a.code != BC_OK) {
		snprintf(err, err_size, "%s: %s", a.code_name, a.message);
		rc = a.code == BC_UNSUPPORTED_VERSION ? -EPROTONOSUPPORT
						      : -EACCES;
		goto out_free;
	}
	v = mp_get(&o, "role");
	if (!v || mp_str_copy(v, c->role, sizeof(c->role)) != 0)
		client__copy(c->role, sizeof(c->role), "unknown");
	*out = c;
	return 0;

out_free:
	bc_close(c);
	return rc;
}

void bc_close(bc_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	msgpack_zone_destroy(&c->zone);
	buf_free(&c->out);
	buf_free(&c->in);
	free(c->events);
	free(c->bookings);
	free(c);
}

void bc_set_timeout(bc_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

const char *bc_role(const bc_client *c) { return c->role; }

const struct bc_answer *bc_last(const bc_client *c) { return &c->last; }

int bc_fd(const bc_client *c) { return c->fd; }

uint64_t bc_pending(const bc_client *c) { return c->pending; }

/* ---- answers ---- */

/* The answer in the frame at the front of the input (whole): decoded into
 * c->last and *out (out may be NULL), pending counted down. 0 or -errno
 * (the connection is then broken). */
static int client__answer(bc_client *c, struct bc_answer *out)
{
	msgpack_object o;
	int rc = client__take(c, &o);

	if (rc < 0) {
		c->broken = true;
		return rc;
	}
	c->last_obj = o;
	if (mp_read_answer(&o, &c->last, c->events, BC_LIST_LIMIT_MAX,
			   c->bookings, BC_LIST_LIMIT_MAX) != 0) {
		c->broken = true;
		return -EPROTO;
	}
	if (c->last.req_id != 0 && c->pending > 0 &&
	    (c->last.index < 0 || (uint32_t)c->last.index + 1 >= c->last.count))
		c->pending--;
	if (out)
		*out = c->last;
	return 0;
}

int bc_recv(bc_client *c, struct bc_answer *out)
{
	int rc;

	if (c->broken)
		return -ECONNRESET;
	/* Send what is queued before waiting; not while whole answers are
	 * buffered already (queued requests then go out in one write). */
	if (client__frame_size(c) <= 0) {
		rc = bc_flush(c);
		if (rc < 0)
			return rc;
	}
	rc = client__fill(c, client__timeout_us(c));
	if (rc < 0) {
		c->broken = true;
		return rc;
	}
	return client__answer(c, out);
}

int bc_recv_ready(bc_client *c, struct bc_answer *out)
{
	long size;
	int rc;

	if (c->broken)
		return -ECONNRESET;
	size = client__frame_size(c);
	if (size == -2)
		return 0;
	if (size == -1) {
		c->broken = true;
		return -EPROTO;
	}
	rc = client__answer(c, out);
	return rc < 0 ? rc : 1;
}

int bc_wait(bc_client *c, int64_t timeout_us)
{
	int rc;

	if (c->broken)
		return -ECONNRESET;
	rc = bc_flush(c);
	if (rc < 0)
		return rc;
	if (client__frame_size(c) > 0)
		return 1;
	if (c->pending == 0)
		return 0; /* nothing due: nothing will come */
	rc = client__fill(c, timeout_us);
	if (rc == -ETIMEDOUT)
		return 0;
	if (rc < 0) {
		c->broken = true;
		return rc;
	}
	return 1;
}

/* ---- requests ---- */

/* Starts a request frame of n fields besides id and op. */
static size_t req_begin(bc_client *c, enum mp_op op, uint32_t n, uint64_t *id)
{
	size_t start = mp_frame_begin(&c->pk, c->out.size);

	ASSERT(c->out.broken || c->out.size == start + MP_HEADER_SIZE);
	ASSERT(c->next_id != 0); /* ids are never 0 (0: not a request's) */
	*id = c->next_id++;
	msgpack_pack_map(&c->pk, 2 + n);
	mp_pack_kv_uint(&c->pk, "id", *id);
	mp_pack_kv_uint(&c->pk, "op", op);
	return start;
}

static int req_end(bc_client *c, size_t start)
{
	if (c->out.broken) {
		c->broken = true;
		return -ENOMEM;
	}
	ASSERT(start + MP_HEADER_SIZE <= c->out.size); /* req_begin's header */
	if (mp_frame_end(c->out.data, start, c->out.size) != 0) {
		c->out.size = start; /* drop it */
		return -EMSGSIZE;
	}
	c->pending++;
	ASSERT(c->pending <= BC_PIPELINE_MAX); /* the *_async checks */
	if (c->out.size - c->out_sent >= CLIENT_FLUSH_AT)
		return bc_flush(c);
	return 0;
}

static void kv_opt_str(bc_client *c, const char *k, const char *v)
{
	if (v)
		mp_pack_kv_str(&c->pk, k, v);
}

/* A key whose value 0 means "not given": packed only when not 0. */
static void kv_opt_uint(bc_client *c, const char *k, uint64_t v)
{
	if (v)
		mp_pack_kv_uint(&c->pk, k, v);
}

static void kv_opt_int(bc_client *c, const char *k, int64_t v)
{
	if (v)
		mp_pack_kv_int(&c->pk, k, v);
}

static bool str_ok(const char *s, size_t max) { return s && strlen(s) <= max; }

/* Waits for the answer to id (synchronous calls): its code, or -errno. */
static int call_wait(bc_client *c, uint64_t id)
{
	ASSERT(c->pending > 0); /* id is queued */
	for (;;) {
		int rc = bc_recv(c, NULL);
		if (rc < 0)
			return rc;
		if (c->last.req_id == id || c->last.req_id == 0)
			return c->last.code;
	}
}

static int call_check(bc_client *c)
{
	if (c->broken)
		return -ECONNRESET;
	if (c->pending > 0)
		return -EBUSY;
	return 0;
}

#define CALL_START(c)                                                          \
	do {                                                                   \
		int rc_ = call_check(c);                                       \
		if (rc_ < 0)                                                   \
			return rc_;                                            \
	} while (0)

static int call_end(bc_client *c, size_t start, uint64_t id)
{
	int rc = req_end(c, start);

	if (rc < 0)
		return rc;
	rc = call_wait(c, id);
	if (rc >= 0)
		c->pending = 0;
	return rc;
}

/* call_end, then on BC_OK the answer's field src (in c->last, size bytes)
 * copied to dst when the caller wants it (dst not NULL). */
static int call_end_out(bc_client *c, size_t start, uint64_t id, void *dst,
			const void *src, size_t size)
{
	int rc = call_end(c, start, id);

	if (rc == BC_OK && dst)
		memcpy(dst, src, size);
	return rc;
}

/* A list answer's have items (each size bytes) into out, at most cap of
 * them; how many in *count. */
static void copy_list(void *out, const void *items, uint32_t have, uint32_t cap,
		      size_t size, uint32_t *count)
{
	uint32_t n = have < cap ? have : cap;

	if (out && n)
		memcpy(out, items, n * size);
	if (count)
		*count = n;
}

/* A synchronous call made of its *_async one: rc is what that returned,
 * id the request it queued. The answer's code, or -errno. */
static int call_async_end(bc_client *c, int rc, uint64_t id)
{
	if (rc < 0)
		return rc;
	ASSERT(id != 0);
	rc = call_wait(c, id);
	c->pending = 0;
	return rc;
}

/* Queues a request whose one field is an id (event.get, booking.get). */
static int id_req_async(bc_client *c, enum mp_op op, const char *field,
			uint64_t id, uint64_t *req_id)
{
	size_t start;

	if (c->pending >= BC_PIPELINE_MAX)
		return -EBUSY;
	start = req_begin(c, op, 1, req_id);
	mp_pack_kv_uint(&c->pk, field, id);
	return req_end(c, start);
}

/* The same, synchronous: the answer is c->last. Its code, or -errno. */
static int id_req(bc_client *c, enum mp_op op, const char *field, uint64_t id)
{
	uint64_t rid = 0;
	int rc;

	CALL_START(c);
	rc = id_req_async(c, op, field, id, &rid);
	return call_async_end(c, rc, rid);
}

/* The settings given of s (NULL: none): how many; packed when pack. */
static unsigned org_settings_put(bc_client *c, const struct bc_org_settings *s,
				 bool pack)
{
	const char *names[] = { "cancel_cutoff_hours", "hold_minutes",
				"horizon_days" };
	int32_t v[3] = { -1, -1, -1 };
	unsigned n = 0;

	if (s) {
		v[0] = s->cancel_cutoff_hours;
		v[1] = s->hold_minutes;
		v[2] = s->horizon_days;
	}
	for (unsigned i = 0; i < 3; i++) {
		if (v[i] < 0)
			continue;
		if (pack)
			mp_pack_kv_uint(&c->pk, names[i], (uint64_t)v[i]);
		n++;
	}
	return n;
}

/* org.create (name, tz, settings), location.create and
 * instructor.create (org_id, name), with their key; the new id in *id. */
static int cat_create(bc_client *c, enum mp_op op, uint64_t org_id,
		      const char *name, const char *tz,
		      const struct bc_org_settings *settings, const char *key,
		      uint64_t *id)
{
	bool org = op == MP_OP_ORG_CREATE;
	uint64_t rid;
	size_t start;

	CALL_START(c);
	if (!str_ok(name, BC_NAME_SIZE_MAX) || (org && !str_ok(tz, 64)))
		return -EINVAL;
	ASSERT(org || (tz == NULL && settings == NULL));
	start = req_begin(c, op,
			  2 + (key != NULL) +
				  org_settings_put(c, settings, false),
			  &rid);
	if (!org)
		mp_pack_kv_uint(&c->pk, "org_id", org_id);
	mp_pack_kv_str(&c->pk, "name", name);
	if (org)
		mp_pack_kv_str(&c->pk, "timezone", tz);
	org_settings_put(c, settings, true);
	kv_opt_str(c, "key", key);
	return call_end_out(c, start, rid, id, &c->last.id, sizeof(c->last.id));
}

int bc_org_create(bc_client *c, const char *name, const char *tz,
		  const char *key, uint64_t *id)
{
	return cat_create(c, MP_OP_ORG_CREATE, 0, name, tz, NULL, key, id);
}

int bc_org_create_with(bc_client *c, const char *name, const char *tz,
		       const struct bc_org_settings *settings, const char *key,
		       uint64_t *id)
{
	return cat_create(c, MP_OP_ORG_CREATE, 0, name, tz, settings, key, id);
}

int bc_org_patch(bc_client *c, uint64_t org_id,
		 const struct bc_org_settings *settings, const char *key,
		 struct bc_org_settings *out)
{
	unsigned n = org_settings_put(c, settings, false);
	uint64_t rid;
	size_t start;

	CALL_START(c);
	if (n == 0 || (key && !str_ok(key, BC_KEY_SIZE_MAX)))
		return -EINVAL;
	start = req_begin(c, MP_OP_ORG_PATCH, 1 + n + (key != NULL), &rid);
	mp_pack_kv_uint(&c->pk, "org_id", org_id);
	org_settings_put(c, settings, true);
	kv_opt_str(c, "key", key);
	return call_end_out(c, start, rid, out, &c->last.org_settings,
			    sizeof(c->last.org_settings));
}

int bc_location_create(bc_client *c, uint64_t org_id, const char *name,
		       const char *key, uint64_t *id)
{
	return cat_create(c, MP_OP_LOCATION_CREATE, org_id, name, NULL, NULL,
			  key, id);
}

int bc_instructor_create(bc_client *c, uint64_t org_id, const char *name,
			 const char *key, uint64_t *id)
{
	return cat_create(c, MP_OP_INSTRUCTOR_CREATE, org_id, name, NULL, NULL,
			  key, id);
}

int bc_customer_create(bc_client *c, const char *customer_id, const char *email,
		       const char *name, const char *key)
{
	uint64_t rid;
	size_t start;

	CALL_START(c);
	if (!str_ok(customer_id, BC_CUSTOMER_ID_SIZE_MAX))
		return -EINVAL;
	start = req_begin(c, MP_OP_CUSTOMER_CREATE,
			  1 + (email != NULL) + (name != NULL) + (key != NULL),
			  &rid);
	mp_pack_kv_str(&c->pk, "customer_id", customer_id);
	kv_opt_str(c, "email", email);
	kv_opt_str(c, "name", name);
	kv_opt_str(c, "key", key);
	return call_end(c, start, rid);
}

/* "A,B,C" as an array of strings. */
static void pack_list(msgpack_packer *pk, const char *s)
{
	uint32_t n = 0;
	const char *p;

	for (p = s; *p; p++)
		n += *p == ',';
	n += *s != '\0';
	msgpack_pack_array(pk, n);
	while (*s) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		mp_pack_strn(pk, s, len);
		n--;
		s += len + (e != NULL);
		if (e && *s == '\0') { /* trailing comma: an empty item */
			mp_pack_strn(pk, "", 0);
			n--;
		}
	}
	ASSERT(n == 0); /* as many items as the array announced */
}

int bc_series_create(bc_client *c, const struct bc_series_spec *s,
		     const char *key, uint64_t *series_id, uint32_t *generated)
{
	uint64_t rid;
	size_t start;
	uint32_t n = 12;
	int rc;

	CALL_START(c);
	if (!str_ok(s->title, BC_NAME_SIZE_MAX) || !str_ok(s->timezone, 64) ||
	    !s->weekdays || !s->start_time || !s->first_date)
		return -EINVAL;
	n += (s->currency != NULL) + (s->last_date != NULL) +
	     (s->skip_dates != NULL) + (key != NULL);
	start = req_begin(c, MP_OP_SERIES_CREATE, n, &rid);
	mp_pack_kv_uint(&c->pk, "org_id", s->org_id);
	mp_pack_kv_uint(&c->pk, "location_id", s->location_id);
	mp_pack_kv_uint(&c->pk, "instructor_id", s->instructor_id);
	mp_pack_kv_str(&c->pk, "title", s->title);
	mp_pack_kv_uint(&c->pk, "capacity", s->capacity);
	mp_pack_kv_uint(&c->pk, "waitlist_capacity", s->waitlist_capacity);
	mp_pack_kv_uint(&c->pk, "price_cents", s->price_cents);
	mp_pack_kv_str(&c->pk, "timezone", s->timezone);
	mp_pack_str(&c->pk, "weekdays");
	pack_list(&c->pk, s->weekdays);
	mp_pack_kv_str(&c->pk, "start_time", s->start_time);
	mp_pack_kv_uint(&c->pk, "duration_min", s->duration_min);
	mp_pack_kv_str(&c->pk, "first_date", s->first_date);
	kv_opt_str(c, "currency", s->currency);
	kv_opt_str(c, "last_date", s->last_date);
	if (s->skip_dates) {
		mp_pack_str(&c->pk, "skip_dates");
		pack_list(&c->pk, s->skip_dates);
	}
	kv_opt_str(c, "key", key);
	rc = call_end(c, start, rid);
	if (rc == BC_OK) {
		if (series_id)
			*series_id = c->last.id;
		if (generated)
			*generated = c->last.generated;
	}
	return rc;
}

int bc_series_patch(bc_client *c, uint64_t series_id,
		    const struct bc_series_patch *p, const char *key)
{
	uint64_t rid;
	size_t start;
	uint32_t n;

	CALL_START(c);
	if ((key && !str_ok(key, BC_KEY_SIZE_MAX)) ||
	    (p->title && !str_ok(p->title, BC_NAME_SIZE_MAX)))
		return -EINVAL;
	n = (p->title != NULL) + (p->currency != NULL) +
	    (p->start_time != NULL) + (p->weekdays != NULL) +
	    (p->last_date != NULL) + (p->capacity >= 0) +
	    (p->waitlist_capacity >= 0) + (p->price_cents >= 0) +
	    (p->duration_min != 0);
	if (n == 0)
		return -EINVAL; /* nothing to change */
	n += 1 + (p->from != NULL) + (key != NULL);
	start = req_begin(c, MP_OP_SERIES_PATCH, n, &rid);
	mp_pack_kv_uint(&c->pk, "series_id", series_id);
	kv_opt_str(c, "title", p->title);
	kv_opt_str(c, "currency", p->currency);
	kv_opt_str(c, "start_time", p->start_time);
	if (p->weekdays) {
		mp_pack_str(&c->pk, "weekdays");
		pack_list(&c->pk, p->weekdays);
	}
	kv_opt_str(c, "last_date", p->last_date);
	if (p->capacity >= 0)
		mp_pack_kv_uint(&c->pk, "capacity", (uint64_t)p->capacity);
	if (p->waitlist_capacity >= 0)
		mp_pack_kv_uint(&c->pk, "waitlist_capacity",
				(uint64_t)p->waitlist_capacity);
	if (p->price_cents >= 0)
		mp_pack_kv_uint(&c->pk, "price_cents",
				(uint64_t)p->price_cents);
	kv_opt_uint(c, "duration_min", p->duration_min);
	kv_opt_str(c, "from", p->from);
	kv_opt_str(c, "key", key);
	return call_end(c, start, rid);
}

int bc_series_end(bc_client *c, uint64_t series_id, const char *last_date,
		  const char *key)
{
	uint64_t rid;
	size_t start;

	CALL_START(c);
	if (!last_date || (key && !str_ok(key, BC_KEY_SIZE_MAX)))
		return -EINVAL;
	start = req_begin(c, MP_OP_SERIES_END, 2 + (key != NULL), &rid);
	mp_pack_kv_uint(&c->pk, "series_id", series_id);
	mp_pack_kv_str(&c->pk, "last_date", last_date);
	kv_opt_str(c, "key", key);
	return call_end(c, start, rid);
}

int bc_generate(bc_client *c, const char *until, uint64_t series_id,
		const char *key, uint32_t *generated)
{
	uint64_t rid;
	size_t start;

	CALL_START(c);
	start = req_begin(c, MP_OP_GENERATE,
			  (until != NULL) + (series_id != 0) + (key != NULL),
			  &rid);
	kv_opt_str(c, "until", until);
	kv_opt_uint(c, "series_id", series_id);
	kv_opt_str(c, "key", key);
	return call_end_out(c, start, rid, generated, &c->last.generated,
			    sizeof(c->last.generated));
}

int bc_event_get_async(bc_client *c, uint64_t event_id, uint64_t *req_id)
{
	return id_req_async(c, MP_OP_EVENT_GET, "event_id", event_id, req_id);
}

int bc_event_get(bc_client *c, uint64_t event_id, struct bc_event *out)
{
	int rc = id_req(c, MP_OP_EVENT_GET, "event_id", event_id);

	if (rc == BC_OK && out)
		*out = c->last.event;
	return rc;
}

/* The catalogue's ops and answer keys, by kind. */
static const struct {
	enum mp_op get, list;
	const char *id, *one, *many;
} cat_ops[] = {
	[BC_CAT_ORG] = { MP_OP_ORG_GET, MP_OP_ORG_LIST, "org_id", "org",
			 "orgs" },
	[BC_CAT_LOCATION] = { MP_OP_LOCATION_GET, MP_OP_LOCATION_LIST,
			      "location_id", "location", "locations" },
	[BC_CAT_INSTRUCTOR] = { MP_OP_INSTRUCTOR_GET, MP_OP_INSTRUCTOR_LIST,
				"instructor_id", "instructor", "instructors" },
	[BC_CAT_SERIES] = { MP_OP_SERIES_GET, MP_OP_SERIES_LIST, "series_id",
			    "series", "series" },
};

static bool cat_kind_ok(enum bc_cat_kind kind)
{
	return kind >= BC_CAT_ORG && kind <= BC_CAT_SERIES;
}

int bc_cat_get(bc_client *c, enum bc_cat_kind kind, uint64_t id,
	       struct bc_cat *out)
{
	int rc;

	if (!cat_kind_ok(kind))
		return -EINVAL;
	rc = id_req(c, cat_ops[kind].get, cat_ops[kind].id, id);
	if (rc == BC_OK && out &&
	    mp_read_cat(mp_get(&c->last_obj, cat_ops[kind].one), kind, out)) {
		c->broken = true;
		return -EPROTO;
	}
	return rc;
}

int bc_cat_list(bc_client *c, enum bc_cat_kind kind, uint64_t org_id,
		uint32_t limit, const char *cursor, struct bc_cat *out,
		uint32_t cap, uint32_t *count, char *next_cursor)
{
	const msgpack_object *v;
	uint64_t rid;
	size_t start;
	uint32_t n = 0;
	int rc;

	CALL_START(c);
	if (!cat_kind_ok(kind) || (kind == BC_CAT_ORG && org_id))
		return -EINVAL;
	start = req_begin(c, cat_ops[kind].list,
			  (org_id != 0) + (limit != 0) + (cursor != NULL),
			  &rid);
	kv_opt_uint(c, "org_id", org_id);
	kv_opt_uint(c, "limit", limit);
	kv_opt_str(c, "cursor", cursor);
	rc = call_end(c, start, rid);
	if (count)
		*count = 0;
	if (next_cursor)
		next_cursor[0] = '\0';
	if (rc != BC_OK)
		return rc;
	v = mp_get(&c->last_obj, cat_ops[kind].many);
	if (!v || v->type != MSGPACK_OBJECT_ARRAY) {
		c->broken = true;
		return -EPROTO;
	}
	for (uint32_t i = 0; i < v->via.array.size && n < cap && out; i++)
		if (mp_read_cat(&v->via.array.ptr[i], kind, &out[n++])) {
			c->broken = true;
			return -EPROTO;
		}
	if (count)
		*count = n;
	if (next_cursor)
		client__copy(next_cursor, BC_CURSOR_SIZE, c->last.next_cursor);
	return rc;
}

int bc_event_list_async(bc_client *c, const struct bc_list_query *q,
			uint64_t *req_id)
{
	size_t start;
	uint32_t n;

	if (c->pending >= BC_PIPELINE_MAX)
		return -EBUSY;
	n = (q->org_id != 0) + (q->location_id != 0) + (q->instructor_id != 0) +
	    (q->from != 0) + (q->to != 0) + (q->limit != 0) +
	    (q->cursor != NULL);
	start = req_begin(c, MP_OP_EVENT_LIST, n, req_id);
	kv_opt_uint(c, "org_id", q->org_id);
	kv_opt_uint(c, "location_id", q->location_id);
	kv_opt_uint(c, "instructor_id", q->instructor_id);
	kv_opt_int(c, "from", q->from);
	kv_opt_int(c, "to", q->to);
	kv_opt_uint(c, "limit", q->limit);
	kv_opt_str(c, "cursor", q->cursor);
	return req_end(c, start);
}

int bc_event_list(bc_client *c, const struct bc_list_query *q,
		  struct bc_event *out, uint32_t cap, uint32_t *count,
		  char *next_cursor)
{
	uint64_t rid = 0;
	int rc;

	CALL_START(c);
	rc = bc_event_list_async(c, q, &rid);
	rc = call_async_end(c, rc, rid);
	if (count)
		*count = 0;
	if (next_cursor)
		next_cursor[0] = '\0';
	if (rc != BC_OK)
		return rc;
	copy_list(out, c->last.events, c->last.event_count, cap, sizeof(*out),
		  count);
	if (next_cursor)
		client__copy(next_cursor, BC_CURSOR_SIZE, c->last.next_cursor);
	return rc;
}

int bc_event_patch(bc_client *c, uint64_t event_id,
		   const struct bc_event_patch *p, const char *key,
		   struct bc_event *out)
{
	uint64_t rid;
	size_t start;

	CALL_START(c);
	start = req_begin(c, MP_OP_EVENT_PATCH,
			  1 + (p->capacity >= 0) + (p->cancel || p->restore) +
				  (p->instructor_id != 0) +
				  (p->location_id != 0) + (p->start_at != 0) +
				  (p->duration_min != 0) + (p->title != NULL) +
				  (key != NULL),
			  &rid);
	mp_pack_kv_uint(&c->pk, "event_id", event_id);
	if (p->capacity >= 0)
		mp_pack_kv_int(&c->pk, "capacity", p->capacity);
	if (p->cancel || p->restore)
		mp_pack_kv_str(&c->pk, "status",
			       p->cancel ? "cancelled" : "scheduled");
	kv_opt_uint(c, "instructor_id", p->instructor_id);
	kv_opt_uint(c, "location_id", p->location_id);
	if (p->start_at)
		mp_pack_kv_int(&c->pk, "start_at", p->start_at);
	kv_opt_uint(c, "duration_min", p->duration_min);
	kv_opt_str(c, "title", p->title);
	kv_opt_str(c, "key", key);
	return call_end_out(c, start, rid, out, &c->last.event,
			    sizeof(c->last.event));
}

static const char *pay_name(enum bc_payment p)
{
	return p == BC_PAY_NONE ? "none" : p == BC_PAY_STRIPE ? "stripe" : NULL;
}

static void pack_book_fields(bc_client *c, uint64_t event_id,
			     const char *customer_id, const char *key,
			     enum bc_payment payment, bool with_count)
{
	const char *pay = pay_name(payment);

	if (with_count)
		msgpack_pack_map(&c->pk, 1 + (customer_id != NULL) +
						 (key != NULL) + (pay != NULL));
	mp_pack_kv_uint(&c->pk, "event_id", event_id);
	kv_opt_str(c, "customer_id", customer_id);
	kv_opt_str(c, "key", key);
	kv_opt_str(c, "payment", pay);
}

int bc_book_async(bc_client *c, uint64_t event_id, const char *customer_id,
		  const char *key, enum bc_payment payment, uint64_t *req_id)
{
	size_t start;

	if (c->pending >= BC_PIPELINE_MAX)
		return -EBUSY;
	if ((customer_id && !str_ok(customer_id, BC_CUSTOMER_ID_SIZE_MAX)) ||
	    (key && !str_ok(key, BC_KEY_SIZE_MAX)))
		return -EINVAL;
	start = req_begin(c, MP_OP_BOOK,
			  1 + (customer_id != NULL) + (key != NULL) +
				  (pay_name(payment) != NULL),
			  req_id);
	pack_book_fields(c, event_id, customer_id, key, payment, false);
	return req_end(c, start);
}

int bc_book(bc_client *c, uint64_t event_id, const char *customer_id,
	    const char *key, enum bc_payment payment, struct bc_booking *out)
{
	uint64_t rid = 0;
	int rc;

	CALL_START(c);
	rc = bc_book_async(c, event_id, customer_id, key, payment, &rid);
	if (rc < 0)
		return rc; /* nothing queued: out untouched */
	rc = call_async_end(c, rc, rid);
	if (out)
		memset(out, 0, sizeof(*out));
	if (c->last.has_booking && out)
		*out = c->last.booking;
	return rc;
}

int bc_book_batch_async(bc_client *c, const struct bc_book_item *items,
			uint32_t n, uint64_t *req_id)
{
	size_t start;

	if (c->pending >= BC_PIPELINE_MAX)
		return -EBUSY;
	if (n == 0 || n > BC_BATCH_COUNT_MAX)
		return -EINVAL;
	start = req_begin(c, MP_OP_BOOK_BATCH, 1, req_id);
	mp_pack_str(&c->pk, "items");
	msgpack_pack_array(&c->pk, n);
	for (uint32_t i = 0; i < n; i++)
		pack_book_fields(c, items[i].event_id, items[i].customer_id,
				 items[i].key, items[i].payment, true);
	return req_end(c, start);
}

int bc_book_batch(bc_client *c, const struct bc_book_item *items, uint32_t n,
		  int *codes, struct bc_booking *out)
{
	uint64_t rid;
	uint32_t got = 0;
	int rc;

	CALL_START(c);
	rc = bc_book_batch_async(c, items, n, &rid);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		codes[i] = BC_INTERNAL;
		if (out)
			memset(&out[i], 0, sizeof(out[i]));
	}
	while (got < n) {
		rc = bc_recv(c, NULL);
		if (rc < 0)
			return rc;
		if (c->last.req_id == 0) {
			c->pending = 0;
			return c->last.code;
		}
		if (c->last.req_id != rid)
			continue;
		if (c->last.index < 0) {
			c->pending = 0;
			return c->last.code; /* the whole batch refused */
		}
		if ((uint32_t)c->last.index >= n)
			return -EPROTO;
		codes[c->last.index] = c->last.code;
		if (out && c->last.has_booking)
			out[c->last.index] = c->last.booking;
		got++;
	}
	c->pending = 0;
	return BC_OK;
}

int bc_cancel_async(bc_client *c, uint64_t booking_id, const char *key,
		    uint64_t *req_id)
{
	size_t start;

	if (c->pending >= BC_PIPELINE_MAX)
		return -EBUSY;
	if (key && !str_ok(key, BC_KEY_SIZE_MAX))
		return -EINVAL;
	start = req_begin(c, MP_OP_CANCEL, 1 + (key != NULL), req_id);
	mp_pack_kv_uint(&c->pk, "booking_id", booking_id);
	kv_opt_str(c, "key", key);
	return req_end(c, start);
}

int bc_cancel(bc_client *c, uint64_t booking_id, const char *key,
	      struct bc_booking *out, struct bc_booking *promoted)
{
	uint64_t rid = 0;
	int rc;

	CALL_START(c);
	rc = bc_cancel_async(c, booking_id, key, &rid);
	if (rc < 0)
		return rc; /* nothing queued: out untouched */
	rc = call_async_end(c, rc, rid);
	if (out)
		*out = c->last.booking;
	if (promoted) {
		memset(promoted, 0, sizeof(*promoted));
		if (c->last.has_promoted)
			*promoted = c->last.promoted;
	}
	return rc;
}

int bc_booking_get_async(bc_client *c, uint64_t booking_id, uint64_t *req_id)
{
	return id_req_async(c, MP_OP_BOOKING_GET, "booking_id", booking_id,
			    req_id);
}

int bc_booking_get(bc_client *c, uint64_t booking_id, struct bc_booking *out)
{
	int rc = id_req(c, MP_OP_BOOKING_GET, "booking_id", booking_id);

	if (rc == BC_OK && out)
		*out = c->last.booking;
	return rc;
}

int bc_customer_bookings(bc_client *c, const char *customer_id,
			 struct bc_booking *out, uint32_t cap, uint32_t *count)
{
	uint64_t rid;
	size_t start;
	int rc;

	CALL_START(c);
	if (customer_id && !str_ok(customer_id, BC_CUSTOMER_ID_SIZE_MAX))
		return -EINVAL;
	if (cap == 0 || cap > BC_LIST_LIMIT_MAX)
		cap = BC_LIST_LIMIT_MAX;
	start = req_begin(c, MP_OP_CUSTOMER_BOOKINGS, 1 + (customer_id != NULL),
			  &rid);
	kv_opt_str(c, "customer_id", customer_id);
	mp_pack_kv_uint(&c->pk, "limit", cap);
	rc = call_end(c, start, rid);
	if (count)
		*count = 0;
	if (rc != BC_OK)
		return rc;
	copy_list(out, c->last.bookings, c->last.booking_count, cap,
		  sizeof(*out), count);
	return rc;
}

int bc_status(bc_client *c, struct bc_status_info *out)
{
	uint64_t rid;
	size_t start;

	CALL_START(c);
	start = req_begin(c, MP_OP_STATUS, 0, &rid);
	return call_end_out(c, start, rid, out, &c->last.status,
			    sizeof(c->last.status));
}
