/*
 * node.c: the core made durable by the write-ahead log (api/node.h).
 *
 * Start-up: the newest snapshot whose checksum verifies (wal/), the log
 * opened and its tail checked (a torn tail is cut, corruption before the
 * tail stops start-up), the core opened and parked, the snapshot loaded and
 * every record after it replayed, the core unparked, the log writer
 * started. Progress and the time taken go to stderr.
 *
 * Running: the core's log hook appends each entry to the log (any shard
 * thread may call it; the log takes many appenders) and returns its LSN.
 * Answers wait for that LSN to be durable (group commit: one fdatasync for
 * all the records of a batch).
 *
 * Snapshots: the core is parked (every entry handed to the log is then
 * applied, so the state is exactly the log up to its last LSN), serialises
 * itself into memory, and is unparked; the bytes are then written, synced
 * and renamed by the log while bookings go on.
 */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct node {
	core *core;
	wal *wal;
	bool quiet;
};

void node_config_default(struct node_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = "./data";
	core_config_default(&cfg->core);
	cfg->sync = WAL_SYNC_FDATASYNC;
}

static int node_log(void *ctx, unsigned lane, const void *entry, size_t size,
		    uint64_t *lsn)
{
	node *n = ctx;

	(void)lane;
	return wal_append(n->wal, entry, size, lsn);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct replay {
	core *core;
	uint64_t count, bytes, lsn;
	int rc;
};

static int replay_one(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct replay *r = ctx;
	int rc = core_replay(r->core, payload, size);

	if (rc) {
		r->rc = rc;
		r->lsn = lsn;
		return rc;
	}
	r->count++;
	r->bytes += size;
	return 0;
}

int node_open(const struct node_config *cfg, node **out, char *err,
	      size_t err_size)
{
	struct wal_config wcfg;
	struct core_config ccfg = cfg->core;
	struct replay rp = { 0 };
	uint64_t snap_lsn = 0;
	void *snap = NULL;
	size_t snap_size = 0;
	double t0 = now_s(), t_snap;
	node *n;
	int rc;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->quiet = cfg->quiet;

	wal_config_default(&wcfg);
	wcfg.dir = cfg->data_dir;
	wcfg.sync = cfg->sync;
	wcfg.cut_corrupt = cfg->cut_corrupt;
	if (cfg->segment_size)
		wcfg.segment_size = cfg->segment_size;
	/* wal_open first: it creates the directory and takes its lock. */
	rc = wal_open(&wcfg, &n->wal, err, err_size);
	if (rc)
		goto out_free;
	rc = wal_snapshot_load(cfg->data_dir, &snap_lsn, &snap, &snap_size, err,
			       err_size);
	if (rc == -ENOENT) {
		snap_lsn = 0;
	} else if (rc) {
		goto out_close_wal;
	}

	ccfg.log = node_log;
	ccfg.log_ctx = n;
	rc = core_open(&ccfg, &n->core);
	if (rc) {
		snprintf(err, err_size, "cannot start the core: %s", strerror(-rc));
		goto out_close_wal;
	}
	rp.core = n->core;
	core_park(n->core);
	if (snap) {
		rc = core_snapshot_load(n->core, snap, snap_size);
		if (rc) {
			snprintf(err, err_size,
				 "snapshot at LSN %" PRIu64 " does not load: %s",
				 snap_lsn, strerror(-rc));
			core_unpark(n->core);
			goto out_close_core;
		}
	}
	t_snap = now_s();
	rc = wal_replay(n->wal, snap_lsn + 1, replay_one, &rp);
	core_unpark(n->core);
	if (rc) {
		if (rp.rc)
			snprintf(err, err_size,
				 "log record %" PRIu64 " does not apply: %s",
				 rp.lsn, strerror(-rp.rc));
		else
			snprintf(err, err_size, "log replay failed: %s",
				 strerror(-rc));
		goto out_close_core;
	}
	rc = wal_start(n->wal);
	if (rc) {
		snprintf(err, err_size, "cannot start the log: %s", strerror(-rc));
		goto out_close_core;
	}
	if (!n->quiet)
		fprintf(stderr,
			"bookd: recovered: snapshot at LSN %" PRIu64
			" (%zu bytes, %.3f s), replayed %" PRIu64
			" records (%" PRIu64 " bytes) in %.3f s\n",
			snap_lsn, snap_size, t_snap - t0, rp.count, rp.bytes,
			now_s() - t_snap);
	free(snap);
	*out = n;
	return 0;

out_close_core:
	core_close(n->core);
out_close_wal:
	wal_close(n->wal);
out_free:
	free(snap);
	free(n);
	return rc;
}

void node_close(node *n)
{
	if (!n)
		return;
	core_close(n->core); /* no more appends after this */
	wal_close(n->wal);   /* drains and syncs */
	free(n);
}

core *node_core(node *n) { return n->core; }
wal *node_wal(node *n) { return n->wal; }

bool node_durable(node *n, uint64_t lsn)
{
	return wal_durable_lsn(n->wal) >= lsn;
}

int node_wait_durable(node *n, uint64_t lsn)
{
	return lsn ? wal_wait_durable(n->wal, lsn) : 0;
}

struct membuf {
	uint8_t *data;
	size_t size, capacity;
};

static int membuf_write(void *ctx, const void *buf, size_t size)
{
	struct membuf *m = ctx;

	if (m->size + size > m->capacity) {
		size_t cap = m->capacity ? m->capacity : (1u << 20);
		while (cap < m->size + size)
			cap *= 2;
		uint8_t *p = realloc(m->data, cap);
		if (!p)
			return -ENOMEM;
		m->data = p;
		m->capacity = cap;
	}
	memcpy(m->data + m->size, buf, size);
	m->size += size;
	return 0;
}

int node_snapshot(node *n)
{
	struct membuf m = { 0 };
	struct wal_stats st;
	wal_snap *snap;
	double t0 = now_s(), t_parked;
	int rc;

	core_park(n->core);
	wal_stats(n->wal, &st); /* parked: every appended entry is applied */
	rc = core_snapshot_write(n->core, membuf_write, &m);
	core_unpark(n->core);
	t_parked = now_s() - t0;
	if (rc)
		goto out;
	rc = wal_snapshot_begin(n->wal, st.appended_lsn, &snap);
	if (rc)
		goto out;
	rc = wal_snapshot_write(snap, m.data, m.size);
	if (rc) {
		wal_snapshot_abort(snap);
		goto out;
	}
	rc = wal_snapshot_commit(snap);
	if (rc == 0 && !n->quiet)
		fprintf(stderr,
			"bookd: snapshot at LSN %" PRIu64 ": %zu bytes, "
			"parked %.1f ms, %.1f ms in all\n",
			st.appended_lsn, m.size, t_parked * 1e3,
			(now_s() - t0) * 1e3);
out:
	free(m.data);
	return rc;
}
