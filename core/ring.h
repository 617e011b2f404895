/*
 * ring.h: the runtime's single-producer single-consumer rings of slots and
 * its bells (sleep and wake-up), shared by the shard workers (worker.c) and
 * the ports (port.c). Header-only: every push and pop is on the booking
 * path, so they stay inline.
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
	uint32_t tail_seen;                         /* consumer's copy */
	_Alignas(CACHE_LINE) _Atomic uint32_t tail; /* producer's */
	uint32_t head_seen;                         /* producer's copy */
	_Alignas(CACHE_LINE) uint32_t mask;
	struct slot **items;
};

struct bell {
	_Alignas(CACHE_LINE) _Atomic uint32_t seq;
	_Atomic uint32_t sleepers;
	int wake_fd; /* >= 0: an eventfd to write instead of a futex wake */
};

static inline int ring_init(struct ring *r, uint32_t size)
{
	uint32_t cap = 1;

	while (cap < size)
		cap <<= 1;
	r->items = calloc(cap, sizeof(*r->items));
	if (!r->items)
		return -ENOMEM;
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

static inline void ring_push(struct ring *r, struct slot *s)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (tail - r->head_seen > r->mask)
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
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
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
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

static inline void bell_ring(struct bell *b)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&b->sleepers, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&b->seq, 1, memory_order_release);
		if (b->wake_fd >= 0) {
			uint64_t one = 1;
			/* Only fails if the counter is at its maximum: awake. */
			(void)!write(b->wake_fd, &one, sizeof(one));
		} else {
			syscall(SYS_futex, &b->seq, FUTEX_WAKE_PRIVATE, INT_MAX,
				NULL, NULL, 0);
		}
	}
}

/* Sleeps unless has_work() says otherwise after announcing the sleep. */
static inline void bell_wait(struct bell *b, bool (*has_work)(void *),
			     void *arg)
{
	uint32_t seq = atomic_load_explicit(&b->seq, memory_order_acquire);
	struct timespec ts = { 0, SLEEP_NS_MAX };

	atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
	if (!has_work(arg))
		syscall(SYS_futex, &b->seq, FUTEX_WAIT_PRIVATE, seq, &ts, NULL, 0);
	atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
}

#endif
