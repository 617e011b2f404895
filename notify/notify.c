/*
 * notify.c: the notification sender (notify.h is its public header).
 *
 * Purpose
 *   The core decides notifications as NOTIFY records in the log (the
 *   outbox: booking_id + kind, core/entry.h). This tails the durable log
 *   and delivers each, at least once, to every configured sink: a webhook
 *   (Standard Webhooks headers and signature) and email over SMTP, both
 *   through libcurl. Its id is PostgreSQL's notifications row's:
 *   "<log_id>/<lsn>.<k>", k counting the entry's NOTIFY records from 0
 *   (replicator/fold.c fold_notify), so a receiver deduplicates on it.
 *
 * Threads
 *   One thread of its own: it reads the log (wal_reader_*, woken by an
 *   eventfd the log writes after each durable advance), reads what a
 *   notification names from the core at delivery time (core_call reads of
 *   the booking and the event on its own core port, core_names_get for the
 *   org, the zone and the customer's email), and drives every request
 *   through one curl multi handle. The booking path never waits for it;
 *   its reads are ordinary shard reads. notify_status() is read under a
 *   mutex from any thread; notify_stop() wakes the multi handle.
 *
 * Queue and ordering
 *   Each NOTIFY read becomes a job in a ring of NOTIFY_QUEUE_MAX in log
 *   order, with a state per sink: pending (due at next_ms), in flight or
 *   finished (delivered, dead letter, or skipped: a sink not configured,
 *   an email to a customer without one). A scan in log order starts what
 *   is due, at most inflight_max requests per sink, as the sink's token
 *   bucket allows, and never a job whose booking has an earlier job not
 *   finished on that sink: one booking's notifications reach a sink in log
 *   order, one at a time, while other bookings go on. Finished jobs leave
 *   the head of the ring (an entry's jobs together). When the ring is full
 *   the reader pauses (the log holds the rest).
 *
 * Position
 *   data_dir/notify.pos holds the oldest LSN not finished on every sink
 *   (the head's, else the reader's next) and, for the jobs after it that
 *   some sink finished, their id and which sinks finished them; written
 *   (tmp file, fdatasync, rename, directory fsync: tail.h, the log tailer
 *   shared with the Stripe sender) at most every NOTIFY_POS_WRITE_MS while
 *   it changes, and at stop. The log is held
 *   from that LSN (wal_retain_for WAL_HOLDER_NOTIFY). A restart (kill -9
 *   too) reads from there and skips what the file says was finished: only
 *   what was in flight, or finished after the last write, is sent again,
 *   with the same id. The first start (no file) begins at the log's
 *   durable end: notifications decided before a sink was configured are
 *   not sent. If the log before the position is gone (-ENODATA), the
 *   sender says so and goes on from the durable end (never crashes).
 *
 * Job
 *   The sender runs all the time; the jobs registry (core/jobs.h) sees it
 *   as the job notification_delivery, one run per NOTIFY_JOB_EVERY_MS of
 *   it: failed when an attempt failed in that window, with what was
 *   delivered, failed and given up on (a quiet window has no message).
 *
 * Retries and failure behaviour
 *   Webhook: a 2xx answer is delivered; any other answer, a timeout or a
 *   connection error is a failed attempt. Email: the SMTP transaction
 *   completing is delivered. A failed attempt waits backoff_ms * 2^(n-1),
 *   capped at backoff_max_ms, jittered to between half and all of it; after
 *   max_attempts the job is a dead letter on that sink: one JSON line in
 *   data_dir/notify-dead.jsonl (fdatasync), counted, and the booking's
 *   later notifications go on. A record that does not decode stops the
 *   sender (last_error; nothing skipped). Secrets (the webhook key, the
 *   SMTP password) never appear in messages.
 */
#include "bookd_version.h"
#include "notify.h"

#include "bookd_assert.h"
#include "entry.h"
#include "evlog.h"
#include "jobs.h"
#include "tail.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_QUEUE_MAX 16384 /* jobs read and not finished, at most */
#define NOTIFY_INFLIGHT_MAX 256
#define NOTIFY_POS_WRITE_MS 100
#define NOTIFY_IDLE_MS 1000 /* longest sleep without a wake-up */
#define NOTIFY_ID_SIZE 240
#define NOTIFY_TEMPLATE_SIZE_MAX (16u << 10)
#define NOTIFY_POS_LINE_MAX 64
#define NOTIFY_READ_BATCH 1024 /* records a wal_reader_next call */
#define NOTIFY_KIND_SLOTS 11   /* enum core_notify_kind's values + 1 */

enum job_state { J_PENDING = 0, J_FLIGHT, J_DONE };

struct job {
	uint64_t lsn, booking_id;
	uint32_t k; /* the k-th NOTIFY of its entry */
	uint8_t kind;
	uint8_t changed;	   /* the entry's EVENT_EDIT's, 0: none */
	core_time at;		   /* decision time, ms */
	core_time hold_expires_at; /* from the entry's booking record */
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1]; /* "" unknown */
	uint8_t state[NOTIFY_SINK_COUNT];
	uint16_t attempts[NOTIFY_SINK_COUNT];
	int64_t next_ms[NOTIFY_SINK_COUNT]; /* monotonic: not before */
};

struct request {
	CURL *h;
	struct job *job;
	enum notify_sink sink;
	struct curl_slist *headers, *rcpt;
	char *body;
	size_t body_size, body_off;
	char err[CURL_ERROR_SIZE];
};

struct tmpl {
	char *subject, *body; /* NULL: the built-in */
};

/* A done line of the position file: (lsn, k) finished on `mask`'s sinks. */
struct done {
	uint64_t lsn;
	uint32_t k;
	uint8_t mask;
};

/* Bookings blocked on a sink during one scan: open addressing, a slot is
 * in use when its gen is the scan's. */
#define NOTIFY_BLOCK_SLOTS (NOTIFY_QUEUE_MAX * 2)
struct block_slot {
	uint64_t booking_id;
	uint32_t gen;
};

struct bucket {
	double tokens, rate, burst;
	int64_t at_ms;
};

struct notify {
	struct notify_config cfg;
	char *data_dir, *log_id, *webhook_url, *smtp_url, *smtp_from,
		*smtp_password;
	uint8_t key[256];
	size_t key_size;
	bool sink_on[NOTIFY_SINK_COUNT];
	wal *w;
	core *c;
	core_port *port;
	struct tail t; /* the log from notify.pos */

	struct job *jobs; /* ring: NOTIFY_QUEUE_MAX */
	uint32_t head, count;
	struct done *dones; /* the position file's, sorted; freed once past */
	size_t done_count;
	uint64_t done_last_lsn;
	struct block_slot *blocked[NOTIFY_SINK_COUNT];
	uint32_t gen;

	CURLM *multi;
	struct request *reqs; /* NOTIFY_INFLIGHT_MAX * sinks */
	unsigned req_count, inflight[NOTIFY_SINK_COUNT];
	struct bucket bucket[NOTIFY_SINK_COUNT];
	bool failing[NOTIFY_SINK_COUNT]; /* for messages on a change only */
	bool rescan;			 /* something changed since the scan */
	struct tmpl tmpl[NOTIFY_KIND_SLOTS]; /* by kind; 0: an unknown kind */

