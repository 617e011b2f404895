/*
 * bookbench.c: the peak-load harness of bookd, and its side-by-side runs
 * against the design it replaces (the seed's PostgreSQL RPCs).
 *
 *   bookbench run --driver baseline-pg|bookd-binary|bookd-http --scenario S[,S]
 *   bookbench baseline ...        (run --driver baseline-pg)
 *   bookbench setup-baseline      (creates the baseline schema, then exits)
 *   bookbench compare --scenario opening,steady [--bookd build/api/bookd]
 *   bookbench --help              (every flag)
 *
 * Design.
 *  - A driver (bookbench.h) reaches one system: baseline-pg (libpq, the
 *    plpgsql RPCs in bench/baseline/), bookd-binary (the client library),
 *    bookd-http (our own HTTP/1.1 keep-alive client). Operations go in on a
 *    connection, results come back in submit order.
 *  - A scenario sets the data set's defaults and, per connection, makes the
 *    next operation from what that connection saw (its own bookings to
 *    cancel, earlier requests to replay with the same idempotency key).
 *  - One thread per connection. Closed loop: each keeps --inflight requests
 *    outstanding and sends the next as soon as one answers; latency is from
 *    the send. Open loop: --rate R split evenly over the connections, each
 *    with a fixed schedule of intended send times; latency is measured from
 *    the intended time, not the actual send, so a stalled server is charged
 *    for the requests it kept waiting (no coordinated omission). A window of
 *    --inflight bounds what is outstanding; a late request still counts from
 *    when it should have left.
 *  - Every run is bounded (--duration, --requests) and stops by itself; an
 *    opening is also over once every customer tried every event. The main
 *    thread prints a progress line each second from per-connection interval
 *    histograms (bookbench_hist.c) and keeps the timeline.
 *  - Throughput counts every answer; comparisons use the answers that are
 *    not errors (a 429 or a lost connection is not a decision). A run whose
 *    errors exceed --max-error-pct (1) of its answers fails: it says why and
 *    bookbench exits 4. A bookd started with --bookd runs with its rate
 *    limits off unless --bookd-limits; result.json records its version.
 *  - After the run, the check reads back through the same driver: every
 *    event within its capacity, every acknowledged booking present in the
 *    state bookbench expects (active, or cancelled by bookbench), each
 *    event's waitlist positions 1..n with n its waitlist length and in FIFO
 *    order of acknowledgement, confirmed bookings = the event's booked
 *    count; the driver's own checks (the baseline's SQL invariants); and for
 *    bookd with DATABASE_URL replication on, that PostgreSQL caught up.
 *
 * Memory: histograms are fixed arrays; acknowledged bookings are kept for the
 * check up to --track-max (then the check says it is partial).
 */
#include "bookbench_internal.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Small helpers ---------------------------------------------------- */

