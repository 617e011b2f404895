/*
 * lookup.c: the catalogue's names of a booking, for readers outside the
 * booking path (the notification sender, notify/): the org's name, the
 * series' time zone with its offset at an instant, the customer's email
 * and name (core_names_get in core.h). A read under the catalogue lock,
 * which catalogue writes hold while they decide and apply: never on a
 * shard thread, never in a decision. Also an org's settings
 * (core_org_settings_get, core_org_cutoff_ms), for the routes that show
 * them and the payments that refund by the cut-off.
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
