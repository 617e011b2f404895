/*
 * wal.c: the write-ahead log of bookd: its design (below), and open,
 * replay, close, the lock file and the DURABLE checkpoint. Segment files
 * (names, the format's encoding and checks, mapping, the syscall table)
 * are in wal_segment.c, recovery and cuts in wal_recover.c, appending and
 * the writer in wal_writer.c, snapshots and retention in wal_snapshot.c,
 * the tailing reader in wal_reader.c; docs/wal.md has the format byte by
 * byte and the benchmarks.
 *
 * PURPOSE
 *
 * The core decides bookings in memory. A decision counts only once its
 * encoded entry (an opaque payload of 40-400 bytes, at most 64 KiB) is a
 * record in this log on stable storage: the caller appends, gets an LSN at
 * once, and answers only when wal_durable_lsn() >= that LSN. After a crash
 * the newest snapshot plus a replay of the records after it rebuild the
 * state. LSNs are record numbers: 1, 2, 3, ... without gaps, across
 * restarts.
 *
 * FILES (in the log directory)
 *
 *   LOCK                          OFD write lock of the running process
 *   DURABLE                       LSN known durable (recovery evidence)
 *   00000000000000000001.wal      segments, named by their first LSN
 *   next.tmp                      the next segment, prepared ahead
 *   snap-000000000000a2f0         snapshots, named by their LSN (hex)
 *   snap-*.tmp, *.cut             snapshot being written; cut-off data
 *
 * BYTE FORMAT (little-endian)
 *
 * A segment is a file of a fixed size (default 64 MiB), fully allocated and
 * zero-filled before use so that appending never allocates: no ENOSPC and
 * no metadata to sync halfway through a segment (PostgreSQL
 * XLogFileInitInternal). It starts with a 64-byte header:
 *
 *    0  u64 magic "BOKDWSEG"       24  u64 first LSN (= file name)
 *    8  u32 format version (1)     32  24 zero bytes
 *   12  u32 header size (64)       56  u64 XXH3-64 of bytes 0..55
 *   16  u64 segment size (bytes)
 *
 * Records follow back to back from offset 64, each 8-byte aligned:
 *
 *    0  u64 checksum: XXH3-64 of bytes 8 .. len-1 of the record
 *    8  u64 LSN
 *   16  u64 synced LSN: every record <= it was fdatasync'ed before this
 *           record was appended (see RECOVERY)
 *   24  u32 payload size (0 .. 65536)
 *   28  u8  magic 0xb7   29 u8 version 1   30 u8 type 1   31 u8 flags 0
 *   32  payload, then zero padding to a multiple of 8
 *
 * A record never straddles segments: when it does not fit, the rest of the
 * segment stays zero and the record starts the next segment. The byte
 * after the last record is therefore zero (or the segment ends there).
 *
 * Format version 2 reserves the last 64 bytes of a segment for its
 * trailer, zero until the writer leaves the segment (version 1 segments,
 * without it, are still read):
 *
 *    0  u64 magic "BOKDWEND"       16  u64 end offset of its records
 *    8  u64 next LSN (successor)   24  32 zero bytes
 *                                  56  u64 XXH3-64 of bytes 0..55
 *
 * It is written and synced after the successor exists durably and before
 * any record goes into it: a sealed segment proves its successor.
 *
 * INVARIANTS
 *
 *  - Records are in LSN order, consecutive within and across segments; a
 *    segment's name is the LSN of its first record.
 *  - Only one batch is ever unsynced (syncs_in_flight 1, the default):
 *    the writer writes a batch, syncs it, and only then writes the next
 *    one. With syncs_in_flight 2, at most two, both at the end of the log:
 *    batch k+1 is written after batch k's pwrite returned and published
 *    only after batch k was; so a record's synced LSN still names only
 *    synced records, and recovery's rules below hold unchanged (the two
 *    unsynced batches are one torn tail to it). A roll-over waits until
 *    nothing is unsynced. A new segment gets its header
 *    written and synced, then is renamed into place, then the directory is
 *    synced, and this happens only after the previous segment was synced.
 *    So a named segment proves that all segments before it are durable.
 *  - durable_lsn never passes what fdatasync confirmed (WAL_SYNC_WRITE:
 *    what write(2) confirmed) and never moves back.
 *  - After a failed write or fdatasync nothing more is written, nothing
 *    more becomes durable, every append fails: a retried fsync can report
 *    success for pages the kernel already dropped (PostgreSQL "fsyncgate").
 *
 * RECOVERY (wal_open)
 *
 * Segments are read in name order and every record is checked before it
 * is trusted, the length first (PostgreSQL ValidXLogRecordHeader): magic,
 * version, type, length within the segment, LSN the next expected one,
 * then the checksum. The first record that fails ends the log. What
 * follows decides between a torn tail and corruption:
 *
 *  - the segment is sealed (a valid trailer) and its successor is missing,
 *    or its records end before the trailer's end offset: the successor's
 *    records were acknowledged. -EUCLEAN as below. A damaged trailer with
 *    no successor counts the same (it is written only at a roll-over).
 *  - the file is shorter than its header's size (segments are allocated
 *    whole and never shrink), or its header is bad (headers are durable
 *    before the name): damage, -EUCLEAN as below.
 *  - DURABLE (written after syncs, never covering an unsynced batch) says
 *    the failing LSN was durable: -EUCLEAN as below.
 *  - another segment exists after it, or a valid record after it carries
 *    synced LSN >= the failing LSN: the failing record was durable, so
 *    acknowledged data sits behind damage. -EUCLEAN, naming the segment
 *    and offset, unless cut_corrupt (then the segment is copied to
 *    <name>.cut, cut there, and later segments are renamed to *.cut).
 *  - otherwise it is the unsynced last batch (torn by a crash or a power
 *    loss that reordered its pages): the bytes from there to the last
 *    non-zero byte are zeroed and the cut is reported.
 * A bad checksum in the last synced batch cannot be told from a torn write;
 * like PostgreSQL we cut there. A log ending before the newest snapshot
 * lost records: -EUCLEAN too. Last,
 * the tail segment is fdatasync'ed: what a killed process left in the page
 * cache counts as durable only once it is on disk.
 *
 * THREADS
 *
 *  - Appenders (any number): under wal.mu take an LSN and a slot in the
 *    active half of a double buffer, then outside the lock copy the record
 *    in, checksum it and drop the half's pending count.
 *  - The writer: swaps halves under wal.mu, waits for the pending fills of
 *    the half it took, writes it with one pwrite (two around a segment
 *    end) and one fdatasync, publishes durable_lsn (atomic, release),
 *    writes the eventfd and wakes wal_wait_durable(). While it syncs,
 *    appenders fill the other half, so batches grow with the load and a
 *    lone record is written at once. No timer.
 *  - Or two writer threads (syncs_in_flight 2, wal_writer.c "Two syncs in
 *    flight"): the writes stay one at a time in LSN order (io_busy), each
 *    thread fdatasyncs its batch on its own descriptor of the segment,
 *    so the next batch's sync overlaps the previous one's; publishing
 *    goes in batch order (publish_seq); a roll-over waits until nothing
 *    else is in flight.
 *  - Or a caller (wal_flush_take/wal_flush_done, a network thread): takes
 *    the half as the writer would, writes and syncs it on its own io_uring
 *    and publishes it. Whoever writes holds io_busy (under wal.mu): one
 *    batch in flight, in LSN order; roll-overs stay the writer's.
 *  - The preparer: zero-fills next.tmp so a segment is ready at roll-over.
 *  - Snapshot commits, on the caller's thread, remove old files.
 *  - Readers (wal_reader.c), one per thread: map segment files and read
 *    records up to durable_lsn with the checks of RECOVERY below.
 *
 * FAILURE BEHAVIOUR
 *
 * wal_open and recovery return -errno and a message in the caller's
 * buffer. A failed write, fdatasync or segment creation in the writer sets
 * a sticky error, logs it on stderr once, wakes every waiter; appends and
 * waits return it until the process restarts and recovers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "evlog.h"
#include "wal_int.h"

/* ---- Small helpers ----------------------------------------------------- */

