/*
 * net.c: the network threads of bookd (api/net.h, api/srv.h).
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
 * thread's pool and puts it at the tail of the connection's FIFO. Shard operations go through core_submit() (if the
 * port is out of slots, the pending waits in a backlog and is submitted on
 * a later turn); the others go to the slow workers' queue. A decision's
 * answer carries its log position: it waits until wal_durable_lsn() covers
 * it. A connection's FIFO is flushed from its head while the head is done:
 * the protocol renders it into the connection's output. So answers leave
 * in request order (HTTP pipelining needs it) and never before they are
 * durable. Reads (no log position) are answered as soon as they are
 * decided.
 *
 * Wake-ups. One eventfd per thread is written by the core when answers
 * reach the port while the thread is idle (core_port_set_wake_fd), by the
 * log after each durable advance (node_config.wake_fds), and by slow
 * workers when they finish. The thread keeps one read of it in flight.
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
 * Lock-outs. A request must arrive whole within request_timeout of its
 * first byte, the first request of a connection within request_timeout of
 * the accept: a deadline, not a per-byte timer, so a client that trickles
 * bytes (or never sends any) is answered by the protocol's timeout() (HTTP:
 * 408) and closed. Connections per client address are capped over all
 * threads (conn_per_address_max: a table under addr_lock, touched at
 * accept and release only; an IPv6 address counts by its /64, unix
 * sockets not at all): over the cap, the accepted socket is closed at
 * once. The last conn_reserve slots of each thread's table are a reserve:
 * a connection accepted into it is marked (srv_conn_in_reserve) and its
 * protocol serves it only /health and the service key, so that an
 * operator and the health check still get in when the table is full.
 *
 * Listening. Before binding host:port the first thread tries a socket
 * without SO_REUSEPORT on it: if anything listens there (another bookd
 * would share the port through SO_REUSEPORT and answer half the clients
 * from another data dir), net_prepare refuses with a clear error. Once
 * every thread listens, the listening sockets on that port are read back
 * from /proc/net/tcp{,6}: one that is not ours (two servers started at the
 * same instant) is refused as well.
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
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NET_RING_ENTRIES 4096
#define NET_BUF_COUNT 2048          /* provided read buffers per thread */
#define NET_BUF_SIZE (16u << 10)
#define NET_BUF_GROUP 1
#define NET_POLL_BATCH 256
#define NET_CQE_BATCH 256
#define NET_LISTEN_BACKLOG 4096

