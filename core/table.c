/*
 * table.c: the map (and the set: the same without values) every index of
 * the core is made of, and the growth of the core's tables.
 *
 * Open addressing with linear probing over one array of (key, value) pairs,
 * 16 bytes each so a probe costs one cache miss; capacity a power of two,
 * at least twice the entries, so probes stay short. A map starts small and
 * doubles when it would pass half full, its entries moved to the new array
 * a few at a time by the changes that follow (below): an empty bookd costs
 * little, a busy one never stops for a rehash. Callers that must not fail halfway
 * reserve first (map_reserve): a put within the reservation never fails.
 * Deletion shifts later entries of the cluster back (no tombstones), so a
 * map that sees many inserts and deletes never degrades. A set (struct
 * set) is the same over keys alone, 8 bytes a slot, for an index whose
 * value nothing reads (the active (event, customer) pairs). The room
 * checks and map_get are inline in table.h: every decision makes several.
 */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#define HUGE_PAGE_SIZE ((size_t)2 << 20)

/* The big tables are read and written at random. With 4 KiB pages every
 * first write to a page faults (and after a snapshot's fork, copies), each
 * with a TLB shootdown, and TLB misses add to every cache miss. So a table
 * of 4 MiB or more is a mapping of its own at a huge-page boundary with
 * transparent huge pages asked for (madvise: the Debian default): throughput
 * rose from ~207k to ~250k durable decisions/s with p99 from 10 to 5 ms
 * (docs/benchmarks.md). Tables start small and double, so an empty bookd
 * takes a few MB, not the ~1.2 GB its old fixed sizes did.
 *  - An array of slots (table_grow) is filled in order, so it grows in
 *    place: mremap moves its pages to a bigger mapping, copying nothing,
 *    and the new half is faulted in a huge page at a time as slots are
 *    taken.
 *  - A map or set doubles into a new array (table_calloc) and moves its
 *    entries a few at a time with each later change, looking in both
 *    arrays meanwhile; the new array's huge pages are faulted in as the
 *    moves and puts reach them.
 * A doubling used to zero and fill a new table in one stall on the
 * shard's thread: 31 ms for a bookings array, 35 ms for a map, seen in
 * bookd under load, 0.1-0.8 s for the biggest in bench_core state (4M
 * bookings); now a step zeroes at most a huge page and moves a few
 * clusters (docs/benchmarks.md "Table growth"). A new key's home is
 * random, though, so the first few hundred puts after a doubling would
 * zero most of the new array's huge pages (2-5 ms a page on these virtual
 * machines: the longest batches of bench_core, docs/benchmarks.md "New
 * memory"). So a big map or set makes its next array once past half full
 * and populates it a huge page at a time (MADV_POPULATE_WRITE), paced by
 * its puts to be whole by 17/32 full, while it takes puts on (linear
 * probing stays short); it switches then, or at 5/8 full whatever is left
 * (table_next_step). A map that must double again before its last
 * doubling's moves are done (a reservation of many keys at once) finishes
 * them first. */
#define TABLE_BIG_BYTES (2 * HUGE_PAGE_SIZE)

static size_t table_span(size_t bytes)
{
	return (bytes + HUGE_PAGE_SIZE - 1) & ~(HUGE_PAGE_SIZE - 1);
}

/* span bytes of address space at a huge-page boundary (prot PROT_NONE:
 * only reserved), or NULL. */
static void *table_map(size_t span, int prot)
{
	size_t len = span + HUGE_PAGE_SIZE;
	char *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a, *end;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + HUGE_PAGE_SIZE - 1) &
		     ~(HUGE_PAGE_SIZE - 1));
	end = p + len;
	if (a > p)
		(void)munmap(p, (size_t)(a - p));
	if (end > a + span)
		(void)munmap(a + span, (size_t)(end - (a + span)));
	if (prot != PROT_NONE)
		(void)madvise(a, span, MADV_HUGEPAGE);
	return a;
}

