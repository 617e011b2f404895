/*
 * bookd.c: the server's main: flags (with env fallbacks), the node, the
 * network threads, the replicator, the timers, signals.
 *
 * Threads: main (timers and signals), the log's writer, the node's
 * snapshotter, the network threads (net.c: they also decide on the shards,
 * shard s on thread s % threads; --shard-threads gives each shard a worker
 * thread instead) and slow workers (net_slow.c), and the replicator when
 * DATABASE_URL is set. Core ports: 0 is main's, then the network
 * threads', then the slow workers', then the notification sender's
 * (notify/, its own thread, when a sink is configured).
 *
 * Timers on the main thread: every second a CORE_OP_TICK (holds that ran
 * out are expired even on quiet shards, idempotency keys past their
 * retention dropped); at start and then daily a CORE_OP_ARCHIVE (events
 * that ended --archive-after-days ago leave memory, when there are any)
 * and a CORE_OP_GENERATE (series are generated up to the horizon;
 * generation is idempotent). Each is a job of the registry (jobs.h):
 * hold_expiry, idempotency_expiry, archive, generation. At start and then
 * every minute a CORE_OP_REMIND with --reminder-hours (reminders before
 * class, logged decisions: docs/core.md "Reminders"; job "reminders").
 *
 * SIGTERM or SIGINT: the network threads stop taking requests and answer
 * what is in flight, then the node closes (the log syncs), exit 0.
 * SIGUSR1: a snapshot now (node_snapshot; scripts/backup.sh asks for one).
 * Under systemd (svc.h): STATUS while recovering, READY=1 once listening,
 * WATCHDOG=1 every tick, STOPPING=1 on SIGTERM.
 */
#include "bookd_version.h"
#include "auth.h"
#include "bookd_assert.h"
#include "evlog.h"
#include "fields.h"
#include "jobs.h"
#include "net.h"
#include "node.h"
#include "notify.h"
#include "payments.h"
#include "repl.h"
#include "secrets.h"
#include "seed_import.h"
#include "svc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 1000
#define GENERATE_EVERY_MS (24 * 3600 * 1000)
#define REMIND_EVERY_MS (60 * 1000)

struct sizes {
	unsigned max_events, max_bookings, max_customers, connections;
	unsigned generate_max_days, archive_after_days;
};

struct opts {
	const char *http_listen, *binary_listen, *data_dir, *database_url;
	const char *service_key, *anon_key, *jwt_secret, *stripe_secret;
	const char *allowed_origins, *sync;
	unsigned threads, shards;
	const char *address_rate, *customer_rate, *snapshot_every;
	const char *anon_rate, *service_rate, *trusted_proxies;
	unsigned repl_streams, refresh_every;
	unsigned metrics_samples, retention_days, health_every;
	bool demo;
	bool accept_log_loss;
	bool shard_threads; /* a worker thread per shard (else hosted) */
	bool log_ring;	    /* the log's batches on the network thread's ring */
	unsigned log_syncs; /* the log's fdatasyncs in flight at once */
	struct sizes sizes;
	uint64_t recover_stop_before;
	/* the network's lock-out guards (net_config) */
	unsigned conn_reserve, conn_per_address, request_timeout_ms;
	unsigned slow_request_ms;	 /* logged when slower (0: never) */
	struct notify_config notify;	 /* notifications (notify.h) */
	struct payments_config payments; /* Stripe (payments.h) */
	/* --reminder-hours: the leads, count 0 when off */
	uint16_t reminder_hours[CORE_REMIND_LEAD_COUNT_MAX];
	uint8_t reminder_count;
	/* --hold-minutes, --horizon-days, --idempotency-hours */
	unsigned hold_minutes, horizon_days, idempotency_hours;
};

struct flag {
	const char *name, *env, *help;
	int has_arg;
};