	pthread_t thread;
	_Atomic bool stop;

	pthread_mutex_t lock; /* guards st */
	struct notify_status st;

	/* the job notification_delivery (sender thread only) */
	struct jobs_run job;
	int64_t job_end_ms;			      /* monotonic */
	uint64_t job_delivered, job_failed, job_dead; /* at its start */
};

#define NOTIFY_JOB_EVERY_MS 1000

const char *notify_sink_name(enum notify_sink s)
{
	return s == NOTIFY_SINK_WEBHOOK ? "webhook"
	       : s == NOTIFY_SINK_EMAIL ? "email"
					: "unknown";
}

/* ---- the signature ------------------------------------------------------ */

/* The key of a secret: base64 after "whsec_", else its bytes. */
static int secret_key(const char *secret, uint8_t *key, size_t key_max,
		      size_t *key_size)
{
	size_t len;

	if (strncmp(secret, "whsec_", 6) != 0) {
		len = strlen(secret);
		if (len == 0 || len > key_max)
			return -EINVAL;
		memcpy(key, secret, len);
		*key_size = len;
		return 0;
	}
	secret += 6;
	len = strlen(secret);
	if (len == 0 || len % 4 || len / 4 * 3 > key_max)
		return -EINVAL;
	int m = EVP_DecodeBlock(key, (const unsigned char *)secret, (int)len);
	if (m < 0)
		return -EINVAL;
	/* EVP_DecodeBlock counts the padding's zero bytes: take them off */
	while (len > 0 && secret[len - 1] == '=' && m > 0) {
		len--;
		m--;
	}
	*key_size = (size_t)m;
	return m > 0 ? 0 : -EINVAL;
}

static int sign_with(const uint8_t *key, size_t key_size, const char *id,
		     int64_t timestamp, const char *body, size_t body_size,
		     char *out, size_t out_size)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_size = 0;
	char ts[24];
	size_t id_len = strlen(id), ts_len, msg_size;
	unsigned char *msg;

	ts_len = (size_t)snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	msg_size = id_len + 1 + ts_len + 1 + body_size;
	if (out_size < 3 + 4 * ((32 + 2) / 3) + 1)
		return -EINVAL;
	msg = malloc(msg_size ? msg_size : 1);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, id, id_len);
	msg[id_len] = '.';
	memcpy(msg + id_len + 1, ts, ts_len);
	msg[id_len + 1 + ts_len] = '.';
	memcpy(msg + id_len + ts_len + 2, body, body_size);
	if (!HMAC(EVP_sha256(), key, (int)key_size, msg, msg_size, mac,
		  &mac_size)) {
		free(msg);
		return -EINVAL;
	}
	free(msg);
	ASSERT(mac_size == 32);
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_size);
	return 0;
}

int notify_sign(const char *secret, const char *id, int64_t timestamp,
		const char *body, size_t body_size, char *out, size_t out_size)
{
	uint8_t key[256];
	size_t key_size;

	if (secret_key(secret, key, sizeof(key), &key_size))
		return -EINVAL;
	return sign_with(key, key_size, id, timestamp, body, body_size, out,
			 out_size);
}

/* ---- config -------------------------------------------------------------- */

void notify_config_default(struct notify_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_id = "bookd";
	cfg->max_attempts = 10;
	cfg->backoff_ms = 250;
	cfg->backoff_max_ms = 30000;
	cfg->timeout_ms = 10000;
	cfg->inflight_max = 32;
	cfg->rate[NOTIFY_SINK_WEBHOOK] = 1000;
	cfg->rate[NOTIFY_SINK_EMAIL] = 100;
	cfg->wake_fd = -1;
}

static bool set(const char *s) { return s && *s; }

bool notify_config_enabled(const struct notify_config *cfg)
{
	return set(cfg->webhook_url) || set(cfg->smtp_url);
}

/* ---- templates ----------------------------------------------------------- */

/* Built in, by kind: subject, then body. {{name}} is replaced (fill). */
static const char *const builtin[NOTIFY_KIND_SLOTS][2] = {
	[0] = { "{{org_name}}: about your booking for {{title}}",
		"Hello {{customer_name}},\n\n"
		"there is news about your booking for {{title}} on "
		"{{start_local}} ({{timezone}}): {{type}}.\n\n"
		"Booking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_BOOKING_CONFIRMED] = { "{{org_name}}: you are booked for {{title}}",
					    "Hello {{customer_name}},\n\n"
					    "your place in {{title}} on {{start_local}} ({{timezone}}) "
					    "is confirmed.\n\nBooking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_PROMOTED] = { "{{org_name}}: a place in {{title}} is yours",
				   "Hello {{customer_name}},\n\n"
				   "a place in {{title}} on {{start_local}} ({{timezone}}) freed "
				   "up and went to you from the waitlist.{{hold_note}}\n\n"
				   "Booking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_CANCELLED] = { "{{org_name}}: your booking for {{title}} is cancelled",
				    "Hello {{customer_name}},\n\n"
				    "your booking for {{title}} on {{start_local}} ({{timezone}}) "
				    "is cancelled.\n\nBooking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_EVENT_CANCELLED] = { "{{org_name}}: {{title}} is cancelled",
					  "Hello {{customer_name}},\n\n"
					  "{{title}} on {{start_local}} ({{timezone}}) is cancelled; "
					  "so is your booking.\n\nBooking {{booking_id}}\n"
					  "{{org_name}}\n" },
	[CORE_NOTIFY_REMINDER] = { "{{org_name}}: {{title}} on {{start_local}}",
				   "Hello {{customer_name}},\n\n"
				   "a reminder: {{title}} starts on {{start_local}} "
				   "({{timezone}}).\n\nBooking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_HOLD_EXPIRED] = { "{{org_name}}: your hold on {{title}} ran out",
				       "Hello {{customer_name}},\n\n"
				       "the seat held for you in {{title}} on {{start_local}} "
				       "({{timezone}}) was not paid in time and went back.\n\n"
				       "Booking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_PENDING_PAYMENT] = { "{{org_name}}: a seat in {{title}} is held for you",
					  "Hello {{customer_name}},\n\n"
					  "a seat in {{title}} on {{start_local}} ({{timezone}}) is held "
					  "for you.{{hold_note}}\n\n"
					  "Booking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_EVENT_CHANGED] = { "{{org_name}}: {{title}} has changed",
					"Hello {{customer_name}},\n\n"
					"the class you booked has changed: {{changes}}.\n"
					"It is now {{title}} on {{start_local}} ({{timezone}}), "
					"{{duration_min}} minutes. Your booking stays as it "
					"is.\n\nBooking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED] = { "{{org_name}}: a new instructor for {{title}}",
						 "Hello {{customer_name}},\n\n"
						 "{{title}} on {{start_local}} ({{timezone}}) has a new "
						 "instructor. Your booking stays as it is.\n\n"
						 "Booking {{booking_id}}\n{{org_name}}\n" },
	[CORE_NOTIFY_WAITLIST_EXPIRED] = { "{{org_name}}: {{title}} started without a place for you",
					   "Hello {{customer_name}},\n\n"
					   "{{title}} on {{start_local}} ({{timezone}}) has started "
					   "and no place freed up for you: you are off its "
					   "waitlist.\n\nBooking {{booking_id}}\n{{org_name}}\n" },
};
_Static_assert(CORE_NOTIFY_WAITLIST_EXPIRED < NOTIFY_KIND_SLOTS,
	       "a built-in template slot for every kind");

