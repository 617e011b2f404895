/*
 * ops.c: the table of operations (ops.h) and what is done with an
 * operation's decoded input whichever protocol brought it: its core
 * request (ops_request) and its idempotency fingerprint (ops_fingerprint,
 * ops_idem). One row per operation; the order of enum op_id. A path's
 * methods are the rows sharing it; its Allow header is made from them
 * (GET, HEAD, POST, PATCH, OPTIONS in that order).
 *
 * The fingerprint's canonical form is the one the binary protocol used
 * before both protocols shared it (name=<size>:<bytes> per field, in the
 * order below), so that keys first used over the binary protocol before
 * the change still match; keys first used over HTTP (whose fingerprint
 * was method, path and body) do not (docs/operations.md, upgrades).
 *
 * Known difference kept from before the table: the binary "status" is
 * answered before the rate limits (bin.c), while HTTP's GET
 * /v1/admin/status takes from the service key's bucket like any call.
 */
#include "ops.h"
#include "bookd_assert.h"

#include "fields.h"

#include <errno.h>
#include <string.h>

#define OPS_SEG_COUNT_MAX 5
#define OPS_CANON_SIZE_MAX 2048

/* ---- the answers (ops.h: struct op_ans) ---- */

#define ANSWER(a) a, sizeof(a) / sizeof(a[0])
#define NO_ANSWER NULL, 0

static const struct op_ans ans_event_list[] = {
	{ "events", OP_ANS_EVENTS, OP_BOTH, 0 },
	{ "more", OP_ANS_MORE, OP_BIN, 0 },
	{ "next_cursor", OP_ANS_CURSOR, OP_BOTH, 0 },
};

static const struct op_ans ans_event[] = {
	{ "event", OP_ANS_EVENT, OP_BOTH, 0 },
};

static const struct op_ans ans_booking[] = {
	{ "booking", OP_ANS_BOOKING, OP_BOTH, 0 },
};

static const struct op_ans ans_cancel[] = {
	{ "booking", OP_ANS_BOOKING, OP_BOTH, 0 },
	{ "promoted", OP_ANS_PROMOTED, OP_BOTH, 0 },
};

static const struct op_ans ans_customer_bookings[] = {
	{ "bookings", OP_ANS_BOOKINGS, OP_BOTH, 0 },
	{ "next_cursor", OP_ANS_NULL, OP_HTTP, 0 },
	{ "truncated", OP_ANS_MORE, OP_HTTP, 0 },
	{ "more", OP_ANS_MORE, OP_BIN, 0 },
};

static const struct op_ans ans_org[] = {
	{ "org", OP_ANS_OBJECT, OP_BOTH, 6 },
	{ "id", OP_ANS_ID, OP_BOTH, 0 },
	{ "name", OP_ANS_NAME, OP_HTTP, 0 },
	{ "timezone", OP_ANS_TIMEZONE, OP_HTTP, 0 },
	{ "cancel_cutoff_hours", OP_ANS_CUTOFF_HOURS, OP_BOTH, 0 },
	{ "hold_minutes", OP_ANS_HOLD_MINUTES, OP_BOTH, 0 },
	{ "horizon_days", OP_ANS_HORIZON_DAYS, OP_BOTH, 0 },
};

/* A patch answers the org's settings as they are now. */
static const struct op_ans ans_org_patch[] = {
	{ "org", OP_ANS_OBJECT, OP_BOTH, 4 },
	{ "id", OP_ANS_ID, OP_BOTH, 0 },
	{ "cancel_cutoff_hours", OP_ANS_CUTOFF_HOURS, OP_BOTH, 0 },
	{ "hold_minutes", OP_ANS_HOLD_MINUTES, OP_BOTH, 0 },
	{ "horizon_days", OP_ANS_HORIZON_DAYS, OP_BOTH, 0 },
};

static const struct op_ans ans_location[] = {
	{ "location", OP_ANS_OBJECT, OP_BOTH, 3 },
	{ "id", OP_ANS_ID, OP_BOTH, 0 },
	{ "org_id", OP_ANS_ORG_ID, OP_HTTP, 0 },
	{ "name", OP_ANS_NAME, OP_HTTP, 0 },
};

static const struct op_ans ans_instructor[] = {
	{ "instructor", OP_ANS_OBJECT, OP_BOTH, 3 },
	{ "id", OP_ANS_ID, OP_BOTH, 0 },
	{ "org_id", OP_ANS_ORG_ID, OP_HTTP, 0 },
	{ "name", OP_ANS_NAME, OP_HTTP, 0 },
};

