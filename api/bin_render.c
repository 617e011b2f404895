/*
 * bin_render.c: the binary protocol's answers (bin_int.h): frames packed
 * through a small buffer into the connection's buf (buf.h), refusals, and
 * render() of a decided core_resp: the fields of the op's row's answer
 * description (ops.h struct op_ans: pack_answer) that the binary protocol
 * carries, then "replayed" (keyed ops only: reads are never "replayed";
 * what a request created counts as 201 in the metrics, as HTTP's).
 */
#include "bin_int.h"
#include "bookd_assert.h"

#include "fields.h"
#include "ops.h"
#include "payments.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The HTTP status of the refusals bin.c makes itself (the core's come
 * from fields.h), for srv_count_response. */
int bin__http_status(const char *code)
{
	static const struct {
		const char *code;
		int status;
	} t[] = {
		{ "unauthorized", 401 },    { "token_expired", 401 },
		{ "forbidden", 403 },	    { "rate_limited", 429 },
		{ "frame_too_large", 413 }, { "unavailable", 503 },
		{ "overloaded", 503 },	    { "not_found", 404 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].code, code) == 0)
			return t[i].status;
	return 400; /* invalid_request, idempotency_key_required, versions */
}

/* ---- writing answers ---- */

static void bin__frame_end(struct buf *b, size_t start)
{
	if (b->broken)
		return;
	if (mp_frame_end(b->data, start, b->size) != 0)
		b->broken = true; /* an answer over 1 MiB: our bug; close */
}

static int bin__w_write(void *data, const char *p, size_t len)
{
	struct bin_w *w = data;

	if (len > sizeof(w->buf) - w->n) {
		buf_put(w->b, w->buf, w->n);
		w->n = 0;
		if (len > sizeof(w->buf)) {
			buf_put(w->b, p, len);
			return 0;
		}
	}
	memcpy(w->buf + w->n, p, len);
	w->n += len;
	ASSERT(w->n <= sizeof(w->buf));
	return 0;
}

msgpack_packer *bin__begin(struct bin_w *w, struct buf *b)
{
	static const uint8_t zero[MP_HEADER_SIZE];

	ASSERT(b);
	w->b = b;
	w->n = 0;
	w->start = b->size;
	buf_put(b, zero, sizeof(zero));
	msgpack_packer_init(&w->pk, w, bin__w_write);
	return &w->pk;
}

void bin__end(struct bin_w *w)
{
	buf_put(w->b, w->buf, w->n);
	bin__frame_end(w->b, w->start);
}

/* The head of an answer: id, [index, count], code; n more pairs follow. */
void bin__head(msgpack_packer *pk, const struct bin_ctx *x, const char *code,
	       unsigned more)
{
	ASSERT(code);
	ASSERT(!x->batch || x->index < x->count); /* an item of its batch */
	msgpack_pack_map(pk, 2 + (x->batch ? 2 : 0) + more);
	mp_pack_kv_uint(pk, "id", x->id);
	if (x->batch) {
		mp_pack_kv_uint(pk, "index", x->index);
		mp_pack_kv_uint(pk, "count", x->count);
	}
	mp_pack_kv_str(pk, "code", code);
}

void bin__error_to(struct srv_conn *c, struct buf *b, const struct bin_ctx *x,
		   const struct bin_err *e)
{
	srv_count_response(c,
			   e->status ? e->status : bin__http_status(e->code));
	struct bin_w w;
	msgpack_packer *pk;

	pk = bin__begin(&w, b);
	bin__head(pk, x, e->code, 1 + (e->retry_after > 0));
	mp_pack_kv_str(pk, "message", e->message);
	if (e->retry_after > 0)
		mp_pack_kv_uint(pk, "retry_after", e->retry_after);
	bin__end(&w);
}

void bin__answer_error(struct srv_conn *c, const struct bin_ctx *x,
		       const struct bin_err *e)
{
	bin__error_to(c, srv_answer_begin(c), x, e);
	srv_answer_done(c);
}

void bin__conn_error(struct srv_conn *c, uint64_t id, const char *code,
		     const char *message)
{
	struct bin_ctx x = { .id = id };
	struct bin_err e = { .code = code };

	snprintf(e.message, sizeof(e.message), "%s", message);
	bin__answer_error(c, &x, &e);
}

