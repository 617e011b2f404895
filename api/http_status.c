/*
 * http_status.c: what an operator reads over HTTP (http_status.h): the
 * admin status object with its alerts, and the Prometheus metrics. Pure
 * writers over a struct srv_status; no request, no connection.
 */
#include "http_status.h"

#include "fields.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const op_name[CORE_OP_COUNT] = {
	[CORE_OP_NONE] = "none",
	[CORE_OP_BOOK] = "book",
	[CORE_OP_CANCEL] = "cancel",
	[CORE_OP_PAY] = "pay",
	[CORE_OP_EVENT_PATCH] = "event_patch",
	[CORE_OP_EVENT_GET] = "event_get",
	[CORE_OP_BOOKING_GET] = "booking_get",
	[CORE_OP_TICK] = "tick",
	[CORE_OP_CUSTOMER_BOOKINGS] = "customer_bookings",
	[CORE_OP_EVENT_LIST] = "event_list",
	[CORE_OP_ORG_CREATE] = "org_create",
	[CORE_OP_LOCATION_CREATE] = "location_create",
	[CORE_OP_INSTRUCTOR_CREATE] = "instructor_create",
	[CORE_OP_CUSTOMER_UPSERT] = "customer_upsert",
	[CORE_OP_SERIES_CREATE] = "series_create",
	[CORE_OP_GENERATE] = "generate",
	[CORE_OP_ARCHIVE] = "archive",
};

#define HTTP_FSYNC_SLOW_NS (100u * 1000 * 1000)
#define HTTP_REPL_LAG_ALERT_S 60.0

static void status_alerts(struct jw *w, const struct srv_status *st)
{
	jw_arr_begin(w);
	if (st->wal_error) {
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_cstr(w, "wal_failing");
		jw_key(w, "severity");
		jw_cstr(w, "critical");
		jw_key(w, "message");
		jw_cstr(w, fld_errno_message(st->wal_error));
		jw_obj_end(w);
	}
	if (st->repl_state && strcmp(st->repl_state, "down") == 0) {
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_cstr(w, "replication_down");
		jw_key(w, "severity");
		jw_cstr(w, "warning");
		jw_key(w, "message");
		jw_cstr(w, "PostgreSQL unreachable: replication waits");
		jw_obj_end(w);
	}
	if (st->repl_lag_seconds > HTTP_REPL_LAG_ALERT_S) {
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_cstr(w, "replication_lag");
		jw_key(w, "severity");
		jw_cstr(w, "warning");
		jw_key(w, "message");
		jw_cstr(w, "replication is more than 60 s behind");
		jw_obj_end(w);
	}
	if (st->wal_sync_ns_max > HTTP_FSYNC_SLOW_NS) {
		jw_obj_begin(w);
		jw_key(w, "name");
		jw_cstr(w, "fsync_slow");
		jw_key(w, "severity");
		jw_cstr(w, "warning");
		jw_key(w, "message");
		jw_cstr(w, "an fsync took more than 100 ms");
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

/* The reporting views, refreshed now rather than on the schedule. */
void http_status_json(struct jw *w, const struct srv_status *st)
{
	double avg_us;

	avg_us = st->wal_sync_count
			 ? (double)st->wal_sync_ns_total / st->wal_sync_count / 1e3
			 : 0.0;
	jw_obj_begin(w);
	jw_key(w, "status");
	jw_cstr(w, st->wal_error ? "degraded" : "ok");
	jw_key(w, "version");
	jw_cstr(w, BOOKD_VERSION);
	jw_key(w, "build_type");
	jw_cstr(w, BOOKD_BUILD_TYPE);
	jw_key(w, "shards");
	jw_u64(w, st->shard_count);
	jw_key(w, "threads");
	jw_u64(w, st->thread_count);
	jw_key(w, "connections");
	jw_u64(w, st->conn_count);
	jw_key(w, "started_at");
	jw_time(w, st->started_at);
	jw_key(w, "wal");
	jw_obj_begin(w);
	jw_key(w, "appended_lsn");
	jw_u64(w, st->wal_appended_lsn);
	jw_key(w, "durable_lsn");
	jw_u64(w, st->wal_durable_lsn);
	jw_key(w, "bytes_written");
	jw_u64(w, st->wal_bytes_written);
	jw_key(w, "fsync_count");
	jw_u64(w, st->wal_sync_count);
	jw_key(w, "fsync_latency_us");
	jw_obj_begin(w);
	jw_key(w, "avg");
	jw_double(w, avg_us);
	jw_key(w, "max");
	jw_double(w, (double)st->wal_sync_ns_max / 1e3);
	jw_obj_end(w);
	jw_key(w, "error");
	if (st->wal_error) {
		jw_cstr(w, fld_errno_message(st->wal_error));
	} else {
		jw_null(w);
	}
	jw_obj_end(w);
	jw_key(w, "replication");
	jw_obj_begin(w);
	jw_key(w, "state");
	jw_cstr(w, st->repl_state ? st->repl_state : "disabled");
	jw_key(w, "lag_records");
	jw_u64(w, st->repl_lag_records);
	jw_key(w, "lag_bytes");
	jw_u64(w, st->repl_lag_bytes);
	jw_key(w, "lag_seconds");
	jw_double(w, st->repl_lag_seconds);
	jw_key(w, "applied_lsn");
	jw_u64(w, st->repl_applied_lsn);
	jw_obj_end(w);
	jw_key(w, "requests_total");
	jw_u64(w, st->requests_total);
	jw_key(w, "rate_limited_total");
	jw_u64(w, st->rate_limited_total);
	jw_key(w, "responses");
	jw_obj_begin(w);
	for (int i = 1; i < 6; i++) {
		char key[4] = { (char)('0' + i), 'x', 'x', '\0' };
		jw_key(w, key);
		jw_u64(w, st->responses_by_class[i]);
	}
	jw_obj_end(w);
	jw_key(w, "alerts");
	status_alerts(w, st);
	jw_obj_end(w);
}

static void metric(struct jw *w, const char *name, const char *type,
		   const char *help)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n",
			 name, help, name, type);
	if (n > 0 && (size_t)n < sizeof(line))
		jw_raw(w, line, (size_t)n);
}

