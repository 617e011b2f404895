/*
 * net.c: the network threads of bookd (api/net.h, api/srv.h, api/net_int.h).
 *
 * Threads. thread_count network threads, each with its own io_uring, its
 * own listening sockets (SO_REUSEPORT: the kernel spreads connections over
 * them), its own connections and its own core port; slow_count slow
 * workers, each with a core port of its own, for what the core only does
 * synchronously (listings that fan out to every shard, catalogue
 * operations). No thread per connection; nothing on a network thread
 * blocks except io_uring_submit_and_wait when there is nothing to do.
 *
 * A request's path. The protocol's parse() turns received bytes into
 * requests: srv_answer() gives an answer at once (sent right away when
 * nothing is queued before it, else kept with the last queued request and
 * sent right after its answer); srv_submit() takes a "pending" from the
 * thread's pool and puts it at the tail of the connection's FIFO. Shard
 * operations go through core_submit() (if the port is out of slots, the
 * pending waits in a backlog and is submitted on a later turn). Listings
 * (fan-out reads) are read at once, in this thread, when it hosts every
 * shard (its read_port); otherwise they, and catalogue operations, go to
 * the slow workers' queue (net_slow.c). A decision's
 * answer carries its log position: it waits until wal_durable_lsn() covers
 * it. A connection's FIFO is flushed from its head while the head is done:
 * the protocol renders it into the connection's output. So answers leave
 * in request order (HTTP pipelining needs it) and never before they are
 * durable. Reads (no log position) are answered as soon as they are
 * decided.
 *
 * Wake-ups. One eventfd per thread is written by the core when answers
 * reach the port, or requests a shard it hosts, while the thread is idle
 * (core_port_set_wake_fd), by the log after a durable advance while the
 * thread is idle (node_config.wake_fds and wake_idle: the thread says so
 * before it sleeps), and by slow workers when they finish. The thread
 * keeps one read of it in flight.
 *
 * Buffers. Reads use a provided-buffer ring per thread (one recv in flight
 * per connection, the kernel picks the buffer), so idle connections hold
 * no read buffer; bytes a protocol did not use yet are copied into the
 * connection's own input buffer (at most SRV_IN_SIZE_MAX plus one read).
 * Output goes to one of two buffers per connection: one being sent (one
 * send in flight), one filling. A connection whose unsent output passes
 * SRV_OUT_SIZE_MAX, or whose send makes no progress for send_timeout (a
 * client that never reads), is closed; so is one idle between requests
 * for idle_timeout (a sweep once a second, woken by an io_uring timeout).
 *
 * Lock-outs and listening: request, send and idle timeouts are in
 * net_timeout.c; the listeners, the port checks, accept, the per-address
 * cap and the reserve in net_listen.c.
 *
 * Back-pressure. A connection stops reading (no recv armed) while it has
 * SRV_PIPELINE_MAX requests in flight, the thread's pool is empty, or its
 * output passed half its limit; it starts again once answers went out.
 *
 * Closing: shutdown(2) makes the in-flight recv and send complete; the slot
 * is reused only once no operation and no pending refers to it (each
 * user_data carries the slot's generation).
 *
 * Stop: the listeners close, no more requests are parsed, in-flight ones
 * are answered and sent (bounded by a timeout), then the threads exit.
 *
 * Files: this one is the loop and a connection's life cycle; the others
 * are listed in api/net_int.h (set-up in net_setup.c, slow workers in
 * net_slow.c).
 */
#include "net_int.h"

#include "evlog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- small things ---- */

