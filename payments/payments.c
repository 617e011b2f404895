/*
 * payments.c: the Stripe sender (payments.h is its public header).
 *
 * Purpose
 *   Payments start and end in bookd. A booking on a priced event holds a
 *   seat (pending_payment): the core decides the hold and makes it durable
 *   first, and answers. This sender, reading the durable log after, makes
 *   the hold's PaymentIntent at Stripe (POST /v1/payment_intents: amount and
 *   currency of the event, metadata[booking_id], automatic payment methods
 *   or the configured list) and hands the outcome back to the core as a
 *   decision (CORE_OP_PAY kind INTENT): the intent's id, logged as a
 *   PAY_INTENT record; or, when it could not be made, "" and the core
 *   releases the hold (payment_failed). A refund due (a REFUND record with
 *   state due: a paid booking cancelled before the cut-off, a payment that
 *   came after its hold ended) becomes a Stripe Refund (POST /v1/refunds,
 *   payment_intent=pi_...), and its outcome a decision (kind REFUND): done
 *   with Stripe's re_... id, or failed. Stripe's webhook
 *   (payment_intent.succeeded, api/http_routes.c) confirms the booking as
 *   before.
 *
 * Exactly once at Stripe
 *   Every call carries an Idempotency-Key derived from the log and the
 *   booking: "<prefix>-pi-<booking_id>" for an intent (a booking holds at
 *   most once), "<prefix>-re-<booking_id>-<pi>" for a refund. The prefix is
 *   the log's own, made at the sender's first start on it and kept in
 *   data_dir/payments.keys: "<log_id>-<8 random hex digits>", so two logs
 *   on one Stripe account, or a fresh log after a lost one (booking ids
 *   start again), never share a key; a log whose sender ran before the
 *   file existed keeps "<log_id>", the keys its open jobs were made with.
 *   A retry, a restart, a
 *   kill -9 between the call and its record: the call is made again with
 *   the same key and Stripe answers with the first object (within its 24 h
 *   of idempotency; a hold lasts minutes). The core records an intent's id
 *   once (a second, equal one is not logged).
 *
 * client_secret
 *   Stripe.js needs the intent's client_secret. It is a secret of the
 *   customer's payment: never in the log, a file or a log line. It lives
 *   here, in memory, with the job of the hold, until the booking leaves
 *   pending_payment; GET /v1/bookings/{id} (and the binary protocol's
 *   booking read) show it with payment_intent_id through
 *   payments_intent_of(). After a restart the sender reads the log again
 *   from its position (the oldest open hold: see Position) and, for each
 *   hold still open whose intent is logged, calls again with the same
 *   Idempotency-Key: Stripe replays the first answer, client_secret and
 *   all, and no second intent exists.
 *
 * Threads
 *   One thread of its own: it reads the log (wal_reader_*, woken by an
 *   eventfd the log writes), reads events (their price) and makes its
 *   decisions through core_call on its own core port, and drives every
 *   request through one curl multi handle. The booking path never waits
 *   for it. payments_status() and payments_intent_of() read under a mutex
 *   from any thread.
 *
 * Jobs and position
 *   Each hold and each refund due read becomes a job in a ring, in log
 *   order (at most PAY_QUEUE_MAX open; the reader pauses when full), found
 *   by booking through a hash. An intent job stays open while its booking
 *   holds the seat (its client_secret is shown); it ends when the log says
 *   the booking moved on (BOOKING_SET: confirmed, expired, cancelled,
 *   payment_failed). A refund job ends with its REFUND done or failed.
 *   data_dir/payments.pos keeps the oldest LSN of an open job (else the
 *   reader's next), written (tmp file, fdatasync, rename, directory fsync:
 *   tail.h, the log tailer shared with the notification sender) at most
 *   every PAY_POS_WRITE_MS while it changes, and at stop; the log
 *   is held from there (wal_retain_for WAL_HOLDER_PAYMENTS). A start reads
 *   the log from there, rebuilding the jobs with what followed them, and
 *   makes no call before it has read what was durable at start (so a job
 *   whose outcome is already logged is not made again). The first start
 *   (no file) begins at the log's durable end.
 *
 * Retries and failure behaviour
 *   A call that fails (a connection error, a timeout, HTTP 409/429/5xx, or
 *   401/403) is tried again after backoff_ms * 2^(n-1), capped at
 *   backoff_max_ms, jittered to between half and all of it. An intent is
 *   given up on after max_attempts, at an answer that cannot change
 *   (400, 402, 404: Stripe's invalid_request_error, card_error...), or when
 *   the next try would come after the hold expires: the hold is released
 *   (PAY_INTENT "" then payment_failed), counted. A refund is given up on
 *   after max_attempts or such an answer: REFUND failed, counted, for a
 *   person to settle (docs/operations.md). alert_failures failed calls in a
 *   row raise the alert (payments_status().alert: /v1/admin/status alerts,
 *   /metrics bookd_payments_alert) until a call succeeds. A record that
 *   does not decode stops the sender (last_error; nothing skipped). The
 *   secret key, client_secret and request bodies never appear in messages;
 *   Stripe's error type, code and message do.
 */
#include "bookd_version.h"
#include "payments.h"

#include "bookd_assert.h"
#include "entry.h"
#include "evlog.h"
#include "tail.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PAY_QUEUE_MAX 16384 /* open jobs, at most */
#define PAY_HASH_SLOTS (PAY_QUEUE_MAX * 2)
#define PAY_INFLIGHT_MAX 64
#define PAY_POS_WRITE_MS 100
#define PAY_READ_BATCH 1024
#define PAY_ANSWER_SIZE_MAX (64u << 10) /* a Stripe answer's bytes */
#define PAY_KEY_SIZE 200		/* an Idempotency-Key */
#define PAY_BODY_SIZE 512
#define PAY_SECRET_KEY_SIZE_MAX 256

