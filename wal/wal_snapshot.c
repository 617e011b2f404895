/*
 * wal_snapshot.c: snapshots of the caller's state, and retention.
 *
 * A snapshot file snap-<lsn, 16 lowercase hex digits> (docs/wal.md):
 *
 *    0  u64 magic "BOKDSNAP"   12 u32 header size (32)
 *    8  u32 version (1)        16 u64 LSN           24 u64 zero
 *   32  payload: the caller's bytes
 *  end-32 trailer: u64 magic "BOKDSEND", u64 payload size, u64 LSN,
 *         u64 XXH3-64 of everything before this field
 *
 * It is written as snap-<lsn>.tmp, fdatasync'ed, renamed once its LSN is
 * durable in the log, and the directory is synced: a snapshot file with
 * its final name is complete, and never ahead of the log.
 *
 * Retention: the two newest snapshots are kept; a segment goes when all
 * its records are covered by the older kept one (so falling back to it
 * can still replay) and are below wal_retained_lsn() (every holder's). The last segment
 * always stays, so the log always knows its next LSN.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "wal_int.h"

#define WAL_SNAP_MAGIC 0x50414e53444b4f42ull	 /* "BOKDSNAP" */
#define WAL_SNAP_END_MAGIC 0x444e4553444b4f42ull /* "BOKDSEND" */
#define WAL_SNAP_VERSION 1u
#define WAL_SNAP_BUF_SIZE (1u << 20)
#define WAL_SNAP_SIZE_MAX (1ull << 40)
#define WAL_SNAP_NAME_SIZE 32
#define WAL_SNAP_COUNT_MAX 256 /* newest snapshot files considered */

struct wal_snap_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint64_t lsn;
	uint64_t reserved;
};
_Static_assert(sizeof(struct wal_snap_hdr) == 32, "wal snapshot header");

struct wal_snap_trailer {
	uint64_t magic;
	uint64_t size;
	uint64_t lsn;
	uint64_t checksum;
};
_Static_assert(sizeof(struct wal_snap_trailer) == 32, "wal snapshot trailer");

struct wal_snap {
	wal *w;
	uint64_t lsn;
	int fd;
	int error;     /* sticky within this snapshot */
	uint64_t off;  /* file offset of buf[0] */
	uint64_t size; /* payload bytes so far */
	size_t buf_used;
	uint8_t *buf;
	XXH3_state_t *hash;
	char tmp_name[WAL_SNAP_NAME_SIZE + 8];
};

static void wal__snap_name(char *out, size_t out_size, uint64_t lsn)
{
	snprintf(out, out_size, "snap-%016" PRIx64, lsn);
}

/* The snapshot LSNs in dir_fd by name, descending (lsns holds
 * WAL_SNAP_COUNT_MAX). */
static int wal__list_snapshots(int dir_fd, uint64_t *lsns, size_t *count)
{
	struct dirent *de;
	DIR *d;
	int rc = wal__dir_open(dir_fd, &d);

	*count = 0;
	if (rc != 0)
		return rc;
	while ((de = readdir(d)) != NULL) {
		uint64_t lsn;
		size_t i;

		if (!wal__parse_snapshot_name(de->d_name, &lsn))
			continue;
		/* Insertion sort, descending, keeping the newest
		 * WAL_SNAP_COUNT_MAX; there are normally two. */
		if (*count == WAL_SNAP_COUNT_MAX) {
			if (lsn <= lsns[*count - 1])
				continue;
			(*count)--;
		}
		for (i = (*count)++; i > 0 && lsns[i - 1] < lsn; i--)
			lsns[i] = lsns[i - 1];
		lsns[i] = lsn;
	}
	closedir(d);
	return 0;
}

bool wal__newest_snapshot_lsn(int dir_fd, uint64_t *lsn)
{
	uint64_t lsns[WAL_SNAP_COUNT_MAX];
	size_t count;

	*lsn = 0;
	if (wal__list_snapshots(dir_fd, lsns, &count) != 0 || count == 0)
		return false;
	*lsn = lsns[0];
	return true;
}

/* ---- Writing ------------------------------------------------------------ */

