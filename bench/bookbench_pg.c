/*
 * bookbench_pg.c: driver baseline-pg, the seed's design in PostgreSQL.
 *
 * Setup drops and recreates the schema `baseline` from bench/baseline/ (the SQL files)
 * (the tables, monthly partitions, the plpgsql RPCs), then makes the data
 * set with plain SQL (orgs, one location and instructor each, one series per
 * event, generate_events). Each connection is one libpq connection with
 * prepared statements, one request at a time (the seed's clients run one
 * transaction per connection; each RPC call is its own transaction, with
 * synchronous_commit on). Asynchronous libpq (PQsendQueryPrepared, which
 * sends the whole query, in blocking mode: nothing is left queued; then
 * PQconsumeInput and PQisBusy) so that poll() can wait with a timeout, or
 * not at all (timeout 0: an event loop waits on PQsocket).
 *
 * Also here: bb_pg_replica_check(), which compares bookd's counts with what
 * its replicator wrote into PostgreSQL (public.class_events,
 * public.registrations).
 */
#include "bookbench.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PGconn *pg_connect(const struct bb_config *cfg, char *err,
			  size_t err_size)
{
	if (cfg->database_url == NULL) {
		bb_errf(err, err_size, "no DATABASE_URL");
		return NULL;
	}
	PGconn *pg = PQconnectdb(cfg->database_url);
	if (PQstatus(pg) != CONNECTION_OK) {
		bb_errf(err, err_size, "connect: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

static int pg_exec(PGconn *pg, const char *sql, char *err, size_t err_size)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		bb_errf(err, err_size, "%.120s: %s", sql, PQerrorMessage(pg));
		PQclear(res);
		return -EIO;
	}
	PQclear(res);
	return 0;
}

static int pg_exec_file(PGconn *pg, const char *dir, const char *name,
			char *err, size_t err_size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		bb_errf(err, err_size, "%s: %s (--baseline-sql DIR)", path,
			strerror(errno));
		return -ENOENT;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *sql = malloc((size_t)size + 1);
	if (sql == NULL || fread(sql, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(sql);
		bb_errf(err, err_size, "%s: read failed", path);
		return -EIO;
	}
	fclose(f);
	sql[size] = 0;
	int rc = pg_exec(pg, sql, err, err_size);
	if (rc < 0) {
		char tmp[BB_ERR_SIZE];
		snprintf(tmp, sizeof(tmp), "%s: %s", name,
			 strstr(err, ": ") ? strstr(err, ": ") + 2 : err);
		snprintf(err, err_size, "%s", tmp);
	}
	free(sql);
	return rc;
}

int bb_pg_setup_schema(const struct bb_config *cfg, char *err, size_t err_size)
{
	if (cfg->baseline_sql_dir == NULL) {
		bb_errf(err, err_size,
			"where are the baseline's SQL files? --baseline-sql DIR");
		return -EINVAL;
	}
	PGconn *pg = pg_connect(cfg, err, err_size);
	if (pg == NULL)
		return -ECONNREFUSED;
	int rc = 0;
	if (cfg->pg_durable) {
		rc = pg_exec(pg, "ALTER SYSTEM SET fsync = on", err, err_size);
		if (rc == 0)
			rc = pg_exec(pg,
				     "ALTER SYSTEM SET full_page_writes = on",
				     err, err_size);
		if (rc == 0)
			rc = pg_exec(pg,
				     "ALTER SYSTEM SET synchronous_commit = on",
				     err, err_size);
		if (rc == 0)
			rc = pg_exec(pg, "SELECT pg_reload_conf()", err,
				     err_size);
		if (rc < 0)
			goto out;
		usleep(200000); /* the reload reaches the backends */
		PGresult *res = PQexec(pg, "SELECT current_setting('fsync')");
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1 &&
		    strcmp(PQgetvalue(res, 0, 0), "on") != 0)
			fprintf(stderr,
				"bookbench: warning: fsync stays off (set on the server's "
				"command line, as scripts/pg.sh does): the baseline is not "
				"durable\n");
		PQclear(res);
	}
	rc = pg_exec(pg, "SET client_min_messages = warning", err, err_size);
	if (rc == 0)
		rc = pg_exec(pg, "DROP SCHEMA IF EXISTS baseline CASCADE", err,
			     err_size);
	if (rc == 0)
		rc = pg_exec_file(pg, cfg->baseline_sql_dir, "001_schema.sql",
				  err, err_size);
	if (rc == 0)
		rc = pg_exec_file(pg, cfg->baseline_sql_dir,
				  "002_functions.sql", err, err_size);
	if (rc == 0)
		rc = pg_exec(pg,
			     "SELECT baseline.ensure_partitions(current_date - 31, 15)",
			     err, err_size);
out:
	PQfinish(pg);
	return rc;
}

static int pg_setup(const struct bb_config *cfg, struct bb_dataset *ds,
		    char *err, size_t err_size)
{
	int rc = bb_pg_setup_schema(cfg, err, err_size);
	if (rc < 0)
		return rc;
	PGconn *pg = pg_connect(cfg, err, err_size);
	if (pg == NULL)
		return -ECONNREFUSED;
	char sql[2048];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO baseline.organizations (id, name) SELECT g, 'bb-%s-org-' || g "
		 "FROM generate_series(1, %u) g;"
		 "INSERT INTO baseline.locations (id, org_id, name) SELECT g, g, 'studio' "
		 "FROM generate_series(1, %u) g;"
		 "INSERT INTO baseline.instructors (id, org_id, name) SELECT g, g, 'coach' "
		 "FROM generate_series(1, %u) g;"
		 "INSERT INTO baseline.class_series (org_id, location_id, instructor_id, title, "
		 "capacity, waitlist_capacity, weekdays, start_time, duration_min, first_date, "
		 "last_date) SELECT 1 + (g - 1) %% %u, 1 + (g - 1) %% %u, 1 + (g - 1) %% %u, "
		 "'class ' || g, %u, %u, '{1,2,3,4,5,6,7}', time '00:00' + ((g - 1) * 1440 / %u) "
		 "* interval '1 minute', 60, date '%s', date '%s' FROM generate_series(1, %u) g;"
		 "SELECT baseline.generate_events(date '%s');",
		 ds->run_tag, ds->org_count, ds->org_count, ds->org_count,
		 ds->org_count, ds->org_count, ds->org_count, ds->capacity,
		 ds->waitlist_capacity, ds->event_count, ds->day, ds->day,
		 ds->event_count, ds->day);
	rc = pg_exec(pg, sql, err, err_size);
	if (rc < 0)
		goto out;
	PGresult *res =
		PQexec(pg,
		       "SELECT id, org_id FROM baseline.class_events ORDER BY id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		bb_errf(err, err_size, "events: %s", PQerrorMessage(pg));
		PQclear(res);
		rc = -EIO;
		goto out;
	}
	int n = PQntuples(res);
	if ((uint32_t)n != ds->event_count) {
		bb_errf(err, err_size, "generated %d events, wanted %u", n,
			ds->event_count);
		PQclear(res);
		rc = -EIO;
		goto out;
	}
	if (bb_dataset_alloc(ds) < 0) {
		PQclear(res);
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < ds->org_count; i++)
		ds->org_ids[i] = i + 1;
	for (int i = 0; i < n; i++) {
		ds->event_ids[i] = strtoull(PQgetvalue(res, i, 0), NULL, 10);
		ds->event_org[i] =
			(uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10) - 1;
	}
	PQclear(res);
	rc = pg_exec(pg, "ANALYZE baseline.class_events", err, err_size);
out:
	PQfinish(pg);
	return rc;
}