/* ---- render ---- */

static void pack_bool(msgpack_packer *pk, bool v)
{
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

/* The events of a list answer: none without the views. */
static uint32_t events_n(const struct core_resp *resp,
			 const struct srv_views *views)
{
	return views && views->events ? resp->count : 0;
}

/* A booking, with its hold's PaymentIntent once the payments sender made
 * it (payments.h; docs/protocol.md). */
static void pack_booking(msgpack_packer *pk, const struct core_booking_view *b)
{
	char intent_id[CORE_PAY_REF_SIZE_MAX], secret[PAYMENTS_SECRET_SIZE];

	if (b->status == CORE_BOOKING_PENDING_PAYMENT &&
	    payments_intent_of(b->id, intent_id, secret))
		mp_pack_booking_paid(pk, b, intent_id, secret);
	else
		mp_pack_booking(pk, b);
}

/* One answer field's value (ops.h: enum op_ans_type), as msgpack. */
static void pack_value(msgpack_packer *pk, const struct op_ans *a,
		       const struct bin_ctx *x, const struct core_resp *resp,
		       const struct srv_views *views)
{
	uint32_t n;

	switch (a->type) {
	case OP_ANS_ID: msgpack_pack_uint64(pk, resp->id); break;
	case OP_ANS_COUNT: msgpack_pack_uint64(pk, resp->count); break;
	case OP_ANS_REGENERATED:
		msgpack_pack_uint64(pk, resp->series.regenerated);
		break;
	case OP_ANS_KEPT: msgpack_pack_uint64(pk, resp->series.kept); break;
	case OP_ANS_CANCELLED:
		msgpack_pack_uint64(pk, resp->series.cancelled);
		break;
	case OP_ANS_MORE: pack_bool(pk, resp->more); break;
	case OP_ANS_NULL: msgpack_pack_nil(pk); break;
	case OP_ANS_EVENT: mp_pack_event(pk, &resp->event); break;
	case OP_ANS_EVENTS:
		n = events_n(resp, views);
		msgpack_pack_array(pk, n);
		for (uint32_t i = 0; i < n; i++)
			mp_pack_event(pk, &views->events[i]);
		break;
	case OP_ANS_CURSOR:
		n = events_n(resp, views);
		if (resp->more && n > 0) {
			char cur[BC_CURSOR_SIZE];
			const struct core_event_view *l = &views->events[n - 1];
			int cn = snprintf(cur, sizeof(cur),
					  "%" PRId64 ".%" PRIu64, l->start_at,
					  l->id);
			ASSERT(cn > 0 && (size_t)cn < sizeof(cur));
			mp_pack_strn(pk, cur, (size_t)cn);
		} else {
			msgpack_pack_nil(pk);
		}
		break;
	case OP_ANS_BOOKING: pack_booking(pk, &resp->booking); break;
	case OP_ANS_PROMOTED:
		if (resp->has_promoted)
			pack_booking(pk, &resp->promoted);
		else
			msgpack_pack_nil(pk);
		break;
	case OP_ANS_BOOKINGS:
		n = views && views->bookings ? resp->count : 0;
		msgpack_pack_array(pk, n);
		for (uint32_t i = 0; i < n; i++)
			pack_booking(pk, &views->bookings[i]);
		break;
	case OP_ANS_CUSTOMER_ID: mp_pack_str(pk, x->customer_id); break;
	case OP_ANS_CUTOFF_HOURS:
		msgpack_pack_uint64(pk, resp->org.cancel_cutoff_hours);
		break;
	case OP_ANS_HOLD_MINUTES:
	case OP_ANS_HORIZON_DAYS:
		n = a->type == OP_ANS_HOLD_MINUTES ? resp->org.hold_minutes
						   : resp->org.horizon_days;
		if (n)
			msgpack_pack_uint64(pk, n);
		else
			msgpack_pack_nil(pk); /* the server's own */
		break;
	case OP_ANS_CAT:
		if (views && views->cats && resp->count == 1)
			mp_pack_cat(pk, &views->cats[0]);
		else
			msgpack_pack_nil(pk);
		break;
	case OP_ANS_CATS:
		n = views && views->cats ? resp->count : 0;
		msgpack_pack_array(pk, n);
		for (uint32_t i = 0; i < n; i++)
			mp_pack_cat(pk, &views->cats[i]);
		break;
	case OP_ANS_CAT_CURSOR: /* the last id, as a decimal string */
		n = views && views->cats ? resp->count : 0;
		if (resp->more && n > 0) {
			char cur[24];
			int cn = snprintf(cur, sizeof(cur), "%" PRIu64,
					  views->cats[n - 1].id);
			ASSERT(cn > 0 && (size_t)cn < sizeof(cur));
			mp_pack_strn(pk, cur, (size_t)cn);
		} else {
			msgpack_pack_nil(pk);
		}
		break;
	default: /* an echo the binary context does not carry */
		ASSERT(!"an answer field the binary protocol cannot write");
		msgpack_pack_nil(pk);
		break;
	}
}

/* The entries ans[0..n) the binary protocol carries, as map pairs. */
static void pack_answer(msgpack_packer *pk, const struct op_ans *ans,
			unsigned n, const struct bin_ctx *x,
			const struct core_resp *resp,
			const struct srv_views *views)
{
	for (unsigned i = 0; i < n; i++) {
		const struct op_ans *a = &ans[i];
		if (a->proto & OP_BIN) {
			mp_pack_str(pk, a->name);
			if (a->type == OP_ANS_OBJECT) {
				ASSERT(i + a->sub < n);
				msgpack_pack_map(pk, ops_answer_fields(a + 1,
								       a->sub,
								       OP_BIN));
				pack_answer(pk, a + 1, a->sub, x, resp, views);
			} else {
				pack_value(pk, a, x, resp, views);
			}
		}
		if (a->type == OP_ANS_OBJECT)
			i += a->sub;
	}
}

void bin_render(struct srv_conn *c, void *state, const void *ctx, int rc,
		const struct core_resp *resp, const struct srv_views *views,
		struct buf *out)
{
	const struct bin_ctx *x = ctx;
	struct bin_err e = { .code = NULL };
	struct bin_w w;
	msgpack_packer *pk;
	const struct op_def *def;
	bool replayed;
	enum core_code code;
	int http;

	free(x->series);
	if (rc < 0) {
		e.code = fld_errno_error(rc, &http);
		e.status = http;
		snprintf(e.message, sizeof(e.message), "%s",
			 fld_errno_message(rc));
		bin__error_to(c, out, x, &e);
		return;
	}
	code = resp->code;
	if (code == CORE_OK && x->op == MP_OP_BOOKING_GET &&
	    x->customer_id[0] &&
	    strcmp(resp->booking.customer_id, x->customer_id) != 0)
		code = CORE_NO_BOOKING; /* not the caller's: as if none */
	if (code != CORE_OK) {
		e.code = fld_code_error(code, &http);
		e.status = http;
		if (code == CORE_LIMIT)
			core_limit_message(resp, e.message, sizeof(e.message));
		else if (resp->op == CORE_OP_CATALOG_GET && http == 404)
			snprintf(e.message, sizeof(e.message), "%s",
				 ops_cat_missing(ops_cat_kind(
					 ops_by_bin((enum mp_op)x->op))));
		else
			snprintf(e.message, sizeof(e.message), "%s",
				 fld_code_message(code));
		bin__error_to(c, out, x, &e);
		return;
	}
	def = ops_by_bin(x->op);
	/* Only decisions that changed state (keyed ops) are replays. */
	replayed = resp->replayed && def && def->idem != OP_IDEM_NONE;
	/* As HTTP: 201 for what a request created (ops.c), 200 otherwise. */
	srv_count_response(c, def && def->creates ? 201 : 200);
	pk = bin__begin(&w, out);
	if (def && def->answer) {
		bin__head(pk, x, "ok",
			  ops_answer_fields(def->answer, def->answer_count,
					    OP_BIN) +
				  replayed);
		pack_answer(pk, def->answer, def->answer_count, x, resp, views);
	} else {
		bin__head(pk, x, "internal", 1);
		mp_pack_kv_str(pk, "message", "unknown op in render");
		replayed = false;
	}
	if (replayed) {
		mp_pack_str(pk, "replayed");
		msgpack_pack_true(pk);
	}
	bin__end(&w);
}
