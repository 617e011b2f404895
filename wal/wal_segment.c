/*
 * wal_segment.c: segment files, as the byte format in wal.c's header
 * comment (BYTE FORMAT) and docs/wal.md give them: their names and
 * snapshot names, listing them, the segment header and trailer (encoded
 * and checked), the checks of one record, and mapping a segment to read
 * it (for recovery, replay and the reader). Also the syscall table
 * (wal_set_syscalls) through which segment bytes are written and synced,
 * so tests can fail them.
 *
 * Everything here reads or encodes bytes; deciding what a bad byte means
 * (a torn tail, or damage) is recovery's (wal_recover.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "wal_int.h"

/* ---- Names ------------------------------------------------------------- */

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
	/* No padding (the layout is pinned in wal_int.h): every byte set. */
	*h = (struct wal_seg_hdr){ .magic = WAL_SEGMENT_MAGIC,
				   .version = WAL_SEGMENT_VERSION,
				   .header_size = WAL_SEGMENT_HEADER_SIZE,
				   .segment_size = segment_size,
				   .first_lsn = first_lsn };
	h->checksum = wal__block_sum(h);
}

/* ---- The syscall table ------------------------------------------------- */

static const struct wal_syscalls wal__real_syscalls = {
	.pwrite = pwrite,
	.fdatasync = fdatasync,
	.fallocate = fallocate,
};
static _Atomic(const struct wal_syscalls *) wal__syscalls = &wal__real_syscalls;

void wal_set_syscalls(const struct wal_syscalls *sc)
{
	atomic_store_explicit(&wal__syscalls, sc ? sc : &wal__real_syscalls,
			      memory_order_release);
}

static const struct wal_syscalls *wal__sys(void)
{
	return atomic_load_explicit(&wal__syscalls, memory_order_acquire);
}

bool wal__syscalls_real(void) { return wal__sys() == &wal__real_syscalls; }

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

uint64_t wal__now_ns(void)
{
	const struct wal_syscalls *sc = wal__sys();
	struct timespec ts;

	if (sc->now_ns)
		return sc->now_ns();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

/* ---- Reading segments -------------------------------------------------- */

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
	if (h.checksum != wal__block_sum(&h))
		return "bad segment header checksum";
	if (h.segment_size < WAL_SEGMENT_SIZE_MIN ||
	    h.segment_size > WAL_SEGMENT_SIZE_MAX || h.segment_size % 4096 != 0)
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
	ASSERT(end_off % WAL_RECORD_ALIGN == 0);
	*t = (struct wal_seg_trailer){ .magic = WAL_TRAILER_MAGIC,
				       .next_lsn = next_lsn,
				       .end_off = end_off };
	t->checksum = wal__block_sum(t);
}

enum wal_seal wal__read_seal(const struct wal_map *m, struct wal_seg_trailer *t)
{
	uint64_t off;

	ASSERT(m->header_size != 0);
	if (m->version == WAL_SEGMENT_VERSION_1 ||
	    m->file_size < m->header_size)
		return WAL_SEAL_NONE;
	off = m->header_size - WAL_SEGMENT_TRAILER_SIZE;
	memcpy(t, m->base + off, sizeof(*t));
	if (t->magic == WAL_TRAILER_MAGIC && t->checksum == wal__block_sum(t) &&
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

int wal__walk(wal *w, const struct wal_seg_info *si, uint64_t from_lsn,
	      uint64_t end_lsn,
	      int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			size_t size),
	      void *ctx, uint64_t *off_out)
{
	uint64_t off = WAL_SEGMENT_HEADER_SIZE, lsn;
	struct wal_map m;
	int rc;

	ASSERT(end_lsn >= si->first_lsn);
	ASSERT(end_lsn <= si->first_lsn + si->record_count);
	rc = wal__map(w, si->first_lsn, false, &m);
	if (rc != 0)
		return rc;
	if (wal__check_seg_hdr(&m, si->first_lsn) != NULL) {
		wal__unmap(&m);
		return -EIO;
	}
	for (lsn = si->first_lsn; rc == 0 && lsn < end_lsn; lsn++) {
		struct wal_rec_hdr h;
		uint32_t len;

		/* Checked again: the bytes are read again. */
		if (wal__check_record(&m, off, lsn, &h, &len) != NULL) {
			rc = -EIO; /* changed since wal_open */
			break;
		}
		if (fn != NULL && lsn >= from_lsn)
			rc = fn(ctx, lsn, m.base + off + WAL_RECORD_HEADER_SIZE,
				h.size);
		off += len;
	}
	wal__unmap(&m);
	*off_out = off;
	return rc;
}

/* ---- Listing ----------------------------------------------------------- */

static int wal__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int wal__dir_open(int dir_fd, DIR **out)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	*out = fdopendir(fd);
	if (*out == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return 0;
}

int wal__segment_lsns(int dir_fd, bool clean_leftovers, uint64_t **out,
		      size_t *count_out)
{
	uint64_t *lsns = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*out = NULL;
	*count_out = 0;
	rc = wal__dir_open(dir_fd, &d);
	if (rc != 0)
		return rc;
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
