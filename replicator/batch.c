/*
 * batch.c: the memory of the fold (fold.h), no meaning of records here
 * (fold.c): growable COPY text buffers (escaped, bytes that are not UTF-8
 * replaced), the batch's bookings and events (arrays with open-addressing
 * indexes, id -> index + 1), which stream an event belongs to and whether
 * a stream has a record already, UTC months, the event-start cache and the
 * set of customers PostgreSQL has.
 *
 * Bounds: a batch holds at most `cap` bookings and `cap` events (each
 * record makes at most one of each; cap = batch_records + one entry's
 * records); the index tables have at least twice cap slots, so a probe
 * always ends at a free slot; COPY text stops at REPL_COPY_SIZE_MAX (the
 * buffer's max: it is marked broken and the batch refused). The customer set
 * stops growing when half full (a customer missing from it is inserted
 * again: ON CONFLICT DO NOTHING).
 */
#include "fold.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- COPY text (struct buf, core/buf.h) --------------------------------- */

void repl__buf_c(struct buf *b, char c) { buf_put(b, &c, 1); }

void repl__buf_i64(struct buf *b, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	buf_put(b, tmp, (size_t)n);
}

void repl__buf_u64(struct buf *b, uint64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	ASSERT(n > 0);
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A string as a COPY text field: escaped; bytes that are not UTF-8 become
 * U+FFFD, so a name PostgreSQL would refuse never stops replication. */
void repl__buf_str(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		size_t len = utf8_len(p, n);

		ASSERT(len <= n);
		if (len == 0) {
			buf_put(b, "\xef\xbf\xbd", 3);
			p++, n--;
			continue;
		}
		if (len == 1) {
			switch (*p) {
			case '\\': buf_put(b, "\\\\", 2); break;
			case '\t': buf_put(b, "\\t", 2); break;
			case '\n': buf_put(b, "\\n", 2); break;
			case '\r': buf_put(b, "\\r", 2); break;
			default: repl__buf_c(b, (char)*p);
			}
		} else {
			buf_put(b, p, len);
		}
		p += len, n -= len;
	}
}

void repl__buf_null(struct buf *b) { buf_put(b, "\\N", 2); }

void repl__buf_date(struct buf *b, struct core_date d)
{
	char tmp[16];
	int n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", d.year, d.month,
			 d.day);

	ASSERT(n > 0 && (size_t)n < sizeof(tmp)); /* int16, int8, int8 */
	buf_put(b, tmp, (size_t)n);
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

int repl__batch_init(struct batch *b, uint32_t batch_records,
		     const struct fold_env *env)
{
	/* A batch stops taking entries at batch_records records; one more
	 * entry may bring REPL_ENTRY_RECORDS_MAX more. Each record makes at
	 * most one booking and touches at most one event. */
	uint32_t cap = batch_records + REPL_ENTRY_RECORDS_MAX;
	uint32_t slots;

	ASSERT(batch_records >= 1 && batch_records <= REPL_BATCH_RECORDS_MAX);
	ASSERT(env->log_id && env->starts && env->customers && env->months);
	slots = pow2_at_least(cap * 2);
	ASSERT(slots >= cap * 2 && (slots & (slots - 1)) == 0);
	memset(b, 0, sizeof(*b));
	b->env = *env;
	b->cap = cap;
	b->bk = calloc(cap, sizeof(*b->bk));
	b->ev = calloc(cap, sizeof(*b->ev));
	b->bk_idx.slots = calloc(slots, sizeof(uint32_t));
	b->ev_idx.slots = calloc(slots, sizeof(uint32_t));
	b->bk_idx.mask = b->ev_idx.mask = slots - 1;
	if (!b->bk || !b->ev || !b->bk_idx.slots || !b->ev_idx.slots)
		return -ENOMEM;
	for (int k = 0; k < REPL_STREAM_MAX; k++)
		for (int s = 0; s < ST_COUNT; s++) {
			b->part[k].st[s].max = REPL_COPY_SIZE_MAX;
			if (buf_reserve(&b->part[k].st[s], 1u << 12) != 0)
				return -ENOMEM;
		}
	b->parts = 1;
	return 0;
}

void repl__batch_free(struct batch *b)
{
	free(b->bk);
	free(b->ev);
	free(b->bk_idx.slots);
	free(b->ev_idx.slots);
	for (int k = 0; k < REPL_STREAM_MAX; k++)
		for (int s = 0; s < ST_COUNT; s++)
			buf_free(&b->part[k].st[s]);
	memset(b, 0, sizeof(*b));
}

