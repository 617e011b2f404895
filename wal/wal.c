/*
 * wal.c: the write-ahead log of bookd: format, open and recovery, replay,
 * close. Appending and the writer are in wal_writer.c, snapshots and
 * retention in wal_snapshot.c, the tailing reader in wal_reader.c;
 * docs/wal.md has the format byte by byte and the benchmarks.
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
 *  - Only one batch is ever unsynced: the writer writes a batch, syncs it,
 *    and only then writes the next one. A new segment gets its header
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "wal_int.h"

/* ---- Small helpers ----------------------------------------------------- */

void wal__log(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wal: %s\n", line);
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

uint64_t wal__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void wal__segment_name(char out[WAL_SEGMENT_NAME_SIZE], uint64_t first_lsn)
{
	snprintf(out, WAL_SEGMENT_NAME_SIZE, "%020" PRIu64 ".wal", first_lsn);
}

bool wal__parse_segment_name(const char *name, uint64_t *first_lsn)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + 20, ".wal") != 0 || v == 0)
		return false;
	*first_lsn = v;
	return true;
}

bool wal__parse_snapshot_name(const char *name, uint64_t *lsn)
{
	uint64_t v = 0;
	int i;

	if (strncmp(name, "snap-", 5) != 0)
		return false;
	for (i = 5; i < 21; i++) {
		char c = name[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	if (name[21] != '\0')
		return false;
	*lsn = v;
	return true;
}

void wal__seg_hdr_encode(struct wal_seg_hdr *h, uint64_t segment_size,
			 uint64_t first_lsn)
{
	memset(h, 0, sizeof(*h));
	h->magic = WAL_SEGMENT_MAGIC;
	h->version = WAL_SEGMENT_VERSION;
	h->header_size = WAL_SEGMENT_HEADER_SIZE;
	h->segment_size = segment_size;
	h->first_lsn = first_lsn;
	h->checksum = XXH3_64bits(h, offsetof(struct wal_seg_hdr, checksum));
}

/* ---- The syscall table ------------------------------------------------- */

static const struct wal_syscalls wal__real_syscalls = {
	.pwrite = pwrite,
	.fdatasync = fdatasync,
	.fallocate = fallocate,
};
static _Atomic(const struct wal_syscalls *) wal__syscalls =
	&wal__real_syscalls;

void wal_set_syscalls(const struct wal_syscalls *sc)
{
	atomic_store_explicit(&wal__syscalls, sc ? sc : &wal__real_syscalls,
			      memory_order_release);
}

static const struct wal_syscalls *wal__sys(void)
{
	return atomic_load_explicit(&wal__syscalls, memory_order_acquire);
}

ssize_t wal__pwrite(int fd, const void *buf, size_t size, off_t off)
{
	const struct wal_syscalls *sc = wal__sys();

	return (sc->pwrite ? sc->pwrite : pwrite)(fd, buf, size, off);
}

int wal__fdatasync(int fd)
{
	const struct wal_syscalls *sc = wal__sys();

	return (sc->fdatasync ? sc->fdatasync : fdatasync)(fd);
}

int wal__fallocate(int fd, int mode, off_t off, off_t len)
{
	const struct wal_syscalls *sc = wal__sys();

	return (sc->fallocate ? sc->fallocate : fallocate)(fd, mode, off, len);
}

int wal__pwrite_all(int fd, const void *buf, size_t size, uint64_t off)
{
	const uint8_t *p = buf;
	size_t done = 0;
	unsigned zero_count = 0;

	while (done < size) {
		ssize_t n = wal__pwrite(fd, p + done, size - done,
					(off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0 && ++zero_count > 3) /* named bound: no progress */
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int wal__sync(int fd)
{
	/* No EINTR retry either: fdatasync is not interrupted by signals
	 * on Linux, and any error is final (see FAILURE BEHAVIOUR). */
	return wal__fdatasync(fd) == 0 ? 0 : -errno;
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
}

static int wal__check_config(const struct wal_config *cfg, char *err,
			     size_t err_size)
{
	if (cfg->dir == NULL || cfg->dir[0] == '\0') {
		wal__errf(err, err_size, "wal: no directory given");
		return -EINVAL;
	}
	if (cfg->segment_size < WAL_SEGMENT_SIZE_MIN ||
	    cfg->segment_size > WAL_SEGMENT_SIZE_MAX ||
	    cfg->segment_size % 4096 != 0) {
		wal__errf(err, err_size,
			  "wal: segment_size %" PRIu64
			  " must be a multiple of 4096 in %llu..%llu",
			  cfg->segment_size, WAL_SEGMENT_SIZE_MIN,
			  WAL_SEGMENT_SIZE_MAX);
		return -EINVAL;
	}
	if (cfg->buffer_size < WAL_BUFFER_SIZE_MIN ||
	    cfg->buffer_size > WAL_BUFFER_SIZE_MAX ||
	    cfg->buffer_size % 4096 != 0) {
		wal__errf(err, err_size,
			  "wal: buffer_size %" PRIu32
			  " must be a multiple of 4096 in %u..%u",
			  cfg->buffer_size, WAL_BUFFER_SIZE_MIN,
			  WAL_BUFFER_SIZE_MAX);
		return -EINVAL;
	}
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
			 "the log was durable)", w->dir, WAL_CKPT_NAME,
			 strerror(errno));
		return;
	}
	n = pread(w->ckpt_fd, &c, sizeof(c), 0);
	if (n == 0)
		return; /* new */
	if (n != (ssize_t)sizeof(c) || c.magic != WAL_CKPT_MAGIC ||
	    c.checksum != XXH3_64bits(&c, offsetof(struct wal_ckpt,
						   checksum))) {
		wal__log("%s/%s is damaged: ignored (recovery cannot tell how "
			 "far the log was durable)", w->dir, WAL_CKPT_NAME);
		return;
	}
	w->ckpt = c;
}

void wal__ckpt_write(wal *w, uint64_t lsn, bool sync)
{
	struct wal_ckpt c;

	if (w->ckpt_fd < 0)
		return;
	memset(&c, 0, sizeof(c));
	c.magic = WAL_CKPT_MAGIC;
	c.lsn = lsn;
	c.seg_first_lsn = w->seg_first_lsn;
	c.end_off = w->seg_off;
	c.checksum = XXH3_64bits(&c, offsetof(struct wal_ckpt, checksum));
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

/* ---- Reading segments ---------------------------------------------------- */

int wal__map(wal *w, uint64_t first_lsn, bool live, struct wal_map *m)
{
	struct stat st;
	int fd, rc = 0;

	memset(m, 0, sizeof(*m));
	wal__segment_name(m->name, first_lsn);
	fd = openat(w->dir_fd, m->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_close;
	}
	m->file_size = (uint64_t)st.st_size;
	if (m->file_size > WAL_SEGMENT_SIZE_MAX) {
		rc = -EFBIG;
		goto out_close;
	}
	if (m->file_size > 0) {
		/* Live (a reader tailing the log): shared, so later writes
		 * of the writer show, and faulted in as it goes. */
		void *p = mmap(NULL, m->file_size, PROT_READ,
			       live ? MAP_SHARED : MAP_PRIVATE | MAP_POPULATE,
			       fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			goto out_close;
		}
		m->base = p;
		madvise(p, m->file_size, MADV_SEQUENTIAL);
	}
	m->limit = m->file_size;
out_close:
	close(fd);
	return rc;
}

void wal__unmap(struct wal_map *m)
{
	if (m->base != NULL)
		munmap((void *)m->base, m->file_size);
	m->base = NULL;
}

/* Why the segment header is not valid, or NULL (then m->limit and
 * m->header_size are set from it). */
const char *wal__check_seg_hdr(struct wal_map *m, uint64_t first_lsn)
{
	struct wal_seg_hdr h;

	if (m->file_size < sizeof(h))
		return "file shorter than a segment header";
	memcpy(&h, m->base, sizeof(h));
	if (h.magic != WAL_SEGMENT_MAGIC)
		return "bad segment magic";
	if (h.version != WAL_SEGMENT_VERSION &&
	    h.version != WAL_SEGMENT_VERSION_1)
		return "unknown segment format version";
	if (h.header_size != WAL_SEGMENT_HEADER_SIZE)
		return "bad segment header size";
	if (h.checksum !=
	    XXH3_64bits(&h, offsetof(struct wal_seg_hdr, checksum)))
		return "bad segment header checksum";
	if (h.segment_size < WAL_SEGMENT_SIZE_MIN ||
	    h.segment_size > WAL_SEGMENT_SIZE_MAX ||
	    h.segment_size % 4096 != 0)
		return "bad segment size in header";
	if (h.first_lsn != first_lsn)
		return "first LSN in header differs from the file name";
	m->header_size = h.segment_size;
	m->version = h.version;
	if (m->limit > h.segment_size)
		m->limit = h.segment_size;
	if (h.version != WAL_SEGMENT_VERSION_1 &&
	    m->limit > h.segment_size - WAL_SEGMENT_TRAILER_SIZE)
		m->limit = h.segment_size - WAL_SEGMENT_TRAILER_SIZE;
	return NULL;
}

void wal__seal_encode(struct wal_seg_trailer *t, uint64_t next_lsn,
		      uint64_t end_off)
{
	memset(t, 0, sizeof(*t));
	t->magic = WAL_TRAILER_MAGIC;
	t->next_lsn = next_lsn;
	t->end_off = end_off;
	t->checksum = XXH3_64bits(t, offsetof(struct wal_seg_trailer, checksum));
}

enum wal_seal wal__read_seal(const struct wal_map *m,
			     struct wal_seg_trailer *t)
{
	uint64_t off;

	ASSERT(m->header_size != 0);
	if (m->version == WAL_SEGMENT_VERSION_1 ||
	    m->file_size < m->header_size)
		return WAL_SEAL_NONE;
	off = m->header_size - WAL_SEGMENT_TRAILER_SIZE;
	memcpy(t, m->base + off, sizeof(*t));
	if (t->magic == WAL_TRAILER_MAGIC &&
	    t->checksum == XXH3_64bits(t, offsetof(struct wal_seg_trailer,
						   checksum)) &&
	    t->end_off >= WAL_SEGMENT_HEADER_SIZE && t->end_off <= off &&
	    t->end_off % WAL_RECORD_ALIGN == 0 && t->next_lsn != 0)
		return WAL_SEAL_VALID;
	for (size_t i = 0; i < sizeof(*t); i++)
		if (m->base[off + i] != 0)
			return WAL_SEAL_BAD;
	return WAL_SEAL_NONE;
}

static bool wal__is_zero(const uint8_t *p, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Why the record at off is not valid, or NULL with *h and *len set. The
 * length is checked against the segment before anything depends on it.
 * expect_lsn 0 accepts any LSN. */
const char *wal__check_record(const struct wal_map *m, uint64_t off,
			      uint64_t expect_lsn, struct wal_rec_hdr *h,
			      uint32_t *len)
{
	ASSERT(off % WAL_RECORD_ALIGN == 0);
	if (off + WAL_RECORD_HEADER_SIZE > m->limit)
		return off >= m->limit ? "end of segment"
				       : "partial record header";
	memcpy(h, m->base + off, sizeof(*h));
	if (h->magic != WAL_RECORD_MAGIC)
		return wal__is_zero(m->base + off, sizeof(*h))
			       ? "zeroed space"
			       : "bad record magic";
	if (h->version != WAL_RECORD_VERSION)
		return "unknown record version";
	if (h->type != WAL_RECORD_TYPE_DATA || h->flags != 0)
		return "unknown record type";
	if (h->size > WAL_RECORD_SIZE_MAX)
		return "bad record length";
	*len = wal__record_len(h->size);
	if (off + *len > m->limit)
		return m->limit < m->header_size ? "partial record"
						 : "record crosses segment end";
	if (h->lsn == 0 || h->synced_lsn >= h->lsn)
		return "bad LSN fields";
	if (expect_lsn != 0 && h->lsn != expect_lsn)
		return "unexpected LSN";
	if (XXH3_64bits(m->base + off + sizeof(h->checksum),
			*len - sizeof(h->checksum)) != h->checksum)
		return "bad checksum";
	return NULL;
}

/* What lies after a spot where the log stops, in the same segment. */
struct wal_after {
	uint64_t valid_count;  /* valid records with LSN >= the failing one */
	uint64_t proof_lsn;    /* first of them appended after the failing
				* LSN was durable (0: none) */
	uint64_t proof_off;
	uint64_t nonzero_end;  /* offset after the last non-zero byte */
};

static void wal__scan_after(const struct wal_map *m, uint64_t off,
			    uint64_t lsn, struct wal_after *a)
{
	uint64_t q = off, end = m->file_size;

	memset(a, 0, sizeof(*a));
	/* Any record checksum-valid at an 8-byte offset; the magic byte
	 * filters almost everything first. Each step advances: bounded. */
	while (q + WAL_RECORD_HEADER_SIZE <= m->limit) {
		struct wal_rec_hdr h;
		uint32_t len;

		if (m->base[q + offsetof(struct wal_rec_hdr, magic)] !=
			    WAL_RECORD_MAGIC ||
		    wal__check_record(m, q, 0, &h, &len) != NULL ||
		    h.lsn < lsn) {
			q += WAL_RECORD_ALIGN;
			continue;
		}
		a->valid_count++;
		if (a->proof_lsn == 0 && h.synced_lsn >= lsn) {
			a->proof_lsn = h.lsn;
			a->proof_off = q;
		}
		q += len;
	}
	while (end >= off + 8 && end % 8 == 0 &&
	       *(const uint64_t *)(m->base + end - 8) == 0)
		end -= 8;
	while (end > off && m->base[end - 1] == 0)
		end--;
	a->nonzero_end = end > off ? end : off;
}

/* ---- Recovery -------------------------------------------------------------- */

static int wal__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int wal__segment_lsns(int dir_fd, bool clean_leftovers, uint64_t **out,
		      size_t *count_out)
{
	uint64_t *lsns = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	*out = NULL;
	*count_out = 0;
	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t lsn;
		size_t n = strlen(de->d_name);

		if (clean_leftovers &&
		    (strcmp(de->d_name, WAL_PREP_NAME) == 0 ||
		     (strncmp(de->d_name, "snap-", 5) == 0 && n > 4 &&
		      strcmp(de->d_name + n - 4, ".tmp") == 0))) {
			unlinkat(dir_fd, de->d_name, 0);
			continue;
		}
		if (!wal__parse_segment_name(de->d_name, &lsn))
			continue;
		if (count == WAL_SEGMENT_COUNT_MAX) {
			rc = -EMFILE;
			goto out;
		}
		if (count == cap) {
			size_t cap2 = cap ? cap * 2 : 64;
			uint64_t *p = realloc(lsns, cap2 * sizeof(*p));

			if (p == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			lsns = p;
			cap = cap2;
		}
		lsns[count++] = lsn;
	}
	if (count > 0)
		qsort(lsns, count, sizeof(*lsns), wal__cmp_u64);
	*out = lsns;
	*count_out = count;
	lsns = NULL;
out:
	free(lsns);
	closedir(d);
	return rc;
}

/* A name for what is set aside from segment name: <name>.cut, or
 * <name>.2.cut, ... if an earlier cut took it (nothing is overwritten). */
#define WAL_CUT_NAME_SIZE (WAL_SEGMENT_NAME_SIZE + 16)
static void wal__cut_name(wal *w, const char *name,
			  char cut[WAL_CUT_NAME_SIZE])
{
	unsigned k;

	snprintf(cut, WAL_CUT_NAME_SIZE, "%s.cut", name);
	for (k = 2; faccessat(w->dir_fd, cut, F_OK, 0) == 0 && k < 1000000;
	     k++)
		snprintf(cut, WAL_CUT_NAME_SIZE, "%s.%u.cut", name, k);
}

/* Copies a segment aside as <name>.cut before a cut changes it. */
static int wal__copy_aside(wal *w, const char *name)
{
	char cut[WAL_CUT_NAME_SIZE];
	int src, dst, rc = 0;
	ssize_t n;

	wal__cut_name(w, name, cut);
	src = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -errno;
	dst = openat(w->dir_fd, cut, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		     0644);
	if (dst < 0) {
		rc = -errno;
		goto out_close_src;
	}
	while ((n = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0)) > 0)
		;
	if (n < 0 || fsync(dst) != 0)
		rc = -errno;
	else
		wal__log("cut: %s/%s copied to %s", w->dir, name, cut);
	close(dst);
out_close_src:
	close(src);
	return rc;
}

static int wal__rename_aside(wal *w, uint64_t first_lsn)
{
	char name[WAL_SEGMENT_NAME_SIZE], cut[WAL_CUT_NAME_SIZE];

	wal__segment_name(name, first_lsn);
	wal__cut_name(w, name, cut);
	if (renameat(w->dir_fd, name, w->dir_fd, cut) != 0)
		return -errno;
	wal__log("cut: %s/%s renamed to %s", w->dir, name, cut);
	return 0;
}

/* Zeroes [from, to) of a segment and extends it to size bytes. */
static int wal__zero_range(wal *w, const char *name, uint64_t from,
			   uint64_t to, uint64_t file_size, uint64_t size)
{
	int fd, rc = 0;

	fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (file_size < size) {
		/* Truncated segment: give it its full zero-filled size. */
		if (wal__fallocate(fd, 0, 0, (off_t)size) != 0 &&
		    errno != EOPNOTSUPP) {
			rc = -errno;
			goto out_close;
		}
		if (to < size)
			to = size;
	}
	while (rc == 0 && from < to) {
		uint64_t n = to - from;

		if (n > WAL_ZERO_CHUNK_SIZE)
			n = WAL_ZERO_CHUNK_SIZE;
		rc = wal__pwrite_all(fd, w->zero, n, from);
		from += n;
	}
	if (rc == 0)
		rc = wal__sync(fd);
out_close:
	close(fd);
	return rc;
}

static int wal__create_first(wal *w, uint64_t first_lsn)
{
	int fd = -1, rc;

	rc = wal__prepare_segment(w, &fd);
	if (rc == 0)
		rc = wal__activate_segment(w, fd, first_lsn);
	return rc;
}

/* How recovery ended: the log stops in segment index at off, with lsn the
 * next LSN expected there. */
struct wal_stop {
	size_t index;
	uint64_t off;
	uint64_t lsn;
	const char *why;       /* why the record at off is not valid */
	bool header_bad;
	bool seal_bad;         /* a damaged trailer: it rolled over */
	uint64_t sealed_next;  /* a valid trailer's next LSN (0: none) */
	uint64_t sealed_end;   /* and its end of records */
	uint64_t file_size;    /* truncated: the file's size (else 0) */
};

/*
 * Decides what the stop is (see RECOVERY in the header comment), cuts it
 * when that is safe or asked for, and leaves segment stop->index ready for
 * appending at stop->off (updated).
 */
static int wal__settle_tail(wal *w, uint64_t *lsns, size_t count,
			    struct wal_stop *stop, bool cut_corrupt, char *err,
			    size_t err_size)
{
	char proof[160] = "";
	struct wal_after a;
	struct wal_map m;
	uint64_t seg_size;
	uint32_t version = WAL_SEGMENT_VERSION;
	size_t i;
	bool corrupt;
	int rc;

	rc = wal__map(w, lsns[stop->index], false, &m);
	if (rc != 0) {
		wal__errf(err, err_size, "wal: cannot read %s/%020" PRIu64
			  ".wal: %s", w->dir, lsns[stop->index],
			  strerror(-rc));
		return rc;
	}
	if (stop->header_bad) {
		/* Look for records as if the header were right. */
		m.limit = m.file_size;
		m.header_size = m.file_size;
		seg_size = w->segment_size;
	} else {
		ASSERT(wal__check_seg_hdr(&m, lsns[stop->index]) == NULL);
		seg_size = m.header_size;
		version = m.version;
	}
	wal__scan_after(&m, stop->off < WAL_SEGMENT_HEADER_SIZE
				    ? WAL_SEGMENT_HEADER_SIZE
				    : stop->off,
			stop->lsn, &a);
	wal__unmap(&m);

	if (stop->sealed_next != 0 && stop->off != stop->sealed_end)
		snprintf(proof, sizeof(proof),
			 "its trailer says its records end at +%" PRIu64
			 " and segment %020" PRIu64 ".wal follows",
			 stop->sealed_end, stop->sealed_next);
	else if (stop->sealed_next != 0)
		snprintf(proof, sizeof(proof),
			 "it ended in a roll-over to segment %020" PRIu64
			 ".wal, which is missing: the records from LSN %" PRIu64
			 " on are lost", stop->sealed_next, stop->lsn);
	else if (stop->seal_bad && stop->index + 1 == count)
		snprintf(proof, sizeof(proof),
			 "its trailer (written only at a roll-over) is "
			 "damaged and no segment follows: the records from "
			 "LSN %" PRIu64 " on are lost", stop->lsn);
	else if (stop->file_size != 0)
		snprintf(proof, sizeof(proof),
			 "the file is %" PRIu64 " bytes, not the %" PRIu64
			 " it was allocated with: it was truncated (a crash "
			 "never shortens a segment)", stop->file_size, seg_size);
	else if (stop->index + 1 < count)
		snprintf(proof, sizeof(proof), "segment %020" PRIu64
			 ".wal follows", lsns[stop->index + 1]);
	else if (a.proof_lsn != 0)
		snprintf(proof, sizeof(proof),
			 "record %" PRIu64 " at +%" PRIu64
			 " was appended after it was durable",
			 a.proof_lsn, a.proof_off);
	else if (stop->header_bad && a.valid_count > 0)
		snprintf(proof, sizeof(proof),
			 "%" PRIu64 " valid records follow", a.valid_count);
	else if (stop->header_bad)
		snprintf(proof, sizeof(proof),
			 "the file is %" PRIu64 " bytes; a segment's header "
			 "is durable before it gets its name, so this is "
			 "damage, not a crash", m.file_size);
	else if (w->ckpt.lsn >= stop->lsn)
		snprintf(proof, sizeof(proof),
			 "%s says LSN %" PRIu64 " was durable (in %020" PRIu64
			 ".wal up to +%" PRIu64 "): records %" PRIu64
			 "..%" PRIu64 " were acknowledged and are lost",
			 WAL_CKPT_NAME, w->ckpt.lsn, w->ckpt.seg_first_lsn,
			 w->ckpt.end_off, stop->lsn, w->ckpt.lsn);
	corrupt = proof[0] != '\0';

	if (corrupt && !cut_corrupt) {
		wal__errf(err, err_size,
			  "wal: corruption before the tail at %s/%s+%" PRIu64
			  " (%s, LSN %" PRIu64 "): %s; start with "
			  "cut_corrupt (bookd --accept-log-loss) to cut there",
			  w->dir, m.name, stop->off, stop->why, stop->lsn,
			  proof);
		return -EUCLEAN;
	}
	if (corrupt) {
		wal__log("CUT CORRUPT LOG at %s/%s+%" PRIu64 " (%s, LSN %" PRIu64
			 "): %s; the log now ends at LSN %" PRIu64 ", every "
			 "record from LSN %" PRIu64 " on is dropped; what is "
			 "cut is kept as *.cut (named below)",
			 w->dir, m.name, stop->off, stop->why, stop->lsn,
			 proof, stop->lsn - 1, stop->lsn);
		rc = wal__copy_aside(w, m.name);
		for (i = stop->index + 1; rc == 0 && i < count; i++)
			rc = wal__rename_aside(w, lsns[i]);
		if (rc != 0) {
			wal__errf(err, err_size, "wal: cutting at %s: %s",
				  m.name, strerror(-rc));
			return rc;
		}
	}

	if (stop->header_bad) {
		/* Cut asked for (a bad header is always damage): anew. */
		ASSERT(corrupt);
		rc = wal__create_first(w, stop->lsn);
		if (rc != 0) {
			wal__errf(err, err_size, "wal: re-creating %s: %s",
				  m.name, strerror(-rc));
			return rc;
		}
		stop->off = WAL_SEGMENT_HEADER_SIZE;
		stop->header_bad = false;
		return 1; /* the writer's segment is open already */
	}
	if (a.nonzero_end > stop->off || m.file_size < seg_size) {
		if (!corrupt && a.nonzero_end > stop->off)
			wal__log("cut torn tail at %s/%s+%" PRIu64
				 " (%s, LSN %" PRIu64 "): %" PRIu64
				 " bytes zeroed, %" PRIu64
				 " unsynced records after it dropped",
				 w->dir, m.name, stop->off, stop->why,
				 stop->lsn, a.nonzero_end - stop->off,
				 a.valid_count);
		if (m.file_size < seg_size)
			wal__log("cut: %s/%s was truncated to %" PRIu64
				 " bytes: re-extended to %" PRIu64,
				 w->dir, m.name, m.file_size, seg_size);
		rc = wal__zero_range(w, m.name, stop->off, a.nonzero_end,
				     m.file_size, seg_size);
		if (rc != 0) {
			wal__errf(err, err_size, "wal: cutting %s: %s",
				  m.name, strerror(-rc));
			return rc;
		}
	}
	w->seg_size = seg_size;
	w->seg_limit = version == WAL_SEGMENT_VERSION_1
			       ? seg_size
			       : seg_size - WAL_SEGMENT_TRAILER_SIZE;
	return 0;
}

static int wal__recover(wal *w, bool cut_corrupt, char *err, size_t err_size)
{
	uint64_t *lsns = NULL, snap_lsn = 0, lsn, bytes = 0, records = 0;
	uint64_t t0 = wal__now_ns(), t_report = t0;
	struct wal_stop stop = { 0 };
	size_t count = 0, i;
	char name[WAL_SEGMENT_NAME_SIZE];
	int rc;

	rc = wal__segment_lsns(w->dir_fd, true, &lsns, &count);
	if (rc != 0) {
		wal__errf(err, err_size, "wal: cannot list the segments in "
			  "%s: %s (at most %u)", w->dir, strerror(-rc),
			  WAL_SEGMENT_COUNT_MAX);
		return rc;
	}
	wal__newest_snapshot_lsn(w->dir_fd, &snap_lsn);

	if (count == 0 && w->ckpt.lsn > snap_lsn) {
		if (!cut_corrupt) {
			wal__errf(err, err_size,
				  "wal: %s holds no segment, but %s says LSN "
				  "%" PRIu64 " was durable (in %020" PRIu64
				  ".wal): records %" PRIu64 "..%" PRIu64
				  " were acknowledged and are lost; start with "
				  "cut_corrupt (bookd --accept-log-loss) to "
				  "start the log after LSN %" PRIu64,
				  w->dir, WAL_CKPT_NAME, w->ckpt.lsn,
				  w->ckpt.seg_first_lsn, snap_lsn + 1,
				  w->ckpt.lsn, snap_lsn);
			rc = -EUCLEAN;
			goto out;
		}
		wal__log("CUT CORRUPT LOG: %s holds no segment, but LSN %" PRIu64
			 " was durable: records %" PRIu64 "..%" PRIu64
			 " are lost; the log starts after LSN %" PRIu64,
			 w->dir, w->ckpt.lsn, snap_lsn + 1, w->ckpt.lsn,
			 snap_lsn);
	}
	if (count == 0) {
		lsn = snap_lsn + 1;
		w->segs = calloc(1, sizeof(*w->segs));
		if (w->segs == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = wal__create_first(w, lsn);
		if (rc != 0) {
			wal__errf(err, err_size,
				  "wal: cannot create the first segment in "
				  "%s: %s", w->dir, strerror(-rc));
			goto out;
		}
		w->segs[0] = (struct wal_seg_info){ lsn, 0,
						    WAL_SEGMENT_HEADER_SIZE };
		w->seg_count = 1;
		w->next_lsn = lsn;
		wal__log("%s: new log, first LSN %" PRIu64, w->dir, lsn);
		goto out;
	}

	w->segs = calloc(count, sizeof(*w->segs));
	if (w->segs == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	wal__log("%s: recovering %zu segments", w->dir, count);
	lsn = lsns[0];
	for (i = 0; i < count; i++) {
		struct wal_seg_info *si = &w->segs[i];
		struct wal_seg_trailer t;
		enum wal_seal seal;
		struct wal_map m;
		uint64_t file_size, seg_size;
		const char *why;
		uint64_t off = WAL_SEGMENT_HEADER_SIZE;

		rc = wal__map(w, lsns[i], false, &m);
		if (rc != 0) {
			wal__errf(err, err_size,
				  "wal: cannot read %s/%020" PRIu64 ".wal: %s",
				  w->dir, lsns[i], strerror(-rc));
			goto out;
		}
		si->first_lsn = lsns[i];
		why = wal__check_seg_hdr(&m, lsns[i]);
		if (why != NULL) {
			wal__unmap(&m);
			stop = (struct wal_stop){ .index = i, .lsn = lsn, .why = why,
						.header_bad = true };
			break;
		}
		for (;;) {
			struct wal_rec_hdr h;
			uint32_t len;

			why = wal__check_record(&m, off, lsn, &h, &len);
			if (why != NULL)
				break;
			off += len;
			lsn++;
			si->record_count++;
			bytes += h.size;
		}
		si->end_off = off;
		records += si->record_count;
		seal = wal__read_seal(&m, &t);
		file_size = m.file_size;
		seg_size = m.header_size;
		wal__unmap(&m);
		if (wal__now_ns() - t_report > 1000000000ull) {
			t_report = wal__now_ns();
			wal__log("%s: %zu/%zu segments, %" PRIu64 " records",
				 w->dir, i + 1, count, records);
		}
		if (file_size < seg_size) {
			/* Segments are allocated whole before they get
			 * their name: a short one was cut by something
			 * else than a crash. */
			stop = (struct wal_stop){ .index = i, .off = off,
						  .lsn = lsn, .why = why };
			stop.file_size = file_size;
			break;
		}
		if (seal == WAL_SEAL_VALID &&
		    (off != t.end_off || lsn != t.next_lsn)) {
			/* Records missing before the end it sealed. */
			stop = (struct wal_stop){ .index = i, .off = off,
						.lsn = lsn, .why = why };
			stop.sealed_next = t.next_lsn;
			stop.sealed_end = t.end_off;
			break;
		}
		if (i + 1 < count && lsns[i + 1] == lsn)
			continue; /* rolled over cleanly */
		/* The log stops here; wal__settle_tail decides how. */
		if (seal == WAL_SEAL_VALID)
			why = "the segment it rolled over to is missing";
		else if (i + 1 < count &&
			 (strcmp(why, "end of segment") == 0 ||
			  strcmp(why, "zeroed space") == 0))
			why = "the next segment does not continue here";
		stop = (struct wal_stop){ .index = i, .off = off,
						.lsn = lsn, .why = why };
		if (seal == WAL_SEAL_VALID) {
			stop.sealed_next = t.next_lsn;
			stop.sealed_end = t.end_off;
		}
		stop.seal_bad = seal == WAL_SEAL_BAD;
		break;
	}
	ASSERT(i < count);

	rc = wal__settle_tail(w, lsns, count, &stop, cut_corrupt, err,
			      err_size);
	if (rc < 0)
		goto out;
	w->seg_count = stop.index + 1;
	w->segs[stop.index].end_off = stop.off;
	if (rc == 0) {
		wal__segment_name(name, lsns[stop.index]);
		w->seg_fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
		if (w->seg_fd < 0) {
			rc = -errno;
			wal__errf(err, err_size, "wal: cannot open %s/%s: %s",
				  w->dir, name, strerror(-rc));
			goto out;
		}
		w->seg_first_lsn = lsns[stop.index];
		w->seg_off = stop.off;
	}
	/* What a killed process left in the page cache is on disk only
	 * after this; until then it must not count as durable (PostgreSQL
	 * syncs the data directory after a crash for the same reason). A
	 * new segment syncs the previous one, so the tail is enough. */
	rc = wal__sync(w->seg_fd);
	if (rc == 0)
		rc = wal__sync(w->dir_fd);
	if (rc != 0) {
		wal__errf(err, err_size, "wal: fdatasync of the recovered "
			  "tail in %s: %s", w->dir, strerror(-rc));
		goto out;
	}
	w->next_lsn = stop.lsn;

	if (w->next_lsn - 1 < snap_lsn) {
		/* Commit waits for durability, so this needs lost records. */
		if (!cut_corrupt) {
			wal__errf(err, err_size,
				  "wal: the log in %s ends at LSN %" PRIu64
				  " but snapshot snap-%016" PRIx64
				  " is newer: records are missing; start "
				  "with cut_corrupt to restart the log "
				  "after the snapshot",
				  w->dir, w->next_lsn - 1, snap_lsn);
			rc = -EUCLEAN;
			goto out;
		}
		wal__log("CUT CORRUPT LOG: %s ends at LSN %" PRIu64
			 " before snapshot %016" PRIx64
			 ": segments set aside, log restarts after it",
			 w->dir, w->next_lsn - 1, snap_lsn);
		close(w->seg_fd);
		w->seg_fd = -1;
		for (i = 0; i < w->seg_count && rc == 0; i++)
			rc = wal__rename_aside(w, lsns[i]);
		if (rc == 0)
			rc = wal__create_first(w, snap_lsn + 1);
		if (rc != 0) {
			wal__errf(err, err_size, "wal: restarting the log: %s",
				  strerror(-rc));
			goto out;
		}
		w->next_lsn = snap_lsn + 1;
		w->segs[0] = (struct wal_seg_info){ w->next_lsn, 0,
						    WAL_SEGMENT_HEADER_SIZE };
		w->seg_count = 1;
	}
	wal__log("%s: recovered %" PRIu64 " records (%.1f MiB payload) in "
		 "%zu segments in %.3f s; next LSN %" PRIu64,
		 w->dir, records, (double)bytes / (1 << 20), w->seg_count,
		 (double)(wal__now_ns() - t0) / 1e9, w->next_lsn);
out:
	if (rc == 0) {
		/* What recovery found is durable (synced above): the new
		 * lower bound, whatever was cut. */
		wal__ckpt_write(w, w->next_lsn - 1, true);
		rc = wal__sync(w->dir_fd);
		if (rc != 0)
			wal__errf(err, err_size, "wal: fsync of %s: %s",
				  w->dir, strerror(-rc));
	}
	free(lsns);
	return rc;
}

/* ---- Open, replay, close ------------------------------------------------ */

static void wal__sync_init(wal *w)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->writer_cv, &ca);
	pthread_cond_init(&w->space_cv, NULL);
	pthread_mutex_init(&w->durable_mu, NULL);
	pthread_cond_init(&w->durable_cv, NULL);
	pthread_mutex_init(&w->prep_mu, NULL);
	pthread_cond_init(&w->prep_cv, NULL);
	pthread_mutex_init(&w->snap_mu, NULL);
	pthread_condattr_destroy(&ca);
}

static void wal__sync_destroy(wal *w)
{
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->writer_cv);
	pthread_cond_destroy(&w->space_cv);
	pthread_mutex_destroy(&w->durable_mu);
	pthread_cond_destroy(&w->durable_cv);
	pthread_mutex_destroy(&w->prep_mu);
	pthread_cond_destroy(&w->prep_cv);
	pthread_mutex_destroy(&w->snap_mu);
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
	w->ckpt_fd = -1;
	w->segment_size = cfg->segment_size;
	w->seg_size = cfg->segment_size;
	w->sync = cfg->sync;
	w->io = cfg->io;
	w->half_size = cfg->buffer_size / 2;
	atomic_init(&w->retain_lsn, UINT64_MAX);
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
		wal__errf(err, err_size, "wal: out of memory for %u-byte "
			  "buffers", cfg->buffer_size);
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
		uint64_t off = WAL_SEGMENT_HEADER_SIZE, lsn = si->first_lsn;
		struct wal_map m;

		if (si->first_lsn + si->record_count <= from_lsn)
			continue;
		rc = wal__map(w, si->first_lsn, false, &m);
		if (rc != 0)
			return rc;
		if (wal__check_seg_hdr(&m, si->first_lsn) != NULL) {
			wal__unmap(&m);
			return -EIO;
		}
		while (rc == 0 && off < si->end_off) {
			struct wal_rec_hdr h;
			uint32_t len;

			/* Checked again: the bytes are read again. */
			if (wal__check_record(&m, off, lsn, &h, &len) != NULL) {
				rc = -EIO;
				break;
			}
			if (lsn >= from_lsn)
				rc = fn(ctx, lsn,
					m.base + off + WAL_RECORD_HEADER_SIZE,
					h.size);
			off += len;
			lsn++;
		}
		ASSERT(rc != 0 || lsn == si->first_lsn + si->record_count);
		wal__unmap(&m);
	}
	return rc;
}

/* Where record lsn is (recovered, before wal_start): its segment's index
 * and offset. -ENOENT if the log does not hold it. */
static int wal__find(wal *w, uint64_t lsn, size_t *index, uint64_t *off_out)
{
	const struct wal_seg_info *si = NULL;
	struct wal_map m;
	uint64_t off = WAL_SEGMENT_HEADER_SIZE, l;
	size_t i;
	int rc;

	for (i = 0; i < w->seg_count; i++) {
		si = &w->segs[i];
		if (lsn >= si->first_lsn &&
		    (lsn < si->first_lsn + si->record_count ||
		     (i + 1 == w->seg_count &&
		      lsn == si->first_lsn + si->record_count)))
			break;
	}
	if (i == w->seg_count)
		return -ENOENT;
	*index = i;
	if (lsn == si->first_lsn + si->record_count) {
		*off_out = si->end_off; /* the next LSN of the log */
		return 0;
	}
	rc = wal__map(w, si->first_lsn, false, &m);
	if (rc != 0)
		return rc;
	if (wal__check_seg_hdr(&m, si->first_lsn) != NULL) {
		wal__unmap(&m);
		return -EIO;
	}
	for (l = si->first_lsn; l < lsn; l++) {
		struct wal_rec_hdr h;
		uint32_t len;

		if (wal__check_record(&m, off, l, &h, &len) != NULL) {
			wal__unmap(&m);
			return -EIO; /* changed since wal_open */
		}
		off += len;
	}
	wal__unmap(&m);
	*off_out = off;
	return 0;
}

int wal_record_where(wal *w, uint64_t lsn, uint64_t *seg_first_lsn,
		     uint64_t *off)
{
	size_t i;
	int rc;

	ASSERT(w != NULL);
	if (w->started)
		return -EINVAL;
	rc = wal__find(w, lsn, &i, off);
	if (rc == 0)
		*seg_first_lsn = w->segs[i].first_lsn;
	return rc;
}

/* The mark a cut before an LSN leaves: once the log is cut before N, new
 * records take N again, so a second cut before N (the flag left set) would
 * drop acknowledged decisions. The mark makes the cut once only. */
static void wal__cut_mark_name(char *buf, size_t size, uint64_t lsn)
{
	snprintf(buf, size, "CUT-BEFORE-%020" PRIu64, lsn);
}

static int wal__cut_mark(wal *w, uint64_t lsn, uint64_t last)
{
	char mark[48], text[160];
	int fd, rc = 0, n;

	wal__cut_mark_name(mark, sizeof(mark), lsn);
	fd = openat(w->dir_fd, mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0644);
	if (fd < 0)
		return -errno;
	n = snprintf(text, sizeof(text),
		     "cut before LSN %" PRIu64 " at %lld: records %" PRIu64
		     "..%" PRIu64 " set aside as *.cut\n",
		     lsn, (long long)time(NULL), lsn, last);
	errno = EIO; /* a short write sets none */
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int wal_cut_before(wal *w, uint64_t lsn, char *err, size_t err_size)
{
	char name[WAL_SEGMENT_NAME_SIZE], mark[48];
	uint64_t off, last = w->next_lsn - 1;
	struct wal_map m;
	size_t i, k;
	int rc, fd;

	ASSERT(w != NULL);
	if (w->started) {
		wal__errf(err, err_size, "wal: cut before LSN %" PRIu64
			  ": the log is running", lsn);
		return -EINVAL;
	}
	wal__cut_mark_name(mark, sizeof(mark), lsn);
	if (faccessat(w->dir_fd, mark, F_OK, 0) == 0) {
		wal__errf(err, err_size,
			  "wal: the log in %s was cut before LSN %" PRIu64
			  " already (%s/%s); the records from LSN %" PRIu64
			  " on are newer decisions: start without the cut "
			  "(remove --recover-stop-before)",
			  w->dir, lsn, w->dir, mark, lsn);
		return -EEXIST;
	}
	if (lsn == last + 1)
		return 0; /* nothing after it */
	rc = lsn == 0 ? -ENOENT : wal__find(w, lsn, &i, &off);
	if (rc != 0) {
		wal__errf(err, err_size,
			  "wal: cannot cut before LSN %" PRIu64 ": the log in "
			  "%s holds LSN %" PRIu64 "..%" PRIu64 "%s%s",
			  lsn, w->dir, w->segs[0].first_lsn, last,
			  rc == -ENOENT ? "" : ": ",
			  rc == -ENOENT ? "" : strerror(-rc));
		return rc == -ENOENT ? -EINVAL : rc;
	}
	wal__segment_name(name, w->segs[i].first_lsn);
	wal__log("CUT AT THE OPERATOR'S REQUEST: the log in %s now ends at "
		 "LSN %" PRIu64 "; records %" PRIu64 "..%" PRIu64
		 " (%" PRIu64 " records, from %s+%" PRIu64 ") are set aside "
		 "as *.cut (named below), never read again",
		 w->dir, lsn - 1, lsn, last, last - lsn + 1, name, off);
	rc = wal__copy_aside(w, name);
	for (k = i + 1; rc == 0 && k < w->seg_count; k++)
		rc = wal__rename_aside(w, w->segs[k].first_lsn);
	if (rc == 0)
		rc = wal__map(w, w->segs[i].first_lsn, false, &m);
	if (rc == 0) {
		ASSERT(wal__check_seg_hdr(&m, w->segs[i].first_lsn) ==
			   NULL);
		/* Its records and its trailer go: it is the tail now. */
		rc = wal__zero_range(w, name, off, m.file_size, m.file_size,
				     m.header_size);
		w->seg_size = m.header_size;
		w->seg_limit = m.version == WAL_SEGMENT_VERSION_1
				       ? m.header_size
				       : m.header_size -
						 WAL_SEGMENT_TRAILER_SIZE;
		wal__unmap(&m);
	}
	if (rc == 0 && i + 1 < w->seg_count) {
		fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
		} else {
			close(w->seg_fd);
			w->seg_fd = fd;
		}
	}
	if (rc == 0)
		rc = wal__cut_mark(w, lsn, last);
	if (rc == 0)
		rc = wal__sync(w->dir_fd);
	if (rc != 0) {
		wal__errf(err, err_size, "wal: cutting %s/%s before LSN %" PRIu64
			  ": %s", w->dir, name, lsn, strerror(-rc));
		return rc;
	}
	w->seg_first_lsn = w->segs[i].first_lsn;
	w->seg_off = off;
	w->seg_count = i + 1;
	w->segs[i].record_count = lsn - w->segs[i].first_lsn;
	w->segs[i].end_off = off;
	w->next_lsn = lsn;
	atomic_store(&w->appended_lsn, lsn - 1);
	atomic_store(&w->durable_lsn, lsn - 1);
	atomic_store(&w->synced_lsn, lsn - 1);
	wal__ckpt_write(w, lsn - 1, true);
	return 0;
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
		    atomic_load(&w->synced_lsn) < atomic_load(&w->durable_lsn) &&
		    wal__sync(w->seg_fd) != 0) {
			wal__log("FATAL: final fdatasync of %s failed: %s",
				 w->dir, strerror(errno));
			synced = false;
		}
		if (synced)
			wal__ckpt_write(w, atomic_load(&w->durable_lsn), true);
		close(w->seg_fd);
	}
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
	return w->event_fd;
}