int wal_snapshot_begin(wal *w, uint64_t lsn, wal_snap **out)
{
	struct wal_snap_hdr h = {
		.magic = WAL_SNAP_MAGIC,
		.version = WAL_SNAP_VERSION,
		.header_size = sizeof(struct wal_snap_hdr),
		.lsn = lsn,
	};
	wal_snap *s;
	int rc;

	ASSERT(w != NULL);
	ASSERT(out != NULL);
	*out = NULL;
	if (lsn > atomic_load(&w->appended_lsn))
		return -EINVAL; /* state ahead of the log */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->w = w;
	s->lsn = lsn;
	s->buf = malloc(WAL_SNAP_BUF_SIZE);
	s->hash = XXH3_createState();
	if (s->buf == NULL || s->hash == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	XXH3_64bits_reset(s->hash);
	wal__snap_name(s->tmp_name, sizeof(s->tmp_name), lsn);
	strcat(s->tmp_name, ".tmp");
	s->fd = openat(w->dir_fd, s->tmp_name,
		       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		rc = -errno;
		goto out_free;
	}
	memcpy(s->buf, &h, sizeof(h));
	s->buf_used = sizeof(h);
	*out = s;
	return 0;

out_free:
	XXH3_freeState(s->hash);
	free(s->buf);
	free(s);
	return rc;
}

static int wal__snap_flush(wal_snap *s)
{
	int rc;

	if (s->error != 0 || s->buf_used == 0)
		return s->error;
	XXH3_64bits_update(s->hash, s->buf, s->buf_used);
	rc = wal__pwrite_all(s->fd, s->buf, s->buf_used, s->off);
	if (rc != 0) {
		s->error = rc;
		return rc;
	}
	s->off += s->buf_used;
	s->buf_used = 0;
	return 0;
}

int wal_snapshot_write(wal_snap *s, const void *buf, size_t size)
{
	const uint8_t *p = buf;

	ASSERT(s != NULL);
	ASSERT(buf != NULL || size == 0);
	if (s->error != 0)
		return s->error;
	if (size > WAL_SNAP_SIZE_MAX - s->size)
		return s->error = -EFBIG;
	s->size += size;
	while (size > 0) {
		size_t n = WAL_SNAP_BUF_SIZE - s->buf_used;

		if (n > size)
			n = size;
		memcpy(s->buf + s->buf_used, p, n);
		s->buf_used += n;
		p += n;
		size -= n;
		if (s->buf_used == WAL_SNAP_BUF_SIZE && wal__snap_flush(s))
			return s->error;
	}
	return 0;
}

static void wal__snap_free(wal_snap *s, bool unlink_tmp)
{
	if (s->fd >= 0)
		close(s->fd);
	if (unlink_tmp)
		unlinkat(s->w->dir_fd, s->tmp_name, 0);
	XXH3_freeState(s->hash);
	free(s->buf);
	free(s);
}

void wal_snapshot_abort(wal_snap *s)
{
	if (s != NULL)
		wal__snap_free(s, true);
}

/* Keeps the WAL_SNAPSHOT_KEEP newest snapshots and removes the segments
 * whose records are all <= the older kept one and < the retain LSN. */
static void wal__retain(wal *w)
{
	uint64_t snaps[WAL_SNAP_COUNT_MAX];
	uint64_t retain = wal_retained_lsn(w), cover, *segs = NULL;
	char name[WAL_SEGMENT_NAME_SIZE];
	size_t count, i, seg_count = 0, removed = 0;

	if (wal__list_snapshots(w->dir_fd, snaps, &count) != 0 || count == 0)
		return;
	for (i = WAL_SNAPSHOT_KEEP; i < count; i++) {
		wal__snap_name(name, sizeof(name), snaps[i]);
		if (unlinkat(w->dir_fd, name, 0) == 0)
			removed++;
	}
	cover = snaps[count < WAL_SNAPSHOT_KEEP ? count - 1
						: WAL_SNAPSHOT_KEEP - 1];

	/* Segment i holds LSNs segs[i] .. segs[i + 1] - 1. A segment the
	 * writer adds meanwhile is missed: only less is removed. The last
	 * one listed always stays. */
	if (wal__segment_lsns(w->dir_fd, false, &segs, &seg_count) != 0)
		goto out_sync;
	for (i = 0; i + 1 < seg_count; i++) {
		uint64_t last = segs[i + 1] - 1;

		if (last > cover || last >= retain)
			break;
		wal__segment_name(name, segs[i]);
		if (unlinkat(w->dir_fd, name, 0) != 0) {
			wal__log("cannot remove %s/%s: %s", w->dir, name,
				 strerror(errno));
			break;
		}
		removed++;
	}
	free(segs);
out_sync:
	if (removed > 0 && wal__sync(w->dir_fd) != 0)
		wal__log("fsync of %s after removing files: %s", w->dir,
			 strerror(errno));
}

int wal_snapshot_commit(wal_snap *s)
{
	struct wal_snap_trailer t = {
		.magic = WAL_SNAP_END_MAGIC,
		.lsn = s->lsn,
	};
	char name[WAL_SNAP_NAME_SIZE];
	wal *w = s->w;
	int rc;

	ASSERT(s != NULL);
	t.size = s->size;
	rc = wal__snap_flush(s);
	if (rc != 0)
		goto out_abort;
	XXH3_64bits_update(s->hash, &t,
			   offsetof(struct wal_snap_trailer, checksum));
	t.checksum = XXH3_64bits_digest(s->hash);
	rc = wal__pwrite_all(s->fd, &t, sizeof(t), s->off);
	if (rc == 0)
		rc = wal__sync(s->fd);
	if (rc != 0)
		goto out_abort;
	/* Never a snapshot ahead of the durable log. */
	rc = wal_wait_durable(w, s->lsn);
	if (rc != 0)
		goto out_abort;
	wal__snap_name(name, sizeof(name), s->lsn);
	if (renameat(w->dir_fd, s->tmp_name, w->dir_fd, name) != 0) {
		rc = -errno;
		goto out_abort;
	}
	rc = wal__sync(w->dir_fd);
	wal__snap_free(s, false);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w->snap_mu);
	wal__retain(w);
	pthread_mutex_unlock(&w->snap_mu);
	return 0;

out_abort:
	wal__snap_free(s, true);
	return rc;
}

