/*
 * test_http_writes.c: the answers that write: booking (each route's mapping
 * to a core_req, idempotency keys: required, scoped, fingerprint), auth
 * refusals (401 unauthorized / token_expired, 403 forbidden, 404 for
 * another's booking), cancel and get of one's own, the catalogue, and
 * Stripe's webhook.
 *
 * The fakes of the network side, helpers and main: http_test.h.
 */
#include "http_test.h"

CHECK_TEST_FN(test_book)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_BOOK };
	const char *body = "{\"customer_id\":\"cus_1\",\"payment\":\"none\"}";
	const struct core_req *q;
	struct core_idem first;

	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: k1\r\n"), body)) >
	      0);
	CHECK(c->sub_count == 1);
	q = &c->subs[0].req;
	CHECK(q->op == CORE_OP_BOOK && q->event_id == 9);
	CHECK(strcmp(q->customer_id, "cus_1") == 0);
	CHECK(q->u.book.payment == CORE_PAY_NONE);
	CHECK(core_idem_present(&q->idem) && q->idem.fingerprint != 0);
	CHECK(q->now == g_now);
	first = q->idem;
	/* The same key and request: the same key and fingerprint. Another
	 * body: the same key, another fingerprint (the core says 422). */
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: k1\r\n"), body)) >
	      0);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: k1\r\n"),
			   "{\"customer_id\":\"cus_2\"}")) > 0);
	CHECK(c->sub_count == 3);
	CHECK(memcmp(&c->subs[1].req.idem, &first, sizeof(first)) == 0);
	CHECK(c->subs[2].req.idem.hi == first.hi &&
	      c->subs[2].req.idem.lo == first.lo);
	CHECK(c->subs[2].req.idem.fingerprint != first.fingerprint);
	CHECK(c->subs[2].req.u.book.payment == CORE_PAY_AUTO);

	/* Render: 201, the booking; replay: the header. */
	resp.booking.id = (UINT64_C(9) << 24) | 1;
	resp.booking.event_id = 9;
	strcpy(resp.booking.customer_id, "cus_1");
	resp.booking.status = CORE_BOOKING_CONFIRMED;
	resp.booking.created_at = g_now;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(out_has(c,
		      "{\"booking\":{\"id\":\"150994945\",\"event_id\":\"9\","
		      "\"customer_id\":\"cus_1\",\"status\":\"confirmed\","
		      "\"created_at\":\""));
	CHECK(!out_has(c, "position") && !out_has(c, "hold_expires_at"));
	CHECK(!out_has(c, "Idempotent-Replayed"));
	resp.replayed = true;
	resp.booking.status = CORE_BOOKING_WAITLISTED;
	resp.booking.position = 3;
	CHECK(rendered_is(c, 1, 0, &resp, 201, NULL));
	CHECK(out_has(c, "Idempotent-Replayed: true\r\n"));
	CHECK(out_has(c, "\"status\":\"waitlisted\",\"position\":3,"));
	out_reset(c);
	resp.replayed = false;
	resp.booking.status = CORE_BOOKING_PENDING_PAYMENT;
	resp.booking.position = 0;
	resp.booking.hold_expires_at = g_now + 600000;
	render(c, 1, 0, &resp, NULL);
	CHECK(out_has(c,
		      "\"status\":\"pending_payment\",\"hold_expires_at\":\""));
	/* Refusals. */
	resp.code = CORE_EVENT_FULL;
	CHECK(rendered_is(c, 1, 0, &resp, 409, "\"code\":\"event_full\""));
	resp.code = CORE_IDEM_MISMATCH;
	CHECK(rendered_is(c, 2, 0, &resp, 422,
			  "\"code\":\"idempotency_key_reused\""));
	CHECK(rendered_is(c, 2, -ENOSPC, &resp, 503, NULL));
	CHECK(out_has(c, "\"code\":\"unavailable\",\"message\":\"the log's "
			 "disk is full; bookings are refused until space is "
			 "freed"));
	/* a series' unknown location names the field */
	resp.code = CORE_NO_LOCATION;
	CHECK(rendered_is(c, 2, 0, &resp, 404, "location_id: no such"));
	resp.code = CORE_IDEM_MISMATCH;
	CHECK(rendered_is(c, 2, -EAGAIN, &resp, 503, NULL));

	/* Missing key: 400 idempotency_key_required, nothing submitted. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", AUTH_SVC, body)) >
	      0);
	CHECK(out_status(c) == 400 &&
	      out_has(c, "\"code\":\"idempotency_key_required\""));
	out_reset(c);
	/* A control character in a header value: 400 and a close. */
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings",
			   hdrs(AUTH_SVC, "Idempotency-Key: \x01\r\n"), body)) <
	      0);
	CHECK(out_status(c) == 400);
	conn_free(c);
	c = conn_new();
	/* Bodies: unknown field, wrong type, bad customer id, bad payment,
	 * service key without customer_id. */
	struct {
		const char *body, *needle;
	} bad[] = {
		{ "{\"customer_id\":\"c\",\"seats\":2}",
		  "unknown field 'seats'" },
		{ "{\"customer_id\":5}", "'customer_id' must be a string" },
		{ "{\"customer_id\":\"a b\"}", "'customer_id' must be 1-64" },
		{ "{\"customer_id\":\"c\",\"payment\":\"cash\"}", "'payment'" },
		{ "{\"payment\":\"none\"}", "'customer_id' is required" },
		{ "{\"customer_id\":\"c\",\"customer_id\":\"d\"}",
		  "malformed JSON" },
		{ "[1]", "must be a JSON object" },
		{ "{\"customer_id\":\"c\"", "malformed JSON" },
		{ "", "body is required" },
		{ "{\"customer_id\":\"\xff\xfe\"}", "malformed JSON" },
		{ "{\"customer_id\":\"c\\u0000d\"}", "malformed JSON" },
		{ "{\"customer_id\":\"c\",\"payment\":123456789012345678901234567890}",
		  "malformed JSON" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned before = c->sub_count;
		CHECK(answer_is(c, "POST", "/v1/events/9/bookings",
				hdrs(AUTH_SVC, "Idempotency-Key: kb\r\n"),
				bad[i].body, 400, NULL));
		CHECK(out_has(c, "\"code\":\"invalid_request\""));
		if (!out_has(c, bad[i].needle))
			fprintf(stderr, "body %zu: %s\n", i, out_str(c));
		CHECK(out_has(c, bad[i].needle));
		CHECK(c->sub_count == before);
		CHECK(!c->closed);
	}
	conn_free(c);
}

