/*
 * net_setup.c: the server's set-up, start, stop and status (api/net.h,
 * api/net_int.h): net_prepare binds the listeners (net_listen.c) and makes
 * each network thread's ring, buffers, connection and pending tables and
 * eventfd; net_start starts the slow workers and the network threads;
 * net_stop/net_free stop and free them; srv_status_get sums the threads'
 * counters.
 *
 * Stop: the listeners close, no more requests are parsed, in-flight ones
 * are answered and sent (bounded by a timeout), then the threads exit.
 */
#include "net_int.h"

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

/* ---- set-up ---- */

void net_config_default(struct net_config *cfg)
{
	static const struct net_config defaults = {
		.http_listen = "127.0.0.1:8080",
		.binary_listen = "127.0.0.1:7070",
		.thread_count = 1,
		.slow_count = 4, /* listings wait on the shards: several */
		.conn_count_max = 16384,
		.conn_reserve = 64,
		.conn_per_address_max = 1024,
		.pending_count_max = 32768,
		.request_timeout_ms = 10000,
		.send_timeout_ms = 10000,
		.idle_timeout_ms = 300000,
		.slow_request_ms = 1000,
	};

	*cfg = defaults;
	auth_limit_config_default(&cfg->limits);
}

/* Ports from first_port: the network threads', the slow workers', then
 * the network threads' read ports (used when a thread hosts every shard). */
unsigned net_port_count(const struct net_config *cfg)
{
	return 2 * cfg->thread_count + cfg->slow_count;
}

static int thread_init(struct srv *s, struct net_thread *t, unsigned index,
		       char *err, size_t err_size)
{
	struct io_uring_params params = { 0 };
	struct io_uring_buf_reg reg = { 0 };
	size_t ring_bytes;
	int rc;

	/* io_uring's buffer ring: a power of two of 16-bit buffer ids */
	_Static_assert((NET_BUF_COUNT & (NET_BUF_COUNT - 1)) == 0, "bufs");
	_Static_assert(NET_BUF_COUNT <= 32768, "bid");
	ASSERT(index < s->thread_count);
	t->s = s;
	t->index = index;
	t->slow_ns = s->cfg.slow_request_ms ? s->cfg.slow_request_ms * 1000000u
					    : UINT64_MAX;
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
	/* Only this thread submits, and completions' work runs when it asks
	 * (not as an interrupt of whatever it is doing): enabled by net_main
	 * on its own thread. A kernel without it (before 6.1) gets the
	 * cooperative mode. */
	params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		       IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL;
	rc = io_uring_queue_init_params(NET_RING_ENTRIES, &t->ring, &params);
	t->ring_deferred = rc == 0;
	if (rc == -EINVAL) {
		memset(&params, 0, sizeof(params));
		params.flags =
			IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
		rc = io_uring_queue_init_params(NET_RING_ENTRIES, &t->ring,
						&params);
	}
	if (rc) {
		snprintf(err, err_size, "io_uring_queue_init: %s",
			 strerror(-rc));
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
				      io_uring_buf_ring_mask(NET_BUF_COUNT),
				      (int)b);
	io_uring_buf_ring_advance(t->br, NET_BUF_COUNT);

	if (s->cfg.samples_per_s &&
	    !(t->samples = calloc(1, sizeof(*t->samples))))
		return -ENOMEM;
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
	ASSERT(t->conn_free == 0 && t->pend_free == 0); /* lowest first */
	return 0;
}

int net_prepare(const struct net_config *cfg, struct srv **out, char *err,
		size_t err_size)
{
	struct srv *s;
	unsigned http_port = 0, bin_port = 0;
	int rc = -ENOMEM;

	*out = NULL;
	if (cfg->thread_count == 0 ||
	    cfg->thread_count > NET_THREAD_COUNT_MAX || cfg->slow_count == 0 ||
	    cfg->conn_count_max == 0 || cfg->pending_count_max == 0 ||
	    cfg->pending_count_max > (1u << 24) ||
	    cfg->conn_count_max > NET_CONN_COUNT_MAX ||
	    cfg->request_timeout_ms == 0) {
		snprintf(err, err_size,
			 "bad network configuration (threads 1..%d)",
			 NET_THREAD_COUNT_MAX);
		return -EINVAL;
	}
	if (cfg->conn_reserve >= cfg->conn_count_max) {
		snprintf(err, err_size,
			 "the connection reserve (%u) must be "
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
	s->wake_idle = calloc(s->thread_count, sizeof(*s->wake_idle));
	if (!s->limiter || !s->threads || !s->wake_fds || !s->wake_idle)
		goto out_free;
	/* One entry per address with connections: at most every slot's. */
	s->addr_mask = 1;
	while (s->addr_mask <
	       2 * (uint64_t)cfg->thread_count * cfg->conn_count_max)
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
		s->wake_idle[i] = &t->idle;
		/* listeners[0] is HTTP's, [1] the binary protocol's */
		for (int k = 0; k < 2; k++) {
			rc = listen_addr(s, k,
					 k ? cfg->binary_listen
					   : cfg->http_listen,
					 k ? &bin_port : &http_port,
					 k ? s->bin_addr : s->http_addr,
					 sizeof(s->http_addr), err, err_size);
			if (rc < 0)
				goto out_free;
			t->listeners[k].fd = rc;
		}
	}
	_Static_assert(sizeof(s->http_addr) == sizeof(s->bin_addr), "addr");
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

void net_wake_fds(struct srv *s, const int **fds,
		  const _Atomic bool *const **idle, unsigned *count)
{
	*fds = s->wake_fds;
	*idle = s->wake_idle;
	*count = s->thread_count;
}

int net_start(struct srv *s, node *n)
{
	int rc;

	ASSERT(!s->node && s->slow_started == 0); /* started once */
	s->node = n;
	s->core = node_core(n);
	s->started_at = srv_now();
	s->slow_threads = calloc(s->cfg.slow_count, sizeof(*s->slow_threads));
	if (!s->slow_threads)
		return -ENOMEM;
	/* Before any thread runs: a slow worker's request to a shard that a
	 * network thread hosts rings that thread's port. */
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		t->port = core_port_get(s->core, s->cfg.first_port + i);
		ASSERT(t->port); /* net_port_count() ports were asked for */
		core_port_set_wake_fd(t->port, t->wake_fd);
		if (core_port_hosts_all(t->port))
			t->read_port =
				core_port_get(s->core,
					      s->cfg.first_port +
						      s->thread_count +
						      s->cfg.slow_count + i);
	}
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
		rc = -pthread_create(&t->thread, NULL, net_main, t);
		if (rc)
			return rc;
	}
	return 0;
}