/* One event line (evlog.h), "wal: ..." as the docs show it; its level
 * from how it starts: FATAL an error, a cut, damage or a failure a
 * warning, the rest (recovery's progress) info. */
void wal__log(const char *fmt, ...)
{
	char line[1024];
	enum evlog_level level = EVLOG_INFO;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!strncmp(line, "FATAL", 5))
		level = EVLOG_ERROR;
	else if (!strncasecmp(line, "cut", 3) || strstr(line, "corrupt") ||
		 strstr(line, "damaged") || strstr(line, "unusable") ||
		 !strncmp(line, "cannot", 6) || !strncmp(line, "fsync", 5))
		level = EVLOG_WARN;
	evlog(level, "wal: %s", line);
}

void wal__errf(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* ---- Configuration ------------------------------------------------------ */

void wal_config_default(struct wal_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->segment_size = WAL_SEGMENT_SIZE_DEFAULT;
	cfg->sync = WAL_SYNC_FDATASYNC;
	cfg->io = WAL_IO_THREAD;
	cfg->buffer_size = WAL_BUFFER_SIZE_DEFAULT;
	cfg->cut_corrupt = false;
	cfg->syncs_in_flight = 1;
}

/* A size of the configuration (what): a multiple of 4096 in min..max. */
static int wal__check_size(const char *what, uint64_t size, uint64_t min,
			   uint64_t max, char *err, size_t err_size)
{
	if (size >= min && size <= max && size % 4096 == 0)
		return 0;
	wal__errf(err, err_size,
		  "wal: %s %" PRIu64 " must be a multiple of 4096 in %" PRIu64
		  "..%" PRIu64,
		  what, size, min, max);
	return -EINVAL;
}

static int wal__check_config(const struct wal_config *cfg, char *err,
			     size_t err_size)
{
	int rc;

	if (cfg->dir == NULL || cfg->dir[0] == '\0') {
		wal__errf(err, err_size, "wal: no directory given");
		return -EINVAL;
	}
	rc = wal__check_size("segment_size", cfg->segment_size,
			     WAL_SEGMENT_SIZE_MIN, WAL_SEGMENT_SIZE_MAX, err,
			     err_size);
	if (rc == 0)
		rc = wal__check_size("buffer_size", cfg->buffer_size,
				     WAL_BUFFER_SIZE_MIN, WAL_BUFFER_SIZE_MAX,
				     err, err_size);
	if (rc != 0)
		return rc;
	if (cfg->sync != WAL_SYNC_FDATASYNC && cfg->sync != WAL_SYNC_WRITE) {
		wal__errf(err, err_size, "wal: unknown sync mode %d",
			  (int)cfg->sync);
		return -EINVAL;
	}
	if (cfg->io != WAL_IO_THREAD && cfg->io != WAL_IO_URING) {
		wal__errf(err, err_size, "wal: unknown io mode %d",
			  (int)cfg->io);
		return -EINVAL;
	}
	if (cfg->manual &&
	    (cfg->io != WAL_IO_THREAD || cfg->sync != WAL_SYNC_FDATASYNC)) {
		wal__errf(err, err_size,
			  "wal: manual mode takes only fdatasync and "
			  "pwrite (io thread)");
		return -EINVAL;
	}
	if (cfg->syncs_in_flight > WAL_SYNCS_IN_FLIGHT_MAX) {
		wal__errf(err, err_size,
			  "wal: syncs_in_flight %u must be 1..%d",
			  cfg->syncs_in_flight, WAL_SYNCS_IN_FLIGHT_MAX);
		return -EINVAL;
	}
	return 0;
}

/* ---- The lock file ------------------------------------------------------ */

static int wal__lock(wal *w, char *err, size_t err_size)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char pid[32];
	int fd, rc, len;

	fd = openat(w->dir_fd, WAL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC,
		    0644);
	if (fd < 0) {
		rc = -errno;
		wal__errf(err, err_size, "wal: cannot open %s/%s: %s", w->dir,
			  WAL_LOCK_NAME, strerror(-rc));
		return rc;
	}
	/* An OFD lock belongs to the open file description: a second
	 * wal_open in the same process conflicts too, and it goes away with
	 * the process, whatever kills it. */
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		rc = -errno;
		if (rc == -EAGAIN || rc == -EACCES) {
			ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			wal__errf(err, err_size,
				  "wal: %s is in use: %s/%s is locked by "
				  "pid %s (another bookd on this data dir?)",
				  w->dir, w->dir, WAL_LOCK_NAME,
				  pid[0] ? pid : "?");
			rc = -EBUSY;
		} else {
			wal__errf(err, err_size, "wal: cannot lock %s/%s: %s",
				  w->dir, WAL_LOCK_NAME, strerror(-rc));
		}
		close(fd);
		return rc;
	}
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		wal__log("cannot write the pid into %s/%s (ignored)", w->dir,
			 WAL_LOCK_NAME);
	w->lock_fd = fd;
	return 0;
}