CHECK_TEST_FN(test_auth_refusals)
{
	struct srv_conn *c = conn_new();
	const char *body = "{\"customer_id\":\"alice\"}";
	char h[1400];

	/* No key, a bad key, a malformed header: 401 unauthorized. */
	CHECK(feeds(c, req("GET", "/v1/events", "", NULL)) > 0);
	CHECK(out_status(c) == 401 && out_has(c, "\"code\":\"unauthorized\""));
	CHECK(out_has(c, "WWW-Authenticate: Bearer\r\n"));
	CHECK(answer_is(c, "GET", "/v1/events",
			"Authorization: Bearer nope\r\n", NULL, 401, NULL));
	CHECK(answer_is(c, "GET", "/v1/events",
			"Authorization: Basic " SERVICE_KEY "\r\n", NULL, 401,
			NULL));
	/* An expired JWT: 401 token_expired. */
	out_reset(c);
	snprintf(h, sizeof(h), "%sIdempotency-Key: a1\r\n",
		 auth_jwt("alice", -10));
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h, body)) > 0);
	CHECK(out_status(c) == 401 && out_has(c, "\"code\":\"token_expired\""));
	/* A JWT signed with another secret: 401. */
	out_reset(c);
	{
		char tok[1200];
		strcpy(tok, jwt("alice", 60));
		tok[strlen(tok) - 2] ^= 1;
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
		CHECK(feeds(c, req("GET", "/v1/events", h, NULL)) > 0);
		CHECK(out_status(c) == 401);
	}
	/* Anon key booking: 403. Anon on admin: 403. */
	CHECK(answer_is(c, "POST", "/v1/events/9/bookings",
			hdrs(AUTH_ANON, "Idempotency-Key: a2\r\n"), body, 403,
			"\"code\":\"forbidden\""));
	CHECK(answer_is(c, "POST", "/v1/orgs", AUTH_ANON,
			"{\"name\":\"x\",\"timezone\":\"UTC\"}", 403, NULL));
	/* A customer on a service route: 403. */
	CHECK(answer_is(c, "POST", "/v1/orgs", auth_jwt("alice", 60),
			"{\"name\":\"x\"}", 403, NULL));
	/* A JWT booking for another customer: 403. */
	out_reset(c);
	snprintf(h, sizeof(h), "%sIdempotency-Key: a3\r\n",
		 auth_jwt("bob", 60));
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h, body)) > 0);
	CHECK(out_status(c) == 403);
	CHECK(c->sub_count == 0);
	/* A customer's payment "none": accepted, as auto (the price decides:
	 * a free event confirms, a priced one holds). */
	out_reset(c);
	snprintf(h, sizeof(h), "%sIdempotency-Key: a3n\r\n",
		 auth_jwt("bob", 60));
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h,
			   "{\"payment\":\"none\"}")) > 0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.u.book.payment == CORE_PAY_AUTO);
	CHECK(strcmp(c->subs[0].req.customer_id, "bob") == 0);
	c->sub_count = 0;
	snprintf(h, sizeof(h), "%sIdempotency-Key: a3\r\n",
		 auth_jwt("bob", 60));
	/* A JWT booking for itself, customer_id implied by sub. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/events/9/bookings", h,
			   "{\"payment\":\"stripe\"}")) > 0);
	CHECK(c->sub_count == 1);
	CHECK(strcmp(c->subs[0].req.customer_id, "bob") == 0);
	CHECK(c->subs[0].req.u.book.payment == CORE_PAY_STRIPE);
	/* Keys are scoped: the same Idempotency-Key from the service key is
	 * another key. */
	CHECK(feeds(c,
		    req("POST", "/v1/events/9/bookings",
			hdrs(AUTH_SVC, "Idempotency-Key: a3\r\n"),
			"{\"customer_id\":\"bob\",\"payment\":\"stripe\"}")) >
	      0);
	CHECK(c->sub_count == 2);
	CHECK(c->subs[1].req.idem.hi != c->subs[0].req.idem.hi ||
	      c->subs[1].req.idem.lo != c->subs[0].req.idem.lo);
	/* Another customer's list: 403; own: submitted. */
	CHECK(answer_is(c, "GET", "/v1/customers/alice/bookings",
			auth_jwt("bob", 60), NULL, 403, NULL));
	CHECK(feeds(c, req("GET", "/v1/customers/bob/bookings?limit=10",
			   auth_jwt("bob", 60), NULL)) > 0);
	CHECK(c->sub_count == 3);
	CHECK(c->subs[2].req.op == CORE_OP_CUSTOMER_BOOKINGS);
	CHECK(strcmp(c->subs[2].req.customer_id, "bob") == 0);
	CHECK(c->subs[2].req.u.customer.capacity == 10);
	/* Public listing with a JWT: allowed. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/1", auth_jwt("bob", 60), NULL)) >
	      0);
	CHECK(c->sub_count == 4 && c->answer_count == 0);
	conn_free(c);
}

CHECK_TEST_FN(test_cancel_and_get_own)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_CANCEL };
	char h[1400];

	snprintf(h, sizeof(h), "%sIdempotency-Key: c1\r\n",
		 auth_jwt("alice", 60));
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel", h, NULL)) >
	      0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.op == CORE_OP_CANCEL);
	CHECK(c->subs[0].req.booking_id == 150994945);
	CHECK(strcmp(c->subs[0].req.customer_id, "alice") == 0);
	CHECK(core_idem_present(&c->subs[0].req.idem));
	/* The service key cancels any: no customer given to the core. */
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel",
			   hdrs(AUTH_SVC, "Idempotency-Key: c2\r\n"), "{}")) >
	      0);
	CHECK(c->sub_count == 2 && c->subs[1].req.customer_id[0] == '\0');
	/* Without a key: 400; with a body field: 400. */
	CHECK(feeds(c, req("POST", "/v1/bookings/150994945/cancel",
			   auth_jwt("alice", 60), NULL)) > 0);
	CHECK(out_status(c) == 400 && out_has(c, "idempotency_key_required"));
	CHECK(answer_is(c, "POST", "/v1/bookings/150994945/cancel",
			hdrs(AUTH_SVC, "Idempotency-Key: c3\r\n"),
			"{\"reason\":\"x\"}", 400, "unknown field 'reason'"));
	CHECK(c->sub_count == 2);

	/* Render: booking + promoted. */
	out_reset(c);
	resp.booking.id = 150994945;
	resp.booking.event_id = 9;
	strcpy(resp.booking.customer_id, "alice");
	resp.booking.status = CORE_BOOKING_CANCELLED;
	resp.has_promoted = true;
	resp.promoted.id = 150994946;
	resp.promoted.event_id = 9;
	strcpy(resp.promoted.customer_id, "carol");
	resp.promoted.status = CORE_BOOKING_CONFIRMED;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "\"status\":\"cancelled\""));
	CHECK(out_has(c, "\"promoted\":{\"id\":\"150994946\""));
	out_reset(c);
	resp.has_promoted = false;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_has(c, "\"promoted\":null}"));
	/* The core refused another's booking as unknown: 404. */
	resp.code = CORE_NO_BOOKING;
	CHECK(rendered_is(c, 0, 0, &resp, 404, NULL));

	/* GET: a JWT reads only its own (404 otherwise, nothing leaks). */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945", auth_jwt("bob", 60),
			   NULL)) > 0);
	CHECK(c->sub_count == 3 && c->subs[2].req.op == CORE_OP_BOOKING_GET);
	resp.code = CORE_OK;
	resp.op = CORE_OP_BOOKING_GET;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 404);
	CHECK(!out_has(c, "alice"));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945",
			   auth_jwt("alice", 60), NULL)) > 0);
	render(c, 3, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && out_has(c, "\"customer_id\":\"alice\""));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/bookings/150994945", AUTH_SVC, NULL)) >
	      0);
	render(c, 4, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	CHECK(answer_is(c, "GET", "/v1/bookings/150994945", AUTH_ANON, NULL,
			403, NULL));
	conn_free(c);
}

