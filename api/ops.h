/*
 * ops.h: the server's operations, one table (ops.c) that both protocols
 * read: for each operation its name, HTTP method and path, binary op, who
 * may call it, whether it takes an idempotency key, its rate-limit class,
 * the core request it becomes and whether its answer is a creation (201).
 * http_routes.c finds a request's entry with ops_http_match(), bin.c with
 * ops_by_bin(); both then ask the entry (ops_allows, .idem, .limit, .core,
 * .creates) rather than deciding per protocol.
 *
 * Each codec decodes an operation's input fields into the same struct
 * op_in (below: HTTP/JSON in http_routes.c, msgpack in bin.c, each through
 * fields.h's validators and with its own documented messages and
 * defaults); from there the protocol-neutral part is ops.c's: the core
 * request (ops_request) and the idempotency fingerprint (ops_fingerprint:
 * the op's name and its canonical fields, so a key retried over the other
 * protocol is a replay). An answer's content (which fields, in which
 * order, of which type, on which protocol) is the row's struct op_ans
 * list, which http_render.c and bin_render.c both walk. What is still per
 * protocol: the wire syntax of the fields, of the errors and of each
 * answer type (JSON or msgpack), and the documented differences the rows
 * spell out (defaults; what an answer echoes).
 * tests/unit/test_ops.c walks the table against docs/openapi.yaml (each
 * operation's x-bookd-op, -access, -idempotency, -limit and 201 answer) and
 * docs/protocol.md (the Operations table), against both routers and the
 * answer lists; tests/unit/test_ops_codec.c retries keyed requests across
 * the protocols.
 *
 * Adding an operation: one row in ops.c (with enum op_id here and its
 * answer's op_ans list), its field struct in struct op_in with its cases
 * in ops_request and ops_fingerprint, its core code; then each codec
 * reads its fields into that struct (http_routes.c, bin.c: fields.h's
 * validators), the renderers need nothing new unless the answer has a
 * new type, and both documents list it (test_ops checks them).
 */
#ifndef BOOKD_OPS_H
#define BOOKD_OPS_H

#include "auth.h"
#include "core.h"
#include "proto.h"

#include <stdbool.h>
#include <stddef.h>

enum op_id {
	OP_NONE = 0,
	OP_EVENT_LIST,
	OP_EVENT_GET,
	OP_EVENT_PATCH,
	OP_BOOK,
	OP_BOOK_BATCH,
	OP_BOOKING_GET,
	OP_CANCEL,
	OP_CUSTOMER_BOOKINGS,
	OP_ORG_CREATE,
	OP_ORG_PATCH,
	OP_LOCATION_CREATE,
	OP_INSTRUCTOR_CREATE,
	OP_CUSTOMER_CREATE,
	OP_SERIES_CREATE,
	OP_GENERATE,
	OP_ARCHIVE,
	OP_STATUS,
	OP_REFRESH,
	OP_STRIPE_WEBHOOK,
	OP_HEALTH,
	OP_READY,
	OP_METRICS,
	OP_IMPORT, /* POST /v1/admin/import: starts (api/seed_import.h) */
	OP_IMPORT_STATUS, /* GET /v1/admin/import: its state and report */
	OP_ORG_LIST,
	OP_ORG_GET,
	OP_LOCATION_LIST,
	OP_LOCATION_GET,
	OP_INSTRUCTOR_LIST,
	OP_INSTRUCTOR_GET,
	OP_SERIES_LIST,
	OP_SERIES_GET,
	/* the seed's routes (docs/http.md "Seed-compatible routes"): the
	 * same operations, camelCase bodies */
	OP_COMPAT_BOOK,
	OP_COMPAT_CANCEL,
	OP_COMPAT_EVENTS,
	OP_COMPAT_STRIPE,
	OP_SERIES_PATCH, /* PATCH /v1/series/{series_id} (series_edit.c) */
	OP_SERIES_END,	 /* POST /v1/series/{series_id}/end */
	OP_COUNT
};

/* Who may call: the weakest credential accepted. */
enum op_access {
	OP_ACCESS_NONE = 0, /* no credentials read (probes, the webhook's
			     * own signature) */
	OP_ACCESS_PUBLIC, /* the anon key, a customer JWT or the service key */
	OP_ACCESS_CUSTOMER, /* a customer JWT (for itself) or the service key */
	OP_ACCESS_SERVICE,  /* the service key */
};

enum op_idem {
	OP_IDEM_NONE = 0, /* a key is not read */
	OP_IDEM_OPTIONAL,
	OP_IDEM_REQUIRED,
	OP_IDEM_STRIPE, /* the Stripe event's id is the key */
};

/* The rate-limit buckets a request takes from (auth.h). */
enum op_limit {
	OP_LIMIT_NONE = 0, /* never limited (probes, scrapers) */
	OP_LIMIT_ADDRESS,  /* the client address's bucket only */
	OP_LIMIT_CALLER,   /* the service key's own, else the address's and
			     * then the anon key's or the customer's */
};

/* HTTP methods, as bits (HEAD is GET). */
enum op_method { OP_GET = 1, OP_POST = 2, OP_PATCH = 4 };

