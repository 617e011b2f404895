/*
 * test_table.c: core/table.h on its own, across the size where a table
 * becomes a mapping of its own (4 MiB): an array of slots grown from
 * nothing to 1.5M slots keeps every slot it had and gives zero new ones,
 * in place and when its pages must move (a mapping put right after it);
 * big tables start at a huge-page boundary; maps and sets checked against
 * a plain array through growth and deletion (seeded), most steps while
 * their entries move to a doubled array.
 */
#include "check.h"
#include "table.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE ((uintptr_t)2 << 20)

struct slot {
	uint64_t a, b, c; /* 24 B: not a power of two */
};

static uint64_t pattern(uint64_t i)
{
	return i * UINT64_C(0x9E3779B97F4A7C15) | 1;
}

/* Every slot 1..filled holds its pattern, the rest up to cap is zero. */
static bool slots_ok(const struct slot *s, uint64_t filled, uint64_t cap)
{
	for (uint64_t i = 1; i <= cap; i++) {
		uint64_t want = i <= filled ? pattern(i) : 0;
		if (s[i].a != want || s[i].b != (want ? i : 0) || s[i].c != 0)
			return false;
	}
	return s[0].a == 0 && s[0].b == 0 && s[0].c == 0;
}

static void fill(struct slot *s, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i <= to; i++) {
		s[i].a = pattern(i);
		s[i].b = i;
	}
}

CHECK_TEST_FN(test_grow_keeps_and_zeroes)
{
	struct slot *s = NULL;
	uint32_t cap = 0;
	uint64_t filled = 0;

	for (uint64_t need = 1; need <= 1500000; need = need * 3 + 7) {
		REQUIRE(table_grow((void **)&s, &cap, need, sizeof(*s)) == 0);
		CHECK(cap >= need && cap >= TABLE_COUNT_INIT);
		CHECK_MSG(slots_ok(s, filled, cap), "need %" PRIu64, need);
		if ((cap + 1) * sizeof(*s) >= 2 * HUGE)
			CHECK_MSG(((uintptr_t)s & (HUGE - 1)) == 0, "%p",
				  (void *)s);
		fill(s, filled + 1, need);
		filled = need;
	}
	CHECK(cap >= filled && (cap + 1) * sizeof(*s) >= 8 * HUGE);
	/* Room enough: nothing moves. */
	struct slot *before = s;
	CHECK(table_grow((void **)&s, &cap, cap, sizeof(*s)) == 0 &&
	      s == before);
	CHECK(table_grow((void **)&s, &cap, (uint64_t)TABLE_COUNT_LIMIT + 1,
			 sizeof(*s)) == -ENOMEM &&
	      s == before);
	table_free(s, (size_t)cap + 1, sizeof(*s));
}

/* A mapping right behind the table: it cannot grow in place, so its pages
 * move to a new place at a huge-page boundary, all of them kept. */
CHECK_TEST_FN(test_grow_moves)
{
	struct slot *s = NULL;
	uint32_t cap = 0;

	REQUIRE(table_grow((void **)&s, &cap, 300000, sizeof(*s)) == 0);
	fill(s, 1, cap);
	size_t span = (((size_t)cap + 1) * sizeof(*s) + HUGE - 1) & ~(HUGE - 1);
	void *wall =
		mmap((char *)s + span, 4096, PROT_READ,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	REQUIRE(wall != MAP_FAILED);
	struct slot *before = s;
	uint32_t old_cap = cap;
	REQUIRE(table_grow((void **)&s, &cap, (uint64_t)old_cap + 1,
			   sizeof(*s)) == 0);
	CHECK(s != before && ((uintptr_t)s & (HUGE - 1)) == 0);
	CHECK(cap == 2 * old_cap);
	CHECK(slots_ok(s, old_cap, cap));
	/* the old place is gone: the wall's neighbour can be mapped again */
	void *again =
		mmap(before, 4096, PROT_READ,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(again == (void *)before);
	if (again != MAP_FAILED)
		munmap(again, 4096);
	munmap(wall, 4096);
	table_free(s, (size_t)cap + 1, sizeof(*s));
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Keys 1..N: val[k] the value the map must hold (0: absent). */
CHECK_TEST_FN(test_map_and_set_model)
{
	enum { N = 700000 }; /* past 1M slots: 16 MiB and 8 MiB tables */
	uint32_t *val = calloc(N + 1, sizeof(*val));
	struct map m;
	struct set st;
	uint64_t x = 20261207, count = 0, moving = 0, map_moving = 0;
	uint64_t set_moving = 0, readying = 0;

	REQUIRE(val && map_init(&m, 16) == 0 && set_init(&st, 16) == 0);
	for (uint64_t step = 0; step < 3 * N; step++) {
		uint64_t k = rnd(&x) % N + 1, key = pattern(k);
		unsigned op = (unsigned)(rnd(&x) % 8);
		if (op < 5) { /* put, mostly */
			uint32_t v = (uint32_t)(rnd(&x) % 1000000 + 1);
			REQUIRE(map_put(&m, key, v) == 0 &&
				set_put(&st, key) == 0);
			count += val[k] == 0;
			val[k] = v;
		} else if (op < 7) {
			bool had = val[k] != 0;
			CHECK(map_del(&m, key) == had &&
			      set_del(&st, key) == had);
			count -= had;
			val[k] = 0;
		} else {
			CHECK(map_get(&m, key) == val[k] &&
			      set_has(&st, key) == (val[k] != 0));
		}
		moving += m.old != NULL && st.old != NULL;
		map_moving += m.old != NULL;
		set_moving += st.old != NULL;
		readying += m.next.p != NULL && st.next.p != NULL;
	}
	/* many steps ran while each moved, while both did, and while both
	 * made their next arrays ready */
	CHECK_MSG(map_moving > N / 20 && set_moving > N / 20,
		  "%" PRIu64 " %" PRIu64, map_moving, set_moving);
	CHECK_MSG(moving > N / 50, "%" PRIu64, moving);
	CHECK_MSG(readying > N / 20, "%" PRIu64, readying);
	CHECK_EQ(m.count, count);
	CHECK_EQ(st.count, count);
	CHECK(map_bytes(&m) >= 16u << 20);
	uint64_t bad = 0;
	for (uint64_t k = 1; k <= N; k++)
		bad += map_get(&m, pattern(k)) != val[k] ||
		       set_has(&st, pattern(k)) != (val[k] != 0);
	CHECK_EQ(bad, 0);
	map_free(&m);
	set_free(&st);
	free(val);
}

int main(void) { return check_run_all("table", NULL); }
