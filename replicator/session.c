/*
 * session.c: a session of the main thread: connect the streams, migrate,
 * load where each stream is (replication_state), ensure the partitions
 * ahead (maint.c), open the log reader after the smallest position; after
 * each batch, move the positions (repl__batch_done: applied_lsn is what
 * every stream has, and the log is retained from applied_lsn + 1). When
 * the log before that is gone (-ENODATA), resync: the newest snapshot is
 * applied on stream 0 (its records are absolute: upserts), then every
 * stream's position = the snapshot's LSN, and tailing resumes after it.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPL_RESYNC_ATTEMPT_MAX 3

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sessions: connect, migrate, position, reader ---------------------------- */

void repl__session_close(repl *r)
{
	if (r->reader) {
		wal_reader_close(r->reader);
		r->reader = NULL;
	}
	pthread_mutex_lock(&r->lock);
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		if (r->cancel[k]) {
			PQfreeCancel(r->cancel[k]);
			r->cancel[k] = NULL;
		}
	pthread_mutex_unlock(&r->lock);
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		if (r->conn[k]) {
			PQfinish(r->conn[k]);
			r->conn[k] = NULL;
		}
	repl__set_connected(r, false);
}

/* A new batch, each part knowing where its stream is. */
void repl__batch_start(repl *r, struct batch *b)
{
	ASSERT(r->streams >= 1 && r->streams <= REPL_STREAM_MAX);
	repl__batch_reset(b, wall_ms());
	b->parts = r->streams;
	for (uint32_t k = 0; k < REPL_STREAM_MAX; k++)
		b->part[k].from =
			k < r->streams ? r->stream_lsn[k] : UINT64_MAX;
}

/* After a batch, whole or not: the streams that committed are at `to`
 * (a resync's batch moves them all, when move); applied_lsn is what every
 * stream has. */
void repl__batch_done(repl *r, const struct batch *b, uint64_t to, bool move,
		      double seconds)
{
	uint64_t lo = UINT64_MAX;
	bool whole = true;

	for (uint32_t k = 0; k < r->streams; k++) {
		const struct part *p = &b->part[b->snapshot ? 0 : k];

		if (p->committed && move && r->stream_lsn[k] < to)
			r->stream_lsn[k] = to; /* (one ahead only inserted
						* customers) */
		if (r->stream_lsn[k] < lo)
			lo = r->stream_lsn[k];
		whole &= r->stream_lsn[k] >= to;
	}
	ASSERT(r->streams >= 1 && lo != UINT64_MAX);
	ASSERT(!whole || lo >= to);
	pthread_mutex_lock(&r->lock);
	ASSERT(lo >= r->st.applied_lsn); /* positions only move forward */
	r->st.applied_lsn = lo;
	for (uint32_t k = 0; k < (b->snapshot ? 1 : r->streams); k++)
		if (b->part[k].committed)
			r->st.rows_written += repl__part_rows(&b->part[k]);
	if (whole) {
		r->st.batch_count++;
		r->st.records_applied += b->records;
		r->st.entries_applied += b->entries;
		r->st.last_batch_ms = seconds * 1000;
		r->bytes_applied += b->bytes;
	}
	repl__lag_pop(r);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	wal_retain(r->w, lo + 1);
	if (whole) /* these customers exist now */
		for (uint32_t i = 0; i < b->bk_count; i++)
			if (b->bk[i].kind != BK_SET)
				repl__custset_add(&r->customers,
						  b->bk[i].customer);
}

