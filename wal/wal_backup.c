/*
 * wal_backup.c: a consistent copy of a running log's directory
 * (wal_backup, wal.h), for bookd-backup and scripts/backup.sh
 * (docs/operations.md "Backup and restore").
 *
 * The copy is read while the writer appends, rolls over and removes
 * segments behind snapshots, and must open as a clean log: never as
 * damage (docs/wal.md "Recovery"). The order:
 *
 *   1. DURABLE is read first. Whatever it names was fdatasync'ed before
 *      it was written, so it is in the page cache before any segment is
 *      read: every record it covers, and every record acknowledged before
 *      the backup began, is in what is read next.
 *   2. The snapshots (immutable once named). The newest copied, at LSN s,
 *      is where a restore starts.
 *   3. The segments, oldest first, each read whole into memory (a private
 *      copy: checked bytes are the written bytes). Its records are
 *      checked as recovery checks them (wal__check_record) up to the first
 *      that is not valid. A sealed segment (valid trailer whose end offset
 *      and next LSN match the records) is copied as it is; the directory
 *      is then listed again, so a segment the writer rolled over to while
 *      we read is copied too. An unsealed one with a successor listed is
 *      in the middle of a roll-over: read again (1 ms apart, at most
 *      WAL_BACKUP_TRIES times). An unsealed one without a successor is the
 *      tail: everything after its last valid record is zeroed, trailer
 *      included. Reading a file that is being written can show a hole (a
 *      page read before the writer reached it) followed by later records;
 *      recovery would call that damage (a record after it proves it was
 *      durable), so the copy ends at the hole: only records written after
 *      the backup began can be there, never an acknowledged one.
 *   4. Checks: the copied segments follow each other (each one's next LSN
 *      is the next one's first; a gap whose segments were removed
 *      meanwhile is -EAGAIN, one in segments still there -EUCLEAN) and start at or before s + 1 (a snapshot
 *      committed meanwhile may remove segments behind the newer snapshot
 *      it keeps; then -EAGAIN: run again), and reach at least what
 *      DURABLE named.
 *   5. DURABLE of the copy names its last record (everything copied is
 *      fdatasync'ed, so it is true of the copy): a restore that lost any
 *      of it is refused by recovery, not cut.
 *
 * The copy may hold records that were written but not yet fdatasync'ed
 * when read (decisions about to be acknowledged); a restore keeps them.
 * LOCK, next.tmp, *.tmp and *.cut are not copied. Files are written with
 * O_EXCL, fdatasync'ed, then the directory is fsync'ed.
 */
#include "wal_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAL_BACKUP_TRIES 5000
#define WAL_BACKUP_CHUNK (1u << 20)

/* Reads all of file name in dir_fd into *buf (grown as needed). */
static int read_whole(int dir_fd, const char *name, uint8_t **buf, size_t *cap,
		      uint64_t *size)
{
	struct stat st;
	uint64_t off = 0;
	int fd, rc = 0;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_close;
	}
	if ((uint64_t)st.st_size >
	    WAL_SEGMENT_SIZE_MAX + (uint64_t)(1u << 30)) {
		rc = -EFBIG;
		goto out_close;
	}
	if ((size_t)st.st_size > *cap) {
		uint8_t *p = realloc(*buf, (size_t)st.st_size);
		if (p == NULL) {
			rc = -ENOMEM;
			goto out_close;
		}
		*buf = p;
		*cap = (size_t)st.st_size;
	}
	while (off < (uint64_t)st.st_size) {
		ssize_t k = pread(fd, *buf + off, (size_t)st.st_size - off,
				  (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			goto out_close;
		}
		if (k == 0)
			break; /* shrunk meanwhile: what was read */
		off += (uint64_t)k;
	}
	*size = off;
out_close:
	close(fd);
	return rc;
}