/* ---- The durable checkpoint -------------------------------------------- */

/* Opens DURABLE and reads what it says into w->ckpt (lsn 0: nothing). */
static void wal__ckpt_open(wal *w)
{
	struct wal_ckpt c;
	ssize_t n;

	memset(&w->ckpt, 0, sizeof(w->ckpt));
	w->ckpt_fd = openat(w->dir_fd, WAL_CKPT_NAME,
			    O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (w->ckpt_fd < 0) {
		wal__log("cannot open %s/%s: %s (recovery cannot tell how far "
			 "the log was durable)",
			 w->dir, WAL_CKPT_NAME, strerror(errno));
		return;
	}
	n = pread(w->ckpt_fd, &c, sizeof(c), 0);
	if (n == 0)
		return; /* new */
	if (n != (ssize_t)sizeof(c) || c.magic != WAL_CKPT_MAGIC ||
	    c.checksum != wal__block_sum(&c)) {
		wal__log("%s/%s is damaged: ignored (recovery cannot tell how "
			 "far the log was durable)",
			 w->dir, WAL_CKPT_NAME);
		return;
	}
	w->ckpt = c;
}

void wal__ckpt_write(wal *w, uint64_t lsn, bool sync)
{
	wal__ckpt_write_at(w, lsn, w->seg_first_lsn, w->seg_off, sync);
}

void wal__ckpt_write_at(wal *w, uint64_t lsn, uint64_t seg_first_lsn,
			uint64_t end_off, bool sync)
{
	struct wal_ckpt c;

	if (w->ckpt_fd < 0)
		return;
	c = (struct wal_ckpt){ .magic = WAL_CKPT_MAGIC,
			       .lsn = lsn,
			       .seg_first_lsn = seg_first_lsn,
			       .end_off = end_off };
	c.checksum = wal__block_sum(&c);
	w->ckpt_written_ns = wal__now_ns();
	/* Not through the syscall table: it is not log data. */
	if (pwrite(w->ckpt_fd, &c, sizeof(c), 0) != (ssize_t)sizeof(c) ||
	    (sync && fdatasync(w->ckpt_fd) != 0)) {
		wal__log("cannot write %s/%s: %s; the log goes on without it",
			 w->dir, WAL_CKPT_NAME, strerror(errno));
		close(w->ckpt_fd);
		w->ckpt_fd = -1;
	}
}

/* ---- Open, replay, close ------------------------------------------------ */

/* The handle's locks and condition variables: one list for making and
 * destroying them. */
struct wal_sync_objs {
	pthread_mutex_t *mu[4];
	pthread_cond_t *cv[5];
};

static struct wal_sync_objs wal__sync_objs(wal *w)
{
	return (struct wal_sync_objs){
		.mu = { &w->mu, &w->durable_mu, &w->prep_mu, &w->snap_mu },
		.cv = { &w->writer_cv, &w->space_cv, &w->durable_cv,
			&w->prep_cv, &w->turn_cv },
	};
}

static void wal__sync_init(wal *w)
{
	struct wal_sync_objs o = wal__sync_objs(w);
	pthread_condattr_t ca;
	size_t i;

	/* The writer's timed wait counts in CLOCK_MONOTONIC. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (i = 0; i < sizeof(o.mu) / sizeof(o.mu[0]); i++)
		pthread_mutex_init(o.mu[i], NULL);
	for (i = 0; i < sizeof(o.cv) / sizeof(o.cv[0]); i++)
		pthread_cond_init(o.cv[i],
				  o.cv[i] == &w->writer_cv ? &ca : NULL);
	pthread_condattr_destroy(&ca);
}

static void wal__sync_destroy(wal *w)
{
	struct wal_sync_objs o = wal__sync_objs(w);
	size_t i;

	for (i = 0; i < sizeof(o.mu) / sizeof(o.mu[0]); i++)
		pthread_mutex_destroy(o.mu[i]);
	for (i = 0; i < sizeof(o.cv) / sizeof(o.cv[0]); i++)
		pthread_cond_destroy(o.cv[i]);
}

int wal_open(const struct wal_config *cfg, wal **out, char *err,
	     size_t err_size)
{
	wal *w;
	int rc, i;

	ASSERT(cfg != NULL);
	ASSERT(out != NULL);
	*out = NULL;
	rc = wal__check_config(cfg, err, err_size);
	if (rc != 0)
		return rc;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto out_nomem;
	w->dir_fd = w->lock_fd = w->event_fd = w->seg_fd = w->prep_fd = -1;
	w->sync_fd = -1;
	w->ckpt_fd = -1;
	w->segment_size = cfg->segment_size;
	w->seg_size = cfg->segment_size;
	w->sync = cfg->sync;
	w->io = cfg->io;
	w->manual = cfg->manual;
	/* Overlapping syncs only on the writer threads' pwrite+fdatasync
	 * path: the other modes keep one batch in flight. */
	w->syncs_in_flight = 1;
	if (cfg->syncs_in_flight > 1 && !cfg->manual &&
	    cfg->io == WAL_IO_THREAD && cfg->sync == WAL_SYNC_FDATASYNC)
		w->syncs_in_flight = cfg->syncs_in_flight;
	w->half_size = cfg->buffer_size / 2;
	for (unsigned h = 0; h < WAL_HOLDER_COUNT; h++)
		atomic_init(&w->retain_lsn[h], UINT64_MAX);
	w->dir = strdup(cfg->dir);
	if (w->dir == NULL)
		goto out_free;

	if (mkdir(w->dir, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		wal__errf(err, err_size, "wal: cannot create %s: %s", w->dir,
			  strerror(-rc));
		goto out_free;
	}
	w->dir_fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		rc = -errno;
		wal__errf(err, err_size, "wal: cannot open %s: %s", w->dir,
			  strerror(-rc));
		goto out_free;
	}
	rc = wal__lock(w, err, err_size);
	if (rc != 0)
		goto out_close_dir;
	wal__ckpt_open(w);

	/* All memory of the running log, now (STYLE: allocate at startup). */
	w->zero = aligned_alloc(4096, WAL_ZERO_CHUNK_SIZE);
	for (i = 0; i < 2; i++)
		w->bufs[i].data = aligned_alloc(4096, w->half_size);
	if (w->zero == NULL || w->bufs[0].data == NULL ||
	    w->bufs[1].data == NULL) {
		rc = -ENOMEM;
		wal__errf(err, err_size,
			  "wal: out of memory for %u-byte "
			  "buffers",
			  cfg->buffer_size);
		goto out_free_bufs;
	}
	/* Touch it: pwrite from untouched (zero-page) memory was measured
	 * 10x slower in the kernel copy once the mapping aged. */
	memset(w->zero, 0, WAL_ZERO_CHUNK_SIZE);
	w->active = &w->bufs[0];
	w->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->event_fd < 0) {
		rc = -errno;
		wal__errf(err, err_size, "wal: eventfd: %s", strerror(-rc));
		goto out_free_bufs;
	}
	wal__sync_init(w);

	rc = wal__recover(w, cfg->cut_corrupt, err, err_size);
	if (rc != 0)
		goto out_destroy;
	ASSERT(w->seg_fd >= 0);
	ASSERT(w->next_lsn >= 1);
	atomic_init(&w->appended_lsn, w->next_lsn - 1);
	atomic_init(&w->durable_lsn, w->next_lsn - 1);
	atomic_init(&w->synced_lsn, w->next_lsn - 1);
	*out = w;
	return 0;

out_destroy:
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	free(w->segs);
	wal__sync_destroy(w);
	close(w->event_fd);
out_free_bufs:
	free(w->bufs[0].data);
	free(w->bufs[1].data);
	free(w->zero);
	if (w->ckpt_fd >= 0)
		close(w->ckpt_fd);
	close(w->lock_fd);
out_close_dir:
	close(w->dir_fd);
out_free:
	free(w->dir);
	free(w);
	if (rc != 0)
		return rc;
out_nomem:
	wal__errf(err, err_size, "wal: out of memory");
	return -ENOMEM;
}

