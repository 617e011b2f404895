/*
 * chaos_client.c: a binary-protocol client of the chaos test
 * (tests/chaos/run.sh, docs/reliability.md "Chaos") that records every
 * request it sends and the answer it got, or that it got none, in a
 * history file the checker (tests/chaos/check.py) reads afterwards.
 *
 *   chaos_client ADDR KEY NAME SEED SECONDS HISTORY EVENT[,EVENT...]
 *
 * For SECONDS it books (its own customers NAME-c0..NAME-c11 on the given
 * events), cancels bookings it was answered, and replays an answered
 * request under its idempotency key, with the library's synchronous calls
 * (api/client/bookd_client.h), one request at a time. A request whose
 * answer did not come (timeout, connection lost, bookd killed or stopped)
 * or came as a refusal that decided nothing for certain (unavailable,
 * overloaded, in flight, internal) is sent again under the same key after
 * reconnecting, up to RETRY_MAX times: each attempt is one line. The
 * connection is opened again (every RECONNECT_NAP_MS) for as long as bookd
 * is down.
 *
 * One JSON line per attempt, written and flushed before the next request:
 *   {"c":NAME,"p":"bin","op":"book"|"cancel","key":K,"try":N,
 *    "ev":E,"cust":C | "bid":B,"t0":ms,"t1":ms,
 *    "res":"ok"|"refused"|"unknown","code":"...","replayed":0|1,
 *    "bid":B,"st":"confirmed"|...,"pos":N,"prom":P}
 * "ok": acknowledged (the booking's id and status, a cancel's promoted
 * booking or 0); "refused": a refusal that decided nothing (event_full,
 * already_booked, booking_not_active, ...); "unknown": no answer, or one
 * that does not say whether the decision was made.
 * Single-threaded; the randomness is seeded (xorshift) so a seed repeats the
 * same choices while bookd answers the same.
 */
#include "bookd_client.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CUSTOMER_COUNT 12
#define EVENT_COUNT_MAX 64
#define KNOWN_MAX 4096 /* acknowledged operations kept for cancels, replays */
#define RETRY_MAX 6
#define TIMEOUT_MS 1500
#define RECONNECT_NAP_MS 100

enum op_kind { OP_BOOK, OP_CANCEL };

struct op {
	enum op_kind kind;
	uint64_t event_id, booking_id;
	char customer[BC_CUSTOMER_ID_SIZE_MAX + 1];
	char key[64];
};