core_time srv_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (core_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connections ---- */

static size_t conn_unsent(const struct conn *c)
{
	ASSERT(c->out_sent <= c->out.size);
	return c->out.size - c->out_sent + c->next.size;
}

static bool conn_may_read(const struct conn *c)
{
	return !c->closing && !c->close_after &&
	       c->fifo_count < SRV_PIPELINE_MAX && c->t->pend_free != NIL &&
	       conn_unsent(c) < SRV_OUT_SIZE_MAX / 2 &&
	       !atomic_load_explicit(&c->t->s->stopping, memory_order_relaxed);
}

void arm_recv(struct conn *c)
{
	struct net_thread *t = c->t;
	struct io_uring_sqe *sqe;

	if (c->recv_armed)
		return;
	ASSERT(c->fd >= 0);
	if (!conn_may_read(c)) {
		if (t->pend_free == NIL && !c->closing) {
			c->in_blocked = true; /* resume_stalled kicks it */
			t->stalled_conns++;
		}
		return;
	}
	sqe = get_sqe(t);
	io_uring_prep_recv(sqe, c->fd, NULL, NET_BUF_SIZE, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = NET_BUF_GROUP;
	io_uring_sqe_set_data64(sqe,
				ud_make(UD_RECV, conn_index(t, c), c->gen));
	c->recv_armed = true;
	c->ops++;
}

static void conn_release(struct conn *c)
{
	struct net_thread *t = c->t;

	ASSERT(c->ops == 0);
	ASSERT(c->fifo_count == 0);
	ASSERT(!c->dirty_listed);
	ASSERT(t->conn_count > 0);
	close(c->fd);
	c->fd = -1;
	free(c->state);
	c->state = NULL;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->next);
	if (c->addr_key)
		addr_release(t->s, c->addr_key);
	c->addr_key = 0;
	c->gen++;
	c->closing = false;
	c->free_next = t->conn_free;
	t->conn_free = conn_index(t, c);
	t->conn_count--;
	atomic_fetch_sub_explicit(&t->conn_gauge, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&t->conn_by_proto[proto_id(c->proto)], 1,
				  memory_order_relaxed);
}

/* Stops the connection; the slot goes once nothing refers to it. */
void conn_close(struct conn *c)
{
	ASSERT(c->fd >= 0);
	if (!c->closing) {
		c->closing = true;
		shutdown(c->fd, SHUT_RDWR);
	}
	if (c->ops == 0 && c->fifo_count == 0 && !c->dirty_listed)
		conn_release(c);
}

static void start_send(struct conn *c)
{
	struct net_thread *t = c->t;
	struct io_uring_sqe *sqe;

	if (c->sending || c->closing)
		return;
	if (c->out_sent == c->out.size) {
		struct buf tmp;
		if (c->next.size == 0)
			return;
		tmp = c->out;
		c->out = c->next;
		c->next = tmp;
		c->next.size = 0;
		c->out_sent = 0;
	}
	ASSERT(c->out_sent < c->out.size); /* something to send */
	if (c->out_sent == 0)
		c->send_ns = mono_ns(); /* a new send: its clock starts */
	sqe = get_sqe(t);
	io_uring_prep_send(sqe, c->fd, c->out.data + c->out_sent,
			   c->out.size - c->out_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe,
				ud_make(UD_SEND, conn_index(t, c), c->gen));
	c->sending = true;
	c->ops++;
}

/* ---- pendings ---- */

static uint32_t pend_get(struct net_thread *t)
{
	uint32_t i = t->pend_free;
	struct pending *p;

	if (i == NIL)
		return NIL;
	p = pend_at(t, i);
	ASSERT(p->state == PEND_FREE);
	t->pend_free = p->next;
	t->pend_count++;
	ASSERT(t->pend_count <= t->s->cfg.pending_count_max);
	memset(&p->resp, 0, sizeof(p->resp));
	memset(&p->views, 0, sizeof(p->views));
	memset(&p->after, 0, sizeof(p->after));
	p->next = p->dnext = NIL;
	p->rc = 0;
	return i;
}

static void pend_put(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	ASSERT(p->state == PEND_DONE); /* rendered */
	ASSERT(t->pend_count > 0);
	/* The slot keeps no pointer to what it freed: net_free frees the
	 * views of the slots still in use at exit, and only those. */
	free(p->views.events);
	free(p->views.bookings);
	free(p->views.cats);
	memset(&p->views, 0, sizeof(p->views));
	buf_free(&p->after);
	p->state = PEND_FREE;
	p->next = t->pend_free;
	t->pend_free = i;
	t->pend_count--;
}

static void fifo_append(struct conn *c, uint32_t i)
{
	struct pending *p = pend_at(c->t, i);

	p->conn = conn_index(c->t, c);
	p->conn_gen = c->gen;
	p->next = NIL;
	if (c->fifo_tail == NIL)
		c->fifo_head = i;
	else
		pend_at(c->t, c->fifo_tail)->next = i;
	c->fifo_tail = i;
	c->fifo_count++;
	ASSERT(c->fifo_count <= SRV_PIPELINE_MAX);
}

/* The answer of pending i is ready (or failed): its connection may flush. */
void pend_ready(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	ASSERT(p->state != PEND_DONE); /* decided once */
	p->state = PEND_DONE;
	conn_mark_dirty(conn_at(t, p->conn));
}

/* A request slower than --slow-request-ms: a line with its id. */
static void log_slow(struct net_thread *t, const struct pending *p, uint64_t ns)
{
	static struct evlog_limit limit;
	const struct srv_proto *pr =
		p->proto == SRV_PROTO_BINARY ? &srv_bin_proto : &srv_http_proto;
	char ms[32], dropped_s[16];
	uint32_t dropped;

	if (!evlog_allow(&limit, 10, &dropped))
		return;
	snprintf(ms, sizeof(ms), "%.3f", (double)ns / 1e6);
	snprintf(dropped_s, sizeof(dropped_s), "%" PRIu32, dropped);
	evlog_kv(EVLOG_WARN, "slow request", "request_id",
		 pr->request_id ? pr->request_id(p->ctx) : "", "protocol",
		 srv_proto_label(p->proto), "op", core_op_name(p->req.op), "ms",
		 ms, dropped ? "dropped" : NULL, dropped_s, NULL);
}

void count_op(struct net_thread *t, struct pending *p)
{
	enum core_op op = p->req.op;
	uint64_t ns = mono_ns() - p->started_ns;
	unsigned b = 0;

	if (op <= CORE_OP_NONE || op >= CORE_OP_COUNT)
		return;
	ASSERT(p->proto < SRV_PROTO_COUNT);
	while (b < SRV_LAT_BUCKET_COUNT - 1 &&
	       ns > srv_lat_bucket_le_us(b) * 1000)
		b++;
	stat_add(&t->ops_total[op], 1);
	stat_add(&t->ops_ns_total[op], ns);
	stat_add(&t->lat_buckets[op][p->proto][b], 1);
	stat_add(&t->lat_ns_total[op][p->proto], ns);
	net_sample_note(t, p, p->started_ns + ns);
	if (ns > t->slow_ns)
		log_slow(t, p, ns);
}

/* Appends slot i to the list *head..*tail (the durable wait or the
 * backlog), linked through dnext. */
static void pend_append(struct net_thread *t, uint32_t *head, uint32_t *tail,
			uint32_t i)
{
	ASSERT(i < t->s->cfg.pending_count_max);
	pend_at(t, i)->dnext = NIL;
	if (*tail == NIL)
		*head = i;
	else
		pend_at(t, *tail)->dnext = i;
	*tail = i;
}

/* Decided: answer now, or once durable. */
static void pend_decided(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	ASSERT(p->state == PEND_CORE);
	if (p->rc == 0 && p->resp.lsn != 0 &&
	    !node_durable(t->s->node, p->resp.lsn)) {
		int err = wal_error(node_wal(t->s->node));
		if (err) {
			p->rc = err;
		} else {
			p->state = PEND_DURABLE;
			pend_append(t, &t->durable_head, &t->durable_tail, i);
			return;
		}
	}
	count_op(t, p);
	pend_ready(t, i);
}

static bool op_is_shard(enum core_op op)
{
	return op >= CORE_OP_BOOK && op <= CORE_OP_BOOKING_GET;
}

/* Read every shard (listings), answered with no log position. */
static bool op_is_fanout_read(enum core_op op)
{
	return op == CORE_OP_EVENT_LIST || op == CORE_OP_CUSTOMER_BOOKINGS;
}

static void backlog_push(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	p->state = PEND_BACKLOG;
	pend_append(t, &t->backlog_head, &t->backlog_tail, i);
}

static bool try_submit(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);
	int rc = core_submit(t->port, &p->req, i);

	if (rc == -EAGAIN)
		return false;
	if (rc) {
		p->rc = rc;
		pend_ready(t, i);
		return true;
	}
	p->state = PEND_CORE;
	t->core_in_flight++;
	return true;
}

