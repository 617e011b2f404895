/*
 * bench_assert.h: core's ASSERT for bench/ (core/internal.h keeps it private
 * to core/). For our own invariants, never for bytes from the network, a
 * file or PostgreSQL; on in release builds too, failing through
 * core__assert_fail (message, abort). The micro-benchmarks link core, which
 * defines it; bookbench does not link core (it is a client of bookd) and
 * defines it in bookbench.c. Every check in bench/ is cheap: no DEBUG_ASSERT.
 */
#ifndef BOOKD_BENCH_ASSERT_H
#define BOOKD_BENCH_ASSERT_H

#define ASSERT(cond) ((cond) ? (void)0 : core__assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void core__assert_fail(const char *what, const char *file, int line);

#endif
