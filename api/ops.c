/*
 * ops.c: the table of operations (ops.h). One row per operation; the
 * order of enum op_id. A path's methods are the rows sharing it; its Allow
 * header is made from them (GET, HEAD, POST, PATCH, OPTIONS in that order).
 *
 * Known difference kept from before the table: the binary "status" is
 * answered before the rate limits (bin.c), while HTTP's GET
 * /v1/admin/status takes from the service key's bucket like any call.
 */
#include "ops.h"
#include "bookd_assert.h"

#include <errno.h>
#include <string.h>

#define OPS_SEG_COUNT_MAX 5

static const struct op_def ops[OP_COUNT] = {
	/* id, name, HTTP method,
	 * path,
	 * binary op, access, idempotency,
	 * limit class, core op, creates */
	[OP_EVENT_LIST] = {
		OP_EVENT_LIST, "event.list", OP_GET,
		"/v1/events",
		MP_OP_EVENT_LIST, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_EVENT_LIST, false,
	},
	[OP_EVENT_GET] = {
		OP_EVENT_GET, "event.get", OP_GET,
		"/v1/events/{event_id}",
		MP_OP_EVENT_GET, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_EVENT_GET, false,
	},
	[OP_EVENT_PATCH] = {
		OP_EVENT_PATCH, "event.patch", OP_PATCH,
		"/v1/events/{event_id}",
		MP_OP_EVENT_PATCH, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_EVENT_PATCH, false,
	},
	[OP_BOOK] = {
		OP_BOOK, "book", OP_POST,
		"/v1/events/{event_id}/bookings",
		MP_OP_BOOK, OP_ACCESS_CUSTOMER, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_BOOK, true,
	},
	[OP_BOOK_BATCH] = {
		OP_BOOK_BATCH, "book.batch", 0,
		NULL,
		MP_OP_BOOK_BATCH, OP_ACCESS_CUSTOMER, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_BOOK, true,
	},
	[OP_BOOKING_GET] = {
		OP_BOOKING_GET, "booking.get", OP_GET,
		"/v1/bookings/{booking_id}",
		MP_OP_BOOKING_GET, OP_ACCESS_CUSTOMER, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_BOOKING_GET, false,
	},
	[OP_CANCEL] = {
		OP_CANCEL, "cancel", OP_POST,
		"/v1/bookings/{booking_id}/cancel",
		MP_OP_CANCEL, OP_ACCESS_CUSTOMER, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_CANCEL, false,
	},
	[OP_CUSTOMER_BOOKINGS] = {
		OP_CUSTOMER_BOOKINGS, "customer.bookings", OP_GET,
		"/v1/customers/{customer_id}/bookings",
		MP_OP_CUSTOMER_BOOKINGS, OP_ACCESS_CUSTOMER, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_CUSTOMER_BOOKINGS, false,
	},
	[OP_ORG_CREATE] = {
		OP_ORG_CREATE, "org.create", OP_POST,
		"/v1/orgs",
		MP_OP_ORG_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_ORG_CREATE, true,
	},
	[OP_LOCATION_CREATE] = {
		OP_LOCATION_CREATE, "location.create", OP_POST,
		"/v1/locations",
		MP_OP_LOCATION_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_LOCATION_CREATE, true,
	},
	[OP_INSTRUCTOR_CREATE] = {
		OP_INSTRUCTOR_CREATE, "instructor.create", OP_POST,
		"/v1/instructors",
		MP_OP_INSTRUCTOR_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_INSTRUCTOR_CREATE, true,
	},
	[OP_CUSTOMER_CREATE] = {
		OP_CUSTOMER_CREATE, "customer.create", OP_POST,
		"/v1/customers",
		MP_OP_CUSTOMER_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_CUSTOMER_UPSERT, true,
	},
	[OP_SERIES_CREATE] = {
		OP_SERIES_CREATE, "series.create", OP_POST,
		"/v1/series",
		MP_OP_SERIES_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_SERIES_CREATE, true,
	},
	[OP_GENERATE] = {
		OP_GENERATE, "generate", OP_POST,
		"/v1/admin/generate",
		MP_OP_GENERATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_GENERATE, false,
	},
	[OP_ARCHIVE] = {
		OP_ARCHIVE, "archive", OP_POST,
		"/v1/admin/archive",
		MP_OP_NONE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_ARCHIVE, false,
	},
	[OP_STATUS] = {
		OP_STATUS, "status", OP_GET,
		"/v1/admin/status",
		MP_OP_STATUS, OP_ACCESS_SERVICE, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_NONE, false,
	},
	[OP_REFRESH] = {
		OP_REFRESH, "refresh", OP_POST,
		"/v1/admin/refresh",
		MP_OP_NONE, OP_ACCESS_SERVICE, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_NONE, false,
	},
	[OP_STRIPE_WEBHOOK] = {
		OP_STRIPE_WEBHOOK, "stripe.webhook", OP_POST,
		"/v1/webhooks/stripe",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_STRIPE,
		OP_LIMIT_ADDRESS, CORE_OP_PAY, false,
	},
	[OP_HEALTH] = {
		OP_HEALTH, "health", OP_GET,
		"/health",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_NONE,
		OP_LIMIT_NONE, CORE_OP_NONE, false,
	},
	[OP_READY] = {
		OP_READY, "ready", OP_GET,
		"/ready",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_NONE,
		OP_LIMIT_NONE, CORE_OP_NONE, false,
	},
	[OP_METRICS] = {
		OP_METRICS, "metrics", OP_GET,
		"/metrics",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_NONE,
		OP_LIMIT_NONE, CORE_OP_NONE, false,
	},
};

