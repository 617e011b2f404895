/*
 * wal.h: the write-ahead log of bookd (public API).
 *
 * A payload-agnostic, checksummed, segmented log of records numbered by LSN
 * (1, 2, 3, ... no gaps). Appenders on many threads get their LSN at once;
 * one writer thread makes batches durable with one write + one fdatasync
 * (group commit); callers answer only once wal_durable_lsn() covers them.
 * Snapshots of the caller's state let old segments go. The byte format and
 * the recovery rules are in wal.c and docs/wal.md.
 *
 * Life cycle:
 *   wal_snapshot_load()  (optional: newest state and its LSN s)
 *   wal_open()           (locks the directory, recovers the tail)
 *   wal_cut_before()     (optional: the operator's way past a record)
 *   wal_replay(s + 1)    (records after the snapshot)
 *   wal_start()          (starts the writer)
 *   wal_append() / wal_wait_durable() / wal_snapshot_*() ...
 *   wal_reader_*()       (tail the durable log from another thread)
 *   wal_close()
 *
 * Functions return 0 or -errno. wal_open() also fills a caller's buffer
 * with a one-line message on failure.
 */
#ifndef BOOKD_WAL_H
#define BOOKD_WAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WAL_RECORD_SIZE_MAX (64u * 1024) /* payload bytes */
#define WAL_SEGMENT_SIZE_DEFAULT (64ull << 20)
#define WAL_SEGMENT_SIZE_MIN (128ull << 10) /* holds a maximal record */
#define WAL_SEGMENT_SIZE_MAX (1ull << 30)
#define WAL_BUFFER_SIZE_DEFAULT (8u << 20)
#define WAL_BUFFER_SIZE_MIN (256u << 10) /* two halves >= a record */
#define WAL_BUFFER_SIZE_MAX (1u << 30)
#define WAL_SYNCS_IN_FLIGHT_MAX 2 /* wal_config.syncs_in_flight */

/* The on-disk layout (docs/wal.md has it byte by byte). */
#define WAL_SEGMENT_HEADER_SIZE 64
#define WAL_RECORD_HEADER_SIZE 32
#define WAL_RECORD_ALIGN 8

typedef struct wal wal;

enum wal_sync {
	WAL_SYNC_FDATASYNC = 0, /* default: durable = after fdatasync */
	WAL_SYNC_WRITE,		/* durable = after write(2) reached the page
				 * cache; fdatasync every WAL_SYNC_WRITE_INTERVAL
				 * and at each segment end. Loses the last
				 * moments on power loss (not on kill -9).
				 * Opt-in only. */
};

enum wal_io {
	WAL_IO_THREAD = 0, /* default: writer thread, pwrite + fdatasync */
	WAL_IO_URING,	   /* writer thread submits a linked write+fdatasync
			    * to io_uring (measured: no faster, see docs) */
};

struct wal_config {
	const char *dir;       /* created if missing (not its parents) */
	uint64_t segment_size; /* bytes, multiple of 4096, MIN..MAX */
	enum wal_sync sync;
	enum wal_io io;
	uint32_t buffer_size; /* group-commit buffer, split in two halves */
	bool cut_corrupt;     /* cut the log where it is damaged even if that
				* loses acknowledged records (valid records
				* follow, a sealed segment's successor is
				* missing, ...); default: refuse to start.
				* What is cut is kept as *.cut and logged. */
	bool manual;	      /* the caller is the writer (wal_step): no
			       * thread started; for the deterministic
			       * simulator (tests/sim/) */
	unsigned syncs_in_flight; /* batches whose fdatasync may run at
				   * once, 1 (default; 0 means 1) ..
				   * WAL_SYNCS_IN_FLIGHT_MAX: 2 starts a
				   * second writer thread, the writes stay
				   * in LSN order, the syncs overlap
				   * (docs/wal.md). Only WAL_SYNC_FDATASYNC
				   * with WAL_IO_THREAD, not manual: else 1. */
};

