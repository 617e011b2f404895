/*
 * wal_int.h: internals shared by the files of the log: wal.c (the design,
 * open, replay, close), wal_segment.c (segment files: names, format,
 * checks, mapping, the syscall table), wal_recover.c (recovery at open,
 * cuts), wal_writer.c (append, group commit, segments), wal_snapshot.c
 * and wal_reader.c.
 * Not installed; nothing outside wal/ includes it. See wal.c for the design.
 */
#ifndef BOOKD_WAL_INT_H
#define BOOKD_WAL_INT_H

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <liburing.h>
#include <xxhash.h>

#include "wal.h"

/* ASSERT: our invariants, on in release builds too (core/bookd_assert.h). */
#include "bookd_assert.h"

/* ---- Byte format (little-endian; docs/wal.md) ------------------------- */

#define WAL_SEGMENT_MAGIC 0x47455357444b4f42ull /* "BOKDWSEG" */
#define WAL_SEGMENT_VERSION 2u /* written; 1 (no trailer) still read */
#define WAL_SEGMENT_VERSION_1 1u
#define WAL_TRAILER_MAGIC 0x444e4557444b4f42ull /* "BOKDWEND" */
#define WAL_SEGMENT_TRAILER_SIZE 64		/* version 2: the last bytes */
#define WAL_RECORD_MAGIC 0xb7u
#define WAL_RECORD_VERSION 1u
#define WAL_RECORD_TYPE_DATA 1u

/* Segment header, at offset 0 of every segment file. */
struct wal_seg_hdr {
	uint64_t magic;	       /* WAL_SEGMENT_MAGIC */
	uint32_t version;      /* WAL_SEGMENT_VERSION */
	uint32_t header_size;  /* WAL_SEGMENT_HEADER_SIZE */
	uint64_t segment_size; /* file size, bytes */
	uint64_t first_lsn;    /* = the number in the file name */
	uint8_t reserved[24];  /* zero */
	uint64_t checksum;     /* XXH3-64 of bytes 0..55 */
};
_Static_assert(sizeof(struct wal_seg_hdr) == WAL_SEGMENT_HEADER_SIZE,
	       "wal segment header");

/*
 * Segment trailer (format version 2), in the last 64 bytes of the file:
 * zero until the writer rolls over to the next segment, then written and
 * synced once that successor exists (durable header, name, directory).
 * A sealed segment therefore proves its successor, and where its own
 * records end. Records never reach into it.
 */
struct wal_seg_trailer {
	uint64_t magic;	      /* WAL_TRAILER_MAGIC */
	uint64_t next_lsn;    /* = the successor's first LSN */
	uint64_t end_off;     /* offset after this segment's last record */
	uint8_t reserved[32]; /* zero */
	uint64_t checksum;    /* XXH3-64 of bytes 0..55 */
};
_Static_assert(sizeof(struct wal_seg_trailer) == WAL_SEGMENT_TRAILER_SIZE,
	       "wal segment trailer");

/*
 * The durable checkpoint, file DURABLE (64 bytes at offset 0, one sector):
 * an LSN every record up to which was fdatasync'ed, and where it ended.
 * Rewritten in place (no fdatasync) by the writer at most every
 * WAL_CKPT_INTERVAL_NS after a sync, and synced at the end of recovery and
 * at close: whatever version reaches the disk was true when written, so
 * recovery may trust it as a lower bound of what was acknowledged.
 */
#define WAL_CKPT_MAGIC 0x52554457444b4f42ull /* "BOKDWDUR" */
struct wal_ckpt {
	uint64_t magic;		/* WAL_CKPT_MAGIC */
	uint64_t lsn;		/* every record <= it was durable */
	uint64_t seg_first_lsn; /* the segment holding it */
	uint64_t end_off;	/* where that segment's records ended */
	uint8_t reserved[24];	/* zero */
	uint64_t checksum;	/* XXH3-64 of bytes 0..55 */
};
_Static_assert(sizeof(struct wal_ckpt) == 64, "wal checkpoint");

/* The checksum of a 64-byte block of the format (a segment header or
 * trailer, DURABLE): XXH3-64 of its bytes 0..55, kept in bytes 56..63. */
#define WAL_BLOCK_SUM_SIZE 56
_Static_assert(offsetof(struct wal_seg_hdr, checksum) == WAL_BLOCK_SUM_SIZE,
	       "segment header checksum");
_Static_assert(offsetof(struct wal_seg_trailer, checksum) == WAL_BLOCK_SUM_SIZE,
	       "segment trailer checksum");
_Static_assert(offsetof(struct wal_ckpt, checksum) == WAL_BLOCK_SUM_SIZE,
	       "checkpoint checksum");

