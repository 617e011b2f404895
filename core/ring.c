/*
 * ring.c: making the runtime's rings, and its bells: how an idle worker or
 * port sleeps and is woken (ring.h has the design). Out of line: GCC's
 * ThreadSanitizer build refuses (-Werror=tsan) bell_ring's seq_cst fence
 * once it is inlined into its callers.
 */
#include "ring.h"

int ring_init(struct ring *r, uint32_t size)
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

void bell_ring(struct bell *b)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&b->sleepers, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&b->seq, 1, memory_order_release);
		int fd =
			atomic_load_explicit(&b->wake_fd, memory_order_relaxed);
		if (fd >= 0) {
			uint64_t one = 1;
			/* Only fails if the counter is at its maximum: awake. */
			(void)!write(fd, &one, sizeof(one));
		} else {
			syscall(SYS_futex, &b->seq, FUTEX_WAKE_PRIVATE, INT_MAX,
				NULL, NULL, 0);
		}
	}
}

/* Sleeps unless has_work() says otherwise after announcing the sleep. */
void bell_wait(struct bell *b, bool (*has_work)(void *), void *arg)
{
	uint32_t seq = atomic_load_explicit(&b->seq, memory_order_acquire);
	struct timespec ts = { 0, SLEEP_NS_MAX };

	atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
	if (!has_work(arg))
		syscall(SYS_futex, &b->seq, FUTEX_WAIT_PRIVATE, seq, &ts, NULL,
			0);
	atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
}