static PGconn *pg_connect(repl *r, uint32_t k, char *err, size_t es)
{
	/* Before dbname: the conninfo's own settings win. Keepalives find a
	 * dead server on TCP within a minute. */
	const char *keys[] = { "connect_timeout",
			       "keepalives_idle",
			       "keepalives_interval",
			       "keepalives_count",
			       "application_name",
			       "dbname",
			       NULL };
	const char *vals[] = { "5",	    "30", "10", "3", "bookd-replicator",
			       r->conninfo, NULL };
	PGconn *c;

	ASSERT(k < REPL_STREAM_MAX && !r->conn[k]);
	c = PQconnectdbParams(keys, vals, 1);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		char msg[300];
		repl__one_line(msg, sizeof(msg),
			       c ? PQerrorMessage(c) : "out of memory");
		snprintf(err, es, "cannot connect to PostgreSQL: %s", msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, repl__pg_notice_quiet, NULL);
	r->conn[k] = c;
	pthread_mutex_lock(&r->lock);
	r->cancel[k] = PQgetCancel(c);
	pthread_mutex_unlock(&r->lock);
	return c;
}

/* Where each stream is, from replication_state, into r->stream_lsn and
 * r->streams: the configured count when all are at one LSN (a row from
 * before streams, or another count, is set to it), else the stored count
 * until the streams behind have caught up (a batch committed on some
 * streams only). */
static int streams_load(repl *r, char *err, size_t es)
{
	const char *p[1] = { r->log_id };
	char n_s[12], v_s[24];
	const char *pu[3] = { r->log_id, n_s, v_s };
	PGresult *res;
	bool equal = true;
	int rows, rc;

	rc = repl__pg_run(
		r->conn[0], "replication_state",
		"SELECT u.v, s.streams IS NULL FROM bookd.replication_state s,"
		" unnest(coalesce(s.streams, ARRAY[s.applied_lsn]))"
		" WITH ORDINALITY u(v, i) WHERE s.log_id = $1 ORDER BY u.i",
		1, p, PGRES_TUPLES_OK, &res, err, es);
	if (rc)
		return rc;
	rows = PQntuples(res);
	for (int i = 0; i < rows && i < REPL_STREAM_MAX; i++) {
		int64_t v;

		if (PQnfields(res) != 2 ||
		    !repl__parse_i64(PQgetvalue(res, i, 0), &v) || v < 0) {
			rows = 0;
			break;
		}
		r->stream_lsn[i] = (uint64_t)v;
		equal &= r->stream_lsn[i] == r->stream_lsn[0];
	}
	bool legacy = rows > 0 && PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (rows < 1 || rows > REPL_STREAM_MAX) {
		snprintf(err, es,
			 "replication_state of log '%s': unexpected "
			 "streams (%d)",
			 r->log_id, rows);
		return -EPROTO;
	}
	r->streams = (uint32_t)rows;
	if (!equal) {
		repl__say(r,
			  "%d streams at different LSNs (a batch committed on some "
			  "only): those behind catch up first",
			  rows);
		return 0;
	}
	if (!legacy && r->streams == r->cfg.streams)
		return 0;
	snprintf(n_s, sizeof(n_s), "%u", r->cfg.streams);
	snprintf(v_s, sizeof(v_s), "%" PRIu64, r->stream_lsn[0]);
	rc = repl__pg_update_one(
		r->conn[0], "replication_state",
		"UPDATE bookd.replication_state SET streams ="
		" array_fill($3::bigint, ARRAY[$2::int]) WHERE log_id = $1"
		" AND applied_lsn = $3::bigint AND coalesce(streams,"
		" ARRAY[applied_lsn]) <@ ARRAY[$3::bigint]",
		3, pu, err, es);
	if (rc == -EUCLEAN)
		snprintf(err, es,
			 "replication_state of log '%s' moved while "
			 "starting: another replicator applies this log",
			 r->log_id);
	if (rc)
		return rc;
	r->streams = r->cfg.streams;
	for (uint32_t k = 1; k < r->streams; k++)
		r->stream_lsn[k] = r->stream_lsn[0];
	return 0;
}

/* Stream k's connection with its session's staging tables (conn[0]: the
 * schema migrated first). */