static inline uint64_t wal__block_sum(const void *block)
{
	return XXH3_64bits(block, WAL_BLOCK_SUM_SIZE);
}

/* Record header, then the payload, then zero padding to 8 bytes. */
struct wal_rec_hdr {
	uint64_t checksum; /* XXH3-64 of bytes 8..len-1 (rest of header,
			      * payload, padding) */
	uint64_t lsn;
	uint64_t synced_lsn; /* every record <= this was fdatasync'ed before
			      * this one was appended (recovery evidence) */
	uint32_t size;	     /* payload bytes, <= WAL_RECORD_SIZE_MAX */
	uint8_t magic;	     /* WAL_RECORD_MAGIC */
	uint8_t version;     /* WAL_RECORD_VERSION */
	uint8_t type;	     /* WAL_RECORD_TYPE_DATA */
	uint8_t flags;	     /* 0 */
};
_Static_assert(sizeof(struct wal_rec_hdr) == WAL_RECORD_HEADER_SIZE,
	       "wal record header");
_Static_assert(WAL_SEGMENT_HEADER_SIZE % WAL_RECORD_ALIGN == 0,
	       "records start aligned");
_Static_assert(WAL_SEGMENT_SIZE_MIN >=
		       WAL_SEGMENT_HEADER_SIZE + WAL_RECORD_HEADER_SIZE +
			       WAL_RECORD_SIZE_MAX + WAL_SEGMENT_TRAILER_SIZE,
	       "a segment holds a maximal record");
_Static_assert(WAL_BUFFER_SIZE_MIN / 2 >=
		       WAL_RECORD_HEADER_SIZE + WAL_RECORD_SIZE_MAX,
	       "a buffer half holds a maximal record");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the format is little-endian; add byte swaps to port");

/* Bytes a record of payload size takes in the log. */
static inline uint32_t wal__record_len(size_t size)
{
	return (uint32_t)((WAL_RECORD_HEADER_SIZE + size +
			   (WAL_RECORD_ALIGN - 1)) &
			  ~(size_t)(WAL_RECORD_ALIGN - 1));
}

#define WAL_SEGMENT_NAME_SIZE 32 /* "%020llu.wal" + NUL, rounded up */
#define WAL_PREP_NAME "next.tmp" /* the segment prepared ahead */
#define WAL_LOCK_NAME "LOCK"
#define WAL_CKPT_NAME "DURABLE"
#define WAL_CKPT_INTERVAL_NS (100 * 1000 * 1000ull)
#define WAL_ZERO_CHUNK_SIZE (1u << 20)
#define WAL_SEGMENT_COUNT_MAX (1u << 20) /* files scanned at open */
#define WAL_SYNC_WRITE_INTERVAL_NS (10 * 1000 * 1000ull)
#define WAL_SNAPSHOT_KEEP 2
#define WAL_ERR_SIZE 256

/* ---- The handle ------------------------------------------------------- */

/* One half of the group-commit buffer. Appenders reserve in the active
 * half under wal.mu and fill outside it; the writer owns the other. */
struct wal_buf {
	uint8_t *data;
	uint32_t used;		  /* bytes reserved (under mu) */
	uint32_t record_count;	  /* (under mu) */
	uint64_t first_lsn;	  /* of the first record (under mu) */
	_Atomic uint32_t pending; /* reserved but still being filled */
};

/* What recovery found, for wal_replay. */
struct wal_seg_info {
	uint64_t first_lsn;
	uint64_t record_count;
	uint64_t end_off; /* after the last valid record */
};

enum wal_prep_state {
	WAL_PREP_IDLE = 0, /* nothing wanted (the writer is activating) */
	WAL_PREP_WANTED,
	WAL_PREP_BUSY,
	WAL_PREP_READY,	 /* prep_fd is a zero-filled WAL_PREP_NAME */
	WAL_PREP_FAILED, /* prep_error; the writer retries itself */
};

struct wal {
	/* Fixed after wal_open. */
	char *dir;
	int dir_fd;
	int lock_fd;
	int ckpt_fd; /* DURABLE, -1 if it cannot be written */
	int event_fd;
	int watch_fds[WAL_WATCH_FD_COUNT_MAX]; /* wal_event_fd_add */
	const _Atomic bool *watch_idle[WAL_WATCH_FD_COUNT_MAX]; /* or NULL */
	_Atomic bool event_fd_used; /* wal_event_fd was asked for */
	unsigned watch_fd_count;
	uint64_t segment_size; /* for new segments */
	enum wal_sync sync;
	enum wal_io io;
	uint32_t half_size;
	bool manual; /* wal_config.manual: the caller runs wal_step */
	unsigned syncs_in_flight; /* 1, or 2 on the writer threads' path */
	bool started;
	uint8_t *zero; /* WAL_ZERO_CHUNK_SIZE zero bytes */

