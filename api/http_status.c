/*
 * http_status.c: what an operator reads over HTTP (http_status.h): the
 * admin status object with its alerts, and the Prometheus metrics. Pure
 * writers over a struct srv_status; no request, no connection.
 */
#include "bookd_version.h"
#include "http_status.h"

#include "fields.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define HTTP_FSYNC_SLOW_NS (100u * 1000 * 1000)
#define HTTP_REPL_LAG_ALERT_S 60.0
#define HTTP_NOTIFY_AGE_ALERT_S 30.0

static void alert(struct jw *w, const char *name, const char *severity,
		  const char *message)
{
	ASSERT(name && severity && message);
	jw_obj_begin(w);
	jw_kv_cstr(w, "name", name);
	jw_kv_cstr(w, "severity", severity);
	jw_kv_cstr(w, "message", message);
	jw_obj_end(w);
}

static void status_alerts(struct jw *w, const struct srv_status *st)
{
	jw_arr_begin(w);
	if (st->wal_error)
		alert(w, "wal_failing", "critical",
		      fld_errno_message(st->wal_error));
	if (st->repl_state && strcmp(st->repl_state, "down") == 0)
		alert(w, "replication_down", "warning",
		      "PostgreSQL unreachable: replication waits");
	if (st->repl_lag_seconds > HTTP_REPL_LAG_ALERT_S)
		alert(w, "replication_lag", "warning",
		      "replication is more than 60 s behind");
	if (st->notify.dead_total)
		alert(w, "notification_dead_letters", "warning",
		      "notifications were given up on: see notify-dead.jsonl "
		      "in the data dir");
	if (st->notify.oldest_age_s > HTTP_NOTIFY_AGE_ALERT_S)
		alert(w, "notification_backlog", "warning",
		      "a notification waits for more than 30 s");
	if (st->payments.alert)
		alert(w, "payments_failing", "critical",
		      "Stripe keeps refusing calls: see payments.last_error");
	if (st->payments.refunds_failed)
		alert(w, "refunds_failed", "warning",
		      "refunds were given up on: settle them in Stripe "
		      "(payments rows with status refund_failed)");
	if (st->wal_sync_ns_max > HTTP_FSYNC_SLOW_NS)
		alert(w, "fsync_slow", "warning",
		      "an fsync took more than 100 ms");
	jw_arr_end(w);
}

/* The log syncs' q-quantile in µs from their histogram, interpolated
 * linearly inside its bucket (as Prometheus' histogram_quantile does); in
 * the last bucket (beyond every bound) that last bound; 0 with no sync. */
static double sync_quantile_us(const struct srv_status *st, double q)
{
	uint64_t total = 0, below = 0;

	for (unsigned i = 0; i < WAL_SYNC_BUCKET_COUNT; i++)
		total += st->wal_sync_buckets[i];
	if (total == 0)
		return 0.0;
	double rank = q * (double)total;
	for (unsigned i = 0; i < WAL_SYNC_BUCKET_COUNT; i++) {
		uint64_t n = st->wal_sync_buckets[i];
		double lo = i ? (double)wal_sync_bucket_le_us(i - 1) : 0.0;
		if (n == 0 || (double)(below + n) < rank) {
			below += n;
			continue;
		}
		if (i == WAL_SYNC_BUCKET_COUNT - 1)
			return lo;
		double hi = (double)wal_sync_bucket_le_us(i);
		return lo + (hi - lo) * (rank - (double)below) / (double)n;
	}
	return (double)wal_sync_bucket_le_us(WAL_SYNC_BUCKET_COUNT - 2);
}

static const char *job_result_name(enum jobs_result r)
{
	switch (r) {
	case JOBS_OK: return "ok";
	case JOBS_FAILED: return "failed";
	case JOBS_NEVER: break;
	}
	return "never";
}

/* A Unix ms time, or null for 0 (never, not known). */
static void time_or_null(struct jw *w, const char *key, int64_t ms)
{
	jw_key(w, key);
	if (ms)
		jw_time(w, ms);
	else
		jw_null(w);
}