#define ASSERT(x)                                                            \
	do {                                                                 \
		if (!(x)) {                                                  \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",     \
				__FILE__, __LINE__, #x);                     \
			abort();                                             \
		}                                                            \
	} while (0)

enum ud_kind { UD_ACCEPT = 1, UD_RECV, UD_SEND, UD_WAKE, UD_TIMER };

enum pend_state {
	PEND_FREE = 0,
	PEND_BACKLOG, /* waits for a core slot */
	PEND_CORE,    /* submitted to a shard */
	PEND_SLOW,    /* with a slow worker */
	PEND_DURABLE, /* decided, waits for its log position */
	PEND_DONE,    /* to render */
};

struct pending {
	uint8_t state;
	uint32_t conn;     /* index in the thread's connection table */
	uint32_t conn_gen;
	uint32_t next;     /* next in the connection's FIFO, or backlog */
	uint32_t dnext;    /* next in the durability list */
	int rc;
	uint64_t started_ns;
	struct core_req req;
	struct core_resp resp;
	struct srv_views views;
	struct srv_buf after; /* answers given at once after this request's */
	size_t ctx_size;
	_Alignas(16) uint8_t ctx[SRV_CTX_SIZE_MAX];
};

#define NIL UINT32_MAX

struct conn {
	int fd;
	uint32_t gen;
	const struct srv_proto *proto;
	void *state;
	uint8_t ops;         /* io_uring operations in flight (recv, send) */
	bool recv_armed, sending, closing, close_after, dirty_listed;
	bool in_parse;
	bool in_blocked; /* stopped for lack of room (pipeline, pool): retry */
	uint32_t fifo_head, fifo_tail, fifo_count;
	struct srv_buf in;   /* unparsed bytes */
	struct srv_buf out;  /* being sent */
	size_t out_sent;
	struct srv_buf next; /* filling */
	char peer[INET6_ADDRSTRLEN];
	uint64_t peer_key;
	uint64_t addr_key;  /* in srv's per-address table, or 0 */
	bool reserve;       /* accepted into the reserve */
	bool served;        /* a first request was taken */
	uint32_t dirty_next;
	uint32_t free_next;
	/* Timeouts (see sweep): last bytes read, last bytes sent, since when
	 * a request (the first: since the accept) is awaited whole. */
	uint64_t read_ns, send_ns, request_ns;
	struct net_thread *t;
};

/* Connections per client address, shared by the threads (open
 * addressing, linear probing; at most half full). */
struct addr_slot {
	uint64_t key; /* 0: empty */
	uint32_t count;
};

struct listener {
	int fd;
	const struct srv_proto *proto;
};

struct slow_job {
	struct net_thread *t;
	uint32_t pend;
	struct slow_job *next;
};

struct net_thread {
	struct srv *s;
	unsigned index;
	pthread_t thread;
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	int wake_fd;
	uint64_t wake_value;
	bool wake_armed;
	struct __kernel_timespec timer_ts;
	uint64_t sweep_ns;
	struct listener listeners[2];
	core_port *port;

	struct conn *conns;
	uint32_t conn_count_max, conn_free, conn_count;
	struct pending *pends;
	uint32_t pend_free, pend_count;
	uint32_t backlog_head, backlog_tail;
	uint32_t durable_head, durable_tail;
	uint32_t dirty_head; /* connections to flush */
	uint32_t core_in_flight;
	uint32_t stalled_conns; /* waiting for pool space: resumed on free */
	struct srv_buf discard;

	/* Slow workers' answers, under s->slow_lock. */
	struct slow_job *slow_done;

	/* Counters, read by srv_status_get from other threads. */
	_Atomic uint64_t requests_total, responses[6];
	_Atomic uint64_t ops_total[CORE_OP_COUNT], ops_ns_total[CORE_OP_COUNT];
	_Atomic uint64_t conn_gauge;
	_Atomic uint64_t refused_address, refused_full, request_timeouts;
};

struct srv {
	struct net_config cfg;
	node *node;
	core *core;
	struct auth_limiter *limiter;
	struct net_thread *threads;
	unsigned thread_count;
	int *wake_fds;
	char http_addr[sizeof(struct sockaddr_un) + 8],
		bin_addr[sizeof(struct sockaddr_un) + 8];
	char unix_path[2][sizeof(((struct sockaddr_un *)0)->sun_path)];
	int unix_fd[2]; /* bound once, dup'ed for each thread */
	unsigned http_port, bin_port; /* bound TCP ports (0: a unix socket) */

	pthread_mutex_t addr_lock;
	struct addr_slot *addr_slots;
	uint32_t addr_mask;
	_Atomic bool stopping;
	uint64_t stop_timeout_ns; /* set before stopping */
	_Atomic uint64_t rate_limited;
	core_time started_at;

	pthread_mutex_t slow_lock;
	pthread_cond_t slow_cond;
	struct slow_job *slow_head, *slow_tail;
	pthread_t *slow_threads;
	unsigned slow_started;
	bool slow_stop;
};

/* ---- small things ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

core_time srv_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (core_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t ud_make(enum ud_kind kind, uint32_t index, uint32_t gen)
{
	return (uint64_t)kind << 56 | (uint64_t)(index & 0xffffff) << 32 | gen;
}

static enum ud_kind ud_kind(uint64_t ud)
{
	return (enum ud_kind)(ud >> 56);
}

static uint32_t ud_index(uint64_t ud)
{
	return (uint32_t)(ud >> 32) & 0xffffff;
}

static uint32_t ud_gen(uint64_t ud)
{
	return (uint32_t)ud;
}

static void buf_free(struct srv_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void buf_consume(struct srv_buf *b, size_t n)
{
	ASSERT(n <= b->size);
	memmove(b->data, b->data + n, b->size - n);
	b->size -= n;
}

static struct io_uring_sqe *get_sqe(struct net_thread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	if (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	ASSERT(sqe); /* the ring was just emptied */
	return sqe;
}

/* ---- connections ---- */

static struct conn *conn_at(struct net_thread *t, uint32_t index)
{
	return &t->conns[index];
}

static uint32_t conn_index(struct net_thread *t, const struct conn *c)
{
	return (uint32_t)(c - t->conns);
}

static void conn_mark_dirty(struct conn *c)
{
	struct net_thread *t = c->t;

	if (c->dirty_listed)
		return;
	c->dirty_listed = true;
	c->dirty_next = t->dirty_head;
	t->dirty_head = conn_index(t, c);
}

static size_t conn_unsent(const struct conn *c)
{
	return c->out.size - c->out_sent + c->next.size;
}

static bool conn_may_read(const struct conn *c)
{
	return !c->closing && !c->close_after &&
	       c->fifo_count < SRV_PIPELINE_MAX && c->t->pend_free != NIL &&
	       conn_unsent(c) < SRV_OUT_SIZE_MAX / 2 &&
	       !atomic_load_explicit(&c->t->s->stopping, memory_order_relaxed);
}

static void arm_recv(struct conn *c)
{
	struct net_thread *t = c->t;
	struct io_uring_sqe *sqe;

	if (c->recv_armed)
		return;
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
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, conn_index(t, c), c->gen));
	c->recv_armed = true;
	c->ops++;
}

/* ---- connections per client address ---- */

/* The key an address counts under: IPv4 (also mapped into IPv6) by its
 * address, IPv6 by its /64 (what one client is usually given); 0 for what
 * is not counted (unix sockets). */
static uint64_t addr_key_of(const struct sockaddr_storage *ss)
{
	uint8_t b[9];
	uint64_t k;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		b[0] = 4;
		memcpy(b + 1, &a->sin_addr, 4);
		k = auth_limit_key(b, 5);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			b[0] = 4;
			memcpy(b + 1, a->sin6_addr.s6_addr + 12, 4);
			k = auth_limit_key(b, 5);
		} else {
			b[0] = 6;
			memcpy(b + 1, a->sin6_addr.s6_addr, 8);
			k = auth_limit_key(b, 9);
		}
	} else {
		return 0;
	}
	return k ? k : 1;
}

/* One more connection from key: false when it has conn_per_address_max
 * already. The table holds one entry per address with connections, at
 * most the connection slots of all threads: never more than half full. */
static bool addr_take(struct srv *s, uint64_t key)
{
	struct addr_slot *a;
	uint32_t i = (uint32_t)key & s->addr_mask;
	bool ok;

	ASSERT(key != 0);
	pthread_mutex_lock(&s->addr_lock);
	while (s->addr_slots[i].key && s->addr_slots[i].key != key)
		i = (i + 1) & s->addr_mask;
	a = &s->addr_slots[i];
	if (!a->key) {
		a->key = key;
		a->count = 0;
	}
	ok = a->count < s->cfg.conn_per_address_max;
	if (ok)
		a->count++;
	pthread_mutex_unlock(&s->addr_lock);
	return ok;
}

static void addr_release(struct srv *s, uint64_t key)
{
	struct addr_slot *slots = s->addr_slots;
	uint32_t mask = s->addr_mask, i = (uint32_t)key & mask, j;

	pthread_mutex_lock(&s->addr_lock);
	while (slots[i].key != key) {
		ASSERT(slots[i].key != 0); /* taken before */
		i = (i + 1) & mask;
	}
	ASSERT(slots[i].count > 0);
	if (--slots[i].count == 0) {
		/* Delete by shifting back the entries after it that probed
		 * past i (their home is not in (i, j] cyclically). */
		for (j = (i + 1) & mask; slots[j].key; j = (j + 1) & mask) {
			uint32_t home = (uint32_t)slots[j].key & mask;
			bool stays = i <= j ? (home > i && home <= j)
					    : (home > i || home <= j);
			if (!stays) {
				slots[i] = slots[j];
				i = j;
			}
		}
		slots[i].key = 0;
		slots[i].count = 0;
	}
	pthread_mutex_unlock(&s->addr_lock);
}

