/*
 * bench_node.c: the durable node (core + write-ahead log) under load.
 *
 *   bench_node [--dir D] [--series N] [--bookings N] [--depth D]
 *              [--sync fdatasync|write] [--log-syncs 1|2]
 *
 * 1. Creates N daily series (default 20000: 2.4 million events over 120
 *    days) through the catalogue, logged like any decision.
 * 2. Books --bookings times (default 2 million) from one producer thread
 *    keeping --depth requests in flight; a booking counts once its log
 *    record is durable. Prints durable bookings/s and the log's batches.
 * 3. Takes a snapshot (time parked, total time, size).
 * 4. Closes and reopens the node: recovery time from the snapshot and the
 *    log after it.
 * The data directory (default a fresh one under /tmp) is removed at the end.
 */
#include "node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

const char *bench_name = "bench_node";

static node *open_node(const char *dir, uint32_t series, uint64_t bookings,
		       enum wal_sync sync, unsigned log_syncs)
{
	struct node_config cfg;
	char err[256];
	node *n;

	node_config_default(&cfg);
	cfg.data_dir = dir;
	cfg.sync = sync;
	cfg.log_syncs = log_syncs; /* bookd's --log-syncs */
	cfg.core.shard_count = 2;
	cfg.core.port_count = 2;
	cfg.core.event_count_max = series * 121 / 2 + 4096;
	cfg.core.booking_count_max =
		(uint32_t)(bookings / 2 + bookings / 8 + 4096);
	cfg.core.customer_count_max = CUSTOMER_COUNT;
	cfg.core.idem_count_max = 1024;
	cfg.core.ring_size = 1024;
	cfg.core.horizon_days = 119;
	if (node_open(&cfg, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_node: %s\n", err);
		exit(1);
	}
	return n;
}

int main(int argc, char **argv)
{
	char dir_buf[] = "/tmp/bench_node.XXXXXX";
	const char *dir = NULL;
	uint32_t series = 20000, depth = 512;
	unsigned log_syncs = 1;
	uint64_t bookings = 2000000, seed = 1;
	enum wal_sync sync = WAL_SYNC_FDATASYNC;
	struct wal_stats ws0, ws1;
	double t0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--series"))
			series = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--bookings"))
			bookings = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--depth"))
			depth = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--sync"))
			sync = strcmp(argv[i + 1], "write") ? WAL_SYNC_FDATASYNC
							    : WAL_SYNC_WRITE;
		else if (!strcmp(argv[i], "--log-syncs"))
			log_syncs = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else
			die("usage: bench_node [--dir D] [--series N] [--bookings N] [--depth D] [--sync fdatasync|write] [--log-syncs 1|2]");
	}
	if (depth == 0 || depth > 1024)
		die("--depth: 1..1024");
	if (!dir && !(dir = mkdtemp(dir_buf)))
		die("mkdtemp");

	node *n = open_node(dir, series, bookings, sync, log_syncs);
	core_port *p = core_port_get(node_core(n), 1);

	/* 1. The catalogue and 120 days of classes. */
	t0 = seconds();
	static struct core_series_spec spec;
	bench_studio(p, &spec, 20, 10);
	uint64_t events = 0, lsn = 0;
	for (uint32_t i = 0; i < series; i++) {
		spec.start_minute = (uint16_t)(360 + i % 900);
		struct core_resp r =
			call(p, (struct core_req){ .op = CORE_OP_SERIES_CREATE,
						   .now = NOW,
						   .u.series = &spec });
		events += r.count;
		lsn = r.lsn;
	}
	node_wait_durable(n, lsn);
	printf("catalogue: %u series, %" PRIu64 " events, durable in %.1f s\n",
	       series, events, seconds() - t0);

	/* 2. Durable bookings, pipelined. */
	struct core_resp out[64];
	uint64_t sent = 0, decided = 0, durable = 0, ok = 0, max_lsn = 0;
	static uint64_t pending_lsn[1024];
	uint32_t head = 0, tail = 0; /* FIFO of decided, not yet durable */
	wal_stats(node_wal(n), &ws0);
	t0 = seconds();
	while (durable < bookings) {
		sent = bench_book_some(p, sent, bookings, durable, depth, &seed,
				       events);
		int k = core_poll(p, out, 64);
		for (int i = 0; i < k; i++) {
			ok += out[i].code == CORE_OK;
			if (out[i].lsn > max_lsn)
				max_lsn = out[i].lsn;
			/* A refusal made no record: it may go at once, but
			 * answers leave in order behind the durable ones. */
			pending_lsn[tail++ % 1024] = max_lsn;
			ASSERT(tail - head <=
			       1024); /* no more decided than --depth <= 1024 */
			decided++;
		}
		uint64_t d = wal_durable_lsn(node_wal(n));
		while (head != tail && pending_lsn[head % 1024] <= d) {
			head++;
			durable++;
		}
		if (k == 0 && head != tail && sent - durable == depth)
			wal_wait_durable(node_wal(n), pending_lsn[head % 1024]);
	}
	double dt = seconds() - t0;
	wal_stats(node_wal(n), &ws1);
	uint64_t batches = ws1.batch_count - ws0.batch_count;
	uint64_t syncs = ws1.sync_count - ws0.sync_count;
	printf("bookings: %" PRIu64 " durable answers (%" PRIu64
	       " booked) in %.2f s: "
	       "%.0f/s; %" PRIu64 " batches (%.0f records each), %" PRIu64
	       " fdatasyncs (%.0f/s, mean %.0f us)\n",
	       durable, ok, dt, (double)durable / dt, batches,
	       batches ? (double)(ws1.appended_lsn - ws0.appended_lsn) /
				 (double)batches
		       : 0,
	       syncs, (double)syncs / dt,
	       syncs ? (double)(ws1.sync_ns_total - ws0.sync_ns_total) /
			       (double)syncs / 1e3
		     : 0);

	/* 3. A snapshot of it all. */
	t0 = seconds();
	if (node_snapshot(n) != 0)
		die("snapshot");
	printf("snapshot: %.2f s (the node prints its pause and size above)\n",
	       seconds() - t0);
	node_close(n);

	/* 4. Recovery. */
	t0 = seconds();
	n = open_node(dir, series, bookings, sync, log_syncs);
	printf("recovery: %.2f s\n", seconds() - t0);
	node_close(n);

	if (dir == dir_buf)
		bench_remove_dir(dir_buf);
	return 0;
}