/* A template file: "Subject: ..." on the first line, a blank line, the
 * body. 0, -ENOENT (none), or -EINVAL with err. */
static int tmpl_load(const char *dir, const char *kind, struct tmpl *t,
		     char *err, size_t err_size)
{
	char path[4096], *buf, *nl;
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s.txt", dir, kind);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ENOENT : -errno;
	buf = malloc(NOTIFY_TEMPLATE_SIZE_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, NOTIFY_TEMPLATE_SIZE_MAX + 1, f);
	fclose(f);
	buf[len > NOTIFY_TEMPLATE_SIZE_MAX ? NOTIFY_TEMPLATE_SIZE_MAX : len] =
		'\0';
	if (len > NOTIFY_TEMPLATE_SIZE_MAX || strncmp(buf, "Subject: ", 9) ||
	    !(nl = strchr(buf, '\n'))) {
		snprintf(err, err_size,
			 "template %s: at most %u bytes, first line "
			 "\"Subject: ...\"",
			 path, NOTIFY_TEMPLATE_SIZE_MAX);
		free(buf);
		return -EINVAL;
	}
	*nl = '\0';
	if (nl > buf && nl[-1] == '\r')
		nl[-1] = '\0';
	t->subject = strdup(buf + 9);
	nl++;
	if (*nl == '\r')
		nl++;
	if (*nl == '\n')
		nl++;
	t->body = strdup(nl);
	free(buf);
	return t->subject && t->body ? 0 : -ENOMEM;
}

struct vars {
	const char *name[16], *value[16];
	unsigned count;
};

static void var(struct vars *v, const char *name, const char *value)
{
	ASSERT(v->count < 16);
	v->name[v->count] = name;
	v->value[v->count++] = value;
}

/* tmpl with {{name}} replaced; unknown names stay as they are. malloc'ed
 * (NULL: no memory). Line breaks in values become spaces when one_line. */
static char *fill(const char *tmpl, const struct vars *v, bool one_line)
{
	size_t cap = strlen(tmpl) + 256, len = 0;
	char *out = malloc(cap);

	while (out && *tmpl) {
		const char *val = NULL;
		size_t skip = 1, vl;

		if (tmpl[0] == '{' && tmpl[1] == '{')
			for (unsigned i = 0; i < v->count; i++) {
				size_t nl = strlen(v->name[i]);
				if (!strncmp(tmpl + 2, v->name[i], nl) &&
				    !strncmp(tmpl + 2 + nl, "}}", 2)) {
					val = v->value[i];
					skip = nl + 4;
					break;
				}
			}
		vl = val ? strlen(val) : 1;
		if (len + vl + 1 > cap) {
			char *m = realloc(out, (cap = 2 * (len + vl + 1)));
			if (!m) {
				free(out);
				return NULL;
			}
			out = m;
		}
		if (val) {
			for (size_t i = 0; i < vl; i++)
				out[len++] = one_line && (val[i] == '\r' ||
							  val[i] == '\n')
						     ? ' '
						     : val[i];
		} else {
			out[len++] =
				one_line && (*tmpl == '\r' || *tmpl == '\n')
					? ' '
					: *tmpl;
		}
		tmpl += skip;
	}
	if (out)
		out[len] = '\0';
	return out;
}

/* ---- what a notification names, read at delivery time -------------------- */

struct info {
	char id[NOTIFY_ID_SIZE];
	const char *type;
	bool has_booking, has_event;
	struct core_booking_view booking;
	struct core_event_view event;
	struct core_names names;
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	core_time hold_expires_at; /* 0: none */
	char at[64], start_utc[64], start_local[64], start_text[64],
		hold_utc[64], hold_text[64], booking_id[24], event_id[24];
};

static void fmt_utc(core_time t, char *out, size_t size)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	if (t % 1000)
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % 1000));
	else
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* RFC 3339 with the offset, and words for an email. */
static void fmt_local(core_time t, int32_t off, char *iso, size_t iso_size,
		      char *text, size_t text_size)
{
	time_t s = (time_t)(t / 1000 + off);
	struct tm tm;
	int a = off < 0 ? -off : off;

	gmtime_r(&s, &tm);
	snprintf(iso, iso_size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', a / 3600,
		 a % 3600 / 60);
	strftime(text, text_size, "%a %d %b %Y, %H:%M", &tm);
}

static void info_read(struct notify *n, const struct job *j, struct info *in)
{
	struct core_req q = { .now = tail_wall_ms() };
	struct core_resp r;

	memset(in, 0, sizeof(*in));
	snprintf(in->id, sizeof(in->id), "%.200s/%" PRIu64 ".%" PRIu32,
		 n->log_id, j->lsn, j->k);
	in->type = core_notify_kind_name(j->kind);
	snprintf(in->booking_id, sizeof(in->booking_id), "%" PRIu64,
		 j->booking_id);
	snprintf(in->event_id, sizeof(in->event_id), "%" PRIu64,
		 core_booking_event(j->booking_id));
	fmt_utc(j->at, in->at, sizeof(in->at));
	memcpy(in->customer_id, j->customer_id, sizeof(in->customer_id));
	in->hold_expires_at = j->hold_expires_at;

	q.op = CORE_OP_BOOKING_GET;
	q.booking_id = j->booking_id;
	if (core_call(n->port, &q, &r) == 0 && r.code == CORE_OK) {
		in->has_booking = true;
		in->booking = r.booking;
		memcpy(in->customer_id, r.booking.customer_id,
		       sizeof(in->customer_id));
		/* the hold as the decision left it, else as it is now */
		if (!in->hold_expires_at &&
		    r.booking.status == CORE_BOOKING_PENDING_PAYMENT)
			in->hold_expires_at = r.booking.hold_expires_at;
	}
	q = (struct core_req){ .op = CORE_OP_EVENT_GET, .now = tail_wall_ms() };
	q.event_id = core_booking_event(j->booking_id);
	if (core_call(n->port, &q, &r) == 0 && r.code == CORE_OK) {
		in->has_event = true;
		in->event = r.event;
	}
	core_names_get(n->c, in->has_event ? in->event.org_id : 0,
		       in->has_event ? in->event.series_id : 0, in->customer_id,
		       in->has_event ? in->event.start_at : 0, &in->names);
	if (in->has_event) {
		fmt_utc(in->event.start_at, in->start_utc,
			sizeof(in->start_utc));
		fmt_local(in->event.start_at, in->names.utc_offset_s,
			  in->start_local, sizeof(in->start_local),
			  in->start_text, sizeof(in->start_text));
	}
	if (in->hold_expires_at) {
		char iso[64];
		fmt_utc(in->hold_expires_at, in->hold_utc,
			sizeof(in->hold_utc));
		fmt_local(in->hold_expires_at, in->names.utc_offset_s, iso,
			  sizeof(iso), in->hold_text, sizeof(in->hold_text));
	}
}

static void json_set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, v && *v ? json_string(v) : json_null());
}