/* ---- an operation's answer, described once ----
 * The fields of a decided answer (CORE_OK), in order, each with its type
 * and the protocols that carry it. http_render.c and bin_render.c both
 * walk it, each writing a type its way (JSON: ids as strings, the list
 * cursor as base64url; msgpack: ids as integers, the cursor as
 * "start.id"). Where the documented answers differ, the entries say so by
 * their protocols: org.create echoes name and timezone over HTTP, only the
 * id over the binary protocol. Errors, ETags and 304, and the replay flag
 * (HTTP's Idempotent-Replayed header; binary: "replayed": true after the
 * fields, keyed operations only) are the renderers'. */
enum op_ans_type {
	OP_ANS_OBJECT = 1, /* a map of the next .sub entries */
	OP_ANS_ID,	   /* resp->id */
	OP_ANS_COUNT,	   /* resp->count */
	OP_ANS_MORE,	   /* resp->more: a next page exists */
	OP_ANS_NULL,
	OP_ANS_EVENT,	 /* resp->event */
	OP_ANS_EVENTS,	 /* views->events, resp->count of them */
	OP_ANS_CURSOR,	 /* the next page's cursor, or null */
	OP_ANS_BOOKING,	 /* resp->booking */
	OP_ANS_PROMOTED, /* resp->promoted, or null */
	OP_ANS_BOOKINGS, /* views->bookings, resp->count of them */
	OP_ANS_SERIES,	 /* the series created, as its spec said */
	/* echoed from the request (HTTP: the catalogue slot; binary: its
	 * context) */
	OP_ANS_NAME,
	OP_ANS_NAME_OR_NULL, /* "": null */
	OP_ANS_TIMEZONE,
	OP_ANS_EMAIL_OR_NULL, /* "": null */
	OP_ANS_ORG_ID,
	OP_ANS_CUSTOMER_ID,
	/* the org's settings (resp->org); 0 is null for the last two: the
	 * server's own */
	OP_ANS_CUTOFF_HOURS,
	OP_ANS_HOLD_MINUTES,
	OP_ANS_HORIZON_DAYS,
	/* catalogue reads (views->cats) */
	OP_ANS_CAT,	   /* views->cats[0] */
	OP_ANS_CATS,	   /* views->cats, resp->count of them */
	OP_ANS_CAT_CURSOR, /* the next page's cursor, or null */
	/* the seed-compatible routes' (HTTP only) */
	OP_ANS_TRUE,
	OP_ANS_BOOKING_CAMEL,  /* resp->booking */
	OP_ANS_PROMOTED_CAMEL, /* resp->promoted, or null */
	OP_ANS_EVENTS_CAMEL,   /* views->events */
	/* series.patch, series.end: resp->series */
	OP_ANS_REGENERATED,
	OP_ANS_KEPT,
	OP_ANS_CANCELLED,
};

/* The protocols that carry an answer's field, as bits. */
enum op_proto { OP_HTTP = 1, OP_BIN = 2, OP_BOTH = 3 };

struct op_ans {
	const char *name;
	uint8_t type;  /* enum op_ans_type */
	uint8_t proto; /* enum op_proto */
	uint8_t sub;   /* OP_ANS_OBJECT: the entries after it inside it */
};

struct op_def {
	enum op_id id;
	const char *name;      /* the binary op's name when it has one */
	enum op_method method; /* 0: no HTTP route */
	const char *path;      /* "/v1/events/{event_id}": one {} at most */
	enum mp_op bin;	       /* MP_OP_NONE: HTTP only */
	enum op_access access;
	enum op_idem idem;
	enum op_limit limit;
	enum core_op core;	     /* CORE_OP_NONE: answered by the server */
	bool creates;		     /* its answer: 201 Created (HTTP; counted
				  * so for the binary protocol), else 200 */
	const struct op_ans *answer; /* NULL: answered by the server, or
				      * HTTP only and its own (the webhook) */
	unsigned answer_count;
};

/* The entry of id (OP_NONE < id < OP_COUNT), else NULL. */
const struct op_def *ops_get(enum op_id id);

/* The entry of a binary op, else NULL. */
const struct op_def *ops_by_bin(enum mp_op op);

/* Whether role may call op (access rules above). */
bool ops_allows(const struct op_def *op, enum auth_role role);

/* The name of an access rule, idempotency rule, limit class (as the
 * documents spell them: "none", "public", "customer", "service"; "none",
 * "optional", "required", "stripe-event"; "none", "address", "caller"). */
const char *ops_access_name(enum op_access a);
const char *ops_idem_name(enum op_idem i);
const char *ops_limit_name(enum op_limit l); /* "none", "address", "caller" */

/* The HTTP entry of path p[0..n) with a method bit: 0 and *op set; the
 * raw {} segment (not decoded) in *arg / *arg_size. -ENOENT when no entry
 * has that path; -EPERM when some have it with other methods (*allow
 * then lists them: "GET, HEAD, PATCH, OPTIONS"). *allow is always the
 * path's methods when the path is known. */