void wal_config_default(struct wal_config *cfg);

/*
 * Creates cfg->dir, takes its LOCK file (-EBUSY if another process or
 * another wal_open holds it), scans the segments and finds the end of the
 * log. A torn or corrupt tail (partial record, bad length or checksum,
 * garbage in the preallocated space) is cut and reported on stderr with
 * segment and offset. Corruption with records after it that were written
 * once it was durable (so acknowledged data would be lost) fails with
 * -EUCLEAN, unless cfg->cut_corrupt: then the log is cut there and what
 * follows is kept aside as *.cut files. Prints a recovery summary.
 */
int wal_open(const struct wal_config *cfg, wal **out, char *err,
	     size_t err_size);

/*
 * Before wal_start(): calls fn for every record with lsn >= from_lsn, in
 * order. fn returning non-zero stops the replay and is returned.
 * -ENODATA: from_lsn is older than the oldest record kept (a snapshot
 * must cover it). -EIO: a segment changed since wal_open().
 */
int wal_replay(wal *w, uint64_t from_lsn,
	       int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			 size_t size),
	       void *ctx);

/*
 * Before wal_start(): where record lsn lies, for messages: the first LSN
 * of its segment (the file name) and its offset there. -ENOENT if the
 * log does not hold it.
 */
int wal_record_where(wal *w, uint64_t lsn, uint64_t *seg_first_lsn,
		     uint64_t *off);

/*
 * Before wal_start() (and before wal_replay() if that should not see
 * them): the operator's way past a record that cannot be applied. Ends
 * the log at lsn - 1: the segment holding lsn is copied aside as
 * <segment>.cut (or <segment>.N.cut: nothing is overwritten), cut there,
 * every later segment is renamed to *.cut; logged loudly on stderr with
 * the LSNs set aside. New records then take LSN lsn on. lsn one past the
 * end: nothing to do. -EINVAL with a message if the log does not hold
 * lsn (below its first kept record, or past its end).
 */
int wal_cut_before(wal *w, uint64_t lsn, char *err, size_t err_size);

/* Starts the writer and the segment preparer threads (manual: none). */
int wal_start(wal *w);

/*
 * Manual mode (wal_config.manual, for tests/sim/: one thread, every I/O in
 * an order a seed decides): the caller runs the writer. wal_step() does
 * one writer turn: takes what was appended, writes it (preparing the next
 * segment itself when one fills), fdatasyncs and publishes it durable.
 * Returns the records made durable (0: nothing pending), or the sticky
 * -errno (the log then fails as with its thread). An append that finds the
 * buffer full and wal_wait_durable() step themselves instead of waiting.
 * Only WAL_SYNC_FDATASYNC and WAL_IO_THREAD; calling it in the threaded
 * mode is a bug (asserted).
 */
int wal_step(wal *w);

/*
 * After wal_start(), from any number of threads: copies the record into the
 * group-commit buffer and returns its LSN in *lsn at once. Blocks only while
 * the buffer is full. -EMSGSIZE: size > WAL_RECORD_SIZE_MAX. After a failed
 * write or fdatasync, returns that sticky error (-EIO, -ENOSPC, ...) and
 * appends nothing.
 */
int wal_append(wal *w, const void *payload, size_t size, uint64_t *lsn);

/*
 * Group commit from an event loop: between wal_defer_begin() and
 * wal_defer_end(), the calling thread's appends do not wake an idle writer
 * (a busy one takes them when it is done, as always); wal_defer_end() wakes
 * it once for all of them. So the records a network thread's turn decides
 * go out as one write and one sync, not the first alone and the rest after
 * it. An append that must wait for room wakes the writer first.
 */
void wal_defer_begin(void);
void wal_defer_end(wal *w);