/* ---- Loading ------------------------------------------------------------- */

static int wal__pread_all(int fd, void *buf, size_t size, uint64_t off)
{
	uint8_t *p = buf;

	while (size > 0) {
		ssize_t n = pread(fd, p, size, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than fstat said */
		p += n;
		size -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Loads and verifies one snapshot; why it is unusable in *why. */
static int wal__snap_read(int dir_fd, uint64_t lsn, void **buf_out,
			  size_t *size_out, const char **why)
{
	char name[WAL_SNAP_NAME_SIZE];
	struct wal_snap_hdr h;
	struct wal_snap_trailer t;
	XXH3_state_t *hash = NULL;
	struct stat st;
	uint8_t *buf = NULL;
	uint64_t size;
	int fd, rc;

	wal__snap_name(name, sizeof(name), lsn);
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = "cannot open";
		return -errno;
	}
	rc = -EUCLEAN;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		*why = "cannot stat";
		goto out;
	}
	if ((uint64_t)st.st_size < sizeof(h) + sizeof(t) ||
	    (uint64_t)st.st_size - sizeof(h) - sizeof(t) > WAL_SNAP_SIZE_MAX) {
		*why = "bad file size";
		goto out;
	}
	size = (uint64_t)st.st_size - sizeof(h) - sizeof(t);
	if (wal__pread_all(fd, &h, sizeof(h), 0) != 0 ||
	    wal__pread_all(fd, &t, sizeof(t), sizeof(h) + size) != 0) {
		*why = "read error";
		rc = -EIO;
		goto out;
	}
	if (h.magic != WAL_SNAP_MAGIC || h.version != WAL_SNAP_VERSION ||
	    h.header_size != sizeof(h) || h.lsn != lsn) {
		*why = "bad header";
		goto out;
	}
	if (t.magic != WAL_SNAP_END_MAGIC || t.size != size || t.lsn != lsn) {
		*why = "bad trailer (incomplete?)";
		goto out;
	}
	hash = XXH3_createState();
	buf = malloc(size > 0 ? size : 1);
	if (hash == NULL || buf == NULL) {
		*why = "out of memory";
		rc = -ENOMEM;
		goto out;
	}
	if (wal__pread_all(fd, buf, size, sizeof(h)) != 0) {
		*why = "read error";
		rc = -EIO;
		goto out;
	}
	XXH3_64bits_reset(hash);
	XXH3_64bits_update(hash, &h, sizeof(h));
	XXH3_64bits_update(hash, buf, size);
	XXH3_64bits_update(hash, &t,
			   offsetof(struct wal_snap_trailer, checksum));
	if (XXH3_64bits_digest(hash) != t.checksum) {
		*why = "bad checksum";
		goto out;
	}
	*buf_out = buf;
	*size_out = size;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	XXH3_freeState(hash);
	close(fd);
	return rc;
}

int wal_snapshot_load(const char *dir, uint64_t *lsn, void **buf, size_t *size,
		      char *err, size_t err_size)
{
	uint64_t lsns[WAL_SNAP_COUNT_MAX];
	size_t count, i;
	int dir_fd, rc;

	ASSERT(dir != NULL);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		rc = -errno;
		wal__errf(err, err_size, "wal: cannot open %s: %s", dir,
			  strerror(-rc));
		return rc;
	}
	rc = wal__list_snapshots(dir_fd, lsns, &count);
	if (rc != 0) {
		wal__errf(err, err_size, "wal: cannot list %s: %s", dir,
			  strerror(-rc));
		goto out;
	}
	if (count == 0) {
		wal__errf(err, err_size, "wal: no snapshot in %s", dir);
		rc = -ENOENT;
		goto out;
	}
	for (i = 0; i < count; i++) {
		const char *why = "";

		rc = wal__snap_read(dir_fd, lsns[i], buf, size, &why);
		if (rc == 0) {
			*lsn = lsns[i];
			wal__log("%s: loaded snapshot snap-%016" PRIx64
				 " (%zu bytes)",
				 dir, lsns[i], *size);
			goto out;
		}
		wal__log("%s: snapshot snap-%016" PRIx64 " is unusable (%s)%s",
			 dir, lsns[i], why,
			 i + 1 < count ? ": falling back to an older one" : "");
	}
	wal__errf(err, err_size,
		  "wal: none of the %zu snapshots in %s verifies (newest "
		  "snap-%016" PRIx64 ")",
		  count, dir, lsns[0]);
	rc = -EUCLEAN;
out:
	close(dir_fd);
	return rc;
}