int ops_http_match(const char *p, size_t n, enum op_method m,
		   const struct op_def **op, const char **arg, size_t *arg_size,
		   const char **allow);

/* How many of the entries ans[0..n) protocol p carries at this level (an
 * object with its entries counting as one): a msgpack map's size. */
unsigned ops_answer_fields(const struct op_ans *ans, unsigned n,
			   enum op_proto p);

/* ---- an operation's input, as both codecs decode it ----
 * Values decoded and checked, not wire bytes: an absent optional field
 * holds its default (each protocol's where the documents give them
 * different ones: org.create's timezone is "UTC" over HTTP, required over
 * the binary protocol). The codecs zero the struct first. */

struct op_list_in {				     /* event.list */
	uint64_t org_id, location_id, instructor_id; /* 0: any */
	core_time from, to;			     /* [from, to) */
	core_time after_start; /* the cursor: strictly after */
	uint64_t after_id;     /* (after_start, after_id); 0: none */
	uint32_t limit;	       /* 1..CORE_LIST_LIMIT_MAX */
};

struct op_patch_in {	  /* event.patch (core.h's req.u.patch) */
	int64_t capacity; /* < 0: unchanged */
	bool cancel;
	bool restore;			/* status "scheduled" */
	uint64_t instructor_id;		/* 0: unchanged */
	uint64_t location_id;		/* 0: unchanged */
	core_time start_at;		/* 0: unchanged */
	uint32_t duration_min;		/* 0: unchanged */
	char title[CORE_NAME_SIZE_MAX]; /* "": unchanged */
};

struct op_cat_in { /* org, location, instructor, customer create */
	char name[CORE_NAME_SIZE_MAX];
	char timezone[CORE_TZ_SIZE_MAX]; /* org */
	uint64_t org_id;		 /* location, instructor; org.patch */
	char email[CORE_NAME_SIZE_MAX];	 /* customer */
	/* org.create, org.patch: the settings given (settings_set: enum
	 * core_org_set bits), each checked against its range */
	struct core_org_settings settings;
	uint8_t settings_set;
};

struct op_read_in {	   /* org, location, instructor, series: get, list */
	uint64_t id;	   /* get */
	uint64_t org_id;   /* list: 0: any */
	uint64_t after_id; /* list: the cursor, 0: from the first */
	uint32_t limit;	   /* list: 1..CORE_LIST_LIMIT_MAX */
};

struct op_generate_in {		/* generate */
	struct core_date until; /* year 0: the configured horizon */
	uint64_t series_id;	/* 0: every series */
};

struct op_in {
	uint64_t event_id;   /* event.get, event.patch, book */
	uint64_t booking_id; /* booking.get, cancel */
	/* book, customer.bookings, customer.create: whom the request acts
	 * for, as auth_acts_for resolved it against the principal */
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	union {
		struct op_list_in list;
		struct op_patch_in patch;
		enum core_payment payment; /* book: as asked */
		struct op_cat_in cat;
		struct core_series_spec series;
		struct op_generate_in generate;
		/* series.patch, series.end: as the core takes it */
		struct core_series_patch spatch;
		struct op_read_in read;
		uint32_t days;	/* archive: 1..36600 */
		uint32_t limit; /* customer.bookings: 1..CORE_LIST_LIMIT_MAX */
	} u;
};

/* The catalogue kind (enum core_cat_kind) a read operation names, else 0. */
unsigned ops_cat_kind(const struct op_def *op);
/* Whether op answers in the seed's shapes (camelCase, the seed's error
 * body): OP_COMPAT_BOOK, _CANCEL, _EVENTS; the webhook's alias answers as
 * the webhook. */
bool ops_compat(const struct op_def *op);
/* The operation whose fingerprint and core request a compat op shares
 * (OP_COMPAT_BOOK: OP_BOOK...); op itself otherwise. */
const struct op_def *ops_base(const struct op_def *op);

/* A read's 404 message for a kind: "no such org", "no such location"... */
const char *ops_cat_missing(unsigned kind);

/* The core request of op (core != CORE_OP_NONE) from its input, under
 * the principal's rules (a customer's "none" payment is auto; a customer
 * cancels only its own booking): req->op and the fields. Not req->now,
 * nor req->idem (ops_idem), nor req->u.series: series.create's spec must
 * live until the answer, so the caller points it at its own copy. */
void ops_request(const struct op_def *op, const struct op_in *in,
		 const struct auth_principal *who, struct core_req *req);

/* The idempotency fingerprint of op's input: its name and the fields the
 * core acts on (after ops_request's rules), each as name=<size>:<bytes>
 * in a fixed order; the same from either protocol. */
uint64_t ops_fingerprint(const struct op_def *op, const struct op_in *in,
			 const struct auth_principal *who);

/* req->idem from a checked key (fld_idem_key_valid; key_size > 0),
 * scoped by the principal (auth_idem_key), with ops_fingerprint. */
void ops_idem(const struct op_def *op, const struct op_in *in,
	      const struct auth_principal *who, const char *key,
	      size_t key_size, struct core_idem *out);

#endif
