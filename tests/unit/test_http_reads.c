/*
 * test_http_reads.c: the answers that read: /health, /ready and /metrics,
 * the reason phrase of every status sent, the admin status, event listings
 * (filters, pages, ETag and 304), an event's get and patch, a customer's
 * bookings rendered, and the catalogue's reads (orgs, locations,
 * instructors, series: get and list, access, 404s, cursors, ETag and 304).
 *
 * The fakes of the network side, helpers and main: http_test.h.
 */
#include "http_test.h"

CHECK_TEST_FN(test_health_ready_metrics)
{
	struct srv_conn *c = conn_new();

	CHECK(feeds(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	CHECK(strcmp(out_body(c), "{\"status\":\"ok\"}") == 0);
	CHECK(out_has(c, "Content-Length: 15\r\n"));
	CHECK(out_has(c, "Content-Type: application/json\r\n"));
	out_reset(c);
	CHECK(feeds(c, "GET /ready HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	out_reset(c);
	g_srv.status.wal_error = -EIO;
	CHECK(feeds(c, "GET /ready HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 503);
	CHECK(out_has(c, "\"code\":\"unavailable\""));
	out_reset(c);
	g_srv.status.wal_error = -ENOSPC;
	CHECK(feeds(c, "GET /ready HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 503 && out_has(c, "the log's disk is full"));
	g_srv.status.wal_error = 0;
	out_reset(c);
	g_srv.status.repl_state = "streaming";
	g_srv.status.ops_total[CORE_OP_BOOK] = 42;
	/* 100 log syncs: 98 in (150, 200] µs, one in (400, 500], one over
	 * every bound */
	g_srv.status.wal_sync_buckets[6] = 98;
	g_srv.status.wal_sync_buckets[10] = 1;
	g_srv.status.wal_sync_buckets[WAL_SYNC_BUCKET_COUNT - 1] = 1;
	g_srv.status.wal_sync_count = 100;
	g_srv.status.wal_sync_ns_total = 25000000;
	/* 3 binary bookings: 2 in (250, 500] µs, one over 10 s */
	g_srv.status.req_buckets[CORE_OP_BOOK][SRV_PROTO_BINARY][3] = 2;
	g_srv.status.req_buckets[CORE_OP_BOOK][SRV_PROTO_BINARY]
				[SRV_LAT_BUCKET_COUNT - 1] = 1;
	g_srv.status.req_ns_total[CORE_OP_BOOK][SRV_PROTO_BINARY] = 12000900000;
	CHECK(feeds(c, "GET /metrics HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "Content-Type: text/plain; version=0.0.4"));
	CHECK(out_has(c, "bookd_operations_total{op=\"book\"} 42\n"));
	CHECK(out_has(c, "bookd_replication_state{state=\"streaming\"} 1\n"));
	CHECK(out_has(c, "# TYPE bookd_wal_fsync_seconds histogram\n"
			 "bookd_wal_fsync_seconds_bucket{le=\"1e-05\"} 0\n"));
	CHECK(out_has(c, "bookd_wal_fsync_seconds_bucket{le=\"0.00015\"} 0\n"
			 "bookd_wal_fsync_seconds_bucket{le=\"0.0002\"} 98\n"));
	CHECK(out_has(c, "bookd_wal_fsync_seconds_bucket{le=\"0.0005\"} 99\n"));
	CHECK(out_has(c, "bookd_wal_fsync_seconds_bucket{le=\"1\"} 99\n"
			 "bookd_wal_fsync_seconds_bucket{le=\"+Inf\"} 100\n"
			 "bookd_wal_fsync_seconds_sum 0.025000\n"
			 "bookd_wal_fsync_seconds_count 100\n"));
	/* the count stays under its old name; the time is the histogram's
	 * _sum (bookd_wal_fsync_seconds_total, a second family of the same
	 * name to a Prometheus parser, is gone) */
	CHECK(out_has(c, "bookd_wal_fsync_total 100\n"));
	CHECK(!out_has(c, "bookd_wal_fsync_seconds_total"));
	/* a request histogram: cumulative, _count the +Inf bucket's */
	CHECK(out_has(c, "bookd_request_duration_seconds_bucket{op=\"book\","
			 "protocol=\"binary\",le=\"0.0005\"} 2\n"));
	CHECK(out_has(c, "bookd_request_duration_seconds_bucket{op=\"book\","
			 "protocol=\"binary\",le=\"10\"} 2\n"
			 "bookd_request_duration_seconds_bucket{op=\"book\","
			 "protocol=\"binary\",le=\"+Inf\"} 3\n"
			 "bookd_request_duration_seconds_sum{op=\"book\","
			 "protocol=\"binary\"} 12.0009\n"
			 "bookd_request_duration_seconds_count{op=\"book\","
			 "protocol=\"binary\"} 3\n"));
	CHECK(!out_has(c, "op=\"book\",protocol=\"http\""));
	memset(g_srv.status.wal_sync_buckets, 0,
	       sizeof(g_srv.status.wal_sync_buckets));
	memset(g_srv.status.req_buckets, 0, sizeof(g_srv.status.req_buckets));
	out_reset(c);
	/* HEAD: the headers of GET, no body. */
	CHECK(feeds(c, "HEAD /health HTTP/1.1\r\n\r\n") > 0);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "Content-Length: 15\r\n"));
	CHECK(strcmp(out_body(c), "") == 0);
	CHECK(c->sub_count == 0);
	CHECK(!c->closed);
	/* Every answer was counted by class for /metrics. */
	CHECK(g_counted[2] == 4 && g_counted[5] == 2);
	conn_free(c);
}

/* Every status bookd sends has its reason phrase in the status line (a
 * 202 went out as "202 Status"): the ones written here, and every status
 * fields.c maps core codes and errnos to. */
CHECK_TEST_FN(test_status_lines)
{
	static const struct {
		int status;
		const char *line;
	} sent[] = {
		{ 100, "HTTP/1.1 100 Continue\r\n" },
		{ 200, "HTTP/1.1 200 OK\r\n" },
		{ 201, "HTTP/1.1 201 Created\r\n" },
		{ 202, "HTTP/1.1 202 Accepted\r\n" },
		{ 204, "HTTP/1.1 204 No Content\r\n" },
		{ 304, "HTTP/1.1 304 Not Modified\r\n" },
		{ 400, "HTTP/1.1 400 Bad Request\r\n" },
		{ 401, "HTTP/1.1 401 Unauthorized\r\n" },
		{ 403, "HTTP/1.1 403 Forbidden\r\n" },
		{ 404, "HTTP/1.1 404 Not Found\r\n" },
		{ 405, "HTTP/1.1 405 Method Not Allowed\r\n" },
		{ 408, "HTTP/1.1 408 Request Timeout\r\n" },
		{ 409, "HTTP/1.1 409 Conflict\r\n" },
		{ 411, "HTTP/1.1 411 Length Required\r\n" },
		{ 413, "HTTP/1.1 413 Content Too Large\r\n" },
		{ 415, "HTTP/1.1 415 Unsupported Media Type\r\n" },
		{ 422, "HTTP/1.1 422 Unprocessable Content\r\n" },
		{ 429, "HTTP/1.1 429 Too Many Requests\r\n" },
		{ 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n" },
		{ 500, "HTTP/1.1 500 Internal Server Error\r\n" },
		{ 501, "HTTP/1.1 501 Not Implemented\r\n" },
		{ 503, "HTTP/1.1 503 Service Unavailable\r\n" },
		{ 505, "HTTP/1.1 505 HTTP Version Not Supported\r\n" },
		{ 507, "HTTP/1.1 507 Insufficient Storage\r\n" },
	};
	static const int errnos[] = { -EAGAIN,	  -EINVAL,    -ENOSPC, -EIO,
				      -EROFS,	  -EDQUOT,    -EFBIG,  -ENOMEM,
				      -ESHUTDOWN, -ECANCELED, -EPERM };
	struct srv_conn *c = conn_new();
	int status;

	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		out_reset(c);
		http_write(&c->out, sent[i].status, NULL, "{}", 2);
		if (strncmp(out_str(c), sent[i].line, strlen(sent[i].line)))
			fprintf(stderr, "status line: %.40s\n", out_str(c));
		CHECK(strncmp(out_str(c), sent[i].line, strlen(sent[i].line)) ==
		      0);
	}
	for (int code = 1; code < CORE_CODE_COUNT; code++) {
		fld_code_error((enum core_code)code, &status);
		CHECK(http_reason(status) != NULL);
	}
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		fld_errno_error(errnos[i], &status);
		CHECK(http_reason(status) != NULL);
	}
	/* The 202 of POST /v1/admin/refresh, end to end. */
	out_reset(c);
	g_refresh_rc = 0;
	CHECK(feeds(c, "POST /v1/admin/refresh HTTP/1.1\r\n" AUTH_SVC
		       "Content-Length: 0\r\n\r\n") > 0);
	CHECK(strncmp(out_str(c), "HTTP/1.1 202 Accepted\r\n", 23) == 0);
	CHECK(strcmp(out_body(c), "{\"refresh\":\"requested\"}") == 0);
	g_refresh_rc = -ENOTSUP;
	conn_free(c);
}

CHECK_TEST_FN(test_admin_status)
{
	struct srv_conn *c = conn_new();

	g_srv.status.shard_count = 2;
	g_srv.status.wal_durable_lsn = 77;
	g_srv.status.repl_state = "down";
	g_srv.status.repl_lag_records = 5;
	g_srv.status.repl_lag_seconds = 1.5;
	/* 100 log syncs: 98 in (150, 200] µs, 2 in (400, 500]: the p50
	 * interpolated in the first, the p99 in the second */
	g_srv.status.wal_sync_buckets[6] = 98;
	g_srv.status.wal_sync_buckets[10] = 2;
	CHECK(feeds(c, req("GET", "/v1/admin/status", AUTH_SVC, NULL)) > 0);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "\"p50\":175.510,\"p99\":450.000}"));
	CHECK(out_has(c, "\"shards\":2"));
	CHECK(out_has(c, "\"durable_lsn\":77"));
	CHECK(out_has(c,
		      "\"replication\":{\"state\":\"down\",\"lag_records\":5,"));
	CHECK(out_has(c, "\"lag_seconds\":1.500"));
	CHECK(out_has(c, "\"name\":\"replication_down\""));
	CHECK(answer_is(c, "GET", "/v1/admin/status", AUTH_ANON, NULL, 403,
			NULL));
	g_srv.status.repl_state = NULL;
	memset(g_srv.status.wal_sync_buckets, 0,
	       sizeof(g_srv.status.wal_sync_buckets));
	conn_free(c);
}

CHECK_TEST_FN(test_events_list)
{
	struct srv_conn *c = conn_new();
	struct core_event_view ev[2];
	struct srv_views views = { .events = ev };
	struct core_resp resp = { .op = CORE_OP_EVENT_LIST,
				  .count = 2,
				  .more = true };
	char cursor[64], path[256];
	const char *p, *e;
	const struct core_req *q;

	CHECK(feeds(c,
		    req("GET",
			"/v1/events?org_id=3&from=2026-03-01&to=2026-03-08T00:00:00Z"
			"&location_id=4&instructor_id=5&limit=2",
			AUTH_ANON, NULL)) > 0);
	CHECK(c->answer_count == 0);
	CHECK(c->sub_count == 1);
	q = &c->subs[0].req;
	CHECK(q->op == CORE_OP_EVENT_LIST);
	CHECK(q->u.list.org_id == 3 && q->u.list.location_id == 4 &&
	      q->u.list.instructor_id == 5);
	CHECK(q->u.list.from == INT64_C(1772323200000)); /* 2026-03-01Z */
	CHECK(q->u.list.to == INT64_C(1772928000000));
	CHECK(q->u.list.limit == 2);
	CHECK(q->u.list.after_id == 0);

	memset(ev, 0, sizeof(ev));
	for (int i = 0; i < 2; i++) {
		ev[i].id = 10 + (uint64_t)i;
		ev[i].series_id = ev[i].org_id = ev[i].location_id =
			ev[i].instructor_id = 1;
		snprintf(ev[i].title, sizeof(ev[i].title), "Yoga \"%d\"\n", i);
		ev[i].start_at = INT64_C(1772643600000) + i * 3600000;
		ev[i].duration_min = 60;
		ev[i].capacity = 20;
		ev[i].booked = 5;
		ev[i].held = 1;
		ev[i].status = CORE_EVENT_SCHEDULED;
		ev[i].version = 7;
	}
	render(c, 0, 0, &resp, &views);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "ETag: \""));
	CHECK(out_has(c, "Cache-Control: public, max-age=5\r\n"));
	CHECK(out_has(c, "{\"events\":[{\"id\":\"10\",\"series_id\":\"1\","));
	CHECK(out_has(c, "\"title\":\"Yoga \\\"0\\\"\\n\""));
	CHECK(out_has(c, "\"start_at\":\"2026-03-04T17:00:00Z\""));
	CHECK(out_has(c, "\"available\":14"));
	CHECK(out_has(c, "\"status\":\"scheduled\""));
	p = strstr(out_str(c), "\"next_cursor\":\"");
	CHECK(p != NULL);
	if (!p)
		goto out;
	p += 15;
	e = strchr(p, '"');
	CHECK(e && e - p < (long)sizeof(cursor));
	memcpy(cursor, p, (size_t)(e - p));
	cursor[e - p] = '\0';
	{
		/* The same list again with its ETag: 304. */
		char etag[64], h[256];
		const char *t = strstr(out_str(c), "ETag: ");
		CHECK(t != NULL);
		sscanf(t, "ETag: %63[^\r]", etag);
		snprintf(h, sizeof(h),
			 AUTH_ANON "If-None-Match: W/%s, \"x\"\r\n", etag);
		out_reset(c);
		CHECK(feeds(c, req("GET", "/v1/events", h, NULL)) > 0);
		CHECK(c->sub_count == 2);
		render(c, 1, 0, &resp, &views);
		CHECK(out_status(c) == 304);
		CHECK(out_has(c, "ETag: "));
		CHECK(!out_has(c, "Content-Length"));
		/* Changed versions: a new tag, a full answer. */
		out_reset(c);
		ev[1].version = 8;
		render(c, 1, 0, &resp, &views);
		CHECK(out_status(c) == 200);
	}
	/* The cursor comes back as after_start/after_id. */
	out_reset(c);
	snprintf(path, sizeof(path), "/v1/events?cursor=%s&limit=500", cursor);
	CHECK(feeds(c, req("GET", path, AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == 3);
	q = &c->subs[2].req;
	CHECK(q->u.list.after_id == 11);
	CHECK(q->u.list.after_start == ev[1].start_at);
	CHECK(q->u.list.limit == 500);
	CHECK(q->u.list.from == g_now); /* default: from now */
	/* Refusals: 400 naming the parameter. */
	CHECK(answer_is(c, "GET", "/v1/events?limit=501", AUTH_ANON, NULL, 400,
			"'limit'"));
	CHECK(answer_is(c, "GET", "/v1/events?cursor=abc", AUTH_ANON, NULL, 400,
			"'cursor'"));
	CHECK(answer_is(c, "GET", "/v1/events?colour=red", AUTH_ANON, NULL, 400,
			"unknown query parameter 'colour'"));
	CHECK(answer_is(c, "GET", "/v1/events?from=yesterday", AUTH_ANON, NULL,
			400, "'from'"));
	CHECK(answer_is(c, "GET", "/v1/events?org_id=1&org_id=2", AUTH_ANON,
			NULL, 400, "repeated"));
	/* Empty values are absent (the contract's template form). */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?org_id=&from=&to=&limit=&cursor=",
			   AUTH_ANON, NULL)) > 0);
	CHECK(c->answer_count == 0 && c->sub_count == 4);
	CHECK(c->subs[3].req.u.list.limit == 50);
	/* Only 'to', in the past: everything before it. */
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?to=2026-01-01", AUTH_ANON,
			   NULL)) > 0);
	CHECK(c->answer_count == 0 && c->sub_count == 5);
	CHECK(c->subs[4].req.u.list.from == 0);
	CHECK(c->subs[4].req.u.list.to == INT64_C(1767225600000));
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events?from=2026-02-01&to=2026-01-01",
			   AUTH_ANON, NULL)) > 0);
	CHECK(out_status(c) == 400 && c->sub_count == 5);
	/* An empty list has no cursor. */
	out_reset(c);
	resp.count = 0;
	resp.more = false;
	render(c, 3, 0, &resp, &views);
	CHECK(strcmp(out_body(c), "{\"events\":[],\"next_cursor\":null}") == 0);
