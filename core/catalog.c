/*
 * catalog.c: the catalogue (orgs, locations, instructors, customers, series)
 * and the generation of dated events from series.
 *
 * Ids are dense per kind (1, 2, 3, ...) and index arrays allocated once, so
 * an object's address never changes: shard threads read a series (its title)
 * without a lock, having learnt of it through a ring (release/acquire).
 * Decisions here only read; records change the catalogue in catalog_apply.
 *
 * Generation: a series is a weekly pattern in an IANA zone. For each local
 * date from max(first_date, today in the zone, generated_through + 1) up to
 * min(last_date, until) whose weekday is in the pattern and that is not
 * skipped, the local start is converted to UTC with that date's offset, so
 * 18:00 stays 18:00 across DST changes. Classes already started are not
 * generated. Every chunk ends with a CORE_REC_SERIES_GENERATED record, so running
 * generation again continues where it stopped and never duplicates.
 */
#include "catalog.h"
#include "tz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)

static uint32_t series_count(const struct catalog *cat);

static void *zalloc(size_t count, size_t size)
{
	return calloc(count ? count : 1, size);
}

struct catalog *catalog_new(uint32_t count_max, uint32_t horizon_days,
			    uint32_t generate_max_days)
{
	struct catalog *cat = calloc(1, sizeof(*cat));

	if (!cat)
		return NULL;
	cat->count_max = count_max;
	cat->horizon_days = horizon_days;
	cat->generate_max_days = generate_max_days;
	cat->next_event_id = 1;
	cat->orgs = zalloc(count_max, sizeof(*cat->orgs));
	cat->org_settings = zalloc(count_max, sizeof(*cat->org_settings));
	cat->locations = zalloc(count_max, sizeof(*cat->locations));
	cat->instructors = zalloc(count_max, sizeof(*cat->instructors));
	cat->series = zalloc(count_max, sizeof(*cat->series));
	cat->customers = zalloc(count_max, sizeof(*cat->customers));
	if (!cat->orgs || !cat->org_settings || !cat->locations ||
	    !cat->instructors || !cat->series || !cat->customers ||
	    map_init(&cat->customer_by_hash, 64) != 0 ||
	    map_init(&cat->legacy_by_hash, 64) != 0) {
		catalog_free(cat);
		return NULL;
	}
	return cat;
}

void catalog_free(struct catalog *cat)
{
	if (!cat)
		return;
	for (uint32_t i = 0; i < cat->series_count; i++) {
		struct cat_title *t = cat->series[i].retitled;
		tz_free(cat->series[i].zone);
		while (t) {
			struct cat_title *older = t->older;
			free(t);
			t = older;
		}
	}
	free(cat->orgs);
	free(cat->org_settings);
	free(cat->locations);
	free(cat->instructors);
	free(cat->series);
	free(cat->customers);
	free(cat->legacy);
	map_free(&cat->customer_by_hash);
	map_free(&cat->legacy_by_hash);
	free(cat);
}

const struct cat_series *catalog_series(const struct catalog *cat, uint64_t id)
{
	if (id == 0 || id > series_count(cat))
		return NULL;
	return &cat->series[id - 1];
}

/* Counts are published with release stores after the object is written,
 * and read with acquire loads: readers on other threads see whole objects. */
static uint32_t count_get(const uint32_t *count)
{
	return __atomic_load_n(count, __ATOMIC_ACQUIRE);
}

static void count_publish(uint32_t *count, uint32_t n)
{
	__atomic_store_n(count, n, __ATOMIC_RELEASE);
}

static uint32_t series_count(const struct catalog *cat)
{
	return count_get(&cat->series_count);
}

static const struct cat_named *named(const struct catalog *cat,
				     enum core_op kind, uint64_t id)
{
	const struct cat_named *arr;
	uint32_t n;

	switch (kind) {
	case CORE_OP_ORG_CREATE:
		arr = cat->orgs, n = count_get(&cat->org_count);
		break;
	case CORE_OP_LOCATION_CREATE:
		arr = cat->locations, n = count_get(&cat->location_count);
		break;
	case CORE_OP_INSTRUCTOR_CREATE:
		arr = cat->instructors, n = count_get(&cat->instructor_count);
		break;
	default: return NULL;
	}
	return id && id <= n ? &arr[id - 1] : NULL;
}

bool catalog_has(const struct catalog *cat, enum core_op kind, uint64_t id)
{
	return named(cat, kind, id) != NULL;
}

