/*
 * wal_recover.c: recovery at wal_open (see RECOVERY in wal.c's header
 * comment), and cutting the log: it reads the segments in order, checks
 * every record, decides whether the place where the log stops is a torn
 * tail (zeroed) or damage before acknowledged records (-EUCLEAN, or cut
 * with cut_corrupt), and leaves the tail segment ready for the writer.
 * The operator's cut (wal_cut_before, bookd --recover-stop-before) and
 * wal_record_where use the same means: what is cut is kept as *.cut.
 *
 * Runs on the thread of wal_open (or of the caller, before wal_start);
 * the writer is not running yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wal_int.h"

/* ---- Setting aside and zeroing ------------------------------------------ */

/* A name for what is set aside from segment name: <name>.cut, or
 * <name>.2.cut, ... if an earlier cut took it (nothing is overwritten). */
#define WAL_CUT_NAME_SIZE (WAL_SEGMENT_NAME_SIZE + 16)
static void wal__cut_name(wal *w, const char *name, char cut[WAL_CUT_NAME_SIZE])
{
	unsigned k;

	snprintf(cut, WAL_CUT_NAME_SIZE, "%s.cut", name);
	for (k = 2; faccessat(w->dir_fd, cut, F_OK, 0) == 0 && k < 1000000; k++)
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
static int wal__zero_range(wal *w, const char *name, uint64_t from, uint64_t to,
			   uint64_t file_size, uint64_t size)
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

/* ---- Recovery ---------------------------------------------------------- */

/* What lies after a spot where the log stops, in the same segment. */
struct wal_after {
	uint64_t valid_count; /* valid records with LSN >= the failing one */
	uint64_t proof_lsn;   /* first of them appended after the failing
				* LSN was durable (0: none) */
	uint64_t proof_off;
	uint64_t nonzero_end; /* offset after the last non-zero byte */
};

/* Maps the segment that starts at first_lsn to read it; on failure says
 * which in err. */
static int wal__map_read(wal *w, uint64_t first_lsn, struct wal_map *m,
			 char *err, size_t err_size)
{
	int rc = wal__map(w, first_lsn, false, m);

	if (rc != 0)
		wal__errf(err, err_size,
			  "wal: cannot read %s/%020" PRIu64 ".wal: %s", w->dir,
			  first_lsn, strerror(-rc));
	return rc;
}

/* err: "wal: <what> in <the log's directory>: <rc's text>". */
static void wal__errf_dir(const wal *w, int rc, const char *what, char *err,
			  size_t err_size)
{
	ASSERT(rc < 0);
	wal__errf(err, err_size, "wal: %s in %s: %s", what, w->dir,
		  strerror(-rc));
}

static void wal__scan_after(const struct wal_map *m, uint64_t off, uint64_t lsn,
			    struct wal_after *a)
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

/* How recovery ended: the log stops in segment index at off, with lsn the
 * next LSN expected there. */
struct wal_stop {
	size_t index;
	uint64_t off;
	uint64_t lsn;
	const char *why; /* why the record at off is not valid */
	bool header_bad;
	bool seal_bad;	      /* a damaged trailer: it rolled over */
	uint64_t sealed_next; /* a valid trailer's next LSN (0: none) */
	uint64_t sealed_end;  /* and its end of records */
	uint64_t file_size;   /* truncated: the file's size (else 0) */
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

	rc = wal__map_read(w, lsns[stop->index], &m, err, err_size);
	if (rc != 0)
		return rc;
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
	wal__scan_after(&m,
			stop->off < WAL_SEGMENT_HEADER_SIZE
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
			 " on are lost",
			 stop->sealed_next, stop->lsn);
	else if (stop->seal_bad && stop->index + 1 == count)
		snprintf(proof, sizeof(proof),
			 "its trailer (written only at a roll-over) is "
			 "damaged and no segment follows: the records from "
			 "LSN %" PRIu64 " on are lost",
			 stop->lsn);
	else if (stop->file_size != 0)
		snprintf(proof, sizeof(proof),
			 "the file is %" PRIu64 " bytes, not the %" PRIu64
			 " it was allocated with: it was truncated (a crash "
			 "never shortens a segment)",
			 stop->file_size, seg_size);
	else if (stop->index + 1 < count)
		snprintf(proof, sizeof(proof),
			 "segment %020" PRIu64 ".wal follows",
			 lsns[stop->index + 1]);
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
			 "damage, not a crash",
			 m.file_size);
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
		wal__log("CUT CORRUPT LOG at %s/%s+%" PRIu64
			 " (%s, LSN %" PRIu64
			 "): %s; the log now ends at LSN %" PRIu64 ", every "
			 "record from LSN %" PRIu64 " on is dropped; what is "
			 "cut is kept as *.cut (named below)",
			 w->dir, m.name, stop->off, stop->why, stop->lsn, proof,
			 stop->lsn - 1, stop->lsn);
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
			wal__errf(err, err_size, "wal: cutting %s: %s", m.name,
				  strerror(-rc));
			return rc;
		}
	}
	w->seg_size = seg_size;
	w->seg_limit = version == WAL_SEGMENT_VERSION_1
			       ? seg_size
			       : seg_size - WAL_SEGMENT_TRAILER_SIZE;
	return 0;
}

