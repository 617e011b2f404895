/*
 * net_slow.c: the slow workers (api/net_int.h).
 *
 * slow_count threads, each with a core port of its own, for what the core
 * only does synchronously (listings that fan out to every shard, catalogue
 * operations and reads; a network thread that hosts every shard runs listings
 * itself, with slow_run on its read port). A network thread queues a
 * pending (slow_push) under s->slow_lock; a worker runs it with
 * core_call, waits until its log position is durable, puts it on the
 * thread's slow_done list and writes the thread's eventfd; the thread
 * takes the list back (poll_slow).
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

/* ---- the slow workers ---- */

/* Room for a listing's views: limit of size each (freed with the slot). */
static int views_alloc(uint32_t limit, size_t size, void **out)
{
	ASSERT(size > 0);
	if (limit == 0 || limit > CORE_LIST_LIMIT_MAX)
		return -EINVAL;
	*out = calloc(limit, size);
	return *out ? 0 : -ENOMEM;
}

int slow_run(core_port *port, node *n, struct pending *p)
{
	void *room = NULL;
	int rc = 0;

	switch (p->req.op) {
	case CORE_OP_EVENT_LIST:
		rc = views_alloc(p->req.u.list.limit, sizeof(*p->views.events),
				 &room);
		p->req.u.list.out = p->views.events = room;
		break;
	case CORE_OP_CUSTOMER_BOOKINGS:
		rc = views_alloc(p->req.u.customer.capacity,
				 sizeof(*p->views.bookings), &room);
		p->req.u.customer.out = p->views.bookings = room;
		break;
	case CORE_OP_CATALOG_GET:
	case CORE_OP_CATALOG_LIST:
		rc = views_alloc(p->req.op == CORE_OP_CATALOG_GET
					 ? 1
					 : p->req.u.catalog.limit,
				 sizeof(*p->views.cats), &room);
		p->req.u.catalog.out = p->views.cats = room;
		break;
	default: break;
	}
	if (rc)
		return rc;
	rc = core_call(port, &p->req, &p->resp);
	if (rc == 0 && p->resp.lsn)
		rc = node_wait_durable(n, p->resp.lsn);
	return rc;
}

void *slow_main(void *arg)
{
	struct slow_arg *a = arg;
	struct srv *s = a->s;
	core_port *port =
		core_port_get(s->core,
			      s->cfg.first_port + s->thread_count + a->index);

	ASSERT(port); /* net_port_count() counted the slow workers' */
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

void slow_push(struct net_thread *t, uint32_t i)
{
	struct srv *s = t->s;
	struct slow_job *job = malloc(sizeof(*job));

	ASSERT(pend_at(t, i)->state == PEND_FREE); /* fresh from srv_submit */
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

void poll_slow(struct net_thread *t)
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
		ASSERT(p->state == PEND_SLOW && done->t == t);
		/* A slow worker waited for durability itself. */
		count_op(t, p);
		pend_ready(t, done->pend);
		free(done);
		done = next;
	}
}
