/*
 * notify.h: the notification sender (public API). Tails the durable log
 * for NOTIFY records (core/entry.h) and delivers each, at least once and
 * with the stable id PostgreSQL's notifications row has ("<log_id>/<lsn>.<k>",
 * replicator/fold.c), to a webhook (Standard Webhooks signature) and by
 * email over SMTP, both through libcurl. Its own thread, never on the
 * booking path. The design (threads, position, retries, ordering, failure
 * behaviour) is at the top of notify.c; docs/operations.md "Notifications"
 * is the operator's side.
 */
#ifndef BOOKD_NOTIFY_H
#define BOOKD_NOTIFY_H

#include "core.h"
#include "wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct notify notify;

enum notify_sink {
	NOTIFY_SINK_WEBHOOK = 0,
	NOTIFY_SINK_EMAIL,
	NOTIFY_SINK_COUNT
};

#define NOTIFY_ERROR_SIZE 256
/* Delivery latency buckets' upper bounds in seconds (+Inf after them). */
#define NOTIFY_LATENCY_BUCKETS                                                 \
	{                                                                      \
		0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120  \
	}
#define NOTIFY_LATENCY_BUCKET_COUNT 14 /* the bounds above and +Inf */

struct notify_config {
	const char *data_dir; /* the position file and the dead letters */
	const char *log_id;   /* the ids' prefix: "bookd" (the replicator's) */
	const char *webhook_url;    /* NULL or "": no webhook */
	const char *webhook_secret; /* "whsec_<base64 key>" or a raw secret */
	const char *smtp_url;	    /* smtp:// or smtps://user:pass@host:port */
	const char *smtp_from;	    /* the sender's address */
	const char *smtp_password;  /* ESP_API_KEY: replaces the URL's */
	const char *template_dir;   /* <kind>.txt overrides; NULL: built in */
	unsigned max_attempts;	    /* then a dead letter (10) */
	unsigned backoff_ms;	    /* first retry's delay (250) */
	unsigned backoff_max_ms;    /* a retry's longest delay (30000) */
	unsigned timeout_ms;	    /* one request's whole time (10000) */
	unsigned inflight_max;	    /* requests at once, per sink (32) */
	double rate[NOTIFY_SINK_COUNT]; /* requests/s per sink, burst the
					 * same (1000, 100); 0: no limit */
	int wake_fd; /* an eventfd the log writes (wal_event_fd_add); -1:
		      * poll every few ms */
	bool quiet;  /* no progress lines on stderr (tests) */
};

void notify_config_default(struct notify_config *cfg);
/* True when a sink is configured: otherwise the sender does not run. */
bool notify_config_enabled(const struct notify_config *cfg);

/*
 * Loads the position (data_dir/notify.pos) and templates, opens the log
 * reader after the position (first start: the durable end of the log),
 * holds the log from there (wal_retain_for WAL_HOLDER_NOTIFY) and starts
 * the thread. port is the sender's own core port (reads only), c its core.
 * 0, or -errno with a message in err.
 */
int notify_start(const struct notify_config *cfg, wal *w, core *c,
		 core_port *port, notify **out, char *err, size_t err_size);
/* Stops the thread (requests in flight are abandoned: they are sent again
 * at the next start), writes the position, releases the hold, frees n.
 * NULL: nothing. */
void notify_stop(notify *n);

struct notify_sink_status {
	bool configured;
	uint64_t delivered, failed_attempts, dead, skipped;
	uint64_t latency_buckets[NOTIFY_LATENCY_BUCKET_COUNT]; /* not
								 * cumulative */
	double latency_sum_s;
};

struct notify_status {
	bool running;
	uint64_t position_lsn;	 /* the oldest LSN not finished on every sink */
	uint64_t backlog;	 /* notifications read and not finished */
	uint64_t unread_records; /* durable log records not read yet */
	double oldest_age_s;	 /* the oldest unfinished one's, since its
				  * decision */
	uint64_t dead_total;	 /* dead letters since start, all sinks */
	char last_error[NOTIFY_ERROR_SIZE]; /* "" when none */
	struct notify_sink_status sink[NOTIFY_SINK_COUNT];
};

/* Any thread; n NULL: all zero (not running). */
void notify_status(notify *n, struct notify_status *out);
const char *notify_sink_name(enum notify_sink s);

/*
 * The Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id "."
 * timestamp "." body)), key = base64-decoded after "whsec_", else the
 * secret's bytes. 0, or -EINVAL (bad base64, out too small: 64 bytes
 * suffice).
 */
int notify_sign(const char *secret, const char *id, int64_t timestamp,
		const char *body, size_t body_size, char *out, size_t out_size);

#endif