/* ---- for protocols ---- */

struct srv *srv_conn_srv(struct srv_conn *sc)
{
	return ((struct conn *)sc)->t->s;
}

const char *srv_conn_peer(const struct srv_conn *sc)
{
	return ((const struct conn *)sc)->peer;
}

uint64_t srv_conn_peer_key(const struct srv_conn *sc)
{
	return ((const struct conn *)sc)->peer_key;
}

bool srv_conn_in_reserve(const struct srv_conn *sc)
{
	return ((const struct conn *)sc)->reserve;
}

const struct auth_config *srv_auth(const struct srv *s) { return &s->cfg.auth; }

struct auth_limiter *srv_limiter(struct srv *s) { return s->limiter; }

/* An answer given at once goes out right away when nothing is queued
 * before it, else right after the answer of the last request queued (so it
 * needs no room of its own: a connection can always be answered). */
struct buf *srv_answer_begin(struct srv_conn *sc)
{
	struct conn *c = (struct conn *)sc;
	struct net_thread *t = c->t;

	stat_add(&t->requests_total, 1);
	if (conn_unsent(c) > SRV_OUT_SIZE_MAX || c->close_after) {
		/* Answers pile up faster than the client reads them. */
		c->close_after = true;
		t->discard.size = 0;
		return &t->discard;
	}
	if (c->fifo_count == 0)
		return &c->next;
	return &pend_at(t, c->fifo_tail)->after;
}