static void conn_release(struct conn *c)
{
	struct net_thread *t = c->t;

	ASSERT(c->ops == 0);
	ASSERT(c->fifo_count == 0);
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
}

/* Stops the connection; the slot goes once nothing refers to it. */
static void conn_close(struct conn *c)
{
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
		struct srv_buf tmp;
		if (c->next.size == 0)
			return;
		tmp = c->out;
		c->out = c->next;
		c->next = tmp;
		c->next.size = 0;
		c->out_sent = 0;
	}
	if (c->out_sent == 0)
		c->send_ns = mono_ns(); /* a new send: its clock starts */
	sqe = get_sqe(t);
	io_uring_prep_send(sqe, c->fd, c->out.data + c->out_sent,
			   c->out.size - c->out_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, conn_index(t, c), c->gen));
	c->sending = true;
	c->ops++;
}

/* ---- pendings ---- */

static struct pending *pend_at(struct net_thread *t, uint32_t i)
{
	return &t->pends[i];
}

static uint32_t pend_get(struct net_thread *t)
{
	uint32_t i = t->pend_free;
	struct pending *p;

	if (i == NIL)
		return NIL;
	p = pend_at(t, i);
	t->pend_free = p->next;
	t->pend_count++;
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

	/* The slot keeps no pointer to what it freed: net_free frees the
	 * views of the slots still in use at exit, and only those. */
	free(p->views.events);
	free(p->views.bookings);
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
}

/* The answer of pending i is ready (or failed): its connection may flush. */
static void pend_ready(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	p->state = PEND_DONE;
	conn_mark_dirty(conn_at(t, p->conn));
}

static void count_op(struct net_thread *t, struct pending *p)
{
	enum core_op op = p->req.op;

	if (op > CORE_OP_NONE && op < CORE_OP_COUNT) {
		atomic_fetch_add_explicit(&t->ops_total[op], 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->ops_ns_total[op],
					  mono_ns() - p->started_ns,
					  memory_order_relaxed);
	}
}

