/*
 * bin.c: the binary protocol's server side (docs/protocol.md), a struct
 * srv_proto (srv.h) on top of proto.c's frames.
 *
 * parse(): frame by frame. A partial frame is left for the next call; a
 * length over MP_BODY_SIZE_MAX is answered frame_too_large and the
 * connection closes (the stream cannot be resynchronised); a body that is
 * not one msgpack map is answered invalid_request (id 0, or the request's
 * id once readable: a good map followed by trailing bytes is answered with
 * its own id) and the connection goes on, the framing being intact (before
 * the hello it closes). The first frame must be the hello: it fixes the
 * connection's principal (auth_bearer); a failed hello is answered and the
 * connection closes.
 *
 * A request is checked whole: the principal's rights from the op's row of
 * ops.h, then its fields into the op's struct op_in (ops.h; types and
 * fields.h validators: bin__decode), its key by the row's rule, then the
 * rate limits of its class (bin__limit). ops.c makes the core_req
 * (ops_request) and the key's fingerprint (ops_idem: the op's name and its
 * canonical fields, the same as HTTP's for the same input), given to
 * srv_submit() with a struct bin_ctx (bin_int.h); or it is answered at
 * once (errors, status). bin_render.c writes the answer frames: render()
 * turns the decided core_resp into one. Idempotency keys are scoped by the
 * principal (auth_idem_key).
 *
 * book.batch: every item is checked before any is submitted (a bad item
 * refuses the whole frame, nothing booked), then each item is its own core
 * request whose answer is its own frame carrying the batch's id and the
 * item's index. If srv_submit() is out of room (-EAGAIN) halfway, the
 * connection state remembers how many items went (batch_resume) and the
 * frame is parsed again later, skipping those.
 *
 * Memory: msgpack objects live in one zone per network thread, cleared
 * after each frame; mp_decode bounds the tree by the frame's size. The only
 * allocation on a request's path is a series spec (series.create, rare:
 * core_req carries a pointer to it and the context has no room), freed by
 * render(), which net.c calls for every submitted request, also when the
 * connection closed before its answer (srv.h).
 */
#include "bin_int.h"
#include "bookd_assert.h"

#include "fields.h"
#include "ops.h"
#include "proto.h"
#include "srv.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bin_conn {
	bool hello_done;
	bool closing;
	struct auth_principal who;
	uint64_t limit_key; /* anon: its key; customer: its id */
	uint64_t batch_id;  /* the batch whose first batch_resume items went */
	uint32_t batch_resume;
	core_time now; /* read once per parse() */
};

_Static_assert(FLD_IDEM_KEY_SIZE_MAX == MP_KEY_SIZE_MAX, "one key rule");

/* ---- the per-thread zone ---- */

static pthread_key_t bin__zone_key;
static pthread_once_t bin__zone_once = PTHREAD_ONCE_INIT;
static __thread msgpack_zone *bin__zone;

static void bin__zone_free(void *z) { msgpack_zone_free(z); }

static void bin__zone_key_init(void)
{
	(void)pthread_key_create(&bin__zone_key, bin__zone_free);
}

static msgpack_zone *bin__zone_get(void)
{
	if (!bin__zone) {
		pthread_once(&bin__zone_once, bin__zone_key_init);
		bin__zone = msgpack_zone_new(MP_ZONE_CHUNK_SIZE);
		if (bin__zone)
			(void)pthread_setspecific(bin__zone_key, bin__zone);
	}
	return bin__zone;
}