void srv_answer_done(struct srv_conn *sc)
{
	conn_mark_dirty((struct conn *)sc);
}

bool srv_conn_writable(const struct srv_conn *sc)
{
	const struct conn *c = (const struct conn *)sc;

	return !c->close_after && !c->closing &&
	       conn_unsent(c) <= SRV_OUT_SIZE_MAX;
}

void srv_answer(struct srv_conn *sc, const void *bytes, size_t size)
{
	buf_put(srv_answer_begin(sc), bytes, size);
	srv_answer_done(sc);
}

int srv_submit(struct srv_conn *sc, const struct core_req *req, const void *ctx,
	       size_t ctx_size)
{
	struct conn *c = (struct conn *)sc;
	struct net_thread *t = c->t;
	struct pending *p;
	uint32_t i;

	ASSERT(ctx_size <= SRV_CTX_SIZE_MAX);
	ASSERT(req->op > CORE_OP_NONE && req->op < CORE_OP_COUNT);
	ASSERT(!c->closing); /* parse() is not called on a closing one */
	if (c->fifo_count >= SRV_PIPELINE_MAX) {
		c->in_blocked = true;
		return -EAGAIN;
	}
	i = pend_get(t);
	if (i == NIL) {
		c->in_blocked = true;
		t->stalled_conns++;
		return -EAGAIN;
	}
	stat_add(&t->requests_total, 1);
	p = pend_at(t, i);
	p->req = *req;
	p->ctx_size = ctx_size;
	memcpy(p->ctx, ctx, ctx_size);
	p->started_ns = c->read_ns; /* its bytes' read: no clock per request */
	p->proto = (uint8_t)proto_id(c->proto);
	fifo_append(c, i);
	if (op_is_shard(req->op)) {
		if (t->backlog_head != NIL || !try_submit(t, i))
			backlog_push(t, i);
	} else if (t->read_port && op_is_fanout_read(req->op)) {
		/* Every shard is ours: read them now, in this turn. */
		p->rc = slow_run(t->read_port, t->s->node, p);
		count_op(t, p);
		pend_ready(t, i);
	} else {
		slow_push(t, i);
	}
	return 0;
}

