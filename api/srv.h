/*
 * srv.h: the server's parts and how they meet (internal to api/).
 *
 *   net*.c    io_uring loop per network thread (net.c: reads, writes,
 *             the connections and their in-order answer queues;
 *             net_listen.c: accepts, caps, the reserve; net_timeout.c,
 *             net_slow.c, net_setup.c; net_int.h says which does what).
 *   http.c    HTTP/1.1 + JSON adapter: a protocol (struct srv_proto;
 *             with http_routes.c, http_render.c and the other http_*.c).
 *   bin.c     binary msgpack protocol: a protocol (struct srv_proto;
 *             with bin_render.c; proto.c is the encoding it shares with
 *             the client library in api/client/).
 *   ops.c     the operations' table both protocols read (ops.h).
 *   auth.c    keys, HS256 JWT, Stripe signatures, rate limits,
 *             idempotency keys (auth.h).
 *   node.c    the core made durable by the log (node.h).
 *   bookd.c   main: flags, node, threads, timers, signals.
 *
 * A protocol parses what a connection received into requests. For each
 * request it does exactly one of:
 *   - srv_answer(): an answer it can give at once (errors, /health, ...);
 *   - srv_submit(): a core request; the loop submits it (shard operations
 *     through the thread's core port, fan-out reads and catalogue
 *     operations through the slow workers), waits until its log record is
 *     durable, and then calls the protocol's render() with the answer.
 * Answers leave in request order (pipelining), whatever order they are
 * decided in. Nothing is sent before it is durable.
 */
#ifndef BOOKD_SRV_H
#define BOOKD_SRV_H

#include "auth.h"
#include "buf.h"
#include "core.h"
#include "jobs.h"
#include "node.h"
#include "notify.h"
#include "payments.h"
#include "proc_stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_CTX_SIZE_MAX 320 /* a protocol's per-request context */
#define SRV_OUT_SIZE_MAX                                                       \
	(8u << 20)		   /* unsent bytes per connection: then close */
#define SRV_IN_SIZE_MAX (1u << 20) /* one request or frame at most */
#define SRV_PIPELINE_MAX 1024	   /* requests in flight per connection */

struct srv;	 /* the server: config, node, slow workers, counters */
struct srv_conn; /* one connection (owned by net.c) */

/* Answers are written into a connection's struct buf (core/buf.h); a
 * buffer marked broken (no memory) closes the connection. */

/* What a slow (fan-out) read brings back besides the core_resp. */
struct srv_views {
	struct core_event_view *events;	    /* EVENT_LIST: resp.count of them */
	struct core_booking_view *bookings; /* CUSTOMER_BOOKINGS */
	struct core_cat_view *cats; /* CATALOG_GET (1), _LIST: resp.count */
};

/* The protocols, as /metrics labels them. */
enum srv_proto_id { SRV_PROTO_HTTP = 0, SRV_PROTO_BINARY, SRV_PROTO_COUNT };

static inline const char *srv_proto_label(unsigned id)
{
	return id == SRV_PROTO_BINARY ? "binary" : "http";
}

/* Request latency histograms (srv_status.req_buckets, /metrics'
 * bookd_request_duration_seconds): bucket i counts the requests answered
 * within srv_lat_bucket_le_us(i) µs (and after bucket i - 1's bound); the
 * last one, SRV_LAT_BUCKET_COUNT - 1, the slower ones. */
#define SRV_LAT_BUCKET_COUNT 18

static inline uint64_t srv_lat_bucket_le_us(unsigned i)
{
	static const uint64_t le_us[SRV_LAT_BUCKET_COUNT - 1] = {
		50,	100,	 250,	  500,	   1000,     2500,
		5000,	10000,	 25000,	  50000,   100000,   250000,
		500000, 1000000, 2500000, 5000000, 10000000,
	};

	return i < SRV_LAT_BUCKET_COUNT - 1 ? le_us[i] : UINT64_MAX;
}

/* Server-wide facts for /v1/admin/status, /metrics and /ready. */
struct srv_status {
	unsigned shard_count, thread_count;
	uint64_t conn_count;
	uint64_t conn_by_proto[SRV_PROTO_COUNT];
	/* Connections closed at accept: their address had
	 * conn_per_address_max, or the table was full; and requests (or first
	 * requests) not whole within the request timeout. */
	uint64_t conn_refused_address, conn_refused_full, request_timeouts;
	uint64_t wal_appended_lsn, wal_durable_lsn;
	uint64_t wal_sync_count, wal_sync_ns_total, wal_sync_ns_max;
	uint64_t wal_sync_buckets[WAL_SYNC_BUCKET_COUNT]; /* wal_stats' */
	uint64_t wal_bytes_written;
	uint64_t wal_batch_count, wal_batch_records_total;
	uint64_t wal_batch_buckets[WAL_BATCH_BUCKET_COUNT]; /* wal_stats' */
	int wal_error; /* 0 or -errno: writes refused */
	/* Replication (DATABASE_URL): "disabled", "streaming", "catching_up"
	 * or "down", and its lag. */
	const char *repl_state;
	uint64_t repl_lag_records, repl_lag_bytes;
	double repl_lag_seconds;
	uint64_t repl_applied_lsn;
	struct notify_status notify;	 /* all zero: not running */
	struct payments_status payments; /* all zero: not running */
	/* Counters since start. */
	uint64_t requests_total, responses_by_class[6]; /* [status / 100] */
	uint64_t ops_total[CORE_OP_COUNT], ops_ns_total[CORE_OP_COUNT];
	/* Each answered core request: op, protocol, latency bucket (not
	 * cumulative), and the latencies' sum. */
	uint64_t req_buckets[CORE_OP_COUNT][SRV_PROTO_COUNT]
			    [SRV_LAT_BUCKET_COUNT];
	uint64_t req_ns_total[CORE_OP_COUNT][SRV_PROTO_COUNT];
	uint64_t rate_limited_total;
	/* refusals by the limit that refused (enum auth_limit_kind) */
	uint64_t rate_refused[AUTH_LIMIT_KIND_COUNT];
	core_time started_at;
	struct proc_stats proc; /* the process (process_* in /metrics) */
	/* Every scheduled job (core/jobs.h), in JOBS_LIST's order. */
	struct jobs_state jobs[JOBS_COUNT];
};