__attribute__((format(printf, 3, 4))) static int bin__fail(struct bin_err *e,
							   const char *code,
							   const char *fmt, ...)
{
	va_list ap;

	ASSERT(code);
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- reading fields ---- */

/* m's field name, or NULL when it is missing; then *rc is what the
 * reader answers: "name required" when it is, else 0 (left as it was). */
static const msgpack_object *bin__field(const msgpack_object *m,
					const char *name, bool required,
					struct bin_err *e, int *rc)
{
	const msgpack_object *o = mp_get(m, name);

	*rc = 0;
	if (!o && required)
		*rc = bin__fail(e, "invalid_request", "%s required", name);
	return o;
}

/* A required or optional id. */
static int bin__id(const msgpack_object *m, const char *name, bool required,
		   uint64_t *out, struct bin_err *e)
{
	int rc;
	const msgpack_object *o = bin__field(m, name, required, e, &rc);

	if (!o)
		return rc;
	/* an integer, or a string as HTTP's ids (fld_id_parse: "01" is
	 * none) */
	if (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN) {
		const char *s;
		size_t n;
		if (mp_str(o, &s, &n) != 0 || fld_id_parse(s, n, out) != 0)
			return bin__fail(e, "invalid_request",
					 "%s: not an id (a decimal 1..2^64-1 "
					 "without leading zeros)",
					 name);
		return 0;
	}
	if (mp_id(o, out) != 0)
		return bin__fail(e, "invalid_request", "%s: not an id", name);
	return 0;
}

static int bin__text(const msgpack_object *m, const char *name, bool required,
		     char *dst, size_t cap, struct bin_err *e)
{
	int rc;
	const msgpack_object *o = bin__field(m, name, required, e, &rc);

	if (!o)
		return rc;
	if (mp_str_copy(o, dst, cap) != 0)
		return bin__fail(e, "invalid_request",
				 "%s: a string of at most %zu bytes", name,
				 cap - 1);
	if (!fld_text_valid(dst, strlen(dst))) /* as a JSON string */
		return bin__fail(e, "invalid_request", "%s: not valid UTF-8",
				 name);
	if (required && dst[0] == '\0')
		return bin__fail(e, "invalid_request", "%s is empty", name);
	return 0;
}

static int bin__u32(const msgpack_object *m, const char *name, bool required,
		    uint32_t *out, struct bin_err *e)
{
	int rc;
	const msgpack_object *o = bin__field(m, name, required, e, &rc);
	uint64_t v;

	if (!o)
		return rc;
	if (mp_uint(o, &v) != 0 || v > UINT32_MAX)
		return bin__fail(e, "invalid_request",
				 "%s: an integer 0..4294967295", name);
	*out = (uint32_t)v;
	return 0;
}

static int bin__date(const msgpack_object *o, const char *name,
		     struct core_date *out, struct bin_err *e)
{
	const char *s;
	size_t n;

	if (mp_str(o, &s, &n) != 0 || fld_date_parse(s, n, out) != 0)
		return bin__fail(e, "invalid_request", "%s: YYYY-MM-DD", name);
	return 0;
}

static int bin__time(const msgpack_object *m, const char *name, core_time *out,
		     struct bin_err *e)
{
	const msgpack_object *o = mp_get(m, name);
	const char *s;
	size_t n;
	int64_t v;

	if (!o)
		return 0;
	if (mp_int(o, &v) == 0) {
		*out = v;
		return 0;
	}
	if (mp_str(o, &s, &n) == 0 && fld_time_parse(s, n, out) == 0)
		return 0;
	return bin__fail(e, "invalid_request",
			 "%s: ms since the epoch or RFC 3339", name);
}

/* The customer id of a request: given, or the JWT's. */
static int bin__customer(const msgpack_object *m, const struct bin_conn *st,
			 char out[CORE_CUSTOMER_ID_SIZE_MAX + 1],
			 struct bin_err *e)
{
	const msgpack_object *o = mp_get(m, "customer_id");
	const char *s;
	size_t n;

	if (!o) {
		if (auth_acts_for(&st->who, NULL, 0, out) == 0)
			return 0;
		return bin__fail(e, "invalid_request", "customer_id required");
	}
	if (mp_str(o, &s, &n) != 0 || !fld_customer_id_valid(s, n))
		return bin__fail(e, "invalid_request",
				 "customer_id: 1-64 of A-Za-z0-9._:@-");
	if (auth_acts_for(&st->who, s, n, out) != 0)
		return bin__fail(e, "forbidden",
				 "a customer acts only for itself");
	return 0;
}

/* The idempotency key of a keyed op (*n 0: none); required or not as the
 * op's table entry says (ops.c). */
static int bin__key(const msgpack_object *m, const struct op_def *def,
		    const char **s, size_t *n, struct bin_err *e)
{
	const msgpack_object *o = mp_get(m, "key");

	ASSERT(def->idem == OP_IDEM_OPTIONAL || def->idem == OP_IDEM_REQUIRED);
	*s = NULL;
	*n = 0;
	if (!o) {
		if (def->idem == OP_IDEM_REQUIRED)
			return bin__fail(e, "idempotency_key_required",
					 "%s needs an idempotency key",
					 def->name);
		return 0;
	}
	if (mp_str(o, s, n) != 0 || !fld_idem_key_valid(*s, *n))
		return bin__fail(e, "invalid_request",
				 "key: 1-%d bytes of printable ASCII (as "
				 "HTTP's Idempotency-Key)",
				 FLD_IDEM_KEY_SIZE_MAX);
	ASSERT(*n > 0);
	return 0;
}

/* The core request of a decoded op (ops_request), with its key and the
 * input's fingerprint (ops_idem: the same as HTTP's for the same input)
 * when the op takes one; 0, or -EINVAL with e set. */
static int bin__submit_req(const msgpack_object *m, const struct bin_conn *st,
			   const struct op_def *def, const struct op_in *in,
			   struct core_req *req, struct bin_err *e)
{
	const char *key = NULL;
	size_t n = 0;

	if (def->idem != OP_IDEM_NONE && bin__key(m, def, &key, &n, e))
		return -EINVAL;
	ops_request(def, in, &st->who, req);
	if (n)
		ops_idem(def, in, &st->who, key, n, &req->idem);
	ASSERT(n || !core_idem_present(&req->idem));
	return 0;
}

static int bin__payment(const msgpack_object *m, enum core_payment *out,
			struct bin_err *e)
{
	const msgpack_object *o = mp_get(m, "payment");
	const char *s;
	size_t n;

	*out = CORE_PAY_AUTO;
	if (!o)
		return 0;
	if (mp_str(o, &s, &n) != 0)
		return bin__fail(e, "invalid_request", "payment: a string");
	if (n == 4 && memcmp(s, "none", 4) == 0)
		*out = CORE_PAY_NONE; /* a customer's: ops_request's rule */
	else if (n == 6 && memcmp(s, "stripe", 6) == 0)
		*out = CORE_PAY_STRIPE;
	else if (n == 4 && memcmp(s, "auto", 4) == 0)
		*out = CORE_PAY_AUTO;
	else
		return bin__fail(e, "invalid_request",
				 "payment: \"none\" or \"stripe\"");
	return 0;
}

/* ---- ops' fields into their struct op_in ---- */

static int bin__book_fields(const msgpack_object *m, const struct bin_conn *st,
			    struct op_in *in, struct bin_err *e)
{
	return bin__id(m, "event_id", true, &in->event_id, e) ||
			       bin__customer(m, st, in->customer_id, e) ||
			       bin__payment(m, &in->u.payment, e)
		       ? -EINVAL
		       : 0;
}

/* An item of book.batch into its core request (a book's). */
static int bin__book(const msgpack_object *m, const struct bin_conn *st,
		     struct core_req *req, struct bin_err *e)
{
	struct op_in in;

	memset(&in, 0, sizeof(in));
	if (bin__book_fields(m, st, &in, e))
		return -EINVAL;
	return bin__submit_req(m, st, ops_get(OP_BOOK), &in, req, e);
}

static int bin__series(const msgpack_object *m, struct core_series_spec *s,
		       struct bin_err *e)
{
	const msgpack_object *o;
	char text[CORE_TZ_SIZE_MAX];
	char msg[BIN_MESSAGE_SIZE_MAX];

	if (bin__id(m, "org_id", true, &s->org_id, e) ||
	    bin__id(m, "location_id", true, &s->location_id, e) ||
	    bin__id(m, "instructor_id", true, &s->instructor_id, e) ||
	    bin__text(m, "title", true, s->title, sizeof(s->title), e) ||
	    bin__u32(m, "capacity", true, &s->capacity, e) ||
	    bin__u32(m, "waitlist_capacity", false, &s->waitlist_capacity, e) ||
	    bin__u32(m, "price_cents", false, &s->price_cents, e) ||
	    bin__text(m, "timezone", true, s->timezone, sizeof(s->timezone),
		      e) ||
	    bin__u32(m, "duration_min", true, &s->duration_min, e))
		return -EINVAL;
	if (!fld_timezone_valid(s->timezone))
		return bin__fail(e, "invalid_request",
				 "timezone: not an IANA zone");
	if ((o = mp_get(m, "currency"))) {
		const char *c;
		size_t n;
		if (mp_str(o, &c, &n) != 0 ||
		    (n > 0 && fld_currency_parse(c, n, s->currency) != 0))
			return bin__fail(e, "invalid_request",
					 "currency: three letters");
	}
	if (s->price_cents > 0 && s->currency[0] == '\0')
		return bin__fail(e, "invalid_request",
				 "currency required with a price");
	o = mp_get(m, "weekdays");
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.size > 7)
		return bin__fail(e, "invalid_request",
				 "weekdays: an array of 1-7 of \"MO\"..\"SU\"");
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const char *d = NULL;
		size_t n = 0;
		uint8_t bit;
		if (mp_str(&o->via.array.ptr[i], &d, &n) != 0)
			d = NULL;
		if (!d || fld_weekday_parse(d, n, &bit) != 0) {
			fld_weekday_error(d, n, msg, sizeof(msg));
			return bin__fail(e, "invalid_request", "%s", msg);
		}
		s->weekday_mask |= bit;
	}
	if (bin__text(m, "start_time", true, text, sizeof(text), e))
		return -EINVAL;
	if (fld_hhmm_parse(text, strlen(text), &s->start_minute) != 0)
		return bin__fail(e, "invalid_request", "start_time: HH:MM");
	if (!(o = mp_get(m, "first_date")))
		return bin__fail(e, "invalid_request", "first_date required");
	if (bin__date(o, "first_date", &s->first_date, e))
		return -EINVAL;
	if ((o = mp_get(m, "last_date")) &&
	    bin__date(o, "last_date", &s->last_date, e))
		return -EINVAL;
	if ((o = mp_get(m, "skip_dates"))) {
		if (o->type != MSGPACK_OBJECT_ARRAY ||
		    o->via.array.size > CORE_SKIP_DATE_COUNT_MAX)
			return bin__fail(e, "invalid_request",
					 "skip_dates: an array of at most %d dates",
					 CORE_SKIP_DATE_COUNT_MAX);
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (bin__date(&o->via.array.ptr[i], "skip_dates",
				      &s->skip[i], e))
				return -EINVAL;
		s->skip_count = o->via.array.size;
	}
	if (fld_series_check(s, msg, sizeof(msg)) != 0)
		return bin__fail(e, "invalid_request", "%s", msg);
	ASSERT(s->weekday_mask != 0 && s->weekday_mask < 0x80);
	ASSERT(s->skip_count <= CORE_SKIP_DATE_COUNT_MAX);
	return 0;
}

