/*
 * bookd_assert.h: the project's one ASSERT, for every folder (core/, wal/,
 * api/, replicator/, bench/). Its own target, bookd_assert (bookd_assert.c),
 * depends on nothing, so wal/, the client library and bookbench use it
 * without depending on core/.
 *
 * ASSERT(cond) checks our own invariants (preconditions, postconditions,
 * loop bounds) and stays on in release builds, -DNDEBUG included (Redis
 * serverAssert): a failure prints the condition, file and line and aborts.
 * Never use it on bytes from the network, disk or PostgreSQL: those get
 * errors. DEBUG_ASSERT(cond) is for checks too costly for the hot path
 * (a walk over a whole table); it is compiled out when NDEBUG is defined.
 * Prefer ASSERT(a); ASSERT(b); to ASSERT(a && b). Pin layouts with
 * _Static_assert. <assert.h>'s assert() is not used: release drops it.
 */
#ifndef BOOKD_ASSERT_H
#define BOOKD_ASSERT_H

#define ASSERT(cond)                                                           \
	do {                                                                   \
		if (!(cond))                                                   \
			bookd_assert_fail(#cond, __FILE__, __LINE__);          \
	} while (0)

#ifdef NDEBUG
#define DEBUG_ASSERT(cond) ((void)0)
#else
#define DEBUG_ASSERT(cond) ASSERT(cond)
#endif

/* Prints "<program>: assertion failed: <what> (<file>:<line>)" and aborts. */
_Noreturn void bookd_assert_fail(const char *what, const char *file, int line);

#endif