void *table_calloc(size_t count, size_t size)
{
	if (count * size < TABLE_BIG_BYTES)
		return calloc(count, size);
	return table_map(table_span(count * size), PROT_READ | PROT_WRITE);
}

void table_free(void *p, size_t count, size_t size)
{
	if (count * size < TABLE_BIG_BYTES)
		free(p);
	else if (p)
		(void)munmap(p, table_span(count * size));
}

/* The big array p of old_bytes, grown to bytes (new part zero): in place
 * when the address space after it is free, else moved to a huge-page
 * boundary (a move elsewhere would split its huge pages). NULL and p
 * untouched when it cannot. */
static void *table_remap(void *p, size_t old_bytes, size_t bytes)
{
	size_t old_span = table_span(old_bytes), span = table_span(bytes);
	void *q = mremap(p, old_span, span, 0);

	if (q == MAP_FAILED) {
		void *to = table_map(span, PROT_NONE);

		if (!to)
			return NULL;
		q = mremap(p, old_span, span, MREMAP_MAYMOVE | MREMAP_FIXED,
			   to);
		if (q == MAP_FAILED) {
			(void)munmap(to, span);
			return NULL;
		}
	}
	(void)madvise(q, span, MADV_HUGEPAGE);
	return q;
}

int table__grow(void **p, uint32_t *capacity, uint64_t need, size_t size)
{
	uint64_t cap = *capacity ? *capacity : TABLE_COUNT_INIT;
	size_t old_bytes, bytes;
	void *q;

	if (need <= *capacity)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > TABLE_COUNT_LIMIT)
		return -ENOMEM;
	/* Slot 0 and the old slots 1..capacity carry over. */
	old_bytes = *p ? ((size_t)*capacity + 1) * size : 0;
	bytes = ((size_t)cap + 1) * size;
	if (old_bytes >= TABLE_BIG_BYTES) {
		q = table_remap(*p, old_bytes, bytes);
	} else {
		q = bytes >= TABLE_BIG_BYTES ? table_map(table_span(bytes),
							 PROT_READ | PROT_WRITE)
					     : calloc((size_t)cap + 1, size);
		if (q && *p)
			memcpy(q, *p, old_bytes);
		if (q)
			free(*p);
	}
	if (!q)
		return -ENOMEM;
	*p = q;
	*capacity = (uint32_t)cap;
	return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static void table_next_drop(struct table_next *n, size_t size)
{
	if (n->p)
		table_free(n->p, n->cap, size);
	memset(n, 0, sizeof(*n));
}

/* The array a table of count keys in old_cap slots, growing to cap slots
 * of size bytes for `more` keys, switches to now: NULL (and *err 0) while
 * it can take them where it is, its next array being made ready
 * (above); NULL and *err -ENOMEM when memory is short. */
static void *table_next_step(struct table_next *n, uint64_t count,
			     uint64_t more, uint64_t old_cap, uint64_t cap,
			     size_t size, int *err)
{
	uint64_t steps, target;
	void *to;

	*err = 0;
	if (cap * size < TABLE_BIG_BYTES) {
		to = table_calloc(cap, size);
		*err = to ? 0 : -ENOMEM;
		return to;
	}
	if (n->p && n->cap != cap) /* a bigger reservation came */
		table_next_drop(n, size);
	if (!n->p) {
		n->p = table_calloc(cap, size);
		if (!n->p) {
			*err = -ENOMEM;
			return NULL;
		}
		n->cap = cap;
		n->from = (uint32_t)count;
	}
	steps = table_span(cap * size) / HUGE_PAGE_SIZE;
	if ((count + more) * 8 > old_cap * 5)
		target = steps;
	else
		target = 1 + (count > n->from ? count - n->from : 0) * 32 *
				     steps / old_cap;
	if (target > steps)
		target = steps;
	while (n->steps_done < target) {
		/* A failure (an older kernel) leaves the pages to fault in. */
		(void)madvise((char *)n->p +
				      (size_t)n->steps_done * HUGE_PAGE_SIZE,
			      HUGE_PAGE_SIZE, MADV_POPULATE_WRITE);
		n->steps_done++;
	}
	if (n->steps_done < steps)
		return NULL;
	to = n->p;
	memset(n, 0, sizeof(*n));
	return to;
}

