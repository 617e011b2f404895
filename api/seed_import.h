/*
 * seed_import.h: importing the seed's backup tables with their history
 * (api/seed_import.c; docs/operations.md "Migrating from the seed"): the CSVs
 * of a directory, or files given by path, read (seed_csv.h), every row checked and the whole
 * import planned before anything is written (a report with file:line for
 * each problem), then written as import entries (core/import.h): old ids
 * mapped to bookd ids by LEGACY records, past and present bookings as
 * BOOKING_IMPORT records with their own status and times, never decided
 * again. The HTTP route POST /v1/admin/import runs it on a thread of its
 * own (import_server), bookctl import seed asks the route.
 */
#ifndef BOOKD_API_SEED_IMPORT_H
#define BOOKD_API_SEED_IMPORT_H

#include "buf.h"
#include "core.h"

#include <stdbool.h>
#include <stdint.h>

/* The tables, in the order they are read. */
enum imp_table {
	IMP_ORGS,
	IMP_LOCATIONS,
	IMP_INSTRUCTORS,
	IMP_CUSTOMERS,
	IMP_SERIES,
	IMP_INSTANCES,
	IMP_REGISTRATIONS,
	IMP_WAITLISTS,
	IMP_TABLE_COUNT
};

/* The names a table's file may have, in a directory (NULL ends). */
extern const char *const imp_file_names[IMP_TABLE_COUNT][4];
/* The table's own name ("class_instances", ...). */
const char *imp_table_name(enum imp_table t);

/* The CSV text of each table (data NULL: no such file). */
struct import_src {
	struct {
		char name[256]; /* as reported: the file's base name */
		char *data;
		size_t size;
	} file[IMP_TABLE_COUNT];
};

/* Reads a directory's files by their names (imp_file_names): 0, or
 * -errno with msg (a file that cannot be read; no class_instances). */
int import_src_dir(struct import_src *src, const char *dir, char *msg,
		   size_t msg_size);
/* Reads the files at paths, each taken for its table by its base name
 * (imp_file_names, else a name holding the table's word, "waitlist" in
 * "2025_waitlists.csv"), else by its header (docs/operations.md): 0, or
 * -errno with msg (unreadable, no table fits or two do, a table twice,
 * no class_instances). */
int import_src_files(struct import_src *src, const char *const *paths,
		     unsigned count, char *msg, size_t msg_size);
void import_src_free(struct import_src *src);

struct import_opts {
	bool dry_run;	  /* the report only: nothing written */
	bool accept_past; /* conflicts of past classes taken as they are */
	core_time now;	  /* past / future, and the LEGACY records' time */
};

/* Counts of one kind of object. */
enum imp_count {
	IMP_C_ORGS,
	IMP_C_LOCATIONS,
	IMP_C_INSTRUCTORS,
	IMP_C_CUSTOMERS,
	IMP_C_SERIES,	  /* from class_series */
	IMP_C_ONE_OFF,	  /* series of one date, for instances without */
	IMP_C_EVENTS,	  /* class instances */
	IMP_C_BOOKINGS,	  /* registrations, and waitlist rows of their own */
	IMP_C_WL_MERGED,  /* waitlist rows that are a registration's */
	IMP_C_WL_EXPIRED, /* bookings still waitlisted on a past class */
	IMP_C_COUNT
};

#define IMP_PROBLEMS_KEPT 1000
#define IMP_MESSAGE_SIZE 200

struct imp_problem {
	uint8_t table; /* enum imp_table */
	bool accepted; /* a conflict taken as it is (accept_past) */
	uint32_t line; /* 0: the file as a whole */
	char msg[IMP_MESSAGE_SIZE];
};

struct import_report {
	char file[IMP_TABLE_COUNT][256]; /* "" when absent */
	uint32_t rows[IMP_TABLE_COUNT];	 /* data rows read */
	uint64_t planned[IMP_C_COUNT];	 /* new: written unless a dry run */
	uint64_t existing[IMP_C_COUNT];	 /* imported before: skipped */
	uint64_t written[IMP_C_COUNT];
	uint32_t errors, accepted, kept; /* problems; kept in problem[] */
	struct imp_problem problem[IMP_PROBLEMS_KEPT];
	uint32_t entries;		/* written */
	uint64_t lsn;			/* the last one */
	bool refused;			/* errors: nothing written */
	char failure[IMP_MESSAGE_SIZE]; /* the write stopped: why */
};

/* Plans and (unless opts->dry_run or errors) writes the import through
 * port p of core c (c NULL: a check of the files alone, as a dry run).
 * Returns 0 when the report says what happened (refused or not), -errno
 * when the writing stopped part way (rep->failure: running it again
 * resumes, docs/operations.md). */
int import_run(const struct import_src *src, const struct import_opts *opts,
	       core *c, core_port *p, struct import_report *rep);

/* The report as JSON (docs/openapi.yaml ImportReport) into out. */
void import_report_json(const struct import_report *rep, const char *state,
			const struct import_opts *opts, struct buf *out);

/* ---- the server's import thread (POST/GET /v1/admin/import) ---- */

struct node;
struct import_server;
/* One import at a time; attached to node n (port_index of its core) once
 * it is open, before the routes serve. Free joins a running import. */
struct import_server *import_server_new(void);
void import_server_attach(struct import_server *s, struct node *n,
			  unsigned port_index);
void import_server_free(struct import_server *s);
/* Starts an import of dir (absolute), or when dir is NULL of the
 * file_count files (absolute paths, import_src_files): 0; -EBUSY one
 * runs; -errno with msg when the files cannot be read (nothing started). */
int import_server_start(struct import_server *s, const char *dir,
			const char *const *files, unsigned file_count,
			const struct import_opts *opts, char *msg,
			size_t msg_size);
/* The state ("none", "running", "done", "refused", "failed") and the last
 * report as JSON into out. */
void import_server_status(struct import_server *s, struct buf *out);

#endif