/*
 * Group commit on the caller's own io_uring, without the writer thread's
 * hop (a network thread; docs/wal.md "The caller's batch"). In place of
 * wal_defer_end(), wal_flush_take() ends the deferral and, when nothing is
 * in flight, hands the caller the batch to write: it submits a write of
 * f->size bytes at f->data to f->fd at offset f->off, linked to an
 * fdatasync of f->fd, and once both have completed calls wal_flush_done()
 * with their results (the write's byte count or -errno, the sync's 0 or
 * -errno, -ECANCELED when the link broke), which makes the batch durable
 * as the writer would (a short write is finished there with pwrite and
 * fdatasync) and publishes it. One batch is in flight at a time, the
 * writer's or a caller's; what is appended meanwhile is the next batch,
 * taken by the next wal_flush_take() (call it after wal_flush_done(), in
 * the same turn). Returns 1 when f was filled, 0 when the caller has
 * nothing to submit: nothing appended, a batch in flight (the caller's
 * own, or another's whose owner takes the next), or the batch is the writer thread's (a segment roll-over,
 * WAL_SYNC_WRITE, a test's wal_set_syscalls table): then it was woken.
 * An append on the owner's thread that must wait for room finishes the
 * owner's batch itself (pwrite and fdatasync again, same bytes); the
 * completions that come later are then only passed to wal_flush_done().
 */
struct wal_flush {
	int fd;
	const void *data;
	uint32_t size;
	uint64_t off;
	/* The log's. */
	void *buf, *old_data;
	uint64_t last_lsn, started_ns;
	bool finished;
};
int wal_flush_take(wal *w, struct wal_flush *f);
void wal_flush_done(wal *w, struct wal_flush *f, int write_res, int sync_res);

/* Every record <= this LSN is durable. Never moves back. */
uint64_t wal_durable_lsn(const wal *w);

/* Blocks until lsn is durable (0) or the log failed (its -errno). */
int wal_wait_durable(wal *w, uint64_t lsn);

/* An eventfd (EFD_NONBLOCK) written after each durable advance and on
 * failure, for io_uring network threads to wake on. Owned by the log;
 * written only once asked for (and once then: look at the log now). */
int wal_event_fd(const wal *w);
/* Before wal_start(): one more eventfd (the caller's, not closed by the
 * log) to write like the one above, so that several threads can each wake
 * on their own. -EMFILE beyond WAL_WATCH_FD_COUNT_MAX. With idle (NULL:
 * always written) it is written only while *idle: its owner sets *idle
 * (seq_cst) before it reads wal_durable_lsn() and wal_error() a last time
 * and sleeps, so an owner that is busy is not woken for every batch. */
#define WAL_WATCH_FD_COUNT_MAX 16
int wal_event_fd_add(wal *w, int fd, const _Atomic bool *idle);

/* 0, or the sticky -errno after a failed write or fdatasync. */
int wal_error(const wal *w);

/*
 * Retention holders: each tailing reader that must not lose records (the
 * replicator, the notification sender, the payments sender) has a slot of its own and keeps in
 * it the oldest LSN it still needs; a snapshot commit removes only segments
 * whose records are all below the smallest LSN of every slot. A slot at
 * UINT64_MAX (the default) holds nothing, so a holder that is not running
 * keeps nothing back. Any thread; each slot is one atomic store.
 */
enum wal_holder {
	WAL_HOLDER_REPLICATOR = 0,
	WAL_HOLDER_NOTIFY,
	WAL_HOLDER_PAYMENTS,
	WAL_HOLDER_COUNT
};
void wal_retain_for(wal *w, enum wal_holder holder, uint64_t lsn);
/* The replicator's slot: wal_retain_for(w, WAL_HOLDER_REPLICATOR, lsn). */
void wal_retain(wal *w, uint64_t lsn);
/* The smallest LSN any holder keeps; UINT64_MAX when none holds any. */
uint64_t wal_retained_lsn(const wal *w);