/* "jobs": one object per scheduled job (core/jobs.h). */
static void status_jobs(struct jw *w, const struct srv_status *st)
{
	jw_key(w, "jobs");
	jw_arr_begin(w);
	for (unsigned i = 0; i < JOBS_COUNT; i++) {
		const struct jobs_state *j = &st->jobs[i];

		jw_obj_begin(w);
		jw_kv_cstr(w, "name", jobs_name((enum jobs_id)i));
		jw_kv_cstr(w, "schedule", j->schedule[0] ? j->schedule : NULL);
		jw_key(w, "active");
		jw_bool(w, j->active);
		jw_key(w, "running");
		jw_bool(w, j->running);
		time_or_null(w, "last_run_at", j->last_run_at_ms);
		jw_kv_double(w, "duration_ms", (double)j->duration_us / 1e3);
		jw_kv_cstr(w, "result", job_result_name(j->result));
		jw_kv_cstr(w, "message", j->message[0] ? j->message : NULL);
		time_or_null(w, "next_run_at", j->next_run_at_ms);
		jw_kv_u64(w, "runs", j->runs);
		jw_kv_u64(w, "failures", j->failures);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

/* The notification sender's part of the status (notify.h). */
static void status_notify(struct jw *w, const struct notify_status *n)
{
	jw_obj_begin(w);
	jw_kv_cstr(w, "state", n->running ? "running" : "disabled");
	jw_kv_u64(w, "position_lsn", n->position_lsn);
	jw_kv_u64(w, "backlog", n->backlog);
	jw_kv_u64(w, "unread_records", n->unread_records);
	jw_kv_double(w, "oldest_age_seconds", n->oldest_age_s);
	jw_kv_u64(w, "dead_letters", n->dead_total);
	jw_kv_cstr(w, "last_error", n->last_error[0] ? n->last_error : NULL);
	jw_key(w, "sinks");
	jw_obj_begin(w);
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++) {
		const struct notify_sink_status *k = &n->sink[s];
		uint64_t count = 0;

		if (!k->configured)
			continue;
		for (unsigned b = 0; b < NOTIFY_LATENCY_BUCKET_COUNT; b++)
			count += k->latency_buckets[b];
		jw_key(w, notify_sink_name((enum notify_sink)s));
		jw_obj_begin(w);
		jw_kv_u64(w, "delivered", k->delivered);
		jw_kv_u64(w, "failed_attempts", k->failed_attempts);
		jw_kv_u64(w, "dead_letters", k->dead);
		jw_kv_u64(w, "skipped", k->skipped);
		jw_kv_double(w, "latency_avg_seconds",
			     count ? k->latency_sum_s / (double)count : 0.0);
		jw_obj_end(w);
	}
	jw_obj_end(w);
	jw_obj_end(w);
}

/* The payments sender's part of the status (payments.h). */
static void status_payments(struct jw *w, const struct payments_status *p)
{
	jw_obj_begin(w);
	jw_kv_cstr(w, "state", p->running ? "running" : "disabled");
	jw_kv_u64(w, "position_lsn", p->position_lsn);
	jw_kv_u64(w, "pending", p->pending);
	jw_kv_u64(w, "intents_created", p->intents_created);
	jw_kv_u64(w, "intents_failed", p->intents_failed);
	jw_kv_u64(w, "refunds_done", p->refunds_done);
	jw_kv_u64(w, "refunds_failed", p->refunds_failed);
	jw_kv_u64(w, "failed_attempts", p->attempts_failed);
	jw_kv_u64(w, "failures_in_a_row", p->failures_in_a_row);
	jw_kv_cstr(w, "last_error", p->last_error[0] ? p->last_error : NULL);
	jw_obj_end(w);
}

/* The reporting views, refreshed now rather than on the schedule. */
void http_status_json(struct jw *w, const struct srv_status *st)
{
	uint32_t depth = w->depth;
	double avg_us;

	avg_us = st->wal_sync_count ? (double)st->wal_sync_ns_total /
					      st->wal_sync_count / 1e3
				    : 0.0;
	jw_obj_begin(w);
	jw_kv_cstr(w, "status", st->wal_error ? "degraded" : "ok");
	jw_kv_cstr(w, "version", BOOKD_VERSION);
	jw_kv_cstr(w, "build_type", BOOKD_BUILD_TYPE);
	jw_kv_u64(w, "shards", st->shard_count);
	jw_kv_u64(w, "threads", st->thread_count);
	jw_kv_u64(w, "connections", st->conn_count);
	jw_key(w, "started_at");
	jw_time(w, st->started_at);
	jw_key(w, "wal");
	jw_obj_begin(w);
	jw_kv_u64(w, "appended_lsn", st->wal_appended_lsn);
	jw_kv_u64(w, "durable_lsn", st->wal_durable_lsn);
	jw_kv_u64(w, "bytes_written", st->wal_bytes_written);
	jw_kv_u64(w, "fsync_count", st->wal_sync_count);
	jw_key(w, "fsync_latency_us");
	jw_obj_begin(w);
	jw_kv_double(w, "avg", avg_us);
	jw_kv_double(w, "max", (double)st->wal_sync_ns_max / 1e3);
	jw_kv_double(w, "p50", sync_quantile_us(st, 0.50));
	jw_kv_double(w, "p99", sync_quantile_us(st, 0.99));
	jw_obj_end(w);
	/* NULL (no error): null */
	jw_kv_cstr(w, "error",
		   st->wal_error ? fld_errno_message(st->wal_error) : NULL);
	jw_obj_end(w);
	jw_key(w, "replication");
	jw_obj_begin(w);
	jw_kv_cstr(w, "state", st->repl_state ? st->repl_state : "disabled");
	jw_kv_u64(w, "lag_records", st->repl_lag_records);
	jw_kv_u64(w, "lag_bytes", st->repl_lag_bytes);
	jw_kv_double(w, "lag_seconds", st->repl_lag_seconds);
	jw_kv_u64(w, "applied_lsn", st->repl_applied_lsn);
	jw_obj_end(w);
	jw_key(w, "notifications");
	status_notify(w, &st->notify);
	jw_key(w, "payments");
	status_payments(w, &st->payments);
	jw_kv_u64(w, "requests_total", st->requests_total);
	jw_kv_u64(w, "rate_limited_total", st->rate_limited_total);
	jw_key(w, "responses");
	jw_obj_begin(w);
	for (int i = 1; i < 6; i++) {
		char key[4] = { (char)('0' + i), 'x', 'x', '\0' };
		jw_kv_u64(w, key, st->responses_by_class[i]);
	}
	jw_obj_end(w);
	status_jobs(w, st);
	jw_key(w, "alerts");
	status_alerts(w, st);
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth); /* every object closed */
}