static const struct flag flags[] = {
	{ "listen", "BOOKD_LISTEN",
	  "HTTP address, host:port or unix:PATH (127.0.0.1:8080)", 1 },
	{ "binary-listen", "BOOKD_BINARY_LISTEN",
	  "binary protocol address, host:port or unix:PATH (127.0.0.1:7070)",
	  1 },
	{ "data-dir", "BOOKD_DATA_DIR", "log and snapshots (./data)", 1 },
	{ "database-url", "DATABASE_URL",
	  "PostgreSQL to replicate into (unset: embedded mode, log only)", 1 },
	{ "service-key", "BOOKD_SERVICE_KEY", "bearer key that may do anything",
	  1 },
	{ "anon-key", "BOOKD_ANON_KEY", "bearer key for public listings", 1 },
	{ "jwt-secret", "BOOKD_JWT_SECRET",
	  "HS256 secret of customer JWTs (sub = customer id)", 1 },
	{ "stripe-webhook-secret", "STRIPE_WEBHOOK_SECRET",
	  "secret of Stripe-Signature on /v1/webhooks/stripe", 1 },
	{ "allowed-origins", "ALLOWED_ORIGINS",
	  "CORS origins, comma separated, or *", 1 },
	{ "threads", "BOOKD_THREADS", "network threads (1)", 1 },
	{ "shards", "BOOKD_SHARDS", "core shards (half the cores, at least 1)",
	  1 },
	{ "sync", "BOOKD_SYNC",
	  "durability: fdatasync (default) or write (page cache only)", 1 },
	{ "address-rate", "BOOKD_ADDRESS_RATE",
	  "requests/s per client address, burst twice that (2000; 0: no limit)",
	  1 },
	{ "customer-rate", "BOOKD_CUSTOMER_RATE",
	  "requests/s per customer, burst twice that (20; 0: no limit)", 1 },
	{ "snapshot-every", "BOOKD_SNAPSHOT_EVERY",
	  "records between background snapshots (10000000; 0: none)", 1 },
	{ "repl-streams", "BOOKD_REPL_STREAMS",
	  "PostgreSQL connections the replicator applies on at once (2)", 1 },
	{ "refresh-every", "BOOKD_REFRESH_EVERY",
	  "seconds between refreshes of the materialized views (60; 0: never)",
	  1 },
	{ "demo", "BOOKD_DEMO",
	  "create a demo studio with a week of classes when empty", 0 },
	{ "accept-log-loss", "BOOKD_ACCEPT_LOG_LOSS",
	  "start even if the log is damaged or incomplete: cut it there, set "
	  "the rest aside as *.cut and log what was lost (docs/operations.md)",
	  0 },
	/* Sizes and limits (docs/operations.md "Memory and limits"): tables
	 * start small and grow as needed up to these ceilings. */
	{ "max-events", "BOOKD_MAX_EVENTS",
	  "events held in memory per shard, at most (1048576)", 1 },
	{ "max-bookings", "BOOKD_MAX_BOOKINGS",
	  "bookings held in memory per shard, at most (4194304)", 1 },
	{ "max-customers", "BOOKD_MAX_CUSTOMERS",
	  "customers with bookings per shard, at most (1048576)", 1 },
	{ "connections", "BOOKD_CONNECTIONS",
	  "connections per network thread, at most (16384)", 1 },
	{ "generate-max-days", "BOOKD_GENERATE_MAX_DAYS",
	  "furthest generation may reach, days after today (366)", 1 },
	{ "anon-rate", "BOOKD_ANON_RATE",
	  "requests/s for the anon key, all its users together, burst twice "
	  "that (0: no limit; each address is held to --address-rate)",
	  1 },
	{ "service-rate", "BOOKD_SERVICE_RATE",
	  "requests/s for the service key, burst twice that (0: no limit; "
	  "never held to --address-rate)",
	  1 },
	{ "trusted-proxies", "BOOKD_TRUSTED_PROXIES",
	  "proxies whose X-Forwarded-For names the client for --address-rate: "
	  "addresses, CIDR blocks, unix; comma separated (none)",
	  1 },
	{ "recover-stop-before", "BOOKD_RECOVER_STOP_BEFORE",
	  "recover only the log records before this LSN (one that does not "
	  "apply); the rest is set aside as *.cut (docs/operations.md)",
	  1 },
	{ "conn-reserve", "BOOKD_CONN_RESERVE",
	  "of --connections, slots kept for /health and the service key (64)",
	  1 },
	{ "conn-per-address", "BOOKD_CONN_PER_ADDRESS",
	  "connections per client address, IPv6 per /64 (1024; 0: no cap)", 1 },
	{ "request-timeout-ms", "BOOKD_REQUEST_TIMEOUT_MS",
	  "a request must arrive whole within this of its first byte, a "
	  "connection's first request within this of the connect (10000)",
	  1 },
	/* Booking rules, process-wide (docs/operations.md "Booking rules"). */
	{ "hold-minutes", "BOOKD_HOLD_MINUTES",
	  "minutes a paid booking's seat is held for its payment (10; "
	  "1..1440)",
	  1 },
	{ "horizon-days", "BOOKD_HORIZON_DAYS",
	  "days ahead the daily generation creates a series' events (120; "
	  "1..--generate-max-days)",
	  1 },
	{ "idempotency-hours", "BOOKD_IDEMPOTENCY_HOURS",
	  "hours an idempotency key's first answer is kept (24; 24..8760)", 1 },
	{ "archive-after-days", "BOOKD_ARCHIVE_AFTER_DAYS",
	  "daily: events that ended this many days ago leave memory (365; "
	  "0: never)",
	  1 },
	{ "reminder-hours", "BOOKD_REMINDER_HOURS",
	  "hours before class a reminder goes out to confirmed bookings: up to "
	  "4, comma separated, each 1..720, e.g. 24,2 (24; off or 0: none)",
	  1 },
	{ "shard-threads", "BOOKD_SHARD_THREADS",
	  "each shard gets a worker thread of its own (default: the network "
	  "threads decide on the shards they host, docs/benchmarks.md)",
	  0 },
	{ "log-ring", "BOOKD_LOG_RING",
	  "the network thread writes and syncs the log's batches on its own "
	  "io_uring (default: the log's writer thread, measured faster, "
	  "docs/benchmarks.md)",
	  0 },
	{ "log-syncs", "BOOKD_LOG_SYNCS",
	  "the log's fdatasyncs in flight at once, 1 or 2: with 2 a second "
	  "writer thread syncs the next batch while the first syncs (1: 2 "
	  "measured no faster at 16 x 1, docs/benchmarks.md)",
	  1 },
	{ "slow-request-ms", "BOOKD_SLOW_REQUEST_MS",
	  "a request answered later than this is logged, with its "
	  "X-Request-Id (1000; 0: never)",
	  1 },
	/* Notifications (docs/operations.md "Notifications"): with neither
	 * sink set, the sender does not run. */
	{ "notify-webhook-url", "NOTIFY_WEBHOOK_URL",
	  "webhook that receives every notification (unset: none)", 1 },
	{ "notify-webhook-secret", "NOTIFY_WEBHOOK_SECRET",
	  "the webhook's signing secret: whsec_<base64 key>, or a raw secret",
	  1 },
	{ "smtp-url", "SMTP_URL",
	  "email notifications through smtp:// or smtps://user:pass@host:port "
	  "(unset: none)",
	  1 },
	{ "smtp-from", "SMTP_FROM", "the emails' From address", 1 },
	{ "esp-api-key", "ESP_API_KEY",
	  "the SMTP password (the provider's key), replacing SMTP_URL's", 1 },
	{ "notify-templates", "BOOKD_NOTIFY_TEMPLATES",
	  "directory of <kind>.txt email templates overriding the built-in "
	  "ones",
	  1 },
	{ "notify-max-attempts", "BOOKD_NOTIFY_MAX_ATTEMPTS",
	  "attempts per sink before a notification is a dead letter (10)", 1 },
	{ "notify-backoff-ms", "BOOKD_NOTIFY_BACKOFF_MS",
	  "first retry's delay, doubled each attempt, jittered (250)", 1 },
	{ "notify-backoff-max-ms", "BOOKD_NOTIFY_BACKOFF_MAX_MS",
	  "longest delay between two attempts (30000)", 1 },
	{ "notify-timeout-ms", "BOOKD_NOTIFY_TIMEOUT_MS",
	  "one delivery attempt's whole time (10000)", 1 },
	{ "notify-concurrency", "BOOKD_NOTIFY_CONCURRENCY",
	  "deliveries in flight per sink (32)", 1 },
	{ "notify-webhook-rate", "BOOKD_NOTIFY_WEBHOOK_RATE",
	  "webhook requests/s, burst the same (1000; 0: no limit)", 1 },
	{ "notify-smtp-rate", "BOOKD_NOTIFY_SMTP_RATE",
	  "emails/s, burst the same (100; 0: no limit)", 1 },
	/* Payments (docs/operations.md "Payments"): without the secret key
	 * the sender does not run (Stripe.js pays intents made elsewhere). */
	{ "stripe-secret-key", "STRIPE_SECRET_KEY",
	  "Stripe's secret key (sk_...): holds get a PaymentIntent, refunds "
	  "are made (unset: neither)",
	  1 },
	{ "stripe-api-base", "STRIPE_API_BASE",
	  "Stripe's API (https://api.stripe.com; tests: a local stand-in)", 1 },
	{ "stripe-payment-methods", "STRIPE_PAYMENT_METHODS",
	  "payment_method_types of an intent, comma separated (unset: "
	  "automatic_payment_methods)",
	  1 },
	{ "payments-max-attempts", "BOOKD_PAYMENTS_MAX_ATTEMPTS",
	  "Stripe calls per intent or refund before it is given up on: the "
	  "hold released, the refund failed (8)",
	  1 },
	{ "payments-backoff-ms", "BOOKD_PAYMENTS_BACKOFF_MS",
	  "first retry's delay, doubled each attempt, jittered (500)", 1 },
	{ "payments-backoff-max-ms", "BOOKD_PAYMENTS_BACKOFF_MAX_MS",
	  "longest delay between two Stripe calls (30000)", 1 },
	{ "payments-timeout-ms", "BOOKD_PAYMENTS_TIMEOUT_MS",
	  "one Stripe call's whole time (15000)", 1 },
	{ "payments-alert-failures", "BOOKD_PAYMENTS_ALERT_FAILURES",
	  "failed Stripe calls in a row that raise the alert (5)", 1 },
	/* Monitoring in PostgreSQL (docs/operations.md). */
	{ "metrics-samples", "BOOKD_METRICS_SAMPLES",
	  "per-request samples into performance_metrics, per second and "
	  "operation at most (1000; 0: none)",
	  1 },
	{ "metrics-retention-days", "BOOKD_METRICS_RETENTION_DAYS",
	  "performance_metrics and health_checks rows are deleted after "
	  "this many days (30; 0: never)",
	  1 },
	{ "health-every", "BOOKD_HEALTH_EVERY",
	  "seconds between the health checks into health_checks (60; 0: "
	  "never)",
	  1 },
	{ "help", NULL, "this text", 0 },
	{ "version", NULL, "the version and build type", 0 },
};
#define FLAG_COUNT (sizeof(flags) / sizeof(flags[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: bookd [flags]\n\nFlags (environment variable in "
		   "brackets, used when the flag is not given):\n");
	for (size_t i = 0; i < FLAG_COUNT; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s", flags[i].name,
			 flags[i].has_arg ? " VALUE" : "");
		fprintf(f, "  %-30s %s", left, flags[i].help);
		if (flags[i].env)
			fprintf(f, " [%s]", flags[i].env);
		fprintf(f, "\n");
	}
	fprintf(f,
		"\nLogs (docs/operations.md \"Logs\"): BOOKD_LOG_FORMAT=logfmt "
		"(default) or json,\nBOOKD_LOG_LEVEL=debug, info (default), "
		"warn or error.\n");
	fprintf(f,
		"\nEvery secret may come from a file instead: NAME_FILE=PATH, "
		"the file's\ncontent with one trailing newline stripped; "
		"refused if the file is readable\nby group or others, or if "
		"NAME is also set to another value. The secrets:");
	for (const char *const *n = secret_names; *n; n++)
		fprintf(f, "%s%s", (n - secret_names) % 4 ? ", " : "\n  ", *n);
	fprintf(f, "\n");
}

static int parse_unsigned(const char *name, const char *s, unsigned lo,
			  unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	ASSERT(lo <= hi);
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		evlog(EVLOG_ERROR, "bookd: --%s must be %u..%u, not '%s'", name,
		      lo, hi, s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	ASSERT(*out >= lo && *out <= hi);
	return 0;
}

/* Every secret through secret_resolve: its flag's (or variable's) value
 * or its NAME_FILE's content; a secret no flag reads is still checked, and
 * set as NAME for what reads it with getenv. */
static int resolve_secrets(const char **val)
{
	char err[512];

	for (const char *const *n = secret_names; *n; n++) {
		const char *given = getenv(*n), **slot = NULL;

		if (given && !*given)
			given = NULL;
		for (size_t i = 0; i < FLAG_COUNT; i++)
			if (flags[i].env && !strcmp(flags[i].env, *n)) {
				slot = &val[i];
				given = val[i];
			}
		if (secret_resolve(*n, given, slot ? slot : &given, err,
				   sizeof(err))) {
			evlog(EVLOG_ERROR, "bookd: %s", err);
			return -EINVAL;
		}
	}
	return 0;
}

/* A flag's value by name (after the environment fallback), NULL if unset. */
static const char *flag_value(const char *const *val, const char *name)
{
	for (size_t i = 0; i < FLAG_COUNT; i++)
		if (!strcmp(flags[i].name, name))
			return val[i];
	ASSERT(!"a flag name not in flags[]");
	return NULL;
}

static int parse_sizes(const char *const *val, struct sizes *z)
{
	static const struct {
		const char *name;
		size_t offset;
		unsigned lo, hi;
	} list[] = {
		{ "max-events", offsetof(struct sizes, max_events), 1,
		  1u << 30 },
		{ "max-bookings", offsetof(struct sizes, max_bookings), 1,
		  1u << 30 },
		{ "max-customers", offsetof(struct sizes, max_customers), 1,
		  1u << 30 },
		{ "connections", offsetof(struct sizes, connections), 1,
		  NET_CONN_COUNT_MAX },
		{ "generate-max-days",
		  offsetof(struct sizes, generate_max_days), 1, 36600 },
		{ "archive-after-days",
		  offsetof(struct sizes, archive_after_days), 0, 36600 },
	};
	struct core_config def;
	struct net_config ndef;

	core_config_default(&def);
	net_config_default(&ndef);
	z->max_events = def.event_count_max;
	z->max_bookings = def.booking_count_max;
	z->max_customers = def.customer_count_max;
	z->connections = ndef.conn_count_max;
	z->generate_max_days = def.generate_max_days;
	z->archive_after_days = 365;
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		const char *v = flag_value(val, list[i].name);
		ASSERT(list[i].offset + sizeof(unsigned) <= sizeof(*z));
		if (v &&
		    parse_unsigned(list[i].name, v, list[i].lo, list[i].hi,
				   (unsigned *)((char *)z + list[i].offset)))
			return -EINVAL;
	}
	return 0;
}