enum job_kind { JOB_INTENT = 1, JOB_REFUND };

enum job_state {
	J_PENDING = 0, /* a call due at next_ms */
	J_FLIGHT,      /* a call in flight */
	J_SUBMIT,      /* an outcome to decide (core_call) at next_ms */
	J_WAIT,	       /* for the log: the outcome's record, the hold's end */
	J_DONE,
};

/* A refund's outcome: OUT_OK succeeded, OUT_FAILED failed or canceled at
 * Stripe (a final answer with its id), OUT_PENDING made, not final yet. */
enum outcome { OUT_NONE = 0, OUT_OK, OUT_GIVE_UP, OUT_FAILED, OUT_PENDING };

/* A pending refund is looked at again (GET /v1/refunds/{id}) after
 * backoff_ms, doubling each time up to this. */
#define PAY_POLL_MAX_MS (15 * 60 * 1000)

struct job {
	uint64_t lsn, booking_id;
	uint8_t kind, state, reason, outcome;
	bool logged;  /* intent: its PAY_INTENT is in the log */
	bool polling; /* refund: pending (logged so), looked at again */
	uint16_t attempts;
	uint16_t polls;	 /* refund: answers "not final yet" while polling */
	int64_t next_ms; /* monotonic: not before */
	core_time hold_expires_at; /* intent */
	uint64_t amount_cents;	   /* refund */
	char currency[4];	   /* refund */
	/* intent: Stripe's (answer or log); refund: the one refunded.
	 * intent_id and secret are written under the lock (lookups). */
	char intent_id[CORE_PAY_REF_SIZE_MAX];
	char secret[PAYMENTS_SECRET_SIZE];
	char refund_id[CORE_PAY_REF_SIZE_MAX]; /* re_..., until logged */
};

struct request {
	CURL *h;
	struct job *job;
	struct curl_slist *headers;
	char body[PAY_BODY_SIZE];
	char *answer;
	size_t answer_size;
	bool too_big;
	char err[CURL_ERROR_SIZE];
};

struct payments {
	struct payments_config cfg;
	char *data_dir, *log_id, *api_base, *methods;
	char auth[PAY_SECRET_KEY_SIZE_MAX + 32]; /* "Authorization: ..." */
	wal *w;
	core *c;
	core_port *port;
	struct tail t;	    /* the log from payments.pos */
	uint64_t catch_lsn; /* no call before the reader passed it */

	struct job *jobs; /* ring: PAY_QUEUE_MAX */
	uint32_t head, count;
	uint32_t *hash; /* (booking, kind) -> ring index + 1; under lock */

	CURLM *multi;
	struct request *reqs;
	unsigned inflight;
	bool rescan;

	pthread_t thread;
	_Atomic bool stop;

	pthread_mutex_t lock; /* guards st, hash, jobs' intent_id/secret */
	struct payments_status st;
};

/* The running sender, for payments_intent_of (one per process). */
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;
static struct payments *active;

/* ---- clocks, randomness, messages ------------------------------------- */

void payments_config_default(struct payments_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_id = "bookd";
	cfg->max_attempts = 8;
	cfg->backoff_ms = 500;
	cfg->backoff_max_ms = 30000;
	cfg->timeout_ms = 15000;
	cfg->inflight_max = 16;
	cfg->alert_failures = 5;
	cfg->payment_methods = "";
	cfg->wake_fd = -1;
}

static bool set(const char *s) { return s && *s; }

bool payments_config_enabled(const struct payments_config *cfg)
{
	return set(cfg->secret_key);
}

/* ---- jobs: the ring and the hash ---------------------------------------- */

static struct job *job_at(struct payments *p, uint32_t i)
{
	ASSERT(i < p->count);
	return &p->jobs[(p->head + i) % PAY_QUEUE_MAX];
}

static uint64_t job_key(uint64_t booking_id, uint8_t kind)
{
	return booking_id << 1 | (kind == JOB_REFUND);
}

static uint32_t hash_home(uint64_t key)
{
	return (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 40) %
	       PAY_HASH_SLOTS;
}

static uint64_t slot_key(struct payments *p, uint32_t slot)
{
	const struct job *j = &p->jobs[p->hash[slot] - 1];
	return job_key(j->booking_id, j->kind);
}

/* The open job of (booking, kind), NULL when none. Sender thread, or any
 * under the lock. */
static struct job *job_find(struct payments *p, uint64_t booking_id,
			    uint8_t kind)
{
	uint64_t key = job_key(booking_id, kind);

	for (uint32_t i = hash_home(key), n = 0; n < PAY_HASH_SLOTS;
	     i = (i + 1) % PAY_HASH_SLOTS, n++) {
		if (!p->hash[i])
			return NULL;
		if (slot_key(p, i) == key)
			return &p->jobs[p->hash[i] - 1];
	}
	return NULL;
}

/* Under the lock: j (in the ring) found by its key from now on. */
static void hash_put(struct payments *p, struct job *j)
{
	uint64_t key = job_key(j->booking_id, j->kind);
	uint32_t i = hash_home(key);

	while (p->hash[i]) {
		ASSERT(slot_key(p, i) != key);
		i = (i + 1) % PAY_HASH_SLOTS;
	}
	p->hash[i] = (uint32_t)(j - p->jobs) + 1;
}

/* Under the lock: j no longer found (backward-shift deletion). */
static void hash_del(struct payments *p, const struct job *j)
{
	uint32_t want = (uint32_t)(j - p->jobs) + 1, i, k;

	for (i = hash_home(job_key(j->booking_id, j->kind)); p->hash[i] != want;
	     i = (i + 1) % PAY_HASH_SLOTS)
		ASSERT(p->hash[i]);
	p->hash[i] = 0;
	for (k = (i + 1) % PAY_HASH_SLOTS; p->hash[k];
	     k = (k + 1) % PAY_HASH_SLOTS) {
		uint32_t home = hash_home(slot_key(p, k));
		/* k stays unless its home is cyclically outside (i, k] */
		bool stays = i <= k ? (home > i && home <= k)
				    : (home > i || home <= k);
		if (stays)
			continue;
		p->hash[i] = p->hash[k];
		p->hash[k] = 0;
		i = k;
	}
}