/* The webhook body (compact JSON, keys in this order); malloc'ed. */
static char *webhook_body(const struct info *in)
{
	json_t *o = json_object(), *d = json_object();
	char *s;

	if (!o || !d) {
		json_decref(o);
		json_decref(d);
		return NULL;
	}
	json_object_set_new(o, "id", json_string(in->id));
	json_object_set_new(o, "type", json_string(in->type));
	json_object_set_new(o, "timestamp", json_string(in->at));
	json_object_set_new(d, "booking_id", json_string(in->booking_id));
	json_object_set_new(d, "event_id", json_string(in->event_id));
	json_set_str(d, "customer_id", in->customer_id);
	json_set_str(d, "booking_status",
		     in->has_booking
			     ? core_booking_status_name(in->booking.status)
			     : NULL);
	json_set_str(d, "event_title", in->has_event ? in->event.title : NULL);
	json_set_str(d, "start_at", in->start_utc);
	json_set_str(d, "start_at_local", in->start_local);
	json_set_str(d, "timezone", in->names.timezone);
	json_set_str(d, "org_name", in->names.org_name);
	if (in->hold_expires_at)
		json_set_str(d, "hold_expires_at", in->hold_utc);
	json_object_set_new(o, "data", d);
	s = json_dumps(o,
		       JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

/* What an event edit changed (EVENT_EDIT's bits), in words: "the start
 * time, the location". */
static void changes_text(uint8_t changed, char *out, size_t size)
{
	static const struct {
		uint8_t bit;
		const char *words;
	} what[] = {
		{ CORE_EDIT_START, "the start time" },
		{ CORE_EDIT_DURATION, "the duration" },
		{ CORE_EDIT_LOCATION, "the location" },
		{ CORE_EDIT_TITLE, "the title" },
		{ CORE_EDIT_INSTRUCTOR, "the instructor" },
	};
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		if (!(changed & what[i].bit) || len >= size)
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s%s",
					len ? ", " : "", what[i].words);
	}
	if (out[0] == '\0')
		snprintf(out, size, "its details");
}

/* The email (headers and text, CRLF lines); malloc'ed. */
static char *email_message(struct notify *n, const struct info *in,
			   const struct job *j)
{
	unsigned kind = j->kind < NOTIFY_KIND_SLOTS && builtin[j->kind][0]
				? j->kind
				: 0;
	const struct tmpl *t = &n->tmpl[kind];
	struct vars v = { .count = 0 };
	char hold_note[256] = "", date[64], *subject, *body, *out = NULL;
	char changes[128], duration[16];
	time_t now = time(NULL);
	struct tm tm;

	if (in->hold_expires_at)
		snprintf(hold_note, sizeof(hold_note),
			 " Pay by %s (%s) to keep it.", in->hold_text,
			 in->names.timezone[0] ? in->names.timezone : "UTC");
	var(&v, "org_name", in->names.org_name);
	var(&v, "title", in->has_event ? in->event.title : "your class");
	var(&v, "start_local", in->start_text[0] ? in->start_text : "?");
	var(&v, "start_at", in->start_utc);
	var(&v, "timezone", in->names.timezone[0] ? in->names.timezone : "UTC");
	var(&v, "customer_name",
	    in->names.customer_name[0] ? in->names.customer_name
				       : in->customer_id);
	var(&v, "booking_id", in->booking_id);
	var(&v, "event_id", in->event_id);
	var(&v, "hold_expires_at", in->hold_text);
	var(&v, "hold_note", hold_note);
	var(&v, "type", in->type);
	var(&v, "id", in->id);
	changes_text(j->changed, changes, sizeof(changes));
	var(&v, "changes", changes);
	snprintf(duration, sizeof(duration), "%u",
		 in->has_event ? in->event.duration_min : 0);
	var(&v, "duration_min", duration);
	subject = fill(t->subject ? t->subject : builtin[kind][0], &v, true);
	body = fill(t->body ? t->body : builtin[kind][1], &v, false);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (subject && body) {
		size_t cap = strlen(body) * 2 + strlen(subject) + 1024, len;
		out = malloc(cap);
		if (out) {
			len = (size_t)snprintf(
				out, cap,
				"From: %s\r\nTo: %s\r\nSubject: %s\r\n"
				"Date: %s\r\nMessage-ID: <%s@bookd>\r\n"
				"X-Bookd-Notification-Id: %s\r\n"
				"MIME-Version: 1.0\r\nContent-Type: text/plain; "
				"charset=utf-8\r\n"
				"Content-Transfer-Encoding: 8bit\r\n\r\n",
				n->smtp_from, in->names.customer_email, subject,
				date, in->id, in->id);
			for (const char *p = body; *p && len + 3 < cap; p++) {
				if (*p == '\n' && (p == body || p[-1] != '\r'))
					out[len++] = '\r';
				out[len++] = *p;
			}
			out[len] = '\0';
		}
	}
	free(subject);
	free(body);
	return out;
}

/* ---- requests --------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t nmemb, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * nmemb;
}

static size_t upload(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct request *q = ctx;
	size_t room = size * nmemb, left = q->body_size - q->body_off;
	size_t take = left < room ? left : room;

	memcpy(p, q->body + q->body_off, take);
	q->body_off += take;
	return take;
}

static void request_free(struct request *q)
{
	if (q->h)
		curl_easy_cleanup(q->h);
	curl_slist_free_all(q->headers);
	curl_slist_free_all(q->rcpt);
	free(q->body);
	memset(q, 0, sizeof(*q));
}

static int add_header(struct request *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_header(struct request *q, const char *fmt, ...)
{
	char line[512];
	struct curl_slist *l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l = curl_slist_append(q->headers, line);
	if (!l)
		return -ENOMEM;
	q->headers = l;
	return 0;
}

static void finish(struct notify *n, struct job *j, enum notify_sink s,
		   bool skipped);

/* Builds and adds the request of job j on sink s: 0, or -ENOMEM. An
 * email to a customer without an address is finished at once (skipped). */