static uint64_t map_cap_for(uint64_t count)
{
	uint64_t cap = 16;

	while (cap < count * 2)
		cap <<= 1;
	return cap;
}

/* ---- maps ---- */

/* A doubling moves the entries a few slots at a time with each change
 * (MAP_MOVE_SLOTS of the old array a put or delete, 16x what keeps ahead of
 * the next doubling), not in one stall; their new homes are random, so the
 * home of the slot REHASH_AHEAD further on is prefetched. */
#define MAP_MOVE_SLOTS 32
#define REHASH_AHEAD 16

/* Slot i of a cluster emptied: later members of the cluster move into the
 * hole when their home is not between the hole and them (backward shift,
 * no tombstones). */
static void map__unlink(struct map_slot *sl, uint32_t mask, uint32_t i)
{
	for (uint32_t j = (i + 1) & mask; sl[j].key != 0; j = (j + 1) & mask) {
		uint32_t home = table__home(sl[j].key, mask);
		bool movable = (i <= j) ? (home <= i || home > j)
					: (home <= i && home > j);
		if (movable) {
			sl[i] = sl[j];
			i = j;
		}
	}
	sl[i].key = 0;
	sl[i].val = 0;
}

/* The slot of key in sl (mask), or NULL. */
static struct map_slot *map__find(struct map_slot *sl, uint32_t mask,
				  uint64_t key)
{
	for (uint32_t i = table__home(key, mask);; i = (i + 1) & mask) {
		if (sl[i].key == key)
			return &sl[i];
		if (sl[i].key == 0)
			return NULL;
	}
}

uint32_t map__get_old(const struct map *m, uint64_t key)
{
	const struct map_slot *s = map__find(m->old, m->old_mask, key);
	return s ? (uint32_t)s->val : 0;
}

static void map_insert_fresh(struct map *m, uint64_t key, uint64_t val)
{
	uint32_t i = map__slot(m, key);

	while (m->slots[i].key != 0)
		i = (i + 1) & m->mask;
	m->slots[i].key = key;
	m->slots[i].val = val;
}

/* Moves the old array's entries to the new one, in slot order from
 * old_next, `budget` slots or more: it stops only at an empty slot, so a
 * cluster moves whole and every key left in the old array is still found
 * from its home there. Passing the last slot frees the old array. */
static void map__move(struct map *m, uint64_t budget)
{
	while (m->old_left > 0 &&
	       (budget > 0 || m->old[m->old_next].key != 0)) {
		struct map_slot *o = &m->old[m->old_next];
		uint64_t ahead =
			m->old[(m->old_next + REHASH_AHEAD) & m->old_mask].key;

		if (ahead)
			__builtin_prefetch(&m->slots[map__slot(m, ahead)], 1);
		if (o->key) {
			map_insert_fresh(m, o->key, o->val);
			o->key = 0;
			o->val = 0;
		}
		m->old_next = (m->old_next + 1) & m->old_mask;
		m->old_left--;
		budget -= budget > 0;
	}
	if (m->old && m->old_left == 0) {
		table_free(m->old, (size_t)m->old_mask + 1, sizeof(*m->old));
		m->old = NULL;
	}
}

int map_init(struct map *m, uint32_t count_hint)
{
	uint64_t cap = map_cap_for(count_hint);

	if (cap > (UINT64_C(1) << 32))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->slots = table_calloc(cap, sizeof(*m->slots));
	if (!m->slots)
		return -ENOMEM;
	m->mask = (uint32_t)(cap - 1);
	return 0;
}

/* A doubling: a new array, the old one kept until map__move has passed
 * all of it, from an empty slot on (there is one: load <= 5/8). A doubling
 * while one is under way finishes that one first. */