static int stream_open(repl *r, uint32_t k, char *err, size_t es)
{
	int rc;

	if (!pg_connect(r, k, err, es))
		return REPL_TRANSIENT;
	rc = k == 0 ? repl__migrate(r, err, es) : 0;
	if (!rc)
		rc = repl__pg_run(r->conn[k], "staging tables", repl__sql_stage,
				  0, NULL, PGRES_COMMAND_OK, NULL, err, es);
	return rc;
}

int repl__session_open(repl *r, char *err, size_t es)
{
	const char *p[1] = { r->log_id };
	uint64_t applied = UINT64_MAX, top = 0, durable;
	int rc;

	ASSERT(!r->conn[0] && !r->reader); /* session_close before */
	rc = stream_open(r, 0, err, es);
	if (!rc)
		rc = repl__pg_run(
			r->conn[0], "replication_state",
			"INSERT INTO bookd.replication_state (log_id, streams)"
			" VALUES ($1, '{0}') ON CONFLICT (log_id) DO NOTHING",
			1, p, PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = streams_load(r, err, es);
	if (rc)
		return rc;
	ASSERT(r->streams >= 1 && r->streams <= REPL_STREAM_MAX);
	for (uint32_t k = 0; k < r->streams; k++) {
		applied =
			r->stream_lsn[k] < applied ? r->stream_lsn[k] : applied;
		top = r->stream_lsn[k] > top ? r->stream_lsn[k] : top;
	}
	ASSERT(applied <= top);
	durable = wal_durable_lsn(r->w);
	if (top > durable) {
		snprintf(err, es,
			 "PostgreSQL has log '%s' applied up to LSN %" PRIu64
			 " but the log ends at %" PRIu64
			 ": another log's data (set another log_id) or a lost log",
			 r->log_id, top, durable);
		return -EUCLEAN;
	}
	for (uint32_t k = 1; !rc && k < r->streams; k++)
		rc = stream_open(r, k, err, es);
	if (!rc)
		rc = repl__partitions_job(r, err, es);
	if (rc)
		return rc;

	pthread_mutex_lock(&r->lock);
	r->st.applied_lsn = applied;
	r->schema_ready = true;
	r->connected = true;
	repl__lag_pop(r);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);

	wal_retain(r->w, applied + 1);
	rc = wal_reader_open(r->w, applied + 1, &r->reader);
	if (rc == -ENODATA)
		return repl__resync(r, err, es);
	if (rc) {
		snprintf(err, es,
			 "cannot read the log from LSN %" PRIu64 ": %s",
			 applied + 1, strerror(-rc));
		return rc;
	}
	repl__say(r,
		  "connected (%u stream%s); log '%s' applied up to LSN %" PRIu64
		  ", log at %" PRIu64,
		  r->streams, r->streams == 1 ? "" : "s", r->log_id, applied,
		  durable);
	return 0;
}

/* The snapshot's records (absolute: upserts) applied on stream 0, in
 * batches cut only before an event (an event's capacity and its bookings
 * go together): each moves no stream (the guard only), the last moves every
 * stream to snap_lsn. 0 or -errno with r->b.err. */
