/*
 * node.h: one bookd node: the sharded core made durable by the write-ahead
 * log. What bookd runs, and what the crash tests drive.
 *
 * node_open recovers (newest snapshot, then the log after it), then starts
 * the core and the log. Every decision's entry is appended to the log before
 * it is applied; its answer carries resp.lsn, and may be sent only once
 * node_durable(n, resp.lsn) (or node_wait_durable). If the log fails (disk
 * full, EIO), decisions are refused with CORE_FULL and nothing is applied;
 * reads go on.
 */
#ifndef BOOKD_NODE_H
#define BOOKD_NODE_H

#include "core.h"
#include "wal.h"

typedef struct node node;

struct node_config {
	const char *data_dir;
	struct core_config core; /* its log hook is set by the node */
	enum wal_sync sync;	 /* default WAL_SYNC_FDATASYNC */
	uint64_t segment_size;	 /* 0: the log's default */
	unsigned log_syncs;	 /* wal_config.syncs_in_flight (0: 1) */
	bool cut_corrupt;	 /* see wal_config */
	/* Not 0: recover only the records before this LSN; the log is cut
	 * there (wal_cut_before) before replay. For a record that cannot
	 * be applied. Must be after the newest snapshot. */
	uint64_t recover_stop_before;
	bool quiet; /* no recovery summary on stderr */
	/* The log in manual mode (wal_config.manual): the caller runs its
	 * writer with wal_step(node_wal(n)); no thread is started (nor the
	 * snapshotter). For the deterministic simulator, tests/sim/. */
	bool manual_log;
	/* A background snapshot once the log grew by this many records
	 * (checked every second); 0: only node_snapshot(). */
	uint64_t snapshot_every;
	/* Extra eventfds the log writes after each durable advance (see
	 * wal_event_fd_add): one per thread that waits for durability; with
	 * wake_idle (NULL, or one flag or NULL per fd), only while its flag
	 * says the thread sleeps. */
	const int *wake_fds;
	const _Atomic bool *const *wake_idle;
	unsigned wake_fd_count;
};

void node_config_default(struct node_config *cfg);
int node_open(const struct node_config *cfg, node **out, char *err,
	      size_t err_size);
void node_close(node *n);

core *node_core(node *n);
wal *node_wal(node *n);
bool node_durable(node *n, uint64_t lsn);
int node_wait_durable(node *n, uint64_t lsn);

/* Writes a snapshot: the core is parked only to fork; a child process
 * serialises the frozen copy while bookings go on. Old snapshots and
 * covered segments go (wal_snapshot_commit). Blocks its caller until the
 * snapshot is durable. */
int node_snapshot(node *n);

#endif