/* the network's lock-out guards (docs/operations.md "Connection limits"). */
static int parse_net_limits(const char *const *val, struct opts *o)
{
	static const struct {
		const char *name;
		size_t offset;
		unsigned lo, hi, def;
	} list[] = {
		{ "conn-reserve", offsetof(struct opts, conn_reserve), 0,
		  NET_CONN_COUNT_MAX - 1, 64 },
		{ "conn-per-address", offsetof(struct opts, conn_per_address),
		  0, UINT32_MAX, 1024 },
		{ "request-timeout-ms",
		  offsetof(struct opts, request_timeout_ms), 1, 3600000,
		  10000 },
		{ "slow-request-ms", offsetof(struct opts, slow_request_ms), 0,
		  3600000, 1000 },
	};

	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		const char *v = flag_value(val, list[i].name);
		unsigned *out = (unsigned *)((char *)o + list[i].offset);
		ASSERT(list[i].def >= list[i].lo && list[i].def <= list[i].hi);
		*out = list[i].def;
		if (v && parse_unsigned(list[i].name, v, list[i].lo, list[i].hi,
					out))
			return -EINVAL;
	}
	if (o->conn_reserve >= o->sizes.connections) {
		evlog(EVLOG_ERROR,
		      "bookd: --conn-reserve (%u) must be smaller than "
		      "--connections (%u)",
		      o->conn_reserve, o->sizes.connections);
		return -EINVAL;
	}
	return 0;
}

/* The notification sender's flags (notify.h); its strings point into val,
 * the environment or argv, which live as long as main. */
static int parse_notify(const char *const *val, struct notify_config *c)
{
	static const struct {
		const char *name;
		size_t offset;
		unsigned lo, hi;
	} list[] = {
		{ "notify-max-attempts",
		  offsetof(struct notify_config, max_attempts), 1, 1000 },
		{ "notify-backoff-ms",
		  offsetof(struct notify_config, backoff_ms), 1, 3600000 },
		{ "notify-backoff-max-ms",
		  offsetof(struct notify_config, backoff_max_ms), 1, 86400000 },
		{ "notify-timeout-ms",
		  offsetof(struct notify_config, timeout_ms), 1, 600000 },
		{ "notify-concurrency",
		  offsetof(struct notify_config, inflight_max), 1, 256 },
	};
	unsigned rate;

	notify_config_default(c);
	c->webhook_url = flag_value(val, "notify-webhook-url");
	c->webhook_secret = flag_value(val, "notify-webhook-secret");
	c->smtp_url = flag_value(val, "smtp-url");
	c->smtp_from = flag_value(val, "smtp-from");
	c->smtp_password = flag_value(val, "esp-api-key");
	c->template_dir = flag_value(val, "notify-templates");
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		const char *v = flag_value(val, list[i].name);
		if (v &&
		    parse_unsigned(list[i].name, v, list[i].lo, list[i].hi,
				   (unsigned *)((char *)c + list[i].offset)))
			return -EINVAL;
	}
	if (flag_value(val, "notify-webhook-rate")) {
		if (parse_unsigned("notify-webhook-rate",
				   flag_value(val, "notify-webhook-rate"), 0,
				   1000000, &rate))
			return -EINVAL;
		c->rate[NOTIFY_SINK_WEBHOOK] = rate;
	}
	if (flag_value(val, "notify-smtp-rate")) {
		if (parse_unsigned("notify-smtp-rate",
				   flag_value(val, "notify-smtp-rate"), 0,
				   1000000, &rate))
			return -EINVAL;
		c->rate[NOTIFY_SINK_EMAIL] = rate;
	}
	return 0;
}

/* The payments sender's flags (payments.h); strings as parse_notify's. */
static int parse_payments(const char *const *val, struct payments_config *c)
{
	static const struct {
		const char *name;
		size_t offset;
		unsigned lo, hi;
	} list[] = {
		{ "payments-max-attempts",
		  offsetof(struct payments_config, max_attempts), 1, 1000 },
		{ "payments-backoff-ms",
		  offsetof(struct payments_config, backoff_ms), 1, 3600000 },
		{ "payments-backoff-max-ms",
		  offsetof(struct payments_config, backoff_max_ms), 1,
		  86400000 },
		{ "payments-timeout-ms",
		  offsetof(struct payments_config, timeout_ms), 1, 600000 },
		{ "payments-alert-failures",
		  offsetof(struct payments_config, alert_failures), 1,
		  1000000 },
	};

	payments_config_default(c);
	c->secret_key = flag_value(val, "stripe-secret-key");
	c->api_base = flag_value(val, "stripe-api-base");
	if (flag_value(val, "stripe-payment-methods"))
		c->payment_methods = flag_value(val, "stripe-payment-methods");
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		const char *v = flag_value(val, list[i].name);
		if (v &&
		    parse_unsigned(list[i].name, v, list[i].lo, list[i].hi,
				   (unsigned *)((char *)c + list[i].offset)))
			return -EINVAL;
	}
	return 0;
}

/* --reminder-hours: "24", "24,2", "off" or "0" (none). */
static int parse_reminder_hours(const char *v, struct opts *o)
{
	char buf[64], *save = NULL;

	o->reminder_count = 1;
	o->reminder_hours[0] = 24;
	if (!v)
		return 0;
	o->reminder_count = 0;
	if (!strcmp(v, "off") || !strcmp(v, "0"))
		return 0;
	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long h;

		while (*t == ' ')
			t++;
		errno = 0;
		h = strtoul(t, &end, 10);
		while (*end == ' ')
			end++;
		if (errno || end == t || *end || t[0] == '-' || h < 1 ||
		    h > CORE_REMIND_HOURS_MAX ||
		    o->reminder_count == CORE_REMIND_LEAD_COUNT_MAX)
			goto bad;
		o->reminder_hours[o->reminder_count++] = (uint16_t)h;
	}
	if (o->reminder_count)
		return 0;
bad:
	evlog(EVLOG_ERROR,
	      "bookd: --reminder-hours (BOOKD_REMINDER_HOURS) must be up to "
	      "%d lead times in hours, comma separated, each 1..%d (e.g. "
	      "24,2), or off; not '%s'",
	      CORE_REMIND_LEAD_COUNT_MAX, CORE_REMIND_HOURS_MAX, v);
	return -EINVAL;
}

/* The booking rules' process-wide defaults (H3's per-org settings
 * override some of them per org): hold time, generation horizon (within
 * --generate-max-days, so that the daily generation is never refused),
 * idempotency retention (SPEC: at least 24 h). */