CHECK_TEST_FN(test_catalogue)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_ORG_CREATE, .id = 1 };
	const struct core_series_spec *s;

	CHECK(feeds(c,
		    req("POST", "/v1/orgs", AUTH_SVC,
			"{\"name\":\"Studio \\u00e9\",\"timezone\":\"Europe/Berlin\","
			"\"cancel_cutoff_hours\":24,\"hold_minutes\":15}")) >
	      0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.op == CORE_OP_ORG_CREATE);
	CHECK(strcmp(c->subs[0].req.u.cat.name, "Studio \xc3\xa9") == 0);
	CHECK(strcmp(c->subs[0].req.u.cat.timezone, "Europe/Berlin") == 0);
	CHECK(c->subs[0].req.u.cat.settings_set ==
	      (CORE_ORG_SET_CUTOFF | CORE_ORG_SET_HOLD));
	CHECK(c->subs[0].req.u.cat.settings.cancel_cutoff_hours == 24);
	CHECK(c->subs[0].req.u.cat.settings.hold_minutes == 15);
	resp.org = (struct core_org_settings){ 24, 15, 0 };
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 201);
	CHECK(strcmp(out_body(c),
		     "{\"org\":{\"id\":\"1\",\"name\":\"Studio \xc3\xa9\","
		     "\"timezone\":\"Europe/Berlin\",\"cancel_cutoff_hours\":24,"
		     "\"hold_minutes\":15,\"horizon_days\":null}}") == 0);
	/* settings out of range, of the wrong type */
	CHECK(answer_is(c, "POST", "/v1/orgs", AUTH_SVC,
			"{\"name\":\"S\",\"cancel_cutoff_hours\":721}", 400,
			"'cancel_cutoff_hours'"));
	CHECK(answer_is(c, "POST", "/v1/orgs", AUTH_SVC,
			"{\"name\":\"S\",\"hold_minutes\":\"5\"}", 400,
			"'hold_minutes'"));
	CHECK(answer_is(c, "POST", "/v1/orgs", AUTH_SVC,
			"{\"name\":\"S\",\"timezone\":\"Mars/Olympus\"}", 400,
			"'timezone'"));

	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/locations", AUTH_SVC,
			   "{\"org_id\":\"1\",\"name\":\"Hall\"}")) > 0);
	CHECK(c->sub_count == 2 &&
	      c->subs[1].req.op == CORE_OP_LOCATION_CREATE);
	CHECK(c->subs[1].req.u.cat.org_id == 1);
	resp.op = CORE_OP_LOCATION_CREATE;
	resp.id = 4;
	render(c, 1, 0, &resp, NULL);
	CHECK(strcmp(out_body(c),
		     "{\"location\":{\"id\":\"4\",\"org_id\":\"1\","
		     "\"name\":\"Hall\"}}") == 0);
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/instructors", AUTH_SVC,
			   "{\"org_id\":1,\"name\":\"Ann\"}")) > 0);
	CHECK(c->sub_count == 3 &&
	      c->subs[2].req.op == CORE_OP_INSTRUCTOR_CREATE);
	render(c, 2, 0, &resp, NULL);
	CHECK(out_has(c, "{\"instructor\":{\"id\":\"4\""));
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/customers", AUTH_SVC,
			   "{\"id\":\"cus_9\",\"email\":\"a@b.c\"}")) > 0);
	CHECK(c->sub_count == 4 &&
	      c->subs[3].req.op == CORE_OP_CUSTOMER_UPSERT);
	CHECK(strcmp(c->subs[3].req.customer_id, "cus_9") == 0);
	CHECK(strcmp(c->subs[3].req.u.cat.email, "a@b.c") == 0);
	render(c, 3, 0, &resp, NULL);
	CHECK(strcmp(out_body(c), "{\"customer\":{\"id\":\"cus_9\",\"email\":"
				  "\"a@b.c\",\"name\":null}}") == 0);

	/* Series: every field into the spec the core reads by pointer. */
	out_reset(c);
	CHECK(feeds(c,
		    req("POST", "/v1/series",
			hdrs(AUTH_SVC, "Idempotency-Key: s1\r\n"),
			"{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
			"\"title\":\"Flow\",\"capacity\":20,\"waitlist_capacity\":5,"
			"\"price_cents\":1500,\"currency\":\"EUR\","
			"\"timezone\":\"Europe/Berlin\",\"weekdays\":[\"MO\",\"WE\"],"
			"\"start_time\":\"18:30\",\"duration_min\":60,"
			"\"first_date\":\"2026-03-02\",\"last_date\":\"2026-06-30\","
			"\"skip_dates\":[\"2026-04-06\"]}")) > 0);
	CHECK(c->sub_count == 5);
	CHECK(c->subs[4].req.op == CORE_OP_SERIES_CREATE);
	s = c->subs[4].req.u.series;
	CHECK(s != NULL);
	if (s) {
		CHECK(s->org_id == 1 && s->location_id == 2 &&
		      s->instructor_id == 3);
		CHECK(strcmp(s->title, "Flow") == 0);
		CHECK(s->capacity == 20 && s->waitlist_capacity == 5);
		CHECK(s->price_cents == 1500 &&
		      strcmp(s->currency, "eur") == 0);
		CHECK(s->weekday_mask == 0x05);
		CHECK(s->start_minute == 18 * 60 + 30);
		CHECK(s->duration_min == 60);
		CHECK(s->first_date.year == 2026 && s->first_date.month == 3 &&
		      s->first_date.day == 2);
		CHECK(s->last_date.month == 6 && s->last_date.day == 30);
		CHECK(s->skip_count == 1 && s->skip[0].day == 6);
	}
	/* A second catalogue request while the connection's slot is busy
	 * gets a slot of its own (freed by render: ASan checks). */
	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_SVC,
			   "{\"name\":\"Second\"}")) > 0);
	CHECK(c->sub_count == 6 && c->in_size == 0);
	resp.op = CORE_OP_SERIES_CREATE;
	resp.id = 7;
	resp.count = 34;
	CHECK(rendered_is(c, 4, 0, &resp, 201, NULL));
	CHECK(out_has(c, "{\"series\":{\"id\":\"7\",\"org_id\":\"1\""));
	CHECK(out_has(c,
		      "\"weekdays\":[\"MO\",\"WE\"],\"start_time\":\"18:30\""));
	CHECK(out_has(c, "\"skip_dates\":[\"2026-04-06\"]},\"generated\":34}"));
	CHECK(strcmp(c->subs[5].req.u.cat.timezone, "UTC") == 0);
	resp.op = CORE_OP_ORG_CREATE;
	resp.id = 2;
	resp.org = (struct core_org_settings){ 12, 0, 0 };
	CHECK(rendered_is(c, 5, 0, &resp, 201, NULL));
	CHECK(strcmp(out_body(c),
		     "{\"org\":{\"id\":\"2\",\"name\":\"Second\","
		     "\"timezone\":\"UTC\",\"cancel_cutoff_hours\":12,"
		     "\"hold_minutes\":null,\"horizon_days\":null}}") == 0);
	/* The connection's slot is free again: a third uses it. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/orgs", AUTH_SVC,
			   "{\"name\":\"Third\"}")) > 0);
	CHECK(c->sub_count == 7);
	resp.code = CORE_NO_ORG;
	render(c, 6, 0, &resp, NULL);
	CHECK(out_status(c) == 404);

	/* Series refusals name the field. */
	struct {
		const char *body, *needle;
	} bad[] = {
		{ "{\"org_id\":\"1\"}", "'location_id' is required" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"XX\"],\"start_time\":\"18:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-03-02\"}",
		  "weekdays: unknown day \\\"XX\\\"" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"18:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-03-02\","
		  "\"last_date\":\"2026-03-01\"}",
		  "last_date: before first_date" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"18:30\","
		  "\"duration_min\":60,\"first_date\":\"1900-03-02\"}",
		  "'first_date'" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"25:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-03-02\"}",
		  "'start_time'" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"08:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-02-30\"}",
		  "'first_date'" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"price_cents\":100,"
		  "\"weekdays\":[\"MO\"],\"start_time\":\"08:30\","
		  "\"duration_min\":60,\"first_date\":\"2026-02-03\"}",
		  "'currency' is required" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":1e3,\"timezone\":\"UTC\"}",
		  "'capacity' must be an integer" },
		{ "{\"org_id\":\"1\",\"location_id\":\"2\",\"instructor_id\":\"3\","
		  "\"title\":\"F\",\"capacity\":20,\"timezone\":\"UTC\","
		  "\"weekdays\":[\"MO\"],\"start_time\":\"08:30\",\"colour\":1,"
		  "\"duration_min\":60,\"first_date\":\"2026-02-03\"}",
		  "unknown field 'colour'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(answer_is(c, "POST", "/v1/series", AUTH_SVC, bad[i].body,
				400, NULL));
		if (!out_has(c, bad[i].needle))
			fprintf(stderr, "series %zu: %s\n", i, out_str(c));
		CHECK(out_has(c, bad[i].needle));
	}
	CHECK(c->sub_count == 7);

	/* Generate. */
	out_reset(c);
	CHECK(feeds(c, req("POST", "/v1/admin/generate", AUTH_SVC,
			   "{\"until\":\"2026-05-01\"}")) > 0);
	CHECK(c->sub_count == 8 && c->subs[7].req.op == CORE_OP_GENERATE);
	CHECK(c->subs[7].req.u.generate.until.month == 5);
	resp.code = CORE_OK;
	resp.op = CORE_OP_GENERATE;
	resp.count = 12;
	render(c, 7, 0, &resp, NULL);
	CHECK(strcmp(out_body(c), "{\"generated\":12}") == 0);
	CHECK(feeds(c, req("POST", "/v1/admin/generate", AUTH_SVC, NULL)) > 0);
	CHECK(c->sub_count == 9 && c->subs[8].req.u.generate.until.year == 0);
	conn_free(c);
}

