/*
 * http_render.c: the core's answers as HTTP (http_render, srv_proto's
 * render through http.c): the error of an outcome (fld_code_error), each
 * operation's JSON from its row's answer description (ops.h struct
 * op_ans: write_answer), ETags and 304 for reads, the list cursor, the
 * Stripe webhook's own answer; then the catalogue slot is freed. What it
 * needs came in struct http_ctx; what an answer echoes, in the slot.
 */
#include "http_render.h"

#include "fields.h"
#include "http_json.h"
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- cursors: base64url of (after_start i64, after_id u64), LE ---- */

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void http_cursor_encode(core_time start, uint64_t id,
			char out[HTTP_CURSOR_SIZE + 1])
{
	uint8_t b[18] = { 0 };
	size_t o = 0;

	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t)((uint64_t)start >> (8 * i));
		b[8 + i] = (uint8_t)(id >> (8 * i));
	}
	_Static_assert(HTTP_CURSOR_SIZE == (16 * 8 + 5) / 6, "16 bytes");
	for (size_t i = 0; i < 18 && o < HTTP_CURSOR_SIZE; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 |
			     b[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		if (o < HTTP_CURSOR_SIZE)
			out[o++] = b64url[v >> 6 & 63];
		if (o < HTTP_CURSOR_SIZE)
			out[o++] = b64url[v & 63];
	}
	ASSERT(o == HTTP_CURSOR_SIZE);
	out[HTTP_CURSOR_SIZE] = '\0';
}