/* ---- the loop ---- */

static void parse_conn(struct conn *c, const uint8_t *data, size_t size,
		       bool from_in);

static void flush_conn(struct conn *c)
{
	struct net_thread *t = c->t;

	while (c->fifo_head != NIL) {
		uint32_t i = c->fifo_head;
		struct pending *p = pend_at(t, i);
		if (p->state != PEND_DONE)
			break;
		ASSERT(c->fifo_count > 0);
		ASSERT(p->conn == conn_index(t, c) && p->conn_gen == c->gen);
		/* Rendered even for a closed connection (into the discard
		 * buffer): the protocol frees what its ctx holds. */
		struct buf *out = c->closing ? &t->discard : &c->next;
		c->proto->render((struct srv_conn *)c, c->state, p->ctx, p->rc,
				 &p->resp, &p->views, out);
		t->discard.size = 0;
		if (!c->closing) {
			buf_put(&c->next, p->after.data, p->after.size);
			c->next.broken |= p->after.broken;
		}
		c->fifo_head = p->next;
		if (c->fifo_head == NIL)
			c->fifo_tail = NIL;
		c->fifo_count--;
		pend_put(t, i);
	}
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (c->next.broken || conn_unsent(c) > SRV_OUT_SIZE_MAX) {
		conn_close(c); /* cannot keep up with, or never reads */
		return;
	}
	start_send(c);
	if (c->close_after && c->fifo_count == 0 && !c->sending) {
		conn_close(c);
		return;
	}
	/* Requests left unparsed for lack of room: try again. */
	if (c->in_blocked && !c->in_parse && conn_may_read(c)) {
		if (c->in.size)
			parse_conn(c, NULL, 0, true);
		else
			c->in_blocked = false;
	}
	arm_recv(c);
}

static void flush_dirty(struct net_thread *t)
{
	while (t->dirty_head != NIL) {
		struct conn *c = conn_at(t, t->dirty_head);
		t->dirty_head = c->dirty_next;
		c->dirty_listed = false;
		flush_conn(c);
	}
}

/* Feeds bytes to the protocol: from a read buffer (data, size) after what
 * the connection kept, or only what it kept (from_in). */
static void parse_conn(struct conn *c, const uint8_t *data, size_t size,
		       bool from_in)
{
	const uint8_t *p;
	size_t n;
	long used;

	ASSERT(!c->in_parse); /* parse() never calls back into this */
	if (!from_in && c->in.size) {
		buf_put(&c->in, data, size);
		if (c->in.broken) {
			conn_close(c);
			return;
		}
		from_in = true;
	}
	p = from_in ? c->in.data : data;
	n = from_in ? c->in.size : size;
	c->in_parse = true;
	c->in_blocked = false;
	used = c->proto->parse((struct srv_conn *)c, c->state, p, n);
	c->in_parse = false;
	if (used < 0) {
		c->close_after = true;
		used = (long)n;
	}
	ASSERT((size_t)used <= n);
	if (from_in) {
		buf_consume(&c->in, (size_t)used);
	} else if ((size_t)used < n) {
		buf_put(&c->in, p + used, n - (size_t)used);
	}
	/* The deadline of the request being read: from its first byte, the
	 * first request's from the accept; none while idle between requests. */
	if (used > 0)
		c->served = true;
	if (c->in.size == 0) {
		if (c->served)
			c->request_ns = 0;
	} else if ((size_t)used > 0 || c->request_ns == 0) {
		c->request_ns = mono_ns();
	}
	if (c->in.size > SRV_IN_SIZE_MAX + NET_BUF_SIZE || c->in.broken) {
		/* The protocol must refuse a request this large itself. */
		c->close_after = true;
		buf_free(&c->in);
	}
	conn_mark_dirty(c);
}

