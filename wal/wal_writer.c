/*
 * wal_writer.c: appending and group commit (see THREADS in wal.c).
 *
 * The buffer is two halves. Appenders reserve space in the active half
 * under wal.mu (a few loads and stores: LSN, offset, pending count) and
 * fill it outside the lock: header, payload, padding, checksum. The writer
 * takes the active half whenever it is not empty and it is not busy, makes
 * the other half active, waits until the taken half's pending count is 0,
 * then writes it and syncs it. So a lone record goes out at once, and
 * under load a batch is everything appended during the previous write and
 * sync. An appender waits only when its record does not fit in the active
 * half, i.e. while the writer is still busy with the other one.
 *
 * The caller's batch (wal_flush_take, wal_flush_done): a network thread
 * takes the half itself, as the writer would, and writes and syncs it on
 * its own io_uring; whoever writes holds io_busy, so one batch is in
 * flight at a time, the writer's or a caller's.
 *
 * Two syncs in flight (wal_config.syncs_in_flight 2, below): two writer
 * threads; a batch's half and io_busy are given back once its pwrite
 * returned, so the next batch is written and synced while the previous
 * one's fdatasync runs; durable_lsn still moves in batch order.
 *
 * Segments: the writer appends into its current segment at seg_off. When
 * the next record does not fit, it syncs the segment, publishes what it
 * holds, takes the zero-filled file the preparer made ahead (next.tmp),
 * writes and syncs its header, renames it to the first LSN it will hold
 * and syncs the directory, then writes and syncs the old segment's
 * trailer (which now proves its successor). Then the preparer makes the
 * next one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "wal_int.h"

#define WAL_SPIN_COUNT_MAX 64	 /* spins before yielding to a filler */
#define WAL_URING_ROUND_MAX 1024 /* short writes before giving up */

/* ---- Segments ------------------------------------------------------------ */