/* ---- Connections ------------------------------------------------------- */

struct pg_conn {
	PGconn *pg;
	bool busy;
	enum bb_op_kind kind;
	uint64_t booking_id;
	bool answered; /* answer holds the result; the command not yet over */
	struct bb_result answer;
};

static const struct {
	const char *name, *sql;
	int nparams;
} stmts[BB_OP_KIND_COUNT] = {
	[BB_OP_BOOK] = { "book",
			 "SELECT code, booking_id, status, wl_position "
			 "FROM baseline.book_event($1, $2, $3, $4)",
			 4 },
	[BB_OP_CANCEL] = { "cancel",
			   "SELECT code, booking_id, status, promoted_id "
			   "FROM baseline.cancel_booking($1, $2)",
			   2 },
	[BB_OP_EVENT_GET] = { "event_get",
			      "SELECT capacity, reg_count, waitlist_count, status "
			      "FROM baseline.class_events WHERE id = $1",
			      1 },
	[BB_OP_EVENT_LIST] = { "event_list",
			       "SELECT id, title, start_at, capacity, reg_count, waitlist_count, "
			       "status FROM baseline.class_events WHERE org_id = $1 "
			       "AND start_at >= to_timestamp($2::bigint / 1000.0) "
			       "AND start_at < to_timestamp($3::bigint / 1000.0) "
			       "ORDER BY start_at, id LIMIT 50",
			       3 },
	[BB_OP_BOOKING_GET] = { "booking_get",
				"SELECT r.status, r.event_id, baseline.waitlist_place(r.id) "
				"FROM baseline.registrations r WHERE r.id = $1",
				1 },
};