int wal_replay(wal *w, uint64_t from_lsn,
	       int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			 size_t size),
	       void *ctx)
{
	size_t i;
	int rc = 0;

	ASSERT(w != NULL);
	ASSERT(fn != NULL);
	if (w->started)
		return -EINVAL;
	if (from_lsn == 0)
		from_lsn = 1;
	if (from_lsn < w->segs[0].first_lsn)
		return -ENODATA;
	for (i = 0; i < w->seg_count && rc == 0; i++) {
		const struct wal_seg_info *si = &w->segs[i];
		uint64_t end_lsn = si->first_lsn + si->record_count, off;

		if (end_lsn <= from_lsn)
			continue;
		rc = wal__walk(w, si, from_lsn, end_lsn, fn, ctx, &off);
		ASSERT(rc != 0 || off == si->end_off);
	}
	return rc;
}

void wal_close(wal *w)
{
	if (w == NULL)
		return;
	if (w->started)
		wal__writer_stop(w);
	if (w->seg_fd >= 0) {
		bool synced = atomic_load(&w->error) == 0;

		if (synced &&
		    atomic_load(&w->synced_lsn) <
			    atomic_load(&w->durable_lsn) &&
		    wal__sync(w->seg_fd) != 0) {
			wal__log("FATAL: final fdatasync of %s failed: %s",
				 w->dir, strerror(errno));
			synced = false;
		}
		if (synced)
			wal__ckpt_write(w, atomic_load(&w->durable_lsn), true);
		close(w->seg_fd);
	}
	if (w->sync_fd >= 0)
		close(w->sync_fd);
	if (w->ckpt_fd >= 0)
		close(w->ckpt_fd);
	free(w->segs);
	wal__sync_destroy(w);
	close(w->event_fd);
	free(w->bufs[0].data);
	free(w->bufs[1].data);
	free(w->zero);
	close(w->lock_fd); /* releases the OFD lock */
	close(w->dir_fd);
	free(w->dir);
	free(w);
}