static int request_start(struct notify *n, struct job *j, enum notify_sink s)
{
	struct request *q = NULL;
	struct info in;
	char sig[128];

	for (unsigned i = 0; i < n->req_count; i++)
		if (!n->reqs[i].h) {
			q = &n->reqs[i];
			break;
		}
	ASSERT(q); /* inflight counts keep a free one */
	info_read(n, j, &in);
	if (s == NOTIFY_SINK_EMAIL && !in.names.customer_email[0]) {
		finish(n, j, s, true);
		return 0;
	}
	q->job = j;
	q->sink = s;
	q->h = curl_easy_init();
	if (!q->h)
		goto out_nomem;
	curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
	curl_easy_setopt(q->h, CURLOPT_ERRORBUFFER, q->err);
	curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->h, CURLOPT_TIMEOUT_MS, (long)n->cfg.timeout_ms);
	curl_easy_setopt(q->h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(n->cfg.timeout_ms < 5000 ? n->cfg.timeout_ms
							 : 5000));
	curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, discard);
	if (s == NOTIFY_SINK_WEBHOOK) {
		int64_t ts = tail_wall_ms() / 1000;

		q->body = webhook_body(&in);
		if (!q->body)
			goto out_nomem;
		q->body_size = strlen(q->body);
		if (sign_with(n->key, n->key_size, in.id, ts, q->body,
			      q->body_size, sig, sizeof(sig)))
			goto out_nomem;
		if (add_header(q, "Content-Type: application/json") ||
		    add_header(q, "User-Agent: bookd/%s", BOOKD_VERSION) ||
		    add_header(q, "webhook-id: %s", in.id) ||
		    add_header(q, "webhook-timestamp: %" PRId64, ts) ||
		    add_header(q, "webhook-signature: %s", sig) ||
		    add_header(q, "Expect:"))
			goto out_nomem;
		curl_easy_setopt(q->h, CURLOPT_URL, n->webhook_url);
		curl_easy_setopt(q->h, CURLOPT_HTTPHEADER, q->headers);
		curl_easy_setopt(q->h, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(q->h, CURLOPT_POSTFIELDSIZE,
				 (long)q->body_size);
	} else {
		char rcpt[CORE_NAME_SIZE_MAX + 2];

		q->body = email_message(n, &in, j);
		if (!q->body)
			goto out_nomem;
		q->body_size = strlen(q->body);
		snprintf(rcpt, sizeof(rcpt), "<%s>", in.names.customer_email);
		if (!(q->rcpt = curl_slist_append(NULL, rcpt)))
			goto out_nomem;
		curl_easy_setopt(q->h, CURLOPT_URL, n->smtp_url);
		curl_easy_setopt(q->h, CURLOPT_MAIL_FROM, n->smtp_from);
		curl_easy_setopt(q->h, CURLOPT_MAIL_RCPT, q->rcpt);
		curl_easy_setopt(q->h, CURLOPT_READFUNCTION, upload);
		curl_easy_setopt(q->h, CURLOPT_READDATA, q);
		curl_easy_setopt(q->h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(q->h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)q->body_size);
		if (strncmp(n->smtp_url, "smtp://", 7) == 0)
			curl_easy_setopt(q->h, CURLOPT_USE_SSL,
					 (long)CURLUSESSL_TRY);
		if (n->smtp_password)
			curl_easy_setopt(q->h, CURLOPT_PASSWORD,
					 n->smtp_password);
	}
	if (curl_multi_add_handle(n->multi, q->h) != CURLM_OK)
		goto out_nomem;
	j->state[s] = J_FLIGHT;
	j->attempts[s]++;
	n->inflight[s]++;
	return 0;
out_nomem:
	request_free(q);
	return -ENOMEM;
}

/* ---- dead letters, finishing, retries ---------------------------------- */

static void dead_letter(struct notify *n, const struct job *j,
			enum notify_sink s, const char *why)
{
	char id[NOTIFY_ID_SIZE], at[64], dead_at[64], *line;
	json_t *o = json_object();
	int fd;

	snprintf(id, sizeof(id), "%.200s/%" PRIu64 ".%" PRIu32, n->log_id,
		 j->lsn, j->k);
	fmt_utc(j->at, at, sizeof(at));
	fmt_utc(tail_wall_ms(), dead_at, sizeof(dead_at));
	if (!o)
		return;
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "sink", json_string(notify_sink_name(s)));
	json_object_set_new(o, "type",
			    json_string(core_notify_kind_name(j->kind)));
	json_object_set_new(o, "booking_id",
			    json_integer((json_int_t)j->booking_id));
	json_object_set_new(o, "attempts", json_integer(j->attempts[s]));
	json_object_set_new(o, "last_error", json_string(why));
	json_object_set_new(o, "decided_at", json_string(at));
	json_object_set_new(o, "dead_at", json_string(dead_at));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	fd = openat(n->t.dir_fd, "notify-dead.jsonl",
		    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (line && fd >= 0) {
		size_t len = strlen(line);
		line[len] = '\n'; /* json_dumps' NUL: not written */
		if (write(fd, line, len + 1) != (ssize_t)(len + 1) ||
		    fdatasync(fd) != 0)
			evlog(EVLOG_ERROR,
			      "bookd: notify: cannot write the dead letter of "
			      "%s: %s",
			      id, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	free(line);
	evlog(EVLOG_WARN,
	      "bookd: notify: %s to %s is a dead letter after %u attempts "
	      "(%s)",
	      id, notify_sink_name(s), j->attempts[s], why);
}

static void finish(struct notify *n, struct job *j, enum notify_sink s,
		   bool skipped)
{
	j->state[s] = J_DONE;
	n->t.dirty = true;
	n->rescan = true;
	if (skipped) {
		pthread_mutex_lock(&n->lock);
		n->st.sink[s].skipped++;
		pthread_mutex_unlock(&n->lock);
	}
}

static void delivered(struct notify *n, struct job *j, enum notify_sink s)
{
	static const double le[] = NOTIFY_LATENCY_BUCKETS;
	double sec = (double)(tail_wall_ms() - j->at) / 1e3;
	unsigned b = 0;

	_Static_assert(sizeof(le) / sizeof(le[0]) + 1 ==
			       NOTIFY_LATENCY_BUCKET_COUNT,
		       "latency buckets");
	if (sec < 0)
		sec = 0;
	while (b < NOTIFY_LATENCY_BUCKET_COUNT - 1 && sec > le[b])
		b++;
	finish(n, j, s, false);
	pthread_mutex_lock(&n->lock);
	n->st.sink[s].delivered++;
	n->st.sink[s].latency_buckets[b]++;
	n->st.sink[s].latency_sum_s += sec;
	pthread_mutex_unlock(&n->lock);
	if (n->failing[s]) {
		n->failing[s] = false;
		evlog(EVLOG_INFO, "bookd: notify: %s delivers again",
		      notify_sink_name(s));
	}
}

static void failed(struct notify *n, struct job *j, enum notify_sink s,
		   const char *why)
{
	pthread_mutex_lock(&n->lock);
	n->st.sink[s].failed_attempts++;
	snprintf(n->st.last_error, sizeof(n->st.last_error), "%s: %.200s",
		 notify_sink_name(s), why);
	pthread_mutex_unlock(&n->lock);
	if (!n->failing[s]) {
		n->failing[s] = true;
		evlog(EVLOG_WARN,
		      "bookd: notify: %s failing (%s); retrying with backoff",
		      notify_sink_name(s), why);
	}
	if (j->attempts[s] >= n->cfg.max_attempts) {
		/* counted first: whoever sees the file's line sees it counted */
		pthread_mutex_lock(&n->lock);
		n->st.sink[s].dead++;
		n->st.dead_total++;
		pthread_mutex_unlock(&n->lock);
		dead_letter(n, j, s, why);
		finish(n, j, s, false);
		return;
	}
	uint64_t delay = n->cfg.backoff_ms;
	for (unsigned i = 1;
	     i < j->attempts[s] && delay < n->cfg.backoff_max_ms; i++)
		delay *= 2;
	if (delay > n->cfg.backoff_max_ms)
		delay = n->cfg.backoff_max_ms;
	delay = delay / 2 + (delay ? tail_rnd(&n->t) % (delay / 2 + 1) : 0);
	j->state[s] = J_PENDING;
	j->next_ms[s] = tail_mono_ms() + (int64_t)delay;
	n->rescan = true;
}

/* Requests that completed. */
static void reap(struct notify *n)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(n->multi, &left))) {
		struct request *q;
		char why[CURL_ERROR_SIZE + 64];
		long code = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&q);
		ASSERT(q && q->h == m->easy_handle);
		ASSERT(n->inflight[q->sink] > 0);
		curl_multi_remove_handle(n->multi, q->h);
		n->inflight[q->sink]--;
		curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &code);
		if (m->data.result != CURLE_OK)
			snprintf(why, sizeof(why), "%s",
				 q->err[0]
					 ? q->err
					 : curl_easy_strerror(m->data.result));
		else if (q->sink == NOTIFY_SINK_WEBHOOK &&
			 (code < 200 || code > 299))
			snprintf(why, sizeof(why), "HTTP %ld", code);
		else
			why[0] = '\0';
		if (why[0])
			failed(n, q->job, q->sink, why);
		else
			delivered(n, q->job, q->sink);
		request_free(q);
	}
}