static uint64_t bk_key(const void *base, uint32_t i)
{
	return ((const struct bk *)base)[i].id;
}

static uint64_t ev_key(const void *base, uint32_t i)
{
	return ((const struct ev *)base)[i].id;
}

/* The slot where a probe for id starts. */
static uint32_t idx_home(const struct idx *x, uint64_t id)
{
	return (uint32_t)(id * 0x9E3779B97F4A7C15ull >> 32) & x->mask;
}

/* Empties the slots of the count entries in use (each run from an entry's
 * home slot to a free one): batches are often small. */
static void idx_clear(struct idx *x, uint32_t count,
		      uint64_t (*key)(const void *base, uint32_t i),
		      const void *base)
{
	for (uint32_t i = 0; i < count; i++) {
		uint32_t h = idx_home(x, key(base, i));

		while (x->slots[h]) {
			x->slots[h] = 0;
			h = (h + 1) & x->mask;
		}
	}
}

void repl__batch_reset(struct batch *b, int64_t now_ms)
{
	ASSERT(b->bk_count <= b->cap && b->ev_count <= b->cap);
	idx_clear(&b->bk_idx, b->bk_count, bk_key, b->bk);
	idx_clear(&b->ev_idx, b->ev_count, ev_key, b->ev);
	b->bk_count = b->ev_count = 0;
	for (int k = 0; k < REPL_STREAM_MAX; k++) {
		struct part *p = &b->part[k];

		for (int s = 0; s < ST_COUNT; s++) {
			buf_clear(&p->st[s]);
			p->rows[s] = 0;
		}
		memset(p->kinds, 0, sizeof(p->kinds));
		p->cancels = p->created = p->committed = p->edits = false;
		p->misses = p->updates = p->customers = 0;
		p->rc = 0;
		p->err[0] = '\0';
	}
	b->seq = b->join_seq = b->restore_count = 0;
	b->records = b->entries = 0;
	b->bytes = b->first_lsn = b->last_lsn = 0;
	b->full = b->snapshot = b->months = false;
	b->now_ms = now_ms;
	b->err[0] = '\0';
}

/* The entry of id in the table, created (zeroed, id set) when asked. */
static uint32_t idx_find(struct idx *x, uint64_t id, bool *found,
			 uint64_t (*key)(const void *base, uint32_t i),
			 const void *base)
{
	uint32_t h = idx_home(x, id);

	for (uint32_t probes = 0; probes <= x->mask; probes++) {
		uint32_t v = x->slots[h];
		if (v == 0) {
			*found = false;
			return h;
		}
		if (key(base, v - 1) == id) {
			*found = true;
			return h;
		}
		h = (h + 1) & x->mask;
	}
	ASSERT(!"index full: batch capacity bound broken");
}

/* The stream of an event. All rows about an event (the event, its
 * bookings, their waitlist rows, payments and notifications) go through
 * one stream, in log order; the catalogue goes through stream 0. A
 * snapshot's batches (resync) go through stream 0 alone. */
static uint32_t event_stream(const struct batch *b, uint64_t event_id)
{
	ASSERT(b->parts >= 1 && b->parts <= REPL_STREAM_MAX);
	if (b->parts == 1 || b->snapshot)
		return 0;
	return (uint32_t)((event_id * 0xD6E8FEB86659FD93ull) >> 40) % b->parts;
}

/* The part a record about event_id goes to (0: the catalogue, stream 0),
 * or NULL when its stream has the record already (lsn <= from: the batch
 * before a crash committed on some streams only; those skip what they
 * have). */
struct part *repl__part_for(struct batch *b, uint64_t event_id, uint64_t lsn)
{
	struct part *p = &b->part[event_id ? event_stream(b, event_id) : 0];

	ASSERT(lsn > 0); /* the log's first LSN is 1 */
	return lsn > p->from ? p : NULL;
}

struct bk *repl__bk_get(struct batch *b, uint64_t id, bool *existed)
{
	uint32_t h = idx_find(&b->bk_idx, id, existed, bk_key, b->bk);
	struct bk *k;

	if (*existed)
		return &b->bk[b->bk_idx.slots[h] - 1];
	ASSERT(b->bk_count < b->cap);
	k = &b->bk[b->bk_count++];
	memset(k, 0, sizeof(*k));
	k->id = id;
	k->stream = (uint8_t)event_stream(b, core_booking_event(id));
	ASSERT(k->stream < b->parts);
	b->bk_idx.slots[h] = b->bk_count;
	return k;
}