const struct op_def *ops_get(enum op_id id)
{
	if (id <= OP_NONE || id >= OP_COUNT)
		return NULL;
	ASSERT(ops[id].id == id); /* the table is indexed by its ids */
	return &ops[id];
}

const struct op_def *ops_by_bin(enum mp_op op)
{
	if (op == MP_OP_NONE)
		return NULL;
	for (unsigned i = OP_NONE + 1; i < OP_COUNT; i++)
		if (ops[i].bin == op) {
			ASSERT(ops[i].id == i);
			return &ops[i];
		}
	return NULL;
}

bool ops_allows(const struct op_def *op, enum auth_role role)
{
	ASSERT(op);
	switch (op->access) {
	case OP_ACCESS_NONE:
		return true;
	case OP_ACCESS_PUBLIC:
		return role >= AUTH_ANON;
	case OP_ACCESS_CUSTOMER:
		return role == AUTH_SERVICE || role == AUTH_CUSTOMER;
	case OP_ACCESS_SERVICE:
		return role == AUTH_SERVICE;
	}
	return false;
}

const char *ops_access_name(enum op_access a)
{
	static const char *const names[] = { "none", "public", "customer",
					     "service" };

	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

const char *ops_limit_name(enum op_limit l)
{
	static const char *const names[] = { "none", "address", "caller" };

	return (unsigned)l < sizeof(names) / sizeof(names[0]) ? names[l] : "?";
}

const char *ops_idem_name(enum op_idem i)
{
	static const char *const names[] = { "none", "optional", "required",
					     "stripe-event" };

	return (unsigned)i < sizeof(names) / sizeof(names[0]) ? names[i] : "?";
}

/* The Allow header of a path whose rows have these method bits. */
static const char *allow_of(unsigned methods)
{
	static const char *const allow[8] = {
		"OPTIONS",
		"GET, HEAD, OPTIONS",
		"POST, OPTIONS",
		"GET, HEAD, POST, OPTIONS",
		"PATCH, OPTIONS",
		"GET, HEAD, PATCH, OPTIONS",
		"POST, PATCH, OPTIONS",
		"GET, HEAD, POST, PATCH, OPTIONS",
	};

	return allow[methods & 7];
}

/* Whether path p (split in seg/len) has the pattern pat; its {} segment
 * into *arg. */
static bool path_is(const char *pat, const char *const *seg,
		    const size_t *len, size_t count, const char **arg,
		    size_t *arg_size)
{
	size_t i = 0;

	while (*pat == '/') {
		const char *end = strchr(pat + 1, '/');
		size_t pn = end ? (size_t)(end - pat - 1) : strlen(pat + 1);
		if (i == count)
			return false;
		if (pat[1] == '{') {
			if (len[i] == 0)
				return false;
			*arg = seg[i];
			*arg_size = len[i];
		} else if (pn != len[i] || memcmp(pat + 1, seg[i], pn) != 0) {
			return false;
		}
		i++;
		pat += 1 + pn;
	}
	return i == count;
}

int ops_http_match(const char *p, size_t n, enum op_method m,
		   const struct op_def **op, const char **arg,
		   size_t *arg_size, const char **allow)
{
	const char *seg[OPS_SEG_COUNT_MAX];
	size_t len[OPS_SEG_COUNT_MAX], count = 0, i = 1;
	const char *path = NULL;
	unsigned methods = 0;

	*op = NULL;
	*arg = NULL;
	*arg_size = 0;
	*allow = NULL;
	if (n == 0 || p[0] != '/')
		return -ENOENT;
	while (i <= n) {
		size_t start = i;
		while (i < n && p[i] != '/')
			i++;
		if (count == OPS_SEG_COUNT_MAX)
			return -ENOENT;
		seg[count] = p + start;
		len[count] = i - start;
		count++;
		i++;
	}
	for (unsigned j = OP_NONE + 1; j < OP_COUNT; j++) {
		const char *a = NULL;
		size_t an = 0;
		if (!ops[j].path ||
		    (path && strcmp(path, ops[j].path) != 0) ||
		    (!path && !path_is(ops[j].path, seg, len, count, &a, &an)))
			continue;
		if (!path) {
			path = ops[j].path;
			*arg = a;
			*arg_size = an;
		}
		methods |= ops[j].method;
		if (ops[j].method & m)
			*op = &ops[j];
	}
	if (!path)
		return -ENOENT;
	*allow = allow_of(methods);
	return *op ? 0 : -EPERM;
}