static int parse_rules(const char *const *val, struct opts *o)
{
	struct core_config def;
	const char *v;

	core_config_default(&def);
	o->hold_minutes = (unsigned)(def.hold_ms / 60000);
	o->horizon_days = def.horizon_days;
	o->idempotency_hours = (unsigned)(def.idem_retention_ms / 3600000);
	v = flag_value(val, "hold-minutes");
	if (v && parse_unsigned("hold-minutes", v, 1, 1440, &o->hold_minutes))
		return -EINVAL;
	v = flag_value(val, "idempotency-hours");
	if (v && parse_unsigned("idempotency-hours", v, 24, 8760,
				&o->idempotency_hours))
		return -EINVAL;
	v = flag_value(val, "horizon-days");
	if (v && parse_unsigned("horizon-days", v, 1, 36600, &o->horizon_days))
		return -EINVAL;
	if (o->horizon_days > o->sizes.generate_max_days) {
		evlog(EVLOG_ERROR,
		      "bookd: --horizon-days (%u) must be at most "
		      "--generate-max-days (%u)",
		      o->horizon_days, o->sizes.generate_max_days);
		return -EINVAL;
	}
	ASSERT(o->hold_minutes >= 1 && o->idempotency_hours >= 24);
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	/* val[0..17] are read by position below: the table's first rows */
	static const char *const by_position[] = {
		"listen",	   "binary-listen",
		"data-dir",	   "database-url",
		"service-key",	   "anon-key",
		"jwt-secret",	   "stripe-webhook-secret",
		"allowed-origins", "threads",
		"shards",	   "sync",
		"address-rate",	   "customer-rate",
		"snapshot-every",  "repl-streams",
		"refresh-every",   "demo",
	};
	const char *val[FLAG_COUNT] = { 0 };
	struct option lo[FLAG_COUNT + 1];
	int c;

	for (size_t i = 0; i < sizeof(by_position) / sizeof(by_position[0]);
	     i++)
		ASSERT(strcmp(flags[i].name, by_position[i]) == 0);
	memset(lo, 0, sizeof(lo));
	for (size_t i = 0; i < FLAG_COUNT; i++) {
		lo[i].name = flags[i].name;
		lo[i].has_arg = flags[i].has_arg;
		lo[i].val = (int)i;
	}
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h' || (c >= 0 && (size_t)c < FLAG_COUNT &&
				 !strcmp(flags[c].name, "help"))) {
			usage(stdout);
			exit(0);
		}
		if (c >= 0 && (size_t)c < FLAG_COUNT &&
		    !strcmp(flags[c].name, "version")) {
			printf("bookd %s (%s)\n", BOOKD_VERSION,
			       BOOKD_BUILD_TYPE);
			exit(0);
		}
		if (c < 0 || (size_t)c >= FLAG_COUNT) {
			usage(stderr);
			return -EINVAL;
		}
		val[c] = flags[c].has_arg ? optarg : "1";
	}
	if (optind < argc) {
		evlog(EVLOG_ERROR, "bookd: unexpected argument '%s'",
		      argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	for (size_t i = 0; i < FLAG_COUNT; i++)
		if (!val[i] && flags[i].env && getenv(flags[i].env) &&
		    *getenv(flags[i].env))
			val[i] = getenv(flags[i].env);
	if (resolve_secrets(val))
		return -EINVAL;

	o->http_listen = val[0] ? val[0] : "127.0.0.1:8080";
	o->binary_listen = val[1] ? val[1] : "127.0.0.1:7070";
	o->data_dir = val[2] ? val[2] : "./data";
	o->database_url = val[3];
	o->service_key = val[4];
	o->anon_key = val[5];
	o->jwt_secret = val[6];
	o->stripe_secret = val[7];
	o->allowed_origins = val[8];
	o->threads = 1;
	/* The shards share the cores with the network threads, the log's
	 * writer and, in a benchmark, the load generator: on 2 cores one shard
	 * does twice the work of two (docs/benchmarks.md). */
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	o->shards = cores >= 4 ? (unsigned)(cores / 2) : 1;
	if (o->shards > CORE_SHARD_COUNT_MAX)
		o->shards = CORE_SHARD_COUNT_MAX;
	if (val[9] && parse_unsigned("threads", val[9], 1, NET_THREAD_COUNT_MAX,
				     &o->threads))
		return -EINVAL;
	if (val[10] && parse_unsigned("shards", val[10], 1,
				      CORE_SHARD_COUNT_MAX, &o->shards))
		return -EINVAL;
	o->sync = val[11] ? val[11] : "fdatasync";
	if (strcmp(o->sync, "fdatasync") && strcmp(o->sync, "write")) {
		evlog(EVLOG_ERROR, "bookd: --sync must be fdatasync or write");
		return -EINVAL;
	}
	o->address_rate = val[12];
	o->customer_rate = val[13];
	o->snapshot_every = val[14];
	o->repl_streams = 2;
	if (val[15] && parse_unsigned("repl-streams", val[15], 1,
				      REPL_STREAM_MAX, &o->repl_streams))
		return -EINVAL;
	o->refresh_every = 60;
	if (val[16] && parse_unsigned("refresh-every", val[16], 0, 86400,
				      &o->refresh_every))
		return -EINVAL;
	o->demo = val[17] && strcmp(val[17], "0") && strcmp(val[17], "false");
	{
		const char *v = flag_value(val, "accept-log-loss");

		o->accept_log_loss = v && strcmp(v, "0") && strcmp(v, "false");
		v = flag_value(val, "shard-threads");
		o->shard_threads = v && strcmp(v, "0") && strcmp(v, "false");
		v = flag_value(val, "log-ring");
		o->log_ring = v && strcmp(v, "0") && strcmp(v, "false");
		v = flag_value(val, "log-syncs");
		o->log_syncs = 1;
		if (v && parse_unsigned("log-syncs", v, 1,
					WAL_SYNCS_IN_FLIGHT_MAX, &o->log_syncs))
			return -EINVAL;
	}
	o->anon_rate = flag_value(val, "anon-rate");
	o->service_rate = flag_value(val, "service-rate");
	o->trusted_proxies = flag_value(val, "trusted-proxies");
	{
		const char *v = flag_value(val, "recover-stop-before");
		char *end;

		errno = 0;
		o->recover_stop_before = 0;
		if (v) {
			o->recover_stop_before = strtoull(v, &end, 10);
			if (errno || end == v || *end || v[0] == '-' ||
			    o->recover_stop_before == 0) {
				evlog(EVLOG_ERROR,
				      "bookd: --recover-stop-before "
				      "must be a log LSN (1 or more), not "
				      "'%s'",
				      v);
				return -EINVAL;
			}
		}
	}
	o->metrics_samples = 1000;
	o->retention_days = 30;
	o->health_every = 60;
	if ((flag_value(val, "metrics-samples") &&
	     parse_unsigned("metrics-samples",
			    flag_value(val, "metrics-samples"), 0, 1000000,
			    &o->metrics_samples)) ||
	    (flag_value(val, "metrics-retention-days") &&
	     parse_unsigned("metrics-retention-days",
			    flag_value(val, "metrics-retention-days"), 0, 36500,
			    &o->retention_days)) ||
	    (flag_value(val, "health-every") &&
	     parse_unsigned("health-every", flag_value(val, "health-every"), 0,
			    86400, &o->health_every)))
		return -EINVAL;
	if (parse_sizes(val, &o->sizes) || parse_notify(val, &o->notify) ||
	    parse_payments(val, &o->payments) ||
	    parse_reminder_hours(flag_value(val, "reminder-hours"), o) ||
	    parse_rules(val, o))
		return -EINVAL;
	return parse_net_limits(val, o);
}

static int copy_key(const char *name, const char *v, char *dst, size_t size)
{
	ASSERT(size > 0);
	if (!v)
		return 0;
	if (strlen(v) >= size) {
		evlog(EVLOG_ERROR, "bookd: %s is longer than %zu bytes", name,
		      size - 1);
		return -EINVAL;
	}
	strcpy(dst, v);
	return 0;
}

static int set_rate(const char *name, const char *v,
		    struct auth_limit_config *lim, enum auth_limit_kind kind)
{
	unsigned rate;

	if (!v)
		return 0;
	if (parse_unsigned(name, v, 0, 100000000, &rate))
		return -EINVAL;
	lim->rate[kind] = rate;
	lim->burst[kind] = 2.0 * rate;
	return 0;
}

/* ---- the demo studio ---- */

static int call(core_port *p, struct core_req *q, struct core_resp *r,
		const char *what)
{
	int rc = core_call(p, q, r);

	if (rc == 0 && r->code != CORE_OK)
		rc = -EINVAL;
	if (rc)
		evlog(EVLOG_ERROR, "bookd: demo: %s failed: %s", what,
		      rc == -EINVAL ? core_code_name(r->code) : strerror(-rc));
	return rc;
}

/* A catalogue entry of the demo org (a location, an instructor): its id
 * in *id, or -EINVAL (said on stderr). */
static int demo_cat(core_port *p, enum core_op op, const char *name,
		    uint64_t org, core_time now, const char *what, uint64_t *id)
{
	struct core_req q = { .op = op, .now = now };
	struct core_resp r;

	ASSERT(strlen(name) < sizeof(q.u.cat.name));
	strcpy(q.u.cat.name, name);
	q.u.cat.org_id = org;
	if (call(p, &q, &r, what))
		return -EINVAL;
	*id = r.id;
	return 0;
}

static struct core_date date_of(core_time t)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	return (struct core_date){ (int16_t)(tm.tm_year + 1900),
				   (int8_t)(tm.tm_mon + 1),
				   (int8_t)tm.tm_mday };
}