static int resync_apply(repl *r, const void *snap, size_t size,
			uint64_t snap_lsn, uint64_t applied)
{
	struct batch *b = &r->b;
	size_t pos = 0;
	const void *entry;
	size_t entry_size;
	int rc = 0;

	ASSERT(snap_lsn > applied);
	repl__batch_start(r, b);
	b->snapshot = true;
	while (!rc && (rc = core_snapshot_next(snap, size, &pos, &entry,
					       &entry_size)) > 0) {
		struct core_rec c;
		size_t at = 0;
		int n;

		rc = 0;
		while (!rc &&
		       (n = core_entry_next(entry, entry_size, &at, &c)) > 0) {
			/* Cut only before an event: an event's
			 * capacity and its bookings go together. */
			if (c.type == CORE_REC_EVENT_CREATE &&
			    b->records >= r->cfg.batch_records / 2) {
				b->first_lsn = b->last_lsn = snap_lsn;
				rc = repl__apply_batch(r, b, applied, false);
				if (rc)
					break;
				repl__batch_done(r, b, applied, false, 0);
				repl__batch_start(r, b);
				b->snapshot = true;
			}
			rc = repl__batch_add(b, &c, snap_lsn, 0);
			b->records++;
			if (!rc && (b->bk_count + 1 >= b->cap ||
				    b->ev_count + 1 >= b->cap)) {
				/* one event with more bookings than a
				 * batch holds: not expected (24-bit
				 * sequence, batch >= 10k) */
				snprintf(b->err, sizeof(b->err),
					 "resync: an event with more bookings "
					 "than a batch holds");
				rc = -E2BIG;
			}
		}
		if (!rc && n < 0) {
			snprintf(b->err, sizeof(b->err),
				 "snapshot at LSN %" PRIu64 ": an entry does "
				 "not decode",
				 snap_lsn);
			rc = -EUCLEAN;
		}
	}
	if (rc < 0 && b->err[0] == '\0')
		snprintf(b->err, sizeof(b->err),
			 "snapshot at LSN %" PRIu64 " is malformed", snap_lsn);
	if (!rc) {
		b->entries = 1;
		b->first_lsn = b->last_lsn = snap_lsn;
		rc = repl__apply_batch(r, b, snap_lsn, true);
	}
	return rc;
}

/* The log before applied_lsn + 1 is gone: apply the newest snapshot (its
 * records are absolute), then tail after it. */
int repl__resync(repl *r, char *err, size_t es)
{
	for (int attempt = 0; attempt < REPL_RESYNC_ATTEMPT_MAX; attempt++) {
		uint64_t applied = r->st.applied_lsn, snap_lsn = 0, top = 0;
		void *snap = NULL;
		size_t size = 0;
		char lerr[256];
		struct batch *b = &r->b;
		int rc;

		if (!r->data_dir) {
			snprintf(err, es,
				 "the log from LSN %" PRIu64
				 " was removed and no "
				 "data_dir is set to resynchronise from a snapshot",
				 applied + 1);
			return -ENODATA;
		}
		rc = wal_snapshot_load(r->data_dir, &snap_lsn, &snap, &size,
				       lerr, sizeof(lerr));
		if (rc) {
			snprintf(err, es, "resync: no snapshot: %s", lerr);
			return rc;
		}
		for (uint32_t k = 0; k < r->streams; k++)
			top = r->stream_lsn[k] > top ? r->stream_lsn[k] : top;
		if (snap_lsn <= applied || snap_lsn < top) {
			free(snap);
			snprintf(err, es,
				 "the log lacks LSN %" PRIu64 " and the newest "
				 "snapshot is at %" PRIu64
				 ": cannot resynchronise",
				 applied + 1, snap_lsn);
			return -ENODATA;
		}
		repl__say(r,
			  "log from LSN %" PRIu64
			  " removed: resynchronising from "
			  "the snapshot at LSN %" PRIu64 " (%zu bytes)",
			  applied + 1, snap_lsn, size);
		rc = resync_apply(r, snap, size, snap_lsn, applied);
		free(snap);
		if (rc) {
			snprintf(err, es, "resync: %.400s", b->err);
			return rc;
		}
		repl__batch_done(r, b, snap_lsn, true, 0);
		pthread_mutex_lock(&r->lock);
		r->st.resync_count++;
		pthread_mutex_unlock(&r->lock);
		repl__say(r, "resynchronised at LSN %" PRIu64, snap_lsn);
		rc = wal_reader_open(r->w, snap_lsn + 1, &r->reader);
		if (rc == 0)
			return 0;
		if (rc != -ENODATA) {
			snprintf(err, es,
				 "cannot read the log from LSN %" PRIu64 ": %s",
				 snap_lsn + 1, strerror(-rc));
			return rc;
		}
	}
	snprintf(err, es, "resync: the log keeps moving past the snapshots");
	return REPL_TRANSIENT;
}