/* A job ends: its secret forgotten, its hash entry gone (the ring slot is
 * freed by pop). */
static void job_end(struct payments *p, struct job *j)
{
	if (j->state == J_DONE)
		return;
	pthread_mutex_lock(&p->lock);
	hash_del(p, j);
	memset(j->secret, 0, sizeof(j->secret));
	j->state = J_DONE;
	pthread_mutex_unlock(&p->lock);
	p->t.dirty = true;
	p->rescan = true;
}

/* Finished jobs leave the head of the ring. */
static void pop(struct payments *p)
{
	while (p->count && job_at(p, 0)->state == J_DONE) {
		p->head = (p->head + 1) % PAY_QUEUE_MAX;
		p->count--;
	}
}

static struct job *job_new(struct payments *p, uint64_t lsn,
			   uint64_t booking_id, uint8_t kind)
{
	struct job *j = job_find(p, booking_id, kind);

	if (j) /* a second one for the booking: the first gives way */
		job_end(p, j);
	ASSERT(p->count < PAY_QUEUE_MAX);
	j = &p->jobs[(p->head + p->count) % PAY_QUEUE_MAX];
	memset(j, 0, sizeof(*j));
	j->lsn = lsn;
	j->booking_id = booking_id;
	j->kind = kind;
	j->state = J_PENDING;
	p->count++;
	pthread_mutex_lock(&p->lock);
	hash_put(p, j);
	pthread_mutex_unlock(&p->lock);
	p->rescan = true;
	return j;
}

/* ---- requests -------------------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct request *q = ctx;
	size_t n = size * nmemb;
	char *m;

	if (q->too_big || q->answer_size + n > PAY_ANSWER_SIZE_MAX) {
		q->too_big = true;
		return n; /* read on, keep nothing */
	}
	m = realloc(q->answer, q->answer_size + n + 1);
	if (!m)
		return 0; /* curl fails the transfer */
	q->answer = m;
	memcpy(q->answer + q->answer_size, data, n);
	q->answer_size += n;
	q->answer[q->answer_size] = '\0';
	return n;
}

static void request_free(struct request *q)
{
	if (q->h)
		curl_easy_cleanup(q->h);
	curl_slist_free_all(q->headers);
	free(q->answer);
	memset(q, 0, sizeof(*q));
}

static int add_header(struct request *q, const char *line)
{
	struct curl_slist *l = curl_slist_append(q->headers, line);

	if (!l)
		return -ENOMEM;
	q->headers = l;
	return 0;
}

/* The body of an intent's call: the event's price, the booking, the
 * payment methods. false when the event is gone (archived) or free. */
static bool intent_body(struct payments *p, const struct job *j, char *out,
			size_t size)
{
	struct core_req q = { .op = CORE_OP_EVENT_GET, .now = tail_wall_ms() };
	struct core_resp r;
	size_t n;

	q.event_id = core_booking_event(j->booking_id);
	if (core_call(p->port, &q, &r) != 0 || r.code != CORE_OK ||
	    r.event.price_cents == 0 || !r.event.currency[0])
		return false;
	n = (size_t)snprintf(out, size,
			     "amount=%" PRIu32 "&currency=%.3s"
			     "&metadata%%5Bbooking_id%%5D=%" PRIu64,
			     r.event.price_cents, r.event.currency,
			     j->booking_id);
	if (!p->methods) {
		n += (size_t)snprintf(out + n, size - n,
				      "&automatic_payment_methods%%5Benabled"
				      "%%5D=true");
	} else {
		const char *m = p->methods;
		while (*m && n < size) {
			size_t len = strcspn(m, ",");
			n += (size_t)snprintf(out + n, size - n,
					      "&payment_method_types%%5B%%5D="
					      "%.*s",
					      (int)len, m);
			m += len + (m[len] == ',');
		}
	}
	return n < size;
}

static const char *reason_name(uint8_t reason)
{
	switch (reason) {
	case CORE_REFUND_CANCEL: return "cancel";
	case CORE_REFUND_EVENT_CANCELLED: return "event_cancelled";
	default: return "late_payment";
	}
}

/* Starts j's call: 0, -ENOMEM, or -ENOENT (nothing to call for: the event
 * is gone; the caller gives up on it). */
