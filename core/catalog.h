/*
 * catalog.h: the catalogue (catalog.c): orgs, locations, instructors,
 * customers and series, and the generation of events from series. The
 * shards' states and the runtime read it; it reads no state.
 */
#ifndef BOOKD_CORE_CATALOG_H
#define BOOKD_CORE_CATALOG_H

#include "core.h"
#include "record.h"
#include "table.h"

#define CORE_GENERATE_CHUNK_MAX 200 /* events per generation entry */

struct tz;

/* Orgs, locations, instructors and series live in arrays indexed by id - 1:
 * ids are dense, objects never move nor change once published, so shard
 * threads may read a series' title without a lock. */
struct cat_named {
	uint64_t org_id;
	char name[CORE_NAME_SIZE_MAX];
	char timezone[CORE_TZ_SIZE_MAX];
};
/* A title a series had before an edit changed it: the events before
 * first_event_id keep it (docs/core.md "Series edits"). */
struct cat_title {
	uint64_t first_event_id;
	char title[CORE_NAME_SIZE_MAX];
	struct cat_title *older;
};
struct cat_series {
	struct core_series_spec spec;
	/* titles before edits, newest first (published with release
	 * stores; changed only while the shards are parked, or in replay) */
	struct cat_title *retitled;
	struct core_date generated_through; /* year 0: nothing yet */
	struct tz *zone;
};
struct cat_customer {
	char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	char email[CORE_NAME_SIZE_MAX], name[CORE_NAME_SIZE_MAX];
};
/* An org's settings: changed by ORG_SETTINGS records while shard threads
 * read them (a hold's length, a cancel's cut-off): each field is stored
 * and loaded atomically (catalog_org_settings). */
struct cat_org_settings {
	uint16_t cancel_cutoff_hours, hold_minutes, horizon_days;
};
/* An imported row's old id and the bookd id it became (LEGACY records,
 * core/import.h): kept so that an import run again skips what it wrote. */
struct cat_legacy {
	uint64_t bookd_id;
	uint8_t kind;
	char id[CORE_LEGACY_ID_SIZE_MAX + 1];
	char detail[CORE_LEGACY_DETAIL_SIZE];
};
struct catalog {
	struct cat_named *orgs, *locations, *instructors;
	struct cat_org_settings *org_settings; /* by org id - 1 */
	struct cat_legacy *legacy; /* legacy_count of legacy_cap, in order */
	uint32_t legacy_count, legacy_cap;
	struct map legacy_by_hash; /* catalog_legacy_hash -> index + 1 */
	struct cat_series *series;
	struct cat_customer *customers;
	uint32_t org_count, location_count, instructor_count, series_count,
		customer_count;
	uint32_t count_max;
	struct map customer_by_hash;
	uint64_t next_event_id;
	uint32_t horizon_days, generate_max_days;
	uint32_t generate_hint; /* series index where generation last found work */
};
struct catalog *catalog_new(uint32_t count_max, uint32_t horizon_days,
			    uint32_t generate_max_days);
void catalog_free(struct catalog *cat);
const struct cat_series *catalog_series(const struct catalog *cat, uint64_t id);
bool catalog_has(const struct catalog *cat, enum core_op kind, uint64_t id);
/* A series as SERIES_CREATE checks it: CORE_OK, or why not. */
enum core_code catalog_series_check(const struct catalog *cat,
				    const struct core_series_spec *s);
/* Decide a catalogue op into w (records only; the state is not changed). */
enum core_code catalog_decide(const struct catalog *cat,
			      const struct core_req *req,
			      struct core_resp *resp, struct wbuf *w);
/* One chunk of generation for series (0: each series in turn) up to `until`
 * (year 0: today + horizon, in the series' zone). resp->count = events in
 * this chunk; resp->more = call again. Changes only a look-up hint. */
enum core_code catalog_generate(struct catalog *cat, uint64_t series_id,
				struct core_date until, core_time now,
				struct core_resp *resp, struct wbuf *w);
/* How many events generation for series (0: each series) up to `until`
 * would create in all its chunks (a dry run, into *count); CORE_LIMIT when
 * until is more than generate_max_days ahead, CORE_INVALID for a bad date,
 * CORE_NO_SERIES. catalog_generate refuses such an `until` itself too. */
enum core_code catalog_generate_plan(const struct catalog *cat,
				     uint64_t series_id, struct core_date until,
				     core_time now, uint64_t *count,
				     struct core_resp *resp);
/* How many events generation would create for spec now (a dry run). */
uint32_t catalog_planned(const struct catalog *cat,
			 const struct core_series_spec *spec, core_time now);
/* Apply one catalogue record; -EINVAL if it does not fit the state. */
int catalog_apply(struct catalog *cat, const struct core_rec *r);
/* Snapshot writer: every catalogue record that rebuilds it, through fn. */
void catalog_dump(const struct catalog *cat, rec_sink fn, void *ctx);
/* The org's settings (the defaults for an unknown org); any thread. */
void catalog_org_settings(const struct catalog *cat, uint64_t org_id,
			  struct core_org_settings *out);
/* The org's cancellation cut-off (ms), and its hold (ms; hold_ms, the
 * core's, when the org has none of its own); any thread. */
core_time catalog_cutoff_ms(const struct catalog *cat, uint64_t org_id);
core_time catalog_hold_ms(const struct catalog *cat, uint64_t org_id,
			  core_time hold_ms);
/* The event's title: its series' (or ""). */
void core__event_title(const struct catalog *cat, struct core_event_view *v);
/* Legacy ids: the key of (kind, id); the entry of it: 0 and *out, -ENOENT
 * when absent, -EEXIST when another id has its hash (never stored). */
uint64_t catalog_legacy_hash(uint8_t kind, const char *id);
int catalog_legacy_find(const struct catalog *cat, uint8_t kind, const char *id,
			const struct cat_legacy **out);
/* Room for n more legacy ids (0 or -ENOMEM), so that applying them
 * cannot fail. */
int catalog_legacy_reserve(struct catalog *cat, uint32_t n);
/* A platform's customer id: 1-64 of A-Za-z0-9._:@- */
bool core__customer_id_ok(const char *id);

#endif
