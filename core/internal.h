/*
 * internal.h: what the files of core/ share; not part of the public API.
 * record.c (entry format), table.c (map), catalog.c (catalogue and series
 * generation), state.c (one shard's state machine), runtime.c, worker.c,
 * port.c (runtime; runtime.h), names.c (enum names).
 */
#ifndef BOOKD_CORE_INTERNAL_H
#define BOOKD_CORE_INTERNAL_H

#include "bookd_assert.h" /* ASSERT: on in release; DEBUG_ASSERT: costly */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>

#define CORE_BOOKING_SEQ_BITS 24
#define CORE_BOOKING_SEQ_MAX ((1u << CORE_BOOKING_SEQ_BITS) - 1)
#define CORE_EVENT_ID_MAX ((UINT64_C(1) << 40) - 1)
#define CORE_ENTRY_SIZE_MAX 65536
#define CORE_GENERATE_CHUNK_MAX 200 /* events per generation entry */


/* ---- Records: the entry format (record.c) ------------------------------
 *
 * An entry is the outcome of one decision: a sequence of records, applied
 * all or nothing. A record is
 *     u8 type | u8 version (1) | u16 body size | body
 * with little-endian integers and strings as u8 length + bytes. Every record
 * carries the decision time `at`. Records are facts (what happened), not
 * commands: applying them does not decide anything again.
 */
enum rec_type {
	REC_ORG = 1,
	REC_LOCATION,
	REC_INSTRUCTOR,
	REC_CUSTOMER,
	REC_SERIES,
	REC_SERIES_GENERATED, /* series generated through a local date */
	REC_EVENT_CREATE,
	REC_EVENT_PATCH,      /* capacity / status / instructor set */
	REC_BOOKING_NEW,      /* a booking created in a status */
	REC_BOOKING_SET,      /* a booking moved to another status */
	REC_PAYMENT,          /* a payment outcome recorded (also flagged ones) */
	REC_NOTIFY,           /* outbox: a notification to deliver */
	REC_IDEM,             /* an idempotency key and its first result */
	REC_BOOKING_RESTORE,  /* snapshots: a booking as it is, any status */
	REC_ARCHIVE,          /* events that ended before a time leave memory */
	REC_TYPE_COUNT
};

struct idem_result {
	uint64_t lsn; /* runtime only, not in the record: 0 after replay */
	uint8_t op;   /* enum core_op */
	uint8_t code; /* enum core_code (stored ones are CORE_OK and flagged payments) */
	uint8_t has_promoted;
	uint32_t count;
	uint64_t id;
	union {
		struct {
			struct core_booking_view booking, promoted;
		};
		struct core_event_view event; /* op EVENT_PATCH */
	};
};

struct rec {
	uint8_t type;
	core_time at;
	union {
		struct {
			uint64_t id, org_id;
			char name[CORE_NAME_SIZE_MAX];
			char timezone[CORE_TZ_SIZE_MAX];
		} cat; /* ORG, LOCATION, INSTRUCTOR */
		struct {
			char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
			char email[CORE_NAME_SIZE_MAX], name[CORE_NAME_SIZE_MAX];
		} customer;
		struct {
			uint64_t id;
			struct core_series_spec spec;
		} series;
		struct {
			uint64_t series_id;
			struct core_date through;
		} generated;
		struct {
			uint64_t id, series_id, org_id, location_id, instructor_id;
			core_time start_at;
			uint32_t duration_min, capacity, waitlist_capacity,
				price_cents;
			char currency[4];
		} event;
		struct {
			uint64_t event_id, instructor_id;
			uint32_t capacity;
			uint8_t status;
		} patch;
		struct {
			uint64_t booking_id;
			uint8_t status;
			core_time hold_expires_at;
			char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1]; /* NEW only */
		} booking; /* BOOKING_NEW, BOOKING_SET, BOOKING_RESTORE */
		struct {
			uint64_t booking_id, amount_cents, payment_ref;
			char currency[4];
			uint8_t succeeded, code;
		} payment;
		struct {
			uint64_t booking_id;
			uint8_t kind;
		} notify;
		struct {
			uint64_t hi, lo, fingerprint;
			struct idem_result result;
		} idem;
		struct {
			core_time before;
		} archive;
	} u;
};

struct wbuf {
	uint8_t *data;
	size_t size, capacity;
	bool overflow;
};
void rec_encode(struct wbuf *w, const struct rec *r);
/* Decodes the record at *pos; -EINVAL when malformed (never reads past size). */
int rec_decode(const uint8_t *buf, size_t size, size_t *pos, struct rec *out);
/* The event a record belongs to, 0 for catalogue and idempotency records. */
uint64_t rec_event_id(const struct rec *r);

/* ---- An open-addressing map u64 -> u32 (table.c) -----------------------
 * Linear probing, backward-shift deletion, key 0 and value 0 reserved
 * ("absent"); load <= 1/2, doubling as entries come (no maximum: callers
 * check their configured ceilings when they decide). */