static int request_start(struct payments *p, struct job *j)
{
	struct request *q = NULL;
	char url[1024], key[PAY_KEY_SIZE + 32];

	for (unsigned i = 0; i < p->cfg.inflight_max; i++)
		if (!p->reqs[i].h) {
			q = &p->reqs[i];
			break;
		}
	ASSERT(q); /* inflight < inflight_max keeps one free */
	if (j->kind == JOB_INTENT) {
		if (!intent_body(p, j, q->body, sizeof(q->body)))
			return -ENOENT;
		snprintf(url, sizeof(url), "%s/v1/payment_intents",
			 p->api_base);
		snprintf(key, sizeof(key),
			 "Idempotency-Key: %.120s-pi-%" PRIu64, p->log_id,
			 j->booking_id);
	} else if (j->polling) {
		/* a pending refund looked at again: no body, no key */
		char *re = curl_easy_escape(NULL, j->refund_id, 0);

		if (!re)
			return -ENOMEM;
		snprintf(url, sizeof(url), "%s/v1/refunds/%s", p->api_base, re);
		curl_free(re);
		q->body[0] = '\0';
		key[0] = '\0';
	} else {
		/* the intent's id as a form value (a webhook's: escaped) */
		char *pi = curl_easy_escape(NULL, j->intent_id, 0);

		if (!pi)
			return -ENOMEM;
		snprintf(q->body, sizeof(q->body),
			 "payment_intent=%s&metadata%%5Bbooking_id%%5D=%" PRIu64
			 "&metadata%%5Breason%%5D=%s",
			 pi, j->booking_id, reason_name(j->reason));
		curl_free(pi);
		snprintf(url, sizeof(url), "%s/v1/refunds", p->api_base);
		snprintf(key, sizeof(key),
			 "Idempotency-Key: %.120s-re-%" PRIu64 "-%s", p->log_id,
			 j->booking_id, j->intent_id);
	}
	q->job = j;
	q->h = curl_easy_init();
	if (!q->h || add_header(q, p->auth) || (key[0] && add_header(q, key)) ||
	    add_header(q, "Content-Type: application/x-www-form-urlencoded") ||
	    add_header(q, "User-Agent: bookd/" BOOKD_VERSION) ||
	    add_header(q, "Expect:"))
		goto out_nomem;
	curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
	curl_easy_setopt(q->h, CURLOPT_ERRORBUFFER, q->err);
	curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->h, CURLOPT_TIMEOUT_MS, (long)p->cfg.timeout_ms);
	curl_easy_setopt(q->h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(p->cfg.timeout_ms < 5000 ? p->cfg.timeout_ms
							 : 5000));
	curl_easy_setopt(q->h, CURLOPT_URL, url);
	curl_easy_setopt(q->h, CURLOPT_HTTPHEADER, q->headers);
	if (j->kind == JOB_REFUND && j->polling) {
		curl_easy_setopt(q->h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(q->h, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(q->h, CURLOPT_POSTFIELDSIZE,
				 (long)strlen(q->body));
	}
	curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(q->h, CURLOPT_WRITEDATA, q);
	if (curl_multi_add_handle(p->multi, q->h) != CURLM_OK)
		goto out_nomem;
	j->state = J_FLIGHT;
	j->attempts++;
	p->inflight++;
	return 0;
out_nomem:
	request_free(q);
	return -ENOMEM;
}

/* ---- outcomes ---------------------------------------------------------------- */

/* A pending refund (logged so) is looked at again after its poll delay. */
static void poll_later(struct payments *p, struct job *j)
{
	int64_t delay = p->cfg.backoff_ms;

	for (unsigned i = 0; i < j->polls && delay < PAY_POLL_MAX_MS; i++)
		delay *= 2;
	if (delay > PAY_POLL_MAX_MS)
		delay = PAY_POLL_MAX_MS;
	j->polling = true;
	j->attempts = 0;
	j->state = J_PENDING;
	j->next_ms = tail_mono_ms() + delay;
	p->rescan = true;
}

/* Hands j's outcome to the core (CORE_OP_PAY, kind INTENT or REFUND). Its
 * record, read back from the log, ends the job (J_WAIT until then); a
 * refusal that leaves nothing to log ends it at once; a log that refuses
 * (CORE_FULL) is tried again. */
static void submit(struct payments *p, struct job *j)
{
	struct core_req q = { .op = CORE_OP_PAY, .now = tail_wall_ms() };
	struct core_resp r;
	bool ok = j->outcome == OUT_OK;
	int rc;

	q.booking_id = j->booking_id;
	if (j->kind == JOB_INTENT) {
		q.u.pay.kind = CORE_PAY_KIND_INTENT;
		if (ok)
			memcpy(q.u.pay.ref, j->intent_id, sizeof(q.u.pay.ref));
	} else {
		q.u.pay.kind = CORE_PAY_KIND_REFUND;
		q.u.pay.reason = j->reason;
		q.u.pay.amount_cents = j->amount_cents;
		memcpy(q.u.pay.currency, j->currency, sizeof(q.u.pay.currency));
		q.u.pay.refund_state = j->outcome == OUT_OK ? CORE_REFUND_DONE
				       : j->outcome == OUT_PENDING
					       ? CORE_REFUND_PENDING
					       : CORE_REFUND_FAILED;
		/* Stripe's id with every answer it gave (not when refused) */
		if (j->outcome != OUT_GIVE_UP)
			memcpy(q.u.pay.ref, j->refund_id, sizeof(q.u.pay.ref));
	}
	rc = core_call(p->port, &q, &r);
	if (rc == 0 && r.code == CORE_OK) {
		j->state = J_WAIT; /* the record comes through the log */
		return;
	}
	if (rc == 0 && j->kind == JOB_REFUND && j->outcome == OUT_PENDING &&
	    r.code == CORE_NOT_ACTIVE) {
		poll_later(p, j); /* logged pending already */
		return;
	}
	if (rc == 0 && r.code != CORE_FULL) {
		/* nothing to record: the booking moved on (its record ends
		 * an intent job), or the outcome is logged already */
		if (j->kind == JOB_REFUND || !ok)
			job_end(p, j);
		else
			j->state = J_WAIT;
		return;
	}
	tail_error(&p->t, "recording the outcome of booking %" PRIu64 ": %s",
		   j->booking_id, rc ? strerror(-rc) : "the log refused");
	j->state = J_SUBMIT;
	j->next_ms = tail_mono_ms() + p->cfg.backoff_ms;
	p->rescan = true;
}

static void give_up(struct payments *p, struct job *j, const char *why)
{
	evlog(EVLOG_WARN,
	      "bookd: payments: %s of booking %" PRIu64
	      " given up after %u attempts (%s)",
	      j->kind == JOB_INTENT ? "the PaymentIntent" : "the refund",
	      j->booking_id, j->attempts, why);
	pthread_mutex_lock(&p->lock);
	if (j->kind == JOB_INTENT)
		p->st.intents_failed++;
	else
		p->st.refunds_failed++;
	pthread_mutex_unlock(&p->lock);
	if (j->outcome != OUT_FAILED)
		j->outcome = OUT_GIVE_UP;
	submit(p, j);
}

/* A call failed (why: no secrets). permanent: an answer that will not
 * change. */
static void failed(struct payments *p, struct job *j, const char *why,
		   bool permanent)
{
	uint64_t delay = p->cfg.backoff_ms, row;

	pthread_mutex_lock(&p->lock);
	p->st.attempts_failed++;
	row = ++p->st.failures_in_a_row;
	snprintf(p->st.last_error, sizeof(p->st.last_error),
		 "booking %" PRIu64 ": %.200s", j->booking_id, why);
	if (row == p->cfg.alert_failures)
		p->st.alert = true;
	pthread_mutex_unlock(&p->lock);
	if (row == p->cfg.alert_failures)
		evlog(EVLOG_ERROR,
		      "bookd: payments: Stripe refused %" PRIu64
		      " calls in a row (last: %s)",
		      row, why);
	for (unsigned i = 1; i < j->attempts && delay < p->cfg.backoff_max_ms;
	     i++)
		delay *= 2;
	if (delay > p->cfg.backoff_max_ms)
		delay = p->cfg.backoff_max_ms;
	delay = delay / 2 + (delay ? tail_rnd(&p->t) % (delay / 2 + 1) : 0);
	if (permanent || (j->attempts >= p->cfg.max_attempts && !j->polling) ||
	    (j->kind == JOB_INTENT && !j->logged &&
	     tail_wall_ms() + (int64_t)delay >= j->hold_expires_at)) {
		if (j->kind == JOB_INTENT && j->logged) {
			j->state = J_WAIT; /* made; only its secret is lost */
			return;
		}
		if (j->polling) /* Stripe knows the refund no more */
			j->outcome = OUT_FAILED;
		give_up(p, j, why);
		return;
	}
	j->state = J_PENDING;
	j->next_ms = tail_mono_ms() + (int64_t)delay;
	p->rescan = true;
}

/* An id Stripe gave: with its prefix, printable, fitting a record. */
static bool id_ok(const json_t *v, const char *prefix)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s || n < strlen(prefix) || n >= CORE_PAY_REF_SIZE_MAX ||
	    strncmp(s, prefix, strlen(prefix)) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* A Refund's status as an outcome: succeeded, failed or canceled (final),
 * else (pending, requires_action, one Stripe adds later) not final. */
static enum outcome refund_outcome(json_t *root)
{
	const char *st = json_string_value(json_object_get(root, "status"));

	if (st && strcmp(st, "succeeded") == 0)
		return OUT_OK;
	if (st && (strcmp(st, "failed") == 0 || strcmp(st, "canceled") == 0))
		return OUT_FAILED;
	return OUT_PENDING;
}

static void succeeded(struct payments *p, struct job *j, json_t *root)
{
	json_t *id = json_object_get(root, "id");
	json_t *secret = json_object_get(root, "client_secret");
	enum outcome outcome = OUT_OK;

	if (j->kind == JOB_INTENT &&
	    (!id_ok(id, "pi_") || !json_is_string(secret) ||
	     json_string_length(secret) >= PAYMENTS_SECRET_SIZE)) {
		failed(p, j,
		       "a PaymentIntent answer without id or "
		       "client_secret",
		       false);
		return;
	}
	if (j->kind == JOB_REFUND && !id_ok(id, "re_")) {
		failed(p, j, "a Refund answer without an id", false);
		return;
	}
	if (j->kind == JOB_REFUND)
		outcome = refund_outcome(root);
	pthread_mutex_lock(&p->lock);
	if (p->st.failures_in_a_row >= p->cfg.alert_failures)
		evlog(EVLOG_INFO, "bookd: payments: Stripe answers again");
	p->st.failures_in_a_row = 0;
	p->st.alert = false;
	if (j->kind == JOB_INTENT) {
		if (!j->logged) {
			memset(j->intent_id, 0, sizeof(j->intent_id));
			memcpy(j->intent_id, json_string_value(id),
			       json_string_length(id));
			p->st.intents_created++;
		}
		memcpy(j->secret, json_string_value(secret),
		       json_string_length(secret) + 1);
	} else {
		memset(j->refund_id, 0, sizeof(j->refund_id));
		memcpy(j->refund_id, json_string_value(id),
		       json_string_length(id));
		if (outcome == OUT_OK)
			p->st.refunds_done++;
		else if (outcome == OUT_FAILED)
			p->st.refunds_failed++;
	}
	pthread_mutex_unlock(&p->lock);
	if (j->kind == JOB_INTENT && j->logged) {
		j->state = J_WAIT; /* the secret was all it needed */
		return;
	}
	if (outcome == OUT_PENDING && j->polling) {
		j->polls++; /* not final yet: later again */
		poll_later(p, j);
		return;
	}
	if (outcome == OUT_FAILED)
		evlog(EVLOG_WARN,
		      "bookd: payments: the refund of booking %" PRIu64
		      " %s at Stripe",
		      j->booking_id,
		      json_string_value(json_object_get(root, "status")));
	j->outcome = (uint8_t)outcome;
	submit(p, j);
}

/* Stripe's error object in words: "type/code: message" (no secrets:
 * Stripe's messages name no keys). */
static void error_words(json_t *root, long status, char *out, size_t size)
{
	json_t *e = json_object_get(root, "error");
	const char *type = json_string_value(json_object_get(e, "type"));
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	snprintf(out, size, "HTTP %ld %s%s%s: %.120s", status,
		 type ? type : "error", code ? "/" : "", code ? code : "",
		 msg ? msg : "no message");
}

/* Calls that completed. */
static void reap(struct payments *p)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(p->multi, &left))) {
		struct request *q;
		struct job *j;
		char why[CURL_ERROR_SIZE + 160];
		long status = 0;
		json_t *root = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&q);
		ASSERT(q && q->h == m->easy_handle);
		ASSERT(p->inflight > 0);
		curl_multi_remove_handle(p->multi, q->h);
		p->inflight--;
		j = q->job;
		curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &status);
		if (m->data.result == CURLE_OK && q->answer && !q->too_big)
			root = json_loads(q->answer, 0, NULL);
		if (j->state != J_FLIGHT) {
			/* the job ended meanwhile (the hold moved on) */
		} else if (m->data.result != CURLE_OK) {
			snprintf(why, sizeof(why), "%s",
				 q->err[0]
					 ? q->err
					 : curl_easy_strerror(m->data.result));
			failed(p, j, why, false);
		} else if (status >= 200 && status <= 299 &&
			   json_is_object(root)) {
			succeeded(p, j, root);
		} else {
			error_words(root, status, why, sizeof(why));
			failed(p, j, why,
			       status == 400 || status == 402 || status == 404);
		}
		json_decref(root);
		request_free(q);
		p->rescan = true;
	}
}