const struct bk *repl__bk_find(struct batch *b, uint64_t id)
{
	bool found;
	uint32_t h = idx_find(&b->bk_idx, id, &found, bk_key, b->bk);

	return found ? &b->bk[b->bk_idx.slots[h] - 1] : NULL;
}

struct ev *repl__ev_get(struct batch *b, uint64_t id)
{
	bool found;
	uint32_t h = idx_find(&b->ev_idx, id, &found, ev_key, b->ev);
	struct ev *e;

	if (found)
		return &b->ev[b->ev_idx.slots[h] - 1];
	ASSERT(b->ev_count < b->cap);
	e = &b->ev[b->ev_count++];
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->stream = (uint8_t)event_stream(b, id);
	b->ev_idx.slots[h] = b->ev_count;
	return e;
}

bool repl__ev_has(struct batch *b, uint64_t id)
{
	bool found;

	idx_find(&b->ev_idx, id, &found, ev_key, b->ev);
	return found;
}

/* Months since 1970-01 (UTC) of a time in ms. */
int64_t repl__month_of(int64_t ms)
{
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	/* civil from days (H. Hinnant) */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	ASSERT(m >= 1 && m <= 12);
	ASSERT(ms < 0 || y >= REPL_MONTH_BASE);
	return (y - REPL_MONTH_BASE) * 12 + (m - 1);
}

bool repl__month_known(const uint8_t *months, int64_t m)
{
	return m >= 0 && m < REPL_MONTH_COUNT && (months[m / 8] >> (m % 8) & 1);
}

uint64_t repl__customer_hash(const char *id)
{
	uint64_t h = XXH3_64bits(id, strlen(id));
	return h ? h : 1;
}

bool repl__custset_has(const struct custset *cs, const char *id)
{
	uint64_t h = repl__customer_hash(id);

	if (!cs->slots)
		return false;
	for (uint32_t i = (uint32_t)h & cs->mask, probes = 0;;
	     i = (i + 1) & cs->mask, probes++) {
		ASSERT(probes <=
		       cs->mask / 2 + 1); /* half free: a free slot ends it */
		if (cs->slots[i] == h)
			return true;
		if (cs->slots[i] == 0)
			return false;
	}
}

/* After a commit: these customers exist (a full set stops growing). */
void repl__custset_add(struct custset *cs, const char *id)
{
	uint64_t h = repl__customer_hash(id);

	if (!cs->slots || cs->count >= cs->mask / 2)
		return;
	for (uint32_t i = (uint32_t)h & cs->mask, probes = 0;;
	     i = (i + 1) & cs->mask, probes++) {
		ASSERT(probes <= cs->mask / 2 + 1);
		if (cs->slots[i] == h)
			return;
		if (cs->slots[i] == 0) {
			cs->slots[i] = h;
			cs->count++;
			ASSERT(cs->count <= cs->mask / 2);
			return;
		}
	}
}

/* Rows a part wrote (series marks and org settings not counted; customers implied by
 * bookings as inserted, when new). */
uint64_t repl__part_rows(const struct part *p)
{
	uint64_t n = p->customers;
	for (int s = 0; s < ST_COUNT; s++)
		if (s != ST_GEN && s != ST_ORGSET && s != ST_NEWCUST)
			n += p->rows[s];
	return n;
}

/* ---- the event start cache (partition key of updates) ------------------ */

void repl__starts_set(struct starts *s, uint64_t id, int64_t ms)
{
	pthread_mutex_lock(&s->lock);
	if (id >= s->cap) {
		uint64_t cap = s->cap ? s->cap : 1u << 16;
		int64_t *p;

		if (id >= REPL_START_CACHE_MAX)
			goto out; /* beyond: looked up in PostgreSQL */
		while (cap <= id)
			cap *= 2;
		ASSERT(cap <= REPL_START_CACHE_MAX);
		p = realloc(s->ms, cap * sizeof(*p));
		if (!p)
			goto out;
		memset(p + s->cap, 0, (cap - s->cap) * sizeof(*p));
		s->ms = p;
		s->cap = cap;
	}
	ASSERT(id < s->cap);
	s->ms[id] = ms;
out:
	pthread_mutex_unlock(&s->lock);
}

/* The start of event id, 0 when unknown. */
int64_t repl__starts_get(struct starts *s, uint64_t id)
{
	int64_t ms = 0;

	pthread_mutex_lock(&s->lock);
	if (id < s->cap)
		ms = s->ms[id];
	pthread_mutex_unlock(&s->lock);
	return ms;
}