/* ---- org settings ----
 *
 * Read by shard threads while a patch changes them: each field is one
 * atomic load or store (a reader may see one field of a patch before
 * another; each decision records what it used: a hold's expiry, a
 * cancel's late flag). An org's slot is written (its defaults) before the
 * org is published. */

static const struct core_org_settings org_defaults = {
	.cancel_cutoff_hours = CORE_CUTOFF_HOURS_DEFAULT,
};

void catalog_org_settings(const struct catalog *cat, uint64_t org_id,
			  struct core_org_settings *out)
{
	const struct cat_org_settings *o;

	if (!named(cat, CORE_OP_ORG_CREATE, org_id)) {
		*out = org_defaults;
		return;
	}
	o = &cat->org_settings[org_id - 1];
	out->cancel_cutoff_hours =
		__atomic_load_n(&o->cancel_cutoff_hours, __ATOMIC_RELAXED);
	out->hold_minutes = __atomic_load_n(&o->hold_minutes, __ATOMIC_RELAXED);
	out->horizon_days = __atomic_load_n(&o->horizon_days, __ATOMIC_RELAXED);
}

static void org_settings_store(struct catalog *cat, uint64_t org_id,
			       const struct core_org_settings *s)
{
	struct cat_org_settings *o = &cat->org_settings[org_id - 1];

	__atomic_store_n(&o->cancel_cutoff_hours, s->cancel_cutoff_hours,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&o->hold_minutes, s->hold_minutes, __ATOMIC_RELAXED);
	__atomic_store_n(&o->horizon_days, s->horizon_days, __ATOMIC_RELAXED);
}

core_time catalog_cutoff_ms(const struct catalog *cat, uint64_t org_id)
{
	struct core_org_settings s;

	catalog_org_settings(cat, org_id, &s);
	return (core_time)s.cancel_cutoff_hours * 3600 * 1000;
}

core_time catalog_hold_ms(const struct catalog *cat, uint64_t org_id,
			  core_time hold_ms)
{
	struct core_org_settings s;

	catalog_org_settings(cat, org_id, &s);
	return s.hold_minutes ? (core_time)s.hold_minutes * 60 * 1000 : hold_ms;
}

/* The series' horizon: its org's, else the core's. */
static uint32_t horizon_of(const struct catalog *cat, uint64_t org_id)
{
	struct core_org_settings s;

	catalog_org_settings(cat, org_id, &s);
	return s.horizon_days ? s.horizon_days : cat->horizon_days;
}

/* Within the format's ranges (applying checks these: they do not depend
 * on the configuration the log is replayed under). */
static bool org_settings_ok(const struct core_org_settings *s)
{
	return s->cancel_cutoff_hours <= CORE_CUTOFF_HOURS_MAX &&
	       s->hold_minutes <= CORE_HOLD_MINUTES_MAX;
}

/* The settings a create or a patch leaves: those it gives over `now`. */
static bool org_settings_merge(const struct catalog *cat,
			       const struct core_req *req,
			       struct core_org_settings *now)
{
	const struct core_org_settings *in = &req->u.cat.settings;
	uint8_t set = req->u.cat.settings_set;

	if (set &
	    ~(CORE_ORG_SET_CUTOFF | CORE_ORG_SET_HOLD | CORE_ORG_SET_HORIZON))
		return false;
	if (set & CORE_ORG_SET_CUTOFF)
		now->cancel_cutoff_hours = in->cancel_cutoff_hours;
	if (set & CORE_ORG_SET_HOLD)
		now->hold_minutes = in->hold_minutes;
	if (set & CORE_ORG_SET_HORIZON)
		now->horizon_days = in->horizon_days;
	/* a horizon at most as far as generation may go */
	return org_settings_ok(now) &&
	       now->horizon_days <= cat->generate_max_days;
}

void core__event_title(const struct catalog *cat, struct core_event_view *v)
{
	const struct cat_series *s = catalog_series(cat, v->series_id);

	const struct cat_title *t;
	const char *title;

	v->title[0] = '\0';
	if (!s)
		return;
	title = s->spec.title;
	for (t = __atomic_load_n(&s->retitled, __ATOMIC_ACQUIRE);
	     t && v->id < t->first_event_id; t = t->older)
		title = t->title; /* made before that edit */
	memcpy(v->title, title, sizeof(v->title));
}

/* The characters of a customer id: A-Za-z0-9._:@- (one look-up each: every
 * booking checks its id). */
static const bool customer_id_char[256] = {
	['A' ... 'Z'] = true, ['a' ... 'z'] = true, ['0' ... '9'] = true,
	['.'] = true,	      ['_'] = true,	    [':'] = true,
	['@'] = true,	      ['-'] = true,
};