/* A list's limit: 1..CORE_LIST_LIMIT_MAX, CORE_LIST_LIMIT_DEFAULT when
 * absent (event.list, customer.bookings). */
static int bin__limit_field(const msgpack_object *m, uint32_t *limit,
			    struct bin_err *e)
{
	*limit = CORE_LIST_LIMIT_DEFAULT;
	if (bin__u32(m, "limit", false, limit, e))
		return -EINVAL;
	if (*limit == 0 || *limit > CORE_LIST_LIMIT_MAX)
		return bin__fail(e, "invalid_request", "limit: 1..%d",
				 CORE_LIST_LIMIT_MAX);
	return 0;
}

static int bin__list(const msgpack_object *m, const struct bin_conn *st,
		     struct op_list_in *l, struct bin_err *e)
{
	const msgpack_object *o;

	l->from = st->now; /* as HTTP: upcoming events */
	l->to = INT64_MAX;
	if (bin__id(m, "org_id", false, &l->org_id, e) ||
	    bin__id(m, "location_id", false, &l->location_id, e) ||
	    bin__id(m, "instructor_id", false, &l->instructor_id, e) ||
	    bin__time(m, "from", &l->from, e) ||
	    bin__time(m, "to", &l->to, e) || bin__limit_field(m, &l->limit, e))
		return -EINVAL;
	if (l->to <= l->from)
		return bin__fail(e, "invalid_request", "to must be after from");
	if ((o = mp_get(m, "cursor"))) {
		char cur[BC_CURSOR_SIZE];
		int64_t at;
		uint64_t id;
		int used = 0;
		if (mp_str_copy(o, cur, sizeof(cur)) != 0 ||
		    sscanf(cur, "%" SCNd64 ".%" SCNu64 "%n", &at, &id, &used) !=
			    2 ||
		    (size_t)used != strlen(cur) || id == 0)
			return bin__fail(e, "invalid_request",
					 "cursor: not one of ours");
		l->after_start = at;
		l->after_id = id;
	}
	return 0;
}

