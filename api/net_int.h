/*
 * net_int.h: what the files of the network side share (internal to
 * api/net*.c; the rest of the server sees api/net.h and api/srv.h).
 *
 *   net.c          the io_uring loop of each network thread and the life
 *                  cycle of a connection: reads, parse, pendings and their
 *                  FIFO, durability, flush, sends, close; srv_* for protocols.
 *   net_listen.c   listening sockets, the port checks, accept, and the cap
 *                  of connections per client address.
 *   net_slow.c     the slow workers (fan-out reads, catalogue operations).
 *   net_timeout.c  the once-a-second sweep: request, send and idle timeouts.
 *   net_setup.c    net_prepare/start/stop/free, and the status counters.
 *
 * The structures below are the server's state; the small helpers are
 * inline here so that each file uses them as net.c always did.
 */
#ifndef BOOKD_NET_INT_H
#define BOOKD_NET_INT_H

#include "net.h"
#include "bookd_assert.h" /* ASSERT: on in release builds too */

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define NET_RING_ENTRIES 4096
#define NET_BUF_COUNT 2048 /* provided read buffers per thread */
#define NET_BUF_SIZE (16u << 10)
#define NET_BUF_GROUP 1
#define NET_POLL_BATCH 256
#define NET_CQE_BATCH 256
#define NET_RUN_PASSES 16 /* hosted-shard passes a turn (a batch each) */
#define NET_LISTEN_BACKLOG 4096

enum ud_kind { UD_ACCEPT = 1, UD_RECV, UD_SEND, UD_WAKE, UD_TIMER, UD_WAL };

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
	uint32_t conn; /* index in the thread's connection table */
	uint32_t conn_gen;
	uint32_t next;	/* next in the connection's FIFO, or free list */
	uint32_t dnext; /* next in the durability list, or the backlog */
	int rc;
	uint8_t proto; /* enum srv_proto_id of the request's connection */
	uint64_t started_ns;
	struct core_req req;
	struct core_resp resp;
	struct srv_views views;
	struct buf after; /* answers given at once after this request's */
	size_t ctx_size;
	_Alignas(16) uint8_t ctx[SRV_CTX_SIZE_MAX];
};

#define NIL UINT32_MAX

struct conn {
	int fd;
	uint32_t gen;
	const struct srv_proto *proto;
	void *state;
	uint8_t ops; /* io_uring operations in flight (recv, send) */
	bool recv_armed, sending, closing, close_after, dirty_listed;
	bool in_parse;
	bool in_blocked; /* stopped for lack of room (pipeline, pool): retry */
	uint32_t fifo_head, fifo_tail, fifo_count;
	struct buf in;	/* unparsed bytes */
	struct buf out; /* being sent */
	size_t out_sent;
	struct buf next; /* filling */
	char peer[INET6_ADDRSTRLEN];
	uint64_t peer_key;
	uint64_t addr_key; /* in srv's per-address table, or 0 */
	bool reserve;	   /* accepted into the reserve */
	bool served;	   /* a first request was taken */
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

/* A network thread's samples: a ring it alone writes (head) and
 * net_samples_drain alone reads (tail); shift[op] is set by the drain,
 * tick[op] counts requests on this thread. */
#define NET_SAMPLE_RING 16384 /* a power of two */
struct net_sample_raw {
	uint64_t end_ns, ns; /* monotonic answer time, duration */
	uint8_t op, outcome, shift;
};
struct net_samples {
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) _Atomic uint64_t tail;
	_Atomic uint64_t dropped;
	_Atomic uint8_t shift[CORE_OP_COUNT]; /* 1 in 2^shift sampled */
	uint32_t tick[CORE_OP_COUNT];
	uint64_t seen[CORE_OP_COUNT]; /* the drain's: ops_total at its last */
	struct net_sample_raw ring[NET_SAMPLE_RING];
};

struct net_thread {
	struct srv *s;
	unsigned index;
	pthread_t thread;
	struct io_uring ring;
	/* The ring runs its completions' work only when this thread asks
	 * (IORING_SETUP_DEFER_TASKRUN): net_main's submits then get events. */
	bool ring_deferred;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	int wake_fd;
	uint64_t wake_value;
	bool wake_armed;
	/* Set while the thread sleeps in io_uring (net_main): the log writes
	 * wake_fd after a durable advance only then. */
	_Atomic bool idle;
	struct __kernel_timespec timer_ts;
	/* The log's batch this thread submitted (wal_flush_take): a write
	 * linked to an fdatasync, their results, completions still due. */
	struct wal_flush wal_flush;
	int wal_write_res, wal_sync_res;
	unsigned wal_inflight;
	uint64_t sweep_ns;
	uint64_t slow_ns; /* cfg.slow_request_ms in ns; UINT64_MAX: never */
	struct listener listeners[2];
	core_port *port;
	/* When port hosts every shard: a port of its own for the fan-out
	 * reads, run at once in this thread (srv_submit) instead of by a slow
	 * worker. NULL otherwise. */
	core_port *read_port;

	struct conn *conns;
	uint32_t conn_count_max, conn_free, conn_count;
	struct pending *pends;
	uint32_t pend_free, pend_count;
	uint32_t backlog_head, backlog_tail;
	uint32_t durable_head, durable_tail;
	uint32_t dirty_head; /* connections to flush */
	uint32_t core_in_flight;
	uint32_t stalled_conns; /* waiting for pool space: resumed on free */
	struct buf discard;