/* A protocol: one instance per connection kind (HTTP, binary). */
struct srv_proto {
	const char *name;
	size_t conn_state_size; /* per-connection state, zeroed at accept */
	/* New bytes arrived. Parse complete requests from in[0..len) and
	 * return how many bytes were used (the rest is kept and offered
	 * again with more), or -1 to close the connection once what is
	 * queued was sent (after queuing a last answer if wanted). A
	 * protocol must not use more than one request's bytes beyond
	 * SRV_IN_SIZE_MAX: it answers "too large" and returns -1. */
	long (*parse)(struct srv_conn *c, void *state, const uint8_t *in,
		      size_t len);
	/* The answer to a srv_submit() request, decided and durable (or
	 * refused: rc < 0, -ENOSPC/-EIO when the log failed, -EAGAIN when
	 * overloaded). ctx is what srv_submit() was given. Called exactly
	 * once per request, also after the connection closed (then out is
	 * dropped), so that what ctx holds can be freed. */
	void (*render)(struct srv_conn *c, void *state, const void *ctx, int rc,
		       const struct core_resp *resp,
		       const struct srv_views *views, struct buf *out);
	/* Optional: the request being read did not arrive whole within the
	 * request timeout (or the first one did not come): queue a last
	 * answer (HTTP's 408); the connection closes once it is sent. NULL:
	 * closed without an answer. */
	void (*timeout)(struct srv_conn *c, void *state);
	/* Optional: the request's id (HTTP's X-Request-Id) from the ctx
	 * srv_submit() was given, for the slow-request log line. */
	const char *(*request_id)(const void *ctx);
};

extern const struct srv_proto srv_http_proto;
extern const struct srv_proto srv_bin_proto;

/* ---- For protocols, during parse() ---- */

/* Queue an answer given at once (copied). */
void srv_answer(struct srv_conn *c, const void *bytes, size_t size);
/* Or build it in place: returns the buffer to append to, then call
 * srv_answer_done(). */
struct buf *srv_answer_begin(struct srv_conn *c);
void srv_answer_done(struct srv_conn *c);
/* Queue a core request; ctx (ctx_size <= SRV_CTX_SIZE_MAX) is copied and
 * handed back to render(). req.now is set by the caller. Returns 0, or
 * -EAGAIN when this connection has SRV_PIPELINE_MAX requests in flight
 * (stop parsing: return the bytes used so far; parse is called again once
 * answers went out). */
int srv_submit(struct srv_conn *c, const struct core_req *req, const void *ctx,
	       size_t ctx_size);

/* False once the connection is to be closed (a fatal error, or answers
 * piling up unread beyond SRV_OUT_SIZE_MAX): stop parsing, return -1. */
bool srv_conn_writable(const struct srv_conn *c);

struct srv *srv_conn_srv(struct srv_conn *c);
/* Counts an answer by status (HTTP's, or the binary protocol's
 * equivalent) for /metrics; 429 also counts as rate limited. */
void srv_count_response(struct srv_conn *c, int status);
/* The peer's address as a string ("127.0.0.1", "::1", "unix"). */
const char *srv_conn_peer(const struct srv_conn *c);
/* The peer's address as a rate-limit key. */
uint64_t srv_conn_peer_key(const struct srv_conn *c);
/* True when c was accepted into the reserve (the connection table was
 * nearly full): a protocol serves only /health and the service key on it,
 * and answers anything else "overloaded" and closes it. */
bool srv_conn_in_reserve(const struct srv_conn *c);

/* ---- Server-wide, any thread ---- */

const struct auth_config *srv_auth(const struct srv *s);
struct auth_limiter *srv_limiter(struct srv *s);
void srv_status_get(struct srv *s, struct srv_status *out);
/* Asks the replicator to refresh the reporting views now: 0, or -ENOTSUP
 * in embedded mode. */
int srv_refresh_views(struct srv *s);
/* The import thread (net_config.import), or NULL. */
struct import_server *srv_import(struct srv *s);
core_time srv_now(void); /* CLOCK_REALTIME, ms */

#endif
