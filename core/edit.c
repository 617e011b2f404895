/*
 * edit.c: the titles events have of their own (an event's title is its
 * series' until an edit gives it one: docs/core.md "Event edits"). They
 * are kept aside from struct event, in a table of slots and a map from the
 * event id, so the event a booking touches stays 104 bytes: an event with
 * one is flagged EVENT_TITLED and only then looked up. Changed only by
 * applying records (apply.c: EVENT_EDIT, archiving), after room was made
 * (state__title_reserve), so setting one cannot fail.
 */
#include "state.h"
#include "state_int.h"

#include <errno.h>
#include <string.h>

/* A free slot keeps the next free one in its first bytes. */
static uint32_t free_next(const core_state *st, uint32_t slot)
{
	uint32_t next;

	memcpy(&next, st->titles[slot], sizeof(next));
	return next;
}

int state__title_reserve(core_state *st, uint32_t n)
{
	/* slot 0 is never used: + 1 */
	if (table_grow((void **)&st->titles, &st->title_cap,
		       (uint64_t)st->title_slots + n + 1,
		       sizeof(*st->titles)) ||
	    map_reserve(&st->title_by_event, n))
		return -ENOMEM;
	return 0;
}

const char *state__title(const core_state *st, const struct event *e)
{
	uint32_t slot;

	if (!(e->flags & EVENT_TITLED))
		return NULL;
	slot = map_get(&st->title_by_event, e->id);
	ASSERT(slot);
	return st->titles[slot];
}

void state__title_drop(core_state *st, struct event *e)
{
	uint32_t slot;

	if (!(e->flags & EVENT_TITLED))
		return;
	slot = map_get(&st->title_by_event, e->id);
	ASSERT(slot && map_del(&st->title_by_event, e->id));
	memset(st->titles[slot], 0, sizeof(st->titles[slot]));
	memcpy(st->titles[slot], &st->title_free, sizeof(st->title_free));
	st->title_free = slot;
	e->flags &= (uint8_t)~EVENT_TITLED;
}

void state__title_set(core_state *st, struct event *e, const char *title)
{
	uint32_t slot;

	if (title[0] == '\0') {
		state__title_drop(st, e);
		return;
	}
	if (e->flags & EVENT_TITLED) {
		slot = map_get(&st->title_by_event, e->id);
	} else if (st->title_free) {
		slot = st->title_free;
		st->title_free = free_next(st, slot);
	} else {
		slot = ++st->title_slots;
	}
	ASSERT(slot && slot < st->title_cap); /* reserved */
	if (!(e->flags & EVENT_TITLED))
		ASSERT(map_put(&st->title_by_event, e->id, slot) == 0);
	memset(st->titles[slot], 0, sizeof(st->titles[slot]));
	strncpy(st->titles[slot], title, sizeof(st->titles[slot]) - 1);
	e->flags |= EVENT_TITLED;
}