static void on_recv(struct net_thread *t, struct conn *c, int res,
		    uint32_t flags)
{
	c->recv_armed = false;
	if (flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
		uint8_t *buf = t->bufs + (size_t)bid * NET_BUF_SIZE;
		if (res > 0 && !c->closing && !c->close_after) {
			c->read_ns = mono_ns();
			parse_conn(c, buf, (size_t)res, false);
		}
		io_uring_buf_ring_add(t->br, buf, NET_BUF_SIZE, bid,
				      io_uring_buf_ring_mask(NET_BUF_COUNT), 0);
		io_uring_buf_ring_advance(t->br, 1);
	}
	if (res == -ENOBUFS) {
		conn_mark_dirty(c); /* no read buffer free: retry next turn */
		return;
	}
	if (res <= 0) {
		/* EOF (or a half-close): answer what was asked, then close. */
		if (res == 0 && !c->closing) {
			c->close_after = true;
			conn_mark_dirty(c);
		} else {
			conn_close(c);
		}
	}
}

static void on_send(struct conn *c, int res)
{
	c->sending = false;
	if (res < 0) {
		conn_close(c);
		return;
	}
	ASSERT((size_t)res <= c->out.size - c->out_sent); /* what we asked */
	c->out_sent += (size_t)res;
	c->send_ns = mono_ns();
	conn_mark_dirty(c);
}

static void arm_wake(struct net_thread *t)
{
	struct io_uring_sqe *sqe;

	if (t->wake_armed)
		return;
	sqe = get_sqe(t);
	io_uring_prep_read(sqe, t->wake_fd, &t->wake_value,
			   sizeof(t->wake_value), 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_WAKE, 0, 0));
	t->wake_armed = true;
}

/* The log's batch: a write linked to an fdatasync, on this ring. Both go
 * in one submission (a link never spans two). */
static void log_submit(struct net_thread *t)
{
	struct wal_flush *f = &t->wal_flush;
	struct io_uring_sqe *sqe;

	ASSERT(t->wal_inflight == 0);
	if (io_uring_sq_space_left(&t->ring) < 2)
		io_uring_submit(&t->ring);
	sqe = get_sqe(t);
	io_uring_prep_write(sqe, f->fd, f->data, f->size, f->off);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, ud_make(UD_WAL, 0, 0));
	sqe = get_sqe(t);
	io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, ud_make(UD_WAL, 1, 0));
	t->wal_write_res = t->wal_sync_res = 0;
	t->wal_inflight = 2;
}

/* Ends the turn's deferral of the log: this thread takes the batch and
 * submits it (--log-ring), or wakes the log's writer. */
static void log_turn_end(struct net_thread *t)
{
	wal *w = node_wal(t->s->node);

	if (!t->s->cfg.log_on_ring) {
		wal_defer_end(w);
		return;
	}
	if (wal_flush_take(w, &t->wal_flush))
		log_submit(t);
}

static void on_log_cqe(struct net_thread *t, uint32_t which, int res)
{
	ASSERT(t->wal_inflight > 0);
	if (which == 0)
		t->wal_write_res = res;
	else
		t->wal_sync_res = res;
	if (--t->wal_inflight == 0)
		wal_flush_done(node_wal(t->s->node), &t->wal_flush,
			       t->wal_write_res, t->wal_sync_res);
}