static int bin__patch(const msgpack_object *m, struct op_in *in,
		      struct bin_err *e)
{
	struct op_patch_in *p = &in->u.patch;
	const msgpack_object *cap = mp_get(m, "capacity");
	const msgpack_object *o;
	int64_t c = -1;

	p->capacity = -1;
	if (bin__id(m, "event_id", true, &in->event_id, e) ||
	    bin__id(m, "instructor_id", false, &p->instructor_id, e) ||
	    bin__id(m, "location_id", false, &p->location_id, e) ||
	    bin__u32(m, "duration_min", false, &p->duration_min, e) ||
	    bin__text(m, "title", false, p->title, sizeof(p->title), e) ||
	    bin__time(m, "start_at", &p->start_at, e))
		return -EINVAL;
	if (mp_get(m, "duration_min") &&
	    (p->duration_min == 0 || p->duration_min > CORE_DURATION_MIN_MAX))
		return bin__fail(e, "invalid_request", "duration_min: 1..%d",
				 CORE_DURATION_MIN_MAX);
	if (mp_get(m, "title") && p->title[0] == '\0')
		return bin__fail(e, "invalid_request", "title is empty");
	if (mp_get(m, "start_at") && p->start_at <= 0)
		return bin__fail(e, "invalid_request", "start_at: after 1970");
	if (cap) {
		if (mp_int(cap, &c) != 0 || c < 0 || c > CORE_CAPACITY_MAX)
			return bin__fail(e, "invalid_request",
					 "capacity: 0..%d", CORE_CAPACITY_MAX);
		p->capacity = c;
	}
	if ((o = mp_get(m, "status"))) {
		const char *s;
		size_t n;
		if (mp_str(o, &s, &n) == 0 && n == 9 &&
		    memcmp(s, "cancelled", 9) == 0)
			p->cancel = true;
		else if (mp_str(o, &s, &n) == 0 && n == 9 &&
			 memcmp(s, "scheduled", 9) == 0)
			p->restore = true;
		else
			return bin__fail(e, "invalid_request",
					 "status: \"cancelled\" or "
					 "\"scheduled\"");
	}
	if (!cap && !o && !p->instructor_id && !p->location_id &&
	    !p->duration_min && !p->title[0] && !p->start_at)
		return bin__fail(e, "invalid_request", "nothing to change");
	return 0;
}

/* An org's settings (org.create, org.patch), each optional: into cat,
 * with the bits of those given. */
static int bin__org_settings(const msgpack_object *m, struct op_cat_in *cat,
			     struct bin_err *e)
{
	static const struct {
		const char *name;
		int64_t max;
		uint8_t bit;
	} f[] = {
		{ "cancel_cutoff_hours", CORE_CUTOFF_HOURS_MAX,
		  CORE_ORG_SET_CUTOFF },
		{ "hold_minutes", CORE_HOLD_MINUTES_MAX, CORE_ORG_SET_HOLD },
		{ "horizon_days", UINT16_MAX, CORE_ORG_SET_HORIZON },
	};
	uint16_t *at[] = { &cat->settings.cancel_cutoff_hours,
			   &cat->settings.hold_minutes,
			   &cat->settings.horizon_days };

	for (unsigned i = 0; i < 3; i++) {
		const msgpack_object *o = mp_get(m, f[i].name);
		int64_t v;

		if (!o)
			continue;
		if (mp_int(o, &v) != 0 || v < 0 || v > f[i].max)
			return bin__fail(e, "invalid_request", "%s: 0..%d",
					 f[i].name, (int)f[i].max);
		*at[i] = (uint16_t)v;
		cat->settings_set |= f[i].bit;
	}
	return 0;
}

/* A catalogue read: get (its "<kind>_id"), or list ("org_id" but for
 * orgs, "limit", "cursor": a next_cursor, the last id read). */
static int bin__cat_read(const msgpack_object *m, enum mp_op op,
			 struct op_in *in, struct bin_ctx *x, struct bin_err *e)
{
	static const char *const id_name[] = { "", "org_id", "location_id",
					       "instructor_id", "series_id" };
	const struct op_def *def = ops_by_bin(op);
	unsigned kind = ops_cat_kind(def);
	struct op_read_in *r = &in->u.read;

	ASSERT(kind >= CORE_CAT_ORG && kind <= CORE_CAT_SERIES);
	if (def->core == CORE_OP_CATALOG_GET)
		return bin__id(m, id_name[kind], true, &r->id, e);
	if (bin__limit_field(m, &r->limit, e) ||
	    bin__id(m, "cursor", false, &r->after_id, e) ||
	    (kind != CORE_CAT_ORG &&
	     bin__id(m, "org_id", false, &r->org_id, e)))
		return -EINVAL;
	x->limit = r->limit;
	return 0;
}

/* series.patch (end: series.end, last_date only): what changes, as the
 * HTTP body's fields; at least one. */
