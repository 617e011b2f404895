/*
 * test_bookbench_hist.c: bookbench's latency histogram (bench/bookbench_hist.c).
 *
 * Every bucket maps back to itself and the buckets tile the value range
 * without gaps; quantiles of random samples (seeded, printed) are within
 * the bucket error (< 1/64) of the exact ones from a sorted copy; merging
 * two histograms equals recording both sets; huge values are clamped, the
 * exact maximum kept.
 */
#include "bookbench.h"
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_buckets(void)
{
	for (unsigned i = 0; i < BB_HIST_BUCKET_COUNT; i++) {
		uint64_t lo = bb_hist_bucket_low(i),
			 hi = bb_hist_bucket_high(i);
		CHECK_MSG(lo < hi, "bucket %u empty", i);
		CHECK_MSG(bb_hist_index(lo) == i, "low of %u maps to %u", i,
			  bb_hist_index(lo));
		CHECK_MSG(bb_hist_index(hi - 1) == i, "high of %u maps to %u",
			  i, bb_hist_index(hi - 1));
		if (i + 1 < BB_HIST_BUCKET_COUNT)
			CHECK_MSG(hi == bb_hist_bucket_low(i + 1),
				  "gap after bucket %u", i);
		if (lo >= 64)
			CHECK_MSG((double)(hi - lo) / (double)lo <=
					  1.0 / 64 + 1e-12,
				  "bucket %u too wide", i);
	}
}

static void test_quantiles(uint64_t seed)
{
	enum { N = 200000 };
	uint64_t *v = malloc(N * sizeof(*v));
	struct bb_hist *h = malloc(sizeof(*h)), *a = malloc(sizeof(*a)),
		       *b = malloc(sizeof(*b));
	if (v == NULL || h == NULL || a == NULL || b == NULL)
		abort();
	bb_hist_reset(h);
	bb_hist_reset(a);
	bb_hist_reset(b);
	for (int i = 0; i < N; i++) {
		/* spread over 1 us .. 1 s, like latencies: a random power of
		 * two times a random factor in [1, 2) */
		uint64_t r = rnd(&seed);
		v[i] = (UINT64_C(1000) << (r % 20)) +
		       ((r >> 8) % (UINT64_C(1000) << (r % 20)));
		bb_hist_record(h, v[i]);
		bb_hist_record(i % 2 ? a : b, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	const double qs[] = { 0.0, 0.5, 0.9, 0.99, 0.999, 1.0 };
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		size_t rank = (size_t)(qs[k] * N);
		if (rank >= N)
			rank = N - 1;
		double exact = (double)v[rank],
		       got = (double)bb_hist_quantile(h, qs[k]);
		CHECK_MSG((got > exact ? got - exact : exact - got) / exact <=
				  1.0 / 64,
			  "q%.3f: %.0f, exact %.0f", qs[k], got, exact);
	}
	CHECK_MSG(h->count == N, "count");
	CHECK_MSG(h->min_ns == v[0] && h->max_ns == v[N - 1], "min/max");
	bb_hist_add(a, b);
	CHECK_MSG(a->count == h->count && a->min_ns == h->min_ns &&
			  a->max_ns == h->max_ns,
		  "merge: count/min/max");
	CHECK_MSG(memcmp(a->buckets, h->buckets, sizeof(h->buckets)) == 0,
		  "merge: buckets");
	free(v);
	free(h);
	free(a);
	free(b);
}

static void test_edges(void)
{
	struct bb_hist *h = malloc(sizeof(*h));
	if (h == NULL)
		abort();
	bb_hist_reset(h);
	CHECK_MSG(bb_hist_quantile(h, 0.5) == 0, "empty");
	bb_hist_record(h, 0);
	bb_hist_record(h, UINT64_MAX);
	CHECK_MSG(h->max_ns == UINT64_MAX, "exact max kept");
	CHECK_MSG(bb_hist_index(UINT64_MAX) == BB_HIST_BUCKET_COUNT - 1,
		  "clamped");
	CHECK_MSG(bb_hist_quantile(h, 0.0) == 0, "q0 of {0, max}");
	CHECK_MSG(bb_hist_quantile(h, 1.0) == UINT64_MAX, "q1 is the max");
	free(h);
}

int main(void)
{
	uint64_t seed = getenv("HIST_SEED")
				? strtoull(getenv("HIST_SEED"), NULL, 10)
				: (uint64_t)time(NULL);
	printf("test_bookbench_hist: seed %" PRIu64 " (HIST_SEED)\n", seed);
	test_buckets();
	test_quantiles(seed);
	test_edges();
	printf("test_bookbench_hist: %u checks, %u failed\n", check_count,
	       check_fail_count);
	return check_fail_count ? 1 : 0;
}