static int pg_open(const struct bb_config *cfg, void **out, char *err,
		   size_t err_size)
{
	struct pg_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->pg = pg_connect(cfg, err, err_size);
	if (c->pg == NULL) {
		free(c);
		return -ECONNREFUSED;
	}
	if (pg_exec(c->pg, "SET synchronous_commit = on", err, err_size) < 0)
		goto fail;
	for (int k = 0; k < BB_OP_KIND_COUNT; k++) {
		PGresult *res = PQprepare(c->pg, stmts[k].name, stmts[k].sql,
					  stmts[k].nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			bb_errf(err, err_size, "prepare %s: %s", stmts[k].name,
				PQerrorMessage(c->pg));
			PQclear(res);
			goto fail;
		}
		PQclear(res);
	}
	*out = c;
	return 0;
fail:
	PQfinish(c->pg);
	free(c);
	return -EIO;
}

static int pg_submit(void *conn, const struct bb_op *op)
{
	struct pg_conn *c = conn;
	char a[32], b[32], d[32];
	const char *v[4] = { 0 };

	if (c->busy)
		return -EBUSY;
	switch (op->kind) {
	case BB_OP_BOOK:
		snprintf(a, sizeof(a), "%" PRIu64, op->event_id);
		v[0] = a;
		v[1] = op->customer;
		v[2] = op->key;
		v[3] = "none";
		break;
	case BB_OP_CANCEL:
		snprintf(a, sizeof(a), "%" PRIu64, op->booking_id);
		v[0] = a;
		v[1] = op->key;
		break;
	case BB_OP_EVENT_GET:
		snprintf(a, sizeof(a), "%" PRIu64, op->event_id);
		v[0] = a;
		break;
	case BB_OP_EVENT_LIST:
		snprintf(a, sizeof(a), "%" PRIu64, op->org_id);
		snprintf(b, sizeof(b), "%" PRId64, op->from_ms);
		snprintf(d, sizeof(d), "%" PRId64, op->to_ms);
		v[0] = a;
		v[1] = b;
		v[2] = d;
		break;
	case BB_OP_BOOKING_GET:
		snprintf(a, sizeof(a), "%" PRIu64, op->booking_id);
		v[0] = a;
		break;
	default: return -EINVAL;
	}
	if (!PQsendQueryPrepared(c->pg, stmts[op->kind].name,
				 stmts[op->kind].nparams, v, NULL, NULL, 0))
		return -EIO;
	c->busy = true;
	c->kind = op->kind;
	c->booking_id = op->booking_id;
	return 0;
}

static enum bb_status status_of(const char *s)
{
	if (strcmp(s, "confirmed") == 0)
		return BB_ST_CONFIRMED;
	if (strcmp(s, "pending_payment") == 0)
		return BB_ST_PENDING;
	if (strcmp(s, "waitlisted") == 0)
		return BB_ST_WAITLISTED;
	if (strcmp(s, "cancelled") == 0)
		return BB_ST_CANCELLED;
	return s[0] ? BB_ST_OTHER : BB_ST_NONE;
}

