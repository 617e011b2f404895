/*
 * net.h: the server's network side (api/net*.c): io_uring network threads
 * serving the HTTP and binary protocols over the node, and the slow
 * workers behind them. bookd.c fills a net_config and runs it.
 */
#ifndef BOOKD_NET_H
#define BOOKD_NET_H

#include "auth.h"
#include "node.h"
#include "srv.h"

#include <stdbool.h>

#define NET_THREAD_COUNT_MAX 32
#define NET_CONN_COUNT_MAX 65536 /* per thread */

/* Replication facts for status, filled by a callback (bookd.c owns the
 * replicator). */
struct net_repl_status {
	const char *state; /* "disabled", "streaming", "catching_up", "down" */
	uint64_t applied_lsn, lag_records, lag_bytes;
	double lag_seconds;
};

struct net_config {
	const char *http_listen; /* "host:port" (port 0: any free port) or
				    * "unix:PATH" */
	const char *binary_listen;
	unsigned thread_count;	 /* network threads */
	unsigned slow_count;	 /* workers for listings and catalogue ops */
	unsigned conn_count_max; /* per thread */
	/* The last conn_reserve slots of each thread's table are kept for
	 * /health and the service key: a connection accepted into them is
	 * served only those (srv_conn_in_reserve). */
	unsigned conn_reserve;
	/* Connections from one client address at once, over all threads (an
	 * IPv6 address counts by its /64; unix sockets are not counted);
	 * 0: no cap. */
	unsigned conn_per_address_max;
	unsigned pending_count_max; /* requests in flight per thread */
	/* The log's batches: written and synced on the network thread's own
	 * io_uring when it ends a turn (wal_flush_take); else (the default,
	 * measured faster: docs/benchmarks.md) by the log's writer thread
	 * woken at the end of the turn (wal_defer_end). */
	bool log_on_ring;
	unsigned shard_count; /* the core's, for status */
	/* A request must arrive whole within request_timeout of its first
	 * byte (the first request of a connection: of the accept), else it
	 * is answered by the protocol's timeout() (HTTP: 408) and the
	 * connection closed. A connection is also closed when its answers
	 * are not read for send_timeout, or nothing happens on it between
	 * requests for idle_timeout. */
	uint64_t request_timeout_ms, send_timeout_ms, idle_timeout_ms;
	/* A request answered later than this after it was read is logged
	 * (warn "slow request", at most 10 lines a second); 0: never. */
	uint64_t slow_request_ms;
	struct auth_config auth;
	struct auth_limit_config limits;
	/* The core's ports from first_port on are the server's: one per
	 * network thread, then one per slow worker. */
	unsigned first_port;
	/* Per-request samples (net_samples.c): at most this many a second of
	 * each operation, all when fewer come (0: none). */
	unsigned samples_per_s;
	void (*repl_status)(void *ctx, struct net_repl_status *out);
	int (*repl_refresh)(void *ctx); /* NULL: embedded mode */
	void *repl_ctx;
	/* The notification sender's facts for status (bookd.c owns it);
	 * NULL: not running. */
	void (*notify_status)(void *ctx, struct notify_status *out);
	void *notify_ctx;
	/* The import thread (api/seed_import.h; bookd.c owns it); NULL: the
	 * import routes answer 503. */
	struct import_server *import;
};

void net_config_default(struct net_config *cfg);

/* ---- per-request samples (net_samples.c) ---- */

enum net_outcome {
	NET_OUTCOME_OK = 0,  /* decided: done */
	NET_OUTCOME_REFUSED, /* decided: a 4xx (full, not found, conflict) */
	NET_OUTCOME_ERROR,   /* not decided: a 5xx (the log failed, overload) */
};

/* One sampled request: 1 in `every` of its operation's were (a power of
 * two, adapted each drain to net_config.samples_per_s). */
struct net_sample {
	int64_t at_ms;	 /* Unix ms when it was answered */
	uint64_t ns;	 /* from its arrival to its answer */
	uint32_t every;	 /* the sample rate is 1 / every */
	uint8_t op;	 /* enum core_op */
	uint8_t outcome; /* enum net_outcome */
};

/* Takes up to capacity samples from the network threads' rings (one
 * caller at a time: the replicator's maintenance thread), oldest first
 * per thread; *dropped (may be NULL) gets the samples lost since the last
 * call because a ring was full. Also sets each operation's rate for the
 * next interval from what came since the last call. */
unsigned net_samples_drain(struct srv *s, struct net_sample *out,
			   unsigned capacity, uint64_t *dropped);
/* Core ports the server needs (network threads + slow workers). */
unsigned net_port_count(const struct net_config *cfg);

/* Binds the listeners (and reports the real ports), makes the eventfds
 * that node_config.wake_fds must carry (net_wake_fds): call before
 * node_open. A host:port another socket listens on is refused
 * (-EADDRINUSE, said in err): the network threads share their port
 * (SO_REUSEPORT), and another process joining it would be given half the
 * connections. */
int net_prepare(const struct net_config *cfg, struct srv **out, char *err,
		size_t err_size);
/* 0, or -EADDRINUSE (said in err) when a listening socket that is not the
 * server's shares one of its TCP ports on its address or a wildcard (read
 * from /proc/net/tcp{,6}): what net_prepare checks last, for two servers
 * that probed the port at the same instant. */
int net_check_ports(const struct srv *s, char *err, size_t err_size);
/* The network threads' eventfds for node_config.wake_fds, and the flags
 * for its wake_idle: a thread is woken by the log only while it sleeps. */
void net_wake_fds(struct srv *s, const int **fds,
		  const _Atomic bool *const **idle, unsigned *count);
/* The bound addresses, e.g. "127.0.0.1:8080". */
const char *net_http_address(const struct srv *s);
const char *net_binary_address(const struct srv *s);
/* Starts the threads over the opened node. */
int net_start(struct srv *s, node *n);
/* Stops taking connections and requests, answers what is in flight (up to
 * timeout_ms), closes every connection, joins the threads. */
void net_stop(struct srv *s, int timeout_ms);
void net_free(struct srv *s);

#endif
