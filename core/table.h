/*
 * table.h: the tables of core/ (table.c): an open-addressing map
 * u64 -> u32 and set of u64, growable arrays of slots, and the XXH3 hashes
 * they use.
 */
#ifndef BOOKD_CORE_TABLE_H
#define BOOKD_CORE_TABLE_H

#include "bookd_assert.h" /* ASSERT: on in release; DEBUG_ASSERT: costly */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An open-addressing map u64 -> u32: linear probing, backward-shift
 * deletion, key 0 and value 0 reserved ("absent"); load <= 1/2, doubling
 * as entries come (no maximum: callers check their configured ceilings
 * when they decide). While it doubles, the entries not yet moved to the
 * new array are in the old one (old != NULL): a look-up that misses in the
 * new array looks there too (table.c). */
struct map_slot {
	uint64_t key;
	uint64_t val; /* u32 used; the pair fills 16 bytes: one miss a probe */
};
/* The next array of a big map or set, made past half full and populated a
 * huge page at a time before the table switches to it (table.c). */
struct table_next {
	void *p;
	uint64_t cap;	     /* its slots */
	uint32_t from;	     /* the table's count when it was made */
	uint32_t steps_done; /* huge pages populated */
};
struct map {
	struct map_slot *slots;
	uint32_t mask, count; /* count: keys in both arrays */
	struct map_slot *old;
	uint32_t old_mask, old_next,
		old_left; /* next slot to move, slots left */
	struct table_next next;
};
int map_init(struct map *m, uint32_t count_hint);
/* calloc for the big tables: a mapping of their own with transparent huge
 * pages (see table.c). Each is freed by table_free with the count it was
 * made with (or grown to). */
void *table_calloc(size_t count, size_t size);
void table_free(void *p, size_t count, size_t size);
/* Tables of slots 0..capacity (slot 0: "none"): grows *p (in place, or
 * moving its pages) so that capacity >= need, doubling from
 * TABLE_COUNT_INIT, the new slots zero; -ENOMEM and *p untouched when
 * memory is short or need passes TABLE_COUNT_LIMIT. Freed by table_free
 * with capacity + 1. */
#define TABLE_COUNT_INIT 1024
#define TABLE_COUNT_LIMIT (UINT32_C(1) << 31)
int table__grow(void **p, uint32_t *capacity, uint64_t need, size_t size);
static inline int table_grow(void **p, uint32_t *capacity, uint64_t need,
			     size_t size)
{
	/* Every decision reserves: the common case is room enough. */
	return need <= *capacity ? 0 : table__grow(p, capacity, need, size);
}
void map_free(struct map *m);
/* A key's home slot in a table of mask + 1 slots. Fibonacci hashing: keys
 * are often dense ids. */
static inline uint32_t table__home(uint64_t key, uint32_t mask)
{
	return (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & mask;
}

static inline uint32_t map__slot(const struct map *m, uint64_t key)
{
	return table__home(key, m->mask);
}

uint32_t map__get_old(const struct map *m, uint64_t key);
static inline uint32_t map_get(const struct map *m, uint64_t key)
{
	ASSERT(key != 0);
	for (uint32_t i = map__slot(m, key);; i = (i + 1) & m->mask) {
		if (m->slots[i].key == key)
			return (uint32_t)m->slots[i].val;
		if (m->slots[i].key == 0)
			break;
	}
	return m->old ? map__get_old(m, key) : 0;
}
/* Room for `more` new keys: after 0, that many puts of new keys succeed. */
int map__reserve(struct map *m, uint64_t more);
static inline int map_reserve(struct map *m, uint64_t more)
{
	/* load <= 1/2 after the puts: the common case, no call */
	return (m->count + more) * 2 <= (uint64_t)m->mask + 1
		       ? 0
		       : map__reserve(m, more);
}
int map_put(struct map *m, uint64_t key, uint32_t val); /* -ENOMEM */
bool map_del(struct map *m, uint64_t key);
size_t map_bytes(const struct map *m);
void map_prefetch(const struct map *m, uint64_t key); /* its first probe */

/* A set of u64 keys (0 reserved): the map's open addressing without the
 * values, 8 bytes a slot, for an index that only answers "is it there". */
struct set {
	uint64_t *keys;
	uint32_t mask, count;
	uint64_t *old; /* as the map's */
	uint32_t old_mask, old_next, old_left;
	struct table_next next;
};
int set_init(struct set *s, uint32_t count_hint);
void set_free(struct set *s);
int set__reserve(struct set *s, uint64_t more);
static inline int set_reserve(struct set *s, uint64_t more)
{
	return (s->count + more) * 2 <= (uint64_t)s->mask + 1
		       ? 0
		       : set__reserve(s, more);
}
bool set__has_old(const struct set *s, uint64_t key);
static inline bool set_has(const struct set *s, uint64_t key)
{
	ASSERT(key != 0);
	for (uint32_t i = table__home(key, s->mask);; i = (i + 1) & s->mask) {
		if (s->keys[i] == key)
			return true;
		if (s->keys[i] == 0)
			break;
	}
	return s->old && set__has_old(s, key);
}
int set_put(struct set *s, uint64_t key); /* 0 (added or there), -ENOMEM */
bool set_del(struct set *s, uint64_t key);
size_t set_bytes(const struct set *s);
void set_prefetch(const struct set *s, uint64_t key);
uint64_t hash_bytes(const void *p, size_t n); /* XXH3-64, never 0 */
uint64_t hash_u64(uint64_t x);		      /* XXH3-64 of the 8 bytes */

#endif