int64_t bb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bb_errf(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

int bb_parse_addr(const char *addr, char *host, size_t host_size, int *port)
{
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr)
		return -EINVAL;
	const char *h = addr;
	size_t hn = (size_t)(colon - addr);
	if (h[0] == '[' && hn >= 2 && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (hn + 1 > host_size)
		return -EINVAL;
	memcpy(host, h, hn);
	host[hn] = 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end != 0 || p <= 0 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

const char *bb_code_name(enum bb_code code)
{
	static const char *names[BB_CODE_COUNT] = {
		[BB_OK] = "ok",
		[BB_EVENT_FULL] = "event_full",
		[BB_ALREADY_BOOKED] = "already_booked",
		[BB_NOT_BOOKABLE] = "event_not_bookable",
		[BB_NOT_ACTIVE] = "booking_not_active",
		[BB_NOT_FOUND] = "not_found",
		[BB_IDEM_MISMATCH] = "idempotency_key_reused",
		[BB_RATE_LIMITED] = "rate_limited",
		[BB_UNAVAILABLE] = "unavailable",
		[BB_BAD_REQUEST] = "bad_request",
		[BB_SERVER_ERROR] = "server_error",
		[BB_TRANSPORT] = "transport",
		[BB_REPLAY_DIFFERS] = "replay_differs",
		[BB_OTHER] = "other",
	};
	return (unsigned)code < BB_CODE_COUNT ? names[code] : "?";
}

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static uint32_t rnd_below(uint64_t *s, uint32_t n)
{
	assert(n > 0);
	return (uint32_t)(((rnd_next(s) >> 32) * n) >> 32);
}

void bb_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bookbench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static struct bb_opts opts;
static char command_line[2048];

/* ---- Scenarios -------------------------------------------------------- */

static const struct bb_scenario scenarios[SC_COUNT] = {
	[SC_OPENING] = { "opening",
			 "a popular schedule opens: customers race for a few hundred seats in a few "
			 "events, most end on waitlists",
			 4, 20000, 1, 75, 0, 0, 0, false },
	[SC_STEADY] = { "steady",
			"a normal day: 20k events spread over orgs, bookings and cancellations mixed",
			20000, 100000, 200, 20, 10, 25, 0, false },
	[SC_CANCEL_STORM] = { "cancel-storm",
			      "full events, then mass cancellations, each promoting the first of the "
			      "waitlist",
			      200, 20000, 10, 20, 20, 100, 0, true },
	[SC_READ_HEAVY] = { "read-heavy",
			    "public listings and availability reads, some bookings",
			    2000, 50000, 50, 20, 10, 0, 90, false },
};

static int scenario_find(const char *name, size_t n)
{
	for (int i = 0; i < SC_COUNT; i++)
		if (strlen(scenarios[i].name) == n && memcmp(scenarios[i].name, name, n) == 0)
			return i;
	return -1;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void customer_name(const struct bb_runner *r, uint64_t c, char *out)
{
	snprintf(out, BB_CUSTOMER_SIZE_MAX + 1, "bb-%s-c%" PRIu64, r->ds->run_tag, c);
}

static void own_push(struct bb_worker *w, uint64_t booking_id)
{
	if (w->own_count == BB_OWN_MAX) { /* forget the oldest */
		w->own_head = (w->own_head + 1) % BB_OWN_MAX;
		w->own_count--;
	}
	w->own[(w->own_head + w->own_count) % BB_OWN_MAX] = booking_id;
	w->own_count++;
}

static uint64_t own_pop_oldest(struct bb_worker *w)
{
	assert(w->own_count > 0);
	uint64_t id = w->own[w->own_head];
	w->own_head = (w->own_head + 1) % BB_OWN_MAX;
	w->own_count--;
	return id;
}

static uint64_t own_pop_random(struct bb_worker *w)
{
	assert(w->own_count > 0);
	uint32_t i = rnd_below(&w->rng, w->own_count);
	uint32_t at = (w->own_head + i) % BB_OWN_MAX;
	uint32_t last = (w->own_head + w->own_count - 1) % BB_OWN_MAX;
	uint64_t id = w->own[at];
	w->own[at] = w->own[last];
	w->own_count--;
	return id;
}

/* opening: this connection's customers, and its share of the attempts
 * (each of its customers once on every event); then the opening is over. */
static uint64_t opening_share(const struct bb_runner *r, const struct bb_worker *w)
{
	uint64_t n = (r->customer_count + r->connections - 1 - w->index) / r->connections;
	return n;
}

static bool out_of_work(const struct bb_runner *r, const struct bb_worker *w)
{
	if (r->sc != &scenarios[SC_OPENING])
		return false;
	uint64_t n = opening_share(r, w);
	return n == 0 || w->cursor >= n * r->ds->event_count;
}

/* The next operation of this connection. */
static void make_op(struct bb_runner *r, struct bb_worker *w, struct bb_slot *s)
{
	const struct bb_scenario *sc = r->sc;
	struct bb_dataset *ds = r->ds;
	struct bb_op *op = &s->op;

	memset(s, 0, sizeof(*s));
	w->seq++;
	snprintf(op->key, sizeof(op->key), "%s-%u-%" PRIu64, r->key_prefix, w->index, w->seq);

	if (w->preload_next < w->preload_end) { /* cancel-storm: fill the events first */
		uint64_t i = w->preload_next++;
		uint32_t per_event = ds->capacity + ds->waitlist_capacity;
		op->kind = BB_OP_BOOK;
		op->event_id = ds->event_ids[(i / per_event) % ds->event_count];
		customer_name(r, i, op->customer);
		s->preload = true;
		return;
	}
	if (opts.replay_pct > 0 && w->recent_count > 0 &&
	    rnd_below(&w->rng, 100) < opts.replay_pct) {
		const struct bb_recent *p = &w->recent[rnd_below(&w->rng, w->recent_count)];
		*op = p->op;
		s->replay = true;
		s->expect_id = p->booking_id;
		return;
	}
	unsigned dice = rnd_below(&w->rng, 100);
	if (dice < sc->pct_read) {
		if (rnd_below(&w->rng, 2) == 0) {
			op->kind = BB_OP_EVENT_GET;
			op->event_id = ds->event_ids[rnd_below(&w->rng, ds->event_count)];
		} else {
			uint32_t o = rnd_below(&w->rng, ds->org_count);
			uint32_t hour = rnd_below(&w->rng, 24);
			op->kind = BB_OP_EVENT_LIST;
			op->org_id = ds->org_ids[o];
			op->from_ms = ds->day_ms + (int64_t)hour * 3600000;
			op->to_ms = op->from_ms + 4 * 3600000;
		}
		op->key[0] = 0;
		return;
	}
	if (dice < sc->pct_read + sc->pct_cancel && w->own_count > 0) {
		op->kind = BB_OP_CANCEL;
		op->booking_id = sc->preload ? own_pop_oldest(w) : own_pop_random(w);
		return;
	}
	op->kind = BB_OP_BOOK;
	if (sc == &scenarios[SC_OPENING]) {
		/* connection k takes customers k, k+N, ...; round j books event
		 * (customer + j) mod E: first every customer once, then again */
		uint64_t i = w->cursor++;
		uint64_t per_round = opening_share(r, w);
		if (per_round == 0)
			per_round = 1;
		uint64_t c = w->index + (i % per_round) * r->connections;
		uint64_t round = i / per_round;
		op->event_id = ds->event_ids[(c + round) % ds->event_count];
		customer_name(r, c, op->customer);
	} else {
		op->event_id = ds->event_ids[rnd_below(&w->rng, ds->event_count)];
		customer_name(r, rnd_below(&w->rng, r->customer_count), op->customer);
	}
}

static void ack_add(struct bb_worker *w, const struct bb_slot *s, const struct bb_result *res,
		    int64_t now)
{
	if (w->ack_count == w->ack_cap) {
		w->ack_overflow = true;
		return;
	}
	struct bb_ack *a = &w->acks[w->ack_count++];
	a->booking_id = res->booking_id;
	a->event_id = s->op.event_id;
	a->sent_ns = s->sent_ns;
	a->acked_ns = now;
	a->status = (uint8_t)res->status;
	a->cancelled = 0;
}

/* What an answer means for the connection's state and the counts. */
static void on_result(struct bb_runner *r, struct bb_worker *w, struct bb_slot *s,
		      struct bb_result *res, int64_t now)
{
	enum bb_code code = res->code;

	if (s->replay) {
		/* the same answer again; an error (429, transport) stays itself */
		if ((code == BB_OK && res->booking_id != s->expect_id) ||
		    (code != BB_OK && !bb_code_is_error(code)))
			code = BB_REPLAY_DIFFERS;
	} else if (code == BB_OK && (s->op.kind == BB_OP_BOOK || s->op.kind == BB_OP_CANCEL)) {
		if (s->op.kind == BB_OP_BOOK) {
			if (!s->preload)
				w->bookings_acked++;
			ack_add(w, s, res, now);
			own_push(w, res->booking_id);
		} else {
			w->cancels_acked++;
			if (res->promoted_id != 0)
				w->promotions++;
			/* marked in the acks at check time (by booking id) */
			if (w->ack_count < w->ack_cap) {
				struct bb_ack *a = &w->acks[w->ack_count++];
				memset(a, 0, sizeof(*a));
				a->booking_id = s->op.booking_id;
				a->cancelled = 1;
			} else {
				w->ack_overflow = true;
			}
		}
		struct bb_recent *p = w->recent_count < BB_REPLAY_MAX
					      ? &w->recent[w->recent_count++]
					      : &w->recent[rnd_below(&w->rng, BB_REPLAY_MAX)];
		p->op = s->op;
		p->booking_id = s->op.kind == BB_OP_BOOK ? res->booking_id : s->op.booking_id;
	}
	if (s->preload)
		return;

	uint64_t ns = now > s->intended_ns ? (uint64_t)(now - s->intended_ns) : 0;
	w->by_code[code]++;
	w->by_kind[s->op.kind]++;
	bb_hist_record(&w->hist, ns);
	bb_hist_record(&w->hist_kind[s->op.kind], ns);
	pthread_mutex_lock(&w->lock);
	bb_hist_record(&w->interval, ns);
	if (bb_code_is_error(code))
		w->interval_errors++;
	pthread_mutex_unlock(&w->lock);
}

static bool take_ticket(struct bb_runner *r)
{
	if (r->requests_max == 0)
		return true;
	uint64_t t = atomic_fetch_add(&r->tickets, 1);
	if (t >= r->requests_max) {
		atomic_store(&r->stop, true);
		return false;
	}
	return true;
}

struct bb_worker_arg {
	struct bb_runner *r;
	struct bb_worker *w;
};

static void worker_loop(struct bb_runner *r, struct bb_worker *w);

static void *worker_run(void *arg)
{
	struct bb_worker_arg *a = arg;
	struct bb_runner *r = a->r;
	struct bb_worker *w = a->w;
	worker_loop(r, w);
	if (w->preload_counted) /* ended (failed) before its share was done */
		atomic_fetch_sub(&r->preload_pending, 1);
	atomic_fetch_add(&r->finished, 1);
	return NULL;
}

static void worker_loop(struct bb_runner *r, struct bb_worker *w)
{
	struct bb_result results[BB_INFLIGHT_MAX];
	bool open_loop = r->rate > 0;
	double period_ns = open_loop ? 1e9 * r->connections / r->rate : 0;
	uint64_t sched = 0; /* open loop: requests scheduled so far */
	int64_t sched_base = 0;
	bool preloading = w->preload_next < w->preload_end;
	bool stopping = false;

	for (;;) {
		if (preloading && w->preload_next >= w->preload_end && w->slot_count == 0) {
			preloading = false;
			w->preload_counted = false;
			atomic_fetch_sub(&r->preload_pending, 1);
			while (!atomic_load(&r->measuring) && !atomic_load(&r->stop))
				usleep(1000);
		}
		if (!preloading && !atomic_load(&r->measuring)) {
			while (!atomic_load(&r->measuring) && !atomic_load(&r->stop))
				usleep(1000);
		}
		if (!preloading && sched_base == 0) {
			sched_base = r->start_ns + (int64_t)(period_ns * w->index / r->connections);
		}
		if ((atomic_load(&r->stop) || interrupted) && !stopping) {
			stopping = true;
			if (open_loop && !preloading && sched_base != 0) {
				double due = (double)(bb_now_ns() - sched_base) / period_ns;
				if (due > (double)sched)
					w->unsent = (uint64_t)(due - (double)sched);
			}
		}
		if (stopping && w->slot_count == 0)
			break;

		int64_t now = bb_now_ns();
		while (!stopping && w->slot_count < r->inflight) {
			if (preloading && w->preload_next >= w->preload_end)
				break; /* the rest once every connection preloaded */
			int64_t intended = now;
			if (!preloading && open_loop) {
				intended = sched_base + (int64_t)(period_ns * (double)sched);
				if (intended > now)
					break;
			}
			if (!preloading && out_of_work(r, w)) {
				stopping = true; /* the opening is over for this connection */
				break;
			}
			if (!preloading && !take_ticket(r)) {
				stopping = true;
				break;
			}
			struct bb_slot *s = &w->slots[(w->slot_head + w->slot_count) % BB_INFLIGHT_MAX];
			make_op(r, w, s);
			assert(preloading || !s->preload);
			s->intended_ns = intended;
			s->sent_ns = now;
			int rc = w->drv->submit(w->conn, &s->op);
			if (rc < 0) {
				bb_errf(w->err, sizeof(w->err), "submit: %s", strerror(-rc));
				w->fatal = rc;
				atomic_store(&r->stop, true);
				return;
			}
			w->slot_count++;
			if (!preloading && open_loop)
				sched++;
		}
		if (w->slot_count == 0) {
			if (stopping)
				break;
			if (open_loop && !preloading) {
				int64_t next = sched_base + (int64_t)(period_ns * (double)sched);
				int64_t wait = next - bb_now_ns();
				if (wait > 2000000)
					wait = 2000000;
				if (wait > 0) {
					struct timespec ts = { 0, (long)wait };
					nanosleep(&ts, NULL);
				}
			}
			continue;
		}
		int64_t timeout = 50 * 1000000LL; /* check stop flags now and then */
		if (open_loop && !preloading && !stopping && w->slot_count < r->inflight) {
			int64_t next = sched_base + (int64_t)(period_ns * (double)sched);
			timeout = next - bb_now_ns();
			if (timeout < 0)
				timeout = 0;
		}
		int n = w->drv->poll(w->conn, results, (int)w->slot_count, timeout);
		if (n < 0) {
			bb_errf(w->err, sizeof(w->err), "connection lost: %s", strerror(-n));
			w->fatal = n;
			/* count what was outstanding as transport errors */
			now = bb_now_ns();
			while (w->slot_count > 0) {
				struct bb_slot *s = &w->slots[w->slot_head];
				struct bb_result res = { .code = BB_TRANSPORT };
				on_result(r, w, s, &res, now);
				w->slot_head = (w->slot_head + 1) % BB_INFLIGHT_MAX;
				w->slot_count--;
			}
			return;
		}
		now = bb_now_ns();
		for (int i = 0; i < n; i++) {
			assert(w->slot_count > 0);
			struct bb_slot *s = &w->slots[w->slot_head];
			on_result(r, w, s, &results[i], now);
			w->slot_head = (w->slot_head + 1) % BB_INFLIGHT_MAX;
			w->slot_count--;
		}
	}
	return;
}

/* ---- One run ---------------------------------------------------------- */

static void today_plus(int days, char out[11], int64_t *midnight_ms)
{
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	strftime(out, 11, "%Y-%m-%d", &tm);
	*midnight_ms = (int64_t)timegm(&tm) * 1000;
}

static uint32_t pick(long flag, uint32_t dflt)
{
	return flag >= 0 ? (uint32_t)flag : dflt;
}

static const struct bb_driver *driver_find(const char *name, size_t n)
{
	const struct bb_driver *all[] = { &bb_driver_pg, &bb_driver_http, &bb_driver_bin };
	for (unsigned i = 0; i < 3; i++)
		if (strlen(all[i]->name) == n && memcmp(all[i]->name, name, n) == 0)
			return all[i];
	return NULL;
}

static void machine_line(char *out, size_t size)
{
	struct utsname u;
	char model[128] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f != NULL) {
		char line[256];
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');
				if (p != NULL) {
					p++;
					while (*p == ' ')
						p++;
					p[strcspn(p, "\n")] = 0;
					snprintf(model, sizeof(model), "%s", p);
				}
				break;
			}
		fclose(f);
	}
	uname(&u);
	snprintf(out, size, "%ld cpus (%.64s), %.16s %.48s, load generator on the same machine",
		 sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release);
}

/* Runs one scenario on one driver; fills run. 0 or -1. */
static int run_one(const struct bb_driver *drv, int sc_id, struct bb_run *run)
{
	const struct bb_scenario *sc = &scenarios[sc_id];
	char err[BB_ERR_SIZE] = "";
	struct bb_runner r;
	uint64_t tagrnd = opts.seed ^ (uint64_t)bb_now_ns();

	memset(&r, 0, sizeof(r));
	memset(run, 0, sizeof(*run));
	snprintf(run->scenario, sizeof(run->scenario), "%s", sc->name);
	snprintf(run->driver, sizeof(run->driver), "%s", drv->name);
	r.drv = drv;
	r.sc = sc;
	r.connections = opts.connections;
	r.inflight = opts.inflight < drv->inflight_max ? opts.inflight : drv->inflight_max;
	r.rate = opts.rate;
	r.requests_max = opts.requests;
	snprintf(run->mode, sizeof(run->mode), "%s", r.rate > 0 ? "open" : "closed");
	run->connections = r.connections;
	run->inflight = r.inflight;
	run->rate = r.rate;

	struct bb_dataset *ds = calloc(1, sizeof(*ds));
	if (ds == NULL)
		bb_die("out of memory");
	run->ds = ds;
	r.ds = ds;
	ds->org_count = pick(opts.orgs, sc->orgs);
	ds->event_count = pick(opts.events, sc->events);
	r.customer_count = pick(opts.customers, sc->customers);
	ds->capacity = pick(opts.capacity, sc->capacity);
	ds->waitlist_capacity = pick(opts.waitlist, sc->waitlist ? sc->waitlist : r.customer_count);
	if (ds->org_count == 0 || ds->event_count == 0 || r.customer_count == 0)
		bb_die("--orgs, --events and --customers must be positive");
	if (ds->org_count > ds->event_count)
		ds->org_count = ds->event_count;
	today_plus(1, ds->day, &ds->day_ms);
	snprintf(ds->run_tag, sizeof(ds->run_tag), "%06" PRIx64, rnd_next(&tagrnd) & 0xffffff);
	snprintf(r.key_prefix, sizeof(r.key_prefix), "bb%s", ds->run_tag);

	fprintf(stderr,
		"bookbench: %s on %s: %u orgs, %u events (capacity %u, waitlist %u), %u customers; "
		"%u connections x %u in flight%s\n",
		sc->name, drv->name, ds->org_count, ds->event_count, ds->capacity,
		ds->waitlist_capacity, r.customer_count, r.connections, r.inflight,
		r.rate > 0 ? ", open loop" : ", closed loop");
	int64_t t0 = bb_now_ns();
	if (drv->setup(&opts.cfg, ds, err, sizeof(err)) < 0) {
		fprintf(stderr, "bookbench: %s setup failed: %s\n", drv->name, err);
		return -1;
	}
	fprintf(stderr, "bookbench: data set ready in %.1f s (run tag %s)\n",
		(double)(bb_now_ns() - t0) / 1e9, ds->run_tag);
	if (drv->describe != NULL)
		drv->describe(&opts.cfg, run->system, sizeof(run->system));

	r.workers = calloc(r.connections, sizeof(*r.workers));
	struct bb_worker_arg *args = calloc(r.connections, sizeof(*args));
	if (r.workers == NULL || args == NULL)
		bb_die("out of memory");
	uint64_t track_each = opts.track_max / r.connections + 1;
	uint64_t preload_total = sc->preload ? (uint64_t)ds->event_count *
						       (ds->capacity + ds->waitlist_capacity)
					     : 0;
	if (preload_total > r.customer_count)
		r.customer_count = (uint32_t)preload_total; /* preload uses customers 0.. */
	for (unsigned k = 0; k < r.connections; k++) {
		struct bb_worker *w = &r.workers[k];
		w->index = k;
		w->drv = drv;
		w->sc = sc;
		w->ds = ds;
		w->rng = opts.seed * 1000003u + k + 1;
		w->own = calloc(BB_OWN_MAX, sizeof(*w->own));
		w->ack_cap = track_each;
		w->acks = malloc(track_each * sizeof(*w->acks));
		if (w->own == NULL || w->acks == NULL)
			bb_die("out of memory");
		w->preload_next = preload_total * k / r.connections;
		w->preload_end = preload_total * (k + 1) / r.connections;
		bb_hist_reset(&w->hist);
		bb_hist_reset(&w->interval);
		for (int i = 0; i < BB_OP_KIND_COUNT; i++)
			bb_hist_reset(&w->hist_kind[i]);
		pthread_mutex_init(&w->lock, NULL);
		if (drv->open(&opts.cfg, &w->conn, err, sizeof(err)) < 0) {
			fprintf(stderr, "bookbench: connection %u: %s\n", k, err);
			return -1;
		}
	}
	unsigned preloaders = 0;
	for (unsigned k = 0; k < r.connections; k++) {
		struct bb_worker *w = &r.workers[k];
		w->preload_counted = w->preload_next < w->preload_end;
		preloaders += w->preload_counted;
	}
	atomic_store(&r.preload_pending, preloaders);
	atomic_store(&r.measuring, false);
	atomic_store(&r.stop, false);
	for (unsigned k = 0; k < r.connections; k++) {
		args[k].r = &r;
		args[k].w = &r.workers[k];
		if (pthread_create(&r.workers[k].thread, NULL, worker_run, &args[k]) != 0)
			bb_die("pthread_create failed");
	}
	if (preload_total > 0) {
		fprintf(stderr, "bookbench: preloading %" PRIu64 " bookings\n", preload_total);
		/* Workers that failed (bookd gone) end without their share. */
		while (atomic_load(&r.preload_pending) > 0 && !interrupted &&
		       atomic_load(&r.finished) < r.connections)
			usleep(10000);
	}
	run->timeline = calloc(BB_TIMELINE_MAX, sizeof(*run->timeline));
	if (run->timeline == NULL)
		bb_die("out of memory");
	bb_hist_reset(&run->hist);
	r.start_ns = bb_now_ns();
	atomic_store(&r.measuring, true);

	double duration = opts.duration_s;
	int64_t next_tick = r.start_ns + 1000000000LL;
	struct bb_hist *iv = malloc(sizeof(*iv));
	if (iv == NULL)
		bb_die("out of memory");
	bool done = false;
	while (!done) {
		int64_t now = bb_now_ns();
		int64_t sleep_ns = next_tick - now;
		if (sleep_ns > 0) {
			if (sleep_ns > 20000000)
				sleep_ns = 20000000;
			struct timespec ts = { 0, (long)sleep_ns };
			nanosleep(&ts, NULL);
		}
		now = bb_now_ns();
		double elapsed = (double)(now - r.start_ns) / 1e9;
		if (duration > 0 && elapsed >= duration)
			atomic_store(&r.stop, true);
		if (interrupted)
			atomic_store(&r.stop, true);
		if (atomic_load(&r.finished) == r.connections)
			atomic_store(&r.stop, true); /* every connection ran out of work */
		bool all_idle = atomic_load(&r.stop);
		if (now < next_tick && !all_idle)
			continue;
		if (all_idle) { /* wait for the workers to drain */
			for (unsigned k = 0; k < r.connections; k++)
				pthread_join(r.workers[k].thread, NULL);
			done = true;
			now = bb_now_ns();
			elapsed = (double)(now - r.start_ns) / 1e9;
		}
		bb_hist_reset(iv);
		uint64_t errors = 0;
		for (unsigned k = 0; k < r.connections; k++) {
			struct bb_worker *w = &r.workers[k];
			pthread_mutex_lock(&w->lock);
			bb_hist_add(iv, &w->interval);
			errors += w->interval_errors;
			bb_hist_reset(&w->interval);
			w->interval_errors = 0;
			pthread_mutex_unlock(&w->lock);
		}
		bb_hist_add(&run->hist, iv);
		double span = run->timeline_count > 0
				      ? elapsed - run->timeline[run->timeline_count - 1].t
				      : elapsed;
		if (run->timeline_count < BB_TIMELINE_MAX && (iv->count > 0 || !done)) {
			struct bb_second *s = &run->timeline[run->timeline_count++];
			s->t = elapsed;
			s->count = iv->count;
			s->errors = errors;
			s->p50_ns = bb_hist_quantile(iv, 0.50);
			s->p99_ns = bb_hist_quantile(iv, 0.99);
			s->max_ns = iv->max_ns;
		}
		if (!opts.quiet)
			fprintf(stderr,
				"[%6.1fs] %9.0f req/s  p50 %8.3f ms  p99 %8.3f ms  errors %" PRIu64
				"  total %" PRIu64 "\n",
				elapsed, span > 0 ? (double)iv->count / span : 0,
				(double)bb_hist_quantile(iv, 0.5) / 1e6,
				(double)bb_hist_quantile(iv, 0.99) / 1e6, errors, run->hist.count);
		next_tick += 1000000000LL;
		if (!done && opts.requests > 0 && atomic_load(&r.tickets) >= opts.requests)
			atomic_store(&r.stop, true);
	}
	free(iv);
	r.end_ns = bb_now_ns();
	run->elapsed_s = (double)(r.end_ns - r.start_ns) / 1e9;

	int fatal = 0;
	for (int i = 0; i < BB_OP_KIND_COUNT; i++)
		bb_hist_reset(&run->hist_kind[i]);
	for (unsigned k = 0; k < r.connections; k++) {
		struct bb_worker *w = &r.workers[k];
		for (int i = 0; i < BB_CODE_COUNT; i++)
			run->by_code[i] += w->by_code[i];
		for (int i = 0; i < BB_OP_KIND_COUNT; i++) {
			run->by_kind[i] += w->by_kind[i];
			bb_hist_add(&run->hist_kind[i], &w->hist_kind[i]);
		}
		run->bookings_acked += w->bookings_acked;
		run->cancels_acked += w->cancels_acked;
		run->promotions += w->promotions;
		run->unsent += w->unsent;
		if (w->fatal != 0) {
			fatal++;
			if (fatal <= 3)
				fprintf(stderr, "bookbench: connection %u: %s\n", k, w->err);
		}
		drv->close(w->conn);
		w->conn = NULL;
	}
	run->count = run->hist.count;
	uint64_t errors = bb_run_errors(run);
	run->error_pct = run->count ? 100.0 * (double)errors / (double)run->count : 0;
	if (run->count == 0)
		snprintf(run->failed, sizeof(run->failed), "no request was answered");
	else if (run->error_pct > opts.max_error_pct)
		snprintf(run->failed, sizeof(run->failed),
			 "%.1f%% of the answers were errors (%" PRIu64 " of %" PRIu64
			 "%s), over the %g%% allowed (--max-error-pct): its rates are not a result",
			 run->error_pct, errors, run->count,
			 run->by_code[BB_RATE_LIMITED] > errors / 2
				 ? ", mostly 429: bookd's rate limits" : "",
			 opts.max_error_pct);
	bb_report_table(run, stdout);
	if (run->failed[0])
		fprintf(stderr, "bookbench: %s on %s FAILED: %s\n", sc->name, drv->name,
			run->failed);
	if (run->by_code[BB_RATE_LIMITED] > 0 && drv == &bb_driver_http)
		printf("  note: bookd refused %" PRIu64 " requests with 429 (its rate limits: "
		       "--service-rate for the service key, --address-rate per client "
		       "address; --sources N spreads the connections over N loopback "
		       "addresses)\n",
		       run->by_code[BB_RATE_LIMITED]);

	if (!opts.no_check) {
		fprintf(stderr, "bookbench: checking %s on %s\n", sc->name, drv->name);
		bb_check(&opts, &r, run);
		printf("check (%s on %s): %s\n%s", sc->name, drv->name,
		       run->check_problems == 0 ? "OK" : "PROBLEMS FOUND", run->check_report);
	}
	fflush(stdout);
	for (unsigned k = 0; k < r.connections; k++) {
		free(r.workers[k].own);
		free(r.workers[k].acks);
		pthread_mutex_destroy(&r.workers[k].lock);
	}
	free(r.workers);
	free(args);
	return fatal > 0 && run->count == 0 ? -1 : 0;
}

/* ---- Starting a bookd (compare, tests) --------------------------------- */

static pid_t bookd_pid;
static char bookd_dir[256];
static char repl_db[64]; /* the fresh database of --bookd-replicate */

static int free_port(void);

static void bookd_stop(void)
{
	if (bookd_pid <= 0)
		return;
	kill(bookd_pid, SIGTERM);
	int status = 0;
	for (int i = 0; i < 300; i++) {
		if (waitpid(bookd_pid, &status, WNOHANG) == bookd_pid) {
			bookd_pid = 0;
			break;
		}
		usleep(20000);
	}
	if (bookd_pid > 0) {
		kill(bookd_pid, SIGKILL);
		waitpid(bookd_pid, &status, 0);
		bookd_pid = 0;
	}
	if (repl_db[0] != 0) {
		if (bb_pg_drop_db(opts.cfg.database_url, repl_db) < 0)
			fprintf(stderr, "bookbench: could not drop database %s\n", repl_db);
		repl_db[0] = 0;
	}
	if (bookd_dir[0] != 0) {
		char cmd[320];
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", bookd_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bookbench: could not remove %s\n", bookd_dir);
		bookd_dir[0] = 0;
	}
}