/* Decided: answer now, or once durable. */
static void pend_decided(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	if (p->rc == 0 && p->resp.lsn != 0 &&
	    !node_durable(t->s->node, p->resp.lsn)) {
		int err = wal_error(node_wal(t->s->node));
		if (err) {
			p->rc = err;
		} else {
			p->state = PEND_DURABLE;
			p->dnext = NIL;
			if (t->durable_tail == NIL)
				t->durable_head = i;
			else
				pend_at(t, t->durable_tail)->dnext = i;
			t->durable_tail = i;
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

static void backlog_push(struct net_thread *t, uint32_t i)
{
	struct pending *p = pend_at(t, i);

	p->state = PEND_BACKLOG;
	p->dnext = NIL;
	if (t->backlog_tail == NIL)
		t->backlog_head = i;
	else
		pend_at(t, t->backlog_tail)->dnext = i;
	t->backlog_tail = i;
}

static void slow_push(struct net_thread *t, uint32_t i)
{
	struct srv *s = t->s;
	struct slow_job *job = malloc(sizeof(*job));

	if (!job) {
		pend_at(t, i)->rc = -ENOMEM;
		pend_ready(t, i);
		return;
	}
	job->t = t;
	job->pend = i;
	job->next = NULL;
	pend_at(t, i)->state = PEND_SLOW;
	pthread_mutex_lock(&s->slow_lock);
	if (s->slow_tail)
		s->slow_tail->next = job;
	else
		s->slow_head = job;
	s->slow_tail = job;
	pthread_cond_signal(&s->slow_cond);
	pthread_mutex_unlock(&s->slow_lock);
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

const struct auth_config *srv_auth(const struct srv *s)
{
	return &s->cfg.auth;
}

struct auth_limiter *srv_limiter(struct srv *s)
{
	return s->limiter;
}

/* An answer given at once goes out right away when nothing is queued
 * before it, else right after the answer of the last request queued (so it
 * needs no room of its own: a connection can always be answered). */
struct srv_buf *srv_answer_begin(struct srv_conn *sc)
{
	struct conn *c = (struct conn *)sc;
	struct net_thread *t = c->t;

	atomic_fetch_add_explicit(&t->requests_total, 1, memory_order_relaxed);
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
	srv_buf_put(srv_answer_begin(sc), bytes, size);
	srv_answer_done(sc);
}

int srv_submit(struct srv_conn *sc, const struct core_req *req,
	       const void *ctx, size_t ctx_size)
{
	struct conn *c = (struct conn *)sc;
	struct net_thread *t = c->t;
	struct pending *p;
	uint32_t i;

	ASSERT(ctx_size <= SRV_CTX_SIZE_MAX);
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
	atomic_fetch_add_explicit(&t->requests_total, 1, memory_order_relaxed);
	p = pend_at(t, i);
	p->req = *req;
	p->ctx_size = ctx_size;
	memcpy(p->ctx, ctx, ctx_size);
	p->started_ns = mono_ns();
	fifo_append(c, i);
	if (!op_is_shard(req->op))
		slow_push(t, i);
	else if (t->backlog_head != NIL || !try_submit(t, i))
		backlog_push(t, i);
	return 0;
}

/* ---- the slow workers ---- */

static int slow_run(core_port *port, node *n, struct pending *p)
{
	uint32_t limit;
	int rc;

	switch (p->req.op) {
	case CORE_OP_EVENT_LIST:
		limit = p->req.u.list.limit;
		if (limit == 0 || limit > CORE_LIST_LIMIT_MAX)
			return -EINVAL;
		p->views.events = calloc(limit, sizeof(*p->views.events));
		if (!p->views.events)
			return -ENOMEM;
		p->req.u.list.out = p->views.events;
		break;
	case CORE_OP_CUSTOMER_BOOKINGS:
		limit = p->req.u.customer.capacity;
		if (limit == 0 || limit > CORE_LIST_LIMIT_MAX)
			return -EINVAL;
		p->views.bookings = calloc(limit, sizeof(*p->views.bookings));
		if (!p->views.bookings)
			return -ENOMEM;
		p->req.u.customer.out = p->views.bookings;
		break;
	default:
		break;
	}
	rc = core_call(port, &p->req, &p->resp);
	if (rc == 0 && p->resp.lsn)
		rc = node_wait_durable(n, p->resp.lsn);
	return rc;
}

struct slow_arg {
	struct srv *s;
	unsigned index;
};

static void *slow_main(void *arg)
{
	struct slow_arg *a = arg;
	struct srv *s = a->s;
	core_port *port = core_port_get(s->core, s->cfg.first_port +
						       s->thread_count + a->index);

	free(a);
	pthread_mutex_lock(&s->slow_lock);
	for (;;) {
		struct slow_job *job;
		struct net_thread *t;
		uint64_t one = 1;

		while (!s->slow_head && !s->slow_stop)
			pthread_cond_wait(&s->slow_cond, &s->slow_lock);
		if (!s->slow_head)
			break;
		job = s->slow_head;
		s->slow_head = job->next;
		if (!s->slow_head)
			s->slow_tail = NULL;
		pthread_mutex_unlock(&s->slow_lock);

		t = job->t;
		pend_at(t, job->pend)->rc =
			slow_run(port, s->node, pend_at(t, job->pend));

		pthread_mutex_lock(&s->slow_lock);
		job->next = t->slow_done;
		/* Atomic: poll_slow peeks at slow_done without the lock (a
		 * relaxed hint; the list itself is taken under the lock). */
		__atomic_store_n(&t->slow_done, job, __ATOMIC_RELAXED);
		(void)!write(t->wake_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&s->slow_lock);
	return NULL;
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
		/* Rendered even for a closed connection (into the discard
		 * buffer): the protocol frees what its ctx holds. */
		struct srv_buf *out = c->closing ? &t->discard : &c->next;
		c->proto->render((struct srv_conn *)c, c->state, p->ctx, p->rc,
				 &p->resp, &p->views, out);
		t->discard.size = 0;
		if (!c->closing) {
			srv_buf_put(&c->next, p->after.data, p->after.size);
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

	if (!from_in && c->in.size) {
		srv_buf_put(&c->in, data, size);
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
		srv_buf_put(&c->in, p + used, n - (size_t)used);
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

static void on_accept(struct net_thread *t, struct listener *l, int res,
		      uint32_t flags)
{
	struct srv *s = t->s;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct conn *c;
	uint64_t key;
	uint32_t i;
	int one = 1;

	if (!(flags & IORING_CQE_F_MORE) && !atomic_load(&s->stopping)) {
		/* The multishot accept ended (e.g. ENFILE): re-arm it. */
		struct io_uring_sqe *sqe = get_sqe(t);
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
					       SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe, ud_make(UD_ACCEPT,
						     (uint32_t)(l - t->listeners), 0));
	}
	if (res < 0)
		return;
	if (t->conn_free == NIL || atomic_load(&s->stopping)) {
		close(res); /* full: refuse rather than starve the others */
		if (t->conn_free == NIL)
			atomic_fetch_add_explicit(&t->refused_full, 1,
						  memory_order_relaxed);
		return;
	}
	if (getpeername(res, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	key = s->cfg.conn_per_address_max ? addr_key_of(&ss) : 0;
	if (key && !addr_take(s, key)) {
		close(res); /* this address has its share of the table */
		atomic_fetch_add_explicit(&t->refused_address, 1,
					  memory_order_relaxed);
		return;
	}
	i = t->conn_free;
	c = conn_at(t, i);
	c->state = calloc(1, l->proto->conn_state_size ? l->proto->conn_state_size : 1);
	if (!c->state) {
		if (key)
			addr_release(s, key);
		close(res);
		return;
	}
	t->conn_free = c->free_next;
	/* The last conn_reserve slots: /health and the service key only. */
	c->reserve = t->conn_count >= t->conn_count_max - s->cfg.conn_reserve;
	t->conn_count++;
	atomic_fetch_add_explicit(&t->conn_gauge, 1, memory_order_relaxed);
	c->fd = res;
	c->proto = l->proto;
	c->addr_key = key;
	c->ops = 0;
	c->recv_armed = c->sending = c->closing = c->close_after = false;
	c->dirty_listed = c->in_parse = c->in_blocked = false;
	c->served = false;
	c->fifo_head = c->fifo_tail = NIL;
	c->fifo_count = 0;
	c->out_sent = 0;
	c->read_ns = c->send_ns = mono_ns();
	c->request_ns = c->read_ns; /* the first request's deadline runs */
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->peer[0] = 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, c->peer, sizeof(c->peer));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, c->peer, sizeof(c->peer));
	}
	if (!c->peer[0])
		strcpy(c->peer, "unix");
	c->peer_key = auth_limit_key(c->peer, strlen(c->peer));
	arm_recv(c);
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
	io_uring_prep_read(sqe, t->wake_fd, &t->wake_value, sizeof(t->wake_value), 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_WAKE, 0, 0));
	t->wake_armed = true;
}

static void arm_timer(struct net_thread *t)
{
	struct io_uring_sqe *sqe = get_sqe(t);

	t->timer_ts.tv_sec = 1;
	t->timer_ts.tv_nsec = 0;
	io_uring_prep_timeout(sqe, &t->timer_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_TIMER, 0, 0));
}

/* A request did not arrive whole in time: the protocol's last answer
 * (HTTP's 408), then the close. */
static void request_timed_out(struct conn *c)
{
	atomic_fetch_add_explicit(&c->t->request_timeouts, 1,
				  memory_order_relaxed);
	c->request_ns = 0;
	if (c->proto->timeout)
		c->proto->timeout((struct srv_conn *)c, c->state);
	c->close_after = true; /* read no more; closed once the answer left */
	buf_free(&c->in);
	conn_mark_dirty(c);
}

/* Once a second: a request not whole request_timeout after its first byte
 * (the first request: after the accept) is timed out; connections that
 * stalled are closed: a send that made no progress for send_timeout (a
 * client that does not read), nothing at all between requests for
 * idle_timeout. */
static void sweep(struct net_thread *t)
{
	const struct net_config *cfg = &t->s->cfg;
	uint64_t now = mono_ns();

	if (now - t->sweep_ns < 1000000000ull)
		return;
	t->sweep_ns = now;
	for (uint32_t i = 0; i < t->conn_count_max; i++) {
		struct conn *c = conn_at(t, i);
		bool stalled;
		if (c->fd < 0 || c->closing)
			continue;
		/* (A request waiting for room or answers is not the client's
		 * delay.) */
		if (c->request_ns && c->fifo_count == 0 && !c->in_blocked &&
		    !c->close_after &&
		    now - c->request_ns > cfg->request_timeout_ms * 1000000ull) {
			request_timed_out(c);
			continue;
		}
		stalled = (c->sending &&
			   now - c->send_ns > cfg->send_timeout_ms * 1000000ull) ||
			  (c->fifo_count == 0 && !c->sending && c->in.size == 0 &&
			   now - c->read_ns > cfg->idle_timeout_ms * 1000000ull);
		if (stalled)
			conn_close(c);
	}
}

static void handle_cqe(struct net_thread *t, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c;

	switch (ud_kind(ud)) {
	case UD_ACCEPT:
		on_accept(t, &t->listeners[ud_index(ud)], cqe->res, cqe->flags);
		return;
	case UD_WAKE:
		t->wake_armed = false;
		return;
	case UD_TIMER:
		arm_timer(t);
		return;
	case UD_RECV:
	case UD_SEND:
		c = conn_at(t, ud_index(ud));
		ASSERT(c->gen == ud_gen(ud)); /* slots outlive their operations */
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
			p->resp = resp[k];
			t->core_in_flight--;
			pend_decided(t, i);
		}
	}
}

static void poll_slow(struct net_thread *t)
{
	struct srv *s = t->s;
	struct slow_job *done;

	if (!__atomic_load_n(&t->slow_done, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&s->slow_lock);
	done = t->slow_done;
	t->slow_done = NULL;
	pthread_mutex_unlock(&s->slow_lock);
	while (done) {
		struct slow_job *next = done->next;
		struct pending *p = pend_at(t, done->pend);
		/* A slow worker waited for durability itself. */
		count_op(t, p);
		pend_ready(t, done->pend);
		free(done);
		done = next;
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

static void drain_backlog(struct net_thread *t)
{
	while (t->backlog_head != NIL) {
		uint32_t i = t->backlog_head;
		uint32_t next = pend_at(t, i)->dnext;
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

static void stop_listeners(struct net_thread *t)
{
	for (unsigned k = 0; k < 2; k++) {
		if (t->listeners[k].fd >= 0) {
			shutdown(t->listeners[k].fd, SHUT_RDWR);
			close(t->listeners[k].fd);
			t->listeners[k].fd = -1;
		}
	}
}

static void *net_main(void *arg)
{
	struct net_thread *t = arg;
	struct srv *s = t->s;
	bool stopping = false;
	uint64_t stop_deadline = 0;

	for (unsigned k = 0; k < 2; k++) {
		struct io_uring_sqe *sqe;
		if (t->listeners[k].fd < 0)
			continue;
		sqe = get_sqe(t);
		io_uring_prep_multishot_accept(sqe, t->listeners[k].fd, NULL, NULL,
					       SOCK_CLOEXEC);
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
			io_uring_submit(&t->ring);
			continue;
		}
		arm_wake(t);
		if (stopping) {
			struct __kernel_timespec ts = { 0, 10000000 };
			struct io_uring_cqe *cqe;
			io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
			continue;
		}
		if (!core_port_idle_begin(t->port)) {
			io_uring_submit(&t->ring);
			continue;
		}
		/* Nothing to do until the kernel, the core, the log or a slow
		 * worker says so (they all write wake_fd). */
		io_uring_submit_and_wait(&t->ring, 1);
		core_port_idle_end(t->port);
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

/* ---- set-up ---- */

void net_config_default(struct net_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->http_listen = "127.0.0.1:8080";
	cfg->binary_listen = "127.0.0.1:7070";
	cfg->thread_count = 1;
	cfg->slow_count = 4; /* listings wait on the shards: several at once */
	cfg->conn_count_max = 16384;
	cfg->conn_reserve = 64;
	cfg->conn_per_address_max = 1024;
	cfg->pending_count_max = 32768;
	cfg->request_timeout_ms = 10000;
	cfg->send_timeout_ms = 10000;
	cfg->idle_timeout_ms = 300000;
	auth_limit_config_default(&cfg->limits);
}

unsigned net_port_count(const struct net_config *cfg)
{
	return cfg->thread_count + cfg->slow_count;
}

static int split_addr(const char *addr, char *host, size_t host_size,
		      char *port, size_t port_size)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hn;

	if (!colon)
		return -EINVAL;
	hn = (size_t)(colon - addr);
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (hn == 0 || hn >= host_size || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= port_size)
		return -EINVAL;
	memcpy(host, h, hn);
	host[hn] = 0;
	strcpy(port, colon + 1);
	return 0;
}

/* "unix:PATH": a unix socket, bound once (the threads share it: dup). A
 * socket file left by an earlier run is replaced, one a live server
 * answers on is not. Removed by net_free. */
static int listen_unix(struct srv *s, int which, const char *addr,
		       char *shown, size_t shown_size, char *err,
		       size_t err_size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = addr + 5;
	struct stat st;
	int fd, probe;

	if (s->unix_fd[which] >= 0) {
		fd = fcntl(s->unix_fd[which], F_DUPFD_CLOEXEC, 0);
		return fd >= 0 ? fd : -errno;
	}
	if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_size, "bad listen address '%s' (unix:PATH, "
			 "at most %zu bytes)", addr, sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_size, "cannot listen on %s: a file "
				 "that is not a socket is there", addr);
			return -EEXIST;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 &&
		    connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, err_size, "cannot listen on %s: a server "
				 "answers there", addr);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* stale: its server is gone */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, NET_LISTEN_BACKLOG)) {
		int e = errno;
		snprintf(err, err_size, "cannot listen on %s: %s", addr,
			 strerror(e));
		close(fd);
		return -e;
	}
	s->unix_fd[which] = fd;
	snprintf(s->unix_path[which], sizeof(s->unix_path[which]), "%s", path);
	snprintf(shown, shown_size, "%s", addr);
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return fd >= 0 ? fd : -errno;
}

/* 0 when nothing listens on ai's address: a socket without SO_REUSEPORT
 * cannot bind where one listens (SO_REUSEADDR lets it past connections
 * left in TIME_WAIT); else -errno. */
static int probe_unused(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	int rc = 0;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen))
		rc = -errno;
	close(fd);
	return rc;
}

/* Binds addr with SO_REUSEPORT; *port_io: 0 to take the address's port
 * (then set to the real one: the first thread's socket, which first makes
 * sure nothing listens there), else that port. */
static int listen_on(const char *addr, unsigned *port_io, char *shown,
		     size_t shown_size, char *err, size_t err_size)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	int fd, one = 1, rc;

	if (split_addr(addr, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, err_size, "bad listen address '%s' (host:port)", addr);
		return -EINVAL;
	}
	if (*port_io)
		snprintf(port, sizeof(port), "%u", *port_io);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, err_size, "listen address '%s': %s", addr,
			 gai_strerror(rc));
		return -EINVAL;
	}
	if (*port_io == 0 && strcmp(port, "0") != 0) {
		rc = probe_unused(ai);
		if (rc == -EADDRINUSE) {
			snprintf(err, err_size, "cannot listen on %s: the address "
				 "is in use (another bookd, or another server, "
				 "listens there)", addr);
			goto out_free;
		}
		if (rc) {
			snprintf(err, err_size, "cannot listen on %s: %s", addr,
				 strerror(-rc));
			goto out_free;
		}
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, NET_LISTEN_BACKLOG)) {
		rc = -errno;
		snprintf(err, err_size, "cannot listen on %s: %s", addr,
			 strerror(errno));
		close(fd);
		goto out_free;
	}
	{
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char ip[INET6_ADDRSTRLEN] = "?";
		unsigned p = 0;
		getsockname(fd, (struct sockaddr *)&ss, &len);
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			p = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			p = ntohs(a->sin6_port);
		}
		*port_io = p;
		snprintf(shown, shown_size, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 ip, p);
	}
	rc = fd;