static int bin__spatch(const msgpack_object *m, struct core_series_patch *x,
		       bool end, struct bin_err *e)
{
	const msgpack_object *o;
	char text[16];
	bool any = false;
	uint32_t v = 0;

	x->capacity = x->waitlist_capacity = x->price_cents = -1;
	x->start_minute = -1;
	if (bin__id(m, "series_id", true, &x->series_id, e))
		return -EINVAL;
	if (end) {
		if (!(o = mp_get(m, "last_date")))
			return bin__fail(e, "invalid_request",
					 "last_date required");
		return bin__date(o, "last_date", &x->last_date, e);
	}
	if ((o = mp_get(m, "title"))) {
		if (bin__text(m, "title", true, x->title, sizeof(x->title), e))
			return -EINVAL;
		any = true;
	}
	if (mp_get(m, "capacity")) {
		if (bin__u32(m, "capacity", true, &v, e))
			return -EINVAL;
		x->capacity = v, any = true;
	}
	if (mp_get(m, "waitlist_capacity")) {
		if (bin__u32(m, "waitlist_capacity", true, &v, e))
			return -EINVAL;
		x->waitlist_capacity = v, any = true;
	}
	if (mp_get(m, "price_cents")) {
		if (bin__u32(m, "price_cents", true, &v, e))
			return -EINVAL;
		x->price_cents = v, any = true;
	}
	if ((o = mp_get(m, "currency"))) {
		const char *c;
		size_t n;
		if (mp_str(o, &c, &n) != 0 ||
		    fld_currency_parse(c, n, x->currency) != 0)
			return bin__fail(e, "invalid_request",
					 "currency: three letters");
		any = true;
	}
	if (mp_get(m, "start_time")) {
		uint16_t minute;
		if (bin__text(m, "start_time", true, text, sizeof(text), e))
			return -EINVAL;
		if (fld_hhmm_parse(text, strlen(text), &minute) != 0)
			return bin__fail(e, "invalid_request",
					 "start_time: HH:MM");
		x->start_minute = minute, any = true;
	}
	if (mp_get(m, "duration_min")) {
		if (bin__u32(m, "duration_min", true, &x->duration_min, e))
			return -EINVAL;
		if (x->duration_min == 0)
			return bin__fail(e, "invalid_request",
					 "duration_min: 1..1440");
		any = true;
	}
	if ((o = mp_get(m, "weekdays"))) {
		if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
		    o->via.array.size > 7)
			return bin__fail(e, "invalid_request",
					 "weekdays: an array of 1-7 of "
					 "\"MO\"..\"SU\"");
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			const char *d = NULL;
			size_t n = 0;
			uint8_t bit;
			if (mp_str(&o->via.array.ptr[i], &d, &n) != 0 ||
			    fld_weekday_parse(d, n, &bit) != 0)
				return bin__fail(e, "invalid_request",
						 "weekdays: \"MO\"..\"SU\"");
			x->weekday_mask |= bit;
		}
		any = true;
	}
	if ((o = mp_get(m, "last_date"))) {
		if (bin__date(o, "last_date", &x->last_date, e))
			return -EINVAL;
		any = true;
	}
	if ((o = mp_get(m, "from")) && bin__date(o, "from", &x->from, e))
		return -EINVAL;
	if (!any)
		return bin__fail(e, "invalid_request", "nothing to change");
	return 0;
}

/* The fields of a non-batch op into in (and what its answer needs into
 * x); 0, or -EINVAL with e set. */
static int bin__decode(const msgpack_object *m, const struct bin_conn *st,
		       enum mp_op op, struct op_in *in, struct bin_ctx *x,
		       struct bin_err *e)
{
	struct op_cat_in *cat = &in->u.cat;
	const msgpack_object *o;

	switch (op) {
	case MP_OP_ORG_CREATE:
		if (bin__text(m, "name", true, cat->name, sizeof(cat->name),
			      e) ||
		    bin__text(m, "timezone", true, cat->timezone,
			      sizeof(cat->timezone), e))
			return -EINVAL;
		if (!fld_timezone_valid(cat->timezone))
			return bin__fail(e, "invalid_request",
					 "timezone: not an IANA zone");
		return bin__org_settings(m, cat, e);
	case MP_OP_ORG_PATCH:
		if (bin__id(m, "org_id", true, &cat->org_id, e) ||
		    bin__org_settings(m, cat, e))
			return -EINVAL;
		if (!cat->settings_set)
			return bin__fail(e, "invalid_request",
					 "nothing to change");
		return 0;
	case MP_OP_LOCATION_CREATE:
	case MP_OP_INSTRUCTOR_CREATE:
		return bin__id(m, "org_id", true, &cat->org_id, e) ||
				       bin__text(m, "name", true, cat->name,
						 sizeof(cat->name), e)
			       ? -EINVAL
			       : 0;
	case MP_OP_CUSTOMER_CREATE:
		if (bin__customer(m, st, in->customer_id, e) ||
		    bin__text(m, "name", false, cat->name, sizeof(cat->name),
			      e) ||
		    bin__text(m, "email", false, cat->email, sizeof(cat->email),
			      e))
			return -EINVAL;
		memcpy(x->customer_id, in->customer_id, sizeof(x->customer_id));
		return 0;
	case MP_OP_SERIES_CREATE: return bin__series(m, &in->u.series, e);
	case MP_OP_SERIES_PATCH:
	case MP_OP_SERIES_END:
		return bin__spatch(m, &in->u.spatch, op == MP_OP_SERIES_END, e);
	case MP_OP_GENERATE:
		if ((o = mp_get(m, "until")) &&
		    bin__date(o, "until", &in->u.generate.until, e))
			return -EINVAL;
		return bin__id(m, "series_id", false, &in->u.generate.series_id,
			       e);
	case MP_OP_EVENT_GET:
		return bin__id(m, "event_id", true, &in->event_id, e);
	case MP_OP_EVENT_LIST:
		if (bin__list(m, st, &in->u.list, e))
			return -EINVAL;
		x->limit = in->u.list.limit;
		return 0;
	case MP_OP_EVENT_PATCH: return bin__patch(m, in, e);
	case MP_OP_BOOK: return bin__book_fields(m, st, in, e);
	case MP_OP_CANCEL:
		return bin__id(m, "booking_id", true, &in->booking_id, e);
	case MP_OP_BOOKING_GET:
		if (st->who.role == AUTH_CUSTOMER) /* render checks the owner */
			memcpy(x->customer_id, st->who.customer_id,
			       sizeof(x->customer_id));
		return bin__id(m, "booking_id", true, &in->booking_id, e);
	case MP_OP_CUSTOMER_BOOKINGS:
		return bin__customer(m, st, in->customer_id, e) ||
				       bin__limit_field(m, &in->u.limit, e)
			       ? -EINVAL
			       : 0;
	case MP_OP_ORG_GET:
	case MP_OP_ORG_LIST:
	case MP_OP_LOCATION_GET:
	case MP_OP_LOCATION_LIST:
	case MP_OP_INSTRUCTOR_GET:
	case MP_OP_INSTRUCTOR_LIST:
	case MP_OP_SERIES_GET:
	case MP_OP_SERIES_LIST: return bin__cat_read(m, op, in, x, e);
	default: return bin__fail(e, "invalid_request", "unknown op");
	}
}