void net_stop(struct srv *s, int timeout_ms)
{
	uint64_t one = 1;

	s->stop_timeout_ns =
		(uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
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

/* Frees a list of slow jobs (linked by next). */
static void slow_list_free(struct slow_job *j)
{
	while (j) {
		struct slow_job *next = j->next;

		free(j);
		j = next;
	}
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
	slow_list_free(s->slow_head); /* queued, never started */
	for (unsigned i = 0; s->threads && i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		slow_list_free(t->slow_done); /* done after the thread left */
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
			for (uint32_t k = 0; k < s->cfg.pending_count_max;
			     k++) {
				free(t->pends[k].views.events);
				free(t->pends[k].views.bookings);
				free(t->pends[k].views.cats);
				buf_free(&t->pends[k].after);
			}
		free(t->conns);
		free(t->pends);
		free(t->samples);
		free(t->br);
		free(t->bufs);
		buf_free(&t->discard);
	}
	auth_limiter_free(s->limiter);
	free(s->addr_slots);
	free(s->threads);
	free(s->wake_fds);
	free(s->wake_idle);
	free(s->slow_threads);
	free(s);
}

int srv_refresh_views(struct srv *s)
{
	return s->cfg.repl_refresh ? s->cfg.repl_refresh(s->cfg.repl_ctx)
				   : -ENOTSUP;
}

struct import_server *srv_import(struct srv *s) { return s->cfg.import; }

void srv_count_response(struct srv_conn *sc, int status)
{
	struct conn *c = (struct conn *)sc;
	unsigned k = (unsigned)status / 100;

	ASSERT(status >= 100 && status <= 599);
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
	proc_stats_read(&out->proc); /* what it could not read stays 0 */
	if (s->node) {
		wal_stats(node_wal(s->node), &ws);
		out->wal_appended_lsn = ws.appended_lsn;
		out->wal_durable_lsn = ws.durable_lsn;
		out->wal_sync_count = ws.sync_count;
		out->wal_sync_ns_total = ws.sync_ns_total;
		out->wal_sync_ns_max = ws.sync_ns_max;
		memcpy(out->wal_sync_buckets, ws.sync_buckets,
		       sizeof(out->wal_sync_buckets));
		out->wal_batch_count = ws.batch_count;
		out->wal_batch_records_total = ws.batch_records_total;
		memcpy(out->wal_batch_buckets, ws.batch_buckets,
		       sizeof(out->wal_batch_buckets));
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
	if (s->cfg.notify_status)
		s->cfg.notify_status(s->cfg.notify_ctx, &out->notify);
	payments_status_active(&out->payments);
	out->rate_limited_total = atomic_load(&s->rate_limited);
	if (s->limiter)
		auth_limit_refusals(s->limiter, out->rate_refused);
	for (unsigned i = 0; i < JOBS_COUNT; i++)
		jobs_get((enum jobs_id)i, &out->jobs[i]);
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_thread *t = &s->threads[i];
		out->conn_count += atomic_load(&t->conn_gauge);
		for (unsigned k = 0; k < SRV_PROTO_COUNT; k++)
			out->conn_by_proto[k] +=
				atomic_load(&t->conn_by_proto[k]);
		out->conn_refused_address += atomic_load(&t->refused_address);
		out->conn_refused_full += atomic_load(&t->refused_full);
		out->request_timeouts += atomic_load(&t->request_timeouts);
		out->requests_total += atomic_load(&t->requests_total);
		for (unsigned k = 0; k < 6; k++)
			out->responses_by_class[k] +=
				atomic_load(&t->responses[k]);
		for (unsigned k = 0; k < CORE_OP_COUNT; k++) {
			out->ops_total[k] += atomic_load(&t->ops_total[k]);
			out->ops_ns_total[k] +=
				atomic_load(&t->ops_ns_total[k]);
			for (unsigned q = 0; q < SRV_PROTO_COUNT; q++) {
				out->req_ns_total[k][q] +=
					atomic_load(&t->lat_ns_total[k][q]);
				for (unsigned b = 0; b < SRV_LAT_BUCKET_COUNT;
				     b++)
					out->req_buckets[k][q][b] += atomic_load(
						&t->lat_buckets[k][q][b]);
			}
		}
	}
}