static void parse_result(struct pg_conn *c, PGresult *res,
			 struct bb_result *out)
{
	memset(out, 0, sizeof(*out));
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		out->code = BB_SERVER_ERROR;
		return;
	}
	int rows = PQntuples(res);
	bool one_row = c->kind == BB_OP_BOOK || c->kind == BB_OP_CANCEL ||
		       c->kind == BB_OP_EVENT_GET ||
		       c->kind == BB_OP_BOOKING_GET;
	if (one_row && rows != 1) {
		/* book and cancel always answer a row; a get of nothing: none */
		out->code = c->kind == BB_OP_BOOK || c->kind == BB_OP_CANCEL
				    ? BB_TRANSPORT
				    : BB_NOT_FOUND;
		return;
	}
	switch (c->kind) {
	case BB_OP_BOOK:
	case BB_OP_CANCEL:
		out->code = bb_code_of(PQgetvalue(res, 0, 0));
		out->booking_id = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		out->status = status_of(PQgetvalue(res, 0, 2));
		if (c->kind == BB_OP_BOOK)
			out->position = (uint32_t)strtoul(PQgetvalue(res, 0, 3),
							  NULL, 10);
		else
			out->promoted_id =
				strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		break;
	case BB_OP_EVENT_GET:
		out->capacity =
			(uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
		out->booked =
			(uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
		out->waitlist_length =
			(uint32_t)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
		out->event_cancelled =
			strcmp(PQgetvalue(res, 0, 3), "cancelled") == 0;
		break;
	case BB_OP_EVENT_LIST: out->count = (uint32_t)rows; break;
	case BB_OP_BOOKING_GET:
		out->status = status_of(PQgetvalue(res, 0, 0));
		out->event_id = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		out->position =
			(uint32_t)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
		out->booking_id = c->booking_id;
		break;
	default: out->code = BB_OTHER;
	}
}

static int wait_readable(PGconn *pg, int64_t timeout_ns)
{
	struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
	int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
	int rc = poll(&p, 1, ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (rc > 0 && !PQconsumeInput(pg))
		return -ECONNRESET;
	return rc;
}

static int pg_poll(void *conn, struct bb_result *out, int max,
		   int64_t timeout_ns)
{
	struct pg_conn *c = conn;
	if (!c->busy || max < 1)
		return 0;
	int64_t deadline = bb_now_ns() + timeout_ns;
	if (!PQconsumeInput(c->pg))
		return -ECONNRESET;
	/* the result, then the end of the command (the connection is free
	 * for the next one only then) */
	for (;;) {
		while (!PQisBusy(c->pg)) {
			PGresult *res = PQgetResult(c->pg);
			if (res == NULL) { /* the command is over */
				if (!c->answered)
					return -EPROTO;
				*out = c->answer;
				c->answered = false;
				c->busy = false;
				return 1;
			}
			if (!c->answered)
				parse_result(c, res, &c->answer);
			c->answered = true;
			PQclear(res);
		}
		int64_t left = deadline - bb_now_ns();
		if (left <= 0)
			return 0;
		int rc = wait_readable(c->pg, left);
		if (rc < 0)
			return rc;
	}
}

static int pg_flush(void *conn)
{
	(void)conn; /* PQsendQueryPrepared (blocking mode) sent all of it */
	return 0;
}

static int pg_fd(void *conn, short *events)
{
	struct pg_conn *c = conn;
	*events = POLLIN;
	return PQsocket(c->pg);
}

static void pg_close(void *conn)
{
	struct pg_conn *c = conn;
	PQfinish(c->pg);
	free(c);
}

/* ---- Checks ------------------------------------------------------------ */

static long scalar(PGconn *pg, const char *sql, char *report,
		   size_t report_size)
{
	PGresult *res = PQexec(pg, sql);
	long v = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = atol(PQgetvalue(res, 0, 0));
	else {
		size_t used = strlen(report);
		snprintf(report + used, report_size - used,
			 "  query failed: %s", PQerrorMessage(pg));
	}
	PQclear(res);
	return v;
}

static int pg_check(const struct bb_config *cfg, const struct bb_dataset *ds,
		    char *report, size_t report_size)
{
	char err[BB_ERR_SIZE];
	(void)ds;
	PGconn *pg = pg_connect(cfg, err, sizeof(err));
	if (pg == NULL) {
		snprintf(report, report_size, "baseline SQL checks: %s", err);
		return -ECONNREFUSED;
	}
	static const struct {
		const char *what, *sql;
	} checks[] = {
		{ "events whose reg_count differs from their confirmed registrations",
		  "SELECT count(*) FROM baseline.class_events e WHERE reg_count <> "
		  "(SELECT count(*) FROM baseline.registrations r WHERE r.event_id = e.id "
		  "AND r.status = 'confirmed')" },
		{ "events over capacity",
		  "SELECT count(*) FROM baseline.class_events "
		  "WHERE reg_count > capacity" },
		{ "events whose waitlist_count differs from their waiting rows",
		  "SELECT count(*) FROM baseline.class_events e WHERE waitlist_count <> "
		  "(SELECT count(*) FROM baseline.event_waitlists w WHERE w.event_id = e.id "
		  "AND w.promoted_at IS NULL AND w.left_at IS NULL)" },
		{ "waitlist rows out of FIFO order (position vs joining order)",
		  "SELECT count(*) FROM (SELECT registration_id < lag(registration_id) OVER "
		  "(PARTITION BY event_id ORDER BY position) AS inverted "
		  "FROM baseline.event_waitlists) x WHERE inverted" },
		{ "seats free while customers wait",
		  "SELECT count(*) FROM baseline.class_events e WHERE reg_count < capacity "
		  "AND waitlist_count > 0" },
		{ "customers with two active bookings on one event",
		  "SELECT count(*) FROM (SELECT 1 FROM baseline.registrations WHERE status IN "
		  "('confirmed','pending_payment','waitlisted') GROUP BY event_id, customer_id "
		  "HAVING count(*) > 1) x" },
		{ "idempotency keys without a stored response",
		  "SELECT count(*) FROM baseline.idempotency_keys WHERE response IS NULL" },
	};
	int problems = 0;
	size_t used =
		(size_t)snprintf(report, report_size, "baseline SQL checks:");
	for (size_t i = 0;
	     i < sizeof(checks) / sizeof(checks[0]) && used < report_size;
	     i++) {
		long v = scalar(pg, checks[i].sql, report, report_size);
		used = strlen(report);
		snprintf(report + used, report_size - used, "%s %ld %s",
			 i ? ";" : "", v, checks[i].what);
		used = strlen(report);
		if (v != 0)
			problems++;
	}
	PQfinish(pg);
	return problems;
}

static void pg_describe(const struct bb_config *cfg, char *out, size_t out_size)
{
	char err[BB_ERR_SIZE];
	PGconn *pg = pg_connect(cfg, err, sizeof(err));
	if (pg == NULL)
		return;
	PGresult *res = PQexec(
		pg,
		"SELECT current_setting('server_version'), "
		"current_setting('fsync'), current_setting('synchronous_commit'), "
		"current_setting('full_page_writes'), "
		"current_setting('max_connections'), current_setting('shared_buffers')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(out, out_size,
			 "{\"system\":\"PostgreSQL %s\",\"fsync\":\"%s\",\"synchronous_commit\":\"on "
			 "(per session)\",\"server_synchronous_commit\":\"%s\",\"full_page_writes\":"
			 "\"%s\",\"max_connections\":%s,\"shared_buffers\":\"%s\"}",
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
			 PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5));
	PQclear(res);
	PQfinish(pg);
}

static int idc_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* url with its database replaced by name. */
static int url_with_db(const char *url, const char *name, char *out,
		       size_t out_size)
{
	const char *scheme = strstr(url, "://");
	if (strncmp(url, "postgres://", 11) != 0 &&
	    strncmp(url, "postgresql://", 13) != 0) {
		/* key=value form: a later dbname wins */
		snprintf(out, out_size, "%s dbname=%s", url, name);
		return 0;
	}
	const char *host = scheme + 3;
	const char *slash = strchr(host, '/');
	const char *query = strchr(host, '?');
	if (slash != NULL && query != NULL && slash > query)
		slash = NULL;
	size_t head = slash   ? (size_t)(slash - url)
		      : query ? (size_t)(query - url)
			      : strlen(url);
	const char *tail = query ? query : "";
	int n = snprintf(out, out_size, "%.*s/%s%s", (int)head, url, name,
			 tail);
	return n > 0 && (size_t)n < out_size ? 0 : -ENAMETOOLONG;
}

int bb_pg_create_db(const char *url, const char *name, char *new_url,
		    size_t new_url_size, char *err, size_t err_size)
{
	PGconn *pg = PQconnectdb(url);
	if (PQstatus(pg) != CONNECTION_OK) {
		bb_errf(err, err_size, "connect: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return -ECONNREFUSED;
	}
	char sql[160];
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	int rc = pg_exec(pg, sql, err, err_size);
	PQfinish(pg);
	if (rc < 0)
		return rc;
	rc = url_with_db(url, name, new_url, new_url_size);
	if (rc < 0)
		bb_errf(err, err_size, "database URL too long");
	return rc;
}

int bb_pg_drop_db(const char *url, const char *name)
{
	char err[BB_ERR_SIZE], sql[160];
	PGconn *pg = PQconnectdb(url);
	if (PQstatus(pg) != CONNECTION_OK) {
		PQfinish(pg);
		return -ECONNREFUSED;
	}
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		 name);
	int rc = pg_exec(pg, sql, err, sizeof(err));
	PQfinish(pg);
	return rc;
}

bool bb_pg_url_is_unix(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *host = NULL, *hostaddr = NULL;
	bool unix_socket;

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	if (host == NULL || host[0] == 0)
		host = getenv("PGHOST"); /* libpq's default, as it connects */
	/* libpq: no host is its socket directory; a host starting with '/'
	 * (or '@', Linux's abstract namespace) is a socket's directory */
	unix_socket = (hostaddr == NULL || hostaddr[0] == 0) &&
		      (host == NULL || host[0] == 0 || host[0] == '/' ||
		       host[0] == '@');
	PQconninfoFree(opts);
	return unix_socket;
}

/* "{1,2,3}": ids[i] where want[i] == pick (want NULL: all), as a bigint[]
 * literal; malloc'ed. */
static char *id_array(const uint64_t *ids, const uint8_t *want, uint8_t pick,
		      size_t count)
{
	size_t cap = count * 21 + 4;
	char *arr = malloc(cap);
	if (arr == NULL)
		return NULL;
	size_t used = 0;
	arr[used++] = '{';
	bool first = true;
	for (size_t i = 0; i < count; i++) {
		if (want != NULL && want[i] != pick)
			continue;
		used += (size_t)snprintf(arr + used, cap - used, "%s%" PRIu64,
					 first ? "" : ",", ids[i]);
		first = false;
	}
	arr[used++] = '}';
	arr[used] = 0;
	return arr;
}

/* How many of the bookings (ids) are in public.registrations with a status
 * in statuses (an SQL list); -1 on error. */
static long count_in(PGconn *pg, const char *arr, const char *statuses)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM public.registrations WHERE id = ANY ($1::bigint[]) "
		 "AND status IN (%s)",
		 statuses);
	const char *params[1] = { arr };
	PGresult *res = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
	long n = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		n = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

