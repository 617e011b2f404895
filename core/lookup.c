/*
 * lookup.c: reads of the catalogue for readers outside the booking path,
 * each under the catalogue lock, which catalogue writes hold while they
 * decide and apply (so a read sees an object whole, also one a write
 * changes in place): never on a shard thread, never in a decision.
 *  - core_names_get: a booking's names for the notification sender
 *    (notify/): the org's name, the series' time zone with its offset at
 *    an instant, the customer's email and name;
 *  - core__catalog_read (CORE_OP_CATALOG_GET, _LIST through core_call,
 *    from the server's slow workers): an org, location, instructor or
 *    series by id, or a list of them in id order after a cursor id,
 *    optionally of one org.
 *  - core_org_settings_get, core_org_cutoff_ms: an org's settings, for
 *    the routes that show them and the payments that refund by the
 *    cut-off.
 */
#include "runtime.h"
#include "tz.h"

#include <errno.h>
#include <string.h>

void core_names_get(core *c, uint64_t org_id, uint64_t series_id,
		    const char *customer_id, core_time at,
		    struct core_names *out)
{
	const struct catalog *cat = c->cat;

	ASSERT(out);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->cat_lock);
	if (org_id && org_id <= cat->org_count)
		memcpy(out->org_name, cat->orgs[org_id - 1].name,
		       sizeof(out->org_name));
	const struct cat_series *s = catalog_series(cat, series_id);
	if (s) {
		memcpy(out->timezone, s->spec.timezone, sizeof(out->timezone));
		if (s->zone)
			out->utc_offset_s =
				tz_offset_at(s->zone,
					     at / 1000 - (at % 1000 < 0));
	}
	if (customer_id && customer_id[0]) {
		uint32_t slot =
			map_get(&cat->customer_by_hash,
				hash_bytes(customer_id, strlen(customer_id)));
		if (slot && slot <= cat->customer_count &&
		    strcmp(cat->customers[slot - 1].id, customer_id) == 0) {
			memcpy(out->customer_email,
			       cat->customers[slot - 1].email,
			       sizeof(out->customer_email));
			memcpy(out->customer_name,
			       cat->customers[slot - 1].name,
			       sizeof(out->customer_name));
		}
	}
	pthread_mutex_unlock(&c->cat_lock);
	ASSERT(out->org_name[CORE_NAME_SIZE_MAX - 1] == '\0');
}

int core_org_settings_get(core *c, uint64_t org_id,
			  struct core_org_settings *out)
{
	int rc = 0;

	pthread_mutex_lock(&c->cat_lock);
	if (!catalog_has(c->cat, CORE_OP_ORG_CREATE, org_id))
		rc = -ENOENT;
	catalog_org_settings(c->cat, org_id, out);
	pthread_mutex_unlock(&c->cat_lock);
	return rc;
}

core_time core_org_cutoff_ms(core *c, uint64_t org_id)
{
	/* atomic loads of a published org's slot: no lock */
	return catalog_cutoff_ms(c->cat, org_id);
}

/* The kind's objects and how many are published (ids 1..count). */
static uint32_t cat_count(const struct catalog *cat, enum core_cat_kind kind)
{
	switch (kind) {
	case CORE_CAT_ORG: return cat->org_count;
	case CORE_CAT_LOCATION: return cat->location_count;
	case CORE_CAT_INSTRUCTOR: return cat->instructor_count;
	case CORE_CAT_SERIES: return cat->series_count;
	}
	return 0;
}

