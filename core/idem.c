/*
 * idem.c: a shard's idempotency keys (state.c has the design). A key lives
 * at its home shard (core__key_home) with its request's fingerprint and
 * its first answer, in a ring in arrival order (so the oldest go first
 * once older than the retention) and a map from the key. Full of live
 * keys (idem_count_max), the oldest goes early.
 *
 * Every keyed write adds an entry, so their memory is a write's cost: the
 * ring is idem_count_max positions in chunks of 4096 entries, a chunk
 * allocated when the ring's tail reaches it and freed (one kept spare)
 * when its last entry goes. Nothing is copied or re-pointed as the ring
 * fills. A chunk is a mapping of its own, populated when it is made
 * (MAP_POPULATE): left to fault in as the ring fills, it took a page fault
 * every 25 keys, ~14 µs each on the project's virtual machines, 95% of
 * bookd's page faults under load; populated at once, its 160 pages take
 * ~0.1 ms (bench/bench_fault, docs/benchmarks.md). An entry is 160 bytes:
 * a booking answer without a promotion is kept inline, any other answer
 * (rare) as a whole core_idem_result beside it (struct idem_entry).
 */
#include "state.h"
#include "state_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t idem_map_key(uint64_t hi, uint64_t lo)
{
	uint64_t k = hi ^ (lo * UINT64_C(0x9E3779B97F4A7C15));
	return k ? k : 1;
}
/* ---- idempotency ---- */

#define IDEM_CHUNK (1u << IDEM_CHUNK_SHIFT)

static uint32_t idem_chunk_count(const core_state *st)
{
	return (uint32_t)(((uint64_t)st->cfg.idem_count_max + IDEM_CHUNK - 1) >>
			  IDEM_CHUNK_SHIFT);
}

int state__idem_init(core_state *st)
{
	st->idem_chunks =
		calloc(idem_chunk_count(st) + 1, sizeof(*st->idem_chunks));
	return st->idem_chunks ? 0 : -ENOMEM;
}

static struct idem_entry *idem_at(const core_state *st, uint32_t pos)
{
	return &st->idem_chunks[pos >> IDEM_CHUNK_SHIFT][pos & (IDEM_CHUNK - 1)];
}

#define IDEM_CHUNK_BYTES (IDEM_CHUNK * sizeof(struct idem_entry))

