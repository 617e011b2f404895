/*
 * model.h: a small reference model of the booking rules, for the tests.
 *
 * Written for obviousness, not speed: events in an array, bookings in an
 * array per event, the waitlist derived from the bookings' order. Tests
 * drive the core and the model with the same requests (model_apply) and
 * compare answers and stored state (model_cmp_*). One model per process:
 * its state is the globals below.
 *
 * Events are not created by the model: the tests mirror the events the
 * core generated (model_event_add, model_load_events).
 *
 * Comparisons return true when equal, else false with a one-line message
 * in the caller's buffer. The model's own misuse (an op it does not know)
 * goes to the failure hook given to model_init, which must not return.
 */
#ifndef BOOKD_TESTS_MODEL_H
#define BOOKD_TESTS_MODEL_H

#include "core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_CUSTOMER_COUNT 60
#define MODEL_EVENT_COUNT_MAX 4096

struct model_booking {
	uint64_t id;
	int customer; /* index into model_customer_ids */
	uint8_t status;
	core_time created, hold_expires;
	bool late; /* a cancel inside the org's cut-off */
};

struct model_event {
	uint64_t id;
	core_time start_at;
	uint32_t duration_min;
	uint64_t location_id, instructor_id, org_id;
	char title[CORE_NAME_SIZE_MAX]; /* as the event view gives it */
	uint32_t capacity, waitlist_capacity, price;
	char currency[4];
	uint8_t status;
	uint16_t reminded; /* lead (hours) of the last reminder, 0: none */
	uint64_t series_id;
	bool detached; /* kept off its series' pattern by a series edit */
	struct model_booking *b; /* by sequence - 1 */
	uint32_t n, cap;
};

extern struct model_event model_events[MODEL_EVENT_COUNT_MAX];
/* The org of each location and instructor id the test made (0: none),
 * for the edits' checks. */
#define MODEL_PLACE_COUNT 16
extern uint64_t model_location_org[MODEL_PLACE_COUNT];
extern uint64_t model_instructor_org[MODEL_PLACE_COUNT];
extern uint32_t model_event_count;
/* "cust-00@example.org" ...: the only customers the model knows. */
extern char model_customer_ids[MODEL_CUSTOMER_COUNT]
			      [CORE_CUSTOMER_ID_SIZE_MAX + 1];

/* hold_ms and idem_retention_ms as configured in the core. */
void model_init(core_time hold_ms, core_time idem_retention_ms,
		void (*fail)(const char *msg));
void model_free(void);
/* The org's settings as the core has them (every event is the org's): the
 * cancellation cut-off and the hold, both in ms (docs/core.md "Org
 * settings"); until called, 12 h and model_init's hold. */
void model_org_settings(core_time cutoff_ms, core_time hold);
/* The bookings whose waitlist closed (NOTIFY waitlist_expired) since the
 * last call, in the order they closed; their count. */
uint32_t model_waitlist_expired(const uint64_t **ids);

struct model_event *model_event_get(uint64_t id);
struct model_booking *model_booking_get(uint64_t id, struct model_event **ev);
uint32_t model_count_status(const struct model_event *e, uint8_t status);
void model_view(const struct model_event *e, const struct model_booking *b,
		struct core_booking_view *v);

/* A series the test made (id, its spec), generated at creation up to
 * horizon_days after now as the core does; the model learns its edits
 * (SERIES_PATCH) and how far it was generated (model_generated). */
#define MODEL_SERIES_COUNT 16
struct tz;
struct model_series {
	struct core_series_spec spec;
	struct tz *zone;
	uint32_t horizon_days;
	int64_t through; /* generated through (local days since 1970); -1 */
};
extern struct model_series model_series[MODEL_SERIES_COUNT]; /* id - 1 */
void model_series_add(uint64_t id, const struct core_series_spec *spec,
		      uint32_t horizon_days, core_time now);
/* A generation of every series (GENERATE, to the horizon) ran at now. */
void model_generated(core_time now);
/* The starts of the events the last SERIES_PATCH said it makes, in date
 * order (the core makes them; the test mirrors and checks them). */
uint32_t model_series_made(const core_time **starts);
/* The bookings told their event was cancelled (NOTIFY event_cancelled: an
 * event cancel, a series end) since the last call; their count. */
uint32_t model_cancel_told(const uint64_t **ids);

/* Decide and apply q (BOOK, CANCEL, PAY, EVENT_PATCH, SERIES_PATCH, TICK,
 * REMIND) as the core should; r is the answer the core should give. */
void model_apply(const struct core_req *q, struct core_resp *r);
/* The bookings the last REMIND notified (NOTIFY reminder), in event and
 * booking order; their count (r->count of that REMIND). */
uint32_t model_reminded(const uint64_t **ids);

/* What the API layer would hash for an idempotency fingerprint. */
uint64_t model_fingerprint(const struct core_req *q);

/* Mirror a generated event: a known id is skipped; false when the event is
 * not empty or the table is full. */
bool model_event_add(const struct core_event_view *v, char *err,
		     size_t err_size);

/* A runtime's side read through a core port at a time: the ctx of
 * model_load_events, model_list_events, model_port_event and
 * model_port_booking (EVENT_GET, BOOKING_GET; a core_call that fails goes
 * to the failure hook). */
struct model_port_reader {
	core_port *port;
	core_time now;
};

/* Lists every event through rd (model_list_events) and mirrors the new
 * ones. */
bool model_load_events(const struct model_port_reader *rd, char *err,
		       size_t err_size);

/* ---- comparing ---- */

/* Read the core's side: return an enum core_code. */
typedef int (*model_event_get_fn)(void *ctx, uint64_t id,
				  struct core_event_view *v);
typedef int (*model_booking_get_fn)(void *ctx, uint64_t id,
				    struct core_booking_view *v);

bool model_cmp_view(const char *what, const struct core_booking_view *a,
		    const struct core_booking_view *m, char *err,
		    size_t err_size);
/* a: the core's answer, m: the model's. */
bool model_cmp_resp(const struct core_resp *a, const struct core_resp *m,
		    char *err, size_t err_size);
/* The event's counts and status (and, with bookings, every booking). */
bool model_cmp_event(const struct model_event *e, model_event_get_fn eg,
		     model_booking_get_fn bg, void *ctx, bool bookings,
		     char *err, size_t err_size);
/* The model_*_get_fn of a struct model_port_reader. */
int model_port_event(void *ctx, uint64_t id, struct core_event_view *v);
int model_port_booking(void *ctx, uint64_t id, struct core_booking_view *v);
/* Lists every event through rd: false with err when one is overbooked,
 * with known when one is unknown to the model, or when each (NULL: none)
 * returns false on one; their number in *count. */
bool model_list_events(const struct model_port_reader *rd, bool known,
		       bool (*each)(void *ctx, const struct core_event_view *v,
				    char *err, size_t err_size),
		       void *ctx, uint32_t *count, char *err, size_t err_size);

/* Every event and every booking. */
bool model_cmp_all(model_event_get_fn eg, model_booking_get_fn bg, void *ctx,
		   char *err, size_t err_size);

#endif