int http_cursor_decode(const char *s, size_t n, core_time *start, uint64_t *id)
{
	uint8_t b[18] = { 0 };
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	uint64_t st = 0;

	if (n != HTTP_CURSOR_SIZE)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *p = memchr(b64url, s[i], 64);
		if (!p || s[i] == '\0')
			return -EINVAL;
		acc = acc << 6 | (uint32_t)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			ASSERT(o < sizeof(b));
			b[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (o != 16 || (acc & ((1u << bits) - 1)) != 0)
		return -EINVAL; /* non-canonical trailing bits */
	*id = 0;
	for (int i = 0; i < 8; i++) {
		st |= (uint64_t)b[i] << (8 * i);
		*id |= (uint64_t)b[8 + i] << (8 * i);
	}
	*start = (core_time)st;
	return *id ? 0 : -EINVAL;
}

/* ---- ETags ---- */

uint64_t http_tag_hash(const char *s, size_t n) { return XXH3_64bits(s, n); }

static bool inm_matches(const struct http_ctx *x, const char *etag)
{
	uint64_t h;

	if (x->flags & X_INM_ANY)
		return true;
	h = http_tag_hash(etag, strlen(etag));
	for (unsigned i = 0; i < x->inm_count && i < HTTP_INM_COUNT_MAX; i++)
		if (x->inm[i] == h)
			return true;
	return false;
}

/* ---- render ---- */

static void render_error(struct buf *out, const struct http_meta *m, int status,
			 const char *code, const char *msg)
{
	http_write_error(out, status, m, code, msg);
}

static void etag_of_event(const struct core_event_view *e, char out[24])
{
	uint64_t v[2] = { e->id, e->version };
	snprintf(out, 24, "\"%016" PRIx64 "\"", XXH3_64bits(v, sizeof(v)));
}

static void etag_of_list(const struct core_event_view *e, uint32_t n, bool more,
			 char out[24])
{
	uint64_t h = XXH3_64bits(&more, sizeof(more));

	for (uint32_t i = 0; i < n; i++) {
		uint64_t v[2] = { e[i].id, e[i].version };
		h = XXH3_64bits_withSeed(v, sizeof(v), h);
	}
	snprintf(out, 24, "\"%016" PRIx64 "\"", h);
}

/* The events of a list answer: none without the views. */
static uint32_t events_n(const struct core_resp *resp,
			 const struct srv_views *views)
{
	uint32_t n = resp->count;

	if (!views || (n && !views->events))
		n = 0;
	return n;
}

/* One answer field's value (ops.h: enum op_ans_type), as JSON; what the
 * request echoes is in its catalogue slot. */
/* The path of what a 201 created (its Location), into out; "" when the
 * operation has no such path. A customer has no route of its own: its
 * bookings' is given. */
static void location_of(enum op_id op, const struct core_resp *resp,
			const struct http_cat_slot *slot, char *out,
			size_t size)
{
	const char *base = NULL;

	out[0] = '\0';
	switch (op) {
	case OP_BOOK:
		snprintf(out, size, "/v1/bookings/%" PRIu64, resp->booking.id);
		return;
	case OP_CUSTOMER_CREATE:
		snprintf(out, size, "/v1/customers/%s/bookings",
			 slot->customer_id);
		return;
	case OP_ORG_CREATE: base = "/v1/orgs"; break;
	case OP_LOCATION_CREATE: base = "/v1/locations"; break;
	case OP_INSTRUCTOR_CREATE: base = "/v1/instructors"; break;
	case OP_SERIES_CREATE: base = "/v1/series"; break;
	default: return;
	}
	snprintf(out, size, "%s/%" PRIu64, base, resp->id);
}

static void write_value(struct jw *w, const struct op_ans *a,
			const struct core_resp *resp,
			const struct srv_views *views,
			const struct http_cat_slot *slot)
{
	char cursor[HTTP_CURSOR_SIZE + 1];
	uint32_t n;

	switch (a->type) {
	case OP_ANS_ID: jw_id(w, resp->id); break;
	case OP_ANS_COUNT: jw_u64(w, resp->count); break;
	case OP_ANS_REGENERATED: jw_u64(w, resp->series.regenerated); break;
	case OP_ANS_KEPT: jw_u64(w, resp->series.kept); break;
	case OP_ANS_CANCELLED: jw_u64(w, resp->series.cancelled); break;
	case OP_ANS_MORE: jw_bool(w, resp->more); break;
	case OP_ANS_NULL: jw_null(w); break;
	case OP_ANS_EVENT: jw_event(w, &resp->event); break;
	case OP_ANS_EVENTS:
		n = events_n(resp, views);
		jw_arr_begin(w);
		for (uint32_t i = 0; i < n; i++)
			jw_event(w, &views->events[i]);
		jw_arr_end(w);
		break;
	case OP_ANS_CURSOR:
		n = events_n(resp, views);
		if (resp->more && n) {
			http_cursor_encode(views->events[n - 1].start_at,
					   views->events[n - 1].id, cursor);
			jw_cstr(w, cursor);
		} else {
			jw_null(w);
		}
		break;
	case OP_ANS_BOOKING: jw_booking(w, &resp->booking); break;
	case OP_ANS_PROMOTED:
		if (resp->has_promoted)
			jw_booking(w, &resp->promoted);
		else
			jw_null(w);
		break;
	case OP_ANS_BOOKINGS:
		n = resp->count;
		if (!views || (n && !views->bookings))
			n = 0;
		jw_arr_begin(w);
		for (uint32_t i = 0; i < n; i++)
			jw_booking(w, &views->bookings[i]);
		jw_arr_end(w);
		break;
	case OP_ANS_SERIES: jw_series(w, resp->id, &slot->series); break;
	case OP_ANS_NAME: jw_cstr(w, slot->name); break;
	case OP_ANS_NAME_OR_NULL:
		jw_cstr(w, slot->name[0] ? slot->name : NULL);
		break;
	case OP_ANS_TIMEZONE: jw_cstr(w, slot->timezone); break;
	case OP_ANS_EMAIL_OR_NULL:
		jw_cstr(w, slot->email[0] ? slot->email : NULL);
		break;
	case OP_ANS_ORG_ID: jw_id(w, slot->org_id); break;
	case OP_ANS_CUSTOMER_ID: jw_cstr(w, slot->customer_id); break;
	case OP_ANS_CUTOFF_HOURS:
		jw_u64(w, resp->org.cancel_cutoff_hours);
		break;
	case OP_ANS_HOLD_MINUTES:
	case OP_ANS_HORIZON_DAYS:
		n = a->type == OP_ANS_HOLD_MINUTES ? resp->org.hold_minutes
						   : resp->org.horizon_days;
		if (n)
			jw_u64(w, n);
		else
			jw_null(w); /* the server's own */
		break;
	case OP_ANS_TRUE: jw_bool(w, true); break;
	case OP_ANS_BOOKING_CAMEL: jw_booking_camel(w, &resp->booking); break;
	case OP_ANS_PROMOTED_CAMEL:
		if (resp->has_promoted)
			jw_booking_camel(w, &resp->promoted);
		else
			jw_null(w);
		break;
	case OP_ANS_EVENTS_CAMEL:
		n = events_n(resp, views);
		jw_arr_begin(w);
		for (uint32_t i = 0; i < n; i++)
			jw_event_camel(w, &views->events[i]);
		jw_arr_end(w);
		break;
	case OP_ANS_CAT:
		if (views && views->cats && resp->count == 1)
			jw_cat(w, &views->cats[0]);
		else
			jw_null(w);
		break;
	case OP_ANS_CATS:
		n = views && views->cats ? resp->count : 0;
		jw_arr_begin(w);
		for (uint32_t i = 0; i < n; i++)
			jw_cat(w, &views->cats[i]);
		jw_arr_end(w);
		break;
	case OP_ANS_CAT_CURSOR:
		n = views && views->cats ? resp->count : 0;
		if (resp->more && n) {
			http_cursor_encode((core_time)views->cats[n - 1].kind,
					   views->cats[n - 1].id, cursor);
			jw_cstr(w, cursor);
		} else {
			jw_null(w);
		}
		break;
	default:
		ASSERT(!"an answer field HTTP cannot write");
		jw_null(w);
		break;
	}
}

/* The entries ans[0..n) HTTP carries, as an object's members. */
static void write_answer(struct jw *w, const struct op_ans *ans, unsigned n,
			 const struct core_resp *resp,
			 const struct srv_views *views,
			 const struct http_cat_slot *slot)
{
	for (unsigned i = 0; i < n; i++) {
		const struct op_ans *a = &ans[i];
		if (a->proto & OP_HTTP) {
			jw_key(w, a->name);
			if (a->type == OP_ANS_OBJECT) {
				ASSERT(i + a->sub < n);
				jw_obj_begin(w);
				write_answer(w, a + 1, a->sub, resp, views,
					     slot);
				jw_obj_end(w);
			} else {
				write_value(w, a, resp, views, slot);
			}
		}
		if (a->type == OP_ANS_OBJECT)
			i += a->sub;
	}
}

void http_render(struct srv_conn *c, struct http_cat_slot *conn_slot,
		 const void *ctx_p, int rc, const struct core_resp *resp,
		 const struct srv_views *views, struct buf *out)
{
	const struct http_ctx *x = ctx_p;
	struct http_cat_slot *slot = (x->flags & X_HEAP) ? x->heap : conn_slot;
	const struct op_def *def;
	struct http_meta m = { 0 };
	struct jw w;
	char etag[24];
	char location[32 + CORE_CUSTOMER_ID_SIZE_MAX];
	int status = 200;
	const char *code;

	ASSERT(x->op > OP_NONE && x->op < OP_COUNT);
	ASSERT(!(x->flags & X_SLOT) || slot->busy);
	m.head = x->flags & X_HEAD;
	m.close = x->flags & X_CLOSE;
	m.keep_alive_10 = x->flags & X_KEEP_ALIVE_10;
	m.request_id = x->request_id;
	m.op = ops_get(x->op)->name;
	m.compat = ops_compat(ops_get(x->op));
	if (x->origin_size) {
		m.origin = x->origin;
		m.origin_size = x->origin_size;
	}
	jw_init(&w, http_scratch(), HTTP_OUT_BODY_MAX);
	if (rc < 0) {
		code = fld_errno_error(rc, &status);
		render_error(out, &m, status, code, fld_errno_message(rc));
		goto out_slot;
	}
	m.replayed = resp->replayed;
	if ((x->op == OP_STRIPE_WEBHOOK || x->op == OP_COMPAT_STRIPE) &&
	    resp->code != CORE_FULL && resp->code != CORE_IDEM_IN_FLIGHT) {
		/* Stripe retries anything but 2xx: a decided payment, also a
		 * flagged or unknown one, is received; a refusal to decide now
		 * (log failing, the same event in flight) is not. */
		jw_obj_begin(&w);
		jw_key(&w, "received");
		jw_bool(&w, true);
		jw_key(&w, "outcome");
		jw_cstr(&w, resp->code == CORE_OK ? "applied"
						  : core_code_name(resp->code));
		if (resp->code == CORE_OK || resp->code == CORE_NOT_PENDING ||
		    resp->code == CORE_PAYMENT_MISMATCH) {
			jw_key(&w, "booking");
			jw_booking(&w, &resp->booking);
		}
		jw_obj_end(&w);
		goto out_body;
	}
	if (resp->code != CORE_OK ||
	    ((x->flags & X_OWN) &&
	     strncmp(resp->booking.customer_id, x->customer,
		     sizeof(x->customer)) != 0)) {
		enum core_code cc =
			resp->code != CORE_OK ? resp->code : CORE_NO_BOOKING;
		char limit[160];
		code = fld_code_error(cc, &status);
		render_error(out, &m, status, code,
			     cc == CORE_LIMIT
				     ? core_limit_message(resp, limit,
							  sizeof(limit))
			     : resp->op == CORE_OP_CATALOG_GET && status == 404
				     ? ops_cat_missing(
					       ops_cat_kind(ops_get(x->op)))
				     : fld_code_message(cc));
		goto out_slot;
	}
	def = ops_get(x->op);
	status = def->creates ? 201 : 200;
	if (def->creates) {
		location_of(x->op, resp, slot, location, sizeof(location));
		m.location = location[0] ? location : NULL;
	}
	if (x->op == OP_EVENT_LIST || x->op == OP_COMPAT_EVENTS) {
		etag_of_list(views ? views->events : NULL,
			     events_n(resp, views), resp->more, etag);
		if (inm_matches(x, etag))
			goto out_304;
		m.etag = etag;
		m.cache_control = HTTP_CACHE_CONTROL;
	} else if ((x->op == OP_EVENT_GET || x->op == OP_EVENT_PATCH) &&
		   resp->op == CORE_OP_EVENT_GET) {
		etag_of_event(&resp->event, etag);
		if (inm_matches(x, etag))
			goto out_304;
		m.etag = etag;
		m.cache_control = HTTP_CACHE_CONTROL;
	}
	jw_obj_begin(&w);
	if (def->answer) {
		write_answer(&w, def->answer, def->answer_count, resp, views,
			     slot);
	} else {
		jw_key(&w, "ok");
		jw_bool(&w, true);
	}
	jw_obj_end(&w);
	/* A catalogue read's ETag is its body's hash: an object a write
	 * changed (settings, a series edited) gets another. */
	if ((resp->op == CORE_OP_CATALOG_GET ||
	     resp->op == CORE_OP_CATALOG_LIST) &&
	    !w.overflow) {
		snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"",
			 XXH3_64bits(w.p, w.n));
		if (inm_matches(x, etag))
			goto out_304;
		m.etag = etag;
		m.cache_control = HTTP_CACHE_CONTROL;
	}
out_body:
	if (w.overflow) {
		status = 500;
		render_error(out, &m, status, "internal", "answer too large");
	} else {
		http_write(out, status, &m, w.p, w.n);
	}
	goto out_slot;
out_304:
	status = 304;
	m.etag = etag;
	m.cache_control = HTTP_CACHE_CONTROL;
	http_write(out, status, &m, NULL, 0);
out_slot:
	srv_count_response(c, status);
	if (x->flags & X_HEAP)
		free(x->heap);
	else if (x->flags & X_SLOT)
		slot->busy = false;
}