static void mline(struct jw *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mline(struct jw *w, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(line))
		jw_raw(w, line, (size_t)n);
}

void http_metrics_text(struct jw *w, const struct srv_status *st)
{
	metric(w, "bookd_up", "gauge", "1 while bookd serves");
	mline(w, "bookd_up 1\n");
	metric(w, "bookd_start_time_seconds", "gauge", "start time, Unix");
	mline(w, "bookd_start_time_seconds %.3f\n", st->started_at / 1e3);
	metric(w, "bookd_shards", "gauge", "core shards");
	mline(w, "bookd_shards %u\n", st->shard_count);
	metric(w, "bookd_threads", "gauge", "network threads");
	mline(w, "bookd_threads %u\n", st->thread_count);
	metric(w, "bookd_connections", "gauge", "open connections");
	mline(w, "bookd_connections %" PRIu64 "\n", st->conn_count);
	metric(w, "bookd_connections_refused_total", "counter",
	       "connections closed at accept (docs/operations.md)");
	mline(w, "bookd_connections_refused_total{reason=\"address_cap\"} %"
	      PRIu64 "\n", st->conn_refused_address);
	mline(w, "bookd_connections_refused_total{reason=\"table_full\"} %"
	      PRIu64 "\n", st->conn_refused_full);
	metric(w, "bookd_request_timeouts_total", "counter",
	       "requests not whole within the request timeout (408)");
	mline(w, "bookd_request_timeouts_total %" PRIu64 "\n",
	      st->request_timeouts);
	metric(w, "bookd_requests_total", "counter", "requests parsed");
	mline(w, "bookd_requests_total %" PRIu64 "\n", st->requests_total);
	metric(w, "bookd_responses_total", "counter",
	       "answers by status class");
	for (int i = 1; i < 6; i++)
		mline(w, "bookd_responses_total{class=\"%dxx\"} %" PRIu64 "\n",
		      i, st->responses_by_class[i]);
	metric(w, "bookd_rate_limited_total", "counter",
	       "requests refused by rate limits");
	mline(w, "bookd_rate_limited_total %" PRIu64 "\n",
	      st->rate_limited_total);
	metric(w, "bookd_operations_total", "counter", "core operations");
	for (int i = 1; i < CORE_OP_COUNT; i++)
		mline(w, "bookd_operations_total{op=\"%s\"} %" PRIu64 "\n",
		      op_name[i] ? op_name[i] : "other", st->ops_total[i]);
	metric(w, "bookd_operation_seconds_total", "counter",
	       "time from request to answer, by operation");
	for (int i = 1; i < CORE_OP_COUNT; i++)
		mline(w, "bookd_operation_seconds_total{op=\"%s\"} %.6f\n",
		      op_name[i] ? op_name[i] : "other", st->ops_ns_total[i] / 1e9);
	metric(w, "bookd_wal_appended_lsn", "gauge", "last log position");
	mline(w, "bookd_wal_appended_lsn %" PRIu64 "\n", st->wal_appended_lsn);
	metric(w, "bookd_wal_durable_lsn", "gauge", "last durable position");
	mline(w, "bookd_wal_durable_lsn %" PRIu64 "\n", st->wal_durable_lsn);
	metric(w, "bookd_wal_bytes_written_total", "counter", "log bytes");
	mline(w, "bookd_wal_bytes_written_total %" PRIu64 "\n",
	      st->wal_bytes_written);
	metric(w, "bookd_wal_fsync_total", "counter", "log syncs");
	mline(w, "bookd_wal_fsync_total %" PRIu64 "\n", st->wal_sync_count);
	metric(w, "bookd_wal_fsync_seconds_total", "counter",
	       "time in log syncs");
	mline(w, "bookd_wal_fsync_seconds_total %.6f\n",
	      st->wal_sync_ns_total / 1e9);
	metric(w, "bookd_wal_fsync_seconds_max", "gauge", "longest log sync");
	mline(w, "bookd_wal_fsync_seconds_max %.6f\n", st->wal_sync_ns_max / 1e9);
	metric(w, "bookd_wal_failing", "gauge", "1 while writes are refused");
	mline(w, "bookd_wal_failing %d\n", st->wal_error ? 1 : 0);
	metric(w, "bookd_replication_state", "gauge",
	       "1 for the replicator's current state");
	mline(w, "bookd_replication_state{state=\"%s\"} 1\n",
	      st->repl_state ? st->repl_state : "disabled");
	metric(w, "bookd_replication_lag_records", "gauge",
	       "log records not yet in PostgreSQL");
	mline(w, "bookd_replication_lag_records %" PRIu64 "\n",
	      st->repl_lag_records);
	metric(w, "bookd_replication_lag_bytes", "gauge",
	       "log bytes not yet in PostgreSQL");
	mline(w, "bookd_replication_lag_bytes %" PRIu64 "\n",
	      st->repl_lag_bytes);
	metric(w, "bookd_replication_lag_seconds", "gauge",
	       "age of the oldest record not yet in PostgreSQL");
	mline(w, "bookd_replication_lag_seconds %.3f\n", st->repl_lag_seconds);
}