out:
	conn_free(c);
}

CHECK_TEST_FN(test_event_get_patch)
{
	struct srv_conn *c = conn_new();
	struct core_resp resp = { .op = CORE_OP_EVENT_GET };
	char etag[64], h[160];
	const char *t;

	CHECK(feeds(c, req("GET", "/v1/events/42", AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == 1 && c->subs[0].req.op == CORE_OP_EVENT_GET);
	CHECK(c->subs[0].req.event_id == 42);
	resp.event.id = 42;
	resp.event.capacity = 10;
	resp.event.booked = 10;
	resp.event.waitlist_length = 2;
	resp.event.status = CORE_EVENT_SCHEDULED;
	resp.event.version = 3;
	strcpy(resp.event.currency, "eur");
	resp.event.price_cents = 1500;
	render(c, 0, 0, &resp, NULL);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "{\"event\":{\"id\":\"42\""));
	CHECK(out_has(c, "\"available\":0,\"waitlist_length\":2"));
	CHECK(out_has(c, "\"currency\":\"eur\""));
	t = strstr(out_str(c), "ETag: ");
	CHECK(t != NULL);
	sscanf(t, "ETag: %63[^\r]", etag);
	snprintf(h, sizeof(h), AUTH_ANON "If-None-Match: %s\r\n", etag);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/events/42", h, NULL)) > 0);
	render(c, 1, 0, &resp, NULL);
	CHECK(out_status(c) == 304);
	resp.event.version = 4;
	CHECK(rendered_is(c, 1, 0, &resp, 200, NULL));
	/* Unknown event: 404 from the core's answer; any id form: 404. */
	resp.code = CORE_NO_EVENT;
	CHECK(rendered_is(c, 1, 0, &resp, 404, "\"code\":\"not_found\""));
	CHECK(answer_is(c, "GET", "/v1/events/abc", AUTH_ANON, NULL, 404,
			NULL));
	CHECK(answer_is(c, "GET", "/v1/events/0", AUTH_ANON, NULL, 404, NULL));
	CHECK(answer_is(c, "GET", "/v1/events/99999999999999999999999",
			AUTH_ANON, NULL, 404, NULL));

	/* PATCH: service key only; capacity, status, instructor_id. */
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_ANON,
			"{\"capacity\":3}", 403, NULL));
	out_reset(c);
	CHECK(feeds(c, req("PATCH", "/v1/events/42", AUTH_SVC,
			   "{\"capacity\":3,\"instructor_id\":\"7\"}")) > 0);
	CHECK(c->sub_count == 3);
	CHECK(c->subs[2].req.op == CORE_OP_EVENT_PATCH);
	CHECK(c->subs[2].req.u.patch.capacity == 3);
	CHECK(c->subs[2].req.u.patch.instructor_id == 7);
	CHECK(!c->subs[2].req.u.patch.cancel);
	CHECK(!core_idem_present(&c->subs[2].req.idem)); /* optional */
	CHECK(feeds(c, req("PATCH", "/v1/events/42",
			   hdrs(AUTH_SVC, "Idempotency-Key: p1\r\n"),
			   "{\"status\":\"cancelled\"}")) > 0);
	CHECK(c->sub_count == 4);
	CHECK(c->subs[3].req.u.patch.cancel);
	CHECK(c->subs[3].req.u.patch.capacity == -1);
	CHECK(core_idem_present(&c->subs[3].req.idem));
	resp.code = CORE_CAPACITY_BELOW_TAKEN;
	resp.op = CORE_OP_EVENT_PATCH;
	CHECK(rendered_is(c, 2, 0, &resp, 409, "capacity_below_taken"));
	out_reset(c);
	resp.code = CORE_OK;
	render(c, 2, 0, &resp, NULL);
	CHECK(out_status(c) == 200 && !out_has(c, "ETag"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"status\":\"open\"}", 400, "'status'"));
	/* an edit: start, duration, location, title; a restore */
	CHECK(feeds(c,
		    req("PATCH", "/v1/events/42", AUTH_SVC,
			"{\"start_at\":\"2030-01-02T18:30:00+01:00\","
			"\"duration_min\":75,\"location_id\":\"3\","
			"\"title\":\"Yoga \\u00e9\",\"status\":\"scheduled\"}")) >
	      0);
	CHECK(c->sub_count == 5);
	CHECK(c->subs[4].req.op == CORE_OP_EVENT_PATCH);
	CHECK(c->subs[4].req.u.patch.start_at == INT64_C(1893605400000));
	CHECK(c->subs[4].req.u.patch.duration_min == 75);
	CHECK(c->subs[4].req.u.patch.location_id == 3);
	CHECK(strcmp(c->subs[4].req.u.patch.title, "Yoga \xc3\xa9") == 0);
	CHECK(c->subs[4].req.u.patch.restore && !c->subs[4].req.u.patch.cancel);
	CHECK(c->subs[4].req.u.patch.capacity == -1);
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"start_at\":\"2001-01-01T00:00:00Z\"}", 400,
			"in the future"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"start_at\":\"tomorrow\"}", 400, "RFC 3339"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"duration_min\":0}", 400, "'duration_min'"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"duration_min\":1441}", 400, "'duration_min'"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"title\":\"\"}", 400, "'title'"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"location_id\":\"x\"}", 400, "'location_id'"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"series_id\":\"1\"}", 400, "series_id"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC, "{}", 400,
			NULL));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"capacity\":-1}", 400, "'capacity'"));
	CHECK(answer_is(c, "PATCH", "/v1/events/42", AUTH_SVC,
			"{\"capacity\":\"3\"}", 400, "must be an integer"));
	CHECK(c->sub_count == 5);
	conn_free(c);
}