/* Starts what is due; returns the ms until the next due job (or 1000). */
static int64_t scan(struct payments *p)
{
	int64_t now = tail_mono_ms(), wait = 1000;

	p->rescan = false;
	if (wal_reader_lsn(p->t.reader) <= p->catch_lsn)
		return 5; /* still reading what was durable at start */
	for (uint32_t i = 0; i < p->count; i++) {
		struct job *j = job_at(p, i);

		if (j->state != J_PENDING && j->state != J_SUBMIT)
			continue;
		if (j->next_ms > now) {
			if (j->next_ms - now < wait)
				wait = j->next_ms - now;
			continue;
		}
		if (j->state == J_SUBMIT) {
			submit(p, j);
			continue;
		}
		if (j->kind == JOB_INTENT && !j->logged &&
		    tail_wall_ms() >= j->hold_expires_at) {
			j->state = J_WAIT; /* the core expires the hold */
			continue;
		}
		if (p->inflight >= p->cfg.inflight_max)
			return wait; /* a call that ends wakes the loop */
		int rc = request_start(p, j);
		if (rc == -ENOENT) {
			j->attempts++;
			give_up(p, j, "the event is gone or free");
		} else if (rc) {
			tail_error(&p->t, "no memory for a Stripe call");
			j->next_ms = now + 100;
		}
	}
	return wait;
}