static struct bb_bookd_info bookd_info;

/* `path --version`: "bookd 0.1.0 (Release)". */
static void bookd_info_of(const char *path)
{
	char cmd[600], line[128];
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", path);
	bookd_info.started = true;
	bookd_info.limits_off = !opts.bookd_limits;
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return;
	if (fgets(line, sizeof(line), p) != NULL &&
	    sscanf(line, "bookd %31s (%47[^)])", bookd_info.version, bookd_info.build_type) == 2)
		snprintf(bookd_info.source, sizeof(bookd_info.source), "--version");
	else
		bookd_info.version[0] = bookd_info.build_type[0] = 0;
	pclose(p);
}

static void bookd_start(const char *path)
{
	static char http_addr[64], bin_addr[64], key[64];
	snprintf(bookd_dir, sizeof(bookd_dir), "/tmp/bookbench-bookd.XXXXXX");
	if (mkdtemp(bookd_dir) == NULL)
		bb_die("mkdtemp: %s", strerror(errno));
	int hp = free_port(), bp = free_port();
	while (bp == hp)
		bp = free_port();
	snprintf(http_addr, sizeof(http_addr), "127.0.0.1:%d", hp);
	snprintf(bin_addr, sizeof(bin_addr), "127.0.0.1:%d", bp);
	if (opts.cfg.service_key == NULL) {
		snprintf(key, sizeof(key), "bookbench-%08" PRIx64, (uint64_t)bb_now_ns() & 0xffffffff);
		opts.cfg.service_key = key;
	}
	opts.cfg.http_addr = http_addr;
	opts.cfg.binary_addr = bin_addr;
	static char repl_url[1024];
	if (opts.bookd_replicate) {
		char err[BB_ERR_SIZE];
		if (opts.cfg.database_url == NULL)
			bb_die("--bookd-replicate needs DATABASE_URL");
		snprintf(repl_db, sizeof(repl_db), "bookbench_repl_%d", (int)getpid());
		if (bb_pg_create_db(opts.cfg.database_url, repl_db, repl_url, sizeof(repl_url), err,
				    sizeof(err)) < 0)
			bb_die("%s", err);
		opts.replica_url = repl_url;
		fprintf(stderr, "bookbench: the bookd replicates into a fresh database %s\n", repl_db);
	}
	char log_path[300];
	snprintf(log_path, sizeof(log_path), "%s/bookd.log", bookd_dir);
	pid_t pid = fork();
	if (pid < 0)
		bb_die("fork: %s", strerror(errno));
	if (pid == 0) {
		FILE *lf = freopen(log_path, "w", stderr);
		(void)lf;
		setenv("BOOKD_LISTEN", http_addr, 1);
		setenv("BOOKD_BINARY_LISTEN", bin_addr, 1);
		setenv("BOOKD_DATA_DIR", bookd_dir, 1);
		setenv("BOOKD_SERVICE_KEY", opts.cfg.service_key, 1);
		if (!opts.bookd_limits) {
			setenv("BOOKD_ADDRESS_RATE", "0", 1);
			setenv("BOOKD_CUSTOMER_RATE", "0", 1);
			setenv("BOOKD_ANON_RATE", "0", 1);
			setenv("BOOKD_SERVICE_RATE", "0", 1);
		}
		if (opts.bookd_replicate)
			setenv("DATABASE_URL", opts.replica_url, 1);
		else
			unsetenv("DATABASE_URL");
		execl(path, path, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	bookd_pid = pid;
	for (int i = 0; i < 300; i++) {
		if (bb_http_health(&opts.cfg) == 0) {
			fprintf(stderr, "bookbench: started %s (pid %d): HTTP %s, binary %s, data %s\n",
				path, (int)pid, http_addr, bin_addr, bookd_dir);
			fprintf(stderr, "bookbench: %s\n",
				opts.bookd_limits
					? "the started bookd keeps its rate limits (--bookd-limits)"
					: "the started bookd runs with its rate limits off "
					  "(BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0 "
					  "BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0; "
					  "--bookd-limits keeps them)");
			bookd_info_of(path);
			return;
		}
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			bookd_pid = 0;
			bb_die("%s exited during start-up (see %s)", path, log_path);
		}
		usleep(50000);
	}
	bookd_stop();
	bb_die("%s did not answer /health within 15 s", path);
}

#include <netinet/in.h>
#include <sys/socket.h>

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		bb_die("socket: %s", strerror(errno));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bb_die("bind: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: bookbench COMMAND [flags]\n"
"\n"
"commands:\n"
"  run             one driver (--driver), one or more scenarios (--scenario)\n"
"  baseline        run --driver baseline-pg (the seed's design in PostgreSQL)\n"
"  setup-baseline  create the baseline schema in DATABASE_URL and exit\n"
"  compare         each scenario on the baseline and on bookd, same client counts;\n"
"                  prints the ratios\n"
"\n"
"scenarios (--scenario a,b,...):\n");
	for (int i = 0; i < SC_COUNT; i++)
		fprintf(f, "  %-13s %s (defaults: %u events, %u customers, %u orgs, capacity %u)\n",
			scenarios[i].name, scenarios[i].what, scenarios[i].events,
			scenarios[i].customers, scenarios[i].orgs, scenarios[i].capacity);
	fprintf(f,
"\n"
"flags:\n"
"  --driver NAME        baseline-pg | bookd-binary | bookd-http (run); compare:\n"
"                       comma list, default baseline-pg,bookd-binary\n"
"  --scenario LIST      default opening\n"
"  --connections N      connections, one thread each (default 16)\n"
"  --inflight P         requests in flight per connection (default 1; the\n"
"                       baseline takes 1: one transaction per connection)\n"
"  --rate R             open loop: R requests/s in total, latency from the\n"
"                       intended send time (default: closed loop)\n"
"  --duration S         seconds per run (default 10 unless --requests)\n"
"  --requests N         stop after N requests\n"
"  --events N --customers N --orgs N --capacity N --waitlist N   data set size\n"
"  --replay-pct P       %% of requests that replay an earlier decision with the\n"
"                       same idempotency key, checked equal (default 1)\n"
"  --seed S             random seed (default 1; printed)\n"
"  --out DIR            result.json and report.html go here (default bookbench-out)\n"
"  --http ADDR          bookd HTTP (BOOKD_LISTEN, default 127.0.0.1:8080)\n"
"  --binary ADDR        bookd binary (BOOKD_BINARY_LISTEN, default 127.0.0.1:7070)\n"
"  --key KEY            service key (BOOKD_SERVICE_KEY)\n"
"  --bookd PATH         start this bookd on a temp dir and free ports, stop it at the end\n"
"  --bookd-limits       the started bookd keeps its rate limits (default: it runs\n"
"                       with BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0\n"
"                       BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0, and says so)\n"
"  --max-error-pct P    a run whose errors (429, 5xx, lost connections, replays\n"
"                       that differ, ...) exceed P%% of its answers fails: exit 4\n"
"                       (default 1)\n"
"  --bookd-replicate    the started bookd replicates into a fresh database next to\n"
"                       DATABASE_URL's (dropped at the end); else embedded mode\n"
"  --database-url URL   PostgreSQL (DATABASE_URL): the baseline; and for bookd runs\n"
"                       (not started by bookbench) the replication check: if the\n"
"                       bookd says it replicates, its tables are compared\n"
"  --baseline-sql DIR   the baseline's SQL files (default: the source tree's)\n"
"  --pg-durable         ALTER SYSTEM SET fsync = on, synchronous_commit = on before\n"
"                       the baseline (a test cluster may run with fsync off)\n"
"  --no-check           skip the correctness check after each run\n"
"  --check-wait S       how long to wait for replication to catch up (default 60)\n"
"  --track-max N        acknowledged bookings kept for the check (default 4000000)\n"
"  --sources N          bookd-http to a loopback address: spread the connections\n"
"                       over N source addresses 127.0.0.2.. (bookd rate-limits\n"
"                       HTTP per client address; a real peak comes from many)\n"
"  --batch N            bookd-binary: send consecutive bookings of a connection as\n"
"                       one book.batch frame of up to N (each still one request,\n"
"                       with its own answer and latency)\n"
"  --quiet              no progress line\n"
"  --version            the version and build type\n");
	fprintf(f, "\ndrivers built: baseline-pg bookd-http%s\n",
		bb_driver_bin.submit != NULL ? " bookd-binary" : "");
}