/* Builds req (and x) for a non-batch op; 0, or -EINVAL with e set. */
static int bin__request(const msgpack_object *m, const struct bin_conn *st,
			enum mp_op op, struct core_req *req, struct bin_ctx *x,
			struct bin_err *e)
{
	const struct op_def *def = ops_by_bin(op);
	struct op_in in;

	ASSERT(def && def->core != CORE_OP_NONE); /* bin__frame's */
	memset(&in, 0, sizeof(in));
	if (bin__decode(m, st, op, &in, x, e) ||
	    bin__submit_req(m, st, def, &in, req, e))
		return -EINVAL;
	if (op == MP_OP_SERIES_CREATE) {
		/* the core reads the spec through a pointer, until render */
		x->series = malloc(sizeof(*x->series));
		if (!x->series)
			return bin__fail(e, "unavailable", "out of memory");
		*x->series = in.u.series;
		req->u.series = x->series;
	}
	ASSERT(req->op == def->core);
	return 0;
}

/* ---- status: answered at once ---- */

/* "jobs": one map per scheduled job (core/jobs.h); times in Unix ms, 0
 * for never or not known. The client's struct bc_job_info holds them. */
_Static_assert(JOBS_COUNT <= BC_JOB_COUNT_MAX, "bc_status_info.jobs");
_Static_assert(JOBS_NAME_SIZE <= sizeof(((struct bc_job_info *)0)->name) &&
		       JOBS_SCHEDULE_SIZE <=
			       sizeof(((struct bc_job_info *)0)->schedule) &&
		       JOBS_MESSAGE_SIZE <=
			       sizeof(((struct bc_job_info *)0)->message),
	       "bc_job_info's strings hold the registry's");
static void bin__jobs(msgpack_packer *pk, const struct srv_status *s)
{
	static const char *const results[] = {
		[JOBS_NEVER] = "never", [JOBS_OK] = "ok", [JOBS_FAILED] = "failed"
	};

	mp_pack_str(pk, "jobs");
	msgpack_pack_array(pk, JOBS_COUNT);
	for (unsigned i = 0; i < JOBS_COUNT; i++) {
		const struct jobs_state *j = &s->jobs[i];

		ASSERT((unsigned)j->result < 3);
		msgpack_pack_map(pk, 10);
		mp_pack_kv_str(pk, "name", jobs_name((enum jobs_id)i));
		mp_pack_kv_str(pk, "schedule", j->schedule);
		mp_pack_str(pk, "active");
		if (j->active)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		mp_pack_kv_str(pk, "result", results[j->result]);
		mp_pack_kv_int(pk, "last_run_at", j->last_run_at_ms);
		mp_pack_kv_uint(pk, "duration_us", j->duration_us);
		mp_pack_kv_int(pk, "next_run_at", j->next_run_at_ms);
		mp_pack_kv_uint(pk, "runs", j->runs);
		mp_pack_kv_uint(pk, "failures", j->failures);
		mp_pack_kv_str(pk, "message", j->message);
	}
}

static void bin__status(struct srv_conn *c, const struct bin_ctx *x)
{
	struct srv_status s;
	struct buf *b = srv_answer_begin(c);
	struct bin_w w;
	msgpack_packer *pk;

	memset(&s, 0, sizeof(s));
	srv_status_get(srv_conn_srv(c), &s);
	srv_count_response(c, 200);
	pk = bin__begin(&w, b);
	bin__head(pk, x, "ok", 1);
	mp_pack_str(pk, "status");
	msgpack_pack_map(pk, 15);
	mp_pack_kv_uint(pk, "shard_count", s.shard_count);
	mp_pack_kv_uint(pk, "thread_count", s.thread_count);
	mp_pack_kv_uint(pk, "conn_count", s.conn_count);
	mp_pack_kv_uint(pk, "wal_appended_lsn", s.wal_appended_lsn);
	mp_pack_kv_uint(pk, "wal_durable_lsn", s.wal_durable_lsn);
	mp_pack_kv_uint(pk, "wal_sync_count", s.wal_sync_count);
	mp_pack_kv_uint(pk, "wal_sync_us_avg",
			s.wal_sync_count
				? s.wal_sync_ns_total / s.wal_sync_count / 1000
				: 0);
	mp_pack_kv_uint(pk, "wal_sync_us_max", s.wal_sync_ns_max / 1000);
	mp_pack_kv_int(pk, "wal_error", s.wal_error);
	mp_pack_kv_str(pk, "repl_state",
		       s.repl_state ? s.repl_state : "disabled");
	mp_pack_kv_uint(pk, "repl_lag_records", s.repl_lag_records);
	mp_pack_str(pk, "repl_lag_seconds");
	msgpack_pack_double(pk, s.repl_lag_seconds);
	mp_pack_kv_uint(pk, "requests_total", s.requests_total);
	mp_pack_kv_int(pk, "started_at", s.started_at);
	bin__jobs(pk, &s);
	bin__end(&w);
	srv_answer_done(c);
}