int wal_event_fd_add(wal *w, int fd)
{
	if (w->started || fd < 0)
		return -EINVAL;
	if (w->watch_fd_count == WAL_WATCH_FD_COUNT_MAX)
		return -EMFILE;
	w->watch_fds[w->watch_fd_count++] = fd;
	return 0;
}

void wal_retain(wal *w, uint64_t lsn)
{
	atomic_store_explicit(&w->retain_lsn, lsn, memory_order_release);
}

void wal_stats(const wal *w, struct wal_stats *out)
{
	wal *m = (wal *)w; /* atomics are read through a non-const lvalue */

#define WAL_LOAD(x) atomic_load_explicit(&m->x, memory_order_relaxed)
	out->appended_lsn = WAL_LOAD(appended_lsn);
	out->durable_lsn = WAL_LOAD(durable_lsn);
	out->batch_count = WAL_LOAD(st_batch_count);
	out->batch_records_max = WAL_LOAD(st_batch_records_max);
	out->sync_count = WAL_LOAD(st_sync_count);
	out->sync_ns_total = WAL_LOAD(st_sync_ns_total);
	out->sync_ns_max = WAL_LOAD(st_sync_ns_max);
	out->bytes_written = WAL_LOAD(st_bytes_written);
	out->segment_count = WAL_LOAD(st_segment_count);
	out->append_wait_count = WAL_LOAD(st_append_wait_count);
#undef WAL_LOAD
}