bool core__customer_id_ok(const char *id)
{
	size_t n = 0;

	/* id is a field of CORE_CUSTOMER_ID_SIZE_MAX + 1 bytes: never read
	 * past it. */
	while (n <= CORE_CUSTOMER_ID_SIZE_MAX &&
	       customer_id_char[(unsigned char)id[n]])
		n++;
	return n > 0 && n <= CORE_CUSTOMER_ID_SIZE_MAX && id[n] == '\0';
}

/* ---- dates ---- */

static int64_t date_days(struct core_date d)
{
	return tz_days_from_civil(d.year, d.month, d.day);
}

static struct core_date days_date(int64_t days)
{
	int y, m, d;
	tz_civil_from_days(days, &y, &m, &d);
	return (struct core_date){ (int16_t)y, (int8_t)m, (int8_t)d };
}

static bool date_ok(struct core_date d)
{
	return tz_date_valid(d.year, d.month, d.day);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Today's date in zone z at UTC instant now. */
static int64_t today_days(const struct tz *z, core_time now)
{
	int64_t s = floor_div(now, 1000);
	return floor_div(s + tz_offset_at(z, s), 86400);
}

/* ---- decisions ---- */

static bool name_ok(const char *s, size_t field_size)
{
	size_t n = strnlen(s, field_size);
	return n > 0 && n < field_size;
}

static bool zone_ok(const char *name)
{
	struct tz *z;

	if (tz_load(name, &z) != 0)
		return false;
	tz_free(z);
	return true;
}

static bool currency_ok(const char *c, uint32_t price_cents)
{
	if (price_cents == 0 && c[0] == '\0')
		return true;
	for (int i = 0; i < 3; i++)
		if (c[i] < 'a' || c[i] > 'z')
			return false;
	return c[3] == '\0';
}

static enum core_code series_check(const struct catalog *cat,
				   const struct core_series_spec *s)
{
	const struct cat_named *loc, *ins;

	if (!named(cat, CORE_OP_ORG_CREATE, s->org_id))
		return CORE_NO_ORG;
	loc = named(cat, CORE_OP_LOCATION_CREATE, s->location_id);
	if (!loc || loc->org_id != s->org_id)
		return CORE_NO_LOCATION;
	ins = named(cat, CORE_OP_INSTRUCTOR_CREATE, s->instructor_id);
	if (!ins || ins->org_id != s->org_id)
		return CORE_NO_INSTRUCTOR;
	if (!name_ok(s->title, sizeof(s->title)) ||
	    s->capacity > CORE_CAPACITY_MAX ||
	    s->waitlist_capacity > CORE_CAPACITY_MAX ||
	    s->price_cents > CORE_PRICE_CENTS_MAX ||
	    !currency_ok(s->currency, s->price_cents) ||
	    (s->weekday_mask & 0x7f) == 0 || s->weekday_mask > 0x7f ||
	    s->start_minute >= CORE_DAY_MINUTES || s->duration_min == 0 ||
	    s->duration_min > CORE_DURATION_MIN_MAX ||
	    !date_ok(s->first_date) || s->skip_count > CORE_SKIP_DATE_COUNT_MAX)
		return CORE_INVALID;
	if (s->last_date.year != 0 &&
	    (!date_ok(s->last_date) ||
	     date_days(s->last_date) < date_days(s->first_date)))
		return CORE_INVALID;
	for (uint32_t i = 0; i < s->skip_count; i++)
		if (!date_ok(s->skip[i]))
			return CORE_INVALID;
	if (!name_ok(s->timezone, sizeof(s->timezone)) || !zone_ok(s->timezone))
		return CORE_INVALID;
	return CORE_OK;
}

enum core_code catalog_series_check(const struct catalog *cat,
				    const struct core_series_spec *s)
{
	return series_check(cat, s);
}

enum core_code catalog_decide(const struct catalog *cat,
			      const struct core_req *req,
			      struct core_resp *resp, struct wbuf *w)
{
	struct core_rec r = { .at = req->now };
	enum core_code code;

	switch (req->op) {
	case CORE_OP_ORG_CREATE:
		if (!name_ok(req->u.cat.name, sizeof(req->u.cat.name)) ||
		    !name_ok(req->u.cat.timezone,
			     sizeof(req->u.cat.timezone)) ||
		    !zone_ok(req->u.cat.timezone))
			return CORE_INVALID;
		resp->org = org_defaults;
		if (!org_settings_merge(cat, req, &resp->org))
			return CORE_INVALID;
		if (cat->org_count == cat->count_max)
			return CORE_FULL;
		r.type = CORE_REC_ORG;
		r.u.cat.id = cat->org_count + 1;
		memcpy(r.u.cat.timezone, req->u.cat.timezone,
		       sizeof(r.u.cat.timezone));
		break;
	case CORE_OP_ORG_PATCH:
		if (!named(cat, CORE_OP_ORG_CREATE, req->u.cat.org_id))
			return CORE_NO_ORG;
		catalog_org_settings(cat, req->u.cat.org_id, &resp->org);
		if (!org_settings_merge(cat, req, &resp->org))
			return CORE_INVALID;
		r.type = CORE_REC_ORG_SETTINGS;
		r.u.org_settings.org_id = req->u.cat.org_id;
		r.u.org_settings.s = resp->org;
		rec_encode(w, &r);
		if (w->overflow)
			return CORE_INVALID;
		resp->id = req->u.cat.org_id;
		return CORE_OK;
	case CORE_OP_LOCATION_CREATE:
	case CORE_OP_INSTRUCTOR_CREATE: {
		uint32_t n = req->op == CORE_OP_LOCATION_CREATE
				     ? cat->location_count
				     : cat->instructor_count;
		if (!name_ok(req->u.cat.name, sizeof(req->u.cat.name)))
			return CORE_INVALID;
		if (!named(cat, CORE_OP_ORG_CREATE, req->u.cat.org_id))
			return CORE_NO_ORG;
		if (n == cat->count_max)
			return CORE_FULL;
		r.type = req->op == CORE_OP_LOCATION_CREATE
				 ? CORE_REC_LOCATION
				 : CORE_REC_INSTRUCTOR;
		r.u.cat.id = n + 1;
		r.u.cat.org_id = req->u.cat.org_id;
		break;
	}
	case CORE_OP_CUSTOMER_UPSERT:
		if (!core__customer_id_ok(req->customer_id))
			return CORE_INVALID;
		if (cat->customer_count == cat->count_max)
			return CORE_FULL;
		r.type = CORE_REC_CUSTOMER;
		memcpy(r.u.customer.id, req->customer_id,
		       sizeof(r.u.customer.id));
		memcpy(r.u.customer.email, req->u.cat.email,
		       sizeof(r.u.customer.email));
		memcpy(r.u.customer.name, req->u.cat.name,
		       sizeof(r.u.customer.name));
		r.u.customer.email[sizeof(r.u.customer.email) - 1] = '\0';
		r.u.customer.name[sizeof(r.u.customer.name) - 1] = '\0';
		break;
	case CORE_OP_ARCHIVE:
		if (req->u.archive.days < 1 || req->u.archive.days > 36600)
			return CORE_INVALID;
		r.type = CORE_REC_ARCHIVE;
		r.u.archive.before =
			req->now - (core_time)req->u.archive.days * DAY_MS;
		rec_encode(w, &r);
		return w->overflow ? CORE_INVALID : CORE_OK;
	case CORE_OP_SERIES_CREATE:
		if (!req->u.series)
			return CORE_INVALID;
		code = series_check(cat, req->u.series);
		if (code != CORE_OK)
			return code;
		if (cat->series_count == cat->count_max)
			return CORE_FULL;
		r.type = CORE_REC_SERIES;
		r.u.series.id = cat->series_count + 1;
		r.u.series.spec = *req->u.series;
		resp->count = catalog_planned(cat, req->u.series, req->now);
		break;
	default: return CORE_INVALID;
	}
	if (r.type == CORE_REC_ORG || r.type == CORE_REC_LOCATION ||
	    r.type == CORE_REC_INSTRUCTOR) {
		memcpy(r.u.cat.name, req->u.cat.name, sizeof(r.u.cat.name));
		r.u.cat.name[sizeof(r.u.cat.name) - 1] = '\0';
	}
	rec_encode(w, &r);
	if (r.type == CORE_REC_ORG && req->u.cat.settings_set) {
		uint64_t id = r.u.cat.id;

		memset(&r.u, 0, sizeof(r.u));
		r.type = CORE_REC_ORG_SETTINGS;
		r.u.org_settings.org_id = id;
		r.u.org_settings.s = resp->org;
		rec_encode(w, &r);
		r.u.cat.id = id;
	}
	if (w->overflow)
		return CORE_INVALID;
	resp->id = r.type == CORE_REC_SERIES ? r.u.series.id : r.u.cat.id;
	return CORE_OK;
}

static bool skipped(const struct core_series_spec *s, int64_t day)
{
	for (uint32_t i = 0; i < s->skip_count; i++)
		if (date_days(s->skip[i]) == day)
			return true;
	return false;
}

/* The local dates [*from, *to] still to generate; false if none. */
static bool series_window(const struct catalog *cat,
			  const struct core_series_spec *spec,
			  const struct tz *zone, struct core_date through,
			  struct core_date until, core_time now, int64_t *from,
			  int64_t *to)
{
	int64_t today = today_days(zone, now);

	*from = date_days(spec->first_date);
	if (*from < today)
		*from = today;
	if (through.year && *from <= date_days(through))
		*from = date_days(through) + 1;
	*to = until.year ? date_days(until)
			 : today + horizon_of(cat, spec->org_id);
	if (spec->last_date.year && *to > date_days(spec->last_date))
		*to = date_days(spec->last_date);
	return *from <= *to;
}

/* The UTC start of the class on local day `day`, or 0 if there is none. */
static core_time class_start(const struct core_series_spec *spec,
			     const struct tz *zone, int64_t day, core_time now)
{
	core_time start_at;

	if (!(spec->weekday_mask & (1u << tz_weekday(day))) ||
	    skipped(spec, day))
		return 0;
	start_at =
		tz_local_to_utc(zone, day * 86400 + spec->start_minute * 60) *
		1000;
	return start_at > now ? start_at : 0;
}

uint32_t catalog_planned(const struct catalog *cat,
			 const struct core_series_spec *spec, core_time now)
{
	struct core_date none = { 0, 0, 0 };
	struct tz *zone;
	int64_t from, to;
	uint32_t n = 0;

	if (tz_load(spec->timezone, &zone) != 0)
		return 0;
	if (series_window(cat, spec, zone, none, none, now, &from, &to))
		for (int64_t day = from; day <= to; day++)
			n += class_start(spec, zone, day, now) != 0;
	tz_free(zone);
	return n;
}

/* `until` at most generate_max_days after today (UTC; a zone's today is
 * at most a day off, which the limit's size makes moot). */
static enum core_code until_check(const struct catalog *cat,
				  struct core_date until, core_time now,
				  struct core_resp *resp)
{
	if (!until.year)
		return CORE_OK;
	if (!date_ok(until))
		return CORE_INVALID;
	if (date_days(until) >
	    floor_div(now, DAY_MS) + cat->generate_max_days) {
		resp->id = CORE_LIMIT_GENERATE_DAYS;
		resp->count = cat->generate_max_days;
		return CORE_LIMIT;
	}
	return CORE_OK;
}

enum core_code catalog_generate_plan(const struct catalog *cat,
				     uint64_t series_id, struct core_date until,
				     core_time now, uint64_t *count,
				     struct core_resp *resp)
{
	enum core_code code = until_check(cat, until, now, resp);
	uint32_t first = 0, n = series_count(cat);

	*count = 0;
	if (code != CORE_OK)
		return code;
	if (series_id) {
		if (!catalog_series(cat, series_id))
			return CORE_NO_SERIES;
		first = (uint32_t)(series_id - 1);
		n = first + 1;
	}
	for (uint32_t i = first; i < n; i++) {
		const struct cat_series *s = &cat->series[i];
		int64_t from, to;

		if (!series_window(cat, &s->spec, s->zone, s->generated_through,
				   until, now, &from, &to))
			continue;
		for (int64_t day = from; day <= to; day++)
			*count += class_start(&s->spec, s->zone, day, now) != 0;
	}
	return CORE_OK;
}

enum core_code catalog_generate(struct catalog *cat, uint64_t series_id,
				struct core_date until, core_time now,
				struct core_resp *resp, struct wbuf *w)
{
	enum core_code code;

	const struct cat_series *s = NULL;
	int64_t from = 0, to = -1;
	uint64_t next_id = cat->next_event_id;
	struct core_rec r = { .at = now };

	resp->count = 0;
	resp->more = false;
	code = until_check(cat, until, now, resp);
	if (code != CORE_OK)
		return code;
	if (series_id) {
		s = catalog_series(cat, series_id);
		if (!s)
			return CORE_NO_SERIES;
		if (!series_window(cat, &s->spec, s->zone, s->generated_through,
				   until, now, &from, &to))
			return CORE_OK;
	} else {
		/* Each series in turn, starting where the last call found work
		 * (a hint only: the whole ring of series is looked at). */
		uint32_t n = series_count(cat);
		for (uint32_t k = 0; k < n && !s; k++) {
			uint32_t i = (cat->generate_hint + k) % n;
			if (series_window(cat, &cat->series[i].spec,
					  cat->series[i].zone,
					  cat->series[i].generated_through,
					  until, now, &from, &to)) {
				s = &cat->series[i];
				cat->generate_hint = i;
			}
		}
		if (!s)
			return CORE_OK;
		series_id = (uint64_t)(s - cat->series) + 1;
	}

	int64_t day = from;
	for (; day <= to; day++) {
		core_time start_at = class_start(&s->spec, s->zone, day, now);

		if (!start_at)
			continue;
		if (next_id > CORE_EVENT_ID_MAX)
			return CORE_FULL;
		memset(&r.u, 0, sizeof(r.u));
		r.type = CORE_REC_EVENT_CREATE;
		r.u.event.id = next_id++;
		r.u.event.series_id = series_id;
		r.u.event.org_id = s->spec.org_id;
		r.u.event.location_id = s->spec.location_id;
		r.u.event.instructor_id = s->spec.instructor_id;
		r.u.event.start_at = start_at;
		r.u.event.duration_min = s->spec.duration_min;
		r.u.event.capacity = s->spec.capacity;
		r.u.event.waitlist_capacity = s->spec.waitlist_capacity;
		r.u.event.price_cents = s->spec.price_cents;
		memcpy(r.u.event.currency, s->spec.currency, 4);
		rec_encode(w, &r);
		if (++resp->count == CORE_GENERATE_CHUNK_MAX)
			break;
	}
	if (day > to)
		day = to;
	memset(&r.u, 0, sizeof(r.u));
	r.type = CORE_REC_SERIES_GENERATED;
	r.u.generated.series_id = series_id;
	r.u.generated.through = days_date(day);
	rec_encode(w, &r);
	ASSERT(!w->overflow);
	resp->more = true; /* an entry was made: the caller asks again */
	resp->id = series_id;
	return CORE_OK;
}

/* ---- legacy ids (imports) ---- */

uint64_t catalog_legacy_hash(uint8_t kind, const char *id)
{
	char key[CORE_LEGACY_ID_SIZE_MAX + 2];
	size_t n = strnlen(id, CORE_LEGACY_ID_SIZE_MAX + 1);

	key[0] = (char)kind;
	memcpy(key + 1, id, n);
	return hash_bytes(key, n + 1);
}

int catalog_legacy_find(const struct catalog *cat, uint8_t kind, const char *id,
			const struct cat_legacy **out)
{
	uint32_t slot =
		map_get(&cat->legacy_by_hash, catalog_legacy_hash(kind, id));
	const struct cat_legacy *l;

	if (!slot)
		return -ENOENT;
	ASSERT(slot <= cat->legacy_count);
	l = &cat->legacy[slot - 1];
	if (l->kind != kind || strcmp(l->id, id) != 0)
		return -EEXIST;
	*out = l;
	return 0;
}

int catalog_legacy_reserve(struct catalog *cat, uint32_t n)
{
	uint64_t need = (uint64_t)cat->legacy_count + n;

	if (need > cat->legacy_cap) {
		uint64_t cap = cat->legacy_cap ? cat->legacy_cap : 1024;
		void *p;
		while (cap < need)
			cap *= 2;
		if (cap > UINT32_MAX / 2)
			return -ENOMEM;
		p = realloc(cat->legacy, cap * sizeof(*cat->legacy));
		if (!p)
			return -ENOMEM;
		cat->legacy = p;
		cat->legacy_cap = (uint32_t)cap;
	}
	return map_reserve(&cat->legacy_by_hash, n) ? -ENOMEM : 0;
}

/* LEGACY: a new (kind, id); the import checked it was not there. */
static int legacy_apply(struct catalog *cat, const struct core_rec *r)
{
	const struct cat_legacy *old;
	struct cat_legacy *l;

	if (r->u.legacy.kind == 0 ||
	    r->u.legacy.kind >= CORE_LEGACY_KIND_COUNT ||
	    r->u.legacy.id[0] == '\0' ||
	    catalog_legacy_find(cat, r->u.legacy.kind, r->u.legacy.id, &old) !=
		    -ENOENT)
		return -EINVAL;
	if (catalog_legacy_reserve(cat, 1) != 0)
		return -ENOMEM;
	if (map_put(&cat->legacy_by_hash,
		    catalog_legacy_hash(r->u.legacy.kind, r->u.legacy.id),
		    cat->legacy_count + 1) != 0)
		return -ENOMEM;
	l = &cat->legacy[cat->legacy_count++];
	memset(l, 0, sizeof(*l));
	l->kind = r->u.legacy.kind;
	l->bookd_id = r->u.legacy.bookd_id;
	memcpy(l->id, r->u.legacy.id, sizeof(l->id));
	memcpy(l->detail, r->u.legacy.detail, sizeof(l->detail));
	return 0;
}

/* ---- applying records ---- */

static int named_apply(struct cat_named *arr, uint32_t *count,
		       const struct catalog *cat, const struct core_rec *r)
{
	if (r->u.cat.id != (uint64_t)*count + 1 || *count == cat->count_max)
		return -EINVAL;
	struct cat_named *o = &arr[*count];
	o->org_id = r->u.cat.org_id;
	memcpy(o->name, r->u.cat.name, sizeof(o->name));
	memcpy(o->timezone, r->u.cat.timezone, sizeof(o->timezone));
	count_publish(count, *count + 1);
	return 0;
}

int catalog_apply(struct catalog *cat, const struct core_rec *r)
{
	switch (r->type) {
	case CORE_REC_ORG:
		if (r->u.cat.id == (uint64_t)cat->org_count + 1 &&
		    cat->org_count < cat->count_max)
			org_settings_store(cat, r->u.cat.id, &org_defaults);
		return named_apply(cat->orgs, &cat->org_count, cat, r);
	case CORE_REC_ORG_SETTINGS:
		if (!named(cat, CORE_OP_ORG_CREATE, r->u.org_settings.org_id) ||
		    !org_settings_ok(&r->u.org_settings.s))
			return -EINVAL;
		org_settings_store(cat, r->u.org_settings.org_id,
				   &r->u.org_settings.s);
		return 0;
	case CORE_REC_LOCATION:
		return named_apply(cat->locations, &cat->location_count, cat,
				   r);
	case CORE_REC_INSTRUCTOR:
		return named_apply(cat->instructors, &cat->instructor_count,
				   cat, r);
	case CORE_REC_CUSTOMER: {
		uint64_t h =
			hash_bytes(r->u.customer.id, strlen(r->u.customer.id));
		uint32_t slot = map_get(&cat->customer_by_hash, h);
		if (!slot) {
			if (cat->customer_count == cat->count_max)
				return -EINVAL;
			slot = ++cat->customer_count;
			if (map_put(&cat->customer_by_hash, h, slot) != 0)
				return -EINVAL;
		}
		struct cat_customer *c = &cat->customers[slot - 1];
		memcpy(c->id, r->u.customer.id, sizeof(c->id));
		memcpy(c->email, r->u.customer.email, sizeof(c->email));
		memcpy(c->name, r->u.customer.name, sizeof(c->name));
		return 0;
	}
	case CORE_REC_SERIES: {
		struct cat_series *s;
		if (r->u.series.id != (uint64_t)cat->series_count + 1 ||
		    cat->series_count == cat->count_max)
			return -EINVAL;
		s = &cat->series[cat->series_count];
		memset(s, 0, sizeof(*s));
		s->spec = r->u.series.spec;
		if (tz_load(s->spec.timezone, &s->zone) != 0)
			return -EINVAL;
		count_publish(&cat->series_count, cat->series_count + 1);
		return 0;
	}
	case CORE_REC_SERIES_EDIT: {
		/* the spec as it is now; what places and dates it in time
		 * stays (series_edit.c decides only such edits). Shards read
		 * the title: applied while they are parked, or replayed. */
		struct cat_series *s =
			(struct cat_series *)catalog_series(cat,
							    r->u.series.id);
		const struct core_series_spec *n = &r->u.series.spec;
		if (!s || n->org_id != s->spec.org_id ||
		    n->location_id != s->spec.location_id ||
		    n->instructor_id != s->spec.instructor_id ||
		    strcmp(n->timezone, s->spec.timezone) != 0 ||
		    (s->retitled &&
		     r->u.series.first_event_id < s->retitled->first_event_id))
			return -EINVAL;
		if (strcmp(n->title, s->spec.title) != 0) {
			struct cat_title *t = calloc(1, sizeof(*t));
			if (!t)
				return -ENOMEM;
			t->first_event_id = r->u.series.first_event_id;
			memcpy(t->title, s->spec.title, sizeof(t->title));
			t->older = s->retitled;
			__atomic_store_n(&s->retitled, t, __ATOMIC_RELEASE);
		}
		s->spec = *n;
		return 0;
	}
	case CORE_REC_SERIES_GENERATED: {
		struct cat_series *s = (struct cat_series *)
			catalog_series(cat, r->u.generated.series_id);
		if (!s || !date_ok(r->u.generated.through))
			return -EINVAL;
		s->generated_through = r->u.generated.through;
		return 0;
	}
	case CORE_REC_EVENT_CREATE:
		if (r->u.event.id >= cat->next_event_id)
			cat->next_event_id = r->u.event.id + 1;
		return 0;
	case CORE_REC_LEGACY: return legacy_apply(cat, r);
	default: return 0; /* not the catalogue's */
	}
}

static void dump_named(const struct cat_named *arr, uint32_t n, uint8_t type,
		       rec_sink fn, void *ctx)
{
	struct core_rec r = { .type = type };

	for (uint32_t i = 0; i < n; i++) {
		r.u.cat.id = i + 1;
		r.u.cat.org_id = arr[i].org_id;
		memcpy(r.u.cat.name, arr[i].name, sizeof(r.u.cat.name));
		memcpy(r.u.cat.timezone, arr[i].timezone,
		       sizeof(r.u.cat.timezone));
		fn(ctx, &r);
	}
}

/* The SERIES_EDIT records that give t's series its titles, oldest first:
 * at t->first_event_id the title became `newer` (r: the series' SERIES
 * record, reused). */
static void dump_retitles(const struct cat_title *t, const char *newer,
			  struct core_rec *r, rec_sink fn, void *ctx)
{
	if (t->older)
		dump_retitles(t->older, t->title, r, fn, ctx);
	r->type = CORE_REC_SERIES_EDIT;
	r->u.series.first_event_id = t->first_event_id;
	memcpy(r->u.series.spec.title, newer, sizeof(r->u.series.spec.title));
	fn(ctx, r);
}

void catalog_dump(const struct catalog *cat, rec_sink fn, void *ctx)
{
	struct core_rec r;

	dump_named(cat->orgs, cat->org_count, CORE_REC_ORG, fn, ctx);
	for (uint32_t i = 0; i < cat->org_count; i++) {
		memset(&r, 0, sizeof(r));
		r.type = CORE_REC_ORG_SETTINGS;
		r.u.org_settings.org_id = i + 1;
		catalog_org_settings(cat, i + 1, &r.u.org_settings.s);
		if (memcmp(&r.u.org_settings.s, &org_defaults,
			   sizeof(org_defaults)) != 0)
			fn(ctx, &r);
	}
	dump_named(cat->locations, cat->location_count, CORE_REC_LOCATION, fn,
		   ctx);
	dump_named(cat->instructors, cat->instructor_count, CORE_REC_INSTRUCTOR,
		   fn, ctx);
	for (uint32_t i = 0; i < cat->customer_count; i++) {
		memset(&r, 0, sizeof(r));
		r.type = CORE_REC_CUSTOMER;
		memcpy(r.u.customer.id, cat->customers[i].id,
		       sizeof(r.u.customer.id));
		memcpy(r.u.customer.email, cat->customers[i].email,
		       sizeof(r.u.customer.email));
		memcpy(r.u.customer.name, cat->customers[i].name,
		       sizeof(r.u.customer.name));
		fn(ctx, &r);
	}
	for (uint32_t i = 0; i < cat->series_count; i++) {
		const struct cat_title *t = cat->series[i].retitled;

		/* its first title, then each later one as a SERIES_EDIT */
		memset(&r, 0, sizeof(r));
		r.type = CORE_REC_SERIES;
		r.u.series.id = i + 1;
		r.u.series.spec = cat->series[i].spec;
		while (t && t->older)
			t = t->older;
		if (t)
			memcpy(r.u.series.spec.title, t->title,
			       sizeof(r.u.series.spec.title));
		fn(ctx, &r);
		if (cat->series[i].retitled)
			dump_retitles(cat->series[i].retitled,
				      cat->series[i].spec.title, &r, fn, ctx);
		if (cat->series[i].generated_through.year) {
			memset(&r, 0, sizeof(r));
			r.type = CORE_REC_SERIES_GENERATED;
			r.u.generated.series_id = i + 1;
			r.u.generated.through =
				cat->series[i].generated_through;
			fn(ctx, &r);
		}
	}
	for (uint32_t i = 0; i < cat->legacy_count; i++) {
		const struct cat_legacy *l = &cat->legacy[i];
		memset(&r, 0, sizeof(r));
		r.type = CORE_REC_LEGACY;
		r.u.legacy.kind = l->kind;
		r.u.legacy.bookd_id = l->bookd_id;
		memcpy(r.u.legacy.id, l->id, sizeof(r.u.legacy.id));
		memcpy(r.u.legacy.detail, l->detail, sizeof(r.u.legacy.detail));
		fn(ctx, &r);
	}
}