/* The demo: a studio with three weekly classes for the coming week and one
 * booking, customer DEMO_CUSTOMER's on the first class at least
 * DEMO_LEAD_MS ahead, so that the lines printed at start-up name ids that
 * exist. The next start on the same data dir finds that booking again and
 * prints the same lines; their idempotency keys make them replays. */
#define DEMO_CUSTOMER "alice"
#define DEMO_LEAD_MS (2 * 3600 * 1000LL)

struct demo {
	uint64_t event_id, booking_id;
	core_time start_at;
	bool created;
};

/* The demo's booking in a data dir that holds it: 0, or -ENOENT. */
static int demo_find(core_port *p, struct demo *d)
{
	struct core_booking_view b[4];
	struct core_req q = { .op = CORE_OP_CUSTOMER_BOOKINGS,
			      .now = srv_now() };
	struct core_req g = { .op = CORE_OP_EVENT_GET, .now = q.now };
	struct core_resp r;

	strcpy(q.customer_id, DEMO_CUSTOMER);
	q.u.customer.out = b;
	q.u.customer.capacity = 4;
	if (core_call(p, &q, &r) || r.code != CORE_OK || r.count == 0)
		return -ENOENT;
	ASSERT(r.count <= q.u.customer.capacity);
	/* newest first: the oldest is the one the demo made */
	d->booking_id = b[r.count - 1].id;
	d->event_id = b[r.count - 1].event_id;
	g.event_id = d->event_id;
	if (core_call(p, &g, &r) || r.code != CORE_OK)
		return -ENOENT;
	d->start_at = r.event.start_at;
	return 0;
}

/* The studio, its classes and the demo's booking, when the data dir holds no
 * event; else the booking it holds (if it is a demo's). 0, or -errno. */
static int demo_load(core_port *p, struct demo *d)
{
	static const struct {
		const char *title;
		uint8_t weekdays;
		uint16_t start;
		uint32_t duration, capacity, waitlist, price;
	} classes[] = {
		{ "Morning Yoga", 0x1f, 7 * 60, 60, 20, 10, 0 },
		{ "HIIT", 0x0a, 18 * 60, 45, 12, 5, 1500 },
		{ "Weekend Pilates", 0x60, 10 * 60, 50, 15, 10, 0 },
	};
	struct core_event_view first;
	struct core_resp r;
	core_time now = srv_now();
	struct core_req q = { .op = CORE_OP_EVENT_LIST, .now = now };
	uint64_t org, loc, ins;

	memset(d, 0, sizeof(*d));
	q.u.list.from = 0;
	q.u.list.to = INT64_MAX;
	q.u.list.limit = 1;
	q.u.list.out = &first;
	if (core_call(p, &q, &r) == 0 && r.count > 0)
		return demo_find(p, d); /* not empty: leave it */

	q = (struct core_req){ .op = CORE_OP_ORG_CREATE, .now = now };
	strcpy(q.u.cat.name, "Demo Studio");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	if (call(p, &q, &r, "org"))
		return -EINVAL;
	org = r.id;
	if (demo_cat(p, CORE_OP_LOCATION_CREATE, "Main Hall", org, now,
		     "location", &loc) ||
	    demo_cat(p, CORE_OP_INSTRUCTOR_CREATE, "Alex Rivera", org, now,
		     "instructor", &ins))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		struct core_series_spec spec = {
			.org_id = org,
			.location_id = loc,
			.instructor_id = ins,
			.capacity = classes[i].capacity,
			.waitlist_capacity = classes[i].waitlist,
			.price_cents = classes[i].price,
			.weekday_mask = classes[i].weekdays,
			.start_minute = classes[i].start,
			.duration_min = classes[i].duration,
			.first_date = date_of(now),
			.last_date = date_of(now + 6 * 86400000LL),
		};
		strcpy(spec.title, classes[i].title);
		strcpy(spec.timezone, "Europe/Berlin");
		if (classes[i].price)
			strcpy(spec.currency, "eur");
		q = (struct core_req){ .op = CORE_OP_SERIES_CREATE,
				       .now = now,
				       .u.series = &spec };
		if (call(p, &q, &r, "series"))
			return -EINVAL;
	}
	/* the first free class far enough ahead for the printed lines */
	q = (struct core_req){ .op = CORE_OP_EVENT_LIST, .now = now };
	q.u.list.from = now + DEMO_LEAD_MS;
	q.u.list.to = INT64_MAX;
	q.u.list.limit = 1;
	q.u.list.out = &first;
	do {
		if (core_call(p, &q, &r) || r.count == 0) {
			evlog(EVLOG_ERROR, "bookd: demo: no class ahead");
			return -ENOENT;
		}
		q.u.list.after_start = first.start_at;
		q.u.list.after_id = first.id;
	} while (first.price_cents != 0);
	q = (struct core_req){ .op = CORE_OP_BOOK,
			       .now = now,
			       .event_id = first.id };
	strcpy(q.customer_id, DEMO_CUSTOMER);
	q.u.book.payment = CORE_PAY_AUTO;
	if (call(p, &q, &r, "booking"))
		return -EINVAL;
	d->event_id = first.id;
	d->booking_id = r.booking.id;
	d->start_at = first.start_at;
	d->created = true;
	return 0;
}

/* The status page's address, the schedule page's (web/, docs/operations.md
 * "The schedule page") and DEMO_CUSTOMER's sign-in link: the anon key and a customer JWT
 * valid DEMO_TOKEN_S in the URL's fragment, which a browser never sends
 * (so never in a server's log); the page keeps them. */
#define DEMO_TOKEN_S (7 * 86400)

static void demo_page(const char *http, const char *anon, const char *secret)
{
	int64_t now_s = (int64_t)(srv_now() / 1000);
	char tok[AUTH_TOKEN_SIZE_MAX];
	int rc;

	printf("bookd: the status page (it asks for the service key):\n"
	       "  http://%s/status\n",
	       http);
	rc = auth_jwt_make(secret, DEMO_CUSTOMER, now_s + DEMO_TOKEN_S, now_s,
			   tok, sizeof(tok));
	if (rc < 0) {
		printf("bookd: the schedule page (no sign-in link: %s):\n"
		       "  http://%s/#key=%s\n",
		       strerror(-rc), http, anon);
		return;
	}
	printf("bookd: the schedule page, and signed in as %s (for %d "
	       "days):\n  http://%s/#key=%s\n  http://%s/#key=%s&token=%s\n",
	       DEMO_CUSTOMER, DEMO_TOKEN_S / 86400, http, anon, http, anon,
	       tok);
}

/* The lines to try, each runnable as printed, on this start and the next:
 * list, book another customer (a replay the second time: same key), show
 * and cancel the demo's booking (a replay too, once done); then the
 * schedule page's links (demo_page). */
static void demo_print(const struct demo *d, const char *http, const char *anon,
		       const char *service, const char *secret)
{
	char when[FLD_TIME_SIZE];

	printf("bookd: demo studio %s: %s holds booking %" PRIu64
	       " on event %" PRIu64 " (%s). Try:\n",
	       d->created ? "created" : "found", DEMO_CUSTOMER, d->booking_id,
	       d->event_id, (fld_time_format(d->start_at, when), when));
	printf("  curl -s 'http://%s/v1/events?limit=3' -H 'Authorization: Bearer %s'\n",
	       http, anon);
	if (d->start_at <= srv_now()) {
		printf("bookd: demo: that class has started; start with an empty "
		       "--data-dir for a new demo\n");
		demo_page(http, anon, secret);
		return;
	}
	printf("  curl -s -X POST http://%s/v1/events/%" PRIu64 "/bookings"
	       " -H 'Authorization: Bearer %s' -H 'Idempotency-Key: demo-book-%" PRIu64
	       "'"
	       " -H 'Content-Type: application/json' -d '{\"customer_id\":\"bob\"}'\n",
	       http, d->event_id, service, d->event_id);
	printf("  curl -s http://%s/v1/bookings/%" PRIu64
	       " -H 'Authorization: Bearer %s'\n",
	       http, d->booking_id, service);
	printf("  curl -s -X POST http://%s/v1/bookings/%" PRIu64 "/cancel"
	       " -H 'Authorization: Bearer %s' -H 'Idempotency-Key: demo-cancel-%" PRIu64
	       "'\n",
	       http, d->booking_id, service, d->booking_id);
	demo_page(http, anon, secret);
}

/* ---- the replicator's view of the server, and the server's of it ---- */

struct repl_glue {
	struct srv *srv;
	repl *r;
};

static const char *op_metric_name(enum core_op op)
{
	switch (op) {
	case CORE_OP_BOOK: return "book";
	case CORE_OP_CANCEL: return "cancel";
	case CORE_OP_PAY: return "payment";
	case CORE_OP_EVENT_PATCH: return "event_patch";
	case CORE_OP_EVENT_GET: return "event_get";
	case CORE_OP_BOOKING_GET: return "booking_get";
	case CORE_OP_CUSTOMER_BOOKINGS: return "customer_bookings";
	case CORE_OP_EVENT_LIST: return "event_list";
	case CORE_OP_SERIES_CREATE: return "series_create";
	case CORE_OP_GENERATE: return "generate";
	default: return NULL;
	}
}