struct run {
	const char *addr, *auth, *name;
	FILE *hist;
	uint64_t rng;
	bc_client *c;
	uint64_t events[EVENT_COUNT_MAX];
	unsigned event_count;
	struct op known[KNOWN_MAX]; /* acknowledged, for replays */
	unsigned known_count;
	uint64_t active[KNOWN_MAX]; /* bookings answered, not cancelled */
	unsigned active_count;
	unsigned long seq, acked, refused, unknown;
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t rnd(struct run *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* A refusal that decided nothing for certain: the request may be sent
 * again under its key. Everything else is an answer. */
static bool undecided(int code)
{
	return code == BC_UNAVAILABLE || code == BC_OVERLOADED ||
	       code == BC_INTERNAL || code == BC_IDEMPOTENCY_KEY_IN_FLIGHT ||
	       code == BC_RATE_LIMITED || code == BC_OTHER;
}

static void connect_now(struct run *r)
{
	char err[256];

	while (!r->c && !stopping) {
		if (!bc_connect(r->addr, r->auth, &r->c, err, sizeof(err))) {
			bc_set_timeout(r->c, TIMEOUT_MS);
			return;
		}
		r->c = NULL;
		nap_ms(RECONNECT_NAP_MS);
	}
}

static void drop_active(struct run *r, uint64_t booking_id)
{
	for (unsigned i = 0; i < r->active_count; i++)
		if (r->active[i] == booking_id) {
			r->active[i] = r->active[--r->active_count];
			return;
		}
}

/* Sends op once and writes its line; 1 when it should be sent again. A
 * replay (of an acknowledged request) changes nothing the client keeps. */
static int attempt(struct run *r, const struct op *op, unsigned try,
		   bool replay)
{
	struct bc_booking b = { 0 }, p = { 0 };
	int64_t t0 = now_ms(), t1;
	const struct bc_answer *a;
	const char *res;
	int rc;

	connect_now(r);
	if (!r->c)
		return 0;
	if (op->kind == OP_BOOK)
		rc = bc_book(r->c, op->event_id, op->customer, op->key,
			     BC_PAY_NONE, &b);
	else
		rc = bc_cancel(r->c, op->booking_id, op->key, &b, &p);
	t1 = now_ms();
	a = bc_last(r->c);
	if (rc < 0 || undecided(rc))
		res = "unknown";
	else if (rc == BC_OK)
		res = "ok";
	else
		res = "refused";
	fprintf(r->hist,
		"{\"c\":\"%s\",\"p\":\"bin\",\"op\":\"%s\",\"key\":\"%s\","
		"\"try\":%u,",
		r->name, op->kind == OP_BOOK ? "book" : "cancel", op->key, try);
	if (op->kind == OP_BOOK)
		fprintf(r->hist, "\"ev\":%" PRIu64 ",\"cust\":\"%s\",",
			op->event_id, op->customer);
	else
		fprintf(r->hist, "\"target\":%" PRIu64 ",", op->booking_id);
	fprintf(r->hist,
		"\"t0\":%" PRId64 ",\"t1\":%" PRId64 ",\"res\":\"%s\","
		"\"code\":\"%s\"",
		t0, t1, res, rc < 0 ? strerror(-rc) : a->code_name);
	if (rc == BC_OK) {
		fprintf(r->hist,
			",\"replayed\":%d,\"bid\":%" PRIu64 ",\"st\":\"%s\","
			"\"pos\":%u",
			a->replayed, b.id, bc_booking_status_name(b.status),
			b.position);
		if (op->kind == OP_CANCEL)
			fprintf(r->hist, ",\"prom\":%" PRIu64, p.id);
	}
	fputs("}\n", r->hist);
	fflush(r->hist);
	if (rc < 0) {
		bc_close(r->c);
		r->c = NULL;
	}
	if (rc == BC_OK && replay) {
		r->acked++;
		return 0;
	}
	if (rc == BC_OK) {
		r->acked++;
		if (r->known_count < KNOWN_MAX)
			r->known[r->known_count++] = *op;
		if (op->kind == OP_BOOK && r->active_count < KNOWN_MAX)
			r->active[r->active_count++] = b.id;
		if (op->kind == OP_CANCEL)
			drop_active(r, op->booking_id);
		return 0;
	}
	if (!strcmp(res, "refused")) {
		r->refused++;
		if (op->kind == OP_CANCEL && !replay)
			drop_active(r, op->booking_id);
		return 0;
	}
	r->unknown++;
	return 1;
}

static void run_op(struct run *r, const struct op *op, bool replay)
{
	for (unsigned try = 0; try < RETRY_MAX && !stopping; try++) {
		if (!attempt(r, op, try, replay))
			return;
		nap_ms(50 + (unsigned)(rnd(r) % 200));
	}
}

/* The next request; true when it replays an acknowledged one. */
static bool next_op(struct run *r, struct op *op)
{
	unsigned dice = (unsigned)(rnd(r) % 100);

	memset(op, 0, sizeof(*op));
	if (dice < 8 && r->known_count) { /* a replay under the same key */
		*op = r->known[rnd(r) % r->known_count];
		return true;
	}
	snprintf(op->key, sizeof(op->key), "%s-k%lu", r->name, ++r->seq);
	if (dice < 40 && r->active_count) {
		op->kind = OP_CANCEL;
		op->booking_id = r->active[rnd(r) % r->active_count];
		return false;
	}
	op->kind = OP_BOOK;
	op->event_id = r->events[rnd(r) % r->event_count];
	snprintf(op->customer, sizeof(op->customer), "%s-c%u", r->name,
		 (unsigned)(rnd(r) % CUSTOMER_COUNT));
	return false;
}

static int parse_events(struct run *r, char *list)
{
	for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
		if (r->event_count == EVENT_COUNT_MAX)
			return -E2BIG;
		r->events[r->event_count] = strtoull(s, NULL, 10);
		if (!r->events[r->event_count])
			return -EINVAL;
		r->event_count++;
	}
	return r->event_count ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static struct run r;
	struct sigaction sa = { .sa_handler = on_term };
	int64_t until;
	struct op op;

	if (argc != 8) {
		fprintf(stderr, "usage: chaos_client ADDR KEY NAME SEED "
				"SECONDS HISTORY EVENT[,EVENT...]\n");
		return 2;
	}
	r.addr = argv[1];
	r.auth = argv[2];
	r.name = argv[3];
	r.rng = strtoull(argv[4], NULL, 10) * 2654435761u + 1;
	until = now_ms() + strtoll(argv[5], NULL, 10) * 1000;
	if (parse_events(&r, argv[7])) {
		fprintf(stderr, "chaos_client: bad event list %s\n", argv[7]);
		return 2;
	}
	r.hist = fopen(argv[6], "a");
	if (!r.hist) {
		perror(argv[6]);
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stopping && now_ms() < until) {
		bool replay = next_op(&r, &op);

		run_op(&r, &op, replay);
		nap_ms(5 + (unsigned)(rnd(&r) % 20));
	}
	if (r.c)
		bc_close(r.c);
	fclose(r.hist);
	printf("chaos_client %s: %lu acknowledged, %lu refused, %lu without "
	       "an answer\n",
	       r.name, r.acked, r.refused, r.unknown);
	return 0;
}