/* ---- the position file ------------------------------------------------------ */

static uint64_t position(struct payments *p)
{
	return p->count ? job_at(p, 0)->lsn : wal_reader_lsn(p->t.reader);
}

static int pos_write(struct payments *p)
{
	uint64_t pos = position(p);
	char buf[96];
	int len = snprintf(buf, sizeof(buf),
			   "bookd payments position 1\nlsn %" PRIu64 "\n", pos);

	return tail_save(&p->t, pos, buf, (size_t)len);
}

/* 0 with *lsn (0: no file), or -errno with err. */
static int pos_load(struct payments *p, uint64_t *lsn, char *err,
		    size_t err_size)
{
	char *text;
	int rc = tail_file_read(&p->t, "payments.pos", &text, err, err_size);

	*lsn = 0;
	if (rc || !text)
		return rc;
	if (sscanf(text, "bookd payments position 1\nlsn %" SCNu64, lsn) != 1 ||
	    *lsn == 0) {
		snprintf(err, err_size,
			 "%s/payments.pos does not read (remove the file to "
			 "start from the log's end)",
			 p->t.data_dir);
		rc = -EINVAL;
	}
	free(text);
	return rc;
}

/* ---- the keys' prefix ----------------------------------------------------------- */

static bool prefix_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 120)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

/* The Idempotency-Keys' prefix into p->log_id: the file's; else made now,
 * "<log_id>-<8 hex digits>" from getrandom, or "<log_id>" when the sender
 * ran on this log before (ran_before: payments.pos was there). */
static int keys_load(struct payments *p, bool ran_before, char *err,
		     size_t err_size)
{
	char buf[160], prefix[128], *text;
	int rc = tail_file_read(&p->t, "payments.keys", &text, err, err_size);
	char *dup;

	if (rc)
		return rc;
	if (text) {
		rc = sscanf(text, "bookd payments keys 1\nprefix %120s",
			    prefix) == 1 &&
				     prefix_ok(prefix)
			     ? 0
			     : -EINVAL;
		free(text);
		if (rc) {
			snprintf(err, err_size,
				 "payments: %s/payments.keys does not read "
				 "(it names the Stripe Idempotency-Keys of "
				 "this log: restore it)",
				 p->t.data_dir);
			return rc;
		}
	} else {
		uint32_t r = 0;

		if (ran_before) {
			snprintf(prefix, sizeof(prefix), "%s", p->log_id);
		} else {
			if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
				snprintf(err, err_size,
					 "payments: no random bytes: %s",
					 strerror(errno));
				return -EIO;
			}
			snprintf(prefix, sizeof(prefix), "%s-%08" PRIx32,
				 p->log_id, r);
		}
		rc = snprintf(buf, sizeof(buf),
			      "bookd payments keys 1\nprefix %s\n", prefix);
		rc = tail_file_write(&p->t, "payments.keys", buf, (size_t)rc);
		if (rc) {
			snprintf(err, err_size,
				 "payments: cannot write %s/payments.keys: %s",
				 p->t.data_dir, strerror(-rc));
			return rc;
		}
	}
	dup = strdup(prefix);
	if (!dup) {
		snprintf(err, err_size, "payments: no memory");
		return -ENOMEM;
	}
	free(p->log_id);
	p->log_id = dup;
	return 0;
}

/* ---- reading the log ---------------------------------------------------------- */