static unsigned glue_samples(void *ctx, struct repl_sample *out,
			     unsigned capacity, uint64_t *dropped)
{
	static const char *const outcomes[] = { "ok", "refused", "error" };
	struct repl_glue *g = ctx;
	struct net_sample in[256];
	unsigned n = 0, got;

	*dropped = 0;
	do {
		uint64_t lost = 0;
		unsigned want = capacity - n < 256 ? capacity - n : 256;

		got = net_samples_drain(g->srv, in, want, &lost);
		*dropped += lost;
		for (unsigned i = 0; i < got; i++) {
			const char *name =
				op_metric_name((enum core_op)in[i].op);

			if (!name || in[i].outcome > NET_OUTCOME_ERROR)
				continue;
			out[n] = (struct repl_sample){
				.at_ms = in[i].at_ms,
				.ns = in[i].ns,
				.every = in[i].every,
				.outcome = outcomes[in[i].outcome],
			};
			snprintf(out[n].operation, sizeof(out[n].operation),
				 "%s", name);
			n++;
		}
	} while (got > 0 && n < capacity);
	ASSERT(n <= capacity);
	return n;
}

static void glue_status(void *ctx, struct net_repl_status *out)
{
	struct repl_glue *g = ctx;
	struct repl_status st;

	repl_status(g->r, &st);
	out->state = repl_state_name(st.state);
	out->applied_lsn = st.applied_lsn;
	out->lag_records = st.lag_records;
	out->lag_bytes = st.lag_bytes;
	out->lag_seconds = st.lag_seconds;
}

static void glue_notify(void *ctx, struct notify_status *out)
{
	notify_status(*(notify **)ctx, out);
}

static int glue_refresh(void *ctx)
{
	struct repl_glue *g = ctx;

	return g->r ? repl_refresh_views(g->r) : -ENOTSUP;
}

/* ---- a slow or failing disk, for tests only ---- */

/* BOOKD_TEST_FSYNC_FILE=PATH (docs/operations.md, "For tests only"): each
 * fdatasync of the log first reads PATH: a number is milliseconds to sleep
 * before syncing, "fail" fails it (EIO: the log refuses writes from then
 * on), anything else or no file syncs as usual. Through the log's fault
 * injection point (wal_set_syscalls); never set in production. */
static const char *test_fsync_file;

static int test_fdatasync(int fd)
{
	char line[32] = "";
	FILE *f = fopen(test_fsync_file, "r");
	unsigned long ms;

	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	if (!strncmp(line, "fail", 4)) {
		errno = EIO;
		return -1;
	}
	ms = strtoul(line, NULL, 10);
	if (ms > 0 && ms <= 600000)
		usleep((useconds_t)ms * 1000);
	return fdatasync(fd);
}

static void test_fsync_knob(void)
{
	static const struct wal_syscalls sc = { .fdatasync = test_fdatasync };

	test_fsync_file = getenv("BOOKD_TEST_FSYNC_FILE");
	if (!test_fsync_file || !*test_fsync_file)
		return;
	evlog(EVLOG_WARN,
	      "bookd: BOOKD_TEST_FSYNC_FILE=%s: the log's fdatasync reads "
	      "it first (tests only: a slow or failing disk)",
	      test_fsync_file);
	wal_set_syscalls(&sc);
}

/* BOOKD_TEST_HOLD_MS=N (docs/operations.md, "For tests only"): holds last
 * N ms (100..600000) instead of --hold-minutes, so that a test sees one run
 * out in seconds. Never set in production. */
static void test_hold_knob(core_time *hold_ms)
{
	const char *v = getenv("BOOKD_TEST_HOLD_MS");
	unsigned long ms;

	if (!v || !*v)
		return;
	ms = strtoul(v, NULL, 10);
	if (ms < 100 || ms > 600000)
		return;
	evlog(EVLOG_WARN,
	      "bookd: BOOKD_TEST_HOLD_MS=%lu: holds last %lu ms "
	      "(tests only)",
	      ms, ms);
	*hold_ms = (core_time)ms;
}

/* BOOKD_TEST_SEGMENT_BYTES=N (docs/operations.md, "For tests only"): the
 * log's new segments are N bytes (a multiple of 4096, WAL_SEGMENT_SIZE_MIN
 * to _MAX) instead of 64 MiB, so that a test on a small disk (tests/chaos)
 * sees segments roll over, and the disk fill up, within seconds. Never set
 * in production. */
static void test_segment_knob(uint64_t *segment_size)
{
	const char *v = getenv("BOOKD_TEST_SEGMENT_BYTES");
	unsigned long long n;

	if (!v || !*v)
		return;
	n = strtoull(v, NULL, 10);
	if (n < WAL_SEGMENT_SIZE_MIN || n > WAL_SEGMENT_SIZE_MAX || n % 4096)
		return;
	evlog(EVLOG_WARN,
	      "bookd: BOOKD_TEST_SEGMENT_BYTES=%llu: new log segments are "
	      "%llu bytes (tests only)",
	      n, n);
	*segment_size = n;
}

/* ---- main ---- */

static void generate(core_port *p)
{
	struct jobs_run run = jobs_begin(JOBS_GENERATION);
	struct core_req q = { .op = CORE_OP_GENERATE,
			      .now = run.started_at_ms };
	struct core_resp r;
	char msg[JOBS_MESSAGE_SIZE] = "";
	int rc = core_call(p, &q, &r);

	if (rc || r.code != CORE_OK) {
		snprintf(msg, sizeof(msg), "daily generation failed: %s",
			 rc ? strerror(-rc) : core_code_name(r.code));
		evlog(EVLOG_ERROR, "bookd: %s", msg);
	} else if (r.count) {
		snprintf(msg, sizeof(msg), "generated %u events", r.count);
		evlog(EVLOG_INFO, "bookd: %s", msg);
	}
	jobs_end(&run,
		 rc		     ? rc
		 : r.code != CORE_OK ? -EIO
				     : 0,
		 msg, q.now + GENERATE_EVERY_MS);
}

/* Events that ended `days` ago leave memory (a logged decision: replay
 * drops them again; PostgreSQL keeps them). 0: never. */
static void archive(core_port *p, unsigned days)
{
	struct jobs_run run;
	struct core_req q = { .op = CORE_OP_EVENT_LIST };
	struct core_event_view first;
	struct core_resp r;
	char msg[JOBS_MESSAGE_SIZE] = "";
	int rc;

	if (days == 0)
		return;
	run = jobs_begin(JOBS_ARCHIVE);
	q.now = run.started_at_ms;
	/* Nothing started before the cut: nothing to archive, nothing to
	 * log (a start or a quiet day adds no record). */
	q.u.list.from = 0;
	q.u.list.to = q.now - (core_time)days * 86400000;
	q.u.list.limit = 1;
	q.u.list.out = &first;
	if (core_call(p, &q, &r) == 0 && r.count == 0) {
		jobs_end(&run, 0, NULL, q.now + GENERATE_EVERY_MS);
		return;
	}
	q = (struct core_req){ .op = CORE_OP_ARCHIVE, .now = q.now };
	q.u.archive.days = days;
	rc = core_call(p, &q, &r);
	if (rc || r.code != CORE_OK) {
		snprintf(msg, sizeof(msg), "daily archive failed: %s",
			 rc ? strerror(-rc) : core_code_name(r.code));
		evlog(EVLOG_ERROR, "bookd: %s", msg);
	} else if (r.count) {
		snprintf(msg, sizeof(msg),
			 "archived %u events that ended %u days ago or earlier",
			 r.count, days);
		evlog(EVLOG_INFO, "bookd: %s", msg);
	}
	jobs_end(&run,
		 rc		     ? rc
		 : r.code != CORE_OK ? -EIO
				     : 0,
		 msg, q.now + GENERATE_EVERY_MS);
}

/* The tick: hold_expiry and idempotency_expiry, one core call for both. */
static void tick(core_port *p)
{
	struct jobs_run run = jobs_begin(JOBS_HOLD_EXPIRY), keys = run;
	struct core_req q = { .op = CORE_OP_TICK, .now = run.started_at_ms };
	struct core_resp r = { 0 };
	char held[JOBS_MESSAGE_SIZE] = "", gone[JOBS_MESSAGE_SIZE] = "";
	int rc = core_call(p, &q, &r);

	keys.id = JOBS_IDEMPOTENCY_EXPIRY;
	if (rc) {
		snprintf(held, sizeof(held), "tick failed: %s", strerror(-rc));
		memcpy(gone, held, sizeof(gone));
	}
	if (!rc && r.count)
		snprintf(held, sizeof(held), "%u holds expired", r.count);
	if (!rc && r.keys_expired)
		snprintf(gone, sizeof(gone), "%u keys dropped", r.keys_expired);
	jobs_end(&run, rc, held, q.now + TICK_MS);
	jobs_end(&keys, rc, gone, q.now + TICK_MS);
}

