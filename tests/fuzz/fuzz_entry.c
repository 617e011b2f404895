/*
 * fuzz_entry.c: libFuzzer target for the entry decoder and apply
 * (core_state_apply), the path every log record and snapshot takes on
 * recovery. Any bytes: never a crash, never a read out of bounds; a
 * malformed entry is refused whole (-EINVAL); a well-formed one that does
 * not fit the state is refused (-EUCLEAN) or applied.
 *
 * The state starts with one org, location, instructor and a daily series
 * with a week of events (ids 1..7), so that record ids can hit real events.
 * corpus/entry/archive holds an ARCHIVE record that drops them all (then
 * the event reads as unknown, which is no change to check).
 */
#include "core.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1767225600000)

static core_state *fresh(void)
{
	static struct core_series_spec s;
	struct core_config cfg;
	struct core_req q = { .now = NOW };
	struct core_resp r;
	const void *e;
	size_t n;
	core_state *st;

	core_config_default(&cfg);
	cfg.event_count_max = 64;
	cfg.booking_count_max = 256;
	cfg.customer_count_max = 64;
	cfg.idem_count_max = 64;
	cfg.catalog_count_max = 16;
	cfg.horizon_days = 6;
	st = core_state_new(&cfg);
	if (!st)
		abort();
	q.op = CORE_OP_ORG_CREATE;
	strcpy(q.u.cat.name, "Org");
	strcpy(q.u.cat.timezone, "UTC");
#define DO()                                                                   \
	do {                                                                   \
		if (core_state_decide(st, &q, &r, &e, &n) == CORE_OK)          \
			core_state_apply(st, e, n);                            \
	} while (0)
	DO();
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = 1;
	DO();
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	DO();
	s.org_id = s.location_id = s.instructor_id = 1;
	strcpy(s.title, "T");
	s.capacity = 2;
	s.waitlist_capacity = 2;
	s.price_cents = 100;
	strcpy(s.currency, "eur");
	strcpy(s.timezone, "UTC");
	s.weekday_mask = 0x7f;
	s.start_minute = 600;
	s.duration_min = 60;
	s.first_date = (struct core_date){ 2026, 1, 1 };
	memset(&q.u, 0, sizeof(q.u));
	q.op = CORE_OP_SERIES_CREATE;
	q.u.series = &s;
	DO();
	memset(&q.u, 0, sizeof(q.u));
	q.op = CORE_OP_GENERATE;
	DO();
#undef DO
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	core_state *st = fresh();
	struct core_event_view before, after;
	enum core_code had, has;
	int rc;

	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	had = core_state_event(st, 1, &before);
	rc = core_state_apply(st, data, size);
	has = core_state_event(st, 1, &after);
	if (rc == -EINVAL &&
	    (had != has || memcmp(&before, &after, sizeof(before)) != 0))
		abort(); /* refused, yet something changed */
	/* An ARCHIVE record may drop the event (then it reads as unknown). */
	if (rc == 0 && has == CORE_OK) {
		/* Whatever was applied keeps the event within its capacity. */
		if (after.status == CORE_EVENT_SCHEDULED &&
		    after.booked + after.held > after.capacity)
			abort();
	}
	core_state_free(st);
	return 0;
}