	/* Recovery result, used before wal_start. */
	struct wal_seg_info *segs;
	size_t seg_count;
	struct wal_ckpt ckpt; /* as found at open (lsn 0: none) */

	/* Appenders and writer, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t writer_cv; /* writer waits for records */
	pthread_cond_t space_cv;  /* appenders wait for a free half */
	struct wal_buf bufs[2];
	struct wal_buf *active;
	uint64_t next_lsn;
	uint32_t space_waiters;
	uint32_t writer_waiting; /* writer threads in wal__take_batch's wait */
	bool writer_idle;	 /* one sleeps with nothing to take: kick it */
	bool stopping;
	/* Whoever writes a batch holds this (the writer, or a caller between
	 * wal_flush_take and wal_flush_done): one batch in flight at a time,
	 * and the seg_* fields below are the holder's. */
	bool io_busy;
	struct wal_flush *caller_flush; /* the caller's batch in flight */
	/* syncs_in_flight 2 (wal__overlap_main): batches are numbered as
	 * they are taken; a batch is published only once the one before it
	 * was (publish_seq), so durable_lsn moves in order. io_busy is held
	 * from the take to the end of the pwrite (the seg_* fields), then
	 * the batch syncs on its thread's own descriptor. */
	uint32_t inflight;	/* taken, not yet published */
	uint64_t take_seq;	/* the last batch taken */
	uint64_t publish_seq;	/* the last batch published */
	pthread_cond_t turn_cv; /* a batch waits for publish_seq */

	/* Published by the writer. */
	_Atomic uint64_t appended_lsn; /* mirror of next_lsn - 1 */
	_Atomic uint64_t durable_lsn;
	_Atomic uint64_t synced_lsn; /* <= durable; fdatasync'ed */
	_Atomic int error;	     /* sticky -errno */
	pthread_mutex_t durable_mu;
	pthread_cond_t durable_cv;
	_Atomic uint32_t durable_waiters;

	/* The holder of io_busy only (and wal_open before the writer
	 * starts). */
	int seg_fd;
	uint64_t seg_first_lsn;
	uint64_t seg_off;	    /* where the next record goes */
	uint64_t seg_size;	    /* of the current segment */
	uint64_t seg_limit;	    /* records end before this (the trailer) */
	uint64_t unsynced_since_ns; /* WAL_SYNC_WRITE: 0 if all synced */
	uint64_t ckpt_written_ns;   /* last DURABLE write */
	struct io_uring ring;
	bool ring_ok;
	/* The second writer thread's own descriptor of the current segment
	 * (syncs_in_flight 2; the first syncs seg_fd): each thread that
	 * fdatasyncs in parallel has its own open file description, so a
	 * writeback error is reported to each (errseq), never to one only.
	 * Opened again at each roll-over, before any record goes in. */
	int sync_fd;
	struct wal_writer {
		wal *w;
		unsigned index; /* 0: syncs seg_fd, 1: sync_fd */
		pthread_t thread;
	} writers[WAL_SYNCS_IN_FLIGHT_MAX];

	/* The preparer, under prep_mu. */
	pthread_mutex_t prep_mu;
	pthread_cond_t prep_cv;
	enum wal_prep_state prep_state;
	int prep_fd;
	int prep_error;
	bool prep_stop;
	pthread_t prep_thread;

	/* Snapshots and retention. */
	_Atomic uint64_t retain_lsn[WAL_HOLDER_COUNT]; /* UINT64_MAX: none */
	pthread_mutex_t snap_mu;

	/* Counters (written by the writer, read anywhere; with two writer
	 * threads the batch counters by the io_busy holder, the sync ones by
	 * the publisher in turn: one adder at a time each). */
	_Atomic uint64_t st_batch_count, st_batch_records_max, st_sync_count,
		st_sync_ns_total, st_sync_ns_max, st_bytes_written,
		st_segment_count, st_append_wait_count;
	_Atomic uint64_t st_sync_buckets[WAL_SYNC_BUCKET_COUNT];
	_Atomic uint64_t st_batch_records_total;
	_Atomic uint64_t st_batch_buckets[WAL_BATCH_BUCKET_COUNT];
};

/* ---- Shared helpers --------------------------------------------------- */

/* The syscall table (wal_set_syscalls). */
ssize_t wal__pwrite(int fd, const void *buf, size_t size, off_t off);
int wal__fdatasync(int fd);
/* False while a test's table (wal_set_syscalls) replaces a real call. */
bool wal__syscalls_real(void);
int wal__fallocate(int fd, int mode, off_t off, off_t len);
/* Writes all of buf or returns -errno (EINTR and short writes retried). */
int wal__pwrite_all(int fd, const void *buf, size_t size, uint64_t off);
/* fdatasync; 0 or -errno. */
int wal__sync(int fd);

