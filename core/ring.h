/*
 * ring.h: the runtime's single-producer single-consumer rings of slots and
 * its bells (sleep and wake-up), shared by the shards' runners (worker.c) and
 * the ports (port.c). Every push and pop is on the booking path, so they
 * are inline here; making rings and the bells are in ring.c.
 *
 * A ring is sized for every slot that could ever be in it, so a push never
 * fails. A bell: an idle side announces it sleeps, checks its rings once
 * more and waits on a futex (or its eventfd); a pusher fences and wakes it
 * only if it announced (Dekker-style), so the fast path costs one fence
 * and one load.
 */
#ifndef BOOKD_CORE_RING_H
#define BOOKD_CORE_RING_H

#include "bookd_assert.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CACHE_LINE 64
#define SLEEP_NS_MAX 2000000 /* a sleeper re-checks at least this often */

struct slot;

/* Each side keeps a private copy of the other side's index and reads the
 * shared one only when the copy says full (producer) or empty (consumer),
 * so a busy ring moves few cache lines between cores. */
struct ring {
	_Alignas(CACHE_LINE) _Atomic uint32_t head; /* consumer's */
	uint32_t tail_seen;			    /* consumer's copy */
	_Alignas(CACHE_LINE) _Atomic uint32_t tail; /* producer's */
	uint32_t head_seen;			    /* producer's copy */
	_Alignas(CACHE_LINE) uint32_t mask;
	struct slot **items;
};

struct bell {
	_Alignas(CACHE_LINE) _Atomic uint32_t seq;
	_Atomic uint32_t sleepers;
	/* >= 0: an eventfd to write instead of a futex wake. Atomic: a port's
	 * network thread sets it (net_start) while the senders' threads may
	 * already ring the shards it hosts (they find -1: nobody sleeps on
	 * the eventfd before the thread runs). */
	_Atomic int wake_fd;
};

static inline void ring_push(struct ring *r, struct slot *s)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (tail - r->head_seen > r->mask)
		r->head_seen =
			atomic_load_explicit(&r->head, memory_order_acquire);
	/* Sized for every slot that exists: it can't be full. */
	ASSERT(tail - r->head_seen <= r->mask);
	r->items[tail & r->mask] = s;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

static inline struct slot *ring_pop(struct ring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	struct slot *s;

	if (head == r->tail_seen) {
		r->tail_seen =
			atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == r->tail_seen)
			return NULL;
	}
	s = r->items[head & r->mask];
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return s;
}

/* For a sleeper's last look, from the consumer's side. */
static inline bool ring_empty(struct ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_relaxed) ==
	       atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* Rings are made once (ring.c): capacity the power of two >= size;
 * -ENOMEM. */
int ring_init(struct ring *r, uint32_t size);
/* Wakes b's sleeper, if one announced itself (ring.c; out of line, see
 * there). */
void bell_ring(struct bell *b);
/* Sleeps unless has_work() says otherwise after announcing the sleep (at
 * most SLEEP_NS_MAX). */
void bell_wait(struct bell *b, bool (*has_work)(void *), void *arg);

#endif