/*
 * A tailing reader, for the replicator: reads the segment files while the
 * log runs, from one thread other than the writer's (one reader per
 * thread; any number of readers). It returns only durable records, so
 * never a half-written one, checks every segment header and record as
 * recovery does, and never blocks waiting for new records (wake on
 * wal_event_fd() and call again).
 *
 * Retention: call wal_retain_for(w, holder, lsn) (wal_retain for the
 * replicator) with the oldest LSN still needed
 * (before wal_reader_open with from_lsn, then with wal_reader_lsn() as it
 * advances), so that snapshot commits keep the segments ahead of the
 * reader. Without it a commit may remove them: the reader then fails with
 * -ENODATA (never crashes); the caller must resynchronise from a snapshot.
 * Close readers before wal_close().
 */
typedef struct wal_reader wal_reader;

/* A reader whose first record is from_lsn (0 means 1). -ENODATA: from_lsn
 * is older than the oldest record kept. from_lsn may lie ahead of the
 * durable LSN: the reader returns nothing until it is durable. May block
 * briefly on a snapshot commit's segment removal. */
int wal_reader_open(wal *w, uint64_t from_lsn, wal_reader **out);

/*
 * Passes up to max_records records with lsn <= wal_durable_lsn(), in LSN
 * order, to fn; payload is valid only during the call. Returns how many
 * were passed (0: nothing durable beyond wal_reader_lsn()), or -errno:
 * -EUCLEAN for a corrupt segment header or record (bad length, LSN or
 * checksum), -ENODATA if the segment holding the next LSN was removed;
 * the reader then stays where it is. fn returning non-zero stops the call
 * before that record is consumed (it is passed again next time); a
 * negative value is returned as is, a positive one returns the count.
 */
int wal_reader_next(wal_reader *r, uint32_t max_records,
		    int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			      size_t size),
		    void *ctx);

/* The next LSN the reader will pass. */
uint64_t wal_reader_lsn(const wal_reader *r);

void wal_reader_close(wal_reader *r);

/* The log syncs' latency histogram (wal_stats.sync_buckets), fixed bounds
 * as a Prometheus histogram's: bucket i counts the syncs that took at most
 * wal_sync_bucket_le_us(i) µs (and more than bucket i - 1's bound); the
 * last one, WAL_SYNC_BUCKET_COUNT - 1, those longer than every bound. */
#define WAL_SYNC_BUCKET_COUNT 25

/* Bucket i's upper bound in µs; UINT64_MAX for the last (+Inf). */
static inline uint64_t wal_sync_bucket_le_us(unsigned i)
{
	static const uint64_t le_us[WAL_SYNC_BUCKET_COUNT - 1] = {
		10,   25,    50,    75,	   100,	   150,	   200,	   250,
		300,  400,   500,   750,   1000,   1500,   2000,   3000,
		5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	};

	return i < WAL_SYNC_BUCKET_COUNT - 1 ? le_us[i] : UINT64_MAX;
}

/* Records per written batch (wal_stats.batch_buckets), bounds as the
 * syncs': bucket i counts the batches of at most wal_batch_bucket_le(i)
 * records (1, 2, 4, ... 4096), the last one the larger ones. */
#define WAL_BATCH_BUCKET_COUNT 14

static inline uint64_t wal_batch_bucket_le(unsigned i)
{
	return i < WAL_BATCH_BUCKET_COUNT - 1 ? (uint64_t)1 << i : UINT64_MAX;
}

struct wal_stats {
	uint64_t appended_lsn; /* last LSN handed out */
	uint64_t durable_lsn;
	uint64_t batch_count; /* writer turns that wrote something */
	uint64_t batch_records_max;
	uint64_t batch_records_total;			/* records written */
	uint64_t batch_buckets[WAL_BATCH_BUCKET_COUNT]; /* of batch_count */
	uint64_t sync_count;	/* fdatasyncs of log data */
	uint64_t sync_ns_total; /* time spent in them */
	uint64_t sync_ns_max;
	uint64_t sync_buckets[WAL_SYNC_BUCKET_COUNT]; /* of sync_count */
	uint64_t bytes_written;	    /* log bytes, headers included */
	uint64_t segment_count;	    /* segments started since open */
	uint64_t append_wait_count; /* appends that waited for buffer space */
};