/* A zeroed chunk, its pages populated, or NULL. */
static struct idem_entry *idem_chunk_new(void)
{
	void *p = mmap(NULL, IDEM_CHUNK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void idem_chunk_free(struct idem_entry *chunk)
{
	if (chunk)
		(void)munmap(chunk, IDEM_CHUNK_BYTES);
}

/* Ring position of the k-th live entry (0: the oldest). */
static uint32_t idem_pos(const core_state *st, uint32_t k)
{
	uint64_t pos = (uint64_t)st->idem_head + k;

	return (uint32_t)(pos % st->cfg.idem_count_max);
}

void state__idem_prefetch(const core_state *st, const struct core_idem *k)
{
	map_prefetch(&st->idem_by_key, idem_map_key(k->hi, k->lo));
}

static struct idem_entry *idem_find(const core_state *st, uint64_t hi,
				    uint64_t lo)
{
	uint32_t v = map_get(&st->idem_by_key, idem_map_key(hi, lo));
	struct idem_entry *e = v ? idem_at(st, v - 1) : NULL;

	return e && e->hi == hi && e->lo == lo ? e : NULL;
}

/* Whether a live entry is in chunk c. The live entries are positions
 * head .. head + count - 1, counted on past the ring's end. */
static bool idem_chunk_live(const core_state *st, uint32_t c)
{
	uint64_t head = st->idem_head, end = head + st->idem_count;
	uint64_t lo = (uint64_t)c << IDEM_CHUNK_SHIFT, hi = lo + IDEM_CHUNK;
	uint64_t max = st->cfg.idem_count_max;

	return (lo < end && hi > head) || (lo + max < end && hi + max > head);
}

static void idem_chunk_release(core_state *st, uint32_t c)
{
	if (!st->idem_spare)
		st->idem_spare = st->idem_chunks[c];
	else
		idem_chunk_free(st->idem_chunks[c]);
	st->idem_chunks[c] = NULL;
}

/* The oldest entry goes: out of the map (unless a newer entry of the same
 * key took it over), its chunk freed once empty. */
static void idem_drop_oldest(core_state *st)
{
	uint32_t pos = st->idem_head, c = pos >> IDEM_CHUNK_SHIFT;
	struct idem_entry *e = idem_at(st, pos);
	uint64_t key = idem_map_key(e->hi, e->lo);

	if (map_get(&st->idem_by_key, key) == pos + 1)
		map_del(&st->idem_by_key, key);
	if (e->outline)
		free(e->full);
	st->idem_head = idem_pos(st, 1);
	st->idem_count--;
	if (!idem_chunk_live(st, c))
		idem_chunk_release(st, c);
}

void state__idem_free(core_state *st)
{
	if (!st->idem_chunks)
		return;
	for (uint32_t k = 0; k < st->idem_count; k++) {
		struct idem_entry *e = idem_at(st, idem_pos(st, k));
		if (e->outline)
			free(e->full);
	}
	for (uint32_t c = 0; c < idem_chunk_count(st); c++)
		idem_chunk_free(st->idem_chunks[c]);
	free(st->idem_chunks);
	idem_chunk_free(st->idem_spare);
}

/* Drops entries older than the retention, oldest first; returns how many.
 * Lookups already ignore them (core__idem_lookup): dropping them is only
 * memory, so the tick may do it without a log record. */
uint32_t state__idem_expire(core_state *st, core_time now)
{
	uint32_t dropped = 0;

	while (st->idem_count && idem_at(st, st->idem_head)->created +
						 st->cfg.idem_retention_ms <=
					 now) {
		idem_drop_oldest(st);
		dropped++;
	}
	return dropped;
}

uint32_t core__state_idem_expire(core_state *st, core_time now)
{
	return state__idem_expire(st, now);
}

/* The answer an entry keeps, whole again. */
static void idem_result_of(const struct idem_entry *e,
			   struct core_idem_result *out)
{
	const struct idem_booking *b = &e->booking;

	if (e->outline) {
		*out = *e->full;
		out->lsn = e->lsn;
		return;
	}
	memset(out, 0, sizeof(*out));
	out->lsn = e->lsn;
	out->op = e->op;
	out->code = e->code;
	out->has_promoted = e->has_promoted;
	out->count = e->count;
	out->id = e->id;
	out->booking.id = b->id;
	out->booking.event_id = b->event_id;
	memcpy(out->booking.customer_id, b->customer_id, b->customer_len);
	out->booking.status = b->status;
	out->booking.position = b->position;
	out->booking.hold_expires_at = b->hold_expires_at;
	out->booking.created_at = b->created_at;
	out->booking.late = b->late;
}

/* Keeps res in e: inline when it is a booking answer without a promotion,
 * else a copy out of line. -ENOMEM when that copy cannot be made. */
static int idem_keep(struct idem_entry *e, const struct core_idem_result *res)
{
	const struct core_booking_view *v = &res->booking;
	size_t n = strnlen(v->customer_id, sizeof(v->customer_id));
	bool booking_op = res->op == CORE_OP_BOOK ||
			  res->op == CORE_OP_CANCEL || res->op == CORE_OP_PAY;

	e->lsn = res->lsn;
	e->op = res->op;
	e->code = res->code;
	e->has_promoted = res->has_promoted;
	e->count = res->count;
	e->id = res->id;
	e->outline = !booking_op || res->has_promoted ||
		     n > sizeof(e->booking.customer_id);
	if (e->outline) {
		e->full = malloc(sizeof(*e->full));
		if (!e->full)
			return -ENOMEM;
		*e->full = *res;
		return 0;
	}
	e->booking = (struct idem_booking){
		.id = v->id,
		.event_id = v->event_id,
		.hold_expires_at = v->hold_expires_at,
		.created_at = v->created_at,
		.position = v->position,
		.status = v->status,
		.late = v->late,
		.customer_len = (uint8_t)n,
	};
	memcpy(e->booking.customer_id, v->customer_id, n);
	return 0;
}

void state__idem_dump(const core_state *st, rec_sink fn, void *ctx)
{
	struct core_rec r;

	for (uint32_t k = 0; k < st->idem_count; k++) {
		const struct idem_entry *e = idem_at(st, idem_pos(st, k));

		memset(&r, 0, sizeof(r));
		r.type = CORE_REC_IDEM;
		r.at = e->created;
		r.u.idem.hi = e->hi;
		r.u.idem.lo = e->lo;
		r.u.idem.fingerprint = e->fingerprint;
		idem_result_of(e, &r.u.idem.result);
		r.u.idem.result.lsn = 0;
		fn(ctx, &r);
	}
}

enum core_code core__idem_lookup(core_state *st, const struct core_idem *k,
				 core_time now, struct core_resp *resp)
{
	const struct idem_entry *e = idem_find(st, k->hi, k->lo);
	struct core_idem_result first;

	if (!e || e->created + st->cfg.idem_retention_ms <= now)
		return CORE_OK;
	if (e->fingerprint != k->fingerprint)
		return CORE_IDEM_MISMATCH;
	idem_result_of(e, &first);
	resp->replayed = true;
	resp->lsn = first.lsn; /* the first answer waits for this too */
	resp->op = first.op;
	resp->code = first.code;
	resp->count = first.count;
	resp->id = first.id;
	resp->has_promoted = first.has_promoted;
	if (first.op == CORE_OP_EVENT_PATCH) {
		resp->event = first.event;
	} else if (first.op == CORE_OP_SERIES_PATCH) {
		resp->series.regenerated = first.series.regenerated;
		resp->series.kept = first.series.kept;
		resp->series.cancelled = first.series.cancelled;
	} else {
		resp->booking = first.booking;
		resp->promoted = first.promoted;
	}
	return CORE_OK;
}

void core__idem_result(const struct core_resp *resp,
		       struct core_idem_result *out)
{
	memset(out, 0, sizeof(*out));
	out->lsn = resp->lsn;
	out->op = (uint8_t)resp->op;
	out->code = (uint8_t)resp->code;
	out->count = resp->count;
	out->id = resp->id;
	out->has_promoted = resp->has_promoted;
	if (resp->op == CORE_OP_EVENT_PATCH) {
		out->event = resp->event;
	} else if (resp->op == CORE_OP_SERIES_PATCH) {
		out->series.regenerated = resp->series.regenerated;
		out->series.kept = resp->series.kept;
		out->series.cancelled = resp->series.cancelled;
	} else {
		out->booking = resp->booking;
		if (resp->has_promoted)
			out->promoted = resp->promoted;
	}
}

void state__idem_rec(const struct core_req *req, const struct core_resp *resp,
		     struct core_rec *r)
{
	ASSERT(core_idem_present(&req->idem));
	r->type = CORE_REC_IDEM;
	r->at = req->now;
	r->u.idem.hi = req->idem.hi;
	r->u.idem.lo = req->idem.lo;
	r->u.idem.fingerprint = req->idem.fingerprint;
	core__idem_result(resp, &r->u.idem.result);
}

void core__idem_emit(struct wbuf *w, const struct core_req *req,
		     const struct core_resp *resp)
{
	struct core_rec r;

	state__idem_rec(req, resp, &r);
	rec_encode(w, &r);
}

void core__idem_store(core_state *st, const struct core_idem *k,
		      core_time created, const struct core_idem_result *res)
{
	uint64_t key = idem_map_key(k->hi, k->lo);
	struct idem_entry *e = idem_find(st, k->hi, k->lo);
	uint32_t pos, c;

	/* The same key again, from its own entry and from the runtime's
	 * answer (which knows the log position): kept once. */
	if (e && e->fingerprint == k->fingerprint && e->created == created) {
		if (res->lsn)
			e->lsn = res->lsn;
		return;
	}
	if (!st->cfg.idem_count_max)
		return; /* no keys kept */
	state__idem_expire(st, created);
	/* Full of live keys: the oldest goes early. Sized by config so that
	 * this does not happen within the retention. */
	if (st->idem_count == st->cfg.idem_count_max)
		idem_drop_oldest(st);
	pos = idem_pos(st, st->idem_count);
	c = pos >> IDEM_CHUNK_SHIFT;
	if (!st->idem_chunks[c]) {
		st->idem_chunks[c] = st->idem_spare;
		st->idem_spare = NULL;
		if (!st->idem_chunks[c])
			st->idem_chunks[c] = idem_chunk_new();
		if (!st->idem_chunks[c])
			return; /* out of memory: the key is not remembered */
	}
	e = idem_at(st, pos);
	e->hi = k->hi;
	e->lo = k->lo;
	e->fingerprint = k->fingerprint;
	e->created = created;
	if (idem_keep(e, res) != 0)
		return;
	if (map_put(&st->idem_by_key, key, pos + 1) != 0) {
		/* Out of memory for the map: the key is not remembered, the
		 * state stays consistent. */
		if (e->outline)
			free(e->full);
		return;
	}
	st->idem_count++;
}