int map__reserve(struct map *m, uint64_t more)
{
	uint64_t old_cap = (uint64_t)m->mask + 1;
	uint64_t cap = map_cap_for(m->count + more);
	struct map_slot *to;
	uint32_t start = 0;
	int err;

	if (cap <= old_cap)
		return 0;
	if (cap > (UINT64_C(1) << 32))
		return -ENOMEM;
	to = table_next_step(&m->next, m->count, more, old_cap, cap,
			     sizeof(*to), &err);
	if (!to)
		return err;
	map__move(m, UINT64_MAX);
	while (m->slots[start].key != 0)
		start++;
	m->old = m->slots;
	m->old_mask = m->mask;
	m->old_next = start;
	m->old_left = (uint32_t)old_cap;
	m->slots = to;
	m->mask = (uint32_t)(cap - 1);
	map__move(m, MAP_MOVE_SLOTS);
	return 0;
}

void map_free(struct map *m)
{
	table_next_drop(&m->next, sizeof(*m->slots));
	if (m->old)
		table_free(m->old, (size_t)m->old_mask + 1, sizeof(*m->old));
	if (m->slots)
		table_free(m->slots, (size_t)m->mask + 1, sizeof(*m->slots));
	memset(m, 0, sizeof(*m));
}

int map_put(struct map *m, uint64_t key, uint32_t val)
{
	struct map_slot *s;

	ASSERT(key != 0);
	ASSERT(val != 0);
	s = map__find(m->slots, m->mask, key);
	if (!s && m->old)
		s = map__find(m->old, m->old_mask, key);
	if (s) {
		s->val = val;
		return 0;
	}
	/* A new key: grow first if it would pass half full. */
	if (map_reserve(m, 1) != 0)
		return -ENOMEM;
	map_insert_fresh(m, key, val);
	m->count++;
	if (m->old)
		map__move(m, MAP_MOVE_SLOTS);
	return 0;
}

bool map_del(struct map *m, uint64_t key)
{
	struct map_slot *s = map__find(m->slots, m->mask, key);

	if (s) {
		map__unlink(m->slots, m->mask, (uint32_t)(s - m->slots));
	} else if (m->old && (s = map__find(m->old, m->old_mask, key))) {
		map__unlink(m->old, m->old_mask, (uint32_t)(s - m->old));
	} else {
		return false;
	}
	m->count--;
	if (m->old)
		map__move(m, MAP_MOVE_SLOTS);
	return true;
}

void map_prefetch(const struct map *m, uint64_t key)
{
	__builtin_prefetch(&m->slots[map__slot(m, key)]);
}

size_t map_bytes(const struct map *m)
{
	return ((size_t)m->mask + 1) * sizeof(*m->slots) +
	       (m->old ? ((size_t)m->old_mask + 1) * sizeof(*m->old) : 0) +
	       (size_t)m->next.steps_done * HUGE_PAGE_SIZE;
}

/* ---- sets: the same, keys only ---- */

static void set__unlink(uint64_t *k, uint32_t mask, uint32_t i)
{
	for (uint32_t j = (i + 1) & mask; k[j] != 0; j = (j + 1) & mask) {
		uint32_t home = table__home(k[j], mask);
		bool movable = (i <= j) ? (home <= i || home > j)
					: (home <= i && home > j);
		if (movable) {
			k[i] = k[j];
			i = j;
		}
	}
	k[i] = 0;
}

static uint64_t *set__find(uint64_t *k, uint32_t mask, uint64_t key)
{
	for (uint32_t i = table__home(key, mask);; i = (i + 1) & mask) {
		if (k[i] == key)
			return &k[i];
		if (k[i] == 0)
			return NULL;
	}
}

bool set__has_old(const struct set *s, uint64_t key)
{
	return set__find(s->old, s->old_mask, key) != NULL;
}

static void set_insert_fresh(struct set *s, uint64_t key)
{
	uint32_t i = table__home(key, s->mask);

	while (s->keys[i] != 0)
		i = (i + 1) & s->mask;
	s->keys[i] = key;
}