struct map_slot {
	uint64_t key;
	uint64_t val; /* u32 used; the pair fills 16 bytes: one miss a probe */
};
struct map {
	struct map_slot *slots;
	uint32_t mask, count;
};
int map_init(struct map *m, uint32_t count_hint);
/* calloc for the big tables: asks for transparent huge pages (see table.c). */
void *table_calloc(size_t count, size_t size);
/* Tables of slots 0..capacity (slot 0: "none"): grows *p (copying it) so
 * that capacity >= need, doubling from TABLE_COUNT_INIT; -ENOMEM and *p
 * untouched when memory is short or need passes TABLE_COUNT_LIMIT. */
#define TABLE_COUNT_INIT 1024
#define TABLE_COUNT_LIMIT (UINT32_C(1) << 31)
int table_grow(void **p, uint32_t *capacity, uint64_t need, size_t size);
void map_free(struct map *m);
uint32_t map_get(const struct map *m, uint64_t key);
/* Room for `more` new keys: after 0, that many puts of new keys succeed. */
int map_reserve(struct map *m, uint64_t more);
int map_put(struct map *m, uint64_t key, uint32_t val); /* -ENOMEM */
bool map_del(struct map *m, uint64_t key);
size_t map_bytes(const struct map *m);
void map_prefetch(const struct map *m, uint64_t key); /* its first probe */
uint64_t hash_bytes(const void *p, size_t n); /* XXH3-64, never 0 */
uint64_t hash_u64(uint64_t x);                /* XXH3-64 of the 8 bytes */
/* A platform's customer id: 1-64 of A-Za-z0-9._:@- */
bool core__customer_id_ok(const char *id);

/* ---- Catalogue (catalog.c) ---------------------------------------------
 * Orgs, locations, instructors and series live in arrays indexed by id - 1:
 * ids are dense, objects never move nor change once published, so shard
 * threads may read a series' title without a lock. */
struct cat_named {
	uint64_t org_id;
	char name[CORE_NAME_SIZE_MAX];
	char timezone[CORE_TZ_SIZE_MAX];
};
struct cat_series {
	struct core_series_spec spec;
	struct core_date generated_through; /* year 0: nothing yet */
	struct tz *zone;
};
struct cat_customer {
	char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	char email[CORE_NAME_SIZE_MAX], name[CORE_NAME_SIZE_MAX];
};
struct catalog {
	struct cat_named *orgs, *locations, *instructors;
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
int catalog_apply(struct catalog *cat, const struct rec *r);

/* Snapshot writers: every record that rebuilds the state, through fn. */
typedef void (*rec_sink)(void *ctx, const struct rec *r);
void catalog_dump(const struct catalog *cat, rec_sink fn, void *ctx);

/* ---- State (state.c) --------------------------------------------------- */
void core__state_dump(const core_state *st, rec_sink fn, void *ctx);
/* Room for everything the entry adds to this shard (0), or -ENOMEM /
 * -EINVAL with nothing changed: then applying it cannot run out of room. */
int core__state_reserve(core_state *st, const void *entry, size_t entry_size);
/* Events the last REC_ARCHIVE applied to this shard dropped. */
uint32_t core__state_archive_count(const core_state *st);
/* Start loading what deciding req will read first (a batch is prefetched,
 * then decided, so the cache misses overlap). */
void core__state_prefetch(const core_state *st, const struct core_req *req);
struct core_state;
/* A state for shard `index` of `count` reading the shared catalogue `cat`
 * (the state then owns no catalogue), or owning one when cat is NULL. */
core_state *core__state_new(const struct core_config *cfg, struct catalog *cat,
			    unsigned index, unsigned count);
unsigned core__shard_of(uint64_t event_id, unsigned count);
unsigned core__key_home(const struct core_idem *k, unsigned count);
/* Idempotency look-up at the key's home: CORE_OK (new), or a replay filled
 * into resp (and *replay_lsn), or CORE_IDEM_MISMATCH. */
enum core_code core__idem_lookup(core_state *st, const struct core_idem *k,
				 core_time now, struct core_resp *resp);
void core__idem_store(core_state *st, const struct core_idem *k,
		      core_time created, const struct idem_result *res);
void core__idem_result(const struct core_resp *resp, struct idem_result *out);
/* Decide without the idempotency check (already done at the key's home). */
enum core_code core__state_decide_nokey(core_state *st,
					const struct core_req *req,
					struct core_resp *resp,
					const void **entry, size_t *entry_size);
/* Expire the first due hold, if any: returns true and an entry. */
bool core__state_expire_one(core_state *st, core_time now,
			    const void **entry, size_t *entry_size);
size_t core__state_list(const core_state *st, const struct core_req *req,
			struct core_event_view *out, size_t out_capacity);
size_t core__state_customer(const core_state *st, const char *customer_id,
			    struct core_booking_view *out, size_t capacity);
void core__event_title(const struct catalog *cat, struct core_event_view *v);

#endif