/* ---- parse ---- */

/* Rate limits (as HTTP's, auth.h), by the op's class (ops.h): the
 * service key only its own; anon and customer connections their
 * address's (the peer: no X-Forwarded-For here) and their key's or sub's.
 * true: allowed. */
static bool bin__limit(struct srv_conn *c, const struct bin_conn *st,
		       const struct op_def *def, struct bin_err *e)
{
	struct auth_limiter *l;
	core_time now;
	uint32_t retry = 1;
	bool ok;

	l = srv_limiter(srv_conn_srv(c));
	if (!l || def->limit == OP_LIMIT_NONE)
		return true;
	now = st->now;
	if (st->who.role == AUTH_SERVICE && def->limit == OP_LIMIT_CALLER)
		ok = auth_limit_take(l, AUTH_LIMIT_SERVICE, 0, now, &retry);
	else
		ok = auth_limit_take(l, AUTH_LIMIT_ADDRESS,
				     srv_conn_peer_key(c), now, &retry) &&
		     (def->limit == OP_LIMIT_ADDRESS ||
		      auth_limit_take(l,
				      st->who.role == AUTH_CUSTOMER
					      ? AUTH_LIMIT_CUSTOMER
					      : AUTH_LIMIT_KEY,
				      st->limit_key, now, &retry));
	if (ok)
		return true;
	bin__fail(e, "rate_limited", "too many requests: retry in %u s", retry);
	e->retry_after = retry ? retry : 1;
	return false;
}

static int bin__hello(struct srv_conn *c, struct bin_conn *st,
		      const msgpack_object *m)
{
	const msgpack_object *auth = mp_get(m, "auth");
	const char *tok;
	size_t n;
	uint64_t v = 0;
	struct buf *b;
	struct bin_w w;
	msgpack_packer *pk;
	const char *code = NULL, *msg = NULL;
	static const char *const roles[] = { "none", "anon", "customer",
					     "service" };

	if (!mp_get(m, "v") || mp_get_uint(m, "v", &v) != 0) {
		code = "unauthorized";
		msg = "hello required: {\"v\":1,\"auth\":...}";
	} else if (v != MP_VERSION) {
		code = "unsupported_version";
		msg = "this server speaks version 1";
	} else if (!auth || mp_str(auth, &tok, &n) != 0 || n == 0 ||
		   n > AUTH_TOKEN_SIZE_MAX) {
		code = "unauthorized";
		msg = "auth: the service key, the anon key or a customer JWT";
	} else {
		switch (auth_bearer(srv_auth(srv_conn_srv(c)), tok, n, st->now,
				    &st->who)) {
		case AUTH_OK: break;
		case AUTH_EXPIRED:
			code = "token_expired";
			msg = "token expired";
			break;
		default:
			code = "unauthorized";
			msg = "unknown key or bad token";
			break;
		}
		if (!code && st->who.role == AUTH_NONE) {
			code = "unauthorized";
			msg = "unknown key";
		}
		/* net_listen.c's reserve (the table is nearly full): the service
		 * key only. */
		if (!code && st->who.role != AUTH_SERVICE &&
		    srv_conn_in_reserve(c)) {
			code = "overloaded";
			msg = "the server is at its connection limit: only the "
			      "service key is served; retry later";
		}
	}
	srv_count_response(c, code ? bin__http_status(code) : 200);
	b = srv_answer_begin(c);
	pk = bin__begin(&w, b);
	msgpack_pack_map(pk, 3);
	mp_pack_kv_uint(pk, "v", MP_VERSION);
	if (code) {
		mp_pack_kv_str(pk, "code", code);
		mp_pack_kv_str(pk, "message", msg);
	} else {
		mp_pack_kv_str(pk, "code", "ok");
		mp_pack_kv_str(pk, "role", roles[st->who.role & 3]);
	}
	bin__end(&w);
	srv_answer_done(c);
	if (code) {
		memset(&st->who, 0, sizeof(st->who));
		return -1;
	}
	st->hello_done = true;
	st->limit_key = st->who.role == AUTH_CUSTOMER
				? auth_limit_key(st->who.customer_id,
						 strlen(st->who.customer_id))
				: auth_limit_key(tok, n);
	return 0;
}

