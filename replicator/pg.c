/*
 * pg.c: libpq helpers for the replicator (one-line errors, transient or
 * permanent by SQLSTATE, COPY, BOOKD_REPL_TRACE timings) and the migration
 * runner: the embedded migrations (migrations.h) in version order, each in
 * one transaction with its bookd.schema_migrations row (made, or moved
 * from public, first), one runner at a time
 * (an advisory lock), as replicator/README.md "Runner protocol" says.
 */
#include "evlog.h"
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrations.h"

/* ---- libpq helpers -------------------------------------------------------- */

/* Is this failure worth a retry on a new connection? */
bool repl__pg_transient(PGconn *c, const PGresult *res)
{
	const char *state;

	if (!c || PQstatus(c) != CONNECTION_OK)
		return true;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!state || strlen(state) != 5)
		return true; /* no SQLSTATE: the client side or the link */
	if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) ||
	    !strncmp(state, "57", 2) || !strncmp(state, "58", 2) ||
	    !strncmp(state, "40", 2) || !strcmp(state, "55P03") ||
	    !strcmp(state, "55006"))
		return true;
	/* A month archived (archive_class_events_month) after the months
	 * were listed: the new session lists them again and the batch,
	 * read again, has that month's partition made first. ("no partition
	 * of relation ... found for row" is the one check violation that
	 * names no constraint.) */
	return !strcmp(state, "23514") &&
	       !PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
}

/* The first line of a message, for one-line reports. */
void repl__one_line(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	ASSERT(dst && size > 0);
	for (; src && *src && *src != '\n' && n + 1 < size; src++)
		dst[n++] = *src;
	ASSERT(n < size);
	dst[n] = '\0';
}

/* BOOKD_REPL_TRACE=1: each statement's time on stderr (tuning). */
bool repl__trace_on(void)
{
	static int on = -1;
	if (on < 0)
		on = getenv("BOOKD_REPL_TRACE") != NULL;
	return on;
}

void repl__pg_notice_quiet(void *arg, const char *message)
{
	(void)arg, (void)message; /* "already exists, skipping" and the like */
}

/* Runs sql expecting `want`; on failure fills err and returns
 * REPL_TRANSIENT or -EPROTO (permanent). *out (if given) keeps the result. */