/* ---- Accessors ------------------------------------------------------------- */

uint64_t wal_durable_lsn(const wal *w)
{
	return atomic_load_explicit(&((wal *)w)->durable_lsn,
				    memory_order_acquire);
}

int wal_error(const wal *w)
{
	return atomic_load_explicit(&((wal *)w)->error, memory_order_acquire);
}

int wal_event_fd(const wal *w)
{
	uint64_t one = 1;

	/* Not written until asked for: the first asker finds it readable
	 * (look at the log's state now), then it follows every advance. */
	if (!atomic_exchange(&((wal *)w)->event_fd_used, true))
		(void)!write(w->event_fd, &one, sizeof(one));
	return w->event_fd;
}

int wal_event_fd_add(wal *w, int fd, const _Atomic bool *idle)
{
	if (w->started || fd < 0)
		return -EINVAL;
	if (w->watch_fd_count == WAL_WATCH_FD_COUNT_MAX)
		return -EMFILE;
	w->watch_idle[w->watch_fd_count] = idle;
	w->watch_fds[w->watch_fd_count++] = fd;
	return 0;
}

void wal_retain_for(wal *w, enum wal_holder holder, uint64_t lsn)
{
	ASSERT((unsigned)holder < WAL_HOLDER_COUNT);
	atomic_store_explicit(&w->retain_lsn[holder], lsn,
			      memory_order_release);
}