static const struct op_ans ans_customer[] = {
	{ "customer", OP_ANS_OBJECT, OP_BOTH, 3 },
	{ "id", OP_ANS_CUSTOMER_ID, OP_BOTH, 0 },
	{ "email", OP_ANS_EMAIL_OR_NULL, OP_HTTP, 0 },
	{ "name", OP_ANS_NAME_OR_NULL, OP_HTTP, 0 },
};

/* HTTP shows the whole series, the binary protocol its id. */
static const struct op_ans ans_series[] = {
	{ "series", OP_ANS_SERIES, OP_HTTP, 0 },
	{ "series", OP_ANS_OBJECT, OP_BIN, 1 },
	{ "id", OP_ANS_ID, OP_BIN, 0 },
	{ "generated", OP_ANS_COUNT, OP_BOTH, 0 },
};

static const struct op_ans ans_generate[] = {
	{ "generated", OP_ANS_COUNT, OP_BOTH, 0 },
};

static const struct op_ans ans_series_patch[] = {
	{ "series_id", OP_ANS_ID, OP_BOTH, 0 },
	{ "regenerated", OP_ANS_REGENERATED, OP_BOTH, 0 },
	{ "kept", OP_ANS_KEPT, OP_BOTH, 0 },
	{ "cancelled", OP_ANS_CANCELLED, OP_BOTH, 0 },
};

static const struct op_ans ans_archive[] = {
	{ "archived", OP_ANS_COUNT, OP_HTTP, 0 },
};

/* The seed-compatible routes: the seed's edge functions' shapes. */
static const struct op_ans ans_compat_book[] = {
	{ "success", OP_ANS_TRUE, OP_HTTP, 0 },
	{ "booking", OP_ANS_BOOKING_CAMEL, OP_HTTP, 0 },
};

static const struct op_ans ans_compat_cancel[] = {
	{ "success", OP_ANS_TRUE, OP_HTTP, 0 },
	{ "booking", OP_ANS_BOOKING_CAMEL, OP_HTTP, 0 },
	{ "promoted", OP_ANS_PROMOTED_CAMEL, OP_HTTP, 0 },
};

static const struct op_ans ans_compat_events[] = {
	{ "events", OP_ANS_EVENTS_CAMEL, OP_HTTP, 0 },
	{ "nextCursor", OP_ANS_CURSOR, OP_HTTP, 0 },
};

/* Catalogue reads: one object in its singular, a list in its plural. */
#define ANS_CAT(one, many)                                                     \
	static const struct op_ans ans_##one##_get[] = {                       \
		{ #one, OP_ANS_CAT, OP_BOTH, 0 },                              \
	};                                                                     \
	static const struct op_ans ans_##one##_list[] = {                      \
		{ many, OP_ANS_CATS, OP_BOTH, 0 },                             \
		{ "more", OP_ANS_MORE, OP_BIN, 0 },                            \
		{ "next_cursor", OP_ANS_CAT_CURSOR, OP_BOTH, 0 },              \
	}
ANS_CAT(org, "orgs");
ANS_CAT(location, "locations");
ANS_CAT(instructor, "instructors");
ANS_CAT(series, "series");
#undef ANS_CAT

/* A catalogue read's row: public, like the events. */
#define CAT_READ(op, name, path, bin, ans)                                     \
	[op] = {                                                               \
		op,                                                            \
		name,                                                          \
		OP_GET,                                                        \
		path,                                                          \
		bin,                                                           \
		OP_ACCESS_PUBLIC,                                              \
		OP_IDEM_NONE,                                                  \
		OP_LIMIT_CALLER,                                               \
		CORE_OP_CATALOG_GET,                                           \
		false,                                                         \
		ANSWER(ans),                                                   \
	}

