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

/* Counts a check; if cond is false, counts a failure and prints where,
 * text (cond as written), and then whatever print prints. */
#define CHECK_PRINT(cond, text, print)                                        \
	do {                                                                  \
		__atomic_add_fetch(&check_count, 1, __ATOMIC_RELAXED);        \
		if (!(cond)) {                                                \
			__atomic_add_fetch(&check_fail_count, 1,              \
					   __ATOMIC_RELAXED);                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s",            \
				__FILE__, __LINE__, text);                    \
			print;                                                \
			fputc('\n', stderr);                                  \
		}                                                             \
	} while (0)

#define CHECK(cond) CHECK_PRINT(cond, #cond, (void)0)
#define CHECK_MSG(cond, ...)                                                  \
	CHECK_PRINT(cond, #cond,                                              \
		    (fputs(": ", stderr), fprintf(stderr, __VA_ARGS__)))

#endif