CHECK_TEST_FN(test_customer_bookings_render)
{
	struct srv_conn *c = conn_new();
	struct core_booking_view b[2];
	struct srv_views views = { .bookings = b };
	struct core_resp resp = { .op = CORE_OP_CUSTOMER_BOOKINGS, .count = 2 };

	memset(b, 0, sizeof(b));
	for (int i = 0; i < 2; i++) {
		b[i].id = 100 + (uint64_t)i;
		b[i].event_id = 1;
		strcpy(b[i].customer_id, "cu@x.y");
		b[i].status = CORE_BOOKING_CONFIRMED;
	}
	CHECK(feeds(c, req("GET", "/v1/customers/cu%40x.y/bookings", AUTH_SVC,
			   NULL)) > 0);
	CHECK(c->sub_count == 1);
	CHECK(strcmp(c->subs[0].req.customer_id, "cu@x.y") == 0);
	CHECK(c->subs[0].req.u.customer.capacity == 50);
	render(c, 0, 0, &resp, &views);
	CHECK(out_status(c) == 200);
	CHECK(out_has(c, "{\"bookings\":[{\"id\":\"100\""));
	CHECK(out_has(c, "\"next_cursor\":null"));
	CHECK(answer_is(c, "GET", "/v1/customers/a%20b/bookings", AUTH_SVC,
			NULL, 404, NULL));
	conn_free(c);
}