out_free:
	freeaddrinfo(ai);
	return rc;
}

/* After every thread listens on port (TCP): does a listening socket that
 * is not one of ours (fds) share it, on our address or a wildcard? (Two
 * servers that probed at the same instant.) Read from /proc/net/tcp and
 * tcp6; what cannot be read is not checked (the probe was). */
static bool port_shared(unsigned port, const int *fds, unsigned fd_count)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	enum { LINE_COUNT_MAX = 1 << 22 }; /* sockets read at most */
	unsigned long ours[NET_THREAD_COUNT_MAX];
	char addr_ours[2][33] = { "", "" }; /* our address per file */
	bool shared = false;

	ASSERT(fd_count <= NET_THREAD_COUNT_MAX);
	for (unsigned k = 0; k < fd_count; k++) {
		struct stat st;
		ours[k] = fstat(fds[k], &st) == 0 ? (unsigned long)st.st_ino : 0;
	}
	/* Two passes: our sockets' addresses, then the others'. */
	for (int pass = 0; pass < 2 && !shared; pass++) {
		for (int f = 0; f < 2 && !shared; f++) {
			FILE *in = fopen(files[f], "re");
			char line[512], addr[33];
			unsigned lport, state;
			unsigned long inode;
			long n = 0;

			if (!in)
				continue;
			while (fgets(line, sizeof(line), in) &&
			       n++ < LINE_COUNT_MAX) {
				bool mine = false, wild = true;
				if (sscanf(line, " %*u: %32[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x "
					   "%x %*x:%*x %*x:%*x %*x %*u %*u %lu",
					   addr, &lport, &state, &inode) != 4 ||
				    state != 0x0A /* LISTEN */ || lport != port)
					continue;
				for (unsigned k = 0; k < fd_count; k++)
					mine |= inode == ours[k];
				for (const char *p = addr; *p; p++)
					wild &= *p == '0';
				if (pass == 0 && mine)
					snprintf(addr_ours[f], sizeof(addr_ours[f]), "%s", addr);
				if (pass == 1 && !mine &&
				    (wild || !strcmp(addr, addr_ours[f]) ||
				     (addr_ours[f][0] &&
				      strspn(addr_ours[f], "0") == strlen(addr_ours[f]))))
					shared = true;
			}
			fclose(in);
		}
	}
	return shared;
}