/* ---- the queue ------------------------------------------------------------- */

static struct job *job_at(struct notify *n, uint32_t i)
{
	ASSERT(i < n->count);
	return &n->jobs[(n->head + i) % NOTIFY_QUEUE_MAX];
}

static bool job_done(const struct notify *n, const struct job *j)
{
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
		if (j->state[s] != J_DONE)
			return false;
	(void)n;
	return true;
}

/* True when booking b was marked blocked on sink s in this scan; marks
 * it (mark). */
static bool blocked(struct notify *n, enum notify_sink s, uint64_t b, bool mark)
{
	struct block_slot *t = n->blocked[s];
	uint32_t i = (uint32_t)((b * 0x9e3779b97f4a7c15ull) >> 40) %
		     NOTIFY_BLOCK_SLOTS;

	for (uint32_t probe = 0; probe < NOTIFY_BLOCK_SLOTS; probe++) {
		struct block_slot *e = &t[(i + probe) % NOTIFY_BLOCK_SLOTS];
		if (e->gen != n->gen) {
			if (mark) {
				e->gen = n->gen;
				e->booking_id = b;
			}
			return false;
		}
		if (e->booking_id == b)
			return true;
	}
	ASSERT(!"block table full"); /* twice the queue's size */
	return true;
}

static bool bucket_take(struct bucket *k, int64_t now)
{
	if (k->rate <= 0)
		return true;
	k->tokens += (double)(now - k->at_ms) * k->rate / 1e3;
	k->at_ms = now;
	if (k->tokens > k->burst)
		k->tokens = k->burst;
	if (k->tokens < 1.0)
		return false;
	k->tokens -= 1.0;
	return true;
}

/* Starts what may start; returns the ms until the next job is due (a
 * retry's time or a token), NOTIFY_IDLE_MS when nothing waits. */
static int64_t scan(struct notify *n)
{
	int64_t now = tail_mono_ms(), wait = NOTIFY_IDLE_MS;

	n->rescan = false;
	if (++n->gen == 0)
		n->gen = 1; /* 0 is every slot's first value: never a scan's */
	for (uint32_t i = 0; i < n->count; i++) {
		struct job *j = job_at(n, i);

		for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++) {
			if (j->state[s] == J_DONE)
				continue;
			/* an earlier one of this booking is not finished */
			if (blocked(n, s, j->booking_id, true))
				continue;
			if (j->state[s] != J_PENDING)
				continue;
			if (j->next_ms[s] > now) {
				if (j->next_ms[s] - now < wait)
					wait = j->next_ms[s] - now;
				continue;
			}
			if (n->inflight[s] >= n->cfg.inflight_max)
				continue; /* a completion rescans */
			if (!bucket_take(&n->bucket[s], now)) {
				int64_t t =
					(int64_t)(1e3 / n->bucket[s].rate) + 1;
				if (t < wait)
					wait = t;
				continue;
			}
			if (request_start(n, j, (enum notify_sink)s) != 0) {
				tail_error(&n->t, "no memory for a request");
				if (wait > 100)
					wait = 100;
			}
		}
	}
	return wait;
}

/* Finished jobs leave the head, an entry's all together. */
static void pop(struct notify *n)
{
	while (n->count) {
		uint64_t lsn = job_at(n, 0)->lsn;
		uint32_t same = 0;

		while (same < n->count && job_at(n, same)->lsn == lsn) {
			if (!job_done(n, job_at(n, same)))
				return;
			same++;
		}
		n->head = (n->head + same) % NOTIFY_QUEUE_MAX;
		n->count -= same;
	}
}

/* ---- the position file ---------------------------------------------------- */

static uint64_t position(struct notify *n)
{
	return n->count ? job_at(n, 0)->lsn : wal_reader_lsn(n->t.reader);
}

static int pos_write(struct notify *n)
{
	uint64_t pos = position(n);
	size_t cap = 64 + (size_t)n->count * NOTIFY_POS_LINE_MAX, len;
	char *buf = malloc(cap);
	int rc;

	if (!buf)
		return -ENOMEM;
	len = (size_t)snprintf(buf, cap,
			       "bookd notify position 1\nlsn %" PRIu64 "\n",
			       pos);
	for (uint32_t i = 0; i < n->count; i++) {
		const struct job *j = job_at(n, i);
		unsigned mask = 0;
		for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
			if (j->state[s] == J_DONE)
				mask |= 1u << s;
		if (mask)
			len += (size_t)snprintf(buf + len, cap - len,
						"done %" PRIu64 ".%" PRIu32
						" %u\n",
						j->lsn, j->k, mask);
	}
	ASSERT(len < cap);
	rc = tail_save(&n->t, pos, buf, len);
	free(buf);
	return rc;
}