int wal__prepare_segment(wal *w, int *fd_out)
{
	uint64_t off;
	int fd, rc = 0;

	fd = openat(w->dir_fd, WAL_PREP_NAME,
		    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* Reserve the blocks (ENOSPC now, not mid-segment), then write the
	 * zeros for real: unwritten extents would make every fdatasync also
	 * commit an extent conversion. */
	if (wal__fallocate(fd, 0, 0, (off_t)w->segment_size) != 0 &&
	    errno != EOPNOTSUPP) {
		rc = -errno;
		goto out_unlink;
	}
	for (off = 0; off < w->segment_size; off += WAL_ZERO_CHUNK_SIZE) {
		uint64_t n = w->segment_size - off;

		if (n > WAL_ZERO_CHUNK_SIZE)
			n = WAL_ZERO_CHUNK_SIZE;
		rc = wal__pwrite_all(fd, w->zero, n, off);
		if (rc != 0)
			goto out_unlink;
		/* Write each chunk out now: no 64 MiB burst of writeback
		 * queued in front of the log's fdatasyncs. A hint only: the
		 * fdatasync below reports any error. */
		sync_file_range(fd, (off_t)off, (off_t)n,
				SYNC_FILE_RANGE_WAIT_BEFORE |
					SYNC_FILE_RANGE_WRITE |
					SYNC_FILE_RANGE_WAIT_AFTER);
	}
	rc = wal__sync(fd);
	if (rc != 0)
		goto out_unlink;
	*fd_out = fd;
	return 0;

out_unlink:
	close(fd);
	unlinkat(w->dir_fd, WAL_PREP_NAME, 0);
	return rc;
}

/* Makes the prepared file fd the current segment starting at first_lsn.
 * Takes fd (closed on failure). Only after the previous segment's sync. */
int wal__activate_segment(wal *w, int fd, uint64_t first_lsn)
{
	char name[WAL_SEGMENT_NAME_SIZE];
	struct wal_seg_hdr h;
	int rc, sync_fd = -1;

	ASSERT(fd >= 0);
	ASSERT(first_lsn >= 1);
	wal__seg_hdr_encode(&h, w->segment_size, first_lsn);
	wal__segment_name(name, first_lsn);
	rc = wal__pwrite_all(fd, &h, sizeof(h), 0);
	if (rc == 0)
		rc = wal__sync(fd);
	if (rc != 0)
		goto out_unlink;
	/* Atomic: the name appears with a durable header or not at all. */
	if (renameat(w->dir_fd, WAL_PREP_NAME, w->dir_fd, name) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	rc = wal__sync(w->dir_fd);
	if (rc == 0 && w->syncs_in_flight > 1) {
		/* Before any record goes in: it sees every error after. */
		sync_fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
		if (sync_fd < 0)
			rc = -errno;
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	if (w->sync_fd >= 0)
		close(w->sync_fd);
	w->sync_fd = sync_fd;
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	w->seg_fd = fd;
	w->seg_first_lsn = first_lsn;
	w->seg_off = WAL_SEGMENT_HEADER_SIZE;
	w->seg_size = w->segment_size;
	w->seg_limit = w->segment_size - WAL_SEGMENT_TRAILER_SIZE;
	atomic_fetch_add_explicit(&w->st_segment_count, 1,
				  memory_order_relaxed);
	return 0;

out_unlink:
	close(fd);
	unlinkat(w->dir_fd, WAL_PREP_NAME, 0);
	return rc;
}

static void *wal__prep_main(void *arg)
{
	wal *w = arg;

	pthread_mutex_lock(&w->prep_mu);
	for (;;) {
		int fd = -1, rc;

		while (!w->prep_stop && w->prep_state != WAL_PREP_WANTED)
			pthread_cond_wait(&w->prep_cv, &w->prep_mu);
		if (w->prep_stop)
			break;
		w->prep_state = WAL_PREP_BUSY;
		pthread_mutex_unlock(&w->prep_mu);
		rc = wal__prepare_segment(w, &fd);
		pthread_mutex_lock(&w->prep_mu);
		if (rc == 0) {
			w->prep_fd = fd;
			w->prep_state = WAL_PREP_READY;
		} else {
			w->prep_error = rc;
			w->prep_state = WAL_PREP_FAILED;
		}
		pthread_cond_broadcast(&w->prep_cv);
	}
	pthread_mutex_unlock(&w->prep_mu);
	return NULL;
}

/* Writes and syncs the trailer of the segment just left (fd, of size
 * bytes, records up to end_off): it now proves its successor, which
 * starts at next_lsn and exists durably. Before any record goes into the
 * successor, so a successor deleted later is always noticed. */
static int wal__seal(wal *w, int fd, uint64_t size, uint64_t end_off,
		     uint64_t next_lsn)
{
	struct wal_seg_trailer t;
	int rc;

	wal__seal_encode(&t, next_lsn, end_off);
	rc = wal__pwrite_all(fd, &t, sizeof(t),
			     size - WAL_SEGMENT_TRAILER_SIZE);
	return rc != 0 ? rc : wal__sync(fd);
}

/* Rolls over to a new segment whose first record is first_lsn. */
static int wal__next_segment(wal *w, uint64_t first_lsn)
{
	int fd = -1, rc = 0, old_fd = w->seg_fd;
	uint64_t old_size = w->seg_size, old_end = w->seg_off;
	bool sealable = w->seg_limit < w->seg_size; /* not version 1 */

	if (w->manual) {
		/* No preparer: the caller's thread makes the file now. */
		rc = wal__prepare_segment(w, &fd);
		if (rc != 0)
			return rc;
	} else {
		pthread_mutex_lock(&w->prep_mu);
		while (w->prep_state == WAL_PREP_WANTED ||
		       w->prep_state == WAL_PREP_BUSY)
			pthread_cond_wait(&w->prep_cv, &w->prep_mu);
		if (w->prep_state == WAL_PREP_READY) {
			fd = w->prep_fd;
			w->prep_fd = -1;
		} else {
			rc = w->prep_error;
		}
		w->prep_state = WAL_PREP_IDLE; /* until the rename is done */
		pthread_mutex_unlock(&w->prep_mu);
	}

	if (fd < 0) {
		/* Space may have come back since: one more try, here. */
		wal__log("preparing the next segment failed (%s); retrying",
			 strerror(-rc));
		rc = wal__prepare_segment(w, &fd);
		if (rc != 0)
			return rc;
	}
	w->seg_fd = -1; /* kept open for its trailer */
	rc = wal__activate_segment(w, fd, first_lsn);
	if (rc != 0) {
		w->seg_fd = old_fd;
	} else {
		if (sealable)
			rc = wal__seal(w, old_fd, old_size, old_end, first_lsn);
		close(old_fd);
	}
	if (w->manual)
		return rc;

	pthread_mutex_lock(&w->prep_mu);
	w->prep_state = WAL_PREP_WANTED;
	pthread_cond_broadcast(&w->prep_cv);
	pthread_mutex_unlock(&w->prep_mu);
	return rc;
}

/* ---- Appending ------------------------------------------------------------ */

static void wal__encode_record(uint8_t *dst, uint64_t lsn, uint64_t synced_lsn,
			       const void *payload, size_t size, uint32_t len)
{
	struct wal_rec_hdr h = {
		.lsn = lsn,
		.synced_lsn = synced_lsn,
		.size = (uint32_t)size,
		.magic = WAL_RECORD_MAGIC,
		.version = WAL_RECORD_VERSION,
		.type = WAL_RECORD_TYPE_DATA,
		.flags = 0,
	};

	ASSERT(synced_lsn < lsn);
	ASSERT(len == wal__record_len(size));
	memcpy(dst, &h, sizeof(h));
	if (size > 0)
		memcpy(dst + sizeof(h), payload, size);
	memset(dst + sizeof(h) + size, 0, len - sizeof(h) - size);
	h.checksum =
		XXH3_64bits(dst + sizeof(h.checksum), len - sizeof(h.checksum));
	memcpy(dst, &h.checksum, sizeof(h.checksum));
}

/* This thread's appends wait for wal_defer_end() to wake the writer. */
static __thread bool wal__deferring;
static __thread wal *wal__deferred; /* appended to meanwhile */
/* This thread's batch in flight (wal_flush_take until wal_flush_done). */
static __thread struct wal_flush *wal__own_flush;
static __thread wal *wal__own_wal;

static void wal__flush_finish(wal *w, struct wal_flush *f, int write_res,
			      int sync_res);

/* Under mu: wakes the writer if it waits for records. */
static void wal__kick_locked(wal *w)
{
	if (w->writer_idle) {
		w->writer_idle = false;
		pthread_cond_signal(&w->writer_cv);
	}
}

void wal_defer_begin(void) { wal__deferring = true; }

void wal_defer_end(wal *w)
{
	wal__deferring = false;
	if (wal__deferred != w)
		return;
	wal__deferred = NULL;
	pthread_mutex_lock(&w->mu);
	wal__kick_locked(w);
	pthread_mutex_unlock(&w->mu);
}

int wal_append(wal *w, const void *payload, size_t size, uint64_t *lsn_out)
{
	struct wal_buf *b;
	uint64_t lsn;
	uint32_t len, off;
	bool wake;
	int rc;

	ASSERT(payload != NULL || size == 0);
	if (size > WAL_RECORD_SIZE_MAX)
		return -EMSGSIZE;
	len = wal__record_len(size);

	pthread_mutex_lock(&w->mu);
	for (;;) {
		rc = atomic_load_explicit(&w->error, memory_order_acquire);
		if (rc != 0 || !w->started || w->stopping) {
			pthread_mutex_unlock(&w->mu);
			return rc != 0 ? rc : -EINVAL;
		}
		b = w->active;
		if (b->used + len <= w->half_size)
			break;
		if (w->manual) {
			/* Manual mode: no writer to wait for; write the
			 * full half here (its error is the sticky one). */
			pthread_mutex_unlock(&w->mu);
			wal_step(w);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (wal__own_wal == w && !wal__own_flush->finished) {
			/* The other half is this thread's batch in flight:
			 * nobody else can finish it. */
			pthread_mutex_unlock(&w->mu);
			wal__flush_finish(w, wal__own_flush, 0, -ECANCELED);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		/* Full: the writer is busy with the other half (or, after
		 * deferred appends, idle: wake it). */
		wal__kick_locked(w);
		w->space_waiters++;
		atomic_fetch_add_explicit(&w->st_append_wait_count, 1,
					  memory_order_relaxed);
		pthread_cond_wait(&w->space_cv, &w->mu);
		w->space_waiters--;
	}
	off = b->used;
	b->used += len;
	lsn = w->next_lsn++;
	if (b->record_count++ == 0)
		b->first_lsn = lsn;
	atomic_fetch_add_explicit(&b->pending, 1, memory_order_relaxed);
	atomic_store_explicit(&w->appended_lsn, lsn, memory_order_relaxed);
	wake = w->writer_idle && !wal__deferring;
	if (wake)
		w->writer_idle = false;
	else if (wal__deferring)
		wal__deferred = w;
	pthread_mutex_unlock(&w->mu);

	/* Outside the lock: the slot is ours until pending drops. */
	wal__encode_record(b->data + off, lsn,
			   atomic_load_explicit(&w->synced_lsn,
						memory_order_acquire),
			   payload, size, len);
	atomic_fetch_sub_explicit(&b->pending, 1, memory_order_release);
	if (wake)
		pthread_cond_signal(&w->writer_cv);
	*lsn_out = lsn;
	return 0;
}

int wal_wait_durable(wal *w, uint64_t lsn)
{
	int rc;

	if (atomic_load_explicit(&w->durable_lsn, memory_order_acquire) >= lsn)
		return 0;
	rc = atomic_load_explicit(&w->error, memory_order_acquire);
	if (rc != 0)
		return rc;
	if (lsn > atomic_load_explicit(&w->appended_lsn, memory_order_relaxed))
		return -EINVAL; /* never handed out: would wait forever */
	if (w->manual) {
		/* Nobody else writes: one turn covers every append. */
		rc = wal_step(w);
		if (rc < 0)
			return rc;
		ASSERT(atomic_load(&w->durable_lsn) >= lsn);
		return 0;
	}

	pthread_mutex_lock(&w->durable_mu);
	atomic_fetch_add(&w->durable_waiters, 1);
	/* seq_cst pairs with wal__publish: it stores durable_lsn, then
	 * reads durable_waiters; one of us sees the other. */
	while (atomic_load(&w->durable_lsn) < lsn &&
	       atomic_load(&w->error) == 0)
		pthread_cond_wait(&w->durable_cv, &w->durable_mu);
	atomic_fetch_sub(&w->durable_waiters, 1);
	pthread_mutex_unlock(&w->durable_mu);
	return atomic_load(&w->durable_lsn) >= lsn ? 0 : atomic_load(&w->error);
}

/* ---- The writer ------------------------------------------------------------- */

/* Wakes every thread waiting on cv (under mu). */
static void wal__broadcast(pthread_mutex_t *mu, pthread_cond_t *cv)
{
	pthread_mutex_lock(mu);
	pthread_cond_broadcast(cv);
	pthread_mutex_unlock(mu);
}

static void wal__notify(wal *w)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is near 2^64: readers are behind. */
	if (atomic_load_explicit(&w->event_fd_used, memory_order_relaxed) &&
	    write(w->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		wal__log("eventfd write: %s", strerror(errno));
	for (unsigned i = 0; i < w->watch_fd_count; i++) {
		/* seq_cst, after the seq_cst store of durable_lsn (or error):
		 * an owner going idle either sees the advance or is seen. */
		if (w->watch_idle[i] && !atomic_load(w->watch_idle[i]))
			continue;
		if (write(w->watch_fds[i], &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			wal__log("eventfd write: %s", strerror(errno));
	}
	if (atomic_load(&w->durable_waiters) > 0)
		wal__broadcast(&w->durable_mu, &w->durable_cv);
}

/* Publishes lsn durable (synced: fdatasync'ed), which ends at end_off of
 * segment seg_first_lsn (for DURABLE). */
static void wal__publish_at(wal *w, uint64_t lsn, bool synced,
			    uint64_t seg_first_lsn, uint64_t end_off)
{
	ASSERT(lsn >= atomic_load(&w->durable_lsn));
	ASSERT(lsn <= atomic_load(&w->appended_lsn));
	if (synced) {
		atomic_store_explicit(&w->synced_lsn, lsn,
				      memory_order_release);
		/* Only WAL_SYNC_WRITE sets it (the writer's): a caller's
		 * publish does not write what the idle writer reads. */
		if (w->unsynced_since_ns != 0)
			w->unsynced_since_ns = 0;
	}
	atomic_store(&w->durable_lsn, lsn);
	wal__notify(w);
	/* After the waiters are woken: evidence for recovery, not data. */
	if (synced &&
	    wal__now_ns() - w->ckpt_written_ns >= WAL_CKPT_INTERVAL_NS)
		wal__ckpt_write_at(w, lsn, seg_first_lsn, end_off, false);
}

/* Publishes lsn, which ends where the current segment's records do. */
static void wal__publish(wal *w, uint64_t lsn, bool synced)
{
	wal__publish_at(w, lsn, synced, w->seg_first_lsn, w->seg_off);
}

/* The sticky failure: logged once, loudly; everybody wakes up. */
static void wal__fail(wal *w, int rc, const char *what)
{
	char name[WAL_SEGMENT_NAME_SIZE];
	int zero = 0;

	ASSERT(rc < 0);
	if (!atomic_compare_exchange_strong(&w->error, &zero, rc))
		return;
	wal__segment_name(name, w->seg_first_lsn);
	wal__log("FATAL: %s failed in %s/%s: %s. The log now refuses every "
		 "append until a restart recovers it; records after LSN %" PRIu64
		 " are not durable and must not be acknowledged.",
		 what, w->dir, name, strerror(-rc),
		 atomic_load(&w->durable_lsn));
	pthread_mutex_lock(&w->mu);
	pthread_cond_broadcast(&w->space_cv);
	pthread_cond_broadcast(&w->writer_cv);
	pthread_cond_broadcast(&w->turn_cv);
	pthread_mutex_unlock(&w->mu);
	wal__broadcast(&w->durable_mu, &w->durable_cv);
	wal__notify(w);
}

/* Only the writer adds: a load and a store, no locked instruction. */
static void wal__stat_add(_Atomic uint64_t *x, uint64_t v)
{
	atomic_store_explicit(x,
			      atomic_load_explicit(x, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/* A batch written: its count, its records, their histogram. */
static void wal__count_batch(wal *w, uint64_t records)
{
	unsigned b = 0;

	while (b < WAL_BATCH_BUCKET_COUNT - 1 &&
	       records > wal_batch_bucket_le(b))
		b++;
	wal__stat_add(&w->st_batch_buckets[b], 1);
	wal__stat_add(&w->st_batch_records_total, records);
	wal__stat_add(&w->st_batch_count, 1);
}

static void wal__count_sync_ns(wal *w, uint64_t ns)
{
	unsigned b = 0;

	while (b < WAL_SYNC_BUCKET_COUNT - 1 &&
	       ns > wal_sync_bucket_le_us(b) * 1000)
		b++;
	atomic_store_explicit(&w->st_sync_buckets[b],
			      atomic_load_explicit(&w->st_sync_buckets[b],
						   memory_order_relaxed) +
				      1,
			      memory_order_relaxed);

	atomic_store_explicit(&w->st_sync_count,
			      atomic_load_explicit(&w->st_sync_count,
						   memory_order_relaxed) +
				      1,
			      memory_order_relaxed);
	atomic_store_explicit(&w->st_sync_ns_total,
			      atomic_load_explicit(&w->st_sync_ns_total,
						   memory_order_relaxed) +
				      ns,
			      memory_order_relaxed);
	if (ns > atomic_load_explicit(&w->st_sync_ns_max, memory_order_relaxed))
		atomic_store_explicit(&w->st_sync_ns_max, ns,
				      memory_order_relaxed);
}

static void wal__count_sync(wal *w, uint64_t t0)
{
	wal__count_sync_ns(w, wal__now_ns() - t0);
}

/* io_uring: one submission of a write linked to an fdatasync. */
static int wal__uring_write(wal *w, const uint8_t *p, size_t size, uint64_t off,
			    bool sync)
{
	unsigned round;

	/* Each round finishes or makes the write shorter: bounded. */
	for (round = 0; size > 0 || sync; round++) {
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;
		unsigned i, count = 0;
		bool synced = false;
		int rc;

		if (round == WAL_URING_ROUND_MAX)
			return -EIO; /* a device that keeps writing little */
		if (size > 0) {
			sqe = io_uring_get_sqe(&w->ring);
			ASSERT(sqe != NULL);
			io_uring_prep_write(sqe, w->seg_fd, p, (unsigned)size,
					    off);
			sqe->user_data = 1;
			if (sync)
				sqe->flags |= IOSQE_IO_LINK;
			count++;
		}
		if (sync) {
			sqe = io_uring_get_sqe(&w->ring);
			ASSERT(sqe != NULL);
			io_uring_prep_fsync(sqe, w->seg_fd,
					    IORING_FSYNC_DATASYNC);
			sqe->user_data = 2;
			count++;
		}
		do
			rc = io_uring_submit_and_wait(&w->ring, count);
		while (rc == -EINTR);
		if (rc < 0)
			return rc;
		rc = 0;
		for (i = 0; i < count; i++) {
			int res;

			do
				res = io_uring_wait_cqe(&w->ring, &cqe);
			while (res == -EINTR);
			if (res < 0)
				return res;
			res = cqe->res;
			if (cqe->user_data == 1) {
				if (res < 0 && rc == 0)
					rc = res;
				else if (res == 0 && rc == 0)
					rc = -EIO;
				else if (res > 0) {
					p += res;
					off += (unsigned)res;
					size -= (unsigned)res;
				}
			} else if (res == 0) {
				synced = true;
			} else if (res != -ECANCELED && rc == 0) {
				rc = res;
			}
			io_uring_cqe_seen(&w->ring, cqe);
		}
		if (rc != 0)
			return rc;
		if (synced)
			sync = false;
	}
	return 0;
}

/* Writes size bytes at seg_off of the current segment, then syncs it if
 * sync. 0 or -errno; the failing call's name in *what. */
static int wal__write(wal *w, const uint8_t *p, size_t size, bool sync,
		      const char **what)
{
	uint64_t t0;
	int rc = 0;

	if (w->io == WAL_IO_URING) {
		*what = sync ? "io_uring write+fdatasync" : "io_uring write";
		t0 = wal__now_ns();
		rc = wal__uring_write(w, p, size, w->seg_off, sync);
		if (rc == 0 && sync)
			wal__count_sync(w, t0);
	} else {
		*what = "pwrite";
		if (size > 0)
			rc = wal__pwrite_all(w->seg_fd, p, size, w->seg_off);
		if (rc == 0 && sync) {
			*what = "fdatasync";
			t0 = wal__now_ns();
			rc = wal__sync(w->seg_fd);
			if (rc == 0)
				wal__count_sync(w, t0);
		}
	}
	if (rc == 0) {
		w->seg_off += size;
		atomic_store_explicit(&w->st_bytes_written,
				      atomic_load_explicit(&w->st_bytes_written,
							   memory_order_relaxed) +
					      size,
				      memory_order_relaxed);
	}
	return rc;
}

/* WAL_SYNC_WRITE: syncs what was written since the last sync. */
static int wal__sync_written(wal *w, const char **what)
{
	uint64_t lsn = atomic_load(&w->durable_lsn), t0 = wal__now_ns();
	int rc;

	*what = "fdatasync";
	rc = wal__sync(w->seg_fd);
	if (rc != 0)
		return rc;
	wal__count_sync(w, t0);
	atomic_store_explicit(&w->synced_lsn, lsn, memory_order_release);
	w->unsynced_since_ns = 0;
	if (wal__now_ns() - w->ckpt_written_ns >= WAL_CKPT_INTERVAL_NS)
		wal__ckpt_write(w, lsn, false);
	return 0;
}

/* Writes the half b to the log and makes it durable. */
static int wal__write_batch(wal *w, struct wal_buf *b, const char **what)
{
	const uint8_t *p = b->data;
	uint64_t lsn = b->first_lsn, last = b->first_lsn + b->record_count - 1;
	size_t size = b->used;
	int rc;

	ASSERT(b->record_count > 0);
	ASSERT(atomic_load(&b->pending) == 0);
	while (size > 0) {
		uint64_t room = w->seg_limit - w->seg_off;
		uint64_t count = last - lsn + 1;
		size_t n = size;

		ASSERT(w->seg_off <= w->seg_limit);
		if (n > room) {
			/* Only whole records go in: find how many fit. */
			n = 0;
			count = 0;
			while (n < size) {
				struct wal_rec_hdr h;

				memcpy(&h, p + n, sizeof(h));
				ASSERT(h.magic == WAL_RECORD_MAGIC);
				ASSERT(h.lsn == lsn + count);
				if (n + wal__record_len(h.size) > room)
					break;
				n += wal__record_len(h.size);
				count++;
			}
		}
		if (n == size) {
			rc = wal__write(w, p, n, w->sync == WAL_SYNC_FDATASYNC,
					what);
			if (rc != 0)
				return rc;
			lsn += count;
			break;
		}
		/* Roll over: seal this segment (with fdatasync, in either
		 * mode; a new segment proves the old one durable), then the
		 * next one. WAL_SYNC_FDATASYNC: nothing new, nothing to sync. */
		rc = wal__write(w, p, n, n > 0 || w->unsynced_since_ns != 0,
				what);
		if (rc != 0)
			return rc;
		if (count > 0)
			wal__publish(w, lsn + count - 1, true);
		p += n;
		size -= n;
		lsn += count;
		*what = "starting a new segment";
		rc = wal__next_segment(w, lsn);
		if (rc != 0)
			return rc;
	}
	ASSERT(lsn == last + 1);
	if (w->sync == WAL_SYNC_FDATASYNC) {
		wal__publish(w, last, true);
	} else {
		uint64_t now = wal__now_ns();

		if (w->unsynced_since_ns == 0)
			w->unsynced_since_ns = now;
		wal__publish(w, last, false);
		/* Busy writers sync here, idle ones in wal__take_batch. */
		if (now - w->unsynced_since_ns >= WAL_SYNC_WRITE_INTERVAL_NS)
			return wal__sync_written(w, what);
	}
	return 0;
}

/* Under mu: waits for records and takes the active half (and io_busy),
 * or returns NULL when stopping with nothing left, when the log failed or
 * when a WAL_SYNC_WRITE sync is due. While a caller's batch is in flight
 * (io_busy) the writer waits: one batch at a time, in LSN order. With
 * two writer threads, while the other writes (io_busy) or two batches are
 * in flight, it waits too: the other wakes it (writer_idle stays false,
 * appenders need not). */
static struct wal_buf *wal__swap_locked(wal *w);

static struct wal_buf *wal__take_batch(wal *w, bool *sync_due)
{
	*sync_due = false;
	for (;;) {
		if (atomic_load_explicit(&w->error, memory_order_relaxed))
			return NULL;
		if (!w->io_busy && w->inflight < w->syncs_in_flight &&
		    w->active->used != 0)
			break;
		if (w->stopping && !w->io_busy && w->active->used == 0)
			return NULL;
		w->writer_idle =
			w->syncs_in_flight == 1 || w->active->used == 0;
		w->writer_waiting++;
		if (w->unsynced_since_ns != 0) {
			uint64_t due = w->unsynced_since_ns +
				       WAL_SYNC_WRITE_INTERVAL_NS;
			struct timespec ts = {
				.tv_sec = (time_t)(due / 1000000000ull),
				.tv_nsec = (long)(due % 1000000000ull),
			};

			if (wal__now_ns() >= due) {
				*sync_due = true;
				w->writer_idle = false;
				w->writer_waiting--;
				return NULL;
			}
			pthread_cond_timedwait(&w->writer_cv, &w->mu, &ts);
		} else {
			pthread_cond_wait(&w->writer_cv, &w->mu);
		}
		w->writer_waiting--;
	}
	/* The other writer thread, if it sleeps, now has nothing to take:
	 * the next append wakes it. */
	w->writer_idle = w->writer_waiting > 0;
	w->io_busy = true;
	return wal__swap_locked(w);
}

/* Under mu: takes the active half (not empty), makes the other active. */
static struct wal_buf *wal__swap_locked(wal *w)
{
	struct wal_buf *b = w->active, *other;

	ASSERT(b->used > 0);
	other = b == &w->bufs[0] ? &w->bufs[1] : &w->bufs[0];
	ASSERT(other->used == 0);
	ASSERT(other->record_count == 0);
	w->active = other;
	if (w->space_waiters > 0)
		pthread_cond_broadcast(&w->space_cv);
	return b;
}

/* Waits until the appenders that reserved room in b have filled it. */
static void wal__wait_filled(struct wal_buf *b)
{
	unsigned spin = 0;

	/* Fillers hold no lock and never block: short wait. */
	while (atomic_load_explicit(&b->pending, memory_order_acquire) != 0) {
		if (++spin >= WAL_SPIN_COUNT_MAX) {
			sched_yield();
			spin = 0;
		}
	}
}

/* A batch taken: counted before its publish wakes anyone (who then sees
 * it in wal_stats). By whoever writes it. */
static void wal__count_taken(wal *w, const struct wal_buf *b)
{
	uint64_t records_max;

	ASSERT(atomic_load(&b->pending) == 0);
	wal__count_batch(w, b->record_count);
	records_max = atomic_load_explicit(&w->st_batch_records_max,
					   memory_order_relaxed);
	if (b->record_count > records_max)
		atomic_store_explicit(&w->st_batch_records_max, b->record_count,
				      memory_order_relaxed);
}

/* Writes the taken half b (filled: no pending appender), then frees it. */
static int wal__write_taken(wal *w, struct wal_buf *b, const char **what)
{
	int rc;

	wal__count_taken(w, b);
	rc = wal__write_batch(w, b, what);
	if (rc != 0)
		return rc;
	/* Not active, not ours any more after this: no lock needed (it
	 * becomes active again only by our own swap, under mu). */
	b->used = 0;
	b->record_count = 0;
	return 0;
}

int wal_step(wal *w)
{
	struct wal_buf *b = NULL;
	const char *what = "";
	uint32_t count;
	int rc;

	ASSERT(w->manual);
	rc = atomic_load_explicit(&w->error, memory_order_acquire);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w->mu);
	if (w->active->used > 0)
		b = wal__swap_locked(w);
	pthread_mutex_unlock(&w->mu);
	if (b == NULL)
		return 0;
	count = b->record_count;
	rc = wal__write_taken(w, b, &what);
	if (rc != 0) {
		wal__fail(w, rc, what);
		return rc;
	}
	ASSERT(atomic_load(&w->durable_lsn) == atomic_load(&w->appended_lsn));
	return (int)count;
}

static void *wal__writer_main(void *arg)
{
	wal *w = arg;
	const char *what = "";
	int rc = 0;

	for (;;) {
		struct wal_buf *b;
		bool sync_due;

		pthread_mutex_lock(&w->mu);
		b = wal__take_batch(w, &sync_due);
		pthread_mutex_unlock(&w->mu);
		if (b == NULL) {
			if (!sync_due)
				break;
			rc = wal__sync_written(w, &what);
			if (rc != 0)
				break;
			continue;
		}
		wal__wait_filled(b);
		rc = wal__write_taken(w, b, &what);
		if (rc != 0)
			break;
		pthread_mutex_lock(&w->mu);
		w->io_busy = false;
		pthread_mutex_unlock(&w->mu);
	}
	if (rc == 0 && w->unsynced_since_ns != 0)
		rc = wal__sync_written(w, &what);
	if (rc != 0)
		wal__fail(w, rc, what);
	return NULL;
}

/* ---- Two syncs in flight -------------------------------------------------- */

/*
 * syncs_in_flight 2: two writer threads run wal__overlap_main. Each takes
 * a batch (numbered, take_seq) and io_busy, writes it at seg_off, and
 * gives io_busy and the half back as soon as the pwrite returned (its
 * bytes are in the page cache): the writes stay one at a time, in LSN
 * order. Then it fdatasyncs on its own descriptor of the segment (rule:
 * each syncing thread its own open file description, so that a writeback
 * error reaches every sync that covers it) while the other thread may
 * take, write and sync the next batch. A batch is published only after
 * the one before it (publish_seq): durable_lsn moves in order and never
 * past a batch whose sync has not succeeded. Any failure is the sticky
 * error, and nothing is published after it, not even an earlier batch
 * whose own sync succeeded. A batch that must roll over waits until every
 * batch before it is published and holds io_busy meanwhile: the roll-over
 * happens with nothing else in flight, as with one writer.
 */

/* Under mu: waits until every batch before seq is published (0) or the
 * log failed (its error: seq is not published). */
static int wal__wait_turn_locked(wal *w, uint64_t seq)
{
	int rc;

	ASSERT(seq > w->publish_seq);
	while ((rc = atomic_load_explicit(&w->error, memory_order_relaxed)) ==
		       0 &&
	       w->publish_seq != seq - 1)
		pthread_cond_wait(&w->turn_cv, &w->mu);
	return rc;
}

/* Under mu: batch seq was published; the next may publish, a writer
 * thread held back by the count may take. */
static void wal__batch_done_locked(wal *w, uint64_t seq)
{
	ASSERT(w->publish_seq == seq - 1);
	ASSERT(w->inflight > 0);
	w->publish_seq = seq;
	w->inflight--;
	pthread_cond_broadcast(&w->turn_cv);
	if (w->active->used != 0)
		pthread_cond_broadcast(&w->writer_cv);
}

/* Writes, syncs and publishes batch seq (the half b, taken, filled), in
 * the current segment (no roll-over). 0, or -errno with *what; 1 when the
 * log failed elsewhere (nothing published, nothing to report). */
static int wal__overlap_batch(struct wal_writer *me, struct wal_buf *b,
			      uint64_t seq, const char **what)
{
	wal *w = me->w;
	uint64_t last = b->first_lsn + b->record_count - 1;
	uint64_t seg_first_lsn = w->seg_first_lsn, end_off, t0, sync_ns;
	int fd = me->index == 0 ? w->seg_fd : w->sync_fd, rc;

	ASSERT(fd >= 0);
	ASSERT(b->used <= w->seg_limit - w->seg_off);
	*what = "pwrite";
	rc = wal__pwrite_all(w->seg_fd, b->data, b->used, w->seg_off);
	if (rc != 0)
		return rc;
	w->seg_off += b->used;
	end_off = w->seg_off;
	wal__stat_add(&w->st_bytes_written, b->used);
	/* In the page cache now: the half and the write side are free. */
	b->used = 0;
	b->record_count = 0;
	pthread_mutex_lock(&w->mu);
	w->io_busy = false;
	if (w->active->used != 0)
		pthread_cond_broadcast(&w->writer_cv);
	pthread_mutex_unlock(&w->mu);

	*what = "fdatasync";
	t0 = wal__now_ns();
	rc = wal__sync(fd);
	sync_ns = wal__now_ns() - t0;
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w->mu);
	rc = wal__wait_turn_locked(w, seq);
	pthread_mutex_unlock(&w->mu);
	if (rc != 0)
		return 1;
	/* Our turn: the only publisher, the only adder of sync counters. */
	wal__count_sync_ns(w, sync_ns);
	wal__publish_at(w, last, true, seg_first_lsn, end_off);
	pthread_mutex_lock(&w->mu);
	wal__batch_done_locked(w, seq);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void *wal__overlap_main(void *arg)
{
	struct wal_writer *me = arg;
	wal *w = me->w;
	const char *what = "";
	int rc = 0;

	ASSERT(w->syncs_in_flight > 1);
	ASSERT(w->sync == WAL_SYNC_FDATASYNC && w->io == WAL_IO_THREAD);
	for (;;) {
		struct wal_buf *b;
		uint64_t seq = 0;
		bool sync_due;

		pthread_mutex_lock(&w->mu);
		b = wal__take_batch(w, &sync_due);
		if (b != NULL) {
			seq = ++w->take_seq;
			w->inflight++;
		}
		pthread_mutex_unlock(&w->mu);
		ASSERT(!sync_due); /* WAL_SYNC_WRITE only */
		if (b == NULL)
			break;
		wal__wait_filled(b);
		wal__count_taken(w, b);
		if (b->used <= w->seg_limit - w->seg_off) {
			rc = wal__overlap_batch(me, b, seq, &what);
			if (rc != 0)
				break;
			continue;
		}
		/* A roll-over: once the batches before it are published,
		 * alone, as the single writer does it (io_busy held). */
		pthread_mutex_lock(&w->mu);
		rc = wal__wait_turn_locked(w, seq);
		pthread_mutex_unlock(&w->mu);
		if (rc != 0) {
			rc = 1;
			break;
		}
		rc = wal__write_batch(w, b, &what); /* counted above */
		if (rc != 0)
			break;
		b->used = 0;
		b->record_count = 0;
		pthread_mutex_lock(&w->mu);
		w->io_busy = false;
		wal__batch_done_locked(w, seq);
		pthread_mutex_unlock(&w->mu);
	}
	if (rc < 0)
		wal__fail(w, rc, what);
	return NULL;
}

/* ---- The caller's batch ------------------------------------------------- */

int wal_flush_take(wal *w, struct wal_flush *f)
{
	struct wal_buf *b;

	wal__deferring = false;
	wal__deferred = NULL;
	if (wal__own_wal != NULL || w->manual)
		return 0; /* ours in flight: its wal_flush_done comes first;
			   * manual: the caller steps */
	pthread_mutex_lock(&w->mu);
	b = w->active;
	if (b->used == 0 || w->io_busy || !w->started || w->stopping ||
	    atomic_load_explicit(&w->error, memory_order_relaxed) != 0) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	/* What only the writer does: roll over, the timed syncs of
	 * WAL_SYNC_WRITE, a test's syscall table, and every batch when two
	 * writer threads overlap their syncs. */
	if (w->sync != WAL_SYNC_FDATASYNC || !wal__syscalls_real() ||
	    w->syncs_in_flight > 1 || b->used > w->seg_limit - w->seg_off) {
		wal__kick_locked(w);
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	w->io_busy = true;
	b = wal__swap_locked(w);
	pthread_mutex_unlock(&w->mu);

	wal__wait_filled(b);
	wal__count_taken(w, b);
	*f = (struct wal_flush){
		.fd = w->seg_fd,
		.data = b->data,
		.size = b->used,
		.off = w->seg_off,
		.buf = b,
		.last_lsn = b->first_lsn + b->record_count - 1,
		.started_ns = wal__now_ns(),
	};
	wal__own_flush = f;
	wal__own_wal = w;
	return 1;
}

/* Makes f's batch durable from what its submission did (write_res bytes
 * written or -errno, sync_res the fdatasync's 0 or -errno), publishes it
 * and frees io_busy. The half is reused at once: if the kernel may still
 * read it (finished before the completions came: write_res 0,
 * -ECANCELED), the half gets a new buffer and the old one is freed by
 * wal_flush_done. */
static void wal__flush_finish(wal *w, struct wal_flush *f, int write_res,
			      int sync_res)
{
	struct wal_buf *b = f->buf;
	const char *what = "io_uring write";
	bool early = write_res == 0 && sync_res == -ECANCELED;
	int rc = 0;

	ASSERT(!f->finished);
	ASSERT(write_res <= (int)f->size);
	if (write_res < 0) {
		rc = write_res;
	} else if ((uint32_t)write_res < f->size || sync_res == -ECANCELED) {
		/* A short write breaks the link: the rest, here. */
		uint32_t done = (uint32_t)write_res;

		what = "pwrite";
		rc = wal__pwrite_all(f->fd, (const uint8_t *)f->data + done,
				     f->size - done, f->off + done);
		if (rc == 0) {
			what = "fdatasync";
			rc = wal__sync(f->fd);
		}
	} else if (sync_res < 0) {
		what = "io_uring fdatasync";
		rc = sync_res;
	}
	if (rc == 0) {
		w->seg_off += f->size;
		wal__stat_add(&w->st_bytes_written, f->size);
		wal__count_sync(w, f->started_ns);
		wal__publish(w, f->last_lsn, true);
	} else {
		wal__fail(w, rc, what);
	}
	if (early) {
		void *fresh = aligned_alloc(4096, w->half_size);

		if (fresh == NULL) {
			/* The kernel may still read it: never reused. */
			wal__fail(w, -ENOMEM, "replacing a buffer in flight");
		} else {
			f->old_data = b->data;
			b->data = fresh;
		}
	}
	b->used = 0;
	b->record_count = 0;
	f->finished = true;
	pthread_mutex_lock(&w->mu);
	w->io_busy = false;
	if (w->space_waiters > 0)
		pthread_cond_broadcast(&w->space_cv);
	/* What was appended meanwhile is the next wal_flush_take()'s; a
	 * stopping writer waits for this batch to drain the rest. */
	if (w->stopping)
		wal__kick_locked(w);
	pthread_mutex_unlock(&w->mu);
}

void wal_flush_done(wal *w, struct wal_flush *f, int write_res, int sync_res)
{
	ASSERT(wal__own_wal == w && wal__own_flush == f);
	if (!f->finished)
		wal__flush_finish(w, f, write_res, sync_res);
	free(f->old_data);
	f->old_data = NULL;
	wal__own_flush = NULL;
	wal__own_wal = NULL;
}

/* ---- Start and stop ------------------------------------------------------- */

int wal_start(wal *w)
{
	unsigned i = 0;
	int rc;

	ASSERT(w != NULL);
	if (w->started)
		return -EINVAL;
	if (w->manual) {
		pthread_mutex_lock(&w->mu);
		w->started = true;
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	if (w->io == WAL_IO_URING) {
		rc = io_uring_queue_init(4, &w->ring, 0);
		if (rc < 0)
			return rc;
		w->ring_ok = true;
	}
	w->prep_state = WAL_PREP_WANTED;
	rc = -pthread_create(&w->prep_thread, NULL, wal__prep_main, w);
	if (rc != 0)
		goto out_ring;
	if (w->syncs_in_flight > 1) {
		/* The second thread's own open of the tail segment (recovery
		 * synced it; nothing written since). */
		char name[WAL_SEGMENT_NAME_SIZE];

		wal__segment_name(name, w->seg_first_lsn);
		if (w->sync_fd >= 0)
			close(w->sync_fd);
		w->sync_fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
		if (w->sync_fd < 0) {
			rc = -errno;
			goto out_prep;
		}
	}
	pthread_mutex_lock(&w->mu);
	w->started = true;
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->syncs_in_flight; i++) {
		struct wal_writer *wr = &w->writers[i];

		wr->w = w;
		wr->index = i;
		rc = -pthread_create(&wr->thread, NULL,
				     w->syncs_in_flight > 1 ? wal__overlap_main
							    : wal__writer_main,
				     w->syncs_in_flight > 1 ? (void *)wr
							    : (void *)w);
		if (rc != 0)
			goto out_writers;
	}
	return 0;

out_writers:
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->writer_cv);
	pthread_mutex_unlock(&w->mu);
	while (i-- > 0)
		pthread_join(w->writers[i].thread, NULL);
	pthread_mutex_lock(&w->mu);
	w->stopping = false;
	w->started = false;
	pthread_mutex_unlock(&w->mu);
out_prep:
	pthread_mutex_lock(&w->prep_mu);
	w->prep_stop = true;
	pthread_cond_broadcast(&w->prep_cv);
	pthread_mutex_unlock(&w->prep_mu);
	pthread_join(w->prep_thread, NULL);
out_ring:
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	w->ring_ok = false;
	return rc;
}

void wal__writer_stop(wal *w)
{
	if (w->manual) {
		/* As the thread does when stopping: what is appended goes. */
		while (wal_step(w) > 0)
			;
		pthread_mutex_lock(&w->mu);
		w->stopping = true;
		w->started = false;
		pthread_mutex_unlock(&w->mu);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->writer_cv);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->syncs_in_flight; i++)
		pthread_join(w->writers[i].thread, NULL);

	pthread_mutex_lock(&w->prep_mu);
	w->prep_stop = true;
	pthread_cond_broadcast(&w->prep_cv);
	pthread_mutex_unlock(&w->prep_mu);
	pthread_join(w->prep_thread, NULL);
	if (w->prep_fd >= 0) {
		close(w->prep_fd);
		unlinkat(w->dir_fd, WAL_PREP_NAME, 0);
		w->prep_fd = -1;
	}
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	w->ring_ok = false;
	w->started = false;
}