static void handle_cqe(struct net_thread *t, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c;

	switch (ud_kind(ud)) {
	case UD_ACCEPT:
		on_accept(t, &t->listeners[ud_index(ud)], cqe->res, cqe->flags);
		return;
	case UD_WAKE: t->wake_armed = false; return;
	case UD_TIMER: arm_timer(t); return;
	case UD_WAL: on_log_cqe(t, ud_index(ud), cqe->res); return;
	case UD_RECV:
	case UD_SEND:
		c = conn_at(t, ud_index(ud));
		ASSERT(c->gen ==
		       ud_gen(ud)); /* slots outlive their operations */
		ASSERT(c->ops > 0);
		c->ops--;
		if (ud_kind(ud) == UD_RECV)
			on_recv(t, c, cqe->res, cqe->flags);
		else
			on_send(c, cqe->res);
		if (c->closing)
			conn_close(c);
		return;
	}
	ASSERT(!"unknown user_data");
}

static void poll_core(struct net_thread *t)
{
	struct core_resp resp[NET_POLL_BATCH];
	int n;

	while ((n = core_poll(t->port, resp, NET_POLL_BATCH)) > 0) {
		for (int k = 0; k < n; k++) {
			uint32_t i = (uint32_t)resp[k].tag;
			struct pending *p = pend_at(t, i);
			ASSERT(p->state == PEND_CORE);
			ASSERT(t->core_in_flight > 0);
			p->resp = resp[k];
			t->core_in_flight--;
			pend_decided(t, i);
		}
	}
}

static void poll_durable(struct net_thread *t)
{
	node *n = t->s->node;
	int err;

	if (t->durable_head == NIL)
		return;
	err = wal_error(node_wal(n));
	while (t->durable_head != NIL) {
		uint32_t i = t->durable_head;
		struct pending *p = pend_at(t, i);
		ASSERT(p->state == PEND_DURABLE);
		if (!err && !node_durable(n, p->resp.lsn))
			break; /* later ones are mostly later in the log too */
		if (err && !node_durable(n, p->resp.lsn))
			p->rc = err;
		t->durable_head = p->dnext;
		if (t->durable_head == NIL)
			t->durable_tail = NIL;
		count_op(t, p);
		pend_ready(t, i);
	}
}

/* The oldest answer waiting for the log may go (or the log failed). */
static bool durable_due(struct net_thread *t)
{
	node *n = t->s->node;

	return t->durable_head != NIL &&
	       (node_durable(n, pend_at(t, t->durable_head)->resp.lsn) ||
		wal_error(node_wal(n)) != 0);
}

static void drain_backlog(struct net_thread *t)
{
	while (t->backlog_head != NIL) {
		uint32_t i = t->backlog_head;
		uint32_t next = pend_at(t, i)->dnext;
		ASSERT(pend_at(t, i)->state == PEND_BACKLOG);
		if (!try_submit(t, i))
			break;
		t->backlog_head = next;
		if (next == NIL)
			t->backlog_tail = NIL;
	}
}

/* Connections that stopped for lack of pendings: read again. */
static void resume_stalled(struct net_thread *t)
{
	if (!t->stalled_conns || t->pend_free == NIL)
		return;
	t->stalled_conns = 0;
	for (uint32_t i = 0; i < t->conn_count_max; i++) {
		struct conn *c = conn_at(t, i);
		if (c->fd >= 0 && !c->closing && c->in_blocked)
			conn_mark_dirty(c);
	}
}