int wal__recover(wal *w, bool cut_corrupt, char *err, size_t err_size)
{
	uint64_t *lsns = NULL, snap_lsn = 0, lsn, bytes = 0, records = 0;
	uint64_t t0 = wal__now_ns(), t_report = t0;
	struct wal_stop stop = { 0 };
	size_t count = 0, i;
	char name[WAL_SEGMENT_NAME_SIZE];
	int rc;

	rc = wal__segment_lsns(w->dir_fd, true, &lsns, &count);
	if (rc != 0) {
		wal__errf(err, err_size,
			  "wal: cannot list the segments in "
			  "%s: %s (at most %u)",
			  w->dir, strerror(-rc), WAL_SEGMENT_COUNT_MAX);
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
			wal__errf_dir(w, rc, "cannot create the first segment",
				      err, err_size);
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

		rc = wal__map_read(w, lsns[i], &m, err, err_size);
		if (rc != 0)
			goto out;
		si->first_lsn = lsns[i];
		why = wal__check_seg_hdr(&m, lsns[i]);
		if (why != NULL) {
			wal__unmap(&m);
			stop = (struct wal_stop){ .index = i,
						  .lsn = lsn,
						  .why = why,
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
			stop = (struct wal_stop){
				.index = i, .off = off, .lsn = lsn, .why = why
			};
			stop.file_size = file_size;
			break;
		}
		if (seal == WAL_SEAL_VALID &&
		    (off != t.end_off || lsn != t.next_lsn)) {
			/* Records missing before the end it sealed. */
			stop = (struct wal_stop){
				.index = i, .off = off, .lsn = lsn, .why = why
			};
			stop.sealed_next = t.next_lsn;
			stop.sealed_end = t.end_off;
			break;
		}
		if (i + 1 < count && lsns[i + 1] == lsn)
			continue; /* rolled over cleanly */
		/* The log stops here; wal__settle_tail decides how. */
		if (seal == WAL_SEAL_VALID)
			why = "the segment it rolled over to is missing";
		else if (i + 1 < count && (strcmp(why, "end of segment") == 0 ||
					   strcmp(why, "zeroed space") == 0))
			why = "the next segment does not continue here";
		stop = (struct wal_stop){
			.index = i, .off = off, .lsn = lsn, .why = why
		};
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
		wal__errf_dir(w, rc, "fdatasync of the recovered tail", err,
			      err_size);
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
			wal__errf(err, err_size, "wal: fsync of %s: %s", w->dir,
				  strerror(-rc));
	}
	free(lsns);
	return rc;
}

/* ---- The operator's cut ------------------------------------------------- */

/* Where record lsn is (recovered, before wal_start): its segment's index
 * and offset. -ENOENT if the log does not hold it. */
static int wal__find(wal *w, uint64_t lsn, size_t *index, uint64_t *off_out)
{
	const struct wal_seg_info *si = NULL;
	size_t i;

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
	return wal__walk(w, si, lsn, lsn, NULL, NULL, off_out);
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
		wal__errf(err, err_size,
			  "wal: cut before LSN %" PRIu64 ": the log is running",
			  lsn);
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
		 "LSN %" PRIu64 "; records %" PRIu64 "..%" PRIu64 " (%" PRIu64
		 " records, from %s+%" PRIu64 ") are set aside "
		 "as *.cut (named below), never read again",
		 w->dir, lsn - 1, lsn, last, last - lsn + 1, name, off);
	rc = wal__copy_aside(w, name);
	for (k = i + 1; rc == 0 && k < w->seg_count; k++)
		rc = wal__rename_aside(w, w->segs[k].first_lsn);
	if (rc == 0)
		rc = wal__map(w, w->segs[i].first_lsn, false, &m);
	if (rc == 0) {
		ASSERT(wal__check_seg_hdr(&m, w->segs[i].first_lsn) == NULL);
		/* Its records and its trailer go: it is the tail now. */
		rc = wal__zero_range(w, name, off, m.file_size, m.file_size,
				     m.header_size);
		w->seg_size = m.header_size;
		w->seg_limit =
			m.version == WAL_SEGMENT_VERSION_1
				? m.header_size
				: m.header_size - WAL_SEGMENT_TRAILER_SIZE;
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
		wal__errf(err, err_size,
			  "wal: cutting %s/%s before LSN %" PRIu64 ": %s",
			  w->dir, name, lsn, strerror(-rc));
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