/* The main thread's jobs in the registry, with their schedules; those of
 * the replicator (it sets them when it starts) off without DATABASE_URL. */
static void jobs_set_up(unsigned archive_days, bool replicating, core_time now)
{
	static const enum jobs_id pg[] = { JOBS_PARTITIONS, JOBS_VIEW_REFRESH,
					   JOBS_HEALTH_CHECKS,
					   JOBS_METRICS_FLUSH, JOBS_JOBS_SYNC };
	char what[JOBS_SCHEDULE_SIZE];

	for (size_t i = 0; !replicating && i < sizeof(pg) / sizeof(pg[0]); i++)
		jobs_schedule(pg[i], "off (no DATABASE_URL)", false, 0);

	jobs_schedule(JOBS_HOLD_EXPIRY, "every 1 s", true, now + TICK_MS);
	jobs_schedule(JOBS_IDEMPOTENCY_EXPIRY, "every 1 s", true,
		      now + TICK_MS);
	jobs_schedule(JOBS_GENERATION, "daily, and at start", true, now);
	snprintf(what, sizeof(what), "daily, and at start (%u days)",
		 archive_days);
	jobs_schedule(JOBS_ARCHIVE,
		      archive_days ? what : "off (--archive-after-days 0)",
		      archive_days != 0, now);
}

/* The leads as the jobs registry shows them: "every 60 s: 24,2 h". */
static void remind_schedule(const struct opts *o, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "every 60 s:");

	for (uint8_t i = 0; i < o->reminder_count && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%u", i ? "," : " ",
				      o->reminder_hours[i]);
	if (n < size)
		snprintf(buf + n, size - n, " h before class");
}

/* Reminders due now (logged decisions: each goes out once whatever the
 * restarts); the job "reminders". */
