/*
 * check.h: CHECK(cond) for the unit tests, and CHECK_MSG(cond, fmt, ...)
 * that also prints what it saw. A failed check is reported with its file
 * and line and the test goes on; check_count and check_fail_count
 * (one pair per test program) say how many ran and failed, for its last
 * line and exit status. The counters are atomic: checks may run on several
 * threads.
 *
 * check_run runs a program's table of test functions (struct check_test,
 * e.g. a table) and says which failed; check_run_all those defined
 * with CHECK_TEST_FN (each registers itself: no table to keep).
 *
 * CHECK_EQ compares two integers and prints both; REQUIRE stops the test
 * at once (for what the rest of it needs); check_end prints a seeded
 * test's last line and gives its exit status.
 */
#ifndef BOOKD_TEST_CHECK_H
#define BOOKD_TEST_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned check_count, check_fail_count;

/* Counts a check; if cond is false, counts a failure and prints where,
 * text (cond as written), and then whatever print prints. */
#define CHECK_PRINT(cond, text, print)                                         \
	do {                                                                   \
		__atomic_add_fetch(&check_count, 1, __ATOMIC_RELAXED);         \
		if (!(cond)) {                                                 \
			__atomic_add_fetch(&check_fail_count, 1,               \
					   __ATOMIC_RELAXED);                  \
			fprintf(stderr, "%s:%d: CHECK failed: %s", __FILE__,   \
				__LINE__, text);                               \
			print;                                                 \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

#define CHECK(cond) CHECK_PRINT(cond, #cond, (void)0)
#define CHECK_MSG(cond, ...)                                                   \
	CHECK_PRINT(cond, #cond,                                               \
		    (fputs(": ", stderr), fprintf(stderr, __VA_ARGS__)))

/* One test function of a program. */
struct check_test {
	const char *name;
	void (*fn)(void);
	int line; /* where CHECK_TEST_FN defined it */
};

#define CHECK_COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* CHECK(pred(s)) for each string s of the list; a failure names s. */
#define CHECK_ALL(pred, ...)                                                   \
	do {                                                                   \
		static const char *const all_[] = { __VA_ARGS__ };             \
		for (size_t i_ = 0; i_ < CHECK_COUNT_OF(all_); i_++)           \
			CHECK_MSG(pred(all_[i_]), "%s(\"%s\")", #pred,         \
				  all_[i_]);                                   \
	} while (0)

/* The tests a program defined with CHECK_TEST_FN, in the order of its
 * file (check_run_all runs them). */
struct check_tests {
	struct check_test t[128];
	size_t n;
};

static inline struct check_tests *check_test_list(void)
{
	static struct check_tests all;
	return &all;
}

static inline void check_register(const char *name, void (*fn)(void), int line)
{
	struct check_tests *all = check_test_list();
	size_t i = all->n++;

	if (i >= CHECK_COUNT_OF(all->t)) {
		fprintf(stderr, "check_register: more than %zu tests\n", i);
		abort();
	}
	for (; i > 0 && all->t[i - 1].line > line; i--)
		all->t[i] = all->t[i - 1];
	all->t[i] = (struct check_test){ name, fn, line };
}

/* Defines the test function f (its body follows) and registers it to be
 * run by check_run_all. */
#define CHECK_TEST_FN(f)                                                       \
	static void f(void);                                                   \
	__attribute__((constructor)) static void f##_register(void)            \
	{                                                                      \
		check_register(#f, f, __LINE__);                               \
	}                                                                      \
	static void f(void)

/* Runs t[0..n) in order, or only the one named only if that is not NULL.
 * A test fails if one of its checks fails or it checks nothing. Prints
 * "<prog>: C checks (F failed)" and "<prog>: P passed, F failed" (test
 * functions); returns the exit status: 0 only when every test passed. */
static inline int check_run(const char *prog, const struct check_test *t,
			    size_t n, const char *only)
{
	unsigned passed = 0, failed = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned before = check_count, failed_before = check_fail_count;
		bool test_failed;

		if (only && strcmp(only, t[i].name) != 0)
			continue;
		t[i].fn();
		test_failed = check_fail_count != failed_before;
		if (check_count == before) {
			fprintf(stderr, "%s: asserts nothing\n", t[i].name);
			test_failed = true;
		}
		if (test_failed) {
			fprintf(stderr, "%s: FAIL %s\n", prog, t[i].name);
			failed++;
		} else {
			passed++;
		}
	}
	printf("%s: %u checks (%u failed)\n", prog, check_count,
	       check_fail_count);
	printf("%s: %u passed, %u failed\n", prog, passed, failed);
	return failed ? 1 : 0;
}

/* check_run over the tests defined with CHECK_TEST_FN. */
static inline int check_run_all(const char *prog, const char *only)
{
	struct check_tests *all = check_test_list();

	return check_run(prog, all->t, all->n, only);
}

/* CHECK that integers a and b are equal; a failure prints both. */
#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		CHECK_PRINT(a_ == b_, #a " == " #b,                            \
			    fprintf(stderr, ": %lld, not %lld", a_, b_));      \
	} while (0)

/* Stops the test (exit 1) if cond is false: what follows depends on it. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",         \
				__FILE__, __LINE__, #cond);                    \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* The last line of a test whose random parts came from seed: "<name>: N
 * checks passed", or "<name>: F of N checks failed (seed S)"; returns
 * its exit status. */
static inline int check_end(const char *name, uint64_t seed)
{
	if (check_fail_count > 0) {
		printf("%s: %u of %u checks failed (seed %" PRIu64 ")\n", name,
		       check_fail_count, check_count, seed);
		return 1;
	}
	printf("%s: %u checks passed\n", name, check_count);
	return 0;
}

#endif
