/*
 * fold.h: the replicator's fold (fold.c) and its memory (batch.c), what the
 * rest of replicator/ shares about a batch; not part of the public API
 * (repl.h).
 *
 * The fold is pure memory: log entries in, a batch of row changes out (COPY
 * text per staging table and stream), no PostgreSQL and no threads of its
 * own. It reads the replicator's memory of PostgreSQL through a fold_env
 * (which customers and partitions exist, the events' start times), never
 * PostgreSQL itself, so tests/unit/test_repl_fold.c drives it alone.
 *
 *   repl__batch_init(&b, batch_records, &env);
 *   repl__batch_reset(&b, now_ms);
 *   b.parts = streams; b.part[k].from = what stream k has (UINT64_MAX
 *                                       for k >= streams: batch_start)
 *   repl__batch_add_entry(&b, lsn, payload, size);   ... per entry
 *   repl__batch_finish(&b);                 (bookings and events staged)
 *   ... b.part[k].st[ST_*] hold the COPY text of stream k ...
 *   repl__batch_free(&b);
 */
#ifndef BOOKD_REPL_FOLD_H
#define BOOKD_REPL_FOLD_H

#include "buf.h"
#include "entry.h"
#include "repl.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ASSERT (core/bookd_assert.h, on in release builds too) is for our own
 * invariants, never for bytes from the log or PostgreSQL. */
#include "bookd_assert.h"

#define REPL_ENTRY_RECORDS_MAX (65536 / 12) /* smallest record: 12 bytes */
#define REPL_COPY_SIZE_MAX (512u << 20)
#define REPL_START_CACHE_MAX (64u << 20) /* event ids cached (512 MiB) */
#define REPL_MONTH_BASE 1970
#define REPL_MONTH_COUNT (200 * 12) /* 1970..2169 tracked in a bitmap */

_Static_assert(REPL_MONTH_COUNT % 8 == 0, "months: whole bytes of a bitmap");
_Static_assert(REPL_COPY_SIZE_MAX <= INT32_MAX,
	       "COPY data: PQputCopyData's int");
_Static_assert(REPL_STREAM_MAX <= UINT8_MAX, "bk.stream, ev.stream: a byte");
_Static_assert((REPL_BATCH_RECORDS_MAX + REPL_ENTRY_RECORDS_MAX) *
			       UINT64_C(2) <=
		       UINT32_C(1) << 31,
	       "a batch's index: a power of two of uint32 slots");

/* ---- growable byte buffers (COPY text) ---------------------------------- */

/* struct buf (core/buf.h), each with max REPL_COPY_SIZE_MAX: broken once
 * a write did not fit (that cap reached, or no memory). */

/* ---- the batch: records folded per booking and per event ---------------- */

enum bk_kind { BK_SET = 0, BK_NEW = 1, BK_RESTORE = 2 };

struct bk {
	uint64_t id;
	int64_t created_at, updated_at, hold, exit_at;
	uint32_t join_seq; /* order of joining the waitlist, 0: did not */
	uint8_t kind, status, exit_status, stream;
	bool late; /* a late cancel (registrations.late) */
	char customer[CORE_CUSTOMER_ID_SIZE_MAX + 1];
};

struct ev {
	uint64_t id;
	int64_t start_at; /* ms; 0 until known */
	int64_t created_at, updated_at, cancel_at;
	bool created, set, cancelled;
	uint8_t stream;
	uint64_t series_id, org_id, location_id, instructor_id;
	uint32_t duration_min, capacity0, waitlist_capacity, price_cents;
	char currency[4];
	uint32_t n_conf, n_held,
		n_wl;		 /* from its new bookings (a new event: all) */
	bool needs_update;	 /* counters or settings move in PostgreSQL */
	uint32_t capacity;	 /* final, when set */
	uint64_t set_instructor; /* final, when set */
	uint8_t status;		 /* final, when set */
	/* EVENT_EDIT (at most one per batch: repl__batch_cut): the new
	 * start (start_at stays the partition key PostgreSQL has), the
	 * settings and the title it gave ("" : unchanged) */
	bool edited;
	int64_t new_start;
	char title[CORE_NAME_SIZE_MAX];
	bool detached; /* an edit flagged it CORE_EDIT_DETACHED: stays so */
};

/* Open addressing, id -> index + 1, sized at twice the entries. */
struct idx {
	uint32_t *slots;
	uint32_t mask;
};

enum stage {
	ST_CAT,
	ST_CUSTOMER,
	ST_SERIES,
	ST_GEN,
	ST_ORGSET,
	ST_EVENT,
	ST_BOOKING,
	ST_PAYMENT,
	ST_NOTIFY,
	ST_NEWCUST,
	ST_LEGACY, /* imported rows' old ids: bookd.legacy_ids */
	ST_COUNT
};

/* Event id -> start_at in ms (0: unknown), the partition key of the events'
 * updates. The fold fills it from created events, the streams from
 * look-ups in PostgreSQL, at once: hence the lock. */
struct starts {
	pthread_mutex_t lock;
	int64_t *ms;
	uint64_t cap;
};

/* Hashes of the customer ids PostgreSQL has (open addressing, 0: free). The
 * fold reads it; it grows after a commit, and stops growing when full. */
struct custset {
	uint64_t *slots;
	uint32_t mask, count;
};