/* A consistent-enough copy of the counters (each is read atomically). */
void wal_stats(const wal *w, struct wal_stats *out);

/*
 * Snapshots: the caller serialises its state at LSN s (all records <= s
 * applied, s <= the last LSN appended) as opaque bytes. Commit waits until
 * s is durable, writes a checksum trailer, fsyncs, renames the temp file to
 * snap-<s as 16 hex digits>, fsyncs the directory, then keeps only the two
 * newest snapshots and removes the segments whose records are all covered
 * by the older of the two (so a corrupt newest one can fall back and
 * replay) and are all below wal_retained_lsn(). May run on any thread
 * while the log runs. A snapshot is freed by commit or abort.
 */
typedef struct wal_snap wal_snap;

int wal_snapshot_begin(wal *w, uint64_t lsn, wal_snap **out);
int wal_snapshot_write(wal_snap *s, const void *buf, size_t size);
int wal_snapshot_commit(wal_snap *s);
void wal_snapshot_abort(wal_snap *s);

/*
 * The newest snapshot in dir whose checksum verifies (a corrupt newer one
 * is reported and skipped). *buf is malloc'ed: free() it. -ENOENT: no
 * snapshot at all; -EUCLEAN: snapshots exist but none verifies.
 */
int wal_snapshot_load(const char *dir, uint64_t *lsn, void **buf, size_t *size,
		      char *err, size_t err_size);

/* Drains the buffer, syncs, stops the threads, releases the lock and
 * frees w. Appenders must have stopped. */
void wal_close(wal *w);

/*
 * A consistent copy of the log in dir, which a running bookd may be
 * writing (no lock taken), into dst (created, mode 0700; must not exist):
 * DURABLE read first, then the snapshots, then the segments oldest first,
 * the tail cut after its last whole record, and a DURABLE naming the
 * copy's last record (wal_backup.c). The copy opens as a clean log with
 * every record acknowledged before the call. -EEXIST, -EAGAIN (segments
 * were removed behind a new snapshot while copying: call again), -EUCLEAN
 * (dir's log is damaged), -errno; err says which file.
 */
struct wal_backup_info {
	uint64_t snapshot_lsn; /* newest snapshot copied, 0: none */
	uint32_t snapshot_count, segment_count;
	uint64_t first_lsn, last_lsn; /* the segments': first and last LSN */
	uint64_t durable_lsn;	      /* what DURABLE said at the start */
	uint64_t tail_first_lsn, tail_end_off; /* the last segment copied */
	uint64_t bytes;
};
int wal_backup(const char *dir, const char *dst, struct wal_backup_info *info,
	       char *err, size_t err_size);

/*
 * Fault injection for tests (SQLite aSyscall style): the log calls these
 * for segment and snapshot data (DURABLE is written directly: evidence,
 * not data). A NULL member means the real call; sc
 * must stay valid until replaced; NULL restores the real ones. Process-wide
 * and effective at once. WAL_IO_URING bypasses pwrite and fdatasync.
 */
struct wal_syscalls {
	ssize_t (*pwrite)(int fd, const void *buf, size_t size, off_t off);
	int (*fdatasync)(int fd);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	/* The log's clock (CLOCK_MONOTONIC ns): when DURABLE is rewritten,
	 * WAL_SYNC_WRITE's interval, the sync timings. */
	uint64_t (*now_ns)(void);
};

void wal_set_syscalls(const struct wal_syscalls *sc);

#endif /* BOOKD_WAL_H */
