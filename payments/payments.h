/*
 * payments.h: the Stripe sender (public API). Tails the durable log for a
 * paid booking's hold (BOOKING_NEW / BOOKING_SET pending_payment) and for
 * refunds due (REFUND due, core/entry.h), and, off the booking path, makes
 * them at Stripe through libcurl: a PaymentIntent per hold (POST
 * /v1/payment_intents) and a Refund per refund due (POST /v1/refunds), each
 * with an Idempotency-Key derived from the booking so a retry never makes
 * two. Outcomes go back into the core as decisions (CORE_OP_PAY with
 * kind INTENT or REFUND): the intent's id, a hold released when its intent
 * could not be made, a refund done or failed. The design (threads,
 * position, retries, where client_secret lives, failure behaviour) is at
 * the top of payments.c; docs/operations.md "Payments" is the operator's
 * side.
 */
#ifndef BOOKD_PAYMENTS_H
#define BOOKD_PAYMENTS_H

#include "core.h"
#include "wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct payments payments;

#define PAYMENTS_ERROR_SIZE 256
#define PAYMENTS_SECRET_SIZE 256 /* a client_secret with its NUL, at most */
#define PAYMENTS_API_BASE_DEFAULT "https://api.stripe.com"

struct payments_config {
	const char *data_dir;	 /* the position file */
	const char *log_id;	 /* the Idempotency-Keys' prefix ("bookd") */
	const char *api_base;	 /* STRIPE_API_BASE; NULL: Stripe's */
	const char *secret_key;	 /* STRIPE_SECRET_KEY (sk_...): on when set */
	unsigned max_attempts;	 /* then given up on (8) */
	unsigned backoff_ms;	 /* first retry's delay (500) */
	unsigned backoff_max_ms; /* a retry's longest delay (30000) */
	unsigned timeout_ms;	 /* one request's whole time (15000) */
	unsigned inflight_max;	 /* requests at once (16) */
	unsigned alert_failures; /* failed attempts in a row that raise the
				   * alert (5) */
	const char *payment_methods; /* "" (automatic_payment_methods) or a
				      * comma list ("card") */
	int wake_fd; /* an eventfd the log writes; -1: poll every few ms */
	bool quiet;  /* no progress lines on stderr (tests) */
};

void payments_config_default(struct payments_config *cfg);
/* True when STRIPE_SECRET_KEY is set: otherwise the sender does not run. */
bool payments_config_enabled(const struct payments_config *cfg);

/*
 * Loads the position (data_dir/payments.pos), opens the log reader there
 * (first start: the durable end of the log), holds the log from there
 * (wal_retain_for WAL_HOLDER_PAYMENTS) and starts the thread. port is the
 * sender's own core port (its reads and its decisions), c its core. 0, or
 * -errno with a message in err. One sender per process.
 */
int payments_start(const struct payments_config *cfg, wal *w, core *c,
		   core_port *port, payments **out, char *err, size_t err_size);
/* Stops the thread (requests in flight are abandoned: made again, with
 * the same Idempotency-Key, at the next start), writes the position,
 * releases the hold, frees p. NULL: nothing. */
void payments_stop(payments *p);

struct payments_status {
	bool running, alert;
	uint64_t position_lsn;
	uint64_t intents_created, intents_failed; /* failed: hold released */
	uint64_t refunds_done, refunds_failed;
	uint64_t attempts_failed;   /* Stripe calls that failed */
	uint64_t failures_in_a_row; /* since the last call that worked */
	uint64_t pending;	    /* intents and refunds not finished */
	char last_error[PAYMENTS_ERROR_SIZE]; /* "" when none; no secrets */
};

/* Any thread; p NULL: all zero (not running). */
void payments_status(payments *p, struct payments_status *out);
/* The running sender's (payments_start), all zero when none: for
 * /v1/admin/status and /metrics. */
void payments_status_active(struct payments_status *out);

/*
 * A held booking's PaymentIntent, for Stripe.js: its id and client_secret
 * once the running sender made (or, after a restart, fetched again) it;
 * false when unknown (no sender, not made yet, the hold over). Any thread;
 * cheap (a mutex and a hash look-up).
 */
bool payments_intent_of(uint64_t booking_id,
			char intent_id[CORE_PAY_REF_SIZE_MAX],
			char client_secret[PAYMENTS_SECRET_SIZE]);

#endif