/* Object id (1..cat_count) of kind into out. */
static void cat_view(const struct catalog *cat, enum core_cat_kind kind,
		     uint64_t id, struct core_cat_view *out)
{
	const struct cat_named *n = NULL;

	ASSERT(id >= 1 && id <= cat_count(cat, kind));
	memset(out, 0, sizeof(*out));
	out->kind = (uint8_t)kind;
	out->id = id;
	switch (kind) {
	case CORE_CAT_ORG: n = &cat->orgs[id - 1]; break;
	case CORE_CAT_LOCATION: n = &cat->locations[id - 1]; break;
	case CORE_CAT_INSTRUCTOR: n = &cat->instructors[id - 1]; break;
	case CORE_CAT_SERIES:
		out->series = cat->series[id - 1].spec;
		out->org_id = out->series.org_id;
		memcpy(out->name, out->series.title, sizeof(out->name));
		memcpy(out->timezone, out->series.timezone,
		       sizeof(out->timezone));
		return;
	}
	out->org_id = kind == CORE_CAT_ORG ? 0 : n->org_id;
	memcpy(out->name, n->name, sizeof(out->name));
	if (kind == CORE_CAT_ORG) {
		memcpy(out->timezone, n->timezone, sizeof(out->timezone));
		catalog_org_settings(cat, id, &out->settings);
	}
	ASSERT(out->name[CORE_NAME_SIZE_MAX - 1] == '\0');
}

static enum core_code cat_missing(enum core_cat_kind kind)
{
	switch (kind) {
	case CORE_CAT_ORG: return CORE_NO_ORG;
	case CORE_CAT_LOCATION: return CORE_NO_LOCATION;
	case CORE_CAT_INSTRUCTOR: return CORE_NO_INSTRUCTOR;
	case CORE_CAT_SERIES: return CORE_NO_SERIES;
	}
	return CORE_INVALID;
}

/* Whether object id of kind belongs to org (orgs: is it). */
static bool cat_of_org(const struct catalog *cat, enum core_cat_kind kind,
		       uint64_t id, uint64_t org_id)
{
	switch (kind) {
	case CORE_CAT_ORG: return id == org_id;
	case CORE_CAT_LOCATION: return cat->locations[id - 1].org_id == org_id;
	case CORE_CAT_INSTRUCTOR:
		return cat->instructors[id - 1].org_id == org_id;
	case CORE_CAT_SERIES: return cat->series[id - 1].spec.org_id == org_id;
	}
	return false;
}

int core__catalog_read(core *c, const struct core_req *req,
		       struct core_resp *resp)
{
	const struct catalog *cat = c->cat;
	enum core_cat_kind kind = (enum core_cat_kind)req->u.catalog.kind;
	struct core_cat_view *out = req->u.catalog.out;
	uint32_t n, limit = req->u.catalog.limit;

	ASSERT(req->op == CORE_OP_CATALOG_GET ||
	       req->op == CORE_OP_CATALOG_LIST);
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	if (kind < CORE_CAT_ORG || kind > CORE_CAT_SERIES || !out ||
	    (req->op == CORE_OP_CATALOG_LIST &&
	     (limit == 0 || limit > CORE_LIST_LIMIT_MAX))) {
		resp->code = CORE_INVALID;
		return 0;
	}
	pthread_mutex_lock(&c->cat_lock);
	n = cat_count(cat, kind);
	if (req->op == CORE_OP_CATALOG_GET) {
		if (req->u.catalog.id == 0 || req->u.catalog.id > n) {
			resp->code = cat_missing(kind);
		} else {
			cat_view(cat, kind, req->u.catalog.id, out);
			resp->count = 1;
			resp->id = req->u.catalog.id;
		}
	} else {
		/* Ids are dense: a list is a walk from the cursor on. */
		uint64_t from = req->u.catalog.after_id < n
					? req->u.catalog.after_id + 1
					: (uint64_t)n + 1;

		for (uint64_t id = from; id <= n && !resp->more; id++) {
			if (req->u.catalog.org_id &&
			    !cat_of_org(cat, kind, id, req->u.catalog.org_id))
				continue;
			if (resp->count == limit)
				resp->more = true;
			else
				cat_view(cat, kind, id, &out[resp->count++]);
		}
	}
	pthread_mutex_unlock(&c->cat_lock);
	ASSERT(resp->count <= (req->op == CORE_OP_CATALOG_GET ? 1 : limit));
	return 0;
}