	/* Slow workers' answers, under s->slow_lock. */
	struct slow_job *slow_done;

	/* Counters, read by srv_status_get from other threads; written by
	 * this thread only (stat_add: no locked instruction, no line shared
	 * with another network thread's counters). */
	_Atomic uint64_t requests_total, responses[6];
	_Atomic uint64_t ops_total[CORE_OP_COUNT], ops_ns_total[CORE_OP_COUNT];
	_Atomic uint64_t lat_buckets[CORE_OP_COUNT][SRV_PROTO_COUNT]
				    [SRV_LAT_BUCKET_COUNT];
	_Atomic uint64_t lat_ns_total[CORE_OP_COUNT][SRV_PROTO_COUNT];
	_Atomic uint64_t conn_gauge, conn_by_proto[SRV_PROTO_COUNT];
	struct net_samples *samples; /* NULL: samples_per_s 0 */
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
	const _Atomic bool **wake_idle; /* &threads[i].idle */
	char http_addr[sizeof(struct sockaddr_un) + 8],
		bin_addr[sizeof(struct sockaddr_un) + 8];
	char unix_path[2][sizeof(((struct sockaddr_un *)0)->sun_path)];
	int unix_fd[2];		      /* bound once, dup'ed for each thread */
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

/* A counter of this thread's (only its owner writes it): a relaxed load
 * and store, a plain add, where fetch_add would be a locked one. */
static inline void stat_add(_Atomic uint64_t *x, uint64_t v)
{
	atomic_store_explicit(x,
			      atomic_load_explicit(x, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline unsigned proto_id(const struct srv_proto *p)
{
	return p == &srv_bin_proto ? SRV_PROTO_BINARY : SRV_PROTO_HTTP;
}

static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ud_make(enum ud_kind kind, uint32_t index, uint32_t gen)
{
	ASSERT(index <= 0xffffff); /* NET_CONN_COUNT_MAX keeps it so */
	return (uint64_t)kind << 56 | (uint64_t)(index & 0xffffff) << 32 | gen;
}

static inline enum ud_kind ud_kind(uint64_t ud)
{
	return (enum ud_kind)(ud >> 56);
}

static inline uint32_t ud_index(uint64_t ud)
{
	return (uint32_t)(ud >> 32) & 0xffffff;
}

static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)ud; }

/* Submits what the thread queued; on a deferred ring also runs the work
 * of what completed meanwhile, so that its completions are there to peek
 * (one system call either way). */
static inline void net_submit(struct net_thread *t)
{
	if (t->ring_deferred)
		io_uring_submit_and_get_events(&t->ring);
	else
		io_uring_submit(&t->ring);
}

static inline struct io_uring_sqe *get_sqe(struct net_thread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	if (!sqe) {
		net_submit(t);
		sqe = io_uring_get_sqe(&t->ring);
	}
	ASSERT(sqe); /* the ring was just emptied */
	return sqe;
}

static inline struct conn *conn_at(struct net_thread *t, uint32_t index)
{
	ASSERT(index < t->conn_count_max);
	return &t->conns[index];
}

static inline uint32_t conn_index(struct net_thread *t, const struct conn *c)
{
	ASSERT(c >= t->conns && c < t->conns + t->conn_count_max);
	return (uint32_t)(c - t->conns);
}

static inline void conn_mark_dirty(struct conn *c)
{
	struct net_thread *t = c->t;

	if (c->dirty_listed)
		return;
	ASSERT(c->fd >= 0); /* a released slot is never listed */
	c->dirty_listed = true;
	c->dirty_next = t->dirty_head;
	t->dirty_head = conn_index(t, c);
}

static inline struct pending *pend_at(struct net_thread *t, uint32_t i)
{
	ASSERT(i < t->s->cfg.pending_count_max); /* NIL is no slot */
	return &t->pends[i];
}

struct slow_arg {
	struct srv *s;
	unsigned index;
};

/* net.c */
void arm_recv(struct conn *c);
void conn_close(struct conn *c);
void pend_ready(struct net_thread *t, uint32_t i);
void count_op(struct net_thread *t, struct pending *p);
/* net_samples.c: a counted request, sampled or not (no-op when off). */
void net_sample_note(struct net_thread *t, const struct pending *p,
		     uint64_t end_ns);
void *net_main(void *arg);

/* net_listen.c */
uint64_t addr_key_of(const struct sockaddr_storage *ss);
bool addr_take(struct srv *s, uint64_t key);
void addr_release(struct srv *s, uint64_t key);
void on_accept(struct net_thread *t, struct listener *l, int res,
	       uint32_t flags);
/* Listener which (0: HTTP, 1: binary) of one thread on addr: "unix:PATH"
 * (bound once, the threads share it) or host:port with SO_REUSEPORT
 * (*port_io: 0 to take addr's port, then set to the real one; else that
 * port). The socket, or -errno with err filled. */
int listen_addr(struct srv *s, int which, const char *addr, unsigned *port_io,
		char *shown, size_t shown_size, char *err, size_t err_size);
void stop_listeners(struct net_thread *t);

/* net_slow.c */
void slow_push(struct net_thread *t, uint32_t i);
/* What a slow worker does with a pending, on port: room for a listing's
 * views, core_call, the wait for durability. 0 or -errno. */
int slow_run(core_port *port, node *n, struct pending *p);
void *slow_main(void *arg);
void poll_slow(struct net_thread *t);

/* net_timeout.c */
void arm_timer(struct net_thread *t);
void sweep(struct net_thread *t);

#endif