/* bookd's replicated tables against bookd's own counts: waits up to wait_s
 * for them to agree (bookbench.h). */
int bb_pg_replica_check(const char *url, const uint64_t *event_ids,
			const uint32_t *booked, size_t count,
			const uint64_t *booking_ids, const uint8_t *cancelled,
			size_t booking_count, double wait_s, char *report,
			size_t report_size)
{
	PGconn *pg = PQconnectdb(url);
	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(report, report_size, "replication: cannot connect: %s",
			 PQerrorMessage(pg));
		PQfinish(pg);
		return -ECONNREFUSED;
	}
	char *arr = id_array(event_ids, NULL, 0, count);
	char *active_arr = id_array(booking_ids, cancelled, 0, booking_count);
	char *cancel_arr = id_array(booking_ids, cancelled, 1, booking_count);
	size_t n_cancelled = 0;
	for (size_t i = 0; i < booking_count; i++)
		n_cancelled += cancelled[i] != 0;
	if (arr == NULL || active_arr == NULL || cancel_arr == NULL) {
		free(arr);
		free(active_arr);
		free(cancel_arr);
		PQfinish(pg);
		return -ENOMEM;
	}
	const char *sql =
		"SELECT e.id, e.reg_count, (SELECT count(*) FROM public.registrations r "
		"WHERE r.event_id = e.id AND r.status = 'confirmed') "
		"FROM public.class_events e WHERE e.id = ANY ($1::bigint[])";
	const char *params[1] = { arr };
	/* bookd's counts by event id, sorted for the look-ups */
	struct idc {
		uint64_t id;
		uint32_t booked;
	} *sorted = malloc((count + 1) * sizeof(*sorted));
	if (sorted == NULL) {
		free(arr);
		PQfinish(pg);
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		sorted[i].id = event_ids[i];
		sorted[i].booked = booked[i];
	}
	qsort(sorted, count, sizeof(*sorted), idc_cmp);
	int64_t start = bb_now_ns();
	long differ = -1, seen = 0, active_there = -1, cancelled_there = -1;
	for (;;) {
		PGresult *res =
			PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(report, report_size,
				 "replication: query failed: %s",
				 PQerrorMessage(pg));
			PQclear(res);
			differ = -1;
			break;
		}
		int rows = PQntuples(res);
		seen = rows;
		differ = (long)count - rows;
		for (int i = 0; i < rows; i++) {
			struct idc key = { .id = strtoull(PQgetvalue(res, i, 0),
							  NULL, 10) };
			long reg = atol(PQgetvalue(res, i, 1));
			long conf = atol(PQgetvalue(res, i, 2));
			const struct idc *at =
				bsearch(&key, sorted, count, sizeof(*sorted),
					idc_cmp);
			if (at == NULL || reg != (long)at->booked ||
			    conf != (long)at->booked)
				differ++;
		}
		PQclear(res);
		active_there =
			count_in(pg, active_arr,
				 "'confirmed', 'pending_payment', 'waitlisted'");
		cancelled_there = count_in(pg, cancel_arr, "'cancelled'");
		bool bookings_ok =
			active_there == (long)(booking_count - n_cancelled) &&
			cancelled_there == (long)n_cancelled;
		if ((differ == 0 && bookings_ok) ||
		    (double)(bb_now_ns() - start) / 1e9 >= wait_s)
			break;
		usleep(500000);
	}
	free(sorted);
	free(active_arr);
	free(cancel_arr);
	if (differ >= 0) {
		long missing = (long)(booking_count - n_cancelled) -
			       active_there + (long)n_cancelled -
			       cancelled_there;
		if (missing != 0)
			differ += 1;
		size_t used = strlen(report);
		snprintf(report + used, report_size - used,
			 "%s%zu acknowledged bookings: %ld active and %ld cancelled there as "
			 "expected, %ld not (missing or in another state); ",
			 used ? "" : "replication: ", booking_count,
			 active_there, cancelled_there, missing);
	}
	if (differ >= 0) {
		size_t used = strlen(report);
		snprintf(report + used, report_size - used,
			 "%zu events compared with PostgreSQL (%ld there), reg_count and confirmed "
			 "registrations vs bookd's booked: problems %ld, after %.1f s",
			 count, seen, differ,
			 (double)(bb_now_ns() - start) / 1e9);
	}
	free(arr);
	PQfinish(pg);
	return differ < 0 ? -EIO : (int)differ;
}

const struct bb_driver bb_driver_pg = {
	.name = "baseline-pg",
	.inflight_max = 1,
	BB_DRIVER_FUNCS(pg),
	.check = pg_check,
};