static int thread_init(struct srv *s, struct net_thread *t, unsigned index,
		       char *err, size_t err_size)
{
	struct io_uring_params params = { 0 };
	struct io_uring_buf_reg reg = { 0 };
	size_t ring_bytes;
	int rc;

	t->s = s;
	t->index = index;
	t->wake_fd = -1;
	t->listeners[0].fd = t->listeners[1].fd = -1;
	t->listeners[0].proto = &srv_http_proto;
	t->listeners[1].proto = &srv_bin_proto;
	t->backlog_head = t->backlog_tail = NIL;
	t->durable_head = t->durable_tail = NIL;
	t->dirty_head = NIL;
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->wake_fd < 0)
		return -errno;
	params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	rc = io_uring_queue_init_params(NET_RING_ENTRIES, &t->ring, &params);
	if (rc) {
		snprintf(err, err_size, "io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	ring_bytes = NET_BUF_COUNT * sizeof(struct io_uring_buf);
	if (posix_memalign((void **)&t->br, 4096, ring_bytes) ||
	    !(t->bufs = malloc((size_t)NET_BUF_COUNT * NET_BUF_SIZE)))
		return -ENOMEM;
	io_uring_buf_ring_init(t->br);
	reg.ring_addr = (uint64_t)(uintptr_t)t->br;
	reg.ring_entries = NET_BUF_COUNT;
	reg.bgid = NET_BUF_GROUP;
	rc = io_uring_register_buf_ring(&t->ring, &reg, 0);
	if (rc) {
		snprintf(err, err_size, "io_uring_register_buf_ring: %s",
			 strerror(-rc));
		return rc;
	}
	for (unsigned b = 0; b < NET_BUF_COUNT; b++)
		io_uring_buf_ring_add(t->br, t->bufs + (size_t)b * NET_BUF_SIZE,
				      NET_BUF_SIZE, (uint16_t)b,
				      io_uring_buf_ring_mask(NET_BUF_COUNT), (int)b);
	io_uring_buf_ring_advance(t->br, NET_BUF_COUNT);

	t->conn_count_max = s->cfg.conn_count_max;
	t->conns = calloc(t->conn_count_max, sizeof(*t->conns));
	t->pends = calloc(s->cfg.pending_count_max, sizeof(*t->pends));
	if (!t->conns || !t->pends)
		return -ENOMEM;
	t->conn_free = NIL;
	for (uint32_t i = t->conn_count_max; i-- > 0;) {
		t->conns[i].fd = -1;
		t->conns[i].t = t;
		t->conns[i].free_next = t->conn_free;
		t->conn_free = i;
	}
	t->pend_free = NIL;
	for (uint32_t i = s->cfg.pending_count_max; i-- > 0;) {
		t->pends[i].next = t->pend_free;
		t->pend_free = i;
	}
	return 0;
}

int net_prepare(const struct net_config *cfg, struct srv **out, char *err,
		size_t err_size)
{
	struct srv *s;
	unsigned http_port = 0, bin_port = 0;
	int rc = -ENOMEM;

	*out = NULL;
	if (cfg->thread_count == 0 || cfg->thread_count > NET_THREAD_COUNT_MAX ||
	    cfg->slow_count == 0 || cfg->conn_count_max == 0 ||
	    cfg->pending_count_max == 0 || cfg->pending_count_max > (1u << 24) ||
	    cfg->conn_count_max > NET_CONN_COUNT_MAX ||
	    cfg->request_timeout_ms == 0) {
		snprintf(err, err_size, "bad network configuration (threads 1..%d)",
			 NET_THREAD_COUNT_MAX);
		return -EINVAL;
	}
	if (cfg->conn_reserve >= cfg->conn_count_max) {
		snprintf(err, err_size, "the connection reserve (%u) must be "
			 "smaller than the connection table (%u per thread)",
			 cfg->conn_reserve, cfg->conn_count_max);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->thread_count = cfg->thread_count;
	s->unix_fd[0] = s->unix_fd[1] = -1;
	pthread_mutex_init(&s->slow_lock, NULL);
	pthread_cond_init(&s->slow_cond, NULL);
	pthread_mutex_init(&s->addr_lock, NULL);
	s->limiter = auth_limiter_new(&cfg->limits);
	s->threads = calloc(s->thread_count, sizeof(*s->threads));
	s->wake_fds = calloc(s->thread_count, sizeof(*s->wake_fds));
	if (!s->limiter || !s->threads || !s->wake_fds)
		goto out_free;
	/* One entry per address with connections: at most every slot's. */
	s->addr_mask = 1;
	while (s->addr_mask < 2 * (uint64_t)cfg->thread_count * cfg->conn_count_max)
		s->addr_mask <<= 1;
	s->addr_slots = calloc(s->addr_mask, sizeof(*s->addr_slots));
	s->addr_mask--;
	if (!s->addr_slots)
		goto out_free;
	snprintf(err, err_size, "out of memory");
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		rc = thread_init(s, t, i, err, err_size);
		if (rc)
			goto out_free;
		s->wake_fds[i] = t->wake_fd;
		rc = strncmp(cfg->http_listen, "unix:", 5) == 0
			     ? listen_unix(s, 0, cfg->http_listen, s->http_addr,
					   sizeof(s->http_addr), err, err_size)
			     : listen_on(cfg->http_listen, &http_port, s->http_addr,
					 sizeof(s->http_addr), err, err_size);
		if (rc < 0)
			goto out_free;
		t->listeners[0].fd = rc;
		rc = strncmp(cfg->binary_listen, "unix:", 5) == 0
			     ? listen_unix(s, 1, cfg->binary_listen, s->bin_addr,
					   sizeof(s->bin_addr), err, err_size)
			     : listen_on(cfg->binary_listen, &bin_port, s->bin_addr,
					 sizeof(s->bin_addr), err, err_size);
		if (rc < 0)
			goto out_free;
		t->listeners[1].fd = rc;
	}
	s->http_port = http_port;
	s->bin_port = bin_port;
	rc = net_check_ports(s, err, err_size);
	if (rc)
		goto out_free;
	*out = s;
	return 0;
out_free:
	net_free(s);
	return rc;
}

int net_check_ports(const struct srv *s, char *err, size_t err_size)
{
	for (int k = 0; k < 2; k++) {
		unsigned p = k ? s->bin_port : s->http_port;
		int fds[NET_THREAD_COUNT_MAX];
		if (!p)
			continue; /* a unix socket: refused when live */
		for (unsigned i = 0; i < s->thread_count; i++)
			fds[i] = s->threads[i].listeners[k].fd;
		if (port_shared(p, fds, s->thread_count)) {
			snprintf(err, err_size, "cannot listen on %s: another "
				 "socket listens on port %u too (another bookd?)",
				 k ? s->bin_addr : s->http_addr, p);
			return -EADDRINUSE;
		}
	}
	return 0;
}

void net_wake_fds(struct srv *s, const int **fds, unsigned *count)
{
	*fds = s->wake_fds;
	*count = s->thread_count;
}

const char *net_http_address(const struct srv *s)
{
	return s->http_addr;
}

const char *net_binary_address(const struct srv *s)
{
	return s->bin_addr;
}

int net_start(struct srv *s, node *n)
{
	int rc;

	s->node = n;
	s->core = node_core(n);
	s->started_at = srv_now();
	s->slow_threads = calloc(s->cfg.slow_count, sizeof(*s->slow_threads));
	if (!s->slow_threads)
		return -ENOMEM;
	for (; s->slow_started < s->cfg.slow_count; s->slow_started++) {
		struct slow_arg *a = malloc(sizeof(*a));
		if (!a)
			return -ENOMEM;
		a->s = s;
		a->index = s->slow_started;
		rc = -pthread_create(&s->slow_threads[s->slow_started], NULL,
				     slow_main, a);
		if (rc) {
			free(a);
			return rc;
		}
	}
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		t->port = core_port_get(s->core, s->cfg.first_port + i);
		core_port_set_wake_fd(t->port, t->wake_fd);
		rc = -pthread_create(&t->thread, NULL, net_main, t);
		if (rc)
			return rc;
	}
	return 0;
}