static const struct op_def ops[OP_COUNT] = {
	/* id, name, HTTP method,
	 * path,
	 * binary op, access, idempotency,
	 * limit class, core op, creates,
	 * answer */
	[OP_EVENT_LIST] = {
		OP_EVENT_LIST, "event.list", OP_GET,
		"/v1/events",
		MP_OP_EVENT_LIST, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_EVENT_LIST, false,
		ANSWER(ans_event_list),
	},
	[OP_EVENT_GET] = {
		OP_EVENT_GET, "event.get", OP_GET,
		"/v1/events/{event_id}",
		MP_OP_EVENT_GET, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_EVENT_GET, false,
		ANSWER(ans_event),
	},
	[OP_EVENT_PATCH] = {
		OP_EVENT_PATCH, "event.patch", OP_PATCH,
		"/v1/events/{event_id}",
		MP_OP_EVENT_PATCH, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_EVENT_PATCH, false,
		ANSWER(ans_event),
	},
	[OP_BOOK] = {
		OP_BOOK, "book", OP_POST,
		"/v1/events/{event_id}/bookings",
		MP_OP_BOOK, OP_ACCESS_CUSTOMER, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_BOOK, true,
		ANSWER(ans_booking),
	},
	[OP_BOOK_BATCH] = {
		OP_BOOK_BATCH, "book.batch", 0,
		NULL,
		MP_OP_BOOK_BATCH, OP_ACCESS_CUSTOMER, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_BOOK, true,
		ANSWER(ans_booking),
	},
	[OP_BOOKING_GET] = {
		OP_BOOKING_GET, "booking.get", OP_GET,
		"/v1/bookings/{booking_id}",
		MP_OP_BOOKING_GET, OP_ACCESS_CUSTOMER, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_BOOKING_GET, false,
		ANSWER(ans_booking),
	},
	[OP_CANCEL] = {
		OP_CANCEL, "cancel", OP_POST,
		"/v1/bookings/{booking_id}/cancel",
		MP_OP_CANCEL, OP_ACCESS_CUSTOMER, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_CANCEL, false,
		ANSWER(ans_cancel),
	},
	[OP_CUSTOMER_BOOKINGS] = {
		OP_CUSTOMER_BOOKINGS, "customer.bookings", OP_GET,
		"/v1/customers/{customer_id}/bookings",
		MP_OP_CUSTOMER_BOOKINGS, OP_ACCESS_CUSTOMER, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_CUSTOMER_BOOKINGS, false,
		ANSWER(ans_customer_bookings),
	},
	[OP_ORG_CREATE] = {
		OP_ORG_CREATE, "org.create", OP_POST,
		"/v1/orgs",
		MP_OP_ORG_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_ORG_CREATE, true,
		ANSWER(ans_org),
	},
	[OP_ORG_PATCH] = {
		OP_ORG_PATCH, "org.patch", OP_PATCH,
		"/v1/orgs/{org_id}",
		MP_OP_ORG_PATCH, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_ORG_PATCH, false,
		ANSWER(ans_org_patch),
	},
	[OP_LOCATION_CREATE] = {
		OP_LOCATION_CREATE, "location.create", OP_POST,
		"/v1/locations",
		MP_OP_LOCATION_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_LOCATION_CREATE, true,
		ANSWER(ans_location),
	},
	[OP_INSTRUCTOR_CREATE] = {
		OP_INSTRUCTOR_CREATE, "instructor.create", OP_POST,
		"/v1/instructors",
		MP_OP_INSTRUCTOR_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_INSTRUCTOR_CREATE, true,
		ANSWER(ans_instructor),
	},
	[OP_CUSTOMER_CREATE] = {
		OP_CUSTOMER_CREATE, "customer.create", OP_POST,
		"/v1/customers",
		MP_OP_CUSTOMER_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_CUSTOMER_UPSERT, true,
		ANSWER(ans_customer),
	},
	[OP_SERIES_CREATE] = {
		OP_SERIES_CREATE, "series.create", OP_POST,
		"/v1/series",
		MP_OP_SERIES_CREATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_SERIES_CREATE, true,
		ANSWER(ans_series),
	},
	[OP_GENERATE] = {
		OP_GENERATE, "generate", OP_POST,
		"/v1/admin/generate",
		MP_OP_GENERATE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_GENERATE, false,
		ANSWER(ans_generate),
	},
	[OP_ARCHIVE] = {
		OP_ARCHIVE, "archive", OP_POST,
		"/v1/admin/archive",
		MP_OP_NONE, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_ARCHIVE, false,
		ANSWER(ans_archive),
	},
	[OP_STATUS] = {
		OP_STATUS, "status", OP_GET,
		"/v1/admin/status",
		MP_OP_STATUS, OP_ACCESS_SERVICE, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	[OP_REFRESH] = {
		OP_REFRESH, "refresh", OP_POST,
		"/v1/admin/refresh",
		MP_OP_NONE, OP_ACCESS_SERVICE, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	[OP_IMPORT] = {
		OP_IMPORT, "import", OP_POST,
		"/v1/admin/import",
		MP_OP_NONE, OP_ACCESS_SERVICE, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	[OP_IMPORT_STATUS] = {
		OP_IMPORT_STATUS, "import.status", OP_GET,
		"/v1/admin/import",
		MP_OP_NONE, OP_ACCESS_SERVICE, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	[OP_STRIPE_WEBHOOK] = {
		OP_STRIPE_WEBHOOK, "stripe.webhook", OP_POST,
		"/v1/webhooks/stripe",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_STRIPE,
		OP_LIMIT_ADDRESS, CORE_OP_PAY, false,
		NO_ANSWER,
	},
	[OP_HEALTH] = {
		OP_HEALTH, "health", OP_GET,
		"/health",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_NONE,
		OP_LIMIT_NONE, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	[OP_READY] = {
		OP_READY, "ready", OP_GET,
		"/ready",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_NONE,
		OP_LIMIT_NONE, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	[OP_METRICS] = {
		OP_METRICS, "metrics", OP_GET,
		"/metrics",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_NONE,
		OP_LIMIT_NONE, CORE_OP_NONE, false,
		NO_ANSWER,
	},
	/* The lists share CAT_READ's row but for their core op. */
	[OP_ORG_LIST] = {
		OP_ORG_LIST, "org.list", OP_GET,
		"/v1/orgs",
		MP_OP_ORG_LIST, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_CATALOG_LIST, false,
		ANSWER(ans_org_list),
	},
	CAT_READ(OP_ORG_GET, "org.get", "/v1/orgs/{org_id}", MP_OP_ORG_GET,
		 ans_org_get),
	[OP_LOCATION_LIST] = {
		OP_LOCATION_LIST, "location.list", OP_GET,
		"/v1/locations",
		MP_OP_LOCATION_LIST, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_CATALOG_LIST, false,
		ANSWER(ans_location_list),
	},
	CAT_READ(OP_LOCATION_GET, "location.get", "/v1/locations/{location_id}",
		 MP_OP_LOCATION_GET, ans_location_get),
	[OP_INSTRUCTOR_LIST] = {
		OP_INSTRUCTOR_LIST, "instructor.list", OP_GET,
		"/v1/instructors",
		MP_OP_INSTRUCTOR_LIST, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_CATALOG_LIST, false,
		ANSWER(ans_instructor_list),
	},
	CAT_READ(OP_INSTRUCTOR_GET, "instructor.get",
		 "/v1/instructors/{instructor_id}", MP_OP_INSTRUCTOR_GET,
		 ans_instructor_get),
	[OP_SERIES_LIST] = {
		OP_SERIES_LIST, "series.list", OP_GET,
		"/v1/series",
		MP_OP_SERIES_LIST, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_CATALOG_LIST, false,
		ANSWER(ans_series_list),
	},
	CAT_READ(OP_SERIES_GET, "series.get", "/v1/series/{series_id}",
		 MP_OP_SERIES_GET, ans_series_get),
	/* The seed's routes: the anon key may book and cancel there for the
	 * customer the body names (http_routes.c; docs/http.md). */
	[OP_COMPAT_BOOK] = {
		OP_COMPAT_BOOK, "compat.book", OP_POST,
		"/functions/v1/book",
		MP_OP_NONE, OP_ACCESS_PUBLIC, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_BOOK, false,
		ANSWER(ans_compat_book),
	},
	[OP_COMPAT_CANCEL] = {
		OP_COMPAT_CANCEL, "compat.cancel", OP_POST,
		"/functions/v1/cancel",
		MP_OP_NONE, OP_ACCESS_PUBLIC, OP_IDEM_REQUIRED,
		OP_LIMIT_CALLER, CORE_OP_CANCEL, false,
		ANSWER(ans_compat_cancel),
	},
	[OP_COMPAT_EVENTS] = {
		OP_COMPAT_EVENTS, "compat.events", OP_GET,
		"/functions/v1/events",
		MP_OP_NONE, OP_ACCESS_PUBLIC, OP_IDEM_NONE,
		OP_LIMIT_CALLER, CORE_OP_EVENT_LIST, false,
		ANSWER(ans_compat_events),
	},
	[OP_COMPAT_STRIPE] = {
		OP_COMPAT_STRIPE, "compat.stripe", OP_POST,
		"/functions/v1/webhooks-stripe",
		MP_OP_NONE, OP_ACCESS_NONE, OP_IDEM_STRIPE,
		OP_LIMIT_ADDRESS, CORE_OP_PAY, false,
		NO_ANSWER,
	},
	[OP_SERIES_PATCH] = {
		OP_SERIES_PATCH, "series.patch", OP_PATCH,
		"/v1/series/{series_id}",
		MP_OP_SERIES_PATCH, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_SERIES_PATCH, false,
		ANSWER(ans_series_patch),
	},
	[OP_SERIES_END] = {
		OP_SERIES_END, "series.end", OP_POST,
		"/v1/series/{series_id}/end",
		MP_OP_SERIES_END, OP_ACCESS_SERVICE, OP_IDEM_OPTIONAL,
		OP_LIMIT_CALLER, CORE_OP_SERIES_PATCH, false,
		ANSWER(ans_series_patch),
	},
};
#undef CAT_READ

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
	case OP_ACCESS_NONE: return true;
	case OP_ACCESS_PUBLIC: return role >= AUTH_ANON;
	case OP_ACCESS_CUSTOMER:
		return role == AUTH_SERVICE || role == AUTH_CUSTOMER;
	case OP_ACCESS_SERVICE: return role == AUTH_SERVICE;
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
static bool path_is(const char *pat, const char *const *seg, const size_t *len,
		    size_t count, const char **arg, size_t *arg_size)
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
		   const struct op_def **op, const char **arg, size_t *arg_size,
		   const char **allow)
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
		if (!ops[j].path || (path && strcmp(path, ops[j].path) != 0) ||
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

unsigned ops_answer_fields(const struct op_ans *ans, unsigned n,
			   enum op_proto p)
{
	unsigned count = 0;

	for (unsigned i = 0; i < n; i++) {
		ASSERT(ans[i].type != OP_ANS_OBJECT || i + ans[i].sub < n);
		if (ans[i].proto & p)
			count++;
		if (ans[i].type == OP_ANS_OBJECT)
			i += ans[i].sub; /* its entries are inside it */
	}
	ASSERT(count <= n);
	return count;
}

/* ---- an operation's input: its core request ---- */

bool ops_compat(const struct op_def *op)
{
	return op->id >= OP_COMPAT_BOOK && op->id <= OP_COMPAT_EVENTS;
}

const struct op_def *ops_base(const struct op_def *op)
{
	switch (op->id) {
	case OP_COMPAT_BOOK: return ops_get(OP_BOOK);
	case OP_COMPAT_CANCEL: return ops_get(OP_CANCEL);
	case OP_COMPAT_EVENTS: return ops_get(OP_EVENT_LIST);
	case OP_COMPAT_STRIPE: return ops_get(OP_STRIPE_WEBHOOK);
	default: return op;
	}
}

const char *ops_cat_missing(unsigned kind)
{
	static const char *const msg[] = { "no such object", "no such org",
					   "no such location",
					   "no such instructor",
					   "no such series" };

	return msg[kind < sizeof(msg) / sizeof(msg[0]) ? kind : 0];
}

unsigned ops_cat_kind(const struct op_def *op)
{
	switch (op->id) {
	case OP_ORG_LIST:
	case OP_ORG_GET: return CORE_CAT_ORG;
	case OP_LOCATION_LIST:
	case OP_LOCATION_GET: return CORE_CAT_LOCATION;
	case OP_INSTRUCTOR_LIST:
	case OP_INSTRUCTOR_GET: return CORE_CAT_INSTRUCTOR;
	case OP_SERIES_LIST:
	case OP_SERIES_GET: return CORE_CAT_SERIES;
	default: return 0;
	}
}

void ops_request(const struct op_def *op, const struct op_in *in,
		 const struct auth_principal *who, struct core_req *req)
{
	ASSERT(op && in && req);
	ASSERT(op->core != CORE_OP_NONE); /* answered by the server */
	req->op = op->core;
	op = ops_base(op); /* a seed-compatible route: its operation's */
	/* Before the switch: clang (C17) takes no declaration after a label. */
	_Static_assert(sizeof(req->u.cat.name) == sizeof(in->u.cat.name) &&
			       sizeof(req->u.cat.timezone) ==
				       sizeof(in->u.cat.timezone) &&
			       sizeof(req->u.cat.email) ==
				       sizeof(in->u.cat.email),
		       "cat fields");
	switch (op->id) {
	case OP_EVENT_LIST:
		req->u.list.org_id = in->u.list.org_id;
		req->u.list.location_id = in->u.list.location_id;
		req->u.list.instructor_id = in->u.list.instructor_id;
		req->u.list.from = in->u.list.from;
		req->u.list.to = in->u.list.to;
		req->u.list.after_start = in->u.list.after_start;
		req->u.list.after_id = in->u.list.after_id;
		req->u.list.limit = in->u.list.limit;
		ASSERT(req->u.list.to > req->u.list.from);
		break;
	case OP_EVENT_PATCH:
		req->u.patch.capacity = in->u.patch.capacity;
		req->u.patch.cancel = in->u.patch.cancel;
		req->u.patch.restore = in->u.patch.restore;
		req->u.patch.instructor_id = in->u.patch.instructor_id;
		req->u.patch.location_id = in->u.patch.location_id;
		req->u.patch.start_at = in->u.patch.start_at;
		req->u.patch.duration_min = in->u.patch.duration_min;
		_Static_assert(sizeof(req->u.patch.title) ==
				       sizeof(in->u.patch.title),
			       "patch title");
		memcpy(req->u.patch.title, in->u.patch.title,
		       sizeof(req->u.patch.title));
		/* fall through */
	case OP_EVENT_GET: req->event_id = in->event_id; break;
	case OP_BOOK:
	case OP_BOOK_BATCH:
		req->event_id = in->event_id;
		memcpy(req->customer_id, in->customer_id,
		       sizeof(req->customer_id));
		req->u.book.payment = auth_payment_for(who, in->u.payment);
		ASSERT(req->customer_id[0] != '\0'); /* auth_acts_for's */
		break;
	case OP_CANCEL:
		/* A customer cancels only its own: the core checks the owner. */
		if (who->role == AUTH_CUSTOMER)
			memcpy(req->customer_id, who->customer_id,
			       sizeof(req->customer_id));
		/* fall through */
	case OP_BOOKING_GET: req->booking_id = in->booking_id; break;
	case OP_CUSTOMER_BOOKINGS:
		memcpy(req->customer_id, in->customer_id,
		       sizeof(req->customer_id));
		req->u.customer.capacity = in->u.limit;
		break;
	case OP_ORG_CREATE:
	case OP_LOCATION_CREATE:
	case OP_INSTRUCTOR_CREATE:
	case OP_CUSTOMER_CREATE:
		memcpy(req->u.cat.name, in->u.cat.name,
		       sizeof(req->u.cat.name));
		memcpy(req->u.cat.timezone, in->u.cat.timezone,
		       sizeof(req->u.cat.timezone));
		memcpy(req->u.cat.email, in->u.cat.email,
		       sizeof(req->u.cat.email));
		req->u.cat.org_id = in->u.cat.org_id;
		memcpy(req->customer_id, in->customer_id,
		       sizeof(req->customer_id));
		req->u.cat.settings = in->u.cat.settings;
		req->u.cat.settings_set = in->u.cat.settings_set;
		break;
	case OP_ORG_PATCH:
		req->u.cat.org_id = in->u.cat.org_id;
		req->u.cat.settings = in->u.cat.settings;
		req->u.cat.settings_set = in->u.cat.settings_set;
		ASSERT(req->u.cat.settings_set != 0); /* the codecs' */
		break;
	case OP_SERIES_CREATE:
		break; /* req->u.series: the caller's copy of in->u.series */
	case OP_SERIES_PATCH:
	case OP_SERIES_END: req->u.spatch = in->u.spatch; break;
	case OP_GENERATE:
		req->u.generate.until = in->u.generate.until;
		req->u.generate.series_id = in->u.generate.series_id;
		break;
	case OP_ARCHIVE:
		req->u.archive.days = in->u.days;
		ASSERT(req->u.archive.days > 0);
		break;
	case OP_ORG_LIST:
	case OP_LOCATION_LIST:
	case OP_INSTRUCTOR_LIST:
	case OP_SERIES_LIST:
		req->u.catalog.org_id = in->u.read.org_id;
		req->u.catalog.after_id = in->u.read.after_id;
		req->u.catalog.limit = in->u.read.limit;
		ASSERT(req->u.catalog.limit >= 1 &&
		       req->u.catalog.limit <= CORE_LIST_LIMIT_MAX);
		/* fall through */
	case OP_ORG_GET:
	case OP_LOCATION_GET:
	case OP_INSTRUCTOR_GET:
	case OP_SERIES_GET:
		req->u.catalog.kind = (uint8_t)ops_cat_kind(op);
		req->u.catalog.id = in->u.read.id;
		req->u.catalog.out = NULL; /* the caller's room (net_slow.c) */
		break;
	default: ASSERT(!"an operation without its input's core request");
	}
	ASSERT(req->op == op->core);
}

/* ---- an operation's input: its fingerprint ---- */

struct canon {
	char buf[OPS_CANON_SIZE_MAX];
	size_t size;
};

/* name=<size>:<bytes>, so that no two field lists give the same bytes. */
static void canon_put(struct canon *k, const char *name, const void *p,
		      size_t n)
{
	size_t name_size = strlen(name);
	char digits[24];
	size_t d = sizeof(digits), m = n;

	ASSERT(k->size <= sizeof(k->buf));
	do {
		ASSERT(d > 0);
		digits[--d] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (name_size + 1 + (sizeof(digits) - d) + 1 + n >
	    sizeof(k->buf) - k->size) {
		/* full: zeros to the end, still deterministic (and what a
		 * zeroed buffer gave) */
		memset(k->buf + k->size, 0, sizeof(k->buf) - k->size);
		k->size = sizeof(k->buf);
		return;
	}
	memcpy(k->buf + k->size, name, name_size);
	k->size += name_size;
	k->buf[k->size++] = '=';
	memcpy(k->buf + k->size, digits + d, sizeof(digits) - d);
	k->size += sizeof(digits) - d;
	k->buf[k->size++] = ':';
	memcpy(k->buf + k->size, p, n);
	k->size += n;
	ASSERT(k->size <= sizeof(k->buf));
}

static void canon_u64(struct canon *k, const char *name, uint64_t v)
{
	char digits[24];
	size_t d = sizeof(digits);

	do {
		ASSERT(d > 0);
		digits[--d] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	canon_put(k, name, digits + d, sizeof(digits) - d);
}

static void canon_str(struct canon *k, const char *name, const char *s)
{
	canon_put(k, name, s, strlen(s));
}

static void canon_series(struct canon *k, const struct core_series_spec *s)
{
	ASSERT(s->skip_count <= CORE_SKIP_DATE_COUNT_MAX);
	canon_u64(k, "org_id", s->org_id);
	canon_u64(k, "location_id", s->location_id);
	canon_u64(k, "instructor_id", s->instructor_id);
	canon_str(k, "title", s->title);
	canon_u64(k, "capacity", s->capacity);
	canon_u64(k, "waitlist_capacity", s->waitlist_capacity);
	canon_u64(k, "price_cents", s->price_cents);
	canon_str(k, "currency", s->currency);
	canon_str(k, "timezone", s->timezone);
	canon_u64(k, "weekdays", s->weekday_mask);
	canon_u64(k, "start_minute", s->start_minute);
	canon_u64(k, "duration_min", s->duration_min);
	canon_put(k, "first_date", &s->first_date, sizeof(s->first_date));
	canon_put(k, "last_date", &s->last_date, sizeof(s->last_date));
	canon_put(k, "skip", s->skip, s->skip_count * sizeof(s->skip[0]));
}

/* The settings given, each only when given (so an org.create's key from
 * before settings existed still matches). */
static void canon_settings(struct canon *k, const struct op_cat_in *c)
{
	if (c->settings_set & CORE_ORG_SET_CUTOFF)
		canon_u64(k, "cancel_cutoff_hours",
			  c->settings.cancel_cutoff_hours);
	if (c->settings_set & CORE_ORG_SET_HOLD)
		canon_u64(k, "hold_minutes", c->settings.hold_minutes);
	if (c->settings_set & CORE_ORG_SET_HORIZON)
		canon_u64(k, "horizon_days", c->settings.horizon_days);
}

uint64_t ops_fingerprint(const struct op_def *op, const struct op_in *in,
			 const struct auth_principal *who)
{
	struct canon k; /* not zeroed: only buf[0..size) is read */
	const char *name = op->name;

	k.size = 0;
	ASSERT(op->idem == OP_IDEM_OPTIONAL || op->idem == OP_IDEM_REQUIRED);
	/* a seed-compatible route: its operation's, so that a key used on
	 * both is a replay */
	op = ops_base(op);
	name = op->name;
	switch (op->id) {
	case OP_BOOK:
	case OP_BOOK_BATCH: /* each item is a book */
		name = ops_get(OP_BOOK)->name;
		canon_u64(&k, "event_id", in->event_id);
		canon_str(&k, "customer_id", in->customer_id);
		canon_u64(&k, "payment", auth_payment_for(who, in->u.payment));
		break;
	case OP_CANCEL: canon_u64(&k, "booking_id", in->booking_id); break;
	case OP_EVENT_PATCH:
		canon_u64(&k, "event_id", in->event_id);
		canon_u64(&k, "capacity", (uint64_t)in->u.patch.capacity);
		canon_u64(&k, "cancel", in->u.patch.cancel);
		canon_u64(&k, "instructor_id", in->u.patch.instructor_id);
		/* an edit's fields only when given: an old key's fingerprint
		 * stays what it was */
		if (in->u.patch.restore)
			canon_u64(&k, "restore", 1);
		if (in->u.patch.location_id)
			canon_u64(&k, "location_id", in->u.patch.location_id);
		if (in->u.patch.start_at)
			canon_u64(&k, "start_at",
				  (uint64_t)in->u.patch.start_at);
		if (in->u.patch.duration_min)
			canon_u64(&k, "duration_min", in->u.patch.duration_min);
		if (in->u.patch.title[0])
			canon_str(&k, "title", in->u.patch.title);
		break;
	case OP_ORG_CREATE:
		canon_str(&k, "name", in->u.cat.name);
		canon_str(&k, "timezone", in->u.cat.timezone);
		canon_settings(&k, &in->u.cat);
		break;
	case OP_ORG_PATCH:
		canon_u64(&k, "org_id", in->u.cat.org_id);
		canon_settings(&k, &in->u.cat);
		break;
	case OP_LOCATION_CREATE:
	case OP_INSTRUCTOR_CREATE:
		canon_u64(&k, "org_id", in->u.cat.org_id);
		canon_str(&k, "name", in->u.cat.name);
		break;
	case OP_CUSTOMER_CREATE:
		canon_str(&k, "customer_id", in->customer_id);
		canon_str(&k, "name", in->u.cat.name);
		canon_str(&k, "email", in->u.cat.email);
		break;
	case OP_SERIES_CREATE: canon_series(&k, &in->u.series); break;
	case OP_SERIES_PATCH:
	case OP_SERIES_END: {
		const struct core_series_patch *x = &in->u.spatch;
		canon_u64(&k, "series_id", x->series_id);
		canon_str(&k, "title", x->title);
		canon_u64(&k, "capacity", (uint64_t)x->capacity);
		canon_u64(&k, "waitlist_capacity",
			  (uint64_t)x->waitlist_capacity);
		canon_u64(&k, "price_cents", (uint64_t)x->price_cents);
		canon_str(&k, "currency", x->currency);
		canon_u64(&k, "start_minute", (uint64_t)x->start_minute);
		canon_u64(&k, "duration_min", x->duration_min);
		canon_u64(&k, "weekdays", x->weekday_mask);
		canon_u64(&k, "last_date",
			  (uint64_t)(x->last_date.year * 10000 +
				     x->last_date.month * 100 +
				     x->last_date.day));
		canon_u64(&k, "from",
			  (uint64_t)(x->from.year * 10000 +
				     x->from.month * 100 + x->from.day));
		break;
	}
	case OP_GENERATE:
		canon_put(&k, "until", &in->u.generate.until,
			  sizeof(in->u.generate.until));
		canon_u64(&k, "series_id", in->u.generate.series_id);
		break;
	case OP_ARCHIVE: canon_u64(&k, "days", in->u.days); break;
	default: ASSERT(!"a keyed operation without its canonical fields");
	}
	ASSERT(k.size > 0 && k.size <= sizeof(k.buf));
	return auth_fingerprint(name, strlen(name), k.buf, k.size, NULL, 0);
}

void ops_idem(const struct op_def *op, const struct op_in *in,
	      const struct auth_principal *who, const char *key,
	      size_t key_size, struct core_idem *out)
{
	ASSERT(key_size > 0 && key_size <= FLD_IDEM_KEY_SIZE_MAX);
	auth_idem_key(who, key, key_size, out);
	out->fingerprint = ops_fingerprint(op, in, who);
	ASSERT(core_idem_present(out));
}
