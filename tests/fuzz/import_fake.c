/*
 * import_fake.c: the import thread's entry points (api/seed_import.h) for
 * fuzz_http, which compiles the HTTP routes without a node: its server
 * fake (tests/unit/srv_fake.h) has no import thread, so the import routes
 * answer 503 before calling these.
 */
#include "seed_import.h"

#include <errno.h>
#include <stdlib.h>

int import_server_start(struct import_server *s, const char *dir,
			const char *const *files, unsigned file_count,
			const struct import_opts *opts, char *msg,
			size_t msg_size)
{
	(void)s, (void)dir, (void)files, (void)file_count, (void)opts;
	(void)msg, (void)msg_size;
	abort(); /* srv_import() is NULL in the fake: never called */
}

void import_server_status(struct import_server *s, struct buf *out)
{
	(void)s, (void)out;
	abort();
}