/* As map__move. */
static void set__move(struct set *s, uint64_t budget)
{
	while (s->old_left > 0 && (budget > 0 || s->old[s->old_next] != 0)) {
		uint64_t *o = &s->old[s->old_next];
		uint64_t ahead =
			s->old[(s->old_next + REHASH_AHEAD) & s->old_mask];

		if (ahead)
			__builtin_prefetch(&s->keys[table__home(ahead, s->mask)],
					   1);
		if (*o) {
			set_insert_fresh(s, *o);
			*o = 0;
		}
		s->old_next = (s->old_next + 1) & s->old_mask;
		s->old_left--;
		budget -= budget > 0;
	}
	if (s->old && s->old_left == 0) {
		table_free(s->old, (size_t)s->old_mask + 1, sizeof(*s->old));
		s->old = NULL;
	}
}

int set_init(struct set *s, uint32_t count_hint)
{
	uint64_t cap = map_cap_for(count_hint);

	if (cap > (UINT64_C(1) << 32))
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->keys = table_calloc(cap, sizeof(*s->keys));
	if (!s->keys)
		return -ENOMEM;
	s->mask = (uint32_t)(cap - 1);
	return 0;
}

void set_free(struct set *s)
{
	table_next_drop(&s->next, sizeof(*s->keys));
	if (s->old)
		table_free(s->old, (size_t)s->old_mask + 1, sizeof(*s->old));
	if (s->keys)
		table_free(s->keys, (size_t)s->mask + 1, sizeof(*s->keys));
	memset(s, 0, sizeof(*s));
}

/* As map__reserve. */
int set__reserve(struct set *s, uint64_t more)
{
	uint64_t old_cap = (uint64_t)s->mask + 1;
	uint64_t cap = map_cap_for(s->count + more);
	uint64_t *to;
	uint32_t start = 0;
	int err;

	if (cap <= old_cap)
		return 0;
	if (cap > (UINT64_C(1) << 32))
		return -ENOMEM;
	to = table_next_step(&s->next, s->count, more, old_cap, cap,
			     sizeof(*to), &err);
	if (!to)
		return err;
	set__move(s, UINT64_MAX);
	while (s->keys[start] != 0)
		start++;
	s->old = s->keys;
	s->old_mask = s->mask;
	s->old_next = start;
	s->old_left = (uint32_t)old_cap;
	s->keys = to;
	s->mask = (uint32_t)(cap - 1);
	set__move(s, MAP_MOVE_SLOTS);
	return 0;
}

int set_put(struct set *s, uint64_t key)
{
	ASSERT(key != 0);
	if (set_has(s, key))
		return 0;
	if (set_reserve(s, 1) != 0)
		return -ENOMEM;
	set_insert_fresh(s, key);
	s->count++;
	if (s->old)
		set__move(s, MAP_MOVE_SLOTS);
	return 0;
}

bool set_del(struct set *s, uint64_t key)
{
	uint64_t *k = set__find(s->keys, s->mask, key);

	if (k) {
		set__unlink(s->keys, s->mask, (uint32_t)(k - s->keys));
	} else if (s->old && (k = set__find(s->old, s->old_mask, key))) {
		set__unlink(s->old, s->old_mask, (uint32_t)(k - s->old));
	} else {
		return false;
	}
	s->count--;
	if (s->old)
		set__move(s, MAP_MOVE_SLOTS);
	return true;
}

void set_prefetch(const struct set *s, uint64_t key)
{
	__builtin_prefetch(&s->keys[table__home(key, s->mask)]);
}

size_t set_bytes(const struct set *s)
{
	return ((size_t)s->mask + 1) * sizeof(*s->keys) +
	       (s->old ? ((size_t)s->old_mask + 1) * sizeof(*s->old) : 0) +
	       (size_t)s->next.steps_done * HUGE_PAGE_SIZE;
}

uint64_t hash_bytes(const void *p, size_t n)
{
	uint64_t h = XXH3_64bits(p, n);
	return h ? h : 1;
}

uint64_t hash_u64(uint64_t x) { return XXH3_64bits(&x, sizeof(x)); }