void net_stop(struct srv *s, int timeout_ms)
{
	uint64_t one = 1;

	s->stop_timeout_ns = (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
	atomic_store(&s->stopping, true);
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		(void)!write(t->wake_fd, &one, sizeof(one));
		if (t->thread)
			pthread_join(t->thread, NULL);
		t->thread = 0;
	}
	pthread_mutex_lock(&s->slow_lock);
	s->slow_stop = true;
	pthread_cond_broadcast(&s->slow_cond);
	pthread_mutex_unlock(&s->slow_lock);
	for (unsigned i = 0; i < s->slow_started; i++)
		pthread_join(s->slow_threads[i], NULL);
	s->slow_started = 0;
}

void net_free(struct srv *s)
{
	if (!s)
		return;
	for (int k = 0; k < 2; k++)
		if (s->unix_fd[k] >= 0) {
			close(s->unix_fd[k]);
			unlink(s->unix_path[k]);
		}
	for (unsigned i = 0; s->threads && i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		if (t->ring.ring_fd > 0)
			io_uring_queue_exit(&t->ring);
		stop_listeners(t);
		if (t->wake_fd >= 0)
			close(t->wake_fd);
		if (t->conns)
			for (uint32_t k = 0; k < t->conn_count_max; k++) {
				free(t->conns[k].state);
				buf_free(&t->conns[k].in);
				buf_free(&t->conns[k].out);
				buf_free(&t->conns[k].next);
			}
		if (t->pends)
			for (uint32_t k = 0; k < s->cfg.pending_count_max; k++) {
				free(t->pends[k].views.events);
				free(t->pends[k].views.bookings);
				buf_free(&t->pends[k].after);
			}
		while (t->slow_done) { /* finished after the thread left */
			struct slow_job *j = t->slow_done;
			t->slow_done = j->next;
			free(j);
		}
		free(t->conns);
		free(t->pends);
		free(t->br);
		free(t->bufs);
		buf_free(&t->discard);
	}
	while (s->slow_head) {
		struct slow_job *j = s->slow_head;
		s->slow_head = j->next;
		free(j);
	}
	auth_limiter_free(s->limiter);
	free(s->addr_slots);
	free(s->threads);
	free(s->wake_fds);
	free(s->slow_threads);
	free(s);
}