/* Writes buf as a new file name in dir_fd (O_EXCL), fdatasync'ed. */
static int write_new(int dir_fd, const char *name, const uint8_t *buf,
		     uint64_t size)
{
	uint64_t off = 0;
	int fd, rc = 0;

	fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	while (off < size) {
		size_t n = size - off > WAL_BACKUP_CHUNK ? WAL_BACKUP_CHUNK
							 : size - off;
		rc = wal__pwrite_all(fd, buf + off, n, off);
		if (rc)
			goto out_close;
		off += n;
	}
	if (fdatasync(fd) != 0)
		rc = -errno;
out_close:
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* What reading one segment found. */
struct seg_read {
	uint64_t size, end_off, next_lsn; /* next_lsn: after its last record */
	bool sealed;			  /* trailer matches the records */
	uint32_t version;
};

static const char *check_segment(uint8_t *buf, uint64_t size,
				 uint64_t first_lsn, struct seg_read *r)
{
	struct wal_map m;
	struct wal_seg_trailer t;
	uint64_t off = WAL_SEGMENT_HEADER_SIZE, lsn = first_lsn;
	const char *why;

	memset(&m, 0, sizeof(m));
	wal__segment_name(m.name, first_lsn);
	m.base = buf;
	m.file_size = size;
	m.limit = size;
	why = wal__check_seg_hdr(&m, first_lsn);
	if (why)
		return why;
	if (size != m.header_size)
		return "file size differs from its header's";
	for (;;) {
		struct wal_rec_hdr h;
		uint32_t len;

		if (wal__check_record(&m, off, lsn, &h, &len) != NULL)
			break;
		off += len;
		lsn++;
	}
	r->size = size;
	r->end_off = off;
	r->next_lsn = lsn;
	r->version = m.version;
	r->sealed = wal__read_seal(&m, &t) == WAL_SEAL_VALID &&
		    t.end_off == off && t.next_lsn == lsn;
	return NULL;
}

static int copy_snapshots(int src_fd, int dst_fd, struct wal_backup_info *info,
			  uint8_t **buf, size_t *cap, char *err,
			  size_t err_size)
{
	struct dirent *de;
	DIR *d;
	int rc;

	rc = wal__dir_open(src_fd, &d);
	if (rc != 0)
		return rc;
	while ((de = readdir(d)) != NULL) {
		uint64_t lsn, size;

		if (!wal__parse_snapshot_name(de->d_name, &lsn))
			continue;
		rc = read_whole(src_fd, de->d_name, buf, cap, &size);
		if (rc == -ENOENT) { /* removed: a newer one was kept */
			rc = 0;
			continue;
		}
		if (rc == 0)
			rc = write_new(dst_fd, de->d_name, *buf, size);
		if (rc) {
			wal__errf(err, err_size, "snapshot %s: %s", de->d_name,
				  strerror(-rc));
			break;
		}
		info->snapshot_count++;
		info->bytes += size;
		if (lsn > info->snapshot_lsn)
			info->snapshot_lsn = lsn;
	}
	closedir(d);
	return rc;
}

static void nap_1ms(void)
{
	struct timespec ts = { 0, 1000000 };
	nanosleep(&ts, NULL);
}

/* The first LSN of the first segment listed after lsn, 0 if none. */
static uint64_t listed_after(int dir_fd, uint64_t lsn, int *rc)
{
	uint64_t *lsns, found = 0;
	size_t count;

	*rc = wal__segment_lsns(dir_fd, false, &lsns, &count);
	for (size_t i = 0; *rc == 0 && i < count; i++)
		if (lsns[i] > lsn) {
			found = lsns[i];
			break;
		}
	free(lsns);
	return found;
}

/* Step 3: the segments, from the oldest listed on (wal_backup.c's top). */
static int copy_segments(int src_fd, int dst_fd, struct wal_backup_info *info,
			 uint8_t **buf, size_t *cap, char *err, size_t err_size)
{
	uint64_t cur, later;
	unsigned tries = 0;
	int rc;

	cur = listed_after(src_fd, 0, &rc);
	while (rc == 0 && cur != 0) {
		char name[WAL_SEGMENT_NAME_SIZE];
		struct seg_read r;
		uint64_t size;
		const char *why;

		wal__segment_name(name, cur);
		rc = read_whole(src_fd, name, buf, cap, &size);
		if (rc == -ENOENT && info->segment_count == 0) {
			/* The oldest, removed behind a snapshot meanwhile. */
			cur = listed_after(src_fd, cur, &rc);
			continue;
		}
		if (rc) {
			wal__errf(err, err_size, "%s: %s%s", name,
				  strerror(-rc),
				  rc == -ENOENT ? " (removed while copying)"
						: "");
			if (rc == -ENOENT)
				rc = -EAGAIN;
			break;
		}
		why = check_segment(*buf, size, cur, &r);
		if (why) {
			wal__errf(err, err_size,
				  "%s: %s (the running log is damaged: see "
				  "docs/wal.md Recovery)",
				  name, why);
			rc = -EUCLEAN;
			break;
		}
		later = listed_after(src_fd, cur, &rc);
		if (rc)
			break;
		if (!r.sealed && later != 0 &&
		    r.version != WAL_SEGMENT_VERSION_1) {
			/* Rolling over: read it again once sealed. */
			if (++tries == WAL_BACKUP_TRIES) {
				wal__errf(err, err_size,
					  "%s: still not sealed although %" PRIu64
					  " follows it",
					  name, later);
				rc = -EAGAIN;
				break;
			}
			nap_1ms();
			continue;
		}
		if (later != 0 && later != r.next_lsn) {
			/* Retention removes the oldest first: if this one
			 * went too, its successor went behind a snapshot. */
			bool gone = faccessat(src_fd, name, F_OK, 0) != 0 &&
				    errno == ENOENT;
			wal__errf(err, err_size,
				  "%s: its records end before LSN %" PRIu64
				  " but the next segment starts at %" PRIu64
				  "%s",
				  name, r.next_lsn, later,
				  gone ? " (both removed while copying)" : "");
			rc = gone ? -EAGAIN : -EUCLEAN;
			break;
		}
		if (later == 0) /* the tail: cut after its last record */
			memset(*buf + r.end_off, 0, r.size - r.end_off);
		rc = write_new(dst_fd, name, *buf, size);
		if (rc) {
			wal__errf(err, err_size, "writing %s: %s", name,
				  strerror(-rc));
			break;
		}
		if (info->segment_count++ == 0)
			info->first_lsn = cur;
		info->bytes += size;
		info->last_lsn = r.next_lsn - 1;
		info->tail_first_lsn = cur;
		info->tail_end_off = r.end_off;
		tries = 0;
		cur = later;
	}
	return rc;
}

int wal_backup(const char *dir, const char *dst, struct wal_backup_info *info,
	       char *err, size_t err_size)
{
	struct wal_ckpt c;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int src_fd, dst_fd, fd, rc = 0;

	memset(info, 0, sizeof(*info));
	src_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0) {
		rc = -errno;
		wal__errf(err, err_size, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	if (mkdir(dst, 0700) != 0 ||
	    (dst_fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		wal__errf(err, err_size, "%s: %s", dst, strerror(-rc));
		goto out_src;
	}
	/* 1. DURABLE first. */
	fd = openat(src_fd, WAL_CKPT_NAME, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &c, sizeof(c), 0) == (ssize_t)sizeof(c) &&
		    c.magic == WAL_CKPT_MAGIC &&
		    c.checksum == wal__block_sum(&c))
			info->durable_lsn = c.lsn;
		close(fd);
	}
	/* 2. Snapshots, 3. segments. */
	rc = copy_snapshots(src_fd, dst_fd, info, &buf, &cap, err, err_size);
	if (rc == 0)
		rc = copy_segments(src_fd, dst_fd, info, &buf, &cap, err,
				   err_size);
	if (rc)
		goto out_dst;
	/* 4. What was copied follows the newest snapshot copied. */
	if (info->segment_count > 0 &&
	    info->first_lsn > info->snapshot_lsn + 1) {
		wal__errf(err, err_size,
			  "the oldest segment copied starts at LSN %" PRIu64
			  ", after the newest snapshot copied (LSN %" PRIu64
			  "): a snapshot removed segments meanwhile",
			  info->first_lsn, info->snapshot_lsn);
		rc = -EAGAIN;
		goto out_dst;
	}
	if ((info->segment_count ? info->last_lsn : info->snapshot_lsn) <
	    info->durable_lsn) {
		wal__errf(err, err_size,
			  "copied up to LSN %" PRIu64
			  " but DURABLE named LSN %" PRIu64,
			  info->last_lsn, info->durable_lsn);
		rc = -EUCLEAN;
		goto out_dst;
	}
	/* 5. DURABLE of the copy: its last record. */
	if (info->segment_count > 0 && info->last_lsn > 0) {
		c = (struct wal_ckpt){ .magic = WAL_CKPT_MAGIC,
				       .lsn = info->last_lsn,
				       .seg_first_lsn = info->tail_first_lsn,
				       .end_off = info->tail_end_off };
		c.checksum = wal__block_sum(&c);
		rc = write_new(dst_fd, WAL_CKPT_NAME, (const uint8_t *)&c,
			       sizeof(c));
		if (rc) {
			wal__errf(err, err_size, "writing DURABLE: %s",
				  strerror(-rc));
			goto out_dst;
		}
	}
	if (fsync(dst_fd) != 0) {
		rc = -errno;
		wal__errf(err, err_size, "fsync %s: %s", dst, strerror(-rc));
	}
out_dst:
	close(dst_fd);
out_src:
	close(src_fd);
	free(buf);
	return rc;
}