static int done_cmp(const void *a, const void *b)
{
	const struct done *x = a, *y = b;
	if (x->lsn != y->lsn)
		return x->lsn < y->lsn ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

/* 0 with *lsn (0: no file), or -errno with err. */
static int pos_load(struct notify *n, uint64_t *lsn, char *err, size_t err_size)
{
	char *text, *line, *next;
	unsigned lineno = 0;
	int rc = tail_file_read(&n->t, "notify.pos", &text, err, err_size);

	*lsn = 0;
	if (rc || !text)
		return rc;
	for (line = text; *line; line = next) {
		uint64_t a;
		uint32_t k;
		unsigned mask;

		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';
		lineno++;
		if (lineno == 1 && !strcmp(line, "bookd notify position 1"))
			continue;
		if (lineno == 2 && sscanf(line, "lsn %" SCNu64, &a) == 1 &&
		    a > 0) {
			*lsn = a;
			continue;
		}
		if (lineno > 2 &&
		    sscanf(line, "done %" SCNu64 ".%" SCNu32 " %u", &a, &k,
			   &mask) == 3 &&
		    mask < (1u << NOTIFY_SINK_COUNT) && a >= *lsn) {
			struct done *d = realloc(n->dones, (n->done_count + 1) *
								   sizeof(*d));
			if (!d) {
				free(text);
				return -ENOMEM;
			}
			n->dones = d;
			d[n->done_count++] = (struct done){
				.lsn = a, .k = k, .mask = (uint8_t)mask
			};
			if (a > n->done_last_lsn)
				n->done_last_lsn = a;
			continue;
		}
		snprintf(err, err_size,
			 "%s/notify.pos line %u does not read (remove the "
			 "file to start from the log's end)",
			 n->t.data_dir, lineno);
		free(text);
		return -EINVAL;
	}
	free(text);
	if (lineno < 2) {
		snprintf(err, err_size, "%s/notify.pos is incomplete",
			 n->t.data_dir);
		return -EINVAL;
	}
	if (n->done_count)
		qsort(n->dones, n->done_count, sizeof(*n->dones), done_cmp);
	return 0;
}

/* What the position file says job (lsn, k) finished on. */
static uint8_t done_mask(struct notify *n, uint64_t lsn, uint32_t k)
{
	struct done key = { .lsn = lsn, .k = k }, *d;

	if (!n->done_count)
		return 0;
	d = bsearch(&key, n->dones, n->done_count, sizeof(key), done_cmp);
	return d ? d->mask : 0;
}

/* ---- reading the log -------------------------------------------------------- */

/* The entry's booking record of b: its hold and customer id. */
static void entry_booking(const void *payload, size_t size, uint64_t b,
			  struct job *j)
{
	struct core_rec r;
	size_t pos = 0;

	while (core_entry_next(payload, size, &pos, &r) > 0)
		if ((r.type == CORE_REC_BOOKING_NEW ||
		     r.type == CORE_REC_BOOKING_SET) &&
		    r.u.booking.booking_id == b) {
			j->hold_expires_at =
				r.u.booking.status ==
						CORE_BOOKING_PENDING_PAYMENT
					? r.u.booking.hold_expires_at
					: 0;
			if (r.u.booking.customer_id[0])
				memcpy(j->customer_id, r.u.booking.customer_id,
				       sizeof(j->customer_id));
		}
}

static int on_entry(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct notify *n = ctx;
	struct core_rec r;
	size_t pos = 0;
	uint32_t k = 0, count;
	uint8_t changed = 0; /* the entry's EVENT_EDIT's, for the email */
	int rc;

	if (core_entry_check(payload, size, &count) != 0)
		return -EUCLEAN;
	if (n->count + count > NOTIFY_QUEUE_MAX)
		return 1; /* full: passed again once jobs finished */
	while ((rc = core_entry_next(payload, size, &pos, &r)) > 0) {
		struct job *j;
		uint8_t mask;

		if (r.type == CORE_REC_EVENT_EDIT)
			changed = r.u.edit.changed;
		if (r.type != CORE_REC_NOTIFY)
			continue;
		j = &n->jobs[(n->head + n->count) % NOTIFY_QUEUE_MAX];
		memset(j, 0, sizeof(*j));
		j->lsn = lsn;
		j->k = k++;
		j->booking_id = r.u.notify.booking_id;
		j->kind = r.u.notify.kind;
		j->changed = j->kind == CORE_NOTIFY_EVENT_CHANGED ? changed : 0;
		j->at = r.at;
		entry_booking(payload, size, j->booking_id, j);
		mask = lsn <= n->done_last_lsn ? done_mask(n, lsn, j->k) : 0;
		for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
			if (!n->sink_on[s] || (mask & (1u << s)))
				j->state[s] = J_DONE;
		n->count++;
		n->rescan = true;
	}
	return rc < 0 ? -EUCLEAN : 0;
}

static void read_log(struct notify *n)
{
	tail_read(&n->t, NOTIFY_READ_BATCH, on_entry, n);
	if (n->dones && wal_reader_lsn(n->t.reader) > n->done_last_lsn) {
		free(n->dones);
		n->dones = NULL;
		n->done_count = 0;
	}
}

/* ---- the thread -------------------------------------------------------------- */

static void publish(struct notify *n)
{
	uint64_t unfinished = 0, durable = wal_durable_lsn(n->w),
		 next = wal_reader_lsn(n->t.reader);
	core_time oldest = 0;

	for (uint32_t i = 0; i < n->count; i++) {
		const struct job *j = job_at(n, i);
		if (!job_done(n, j)) {
			unfinished++;
			if (!oldest || j->at < oldest)
				oldest = j->at;
		}
	}
	pthread_mutex_lock(&n->lock);
	n->st.backlog = unfinished;
	n->st.unread_records = durable >= next ? durable - next + 1 : 0;
	n->st.oldest_age_s =
		oldest ? (double)(tail_wall_ms() - oldest) / 1e3 : 0.0;
	if (n->st.oldest_age_s < 0)
		n->st.oldest_age_s = 0;
	pthread_mutex_unlock(&n->lock);
}

/* Sums of every sink's counters. */
static void job_counts(struct notify *n, uint64_t *delivered, uint64_t *failed,
		       uint64_t *dead)
{
	*delivered = *failed = *dead = 0;
	pthread_mutex_lock(&n->lock);
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++) {
		*delivered += n->st.sink[s].delivered;
		*failed += n->st.sink[s].failed_attempts;
		*dead += n->st.sink[s].dead;
	}
	pthread_mutex_unlock(&n->lock);
}

/* A window of the sender ends: its run in the registry; the next begins. */
static void job_window(struct notify *n, int64_t now)
{
	uint64_t d, f, x;
	char msg[JOBS_MESSAGE_SIZE] = "";

	job_counts(n, &d, &f, &x);
	ASSERT(d >= n->job_delivered && f >= n->job_failed);
	if (d != n->job_delivered || f != n->job_failed || x != n->job_dead)
		snprintf(msg, sizeof(msg),
			 "%" PRIu64 " delivered, %" PRIu64
			 " failed attempts, %" PRIu64 " dead letters",
			 d - n->job_delivered, f - n->job_failed,
			 x - n->job_dead);
	jobs_end(&n->job, f != n->job_failed ? -EIO : 0, msg,
		 jobs_now_ms() + NOTIFY_JOB_EVERY_MS);
	n->job_delivered = d;
	n->job_failed = f;
	n->job_dead = x;
	n->job = jobs_begin(JOBS_NOTIFY_DELIVERY);
	n->job_end_ms = now + NOTIFY_JOB_EVERY_MS;
}

static void *sender_main(void *arg)
{
	struct notify *n = arg;
	int64_t publish_at = 0;

	jobs_schedule(JOBS_NOTIFY_DELIVERY, "continuous, a run a second", true,
		      jobs_now_ms() + NOTIFY_JOB_EVERY_MS);
	n->job = jobs_begin(JOBS_NOTIFY_DELIVERY);
	n->job_end_ms = tail_mono_ms() + NOTIFY_JOB_EVERY_MS;
	while (!atomic_load(&n->stop)) {
		int64_t wait, now;
		int running = 0;

		if (n->count < NOTIFY_QUEUE_MAX)
			read_log(n);
		curl_multi_perform(n->multi, &running);
		reap(n);
		wait = scan(n);
		curl_multi_perform(n->multi, &running);
		reap(n);
		pop(n);
		now = tail_mono_ms();
		if (tail_save_due(&n->t, now, NOTIFY_POS_WRITE_MS, &wait))
			pos_write(n);
		if (now >= publish_at) {
			publish(n);
			publish_at = now + 100;
		}
		if (now >= n->job_end_ms)
			job_window(n, now);
		if (n->job_end_ms - now < wait)
			wait = n->job_end_ms - now;
		tail_wait(n->multi, n->cfg.wake_fd, n->rescan ? 0 : wait);
	}
	return NULL;
}

/* ---- start, stop, status ------------------------------------------------------- */

