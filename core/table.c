/*
 * table.c: the map (and the set: the same without values) every index of
 * the core is made of, and the growth of the core's tables.
 *
 * Open addressing with linear probing over one array of (key, value) pairs,
 * 16 bytes each so a probe costs one cache miss; capacity a power of two,
 * at least twice the entries, so probes stay short. A map starts small and
 * doubles (a rehash) when it would pass half full: an empty bookd costs
 * little, a busy one pays a rehash per doubling (a few ms per million
 * entries, on the shard's thread). Callers that must not fail halfway
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
 *  - A map or set doubles by a rehash into a new table (table_calloc),
 *    which is faulted in at once: the rehash writes all over it anyway.
 *  - An array of slots (table_grow) is filled in order, so it grows in
 *    place: mremap moves its pages to a bigger mapping, copying nothing,
 *    and the new half is faulted in a huge page at a time as slots are
 *    taken. A doubling used to zero twice the array and copy it in one
 *    stall on the shard's thread (31 ms for a bookings array seen under
 *    load); now it zeroes one huge page per 2 MiB of new slots. */
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
	size_t span = table_span(count * size);
	char *p;

	if (count * size < TABLE_BIG_BYTES)
		return calloc(count, size);
	p = table_map(span, PROT_READ | PROT_WRITE);
	/* Fault them in now, not on the booking path. */
	for (size_t off = 0; p && off < span; off += HUGE_PAGE_SIZE)
		*(volatile char *)(p + off) = 0;
	return p;
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

static uint64_t map_cap_for(uint64_t count)
{
	uint64_t cap = 16;

	while (cap < count * 2)
		cap <<= 1;
	return cap;
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

/* A rehash moves the old slots in order to random homes in the new table:
 * the home of the slot REHASH_AHEAD further on is prefetched, so the cache
 * misses overlap (the rehash is most of a doubling's stall). */
#define REHASH_AHEAD 16

static void map_insert_fresh(struct map *m, uint64_t key, uint64_t val)
{
	uint32_t i = map__slot(m, key);

	while (m->slots[i].key != 0)
		i = (i + 1) & m->mask;
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->count++;
}

int map__reserve(struct map *m, uint64_t more)
{
	uint64_t old_cap = (uint64_t)m->mask + 1;
	struct map_slot *old = m->slots;
	uint64_t cap = map_cap_for(m->count + more);

	if (cap <= old_cap)
		return 0;
	if (cap > (UINT64_C(1) << 32))
		return -ENOMEM;
	m->slots = table_calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		return -ENOMEM;
	}
	m->mask = (uint32_t)(cap - 1);
	m->count = 0;
	for (uint64_t i = 0; i < old_cap; i++) {
		uint64_t ahead = old[(i + REHASH_AHEAD) & (old_cap - 1)].key;

		if (ahead)
			__builtin_prefetch(&m->slots[map__slot(m, ahead)], 1);
		if (old[i].key)
			map_insert_fresh(m, old[i].key, old[i].val);
	}
	table_free(old, old_cap, sizeof(*old));
	return 0;
}

void map_free(struct map *m)
{
	table_free(m->slots, map_bytes(m) / sizeof(*m->slots),
		   sizeof(*m->slots));
	memset(m, 0, sizeof(*m));
}

int map_put(struct map *m, uint64_t key, uint32_t val)
{
	ASSERT(key != 0);
	ASSERT(val != 0);
	for (uint32_t i = map__slot(m, key);; i = (i + 1) & m->mask) {
		if (m->slots[i].key == key) {
			m->slots[i].val = val;
			return 0;
		}
		if (m->slots[i].key == 0)
			break;
	}
	/* A new key: grow first if it would pass half full. */
	if (map_reserve(m, 1) != 0)
		return -ENOMEM;
	map_insert_fresh(m, key, val);
	return 0;
}

bool map_del(struct map *m, uint64_t key)
{
	uint32_t i = map__slot(m, key);

	while (m->slots[i].key != key) {
		if (m->slots[i].key == 0)
			return false;
		i = (i + 1) & m->mask;
	}
	/* Backward shift: move later members of the cluster into the hole
	 * when their home slot is not between the hole and them. */
	for (uint32_t j = (i + 1) & m->mask; m->slots[j].key != 0;
	     j = (j + 1) & m->mask) {
		uint32_t home = map__slot(m, m->slots[j].key);
		bool movable = (i <= j) ? (home <= i || home > j)
					: (home <= i && home > j);
		if (movable) {
			m->slots[i].key = m->slots[j].key;
			m->slots[i].val = m->slots[j].val;
			i = j;
		}
	}
	m->slots[i].key = 0;
	m->slots[i].val = 0;
	m->count--;
	return true;
}

void map_prefetch(const struct map *m, uint64_t key)
{
	__builtin_prefetch(&m->slots[map__slot(m, key)]);
}

size_t map_bytes(const struct map *m)
{
	return ((size_t)m->mask + 1) * sizeof(*m->slots);
}

/* ---- sets: the same, keys only ---- */

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
	if (s->keys)
		table_free(s->keys, (size_t)s->mask + 1, sizeof(*s->keys));
	memset(s, 0, sizeof(*s));
}

static void set_insert_fresh(struct set *s, uint64_t key)
{
	uint32_t i = table__home(key, s->mask);

	while (s->keys[i] != 0)
		i = (i + 1) & s->mask;
	s->keys[i] = key;
	s->count++;
}

int set__reserve(struct set *s, uint64_t more)
{
	uint64_t old_cap = (uint64_t)s->mask + 1;
	uint64_t *old = s->keys;
	uint64_t cap = map_cap_for(s->count + more);

	if (cap <= old_cap)
		return 0;
	if (cap > (UINT64_C(1) << 32))
		return -ENOMEM;
	s->keys = table_calloc(cap, sizeof(*s->keys));
	if (!s->keys) {
		s->keys = old;
		return -ENOMEM;
	}
	s->mask = (uint32_t)(cap - 1);
	s->count = 0;
	for (uint64_t i = 0; i < old_cap; i++) {
		uint64_t ahead = old[(i + REHASH_AHEAD) & (old_cap - 1)];

		if (ahead)
			__builtin_prefetch(&s->keys[table__home(ahead, s->mask)],
					   1);
		if (old[i])
			set_insert_fresh(s, old[i]);
	}
	table_free(old, old_cap, sizeof(*old));
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
	return 0;
}

bool set_del(struct set *s, uint64_t key)
{
	uint32_t i = table__home(key, s->mask);

	while (s->keys[i] != key) {
		if (s->keys[i] == 0)
			return false;
		i = (i + 1) & s->mask;
	}
	/* Backward shift, as map_del. */
	for (uint32_t j = (i + 1) & s->mask; s->keys[j] != 0;
	     j = (j + 1) & s->mask) {
		uint32_t home = table__home(s->keys[j], s->mask);
		bool movable = (i <= j) ? (home <= i || home > j)
					: (home <= i && home > j);
		if (movable) {
			s->keys[i] = s->keys[j];
			i = j;
		}
	}
	s->keys[i] = 0;
	s->count--;
	return true;
}

void set_prefetch(const struct set *s, uint64_t key)
{
	__builtin_prefetch(&s->keys[table__home(key, s->mask)]);
}

size_t set_bytes(const struct set *s)
{
	return ((size_t)s->mask + 1) * sizeof(*s->keys);
}

uint64_t hash_bytes(const void *p, size_t n)
{
	uint64_t h = XXH3_64bits(p, n);
	return h ? h : 1;
}

uint64_t hash_u64(uint64_t x) { return XXH3_64bits(&x, sizeof(x)); }
