/*
 * bookd_assert.c: ASSERT's failure (bookd_assert.h), out of core's library
 * so that wal/, the client library and bookbench link it without core/.
 */
#include "bookd_assert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

_Noreturn void bookd_assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s: assertion failed: %s (%s:%d)\n",
		program_invocation_short_name, what, file, line);
	abort();
}
