/*
 * bookctl_seed.h: `bookctl import seed` (bookctl_seed.c), through bookd's
 * HTTP route POST/GET /v1/admin/import.
 */
#ifndef BOOKD_BOOKCTL_SEED_H
#define BOOKD_BOOKCTL_SEED_H

#include <stdbool.h>

/* Imports the seed's backup (bookd reads it): paths[0] a directory, or
 * the count paths its tables' CSV files, through the HTTP API at http
 * (http://HOST:PORT) with the service key; prints the report. Returns
 * bookctl's exit status: 0 done, 1 refused or failed, 2 usage, 3
 * transport. */
int bookctl_import_seed(const char *const *paths, unsigned count, bool dry_run,
			bool accept_past, const char *http, const char *key);

#endif