static void on_rec(struct payments *p, uint64_t lsn, const struct core_rec *r)
{
	struct job *j;

	switch (r->type) {
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_SET:
		j = job_find(p, r->u.booking.booking_id, JOB_INTENT);
		if (r->u.booking.status == CORE_BOOKING_PENDING_PAYMENT) {
			j = job_new(p, lsn, r->u.booking.booking_id,
				    JOB_INTENT);
			j->hold_expires_at = r->u.booking.hold_expires_at;
		} else if (j) {
			job_end(p, j); /* the hold is over */
		}
		break;
	case CORE_REC_PAY_INTENT:
		j = job_find(p, r->u.intent.booking_id, JOB_INTENT);
		if (!j)
			break;
		if (!r->u.intent.intent_id[0]) {
			job_end(p, j); /* released: its BOOKING_SET follows */
			break;
		}
		j->logged = true;
		if (strcmp(j->intent_id, r->u.intent.intent_id) != 0) {
			pthread_mutex_lock(&p->lock);
			memcpy(j->intent_id, r->u.intent.intent_id,
			       sizeof(j->intent_id));
			memset(j->secret, 0, sizeof(j->secret));
			pthread_mutex_unlock(&p->lock);
		}
		/* read again at a start: fetch the secret (same key) */
		if (!j->secret[0] && j->state != J_FLIGHT) {
			j->state = J_PENDING;
			j->attempts = 0;
			j->next_ms = 0;
		} else if (j->state != J_FLIGHT) {
			j->state = J_WAIT;
		}
		p->rescan = true;
		break;
	case CORE_REC_REFUND:
		if (r->u.refund.state == CORE_REFUND_DUE) {
			j = job_new(p, lsn, r->u.refund.booking_id, JOB_REFUND);
			j->reason = r->u.refund.reason;
			j->amount_cents = r->u.refund.amount_cents;
			memcpy(j->currency, r->u.refund.currency,
			       sizeof(j->currency));
			memcpy(j->intent_id, r->u.refund.intent_id,
			       sizeof(j->intent_id));
		} else if (r->u.refund.state == CORE_REFUND_PENDING) {
			/* made, not final: looked at again until it is */
			j = job_find(p, r->u.refund.booking_id, JOB_REFUND);
			if (!j || j->state == J_FLIGHT)
				break;
			memset(j->refund_id, 0, sizeof(j->refund_id));
			memcpy(j->refund_id, r->u.refund.ref,
			       sizeof(j->refund_id) - 1);
			poll_later(p, j);
		} else if ((j = job_find(p, r->u.refund.booking_id,
					 JOB_REFUND))) {
			job_end(p, j);
		}
		break;
	default: break;
	}
}

static int on_entry(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct payments *p = ctx;
	struct core_rec r;
	size_t pos = 0;
	uint32_t count;
	int rc;

	if (core_entry_check(payload, size, &count) != 0)
		return -EUCLEAN;
	if (p->count + count > PAY_QUEUE_MAX)
		return 1; /* full: passed again once jobs finished */
	while ((rc = core_entry_next(payload, size, &pos, &r)) > 0)
		on_rec(p, lsn, &r);
	return rc < 0 ? -EUCLEAN : 0;
}

/* ---- the thread ------------------------------------------------------------------ */

static void publish(struct payments *p)
{
	uint64_t open = 0;

	for (uint32_t i = 0; i < p->count; i++)
		if (job_at(p, i)->state != J_DONE)
			open++;
	pthread_mutex_lock(&p->lock);
	p->st.pending = open;
	pthread_mutex_unlock(&p->lock);
}

static void *sender_main(void *arg)
{
	struct payments *p = arg;
	int64_t publish_at = 0;

	while (!atomic_load(&p->stop)) {
		int64_t wait, now;
		int running = 0;

		if (p->count < PAY_QUEUE_MAX)
			tail_read(&p->t, PAY_READ_BATCH, on_entry, p);
		curl_multi_perform(p->multi, &running);
		reap(p);
		wait = scan(p);
		curl_multi_perform(p->multi, &running);
		reap(p);
		pop(p);
		now = tail_mono_ms();
		if (tail_save_due(&p->t, now, PAY_POS_WRITE_MS, &wait))
			pos_write(p);
		if (now >= publish_at) {
			publish(p);
			publish_at = now + 100;
		}
		tail_wait(p->multi, p->cfg.wake_fd, p->rescan ? 0 : wait);
	}
	return NULL;
}

/* ---- start, stop, status -------------------------------------------------------- */