/* The ETag of c's answer into etag (64 bytes); false when none. */
static bool etag_of(struct srv_conn *c, char *etag)
{
	const char *t = strstr(out_str(c), "ETag: ");

	return t && sscanf(t, "ETag: %63[^\r]", etag) == 1;
}

CHECK_TEST_FN(test_catalog_reads)
{
	struct srv_conn *c = conn_new();
	struct core_cat_view v[2];
	struct srv_views views = { .cats = v };
	struct core_resp resp = { .op = CORE_OP_CATALOG_GET, .count = 1 };
	char etag[64], h[256], cursor[64];
	const char *t;
	unsigned n;

	memset(v, 0, sizeof(v));
	v[0].kind = CORE_CAT_ORG;
	v[0].id = 7;
	strcpy(v[0].name, "Studio \"7\"");
	strcpy(v[0].timezone, "Europe/Vienna");
	v[0].settings.cancel_cutoff_hours = 6;
	v[0].settings.hold_minutes = 15; /* horizon_days 0: the server's */
	/* anon, a customer and the service key may read; nobody else */
	CHECK(feeds(c, req("GET", "/v1/orgs/7", AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == 1 && c->subs[0].req.op == CORE_OP_CATALOG_GET);
	CHECK(c->subs[0].req.u.catalog.kind == CORE_CAT_ORG);
	CHECK(c->subs[0].req.u.catalog.id == 7);
	render(c, 0, 0, &resp, &views);
	CHECK(out_status(c) == 200);
	CHECK(strcmp(out_body(c),
		     "{\"org\":{\"id\":\"7\",\"name\":"
		     "\"Studio \\\"7\\\"\",\"timezone\":"
		     "\"Europe/Vienna\",\"cancel_cutoff_hours\":6,"
		     "\"hold_minutes\":15,\"horizon_days\":null}}") == 0);
	CHECK(out_has(c, "Cache-Control: public, max-age=5\r\n"));
	CHECK(etag_of(c, etag));
	snprintf(h, sizeof(h), AUTH_ANON "If-None-Match: %s\r\n", etag);
	out_reset(c);
	CHECK(feeds(c, req("GET", "/v1/orgs/7", h, NULL)) > 0);
	render(c, 1, 0, &resp, &views);
	CHECK(out_status(c) == 304 && strcmp(out_body(c), "") == 0);
	/* changed (a write in place, H3's settings say): another tag */
	strcpy(v[0].name, "Studio 7");
	CHECK(rendered_is(c, 1, 0, &resp, 200, NULL));
	/* unknown, whatever its form: 404 naming the kind */
	resp.code = CORE_NO_ORG;
	resp.count = 0;
	CHECK(rendered_is(c, 1, 0, &resp, 404, "\"message\":\"no such org\""));
	resp.code = CORE_OK;
	resp.count = 1;
	CHECK(answer_is(c, "GET", "/v1/orgs/abc", AUTH_ANON, NULL, 404,
			"no such org"));
	CHECK(answer_is(c, "GET", "/v1/locations/0", AUTH_ANON, NULL, 404,
			"no such location"));
	CHECK(answer_is(c, "GET", "/v1/instructors/-1", AUTH_ANON, NULL, 404,
			"no such instructor"));
	CHECK(answer_is(c, "GET", "/v1/series/99999999999999999999999",
			AUTH_ANON, NULL, 404, "no such series"));
	CHECK(answer_is(c, "GET", "/v1/series/1", "", NULL, 401, NULL));
	CHECK(answer_is(c, "GET", "/v1/series/1",
			"Authorization: Bearer nope\r\n", NULL, 401, NULL));
	CHECK(answer_is(c, "POST", "/v1/series/1", AUTH_SVC, "{}", 405,
			"Allow: GET, HEAD, PATCH, OPTIONS"));
	n = c->sub_count;
	CHECK(feeds(c, req("GET", "/v1/series/3", auth_jwt("cust-1", 60),
			   NULL)) > 0);
	CHECK(feeds(c, req("GET", "/v1/instructors/4", AUTH_SVC, NULL)) > 0);
	CHECK(c->sub_count == n + 2);
	CHECK(c->subs[n].req.u.catalog.kind == CORE_CAT_SERIES);
	CHECK(c->subs[n + 1].req.u.catalog.kind == CORE_CAT_INSTRUCTOR);
	CHECK(c->subs[n + 1].req.u.catalog.id == 4);
	/* a series as it was created */
	v[0].kind = CORE_CAT_SERIES;
	v[0].id = 3;
	v[0].series.org_id = 1;
	v[0].series.location_id = 2;
	v[0].series.instructor_id = 5;
	strcpy(v[0].series.title, "Yoga");
	v[0].series.capacity = 12;
	v[0].series.price_cents = 1500;
	strcpy(v[0].series.currency, "eur");
	strcpy(v[0].series.timezone, "Europe/Berlin");
	v[0].series.weekday_mask = 1 | 4;
	v[0].series.start_minute = 18 * 60 + 30;
	v[0].series.duration_min = 60;
	v[0].series.first_date = (struct core_date){ 2026, 1, 5 };
	v[0].series.skip_count = 1;
	v[0].series.skip[0] = (struct core_date){ 2026, 1, 7 };
	out_reset(c);
	render(c, n, 0, &resp, &views);
	CHECK(out_has(c, "{\"series\":{\"id\":\"3\",\"org_id\":\"1\","
			 "\"location_id\":\"2\",\"instructor_id\":\"5\","
			 "\"title\":\"Yoga\",\"capacity\":12"));
	CHECK(out_has(c, "\"weekdays\":[\"MO\",\"WE\"],\"start_time\":"
			 "\"18:30\",\"duration_min\":60,\"first_date\":"
			 "\"2026-01-05\",\"last_date\":null,\"skip_dates\":"
			 "[\"2026-01-07\"]}}"));

	/* lists: org_id, limit, cursor; in id order, a cursor when more */
	n = c->sub_count;
	CHECK(feeds(c, req("GET", "/v1/locations?org_id=2&limit=2", AUTH_ANON,
			   NULL)) > 0);
	CHECK(c->sub_count == n + 1);
	CHECK(c->subs[n].req.op == CORE_OP_CATALOG_LIST);
	CHECK(c->subs[n].req.u.catalog.kind == CORE_CAT_LOCATION);
	CHECK(c->subs[n].req.u.catalog.org_id == 2);
	CHECK(c->subs[n].req.u.catalog.limit == 2);
	CHECK(c->subs[n].req.u.catalog.after_id == 0);
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 2; i++) {
		v[i].kind = CORE_CAT_LOCATION;
		v[i].id = (uint64_t)(3 + i);
		v[i].org_id = 2;
		strcpy(v[i].name, i ? "Hall B" : "Hall A");
	}
	resp.op = CORE_OP_CATALOG_LIST;
	resp.count = 2;
	resp.more = true;
	out_reset(c);
	render(c, n, 0, &resp, &views);
	CHECK(out_has(c, "{\"locations\":[{\"id\":\"3\",\"org_id\":\"2\","
			 "\"name\":\"Hall A\"},{\"id\":\"4\",\"org_id\":\"2\","
			 "\"name\":\"Hall B\"}],\"next_cursor\":\""));
	CHECK(etag_of(c, etag));
	t = strstr(out_body(c), "\"next_cursor\":\"");
	CHECK(t && sscanf(t, "\"next_cursor\":\"%63[^\"]", cursor) == 1);
	snprintf(h, sizeof(h), "/v1/locations?org_id=2&limit=2&cursor=%s",
		 cursor);
	CHECK(feeds(c, req("GET", h, AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == n + 2);
	CHECK(c->subs[n + 1].req.u.catalog.after_id == 4);
	/* the last page: no cursor; another tag */
	resp.more = false;
	out_reset(c);
	render(c, n + 1, 0, &resp, &views);
	CHECK(out_has(c, "\"next_cursor\":null}"));
	/* a cursor of another list, of the events, or none of ours: 400 */
	snprintf(h, sizeof(h), "/v1/instructors?cursor=%s", cursor);
	CHECK(answer_is(c, "GET", h, AUTH_ANON, NULL, 400, "cursor"));
	CHECK(answer_is(c, "GET", "/v1/series?cursor=xyz", AUTH_ANON, NULL, 400,
			"cursor"));
	CHECK(answer_is(c, "GET", "/v1/orgs?org_id=1", AUTH_ANON, NULL, 400,
			"unknown query parameter 'org_id'"));
	CHECK(answer_is(c, "GET", "/v1/series?limit=501", AUTH_ANON, NULL, 400,
			"limit"));
	CHECK(answer_is(c, "GET", "/v1/series?limit=0", AUTH_ANON, NULL, 400,
			"limit"));
	CHECK(answer_is(c, "GET", "/v1/series?org_id=x", AUTH_ANON, NULL, 400,
			"org_id"));
	/* the default limit */
	n = c->sub_count;
	CHECK(feeds(c, req("GET", "/v1/orgs", AUTH_ANON, NULL)) > 0);
	CHECK(c->sub_count == n + 1);
	CHECK(c->subs[n].req.u.catalog.limit == CORE_LIST_LIMIT_DEFAULT);
	CHECK(c->subs[n].req.u.catalog.kind == CORE_CAT_ORG);
	conn_free(c);
}

int main(int argc, char **argv)
{
	return http_test_main("http_reads", argc, argv);
}
