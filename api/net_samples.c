/*
 * net_samples.c: per-request samples for the seed's performance_metrics
 * (docs/operations.md, "Monitoring in PostgreSQL").
 *
 * Where count_op times a request, net_sample_note keeps 1 in 2^shift of
 * each operation's requests on this thread in the thread's ring (struct
 * net_samples, net_int.h): one writer (the network thread), one reader
 * (net_samples_drain, on the replicator's maintenance thread), no lock;
 * a full ring drops the sample and counts it. The drain sets each
 * thread's shift per operation from how many of them came since its last
 * adapting call (half a second apart at least), so that at most
 * samples_per_s a second of an operation are kept
 * over all threads (all of them when fewer come): 300 000 requests a
 * second cost PostgreSQL a bounded number of rows, each carrying its rate.
 */
#include "net_int.h"

#include "fields.h"

#define SAMPLE_SHIFT_MAX 24 /* 1 in 16 million */

static uint8_t outcome_of(const struct pending *p)
{
	int status = 200;

	if (p->rc < 0)
		fld_errno_error(p->rc, &status);
	else if (p->resp.code != CORE_OK)
		fld_code_error(p->resp.code, &status);
	return status >= 500   ? NET_OUTCOME_ERROR
	       : status >= 400 ? NET_OUTCOME_REFUSED
			       : NET_OUTCOME_OK;
}

void net_sample_note(struct net_thread *t, const struct pending *p,
		     uint64_t end_ns)
{
	struct net_samples *sm = t->samples;
	enum core_op op = p->req.op;
	uint8_t shift;
	uint64_t head;

	if (!sm)
		return;
	ASSERT(op > CORE_OP_NONE && op < CORE_OP_COUNT);
	shift = atomic_load_explicit(&sm->shift[op], memory_order_relaxed);
	if (sm->tick[op]++ & ((1u << shift) - 1))
		return;
	head = atomic_load_explicit(&sm->head, memory_order_relaxed);
	if (head - atomic_load_explicit(&sm->tail, memory_order_acquire) >=
	    NET_SAMPLE_RING) {
		atomic_fetch_add_explicit(&sm->dropped, 1,
					  memory_order_relaxed);
		return;
	}
	sm->ring[head & (NET_SAMPLE_RING - 1)] = (struct net_sample_raw){
		.end_ns = end_ns,
		.ns = end_ns - p->started_ns,
		.op = (uint8_t)op,
		.outcome = outcome_of(p),
		.shift = shift,
	};
	atomic_store_explicit(&sm->head, head + 1, memory_order_release);
}

/* The shift that keeps n requests over `seconds` within the per-thread
 * budget. */
static uint8_t shift_for(uint64_t n, double seconds, double budget)
{
	uint8_t shift = 0;

	while (shift < SAMPLE_SHIFT_MAX &&
	       (double)(n >> shift) > budget * seconds)
		shift++;
	return shift;
}

unsigned net_samples_drain(struct srv *s, struct net_sample *out,
			   unsigned capacity, uint64_t *dropped)
{
	static _Thread_local uint64_t last_ns; /* one caller */
	uint64_t now_mono = mono_ns(), lost = 0;
	struct timespec rt;
	int64_t now_ms;
	double seconds, budget;
	unsigned n = 0;

	bool adapt;

	clock_gettime(CLOCK_REALTIME, &rt);
	now_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
	seconds = last_ns ? (double)(now_mono - last_ns) / 1e9 : 1.0;
	adapt = seconds >= 0.5; /* rates over half a second at least */
	if (adapt)
		last_ns = now_mono;
	budget = (double)s->cfg.samples_per_s / s->thread_count;
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_samples *sm = s->threads[i].samples;
		uint64_t tail, head;

		if (!sm)
			continue;
		tail = atomic_load_explicit(&sm->tail, memory_order_relaxed);
		head = atomic_load_explicit(&sm->head, memory_order_acquire);
		for (; tail != head && n < capacity; tail++) {
			const struct net_sample_raw *r =
				&sm->ring[tail & (NET_SAMPLE_RING - 1)];

			ASSERT(r->end_ns <= now_mono);
			out[n++] = (struct net_sample){
				.at_ms = now_ms -
					 (int64_t)((now_mono - r->end_ns) /
						   1000000),
				.ns = r->ns,
				.every = 1u << r->shift,
				.op = r->op,
				.outcome = r->outcome,
			};
		}
		atomic_store_explicit(&sm->tail, tail, memory_order_release);
		lost += atomic_exchange_explicit(&sm->dropped, 0,
						 memory_order_relaxed);
		for (unsigned op = 1; adapt && op < CORE_OP_COUNT; op++) {
			uint64_t total =
				atomic_load_explicit(&s->threads[i]
							      .ops_total[op],
						     memory_order_relaxed);

			atomic_store_explicit(&sm->shift[op],
					      shift_for(total - sm->seen[op],
							seconds, budget),
					      memory_order_relaxed);
			sm->seen[op] = total;
		}
	}
	if (dropped)
		*dropped = lost;
	ASSERT(n <= capacity);
	return n;
}