void wal_retain(wal *w, uint64_t lsn)
{
	wal_retain_for(w, WAL_HOLDER_REPLICATOR, lsn);
}

uint64_t wal_retained_lsn(const wal *w)
{
	wal *m = (wal *)w; /* atomics are read through a non-const lvalue */
	uint64_t min = UINT64_MAX;

	for (unsigned h = 0; h < WAL_HOLDER_COUNT; h++) {
		uint64_t v = atomic_load_explicit(&m->retain_lsn[h],
						  memory_order_acquire);
		if (v < min)
			min = v;
	}
	return min;
}

void wal_stats(const wal *w, struct wal_stats *out)
{
	wal *m = (wal *)w; /* atomics are read through a non-const lvalue */

#define WAL_LOAD(x) atomic_load_explicit(&m->x, memory_order_relaxed)
	out->appended_lsn = WAL_LOAD(appended_lsn);
	out->durable_lsn = WAL_LOAD(durable_lsn);
	out->batch_count = WAL_LOAD(st_batch_count);
	out->batch_records_max = WAL_LOAD(st_batch_records_max);
	out->batch_records_total = WAL_LOAD(st_batch_records_total);
	for (unsigned i = 0; i < WAL_BATCH_BUCKET_COUNT; i++)
		out->batch_buckets[i] = WAL_LOAD(st_batch_buckets[i]);
	out->sync_count = WAL_LOAD(st_sync_count);
	out->sync_ns_total = WAL_LOAD(st_sync_ns_total);
	out->sync_ns_max = WAL_LOAD(st_sync_ns_max);
	for (unsigned i = 0; i < WAL_SYNC_BUCKET_COUNT; i++)
		out->sync_buckets[i] = WAL_LOAD(st_sync_buckets[i]);
	out->bytes_written = WAL_LOAD(st_bytes_written);
	out->segment_count = WAL_LOAD(st_segment_count);
	out->append_wait_count = WAL_LOAD(st_append_wait_count);
#undef WAL_LOAD
}
