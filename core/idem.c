/*
 * idem.c: a shard's idempotency keys (state.c has the design). A key lives
 * at its home shard (core__key_home) with its request's fingerprint and
 * its first answer, in a ring in arrival order over slots 1..idem_cap (so
 * the oldest go first once older than the retention) and a map from the
 * key. The ring doubles up to idem_count_max; full of live keys, the
 * oldest goes early.
 */
#include "state.h"
#include "state_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t idem_map_key(uint64_t hi, uint64_t lo)
{
	uint64_t k = hi ^ (lo * UINT64_C(0x9E3779B97F4A7C15));
	return k ? k : 1;
}
/* ---- idempotency ---- */

static struct idem_entry *idem_find(const core_state *st, uint64_t hi,
				    uint64_t lo)
{
	uint32_t slot = map_get(&st->idem_by_key, idem_map_key(hi, lo));
	struct idem_entry *e = slot ? &st->idem[slot] : NULL;

	return e && e->hi == hi && e->lo == lo ? e : NULL;
}

/* Drops entries older than the retention, oldest first; returns how many.
 * Lookups already ignore them (core__idem_lookup): dropping them is only
 * memory, so the tick may do it without a log record. */
uint32_t state__idem_expire(core_state *st, core_time now)
{
	uint32_t max = st->idem_cap, dropped = 0;

	while (st->idem_count) {
		uint32_t slot = st->idem_head + 1;
		struct idem_entry *e = &st->idem[slot];
		if (e->created + st->cfg.idem_retention_ms > now)
			break;
		if (map_get(&st->idem_by_key, idem_map_key(e->hi, e->lo)) ==
		    slot)
			map_del(&st->idem_by_key, idem_map_key(e->hi, e->lo));
		st->idem_head = (st->idem_head + 1) % max;
		st->idem_count--;
		dropped++;
	}
	return dropped;
}

uint32_t core__state_idem_expire(core_state *st, core_time now)
{
	return state__idem_expire(st, now);
}

enum core_code core__idem_lookup(core_state *st, const struct core_idem *k,
				 core_time now, struct core_resp *resp)
{
	const struct idem_entry *e = idem_find(st, k->hi, k->lo);

	if (!e || e->created + st->cfg.idem_retention_ms <= now)
		return CORE_OK;
	if (e->fingerprint != k->fingerprint)
		return CORE_IDEM_MISMATCH;
	resp->replayed = true;
	resp->lsn = e->result.lsn; /* the first answer waits for this too */
	resp->op = e->result.op;
	resp->code = e->result.code;
	resp->count = e->result.count;
	resp->id = e->result.id;
	resp->has_promoted = e->result.has_promoted;
	if (e->result.op == CORE_OP_EVENT_PATCH) {
		resp->event = e->result.event;
	} else if (e->result.op == CORE_OP_SERIES_PATCH) {
		resp->series.regenerated = e->result.series.regenerated;
		resp->series.kept = e->result.series.kept;
		resp->series.cancelled = e->result.series.cancelled;
	} else {
		resp->booking = e->result.booking;
		resp->promoted = e->result.promoted;
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

/* A full ring below its ceiling doubles: its entries move, oldest first,
 * to slots 1..count of a new array (head 0), the map follows them. */
static int idem_grow(core_state *st)
{
	uint32_t cap = st->idem_cap * 2, old_cap = st->idem_cap;
	struct idem_entry *old = st->idem, *to;

	if (cap > st->cfg.idem_count_max)
		cap = st->cfg.idem_count_max;
	if (cap <= old_cap)
		return -ENOSPC;
	to = table_calloc((size_t)cap + 1, sizeof(*to));
	if (!to)
		return -ENOMEM;
	for (uint32_t k = 0; k < st->idem_count; k++) {
		uint32_t slot = (st->idem_head + k) % old_cap + 1;
		uint64_t key = idem_map_key(old[slot].hi, old[slot].lo);
		to[k + 1] = old[slot];
		/* an existing key: re-pointed, the map does not grow */
		if (map_get(&st->idem_by_key, key) == slot)
			ASSERT(map_put(&st->idem_by_key, key, k + 1) == 0);
	}
	table_free(old, (size_t)old_cap + 1, sizeof(*old));
	st->idem = to;
	st->idem_cap = cap;
	st->idem_head = 0;
	return 0;
}

void core__idem_store(core_state *st, const struct core_idem *k,
		      core_time created, const struct core_idem_result *res)
{
	uint32_t max;
	uint64_t key = idem_map_key(k->hi, k->lo);
	struct idem_entry *e = idem_find(st, k->hi, k->lo);
	uint32_t slot;

	/* The same key again, from its own entry and from the runtime's
	 * answer (which knows the log position): kept once. */
	if (e && e->fingerprint == k->fingerprint && e->created == created) {
		if (res->lsn)
			e->result.lsn = res->lsn;
		return;
	}
	state__idem_expire(st, created);
	if (st->idem_count == st->idem_cap)
		(void)idem_grow(st); /* at the ceiling or out of memory: */
	max = st->idem_cap;
	if (st->idem_count == max) {
		/* Full of live keys: the oldest goes early. Sized by config so
		 * that this does not happen within the retention. */
		struct idem_entry *old = &st->idem[st->idem_head + 1];
		if (map_get(&st->idem_by_key, idem_map_key(old->hi, old->lo)) ==
		    st->idem_head + 1)
			map_del(&st->idem_by_key,
				idem_map_key(old->hi, old->lo));
		st->idem_head = (st->idem_head + 1) % max;
		st->idem_count--;
	}
	slot = (st->idem_head + st->idem_count) % max + 1;
	e = &st->idem[slot];
	e->hi = k->hi;
	e->lo = k->lo;
	e->fingerprint = k->fingerprint;
	e->created = created;
	e->result = *res;
	st->idem_count++;
	if (map_put(&st->idem_by_key, key, slot) != 0) {
		/* Out of memory for the map: the key is not remembered (the
		 * newest entry goes again), the state stays consistent. */
		st->idem_count--;
		memset(e, 0, sizeof(*e));
	}
}