static int scenario_list(const char *list, int *ids)
{
	int n = 0;
	const char *p = list;
	while (*p != 0) {
		size_t len = strcspn(p, ",");
		int id = scenario_find(p, len);
		if (id < 0)
			bb_die("unknown scenario '%.*s' (see --help)", (int)len, p);
		if (n == BB_SCENARIO_MAX)
			bb_die("too many scenarios");
		ids[n++] = id;
		p += len;
		if (*p == ',')
			p++;
	}
	return n;
}

static void write_reports(struct bb_run **runs, unsigned n, bool uses_bookd)
{
	const struct bb_bookd_info *bookd = uses_bookd ? &bookd_info : NULL;
	char path[512], machine[256];
	machine_line(machine, sizeof(machine));
	mkdir(opts.out_dir, 0755);
	snprintf(path, sizeof(path), "%s/result.json", opts.out_dir);
	if (bb_report_json((const struct bb_run *const *)runs, n, command_line, machine, bookd, path) < 0)
		fprintf(stderr, "bookbench: cannot write %s\n", path);
	else
		fprintf(stderr, "bookbench: wrote %s\n", path);
	snprintf(path, sizeof(path), "%s/report.html", opts.out_dir);
	if (bb_report_html((const struct bb_run *const *)runs, n, command_line, machine, bookd, path) < 0)
		fprintf(stderr, "bookbench: cannot write %s\n", path);
	else
		fprintf(stderr, "bookbench: wrote %s\n", path);
}