/* PATCH /v1/orgs/{org_id}: the settings given, and refusals. */
CHECK_TEST_FN(test_org_patch)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_ORG_PATCH, .id = 3 };
	const struct core_req *q;

	CHECK(feeds(c, req("PATCH", "/v1/orgs/3", AUTH_SVC,
			   "{\"cancel_cutoff_hours\":0,\"horizon_days\":30}")) >
	      0);
	CHECK(c->sub_count == 1);
	q = &c->subs[0].req;
	CHECK(q->op == CORE_OP_ORG_PATCH && q->u.cat.org_id == 3);
	CHECK(q->u.cat.settings_set ==
	      (CORE_ORG_SET_CUTOFF | CORE_ORG_SET_HORIZON));
	CHECK(q->u.cat.settings.cancel_cutoff_hours == 0);
	CHECK(q->u.cat.settings.horizon_days == 30);
	resp.org = (struct core_org_settings){ 0, 20, 30 };
	CHECK(rendered_is(c, 0, 0, &resp, 200, NULL));
	CHECK(strcmp(out_body(c),
		     "{\"org\":{\"id\":\"3\",\"cancel_cutoff_hours\":0,"
		     "\"hold_minutes\":20,\"horizon_days\":30}}") == 0);
	/* the core's refusals */
	resp.code = CORE_NO_ORG;
	CHECK(rendered_is(c, 0, 0, &resp, 404, "no such org"));
	resp.code = CORE_INVALID;
	CHECK(rendered_is(c, 0, 0, &resp, 400, NULL));
	/* the codec's */
	CHECK(answer_is(c, "PATCH", "/v1/orgs/3", AUTH_SVC, "{}", 400,
			"nothing to change"));
	CHECK(answer_is(c, "PATCH", "/v1/orgs/3", AUTH_SVC,
			"{\"hold_minutes\":1441}", 400, "'hold_minutes'"));
	CHECK(answer_is(c, "PATCH", "/v1/orgs/3", AUTH_SVC, "{\"name\":\"x\"}",
			400, "unknown field 'name'"));
	CHECK(answer_is(c, "PATCH", "/v1/orgs/x", AUTH_SVC,
			"{\"hold_minutes\":5}", 404, NULL));
	CHECK(answer_is(c, "PATCH", "/v1/orgs/3", AUTH_ANON,
			"{\"hold_minutes\":5}", 403, NULL));
	CHECK(answer_is(c, "PATCH", "/v1/orgs/3", auth_jwt("alice", 60),
			"{\"hold_minutes\":5}", 403, NULL));
	CHECK(c->sub_count == 1);
	conn_free(c);
}