static void free_all(struct payments *p)
{
	if (p->reqs) {
		for (unsigned i = 0; i < p->cfg.inflight_max; i++)
			if (p->reqs[i].h) {
				curl_multi_remove_handle(p->multi,
							 p->reqs[i].h);
				request_free(&p->reqs[i]);
			}
		free(p->reqs);
	}
	if (p->multi)
		curl_multi_cleanup(p->multi);
	tail_close(&p->t);
	if (p->jobs) /* no client_secret left behind in freed memory */
		memset(p->jobs, 0, PAY_QUEUE_MAX * sizeof(*p->jobs));
	memset(p->auth, 0, sizeof(p->auth));
	free(p->jobs);
	free(p->hash);
	free(p->log_id);
	free(p->api_base);
	free(p->methods);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* "card,sepa_debit": lower-case letters, digits and '_', comma separated. */
static bool methods_ok(const char *m)
{
	for (; *m; m++)
		if (!((*m >= 'a' && *m <= 'z') || (*m >= '0' && *m <= '9') ||
		      *m == '_' || *m == ','))
			return false;
	return true;
}

int payments_start(const struct payments_config *cfg, wal *w, core *c,
		   core_port *port, payments **out, char *err, size_t err_size)
{
	static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
	const char *base =
		set(cfg->api_base) ? cfg->api_base : PAYMENTS_API_BASE_DEFAULT;
	struct payments *p;
	uint64_t from = 0;
	size_t base_len = strlen(base);
	int rc = -ENOMEM;

	ASSERT(cfg && w && c && port && out);
	*out = NULL;
	if (!payments_config_enabled(cfg) || !set(cfg->data_dir) ||
	    !set(cfg->log_id) || strlen(cfg->log_id) > 100 ||
	    cfg->max_attempts == 0 || cfg->inflight_max == 0 ||
	    cfg->inflight_max > PAY_INFLIGHT_MAX || cfg->timeout_ms == 0 ||
	    cfg->backoff_max_ms < cfg->backoff_ms || cfg->alert_failures == 0) {
		snprintf(err, err_size,
			 "payments: STRIPE_SECRET_KEY, the data dir, max "
			 "attempts >= 1, 1..%d calls at once, a timeout, an "
			 "alert threshold >= 1 and backoff <= its maximum are "
			 "needed",
			 PAY_INFLIGHT_MAX);
		return -EINVAL;
	}
	if (strlen(cfg->secret_key) > PAY_SECRET_KEY_SIZE_MAX ||
	    strpbrk(cfg->secret_key, " \r\n\t")) {
		snprintf(err, err_size,
			 "STRIPE_SECRET_KEY: at most %d bytes, no spaces",
			 PAY_SECRET_KEY_SIZE_MAX);
		return -EINVAL;
	}
	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	if ((strncmp(base, "https://", 8) && strncmp(base, "http://", 7)) ||
	    base_len > 900) {
		snprintf(err, err_size,
			 "STRIPE_API_BASE must be an http:// or https:// URL "
			 "of at most 900 bytes");
		return -EINVAL;
	}
	if (cfg->payment_methods && !methods_ok(cfg->payment_methods)) {
		snprintf(err, err_size,
			 "STRIPE_PAYMENT_METHODS: a comma list of Stripe's "
			 "payment method types (card,sepa_debit), or empty");
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->cfg = *cfg;
	p->w = w;
	p->c = c;
	p->port = port;
	p->t = (struct tail){ .name = "payments",
			      .lost = "holds or refunds",
			      .holder = WAL_HOLDER_PAYMENTS,
			      .w = w,
			      .lock = &p->lock,
			      .error = p->st.last_error,
			      .error_size = sizeof(p->st.last_error),
			      .position_lsn = &p->st.position_lsn };
	p->log_id = strdup(cfg->log_id);
	p->api_base = strndup(base, base_len);
	if (set(cfg->payment_methods))
		p->methods = strdup(cfg->payment_methods);
	snprintf(p->auth, sizeof(p->auth), "Authorization: Bearer %s",
		 cfg->secret_key);
	p->jobs = calloc(PAY_QUEUE_MAX, sizeof(*p->jobs));
	p->hash = calloc(PAY_HASH_SLOTS, sizeof(*p->hash));
	p->reqs = calloc(cfg->inflight_max, sizeof(*p->reqs));
	p->multi = curl_multi_init();
	if (!p->log_id || !p->api_base || !p->jobs || !p->hash || !p->reqs ||
	    !p->multi || (set(cfg->payment_methods) && !p->methods)) {
		snprintf(err, err_size, "payments: no memory");
		goto out_free;
	}
	rc = tail_open(&p->t, cfg->data_dir, err, err_size);
	if (rc == 0)
		rc = pos_load(p, &from, err, err_size);
	if (rc == 0)
		rc = keys_load(p, from != 0, err, err_size);
	if (rc)
		goto out_free;
	p->catch_lsn = wal_durable_lsn(w);
	rc = tail_start(&p->t, from ? from : p->catch_lsn + 1, err,
			err_size); /* first start: from now on */
	if (rc)
		goto out_free;
	p->st.running = true;
	pthread_mutex_lock(&active_lock);
	if (active) {
		pthread_mutex_unlock(&active_lock);
		snprintf(err, err_size, "payments: a sender runs already");
		rc = -EBUSY;
		goto out_free;
	}
	active = p;
	pthread_mutex_unlock(&active_lock);
	from = p->t.written; /* the thread writes it from now on */
	rc = pthread_create(&p->thread, NULL, sender_main, p);
	if (rc) {
		rc = -rc;
		snprintf(err, err_size, "payments: thread: %s", strerror(-rc));
		pthread_mutex_lock(&active_lock);
		active = NULL;
		pthread_mutex_unlock(&active_lock);
		goto out_free;
	}
	if (!cfg->quiet)
		evlog(EVLOG_INFO,
		      "bookd: payments: Stripe at %s, from LSN %" PRIu64
		      " (keys %s-...)",
		      p->api_base, from, p->log_id);
	*out = p;
	return 0;
out_free:
	free_all(p);
	return rc ? rc : -ENOMEM;
}

void payments_stop(payments *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	curl_multi_wakeup(p->multi);
	pthread_join(p->thread, NULL);
	pthread_mutex_lock(&active_lock);
	ASSERT(active == p);
	active = NULL;
	pthread_mutex_unlock(&active_lock);
	pop(p);
	if (position(p) != p->t.written || p->t.dirty)
		pos_write(p);
	free_all(p);
}

void payments_status(payments *p, struct payments_status *out)
{
	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	pthread_mutex_unlock(&p->lock);
}

void payments_status_active(struct payments_status *out)
{
	pthread_mutex_lock(&active_lock);
	payments_status(active, out);
	pthread_mutex_unlock(&active_lock);
}

bool payments_intent_of(uint64_t booking_id,
			char intent_id[CORE_PAY_REF_SIZE_MAX],
			char client_secret[PAYMENTS_SECRET_SIZE])
{
	bool found = false;

	intent_id[0] = client_secret[0] = '\0';
	pthread_mutex_lock(&active_lock);
	if (active) {
		struct job *j;

		pthread_mutex_lock(&active->lock);
		j = job_find(active, booking_id, JOB_INTENT);
		if (j && j->intent_id[0] && j->secret[0]) {
			memcpy(intent_id, j->intent_id, CORE_PAY_REF_SIZE_MAX);
			memcpy(client_secret, j->secret, PAYMENTS_SECRET_SIZE);
			found = true;
		}
		pthread_mutex_unlock(&active->lock);
	}
	pthread_mutex_unlock(&active_lock);
	return found;
}
