/*
 * bookbench_hist.c: latency histograms, log-linear like HdrHistogram.
 *
 * Values are nanoseconds. Below 2^S (S = BB_HIST_SUB_BITS) every value has
 * its own bucket. A value v >= 2^S with highest set bit m (S <= m <=
 * BB_HIST_MAG_MAX) falls in magnitude group m - S + 1, and within it in
 * sub-bucket (v >> (m - S)) - 2^S: 2^S equal buckets per power of two, so a
 * bucket's width is below 1/2^S of its values (1.6% for S = 6). The array
 * is fixed (BB_HIST_BUCKET_COUNT); larger values are clamped to the last
 * bucket, the exact maximum is kept beside.
 */
#include "bookbench.h"

#include <string.h>

#define SUB_COUNT (1u << BB_HIST_SUB_BITS)

_Static_assert(BB_HIST_BUCKET_COUNT ==
		       (BB_HIST_MAG_MAX - BB_HIST_SUB_BITS + 1) * SUB_COUNT,
	       "bucket count");

void bb_hist_reset(struct bb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

unsigned bb_hist_index(uint64_t ns)
{
	if (ns < SUB_COUNT)
		return (unsigned)ns;
	unsigned m = 63u - (unsigned)__builtin_clzll(ns);
	if (m > BB_HIST_MAG_MAX)
		return BB_HIST_BUCKET_COUNT - 1;
	unsigned shift = m - BB_HIST_SUB_BITS;
	unsigned group = m - BB_HIST_SUB_BITS + 1;
	unsigned sub = (unsigned)(ns >> shift) - SUB_COUNT;
	ASSERT(sub < SUB_COUNT);
	unsigned index = group * SUB_COUNT + sub;
	ASSERT(index < BB_HIST_BUCKET_COUNT);
	return index;
}

uint64_t bb_hist_bucket_low(unsigned index)
{
	ASSERT(index < BB_HIST_BUCKET_COUNT);
	if (index < SUB_COUNT)
		return index;
	unsigned group = index / SUB_COUNT, sub = index % SUB_COUNT;
	unsigned shift = group - 1;
	return ((uint64_t)SUB_COUNT + sub) << shift;
}

uint64_t bb_hist_bucket_high(unsigned index)
{
	ASSERT(index < BB_HIST_BUCKET_COUNT);
	if (index < SUB_COUNT)
		return (uint64_t)index + 1;
	unsigned group = index / SUB_COUNT, sub = index % SUB_COUNT;
	unsigned shift = group - 1;
	return ((uint64_t)SUB_COUNT + sub + 1) << shift;
}

void bb_hist_record(struct bb_hist *h, uint64_t ns)
{
	h->buckets[bb_hist_index(ns)]++;
	h->count++;
	h->sum_ns += (double)ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void bb_hist_add(struct bb_hist *into, const struct bb_hist *from)
{
	if (from->count == 0)
		return;
	for (unsigned i = 0; i < BB_HIST_BUCKET_COUNT; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	if (from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
}

uint64_t bb_hist_quantile(const struct bb_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max_ns;
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BB_HIST_BUCKET_COUNT; i++) {
		seen += h->buckets[i];
		if (seen > rank) {
			uint64_t v = bb_hist_bucket_high(i) - 1;
			if (v > h->max_ns)
				v = h->max_ns;
			if (v < h->min_ns)
				v = h->min_ns;
			return v;
		}
	}
	return h->max_ns;
}
