/* migrations.h: the schema's migrations, embedded at build time from
 * replicator/migrations/ (embed.cmake); applied in order by pg.c (repl__migrate). */
#ifndef BOOKD_REPL_MIGRATIONS_H
#define BOOKD_REPL_MIGRATIONS_H

#include <stddef.h>

struct repl_migration {
	long version;	  /* NNNN of NNNN_name.sql */
	const char *name; /* NNNN_name */
	const char *sql;  /* NUL-terminated */
	size_t size;
};

extern const struct repl_migration repl_migrations[];
extern const unsigned repl_migration_count;

#endif