static void free_all(struct notify *n)
{
	if (n->reqs) {
		for (unsigned i = 0; i < n->req_count; i++)
			if (n->reqs[i].h) {
				curl_multi_remove_handle(n->multi,
							 n->reqs[i].h);
				request_free(&n->reqs[i]);
			}
		free(n->reqs);
	}
	if (n->multi)
		curl_multi_cleanup(n->multi);
	tail_close(&n->t);
	for (unsigned k = 0; k < NOTIFY_KIND_SLOTS; k++) {
		free(n->tmpl[k].subject);
		free(n->tmpl[k].body);
	}
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
		free(n->blocked[s]);
	free(n->jobs);
	free(n->dones);
	free(n->log_id);
	free(n->webhook_url);
	free(n->smtp_url);
	free(n->smtp_from);
	free(n->smtp_password);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static char *dup_or_null(const char *s) { return set(s) ? strdup(s) : NULL; }

static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int notify_start(const struct notify_config *cfg, wal *w, core *c,
		 core_port *port, notify **out, char *err, size_t err_size)
{
	static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
	struct notify *n;
	uint64_t from = 0;
	int rc = -ENOMEM;

	ASSERT(cfg && w && c && port && out);
	*out = NULL;
	if (!notify_config_enabled(cfg) || !set(cfg->data_dir) ||
	    !set(cfg->log_id) || strlen(cfg->log_id) > 200 ||
	    cfg->max_attempts == 0 || cfg->inflight_max == 0 ||
	    cfg->inflight_max > NOTIFY_INFLIGHT_MAX || cfg->timeout_ms == 0 ||
	    cfg->backoff_max_ms < cfg->backoff_ms) {
		snprintf(err, err_size,
			 "notifications: a sink, the data dir, max attempts "
			 ">= 1, 1..%d requests at once, a timeout and "
			 "backoff <= its maximum are needed",
			 NOTIFY_INFLIGHT_MAX);
		return -EINVAL;
	}
	if (set(cfg->webhook_url) && !set(cfg->webhook_secret)) {
		snprintf(err, err_size,
			 "NOTIFY_WEBHOOK_URL needs NOTIFY_WEBHOOK_SECRET "
			 "(whsec_<base64> or a raw secret)");
		return -EINVAL;
	}
	if (set(cfg->smtp_url) &&
	    (!set(cfg->smtp_from) || (strncmp(cfg->smtp_url, "smtp://", 7) &&
				      strncmp(cfg->smtp_url, "smtps://", 8)))) {
		snprintf(err, err_size,
			 "SMTP_URL must be smtp:// or smtps://, and SMTP_FROM "
			 "set");
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	n->cfg = *cfg;
	n->w = w;
	n->c = c;
	n->port = port;
	n->t = (struct tail){ .name = "notify",
			      .lost = "notifications",
			      .holder = WAL_HOLDER_NOTIFY,
			      .w = w,
			      .lock = &n->lock,
			      .error = n->st.last_error,
			      .error_size = sizeof(n->st.last_error),
			      .position_lsn = &n->st.position_lsn };
	n->log_id = strdup(cfg->log_id);
	n->webhook_url = dup_or_null(cfg->webhook_url);
	n->smtp_url = dup_or_null(cfg->smtp_url);
	n->smtp_from = dup_or_null(cfg->smtp_from);
	n->smtp_password = dup_or_null(cfg->smtp_password);
	n->jobs = calloc(NOTIFY_QUEUE_MAX, sizeof(*n->jobs));
	n->req_count = cfg->inflight_max * NOTIFY_SINK_COUNT;
	n->reqs = calloc(n->req_count, sizeof(*n->reqs));
	n->multi = curl_multi_init();
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++)
		n->blocked[s] =
			calloc(NOTIFY_BLOCK_SLOTS, sizeof(*n->blocked[s]));
	if (!n->log_id || !n->jobs || !n->reqs || !n->multi || !n->blocked[0] ||
	    !n->blocked[1] || (cfg->webhook_url && !n->webhook_url) ||
	    (cfg->smtp_url && !n->smtp_url)) {
		snprintf(err, err_size, "notifications: no memory");
		goto out_free;
	}
	n->sink_on[NOTIFY_SINK_WEBHOOK] = n->webhook_url != NULL;
	n->sink_on[NOTIFY_SINK_EMAIL] = n->smtp_url != NULL;
	if (n->webhook_url && secret_key(cfg->webhook_secret, n->key,
					 sizeof(n->key), &n->key_size)) {
		snprintf(err, err_size,
			 "NOTIFY_WEBHOOK_SECRET: whsec_ and base64 of 1-%zu "
			 "bytes, or a raw secret of 1-%zu bytes",
			 sizeof(n->key), sizeof(n->key));
		rc = -EINVAL;
		goto out_free;
	}
	for (unsigned s = 0; s < NOTIFY_SINK_COUNT; s++) {
		n->bucket[s].rate = cfg->rate[s];
		n->bucket[s].burst = cfg->rate[s] < 1 ? 1 : cfg->rate[s];
		n->bucket[s].tokens = n->bucket[s].burst;
		n->bucket[s].at_ms = tail_mono_ms();
		n->st.sink[s].configured = n->sink_on[s];
	}
	if (set(cfg->template_dir))
		for (unsigned k = 1; k < NOTIFY_KIND_SLOTS; k++) {
			const char *kind = core_notify_kind_name((uint8_t)k);
			if (!builtin[k][0])
				continue;
			rc = tmpl_load(cfg->template_dir, kind, &n->tmpl[k],
				       err, err_size);
			if (rc == -ENOENT)
				continue;
			if (rc) {
				if (rc != -EINVAL)
					snprintf(err, err_size,
						 "template %s/%s.txt: %s",
						 cfg->template_dir, kind,
						 strerror(-rc));
				goto out_free;
			}
		}
	rc = tail_open(&n->t, cfg->data_dir, err, err_size);
	if (rc == 0)
		rc = pos_load(n, &from, err, err_size);
	if (rc == 0)
		rc = tail_start(&n->t, from ? from : wal_durable_lsn(w) + 1,
				err, err_size); /* first start: from now on */
	if (rc)
		goto out_free;
	n->st.running = true;
	from = n->t.written; /* the thread writes it from now on */
	rc = pthread_create(&n->thread, NULL, sender_main, n);
	if (rc) {
		rc = -rc;
		snprintf(err, err_size, "notifications: thread: %s",
			 strerror(-rc));
		goto out_free;
	}
	if (!cfg->quiet)
		evlog(EVLOG_INFO,
		      "bookd: notify: sending from LSN %" PRIu64
		      " to%s%s (log id %s)",
		      from, n->webhook_url ? " webhook" : "",
		      n->smtp_url ? " email" : "", n->log_id);
	*out = n;
	return 0;
out_free:
	free_all(n);
	return rc ? rc : -ENOMEM;
}

void notify_stop(notify *n)
{
	if (!n)
		return;
	atomic_store(&n->stop, true);
	curl_multi_wakeup(n->multi);
	pthread_join(n->thread, NULL);
	pop(n);
	if (position(n) != n->t.written || n->t.dirty)
		pos_write(n);
	free_all(n);
}

void notify_status(notify *n, struct notify_status *out)
{
	memset(out, 0, sizeof(*out));
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	*out = n->st;
	pthread_mutex_unlock(&n->lock);
}