int main(int argc, char **argv)
{
	enum {
		O_DRIVER = 256, O_SCENARIO, O_CONN, O_INFLIGHT, O_RATE, O_DURATION, O_REQUESTS,
		O_EVENTS, O_CUSTOMERS, O_ORGS, O_CAPACITY, O_WAITLIST, O_SEED, O_OUT, O_HTTP,
		O_BINARY, O_KEY, O_BOOKD, O_REPLICATE, O_DBURL, O_SQL, O_DURABLE, O_NOCHECK,
		O_CHECKWAIT, O_TRACK, O_QUIET, O_REPLAY, O_SOURCES, O_BATCH, O_LIMITS, O_MAXERR,
		O_HELP
	};
	static const struct option longs[] = {
		{ "driver", 1, 0, O_DRIVER }, { "scenario", 1, 0, O_SCENARIO },
		{ "connections", 1, 0, O_CONN }, { "inflight", 1, 0, O_INFLIGHT },
		{ "rate", 1, 0, O_RATE }, { "duration", 1, 0, O_DURATION },
		{ "requests", 1, 0, O_REQUESTS }, { "events", 1, 0, O_EVENTS },
		{ "customers", 1, 0, O_CUSTOMERS }, { "orgs", 1, 0, O_ORGS },
		{ "capacity", 1, 0, O_CAPACITY }, { "waitlist", 1, 0, O_WAITLIST },
		{ "seed", 1, 0, O_SEED }, { "out", 1, 0, O_OUT }, { "http", 1, 0, O_HTTP },
		{ "binary", 1, 0, O_BINARY }, { "key", 1, 0, O_KEY }, { "bookd", 1, 0, O_BOOKD },
		{ "bookd-replicate", 0, 0, O_REPLICATE }, { "database-url", 1, 0, O_DBURL },
		{ "baseline-sql", 1, 0, O_SQL }, { "pg-durable", 0, 0, O_DURABLE },
		{ "no-check", 0, 0, O_NOCHECK }, { "check-wait", 1, 0, O_CHECKWAIT },
		{ "track-max", 1, 0, O_TRACK }, { "quiet", 0, 0, O_QUIET },
		{ "replay-pct", 1, 0, O_REPLAY }, { "sources", 1, 0, O_SOURCES },
		{ "batch", 1, 0, O_BATCH }, { "bookd-limits", 0, 0, O_LIMITS },
		{ "max-error-pct", 1, 0, O_MAXERR },
		{ "help", 0, 0, O_HELP }, { 0, 0, 0, 0 }
	};

	size_t used = 0;
	for (int i = 0; i < argc && used + 2 < sizeof(command_line); i++)
		used += (size_t)snprintf(command_line + used, sizeof(command_line) - used, "%s%s",
					 i ? " " : "", argv[i]);
	if (used >= sizeof(command_line))
		command_line[sizeof(command_line) - 1] = 0;

	opts.connections = 16;
	opts.inflight = 1;
	opts.events = opts.customers = opts.orgs = opts.capacity = opts.waitlist = -1;
	opts.seed = 1;
	opts.out_dir = "bookbench-out";
	opts.replay_pct = 1;
	opts.track_max = 4000000;
	opts.check_wait_s = 60;
	opts.max_error_pct = 1;
	opts.scenarios = "opening";
	opts.cfg.database_url = getenv("DATABASE_URL");
	opts.cfg.http_addr = getenv("BOOKD_LISTEN") ? getenv("BOOKD_LISTEN") : "127.0.0.1:8080";
	opts.cfg.binary_addr = getenv("BOOKD_BINARY_LISTEN") ? getenv("BOOKD_BINARY_LISTEN")
							   : "127.0.0.1:7070";
	opts.cfg.service_key = getenv("BOOKD_SERVICE_KEY");
#ifdef BOOKBENCH_BASELINE_DIR
	opts.cfg.baseline_sql_dir = BOOKBENCH_BASELINE_DIR;
#endif
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("bookbench %s (%s)\n", BOOKD_VERSION, BOOKD_BUILD_TYPE);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	opts.command = argv[1];
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case O_DRIVER: opts.drivers = optarg; break;
		case O_SCENARIO: opts.scenarios = optarg; break;
		case O_CONN: opts.connections = (unsigned)atoi(optarg); break;
		case O_INFLIGHT: opts.inflight = (unsigned)atoi(optarg); break;
		case O_RATE: opts.rate = atof(optarg); break;
		case O_DURATION: opts.duration_s = atof(optarg); break;
		case O_REQUESTS: opts.requests = strtoull(optarg, NULL, 10); break;
		case O_EVENTS: opts.events = atol(optarg); break;
		case O_CUSTOMERS: opts.customers = atol(optarg); break;
		case O_ORGS: opts.orgs = atol(optarg); break;
		case O_CAPACITY: opts.capacity = atol(optarg); break;
		case O_WAITLIST: opts.waitlist = atol(optarg); break;
		case O_SEED: opts.seed = strtoull(optarg, NULL, 10); break;
		case O_OUT: opts.out_dir = optarg; break;
		case O_HTTP: opts.cfg.http_addr = optarg; break;
		case O_BINARY: opts.cfg.binary_addr = optarg; break;
		case O_KEY: opts.cfg.service_key = optarg; break;
		case O_BOOKD: opts.bookd_path = optarg; break;
		case O_REPLICATE: opts.bookd_replicate = true; break;
		case O_DBURL: opts.cfg.database_url = optarg; break;
		case O_SQL: opts.cfg.baseline_sql_dir = optarg; break;
		case O_DURABLE: opts.cfg.pg_durable = true; break;
		case O_NOCHECK: opts.no_check = true; break;
		case O_CHECKWAIT: opts.check_wait_s = atof(optarg); break;
		case O_TRACK: opts.track_max = strtoull(optarg, NULL, 10); break;
		case O_QUIET: opts.quiet = true; break;
		case O_REPLAY: opts.replay_pct = (unsigned)atoi(optarg); break;
		case O_SOURCES: opts.cfg.source_count = (unsigned)atoi(optarg); break;
		case O_BATCH: opts.cfg.batch = (unsigned)atoi(optarg); break;
		case O_LIMITS: opts.bookd_limits = true; break;
		case O_MAXERR: opts.max_error_pct = atof(optarg); break;
		case O_HELP: case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc)
		bb_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (opts.connections == 0 || opts.connections > BB_CONN_MAX)
		bb_die("--connections must be 1..%d", BB_CONN_MAX);
	if (opts.inflight == 0 || opts.inflight > BB_INFLIGHT_MAX)
		bb_die("--inflight must be 1..%d", BB_INFLIGHT_MAX);
	if (opts.replay_pct > 50)
		bb_die("--replay-pct must be 0..50");
	if (opts.duration_s <= 0 && opts.requests == 0)
		opts.duration_s = 10;
	if (opts.rate < 0)
		bb_die("--rate must be positive");
	if (!(opts.max_error_pct >= 0 && opts.max_error_pct <= 100))
		bb_die("--max-error-pct must be 0..100");
	signal(SIGINT, on_sigint);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "bookbench: seed %" PRIu64 "\n", opts.seed);

	if (strcmp(opts.command, "setup-baseline") == 0) {
		char err[BB_ERR_SIZE];
		if (bb_pg_setup_schema(&opts.cfg, err, sizeof(err)) < 0)
			bb_die("%s", err);
		fprintf(stderr, "bookbench: baseline schema ready\n");
		return 0;
	}

	const struct bb_driver *drivers[4];
	unsigned driver_count = 0;
	bool compare = false;
	if (strcmp(opts.command, "baseline") == 0) {
		drivers[driver_count++] = &bb_driver_pg;
	} else if (strcmp(opts.command, "run") == 0 || strcmp(opts.command, "compare") == 0) {
		compare = strcmp(opts.command, "compare") == 0;
		const char *list = opts.drivers;
		if (list == NULL) {
			if (!compare)
				bb_die("run needs --driver (see --help)");
			list = bb_driver_bin.submit != NULL ? "baseline-pg,bookd-binary"
							    : "baseline-pg,bookd-http";
		}
		const char *p = list;
		while (*p != 0) {
			size_t len = strcspn(p, ",");
			const struct bb_driver *d = driver_find(p, len);
			if (d == NULL)
				bb_die("unknown driver '%.*s'", (int)len, p);
			if (d->submit == NULL)
				bb_die("driver %s was not built (no bookd_client library)", d->name);
			if (driver_count == 4)
				bb_die("too many drivers");
			drivers[driver_count++] = d;
			p += len;
			if (*p == ',')
				p++;
		}
		if (!compare && driver_count != 1)
			bb_die("run takes one --driver; compare takes several");
	} else {
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < driver_count; i++) {
		if (drivers[i] == &bb_driver_pg && opts.cfg.database_url == NULL)
			bb_die("the baseline needs DATABASE_URL or --database-url");
		if (drivers[i] != &bb_driver_pg && opts.cfg.service_key == NULL &&
		    opts.bookd_path == NULL)
			bb_die("bookd drivers need a service key: --key or BOOKD_SERVICE_KEY");
	}
	bool uses_bookd = false;
	for (unsigned i = 0; i < driver_count; i++)
		uses_bookd |= drivers[i] != &bb_driver_pg;
	if (uses_bookd && opts.bookd_path == NULL)
		opts.replica_url = opts.cfg.database_url; /* a bookd of yours may replicate there */
	if (uses_bookd && opts.bookd_path != NULL)
		bookd_start(opts.bookd_path);

	int sc_ids[BB_SCENARIO_MAX];
	int sc_count = scenario_list(opts.scenarios, sc_ids);
	struct bb_run *runs[BB_SCENARIO_MAX * 4];
	unsigned run_count = 0;
	int failed = 0, problems = 0, over_budget = 0;
	for (int s = 0; s < sc_count && !interrupted; s++) {
		for (unsigned d = 0; d < driver_count && !interrupted; d++) {
			struct bb_run *run = calloc(1, sizeof(*run));
			if (run == NULL)
				bb_die("out of memory");
			if (run_one(drivers[d], sc_ids[s], run) < 0) {
				failed++;
				free(run);
				continue;
			}
			if (run->check_problems > 0)
				problems++;
			if (run->failed[0])
				over_budget++;
			runs[run_count++] = run;
		}
	}
	if (compare)
		bb_report_compare((const struct bb_run *const *)runs, run_count, stdout);
	if (uses_bookd && !bookd_info.started && bb_bookd_version(&opts.cfg, &bookd_info) == 0)
		snprintf(bookd_info.source, sizeof(bookd_info.source), "admin/status");
	if (run_count > 0)
		write_reports(runs, run_count, uses_bookd);
	bookd_stop();
	for (unsigned i = 0; i < run_count; i++) {
		free(runs[i]->timeline);
		free(runs[i]->ds->org_ids);
		free(runs[i]->ds->event_ids);
		free(runs[i]->ds->event_org);
		free(runs[i]->ds);
		free(runs[i]);
	}
	if (failed > 0)
		return 1;
	if (problems > 0)
		return 3;
	if (over_budget > 0) {
		fprintf(stderr, "bookbench: %d run(s) FAILED: errors over %g%% of the answers "
				"(see above)\n", over_budget, opts.max_error_pct);
		return 4;
	}
	return interrupted ? 130 : 0;
}