static int bin__batch(struct srv_conn *c, struct bin_conn *st,
		      const msgpack_object *m, uint64_t id)
{
	const msgpack_object *items = mp_get(m, "items");
	struct bin_ctx x = { .id = id,
			     .op = MP_OP_BOOK_BATCH,
			     .role = (uint8_t)st->who.role };
	struct bin_err e = { .code = NULL };
	struct core_req req;
	uint32_t n, first = 0;

	if (!items || items->type != MSGPACK_OBJECT_ARRAY ||
	    items->via.array.size == 0 ||
	    items->via.array.size > MP_BATCH_COUNT_MAX) {
		bin__fail(&e, "invalid_request",
			  "items: an array of 1-%d bookings",
			  MP_BATCH_COUNT_MAX);
		bin__answer_error(c, &x, &e);
		return 0;
	}
	n = items->via.array.size;
	/* Every item first: a bad one refuses the whole frame. */
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *it = &items->via.array.ptr[i];
		memset(&req, 0, sizeof(req));
		if (it->type != MSGPACK_OBJECT_MAP) {
			bin__fail(&e, "invalid_request", "items[%u]: not a map",
				  i);
		} else if (bin__book(it, st, &req, &e) == 0) {
			continue;
		} else {
			char msg[BIN_MESSAGE_SIZE_MAX + 16];
			snprintf(msg, sizeof(msg), "items[%u]: %.140s", i,
				 e.message);
			memcpy(e.message, msg, sizeof(e.message) - 1);
			e.message[sizeof(e.message) - 1] = '\0';
		}
		bin__answer_error(c, &x, &e);
		return 0;
	}
	if (st->batch_resume && st->batch_id == id)
		first = st->batch_resume;
	ASSERT(n <= MP_BATCH_COUNT_MAX); /* checked above; fits x.count */
	ASSERT(first < n); /* a resume points into the same frame */
	x.batch = true;
	x.count = (uint16_t)n;
	for (uint32_t i = first; i < n; i++) {
		x.index = (uint16_t)i;
		memset(&req, 0, sizeof(req));
		(void)bin__book(&items->via.array.ptr[i], st, &req, &e);
		if (!bin__limit(c, st, ops_get(OP_BOOK_BATCH), &e)) {
			bin__answer_error(c, &x, &e);
			continue;
		}
		req.now = st->now;
		if (srv_submit(c, &req, &x, sizeof(x)) == -EAGAIN) {
			st->batch_id = id;
			st->batch_resume = i;
			return -EAGAIN;
		}
	}
	st->batch_resume = 0;
	st->batch_id = 0;
	return 0;
}

/* One frame's body. 0 done, -EAGAIN parse it again later, -1 close. */
static int bin__frame(struct srv_conn *c, struct bin_conn *st,
		      const uint8_t *body, size_t size)
{
	msgpack_zone *z = bin__zone_get();
	msgpack_object m;
	struct bin_ctx x = { .id = 0 };
	struct bin_err e = { .code = NULL };
	struct core_req req;
	const struct op_def *def;
	enum mp_op op;
	int rc;

	if (!z) {
		bin__conn_error(c, 0, "unavailable", "out of memory");
		return -1;
	}
	rc = mp_decode(z, body, size, &m);
	if (rc != 0 && st->hello_done &&
	    mp_frame_id(z, body, size, &x.id) == 0) {
		/* one good map and trailing bytes: its own id */
		bin__conn_error(c, x.id, "invalid_request",
				"trailing bytes after the request's map");
		rc = 0;
		goto out;
	}
	if (rc != 0 || m.type != MSGPACK_OBJECT_MAP) {
		bin__conn_error(c, 0, "invalid_request",
				rc ? "malformed msgpack" : "a frame is a map");
		rc = st->hello_done ? 0 : -1;
		goto out;
	}
	if (!st->hello_done) {
		rc = bin__hello(c, st, &m);
		goto out;
	}
	if (mp_id(mp_get(&m, "id"), &x.id) != 0) {
		bin__conn_error(c, 0, "invalid_request",
				"id: a request id 1..2^64-1");
		rc = 0;
		goto out;
	}
	op = mp_op_from(mp_get(&m, "op"));
	x.op = (uint8_t)op;
	x.role = (uint8_t)st->who.role;
	if (st->who.expires_at && st->now >= st->who.expires_at) {
		/* The hello's JWT ran out: answered, then closed. */
		bin__fail(&e, "token_expired",
			  "token expired: connect again with a new one");
		bin__answer_error(c, &x, &e);
		rc = -1;
		goto out;
	}
	rc = 0;
	if (op == MP_OP_NONE) {
		bin__fail(&e, "invalid_request", "op: unknown or missing");
		bin__answer_error(c, &x, &e);
		goto out;
	}
	def = ops_by_bin(op);
	if (!def || !ops_allows(def, st->who.role)) {
		bin__fail(&e, "forbidden", "%s: not with this key",
			  mp_op_name(op));
		bin__answer_error(c, &x, &e);
		goto out;
	}
	if (op == MP_OP_BOOK_BATCH) {
		rc = bin__batch(c, st, &m, x.id);
		goto out;
	}
	if (op == MP_OP_STATUS) {
		/* answered before the limits, unlike HTTP's (ops.c) */
		bin__status(c, &x);
		goto out;
	}
	memset(&req, 0, sizeof(req));
	if (bin__request(&m, st, op, &req, &x, &e) != 0 ||
	    !bin__limit(c, st, def, &e)) {
		free(x.series);
		bin__answer_error(c, &x, &e);
		goto out;
	}
	req.now = st->now;
	rc = srv_submit(c, &req, &x, sizeof(x));
	if (rc != 0)
		free(x.series);
out:
	msgpack_zone_clear(z);
	return rc;
}

static long bin_parse(struct srv_conn *c, void *state, const uint8_t *in,
		      size_t len)
{
	struct bin_conn *st = state;
	size_t used = 0;

	if (st->closing)
		return -1;
	st->now = srv_now();
	while (used < len) {
		long size = mp_frame_size(in + used, len - used);
		int rc;
		if (!srv_conn_writable(c)) { /* closing: flooded or failed */
			st->closing = true;
			return -1;
		}
		if (size == -2)
			break;
		if (size < 0) {
			bin__conn_error(
				c, 0, "frame_too_large",
				"a frame is 1..1048572 bytes after its length");
			st->closing = true;
			return -1;
		}
		rc = bin__frame(c, st, in + used + MP_HEADER_SIZE,
				(size_t)size - MP_HEADER_SIZE);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			st->closing = true;
			return -1;
		}
		ASSERT((size_t)size <= len - used); /* a whole frame */
		used += (size_t)size;
	}
	ASSERT(used <= len);
	return (long)used;
}

const struct srv_proto srv_bin_proto = {
	.name = "binary",
	.conn_state_size = sizeof(struct bin_conn),
	.parse = bin_parse,
	.render = bin_render,
};