static void remind(core_port *p, const struct opts *o)
{
	struct core_req q = { .op = CORE_OP_REMIND, .now = srv_now() };
	struct jobs_run run = jobs_begin(JOBS_REMINDERS);
	struct core_resp r;
	char msg[64];
	int rc;

	memcpy(q.u.remind.hours, o->reminder_hours, sizeof(q.u.remind.hours));
	q.u.remind.count = o->reminder_count;
	rc = core_call(p, &q, &r);
	if (rc == 0 && r.code != CORE_OK)
		rc = -EIO;
	if (rc)
		snprintf(msg, sizeof(msg), "%s (%u sent)",
			 rc == -EIO ? core_code_name(r.code) : strerror(-rc),
			 rc == -EIO ? r.count : 0);
	else
		snprintf(msg, sizeof(msg), "%u reminders", r.count);
	if (rc)
		evlog(EVLOG_ERROR, "bookd: reminders failed: %s", msg);
	jobs_end(&run, rc, rc || r.count ? msg : NULL, q.now + REMIND_EVERY_MS);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct net_config nc;
	struct node_config cfg;
	struct srv *srv = NULL;
	node *n = NULL;
	sigset_t sigs;
	char err[1024]; /* a damaged log's message names paths and a flag */
	const int *fds;
	const _Atomic bool *const *idle;
	int wake_fds[NET_THREAD_COUNT_MAX + 3];
	/* the replicator's, the notification sender's and the payments
	 * sender's (last) are written after every advance: NULL */
	const _Atomic bool *wake_idle[NET_THREAD_COUNT_MAX + 3] = { 0 };
	unsigned fd_count;
	struct repl_glue glue = { 0 };
	int repl_fd = -1, notify_fd = -1, pay_fd = -1;
	notify *notifier = NULL;
	unsigned notify_port = 0, import_port = 0, pay_port = 0;
	struct import_server *importer = NULL;
	payments *payer = NULL;
	core_port *port;
	core_time last_generate, last_remind = 0;
	int rc;

	if (evlog_setup_env(err, sizeof(err))) {
		evlog(EVLOG_ERROR, "bookd: %s", err);
		return 2;
	}
	if (parse_opts(argc, argv, &o))
		return 2;
	test_fsync_knob();
	if (o.demo) {
		if (!o.service_key)
			o.service_key = "demo-service-key";
		if (!o.anon_key)
			o.anon_key = "demo-anon-key";
		if (!o.jwt_secret)
			o.jwt_secret = "demo-jwt-secret";
	}

	/* Signals are taken by the main thread only (sigtimedwait). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	net_config_default(&nc);
	nc.http_listen = o.http_listen;
	nc.binary_listen = o.binary_listen;
	nc.thread_count = o.threads;
	nc.log_on_ring = o.log_ring;
	nc.shard_count = o.shards;
	nc.conn_reserve = o.conn_reserve;
	nc.conn_per_address_max = o.conn_per_address;
	nc.request_timeout_ms = o.request_timeout_ms;
	nc.slow_request_ms = o.slow_request_ms;
	nc.first_port = 1;
	nc.samples_per_s = o.database_url ? o.metrics_samples : 0;
	nc.conn_count_max = o.sizes.connections;
	nc.repl_status = glue_status;
	nc.repl_ctx = &glue;
	nc.repl_refresh = glue_refresh;
	nc.notify_status = glue_notify;
	nc.notify_ctx = &notifier;
	if (copy_key("BOOKD_SERVICE_KEY", o.service_key, nc.auth.service_key,
		     sizeof(nc.auth.service_key)) ||
	    copy_key("BOOKD_ANON_KEY", o.anon_key, nc.auth.anon_key,
		     sizeof(nc.auth.anon_key)) ||
	    copy_key("BOOKD_JWT_SECRET", o.jwt_secret, nc.auth.jwt_secret,
		     sizeof(nc.auth.jwt_secret)) ||
	    copy_key("STRIPE_WEBHOOK_SECRET", o.stripe_secret,
		     nc.auth.stripe_secret, sizeof(nc.auth.stripe_secret)))
		return 2;
	if (o.allowed_origins &&
	    auth_config_set_origins(&nc.auth, o.allowed_origins)) {
		evlog(EVLOG_ERROR, "bookd: bad ALLOWED_ORIGINS");
		return 2;
	}
	if (set_rate("address-rate", o.address_rate, &nc.limits,
		     AUTH_LIMIT_ADDRESS) ||
	    set_rate("customer-rate", o.customer_rate, &nc.limits,
		     AUTH_LIMIT_CUSTOMER) ||
	    set_rate("anon-rate", o.anon_rate, &nc.limits, AUTH_LIMIT_KEY) ||
	    set_rate("service-rate", o.service_rate, &nc.limits,
		     AUTH_LIMIT_SERVICE))
		return 2;
	if (o.trusted_proxies &&
	    auth_config_set_proxies(&nc.auth, o.trusted_proxies)) {
		evlog(EVLOG_ERROR,
		      "bookd: bad BOOKD_TRUSTED_PROXIES '%s': "
		      "addresses, CIDR blocks (10.0.0.0/8) or unix, "
		      "comma separated, at most %d",
		      o.trusted_proxies, AUTH_PROXY_COUNT_MAX);
		return 2;
	}
	/* Thousands of connections: as many descriptors as allowed. */
	{
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	/* after the checks above: their refusals return with nothing to free */
	importer = import_server_new();
	if (!importer) {
		evlog(EVLOG_ERROR, "bookd: import: %s", strerror(errno));
		return 1;
	}
	nc.import = importer;
	rc = net_prepare(&nc, &srv, err, sizeof(err));
	if (rc) {
		evlog(EVLOG_ERROR, "bookd: %s", err);
		return 1;
	}
	glue.srv = srv;
	net_wake_fds(srv, &fds, &idle, &fd_count);
	ASSERT(fd_count <= NET_THREAD_COUNT_MAX); /* one per network thread */
	memcpy(wake_fds, fds, fd_count * sizeof(*fds));
	memcpy(wake_idle, idle, fd_count * sizeof(*idle));
	if (o.database_url) {
		repl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (repl_fd < 0) {
			evlog(EVLOG_ERROR, "bookd: eventfd: %s",
			      strerror(errno));
			return 1;
		}
		wake_fds[fd_count++] = repl_fd;
	}
	if (notify_config_enabled(&o.notify)) {
		notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (notify_fd < 0) {
			evlog(EVLOG_ERROR, "bookd: eventfd: %s",
			      strerror(errno));
			return 1;
		}
		wake_fds[fd_count++] = notify_fd;
	}
	if (payments_config_enabled(&o.payments)) {
		pay_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (pay_fd < 0) {
			evlog(EVLOG_ERROR, "bookd: eventfd: %s",
			      strerror(errno));
			return 1;
		}
		wake_fds[fd_count++] = pay_fd;
	}

	node_config_default(&cfg);
	cfg.data_dir = o.data_dir;
	cfg.core.shard_count = o.shards;
	cfg.core.port_count = 1 + net_port_count(&nc);
	if (notify_fd >= 0) /* the sender's reads: the last port */
		notify_port = cfg.core.port_count++;
	import_port = cfg.core.port_count++; /* POST /v1/admin/import's */
	if (pay_fd >= 0) /* the payments sender's reads and decisions */
		pay_port = cfg.core.port_count++;
	if (!o.shard_threads) { /* the network threads' ports host them */
		cfg.core.host_first = nc.first_port;
		cfg.core.host_count = o.threads;
	}
	cfg.core.ring_size = 16384;
	cfg.core.event_count_max = o.sizes.max_events;
	cfg.core.booking_count_max = o.sizes.max_bookings;
	cfg.core.customer_count_max = o.sizes.max_customers;
	cfg.core.generate_max_days = o.sizes.generate_max_days;
	cfg.core.hold_ms = (core_time)o.hold_minutes * 60000;
	test_hold_knob(&cfg.core.hold_ms);
	test_segment_knob(&cfg.segment_size);
	cfg.core.horizon_days = o.horizon_days;
	cfg.core.idem_retention_ms = (core_time)o.idempotency_hours * 3600000;
	cfg.sync =
		strcmp(o.sync, "write") ? WAL_SYNC_FDATASYNC : WAL_SYNC_WRITE;
	cfg.log_syncs = o.log_syncs;
	cfg.wake_fds = wake_fds;
	cfg.wake_idle = wake_idle;
	/* Each background snapshot forks: the pages the shards then write are
	 * copied (about 10% of throughput while it lasts); replaying 10 M
	 * records at start takes about a second (docs/wal.md). */
	cfg.snapshot_every = 10000000;
	if (o.snapshot_every) {
		unsigned every;
		if (parse_unsigned("snapshot-every", o.snapshot_every, 0,
				   4000000000u, &every))
			return 2;
		cfg.snapshot_every = every;
	}
	cfg.wake_fd_count = fd_count;
	cfg.cut_corrupt = o.accept_log_loss;
	cfg.recover_stop_before = o.recover_stop_before;
	if (o.recover_stop_before)
		evlog(EVLOG_WARN,
		      "bookd: --recover-stop-before %" PRIu64
		      ": the log is cut before LSN %" PRIu64 "; that record "
		      "and every later one are set aside as *.cut, not "
		      "applied",
		      o.recover_stop_before, o.recover_stop_before);
	if (o.accept_log_loss)
		evlog(EVLOG_WARN,
		      "bookd: --accept-log-loss: a damaged or "
		      "incomplete log is cut where the damage starts; what "
		      "is cut is kept as *.cut and logged (CUT CORRUPT LOG)");
	evlog(EVLOG_INFO, "bookd: data dir %s, durability %s", o.data_dir,
	      cfg.sync == WAL_SYNC_FDATASYNC
		      ? "fdatasync before every answer (group commit)"
		      : "write (page cache; not safe against power loss)");
	svc_status("recovering the log in %s", o.data_dir);
	rc = node_open(&cfg, &n, err, sizeof(err));
	if (rc) {
		evlog(EVLOG_ERROR, "bookd: %s", err);
		net_free(srv);
		return 1;
	}
	import_server_attach(importer, n, import_port);
	if (o.database_url) {
		struct repl_config rc_cfg;
		repl_config_default(&rc_cfg);
		rc_cfg.conninfo = o.database_url;
		rc_cfg.data_dir = o.data_dir;
		rc_cfg.wake_fd = repl_fd;
		rc_cfg.streams = o.repl_streams;
		rc_cfg.refresh_interval_ms = o.refresh_every * 1000;
		rc_cfg.health_interval_ms = o.health_every * 1000;
		rc_cfg.retention_days = o.retention_days;
		if (o.metrics_samples) {
			rc_cfg.samples = glue_samples;
			rc_cfg.samples_ctx = &glue;
		}
		rc = repl_start(&rc_cfg, node_wal(n), &glue.r, err,
				sizeof(err));
		if (rc) {
			evlog(EVLOG_ERROR, "bookd: replicator: %s", err);
			node_close(n);
			net_free(srv);
			return 1;
		}
	}
	if (notify_fd >= 0) {
		o.notify.data_dir = o.data_dir;
		o.notify.wake_fd = notify_fd;
		rc = notify_start(&o.notify, node_wal(n), node_core(n),
				  core_port_get(node_core(n), notify_port),
				  &notifier, err, sizeof(err));
		if (rc) {
			evlog(EVLOG_ERROR, "bookd: %s", err);
			repl_stop(glue.r);
			node_close(n);
			net_free(srv);
			return 1;
		}
	}
	if (pay_fd >= 0) {
		o.payments.data_dir = o.data_dir;
		o.payments.wake_fd = pay_fd;
		rc = payments_start(&o.payments, node_wal(n), node_core(n),
				    core_port_get(node_core(n), pay_port),
				    &payer, err, sizeof(err));
		if (rc) {
			evlog(EVLOG_ERROR, "bookd: %s", err);
			notify_stop(notifier);
			repl_stop(glue.r);
			node_close(n);
			net_free(srv);
			return 1;
		}
	}
	port = core_port_get(node_core(n), 0);
	ASSERT(port); /* port 0 is bookd's own (nc.first_port = 1) */
	jobs_set_up(o.sizes.archive_after_days, o.database_url != NULL,
		    srv_now());
	archive(port, o.sizes.archive_after_days);
	generate(port);
	last_generate = srv_now();
	if (o.reminder_count) {
		char sched[JOBS_SCHEDULE_SIZE];

		remind_schedule(&o, sched, sizeof(sched));
		jobs_schedule(JOBS_REMINDERS, sched, true, srv_now());
		remind(port, &o);
		last_remind = srv_now();
	} else {
		jobs_schedule(JOBS_REMINDERS, "off (--reminder-hours off)",
			      false, 0);
	}
	rc = net_start(srv, n);
	if (rc) {
		evlog(EVLOG_ERROR, "bookd: cannot start network threads: %s",
		      strerror(-rc));
		net_stop(srv, 0);
		payments_stop(payer);
		notify_stop(notifier);
		repl_stop(glue.r);
		node_close(n);
		net_free(srv);
		return 1;
	}
	printf("bookd: HTTP on http://%s, binary protocol on %s, %u network "
	       "thread(s), %u shard(s), mode %s\n",
	       net_http_address(srv), net_binary_address(srv), o.threads,
	       o.shards,
	       o.database_url ? "replicating" : "embedded (log only)");
	svc_ready("serving: HTTP on http://%s, binary protocol on %s",
		  net_http_address(srv), net_binary_address(srv));
	if (o.demo) {
		struct demo d;

		rc = demo_load(port, &d);
		if (rc == 0)
			demo_print(&d, net_http_address(srv), o.anon_key,
				   o.service_key, o.jwt_secret);
		else if (rc == -ENOENT)
			printf("bookd: data dir not empty and holds no demo: "
			       "demo studio not created\n");
	}
	fflush(stdout);

	for (;;) {
		struct timespec ts = { TICK_MS / 1000,
				       (TICK_MS % 1000) * 1000000L };
		int sig = sigtimedwait(&sigs, NULL, &ts);
		core_time now;

		if (sig == SIGTERM || sig == SIGINT) {
			evlog(EVLOG_INFO, "bookd: %s: draining",
			      sig == SIGTERM ? "SIGTERM" : "SIGINT");
			svc_stopping("draining");
			break;
		}
		if (sig == SIGUSR1) {
			evlog(EVLOG_INFO, "bookd: SIGUSR1: snapshot");
			rc = node_snapshot(n);
			if (rc)
				evlog(EVLOG_ERROR, "bookd: snapshot: %s",
				      strerror(-rc));
		}
		tick(port);
		now = srv_now();
		if (now - last_generate >= GENERATE_EVERY_MS) {
			archive(port, o.sizes.archive_after_days);
			generate(port);
			last_generate = now;
		}
		if (o.reminder_count && now - last_remind >= REMIND_EVERY_MS) {
			remind(port, &o);
			last_remind = now;
		}
		svc_watchdog();
	}
	net_stop(srv, 5000);
	import_server_free(importer); /* waits for an import running */
	payments_stop(payer);
	payer = NULL;
	notify_stop(notifier);
	notifier = NULL;
	repl_stop(glue.r);
	node_close(n);
	if (repl_fd >= 0)
		close(repl_fd);
	if (notify_fd >= 0)
		close(notify_fd);
	if (pay_fd >= 0)
		close(pay_fd);
	net_free(srv);
	evlog(EVLOG_INFO, "bookd: stopped");
	return 0;
}