static void metric(struct jw *w, const char *name, const char *type,
		   const char *help)
{
	jw_rawf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample. */
static void metric_u64(struct jw *w, const char *name, const char *type,
		       const char *help, uint64_t v)
{
	metric(w, name, type, help);
	jw_rawf(w, "%s %" PRIu64 "\n", name, v);
}

/* One labelled sample: name{label="value"} v. */
static void sample_u64(struct jw *w, const char *name, const char *label,
		       const char *value, uint64_t v)
{
	jw_rawf(w, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, value, v);
}

/* One histogram's samples: its buckets (counts per bucket, not
 * cumulative) summed into Prometheus' cumulative ones, le from le(i) (the
 * last bucket +Inf), then _sum and _count (the +Inf bucket's, so they
 * always agree). labels: "" or the series' other labels with a trailing
 * comma (op="book",). */
static void histogram(struct jw *w, const char *name, const char *labels,
		      const uint64_t *buckets, unsigned count,
		      double (*le)(unsigned), double sum)
{
	uint64_t cum = 0;
	size_t n = strlen(labels);

	ASSERT(count >= 2);
	ASSERT(n == 0 || labels[n - 1] == ',');
	for (unsigned i = 0; i < count; i++) {
		char bound[32] = "+Inf";

		cum += buckets[i];
		if (i < count - 1)
			snprintf(bound, sizeof(bound), "%g", le(i));
		jw_rawf(w, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, labels,
			bound, cum);
	}
	if (n == 0) {
		jw_rawf(w, "%s_sum %.9g\n%s_count %" PRIu64 "\n", name, sum,
			name, cum);
		return;
	}
	jw_rawf(w, "%s_sum{%.*s} %.9g\n", name, (int)n - 1, labels, sum);
	jw_rawf(w, "%s_count{%.*s} %" PRIu64 "\n", name, (int)n - 1, labels,
		cum);
}

static double lat_le_s(unsigned i)
{
	return (double)srv_lat_bucket_le_us(i) / 1e6;
}

static double batch_le(unsigned i) { return (double)wal_batch_bucket_le(i); }

/* bookd_request_duration_seconds{op,protocol}: from a request taken to
 * its answer decided and durable, each (op, protocol) seen so far. */
static void request_histograms(struct jw *w, const struct srv_status *st)
{
	metric(w, "bookd_request_duration_seconds", "histogram",
	       "time from a request read to its answer ready (decided and "
	       "durable), by operation and protocol");
	for (int op = 1; op < CORE_OP_COUNT; op++)
		for (unsigned p = 0; p < SRV_PROTO_COUNT; p++) {
			const uint64_t *b = st->req_buckets[op][p];
			char labels[96];
			uint64_t any = 0;

			for (unsigned i = 0; i < SRV_LAT_BUCKET_COUNT; i++)
				any |= b[i];
			if (!any)
				continue;
			snprintf(labels, sizeof(labels),
				 "op=\"%s\",protocol=\"%s\",",
				 core_op_name((enum core_op)op),
				 srv_proto_label(p));
			histogram(w, "bookd_request_duration_seconds", labels,
				  b, SRV_LAT_BUCKET_COUNT, lat_le_s,
				  (double)st->req_ns_total[op][p] / 1e9);
		}
}

/* process_*: as Prometheus' client libraries name them. */
static void process_metrics(struct jw *w, const struct srv_status *st)
{
	const struct proc_stats *p = &st->proc;

	metric(w, "process_cpu_seconds_total", "counter",
	       "user and system CPU time spent in seconds");
	jw_rawf(w, "process_cpu_seconds_total %.2f\n", p->cpu_seconds);
	metric(w, "process_start_time_seconds", "gauge",
	       "start time of the process since unix epoch in seconds");
	jw_rawf(w, "process_start_time_seconds %.2f\n", p->start_time_seconds);
	metric_u64(w, "process_resident_memory_bytes", "gauge",
		   "resident memory size in bytes", p->resident_bytes);
	metric_u64(w, "process_virtual_memory_bytes", "gauge",
		   "virtual memory size in bytes", p->virtual_bytes);
	metric_u64(w, "process_open_fds", "gauge",
		   "number of open file descriptors", p->open_fds);
	metric_u64(w, "process_max_fds", "gauge",
		   "maximum number of open file descriptors", p->max_fds);
}

/* The log syncs' latency as a Prometheus histogram: cumulative buckets
 * (le in seconds), their sum and count (the +Inf bucket's). */
static void sync_histogram(struct jw *w, const struct srv_status *st)
{
	uint64_t cum = 0;

	metric(w, "bookd_wal_fsync_seconds", "histogram", "log sync latency");
	for (unsigned i = 0; i < WAL_SYNC_BUCKET_COUNT; i++) {
		char le[32] = "+Inf";

		cum += st->wal_sync_buckets[i];
		if (i < WAL_SYNC_BUCKET_COUNT - 1)
			snprintf(le, sizeof(le), "%g",
				 (double)wal_sync_bucket_le_us(i) / 1e6);
		sample_u64(w, "bookd_wal_fsync_seconds_bucket", "le", le, cum);
	}
	jw_rawf(w, "bookd_wal_fsync_seconds_sum %.6f\n",
		st->wal_sync_ns_total / 1e9);
	jw_rawf(w, "bookd_wal_fsync_seconds_count %" PRIu64 "\n", cum);
}

/* The scheduled jobs (core/jobs.h): a job that never ran has no last run
 * sample, one without a known next run no next run sample. */
static void jobs_metrics(struct jw *w, const struct srv_status *st)
{
	metric(w, "bookd_job_last_run_timestamp_seconds", "gauge",
	       "start of the job's last run, Unix");
	for (unsigned i = 0; i < JOBS_COUNT; i++)
		if (st->jobs[i].last_run_at_ms)
			jw_rawf(w,
				"bookd_job_last_run_timestamp_seconds"
				"{job=\"%s\"} %.3f\n",
				jobs_name((enum jobs_id)i),
				st->jobs[i].last_run_at_ms / 1e3);
	metric(w, "bookd_job_last_duration_seconds", "gauge",
	       "duration of the job's last run");
	for (unsigned i = 0; i < JOBS_COUNT; i++)
		if (st->jobs[i].runs)
			jw_rawf(w,
				"bookd_job_last_duration_seconds"
				"{job=\"%s\"} %.6f\n",
				jobs_name((enum jobs_id)i),
				st->jobs[i].duration_us / 1e6);
	metric(w, "bookd_job_runs_total", "counter",
	       "runs of the job since start, by result");
	for (unsigned i = 0; i < JOBS_COUNT; i++) {
		const struct jobs_state *j = &st->jobs[i];

		jw_rawf(w,
			"bookd_job_runs_total{job=\"%s\",result=\"ok\"} %" PRIu64
			"\n"
			"bookd_job_runs_total{job=\"%s\",result=\"failed\"} %" PRIu64
			"\n",
			jobs_name((enum jobs_id)i), j->runs - j->failures,
			jobs_name((enum jobs_id)i), j->failures);
	}
	metric(w, "bookd_job_next_run_timestamp_seconds", "gauge",
	       "when the job runs next, Unix");
	for (unsigned i = 0; i < JOBS_COUNT; i++)
		if (st->jobs[i].next_run_at_ms)
			jw_rawf(w,
				"bookd_job_next_run_timestamp_seconds"
				"{job=\"%s\"} %.3f\n",
				jobs_name((enum jobs_id)i),
				st->jobs[i].next_run_at_ms / 1e3);
}

/* The payments sender's metrics (payments.h): its calls' outcomes and the
 * alert. */
static void payments_metrics(struct jw *w, const struct payments_status *p)
{
	metric_u64(w, "bookd_payments_intents_created_total", "counter",
		   "PaymentIntents created at Stripe for holds",
		   p->intents_created);
	metric_u64(w, "bookd_payments_intents_failed_total", "counter",
		   "holds released because their PaymentIntent could not be "
		   "created",
		   p->intents_failed);
	metric_u64(w, "bookd_payments_refunds_total", "counter",
		   "refunds made at Stripe", p->refunds_done);
	metric_u64(w, "bookd_payments_refunds_failed_total", "counter",
		   "refunds given up on", p->refunds_failed);
	metric_u64(w, "bookd_payments_failed_attempts_total", "counter",
		   "Stripe calls that failed", p->attempts_failed);
	metric_u64(w, "bookd_payments_pending", "gauge",
		   "intents and refunds not finished", p->pending);
	metric_u64(w, "bookd_payments_alert", "gauge",
		   "1 while Stripe keeps refusing calls "
		   "(--payments-alert-failures in a row)",
		   p->alert ? 1 : 0);
}

/* The notification sender's metrics: backlog, delivered and dead letters
 * per sink, and the delivery latency (decision to the sink's 2xx) as a
 * histogram per sink. */
static void notify_metrics(struct jw *w, const struct notify_status *n)
{
	static const double le[] = NOTIFY_LATENCY_BUCKETS;

	metric_u64(w, "bookd_notifications_backlog", "gauge",
		   "notifications read from the log and not finished",
		   n->backlog);
	metric(w, "bookd_notifications_delivered_total", "counter",
	       "notifications delivered, by sink");
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
		if (n->sink[s].configured)
			sample_u64(w, "bookd_notifications_delivered_total",
				   "sink",
				   notify_sink_name((enum notify_sink)s),
				   n->sink[s].delivered);
	metric(w, "bookd_notifications_failed_attempts_total", "counter",
	       "delivery attempts that failed, by sink");
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
		if (n->sink[s].configured)
			sample_u64(w,
				   "bookd_notifications_failed_attempts_total",
				   "sink",
				   notify_sink_name((enum notify_sink)s),
				   n->sink[s].failed_attempts);
	metric(w, "bookd_notifications_dead_total", "counter",
	       "notifications given up on (dead letters), by sink");
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
		if (n->sink[s].configured)
			sample_u64(w, "bookd_notifications_dead_total", "sink",
				   notify_sink_name((enum notify_sink)s),
				   n->sink[s].dead);
	metric(w, "bookd_notification_delivery_seconds", "histogram",
	       "from the decision to the sink's acceptance, by sink");
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++) {
		const struct notify_sink_status *k = &n->sink[s];
		const char *name = notify_sink_name((enum notify_sink)s);
		uint64_t cum = 0;

		if (!k->configured)
			continue;
		for (unsigned b = 0; b < NOTIFY_LATENCY_BUCKET_COUNT; b++) {
			char bound[32] = "+Inf";

			cum += k->latency_buckets[b];
			if (b < NOTIFY_LATENCY_BUCKET_COUNT - 1)
				snprintf(bound, sizeof(bound), "%g", le[b]);
			jw_rawf(w,
				"bookd_notification_delivery_seconds_bucket{"
				"sink=\"%s\",le=\"%s\"} %" PRIu64 "\n",
				name, bound, cum);
		}
		jw_rawf(w,
			"bookd_notification_delivery_seconds_sum{sink=\"%s\"} "
			"%.6f\n",
			name, k->latency_sum_s);
		jw_rawf(w,
			"bookd_notification_delivery_seconds_count{sink=\"%s\"}"
			" %" PRIu64 "\n",
			name, cum);
	}
}