/* What the fold reads besides the records: the replicator's memory of
 * PostgreSQL, never PostgreSQL itself. */
struct fold_env {
	const char *log_id;		 /* in notification ids */
	struct starts *starts;		 /* filled from created events */
	const struct custset *customers; /* customers not to stage again */
	const uint8_t *months;		 /* bitmap: partitions that exist */
};

/* One stream's share of a batch: its rows, staged, and what they hold. */
struct part {
	struct buf st[ST_COUNT];
	uint32_t rows[ST_COUNT];
	uint64_t from; /* the stream's applied LSN: records up to it are in */
	bool kinds[3], cancels, created;
	uint32_t misses, updates; /* events: start_at unknown; to update */
	bool edits;		  /* an event edited (sink.c: sql_event_edit) */
	uint32_t customers;	  /* new customers it inserted */
	bool committed;		  /* its transaction moved the stream */
	int rc;
	char err[REPL_ERROR_SIZE];
};

struct batch {
	struct fold_env env;
	struct bk *bk;
	struct ev *ev;
	uint32_t bk_count, ev_count, cap; /* cap: bookings and events each */
	struct idx bk_idx, ev_idx;
	struct part part[REPL_STREAM_MAX];
	uint32_t parts; /* streams (parts in use) */
	uint32_t seq, join_seq, restore_count;
	uint32_t records, entries;
	uint64_t bytes, first_lsn, last_lsn;
	bool full;	/* stop adding: the next entry may not fit */
	bool snapshot;	/* records from a snapshot (resync) */
	int64_t now_ms; /* wall clock at the start of the batch */
	uint32_t month_lo, month_hi; /* months of new events not yet ensured */
	bool months;
	char err[REPL_ERROR_SIZE];
};

/* ---- the batch's memory (batch.c) ------------------------------------------ */

/* COPY text fields (appended with buf_put and these); a buffer past
 * REPL_COPY_SIZE_MAX (or out of memory) drops what follows and is marked
 * broken. */
void repl__buf_c(struct buf *b, char c);
void repl__buf_i64(struct buf *b, int64_t v);
void repl__buf_u64(struct buf *b, uint64_t v);
/* Escaped; bytes that are not UTF-8 become U+FFFD. */
void repl__buf_str(struct buf *b, const char *s);
void repl__buf_null(struct buf *b);
void repl__buf_date(struct buf *b, struct core_date d);
#define TAB(b) repl__buf_c((b), '\t')
#define EOL(b) repl__buf_c((b), '\n')

/* Sized for batch_records records plus one entry; 0 or -ENOMEM. */
int repl__batch_init(struct batch *b, uint32_t batch_records,
		     const struct fold_env *env);
void repl__batch_free(struct batch *b);
/* Empties the batch for the next; now_ms: the wall clock, for the times of
 * snapshot records (they carry none). Sets no stream position (`from`). */
void repl__batch_reset(struct batch *b, int64_t now_ms);
/* The part a record about event_id goes to (0: the catalogue, stream 0),
 * or NULL when its stream has the record already (lsn <= its `from`). */
struct part *repl__part_for(struct batch *b, uint64_t event_id, uint64_t lsn);
/* The booking id of the batch, created (zeroed: id and stream set) unless
 * *existed; the event likewise. At most `cap` of each. */
struct bk *repl__bk_get(struct batch *b, uint64_t id, bool *existed);
const struct bk *repl__bk_find(struct batch *b, uint64_t id);
struct ev *repl__ev_get(struct batch *b, uint64_t id);
/* Is the event in the batch already? */
bool repl__ev_has(struct batch *b, uint64_t id);
/* Must the batch end before this entry? Yes when it edits an event the
 * batch has already (an edit starts from the row PostgreSQL has: a
 * restore after a cancel, two moves, stay apart), and before a series
 * edit (the events made before it were inserted with the title they had;
 * new ones take the series' title as it is then). */
bool repl__batch_cut(struct batch *b, const void *payload, size_t size);
/* Months since 1970-01 (UTC) of a time in ms; whether the bitmap has it. */
int64_t repl__month_of(int64_t ms);
bool repl__month_known(const uint8_t *months, int64_t m);
/* Rows a part wrote once applied (for the status). */
uint64_t repl__part_rows(const struct part *p);

/* Event id -> start (0: unknown); beyond REPL_START_CACHE_MAX ids not kept. */
void repl__starts_set(struct starts *s, uint64_t id, int64_t ms);
int64_t repl__starts_get(struct starts *s, uint64_t id);
/* The customer set: a nonzero hash per id. */
uint64_t repl__customer_hash(const char *id);
bool repl__custset_has(const struct custset *cs, const char *id);
void repl__custset_add(struct custset *cs, const char *id);

/* ---- the fold (fold.c) ------------------------------------------------------ */

/* Folds one record (lsn: its entry's; notify_index: the k-th NOTIFY of the
 * entry); -EUCLEAN with b->err when it cannot be right. */
int repl__batch_add(struct batch *b, const struct core_rec *c, uint64_t lsn,
		    uint32_t notify_index);
/* Folds one entry (all its records); -EUCLEAN with b->err. */
int repl__batch_add_entry(struct batch *b, uint64_t lsn, const void *payload,
			  size_t size);
/* Stages the bookings and events, each in its stream's part. */
void repl__batch_finish(struct batch *b);

#endif