void *net_main(void *arg)
{
	struct net_thread *t = arg;
	struct srv *s = t->s;
	bool stopping = false;
	uint64_t stop_deadline = 0;

	if (t->ring_deferred) { /* the ring is this thread's from here */
		/* (Debian's liburing 2.3 declares io_uring_enable_rings but
		 * does not export it.) */
		long rc = syscall(__NR_io_uring_register, t->ring.ring_fd,
				  IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		ASSERT(rc == 0);
	}

	for (unsigned k = 0; k < 2; k++) {
		struct io_uring_sqe *sqe;
		if (t->listeners[k].fd < 0)
			continue;
		sqe = get_sqe(t);
		io_uring_prep_multishot_accept(sqe, t->listeners[k].fd, NULL,
					       NULL, SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe, ud_make(UD_ACCEPT, k, 0));
	}
	t->sweep_ns = mono_ns();
	arm_timer(t);
	for (;;) {
		struct io_uring_cqe *cqes[NET_CQE_BATCH];
		unsigned n;

		n = io_uring_peek_batch_cqe(&t->ring, cqes, NET_CQE_BATCH);
		for (unsigned k = 0; k < n; k++)
			handle_cqe(t, cqes[k]);
		io_uring_cq_advance(&t->ring, n);

		/* The shards this thread hosts decide what it read; their log
		 * records go out together (one write and sync, group commit),
		 * submitted here unless a batch is in flight (then its
		 * completion's turn takes them). */
		wal_defer_begin();
		for (unsigned k = 0;
		     k < NET_RUN_PASSES && core_port_run(t->port); k++)
			;
		log_turn_end(t);
		poll_core(t);
		poll_slow(t);
		poll_durable(t);
		drain_backlog(t);
		resume_stalled(t);
		flush_dirty(t);
		sweep(t);

		if (atomic_load_explicit(&s->stopping, memory_order_acquire)) {
			if (!stopping) {
				stopping = true;
				stop_deadline = mono_ns() + s->stop_timeout_ns;
				stop_listeners(t);
			}
			bool sending = false;
			for (uint32_t i = 0; i < t->conn_count_max; i++) {
				struct conn *c = conn_at(t, i);
				if (c->fd < 0 || c->closing)
					continue;
				if (c->fifo_count == 0 && !c->sending)
					conn_close(c);
				else
					sending = true;
			}
			if ((!sending && t->pend_count == 0) ||
			    mono_ns() > stop_deadline)
				break;
		}
		if (n == NET_CQE_BATCH || t->dirty_head != NIL) {
			net_submit(t);
			continue;
		}
		arm_wake(t);
		if (stopping) {
			struct __kernel_timespec ts = { 0, 10000000 };
			struct io_uring_cqe *cqe;
			io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts,
							 NULL);
			continue;
		}
		if (!core_port_idle_begin(t->port)) {
			net_submit(t);
			continue;
		}
		/* The log writes wake_fd only while we say we sleep: say it,
		 * then look at what it made durable a last time (seq_cst both
		 * sides: it sees the flag or we see its advance). */
		atomic_store(&t->idle, true);
		atomic_thread_fence(memory_order_seq_cst);
		if (durable_due(t)) {
			atomic_store(&t->idle, false);
			core_port_idle_end(t->port);
			net_submit(t);
			continue;
		}
		/* Nothing to do until the kernel, the core, the log or a slow
		 * worker says so (they all write wake_fd). */
		io_uring_submit_and_wait(&t->ring, 1);
		atomic_store(&t->idle, false);
		core_port_idle_end(t->port);
	}
	/* The log's batch in flight is finished before the thread goes. */
	while (t->wal_inflight > 0) {
		struct io_uring_cqe *cqe;

		io_uring_submit(&t->ring);
		if (io_uring_wait_cqe(&t->ring, &cqe) != 0)
			continue; /* EINTR */
		if (ud_kind(io_uring_cqe_get_data64(cqe)) == UD_WAL)
			on_log_cqe(t, ud_index(io_uring_cqe_get_data64(cqe)),
				   cqe->res);
		io_uring_cqe_seen(&t->ring, cqe);
	}
	/* Whatever is left is closed hard. */
	for (uint32_t i = 0; i < t->conn_count_max; i++) {
		struct conn *c = conn_at(t, i);
		if (c->fd >= 0) {
			shutdown(c->fd, SHUT_RDWR);
			close(c->fd);
			c->fd = -1;
		}
	}
	return NULL;
}
