/*
 * net_timeout.c: the network threads' timeouts (api/net_int.h).
 *
 * A request must arrive whole within request_timeout of its first byte,
 * the first request of a connection within request_timeout of the accept:
 * a deadline, not a per-byte timer, so a client that trickles bytes (or
 * never sends any) is answered by the protocol's timeout() (HTTP: 408) and
 * closed. A connection whose send makes no progress for send_timeout (a
 * client that never reads) is closed; so is one idle between requests for
 * idle_timeout. One sweep a second, woken by an io_uring timeout.
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

void arm_timer(struct net_thread *t)
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
	ASSERT(c->request_ns != 0 && !c->closing);
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
void sweep(struct net_thread *t)
{
	const struct net_config *cfg = &t->s->cfg;
	uint64_t now = mono_ns();

	ASSERT(now >= t->sweep_ns); /* CLOCK_MONOTONIC */
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
		    now - c->request_ns >
			    cfg->request_timeout_ms * 1000000ull) {
			request_timed_out(c);
			continue;
		}
		stalled =
			(c->sending && now - c->send_ns > cfg->send_timeout_ms *
								  1000000ull) ||
			(c->fifo_count == 0 && !c->sending && c->in.size == 0 &&
			 now - c->read_ns > cfg->idle_timeout_ms * 1000000ull);
		if (stalled)
			conn_close(c);
	}
}
