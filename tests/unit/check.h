/*
 * check.h: CHECK(cond) for the unit tests, and CHECK_MSG(cond, fmt, ...)
 * that also prints what it saw. A failed check is reported with its file
 * and line and the test goes on; check_count and check_fail_count
 * (one pair per test program) say how many ran and failed, for its last
 * line and exit status. The counters are atomic: checks may run on several
 * threads.
 */
#ifndef BOOKD_TEST_CHECK_H
#define BOOKD_TEST_CHECK_H

#include <stdio.h>

static unsigned check_count, check_fail_count;

#define CHECK(cond)                                                           \
	do {                                                                  \
		__atomic_add_fetch(&check_count, 1, __ATOMIC_RELAXED);        \
		if (!(cond)) {                                                \
			__atomic_add_fetch(&check_fail_count, 1,              \
					   __ATOMIC_RELAXED);                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",          \
				__FILE__, __LINE__, #cond);                   \
		}                                                             \
	} while (0)

#define CHECK_MSG(cond, ...)                                                  \
	do {                                                                  \
		__atomic_add_fetch(&check_count, 1, __ATOMIC_RELAXED);        \
		if (!(cond)) {                                                \
			__atomic_add_fetch(&check_fail_count, 1,              \
					   __ATOMIC_RELAXED);                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ",          \
				__FILE__, __LINE__, #cond);                   \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
		}                                                             \
	} while (0)

#endif