CHECK_TEST_FN(test_stripe)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_PAY };
	const char *ok =
		"{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\","
		"\"data\":{\"object\":{\"id\":\"pi_1\",\"amount\":1500,"
		"\"currency\":\"eur\",\"metadata\":{\"booking_id\":"
		"\"150994945\"},\"extra\":[1,2,3]}}}";
	const char *failed =
		"{\"id\":\"evt_2\",\"type\":\"payment_intent.payment_failed\","
		"\"data\":{\"object\":{\"amount\":1500,\"currency\":\"EUR\","
		"\"metadata\":{\"booking_id\":\"150994945\"}}}}";
	const char *other = "{\"id\":\"evt_3\",\"type\":\"charge.refunded\","
			    "\"data\":{\"object\":{}}}";
	char h[512];
	uint64_t ref;

	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(ok));
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, ok)) > 0);
	CHECK(c->sub_count == 1);
	CHECK(c->subs[0].req.op == CORE_OP_PAY);
	CHECK(c->subs[0].req.booking_id == 150994945);
	CHECK(c->subs[0].req.u.pay.succeeded);
	CHECK(c->subs[0].req.u.pay.amount_cents == 1500);
	CHECK(strcmp(c->subs[0].req.u.pay.currency, "eur") == 0);
	CHECK(c->subs[0].req.u.pay.payment_ref != 0);
	/* Stripe's own ids for the record: the event's and the intent's */
	CHECK(strcmp(c->subs[0].req.u.pay.ref, "evt_1") == 0);
	CHECK(strcmp(c->subs[0].req.u.pay.intent_id, "pi_1") == 0);
	CHECK(c->subs[0].req.u.pay.kind == CORE_PAY_KIND_WEBHOOK);
	CHECK(core_idem_present(&c->subs[0].req.idem));
	ref = c->subs[0].req.u.pay.payment_ref;
	/* The same event again: the same reference and key. */
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, ok)) > 0);
	CHECK(c->sub_count == 2 && c->subs[1].req.u.pay.payment_ref == ref);
	CHECK(c->subs[1].req.idem.lo == c->subs[0].req.idem.lo);
	resp.booking.id = 150994945;
	resp.booking.status = CORE_BOOKING_CONFIRMED;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && out_has(c, "\"outcome\":\"applied\""));
	resp.code = CORE_PAYMENT_MISMATCH;
	CHECK(rendered_is(c, 0, 0, &resp, 200, "\"received\":true"));
	CHECK(rendered_is(c, 0, -EIO, &resp, 503, NULL)); /* Stripe retries */

	out_reset(c);
	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(failed));
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, failed)) > 0);
	CHECK(c->sub_count == 3 && !c->subs[2].req.u.pay.succeeded);
	CHECK(c->subs[2].req.u.pay.payment_ref != ref);
	CHECK(strcmp(c->subs[2].req.u.pay.ref, "evt_2") == 0);
	CHECK(c->subs[2].req.u.pay.intent_id[0] == '\0'); /* none given */
	/* Unknown types: 200 ignored, nothing submitted. */
	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(other));
	CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h, other)) > 0);
	CHECK(out_status(c) == 200);
	CHECK(strcmp(out_body(c), "{\"received\":true,\"ignored\":true}") == 0);
	CHECK(c->sub_count == 3);
	/* Bad or missing signature: 400, no bearer needed either way. */
	CHECK(answer_is(c, "POST", "/v1/webhooks/stripe",
			"Stripe-Signature: t=1,v1=00\r\n", ok, 400,
			"invalid_signature"));
	CHECK(answer_is(c, "POST", "/v1/webhooks/stripe", "", ok, 400, NULL));
	/* Signed, then tampered with: 400. */
	out_reset(c);
	snprintf(h, sizeof(h), "Stripe-Signature: %s\r\n", stripe_sig(ok));
	{
		char tampered[1024];
		strcpy(tampered, ok);
		tampered[strlen(tampered) - 20] ^= 1;
		CHECK(feeds(c, req("POST", "/v1/webhooks/stripe", h,
				   tampered)) > 0);
		CHECK(out_status(c) == 400);
	}
	CHECK(c->sub_count == 3);
	conn_free(c);
}

int main(int argc, char **argv)
{
	return http_test_main("http_writes", argc, argv);
}
