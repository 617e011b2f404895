/*
 * wal_reader.c: a reader that tails the log while it is written (for the
 * replicator; wal_replay is for start-up only).
 *
 * It reads the segment files, not the writer's buffer: the current
 * segment is mapped MAP_SHARED, so the writer's later pwrites show in it.
 * Each call loads durable_lsn once (acquire) and reads only records with
 * LSN <= it: those were written completely (and the segment holding them
 * was named) before the writer published them, so a reader never sees a
 * half-written record, and never touches bytes the writer may still be
 * writing (the zeros at the end of a sealed segment are never written
 * again). Every segment header and record is checked with recovery's own
 * functions (wal__check_seg_hdr, wal__check_record in wal_segment.c).
 *
 * Positioning: the segment holding an LSN is the one with the greatest
 * first LSN <= it (names are first LSNs); records before from_lsn there are
 * checked and skipped. Moving on: like recovery, when the record expected
 * at the current offset is not valid and a segment named by that LSN
 * exists, the log continues there; if that segment is missing it was
 * removed (-ENODATA), unless the bytes at the offset are neither zero nor
 * the segment end: then this segment is corrupt (-EUCLEAN).
 *
 * Removal: a mapped segment stays readable after unlink, so only the
 * segments ahead of the reader matter; wal_retain() keeps them. Opening
 * (listing + mapping) runs under snap_mu, so wal_retain(w, lsn) followed
 * by wal_reader_open(w, lsn) cannot race with a commit's removal pass.
 *
 * Threads: a reader belongs to one thread; it shares nothing with the
 * writer but durable_lsn (atomic), the directory and snap_mu.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "wal_int.h"

struct wal_reader {
	wal *w;
	uint64_t next_lsn;	/* the next LSN to pass to fn */
	uint64_t cur_lsn;	/* LSN of the record at off; <= next_lsn */
	uint64_t off;		/* in the mapped segment */
	uint64_t seg_first_lsn; /* of the mapped segment */
	struct wal_map m;
	bool mapped;
	bool reported; /* corruption logged once */
};

/* Makes segment first_lsn the current one, positioned at its first
 * record. -ENODATA if it is gone, -EUCLEAN if its header is bad. */
static int wal__reader_map(wal_reader *r, uint64_t first_lsn)
{
	struct wal_map m;
	const char *why;
	int rc;

	rc = wal__map(r->w, first_lsn, true, &m);
	if (rc == -ENOENT)
		return -ENODATA;
	if (rc != 0)
		return rc;
	why = wal__check_seg_hdr(&m, first_lsn);
	if (why != NULL) {
		if (!r->reported)
			wal__log("reader: corrupt segment %s/%s: %s", r->w->dir,
				 m.name, why);
		r->reported = true;
		wal__unmap(&m);
		return -EUCLEAN;
	}
	if (r->mapped)
		wal__unmap(&r->m);
	r->m = m;
	r->mapped = true;
	r->seg_first_lsn = first_lsn;
	r->cur_lsn = first_lsn;
	r->off = WAL_SEGMENT_HEADER_SIZE;
	return 0;
}

/* Checks that next_lsn is still kept and, if it is durable (<= durable,
 * loaded before), maps the segment holding it. */
static int wal__reader_seek(wal_reader *r, uint64_t durable)
{
	wal *w = r->w;
	uint64_t *lsns = NULL;
	size_t count = 0, i;
	int rc;

	/* No removal pass runs meanwhile, and every later one sees the
	 * caller's wal_retain() (see the top). */
	pthread_mutex_lock(&w->snap_mu);
	rc = wal__segment_lsns(w->dir_fd, false, &lsns, &count);
	if (rc != 0)
		goto out_unlock;
	if (count == 0 || r->next_lsn < lsns[0]) {
		rc = -ENODATA;
		goto out_free;
	}
	if (r->next_lsn > durable)
		goto out_free; /* positioned later, once it is durable */
	for (i = count; lsns[i - 1] > r->next_lsn; i--)
		;
	rc = wal__reader_map(r, lsns[i - 1]);
	ASSERT(rc != 0 || r->cur_lsn <= r->next_lsn);
out_free:
	free(lsns);
out_unlock:
	pthread_mutex_unlock(&w->snap_mu);
	return rc;
}

int wal_reader_open(wal *w, uint64_t from_lsn, wal_reader **out)
{
	wal_reader *r;
	int rc;

	ASSERT(w != NULL);
	ASSERT(out != NULL);
	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->w = w;
	r->next_lsn = from_lsn == 0 ? 1 : from_lsn;
	rc = wal__reader_seek(r, wal_durable_lsn(w));
	if (rc != 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static bool wal__is_end(const char *why)
{
	return strcmp(why, "end of segment") == 0 ||
	       strcmp(why, "partial record header") == 0 ||
	       strcmp(why, "zeroed space") == 0;
}

int wal_reader_next(wal_reader *r, uint32_t max_records,
		    int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			      size_t size),
		    void *ctx)
{
	uint64_t durable = wal_durable_lsn(r->w);
	uint32_t count = 0;
	int rc;

	ASSERT(fn != NULL);
	if (max_records > INT32_MAX)
		max_records = INT32_MAX; /* the count is returned as an int */
	if (!r->mapped) {
		if (r->next_lsn > durable)
			return 0;
		rc = wal__reader_seek(r, durable);
		if (rc != 0)
			return rc;
		ASSERT(r->mapped);
	}
	/* Bounded: each turn passes or skips a record (off grows by >= 32
	 * bytes) or moves to a segment with a greater first LSN. */
	while (count < max_records && r->cur_lsn <= durable) {
		struct wal_rec_hdr h;
		const char *why;
		uint32_t len;

		why = wal__check_record(&r->m, r->off, r->cur_lsn, &h, &len);
		if (why != NULL) {
			/* Durable, so here or at the start of the segment
			 * named by it (the end of this one stays zero). */
			if (r->seg_first_lsn == r->cur_lsn)
				rc = -EUCLEAN; /* that segment is this one */
			else
				rc = wal__reader_map(r, r->cur_lsn);
			if (rc == -ENODATA && !wal__is_end(why))
				rc = -EUCLEAN;
			if (rc == -EUCLEAN && !r->reported) {
				wal__log("reader: corrupt record in %s/%s+%" PRIu64
					 " (%s, LSN %" PRIu64 ")",
					 r->w->dir, r->m.name, r->off, why,
					 r->cur_lsn);
				r->reported = true;
			}
			if (rc != 0)
				return rc;
			continue;
		}
		ASSERT(h.lsn == r->cur_lsn);
		if (r->cur_lsn >= r->next_lsn) {
			rc = fn(ctx, h.lsn,
				r->m.base + r->off + WAL_RECORD_HEADER_SIZE,
				h.size);
			if (rc != 0)
				return rc < 0 ? rc : (int)count;
			count++;
			r->next_lsn++;
		}
		r->off += len;
		r->cur_lsn++;
	}
	ASSERT(r->cur_lsn <= r->next_lsn);
	ASSERT(count == 0 || r->next_lsn - 1 <= durable);
	return (int)count;
}

uint64_t wal_reader_lsn(const wal_reader *r) { return r->next_lsn; }

void wal_reader_close(wal_reader *r)
{
	if (r == NULL)
		return;
	if (r->mapped)
		wal__unmap(&r->m);
	free(r);
}