void wal__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wal__errf(char *err, size_t err_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t wal__now_ns(void);
void wal__segment_name(char out[WAL_SEGMENT_NAME_SIZE], uint64_t first_lsn);
/* Parses "<20 digits>.wal"; false for anything else. */
bool wal__parse_segment_name(const char *name, uint64_t *first_lsn);
/* Parses "snap-<16 hex>"; false for anything else (temp files too). */
bool wal__parse_snapshot_name(const char *name, uint64_t *lsn);

/* A directory stream of dir_fd's directory, its own offset (not dup():
 * a shared offset would start at the end); closedir() it. */
int wal__dir_open(int dir_fd, DIR **out);

/* The first LSNs of the segments in dir_fd, ascending, malloc'ed. With
 * clean_leftovers (wal_open only) removes next.tmp and snap-*.tmp. */
int wal__segment_lsns(int dir_fd, bool clean_leftovers, uint64_t **out,
		      size_t *count_out);

void wal__seg_hdr_encode(struct wal_seg_hdr *h, uint64_t segment_size,
			 uint64_t first_lsn);

/* A segment mapped read-only for recovery, replay or a reader. */
struct wal_map {
	char name[WAL_SEGMENT_NAME_SIZE];
	const uint8_t *base;
	uint64_t file_size;
	uint64_t limit;	      /* records end before min(file, header size
				* less the trailer) */
	uint64_t header_size; /* segment size from a valid header, else 0 */
	uint32_t version;     /* from a valid header, else 0 */
};

/* Maps segment first_lsn (-ENOENT if it has no such file). live: for a
 * reader of the running log (MAP_SHARED, not populated). */
int wal__map(wal *w, uint64_t first_lsn, bool live, struct wal_map *m);
void wal__unmap(struct wal_map *m);
/* Why the segment header is not valid, or NULL (then m->limit and
 * m->header_size are set from it). */
const char *wal__check_seg_hdr(struct wal_map *m, uint64_t first_lsn);
/* The trailer of a segment whose header is valid. */
enum wal_seal {
	WAL_SEAL_NONE = 0, /* zero (or version 1, or the file is short) */
	WAL_SEAL_VALID,	   /* *t is set */
	WAL_SEAL_BAD,	   /* not zero, but not a valid trailer */
};
enum wal_seal wal__read_seal(const struct wal_map *m,
			     struct wal_seg_trailer *t);
void wal__seal_encode(struct wal_seg_trailer *t, uint64_t next_lsn,
		      uint64_t end_off);
/* Why the record at off is not valid, or NULL with *h and *len set; the
 * checks recovery makes, length first. expect_lsn 0 accepts any LSN. */
const char *wal__check_record(const struct wal_map *m, uint64_t off,
			      uint64_t expect_lsn, struct wal_rec_hdr *h,
			      uint32_t *len);

/* Walks the records of recovered segment si (w->segs) from its first LSN
 * up to end_lsn (not included), checking each again (the bytes are read
 * again), and passes those >= from_lsn to fn if it is not NULL; fn's
 * non-zero return stops the walk and is returned. *off_out: where the walk
 * stopped. -EIO if the segment changed since wal_open. */
int wal__walk(wal *w, const struct wal_seg_info *si, uint64_t from_lsn,
	      uint64_t end_lsn,
	      int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			size_t size),
	      void *ctx, uint64_t *off_out);

/* Writes DURABLE: lsn (fdatasync'ed), in the current segment up to
 * seg_off (writer, or before or after it runs). sync: fdatasync it. Errors
 * are logged once and ignored: it is evidence, not data. */
void wal__ckpt_write(wal *w, uint64_t lsn, bool sync);
/* The same, for lsn ending at end_off of segment seg_first_lsn (a writer
 * thread publishing while the other writes further). */
void wal__ckpt_write_at(wal *w, uint64_t lsn, uint64_t seg_first_lsn,
			uint64_t end_off, bool sync);

/* wal_recover.c */
/* Recovers the log in w->dir (RECOVERY in wal.c): fills w->segs,
 * w->seg_count, w->next_lsn and leaves w->seg_fd open on the tail. */
int wal__recover(wal *w, bool cut_corrupt, char *err, size_t err_size);

/* wal_writer.c */
int wal__prepare_segment(wal *w, int *fd_out);
int wal__activate_segment(wal *w, int fd, uint64_t first_lsn);
int wal__writer_start(wal *w);
void wal__writer_stop(wal *w);

/* wal_snapshot.c */
/* Newest snapshot lsn in dir by name (0 and false if none). */
bool wal__newest_snapshot_lsn(int dir_fd, uint64_t *lsn);

#endif /* BOOKD_WAL_INT_H */