int srv_refresh_views(struct srv *s)
{
	return s->cfg.repl_refresh ? s->cfg.repl_refresh(s->cfg.repl_ctx)
				   : -ENOTSUP;
}

void srv_count_response(struct srv_conn *sc, int status)
{
	struct conn *c = (struct conn *)sc;
	unsigned k = (unsigned)status / 100;

	atomic_fetch_add_explicit(&c->t->responses[k < 6 ? k : 0], 1,
				  memory_order_relaxed);
	if (status == 429)
		atomic_fetch_add_explicit(&c->t->s->rate_limited, 1,
					  memory_order_relaxed);
}

void srv_status_get(struct srv *s, struct srv_status *out)
{
	struct wal_stats ws;
	struct net_repl_status rs = { .state = "disabled" };

	memset(out, 0, sizeof(*out));
	out->thread_count = s->thread_count;
	out->shard_count = s->cfg.shard_count;
	out->started_at = s->started_at;
	if (s->node) {
		wal_stats(node_wal(s->node), &ws);
		out->wal_appended_lsn = ws.appended_lsn;
		out->wal_durable_lsn = ws.durable_lsn;
		out->wal_sync_count = ws.sync_count;
		out->wal_sync_ns_total = ws.sync_ns_total;
		out->wal_sync_ns_max = ws.sync_ns_max;
		out->wal_bytes_written = ws.bytes_written;
		out->wal_error = wal_error(node_wal(s->node));
	}
	if (s->cfg.repl_status)
		s->cfg.repl_status(s->cfg.repl_ctx, &rs);
	out->repl_state = rs.state;
	out->repl_applied_lsn = rs.applied_lsn;
	out->repl_lag_records = rs.lag_records;
	out->repl_lag_bytes = rs.lag_bytes;
	out->repl_lag_seconds = rs.lag_seconds;
	out->rate_limited_total = atomic_load(&s->rate_limited);
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		out->conn_count += atomic_load(&t->conn_gauge);
		out->conn_refused_address += atomic_load(&t->refused_address);
		out->conn_refused_full += atomic_load(&t->refused_full);
		out->request_timeouts += atomic_load(&t->request_timeouts);
		out->requests_total += atomic_load(&t->requests_total);
		for (unsigned k = 0; k < 6; k++)
			out->responses_by_class[k] += atomic_load(&t->responses[k]);
		for (unsigned k = 0; k < CORE_OP_COUNT; k++) {
			out->ops_total[k] += atomic_load(&t->ops_total[k]);
			out->ops_ns_total[k] += atomic_load(&t->ops_ns_total[k]);
		}
	}
}