int repl__pg_run(PGconn *c, const char *what, const char *sql, int nparams,
		 const char *const *params, ExecStatusType want, PGresult **out,
		 char *err, size_t err_size)
{
	double t0;
	PGresult *res;
	char msg[300];

	ASSERT(c && what && sql && err && err_size > 0);
	ASSERT(nparams >= 0 && (nparams == 0 || params));
	t0 = repl__trace_on() ? repl__mono_s() : 0;
	res = nparams ? PQexecParams(c, sql, nparams, NULL, params, NULL, NULL,
				     0)
		      : PQexec(c, sql);

	if (t0)
		evlog(EVLOG_INFO, "trace: %-28s %8.2f ms", what,
		      (repl__mono_s() - t0) * 1000);

	if (res && PQresultStatus(res) == want) {
		if (out)
			*out = res;
		else
			PQclear(res);
		return 0;
	}
	repl__one_line(msg, sizeof(msg),
		       res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	if (!msg[0])
		repl__one_line(msg, sizeof(msg), PQerrorMessage(c));
	snprintf(err, err_size, "%s: %s%s%s%s", what, msg,
		 res && PQresultErrorField(res, PG_DIAG_SQLSTATE)
			 ? " (SQLSTATE "
			 : "",
		 res && PQresultErrorField(res, PG_DIAG_SQLSTATE)
			 ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
			 : "",
		 res && PQresultErrorField(res, PG_DIAG_SQLSTATE) ? ")" : "");
	bool transient = repl__pg_transient(c, res);
	PQclear(res);
	return transient ? REPL_TRANSIENT : -EPROTO;
}

/* A guarded update that must change exactly one row (replication_state
 * WHERE it is still what this replicator read): 0, -EUCLEAN when it
 * changed none (the guard failed; err left for the caller to say why), or
 * what repl__pg_run returns. */
int repl__pg_update_one(PGconn *c, const char *what, const char *sql,
			int nparams, const char *const *params, char *err,
			size_t err_size)
{
	PGresult *res;
	int rc = repl__pg_run(c, what, sql, nparams, params, PGRES_COMMAND_OK,
			      &res, err, err_size);

	if (rc)
		return rc;
	ASSERT(res);
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : -EUCLEAN;
	PQclear(res);
	return rc;
}

/* A statement that failed (res may be NULL): "what: first line of the
 * message" into err, res cleared; REPL_TRANSIENT or -EPROTO. */
static int pg_fail(PGconn *c, PGresult *res, const char *what, char *err,
		   size_t err_size)
{
	bool transient = repl__pg_transient(c, res);
	char msg[300];

	repl__one_line(msg, sizeof(msg),
		       res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	snprintf(err, err_size, "%s: %s", what, msg);
	PQclear(res);
	return transient ? REPL_TRANSIENT : -EPROTO;
}

int repl__pg_copy(PGconn *c, const char *sql, const struct buf *b, char *err,
		  size_t err_size)
{
	double t0;
	PGresult *res;
	int rc;

	ASSERT(c && sql && err && err_size > 0);
	ASSERT(!b->broken && b->size <= REPL_COPY_SIZE_MAX); /* fits an int */
	t0 = repl__trace_on() ? repl__mono_s() : 0;
	res = PQexec(c, sql);

	if (!res || PQresultStatus(res) != PGRES_COPY_IN)
		return pg_fail(c, res, sql, err, err_size);
	PQclear(res);
	rc = PQputCopyData(c, (const char *)b->data, (int)b->size) == 1 ? 0
									: -1;
	if (PQputCopyEnd(c, rc ? "replicator: copy failed" : NULL) != 1)
		rc = -1;
	res = PQgetResult(c);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pg_fail(c, res, sql, err, err_size);
		while ((res = PQgetResult(c)))
			PQclear(res);
		return rc;
	}
	PQclear(res);
	while ((res = PQgetResult(c)))
		PQclear(res);
	if (t0)
		evlog(EVLOG_INFO, "trace: %-28.28s %8.2f ms (%zu bytes)", sql,
		      (repl__mono_s() - t0) * 1000, b->size);
	return rc ? REPL_TRANSIENT : 0;
}

/* A decimal integer PostgreSQL sent, validated. */
bool repl__parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* ---- migrations ------------------------------------------------------------ */

/* bookd.schema_migrations, made once under the runners' lock: a database
 * from before migration 0008 has bookd's in public (its columns and its
 * 0001_schema row say it is bookd's): moved, with what it records; a
 * public.schema_migrations of anyone else is left alone. */
static const char sql_bootstrap[] =
	"CREATE SCHEMA IF NOT EXISTS bookd;"
	"DO $bootstrap$ DECLARE ours boolean := false; BEGIN"
	" IF to_regclass('bookd.schema_migrations') IS NOT NULL THEN RETURN;"
	" END IF;"
	" IF to_regclass('public.schema_migrations') IS NOT NULL"
	"  AND to_regclass('public.replication_state') IS NOT NULL"
	"  AND (SELECT array_agg(attname::text || ':' ||"
	"   format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute"
	"   WHERE attrelid = to_regclass('public.schema_migrations') AND attnum > 0"
	"   AND NOT attisdropped) = ARRAY['version:bigint', 'name:text',"
	"   'applied_at:timestamp with time zone'] THEN"
	"  EXECUTE 'SELECT EXISTS (SELECT 1 FROM public.schema_migrations"
	" WHERE version = 1 AND name = ''0001_schema'')' INTO ours;"
	" END IF;"
	" IF ours THEN ALTER TABLE public.schema_migrations SET SCHEMA bookd;"
	" ELSE CREATE TABLE bookd.schema_migrations (version bigint PRIMARY KEY,"
	" name text, applied_at timestamptz NOT NULL DEFAULT now()); END IF;"
	" END $bootstrap$";

int repl__migrate(repl *r, char *err, size_t es)
{
	PGconn *c = r->conn[0];
	int rc;

	ASSERT(c);
	rc = repl__pg_run(c, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL,
			  err, es);
	if (!rc)
		rc = repl__pg_run(
			c, "migration lock",
			"SELECT pg_advisory_xact_lock(hashtext('bookd.migrations'))",
			0, NULL, PGRES_TUPLES_OK, NULL, err, es);
	if (!rc)
		rc = repl__pg_run(c, "bookd.schema_migrations", sql_bootstrap,
				  0, NULL, PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = repl__pg_run(c, "COMMIT", "COMMIT", 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	for (unsigned i = 0; rc == 0 && i < repl_migration_count; i++) {
		const struct repl_migration *m = &repl_migrations[i];
		char version[24];
		const char *p[2] = { version, m->name };
		PGresult *res;

		/* embed.cmake: in name order, NNNN_ first: versions rise */
		ASSERT(i == 0 || repl_migrations[i - 1].version < m->version);

		snprintf(version, sizeof(version), "%ld", m->version);
		/* One runner at a time (nodes sharing a database). */
		rc = repl__pg_run(c, "BEGIN", "BEGIN", 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
		if (!rc)
			rc = repl__pg_run(
				c, "migration lock",
				"SELECT pg_advisory_xact_lock(hashtext('bookd.migrations'))",
				0, NULL, PGRES_TUPLES_OK, NULL, err, es);
		if (!rc)
			rc = repl__pg_run(
				c, "schema_migrations",
				"SELECT 1 FROM bookd.schema_migrations WHERE version = $1",
				1, p, PGRES_TUPLES_OK, &res, err, es);
		if (rc)
			break;
		bool applied = PQntuples(res) > 0;
		PQclear(res);
		if (applied) {
			rc = repl__pg_run(c, "COMMIT", "COMMIT", 0, NULL,
					  PGRES_COMMAND_OK, NULL, err, es);
			continue;
		}
		res = PQexec(c, m->sql);
		if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK &&
			     PQresultStatus(res) != PGRES_TUPLES_OK)) {
			char what[128];

			snprintf(what, sizeof(what), "migration %s", m->name);
			rc = pg_fail(c, res, what, err, es);
			PQclear(PQexec(c, "ROLLBACK"));
			return rc;
		}
		PQclear(res);
		rc = repl__pg_run(c, "schema_migrations",
				  "INSERT INTO bookd.schema_migrations (version, name)"
				  " VALUES ($1, $2)",
				  2, p, PGRES_COMMAND_OK, NULL, err, es);
		if (!rc)
			rc = repl__pg_run(c, "COMMIT", "COMMIT", 0, NULL,
					  PGRES_COMMAND_OK, NULL, err, es);
		if (!rc)
			repl__say(r, "migration %s applied", m->name);
	}
	if (rc && PQstatus(c) == CONNECTION_OK)
		PQclear(PQexec(c, "ROLLBACK"));
	return rc;
}