void http_metrics_text(struct jw *w, const struct srv_status *st)
{
	metric_u64(w, "bookd_up", "gauge", "1 while bookd serves", 1);
	metric(w, "bookd_build_info", "gauge",
	       "the version and build type of this bookd (always 1)");
	jw_rawf(w, "bookd_build_info{version=\"%s\",build_type=\"%s\"} 1\n",
		BOOKD_VERSION, BOOKD_BUILD_TYPE);
	process_metrics(w, st);
	metric(w, "bookd_start_time_seconds", "gauge", "start time, Unix");
	jw_rawf(w, "bookd_start_time_seconds %.3f\n", st->started_at / 1e3);
	metric_u64(w, "bookd_shards", "gauge", "core shards", st->shard_count);
	metric_u64(w, "bookd_threads", "gauge", "network threads",
		   st->thread_count);
	metric_u64(w, "bookd_connections", "gauge", "open connections",
		   st->conn_count);
	metric(w, "bookd_connections_open", "gauge",
	       "open connections by protocol");
	for (unsigned p = 0; p < SRV_PROTO_COUNT; p++)
		sample_u64(w, "bookd_connections_open", "protocol",
			   srv_proto_label(p), st->conn_by_proto[p]);
	metric(w, "bookd_connections_refused_total", "counter",
	       "connections closed at accept (docs/operations.md)");
	sample_u64(w, "bookd_connections_refused_total", "reason",
		   "address_cap", st->conn_refused_address);
	sample_u64(w, "bookd_connections_refused_total", "reason", "table_full",
		   st->conn_refused_full);
	metric_u64(w, "bookd_request_timeouts_total", "counter",
		   "requests not whole within the request timeout (408)",
		   st->request_timeouts);
	metric_u64(w, "bookd_requests_total", "counter", "requests parsed",
		   st->requests_total);
	metric(w, "bookd_responses_total", "counter",
	       "answers by status class");
	for (int i = 1; i < 6; i++) {
		char class[16];

		snprintf(class, sizeof(class), "%dxx", i);
		sample_u64(w, "bookd_responses_total", "class", class,
			   st->responses_by_class[i]);
	}
	metric_u64(w, "bookd_rate_limited_total", "counter",
		   "requests refused by rate limits", st->rate_limited_total);
	metric(w, "bookd_rate_limit_refusals_total", "counter",
	       "requests refused, by the limit that refused them "
	       "(docs/operations.md)");
	for (unsigned k = 0; k < AUTH_LIMIT_KIND_COUNT; k++)
		sample_u64(w, "bookd_rate_limit_refusals_total", "limit",
			   auth_limit_kind_name((enum auth_limit_kind)k),
			   st->rate_refused[k]);
	metric(w, "bookd_operations_total", "counter", "core operations");
	for (int i = 1; i < CORE_OP_COUNT; i++)
		sample_u64(w, "bookd_operations_total", "op",
			   core_op_name((enum core_op)i), st->ops_total[i]);
	metric(w, "bookd_operation_seconds_total", "counter",
	       "time from request to answer, by operation");
	for (int i = 1; i < CORE_OP_COUNT; i++)
		jw_rawf(w, "bookd_operation_seconds_total{op=\"%s\"} %.6f\n",
			core_op_name((enum core_op)i),
			st->ops_ns_total[i] / 1e9);
	metric_u64(w, "bookd_wal_appended_lsn", "gauge", "last log position",
		   st->wal_appended_lsn);
	metric_u64(w, "bookd_wal_durable_lsn", "gauge", "last durable position",
		   st->wal_durable_lsn);
	metric_u64(w, "bookd_wal_bytes_written_total", "counter", "log bytes",
		   st->wal_bytes_written);
	metric_u64(w, "bookd_wal_fsync_total", "counter", "log syncs",
		   st->wal_sync_count);
	metric(w, "bookd_wal_fsync_seconds_max", "gauge", "longest log sync");
	jw_rawf(w, "bookd_wal_fsync_seconds_max %.6f\n",
		st->wal_sync_ns_max / 1e9);
	sync_histogram(w, st);
	metric(w, "bookd_wal_batch_records", "histogram",
	       "records per batch the log's writer wrote (group commit)");
	histogram(w, "bookd_wal_batch_records", "", st->wal_batch_buckets,
		  WAL_BATCH_BUCKET_COUNT, batch_le,
		  (double)st->wal_batch_records_total);
	metric_u64(w, "bookd_wal_failing", "gauge",
		   "1 while writes are refused", st->wal_error ? 1 : 0);
	metric(w, "bookd_replication_state", "gauge",
	       "1 for the replicator's current state");
	jw_rawf(w, "bookd_replication_state{state=\"%s\"} 1\n",
		st->repl_state ? st->repl_state : "disabled");
	metric_u64(w, "bookd_replication_lag_records", "gauge",
		   "log records not yet in PostgreSQL", st->repl_lag_records);
	metric_u64(w, "bookd_replication_lag_bytes", "gauge",
		   "log bytes not yet in PostgreSQL", st->repl_lag_bytes);
	metric(w, "bookd_replication_lag_seconds", "gauge",
	       "age of the oldest record not yet in PostgreSQL");
	jw_rawf(w, "bookd_replication_lag_seconds %.3f\n",
		st->repl_lag_seconds);
	request_histograms(w, st);
	jobs_metrics(w, st);
	notify_metrics(w, &st->notify);
	payments_metrics(w, &st->payments);
}
