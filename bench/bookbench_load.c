/*
 * bookbench_load.c: one run of one scenario on one driver.
 *  - The data set is made through the driver (setup), then --connections
 *    connections, split over --threads threads (default: the online CPUs,
 *    at most --connections); a scenario that preloads fills its events
 *    first, unmeasured, and every connection waits for the others.
 *  - Each thread is an event loop over its connections. A connection keeps
 *    its own state (struct bb_worker: slots, open-loop schedule, preload,
 *    acks, histograms) and a phase (preload, barrier, measure, drain); a
 *    step of it never waits: it takes the answers when its descriptor was
 *    ready (the driver's poll with timeout 0) and submits what it may (the
 *    driver's flush sends it). When no step made progress the thread waits
 *    on all its connections' descriptors at once (ppoll, the driver's fd)
 *    until the nearest due time; a connection waiting alone waits in its
 *    driver's poll, so --threads = --connections drives as one blocking
 *    thread per connection did. Fewer threads than connections cost the
 *    client fewer context switches on a machine the server shares.
 *  - Closed loop: each connection keeps --inflight requests outstanding and
 *    sends the next as soon as one answers; latency is from the send.
 *  - Open loop (--rate R): R/s split evenly over the connections, each with
 *    a fixed schedule of intended send times; latency is measured from the
 *    intended time, not the actual send, so a stalled server is charged for
 *    the requests it kept waiting (no coordinated omission). A window of
 *    --inflight bounds what is outstanding; what was due and not sent when
 *    the run ended is counted (unsent).
 *  - Bounded: --duration, --requests (tickets taken from one counter), the
 *    end of an opening, SIGINT; a connection that fails stops the run and
 *    its outstanding requests count as transport errors.
 *  - The main thread wakes each second, folds the connections' interval
 *    histograms (under each worker's lock) into the timeline and prints the
 *    progress line; at the end the per-connection totals are added up, the
 *    error budget (--max-error-pct) is applied and the check is run.
 */
#include "bookbench_internal.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* The oldest outstanding request has its answer res (answers come in submit
 * order): accounted, its slot freed. */
static void slot_answered(struct bb_runner *r, struct bb_worker *w,
			  struct bb_result *res, int64_t now)
{
	ASSERT(w->slot_count > 0);
	struct bb_slot *s = &w->slots[w->slot_head];
	bb_scenario_answer(r, w, s, res, now);
	w->slot_head = (w->slot_head + 1) % BB_INFLIGHT_MAX;
	w->slot_count--;
}

/* The connection is over: counted as finished (and out of the preload when
 * it ended before its share was done). */
static void conn_done(struct bb_runner *r, struct bb_worker *w)
{
	w->phase = BB_DONE;
	if (w->preload_counted)
		atomic_fetch_sub(&r->preload_pending, 1);
	w->preload_counted = false;
	atomic_fetch_add(&r->finished, 1);
}

/* The connection failed (rc: -errno): over, what was outstanding counted
 * as transport errors. */
static void conn_lost(struct bb_runner *r, struct bb_worker *w, int rc)
{
	int64_t now = bb_now_ns();
	bb_errf(w->err, sizeof(w->err), "connection lost: %s", strerror(-rc));
	w->fatal = rc;
	while (w->slot_count > 0) {
		struct bb_result res = { .code = BB_TRANSPORT };
		slot_answered(r, w, &res, now);
	}
	conn_done(r, w);
}

/* Takes w's answers, waiting up to timeout_ns for one (0: never waits).
 * How many, or -1 when the connection failed (conn_lost). */
static int take_answers(struct bb_runner *r, struct bb_worker *w,
			int64_t timeout_ns)
{
	struct bb_result results[BB_INFLIGHT_MAX];
	int n = w->drv->poll(w->conn, results, (int)w->slot_count, timeout_ns);
	int64_t now = bb_now_ns();
	if (n < 0) {
		conn_lost(r, w, n);
		return -1;
	}
	ASSERT(n <= (int)w->slot_count); /* poll's max: at most what is out */
	for (int i = 0; i < n; i++)
		slot_answered(r, w, &results[i], now);
	return n;
}

/* Open loop: the time between two sends of a connection. */
static double period_ns(const struct bb_runner *r)
{
	ASSERT(r->rate > 0);
	return 1e9 * r->connections / r->rate;
}

/* Open loop: when w's next request is due. */
static int64_t intended_next(const struct bb_runner *r,
			     const struct bb_worker *w)
{
	return w->sched_base + (int64_t)(period_ns(r) * (double)w->sched);
}

/* Submits what w may send now, without waiting: up to --inflight
 * outstanding; preloading, its share; measuring, in an open loop what fell
 * due (the next due time lowers *wake). How many, or -1 when a submit
 * failed (the run stops). */
static int top_up(struct bb_runner *r, struct bb_worker *w, int64_t *wake)
{
	bool preloading = w->phase == BB_PRELOAD;
	int sent = 0;

	if ((!preloading && w->phase != BB_MEASURE) ||
	    w->slot_count >= r->inflight)
		return 0;
	int64_t now = bb_now_ns();
	while (w->slot_count < r->inflight) {
		if (preloading && w->preload_next >= w->preload_end)
			break; /* the rest once every connection preloaded */
		int64_t intended = now;
		if (!preloading && r->rate > 0) {
			intended = intended_next(r, w);
			if (intended > now) {
				if (intended < *wake)
					*wake = intended;
				break;
			}
		}
		/* the opening is over for this connection, or no ticket */
		if (!preloading &&
		    (bb_scenario_done(r, w) || !take_ticket(r))) {
			w->phase = BB_DRAIN;
			break;
		}
		struct bb_slot *s = &w->slots[(w->slot_head + w->slot_count) %
					      BB_INFLIGHT_MAX];
		bb_scenario_next(r, w, s);
		ASSERT(preloading || !s->preload);
		s->intended_ns = intended;
		s->sent_ns = now;
		int rc = w->drv->submit(w->conn, &s->op);
		if (rc < 0) {
			bb_errf(w->err, sizeof(w->err), "submit: %s",
				strerror(-rc));
			w->fatal = rc;
			atomic_store(&r->stop, true);
			conn_done(r, w);
			return -1;
		}
		w->slot_count++;
		ASSERT(w->slot_count <= r->inflight);
		if (!preloading && r->rate > 0)
			w->sched++;
		sent++;
	}
	return sent;
}

/* One step of connection w, never waiting: its phase moved on, the answers
 * taken when its descriptor was ready, what may be sent submitted and
 * flushed. True when it sent or took something; *wake lowered to when it
 * wants a step though its descriptor is not ready. */
static bool conn_step(struct bb_runner *r, struct bb_worker *w, int64_t *wake)
{
	int took = 0, sent;

	if (w->phase == BB_PRELOAD && w->preload_next >= w->preload_end &&
	    w->slot_count == 0) {
		w->phase = BB_BARRIER;
		w->preload_counted = false;
		atomic_fetch_sub(&r->preload_pending, 1);
	}
	bool stop = atomic_load(&r->stop) || bb_interrupted;
	if (w->phase == BB_BARRIER && !stop) {
		if (!atomic_load(&r->measuring)) {
			int64_t soon = bb_now_ns() + 1000000;
			if (soon < *wake)
				*wake = soon;
			return false;
		}
		w->phase = BB_MEASURE;
		if (r->rate > 0)
			w->sched_base = r->start_ns +
					(int64_t)(period_ns(r) * w->index /
						  r->connections);
	}
	if (stop && w->phase != BB_DRAIN) {
		if (w->phase == BB_MEASURE && r->rate > 0) {
			double due = (double)(bb_now_ns() - w->sched_base) /
				     period_ns(r);
			if (due > (double)w->sched)
				w->unsent = (uint64_t)(due - (double)w->sched);
		}
		w->phase = BB_DRAIN;
	}
	if (w->ready && w->slot_count > 0) {
		took = take_answers(r, w, 0);
		if (took < 0)
			return true;
	}
	w->ready = false;
	sent = top_up(r, w, wake);
	if (sent < 0)
		return true;
	if (sent > 0) {
		int rc = w->drv->flush(w->conn);
		if (rc < 0) {
			conn_lost(r, w, rc);
			return true;
		}
		w->ready =
			rc > 0; /* answered already: taken at the next step */
	}
	if (w->phase == BB_DRAIN && w->slot_count == 0)
		conn_done(r, w);
	return took > 0 || sent > 0;
}

/* A load thread: connections [first, first + count) of the run. */
struct bb_thread {
	pthread_t thread;
	struct bb_runner *r;
	unsigned first, count;
};

/* The event loop over the thread's connections: steps each, then asks
 * which descriptors are ready (ppoll): without waiting when a step made
 * progress, else until one is or the nearest due time (open loop, the
 * barrier), at most 50 ms (the stop flags). A connection waiting alone
 * waits in its driver's poll, as one thread per connection did. */
static void *thread_run(void *arg)
{
	struct bb_thread *t = arg;
	struct bb_runner *r = t->r;
	struct bb_worker *ws = r->workers + t->first;
	struct pollfd *pfd = calloc(t->count, sizeof(*pfd));
	struct bb_worker **pw = calloc(t->count, sizeof(*pw));
	if (pfd == NULL || pw == NULL)
		bb_die("out of memory");

	for (;;) {
		int64_t wake = bb_now_ns() + 50 * 1000000LL;
		bool progress = false;
		unsigned live = 0;
		for (unsigned i = 0; i < t->count; i++) {
			if (ws[i].phase == BB_DONE)
				continue;
			progress |= conn_step(r, &ws[i], &wake);
			live += ws[i].phase != BB_DONE;
		}
		if (live == 0)
			break;
		nfds_t n = 0;
		for (unsigned i = 0; i < t->count; i++) {
			if (ws[i].phase == BB_DONE || ws[i].slot_count == 0)
				continue;
			pw[n] = &ws[i];
			pfd[n].fd = ws[i].drv->fd(ws[i].conn, &pfd[n].events);
			n++;
		}
		if (progress && n <= 1)
			continue;
		int64_t left = progress ? 0 : wake - bb_now_ns();
		if (left < 0)
			left = 0;
		if (n == 1) {
			(void)take_answers(r, pw[0], left);
			continue;
		}
		struct timespec ts = { left / 1000000000, left % 1000000000 };
		if (ppoll(pfd, n, &ts, NULL) <= 0)
			continue; /* the time ran out, or a signal */
		for (nfds_t i = 0; i < n; i++)
			pw[i]->ready |= pfd[i].revents != 0;
	}
	free(pfd);
	free(pw);
	return NULL;
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

int bb_run_one(const struct bb_opts *o, const struct bb_driver *drv, int sc_id,
	       struct bb_run *run)
{
	const struct bb_scenario *sc = &bb_scenarios[sc_id];
	char err[BB_ERR_SIZE] = "";
	struct bb_runner r;
	uint64_t tagrnd = o->seed ^ (uint64_t)bb_now_ns();

	memset(&r, 0, sizeof(r));
	memset(run, 0, sizeof(*run));
	snprintf(run->scenario, sizeof(run->scenario), "%s", sc->name);
	snprintf(run->driver, sizeof(run->driver), "%s", drv->name);
	r.drv = drv;
	r.sc = sc;
	r.connections = o->connections;
	r.threads = o->threads;
	ASSERT(r.threads >= 1 && r.threads <= r.connections);
	r.inflight = o->inflight < drv->inflight_max ? o->inflight
						     : drv->inflight_max;
	ASSERT(r.inflight >= 1);
	ASSERT(r.inflight <= BB_INFLIGHT_MAX); /* the slots of a worker */
	r.rate = o->rate;
	r.requests_max = o->requests;
	r.replay_pct = o->replay_pct;
	snprintf(run->mode, sizeof(run->mode), "%s",
		 r.rate > 0 ? "open" : "closed");
	run->connections = r.connections;
	run->threads = r.threads;
	run->inflight = r.inflight;
	run->rate = r.rate;

	struct bb_dataset *ds = calloc(1, sizeof(*ds));
	if (ds == NULL)
		bb_die("out of memory");
	run->ds = ds;
	r.ds = ds;
	ds->org_count = pick(o->orgs, sc->orgs);
	ds->event_count = pick(o->events, sc->events);
	r.customer_count = pick(o->customers, sc->customers);
	ds->capacity = pick(o->capacity, sc->capacity);
	ds->waitlist_capacity =
		pick(o->waitlist,
		     sc->waitlist ? sc->waitlist : r.customer_count);
	if (ds->org_count == 0 || ds->event_count == 0 || r.customer_count == 0)
		bb_die("--orgs, --events and --customers must be positive");
	if (ds->org_count > ds->event_count)
		ds->org_count = ds->event_count;
	today_plus(1, ds->day, &ds->day_ms);
	snprintf(ds->run_tag, sizeof(ds->run_tag), "%06" PRIx64,
		 bb_rnd_next(&tagrnd) & 0xffffff);
	snprintf(r.key_prefix, sizeof(r.key_prefix), "bb%s", ds->run_tag);

	fprintf(stderr,
		"bookbench: %s on %s: %u orgs, %u events (capacity %u, waitlist %u), %u customers; "
		"%u connections x %u in flight on %u threads%s\n",
		sc->name, drv->name, ds->org_count, ds->event_count,
		ds->capacity, ds->waitlist_capacity, r.customer_count,
		r.connections, r.inflight, r.threads,
		r.rate > 0 ? ", open loop" : ", closed loop");
	int64_t t0 = bb_now_ns();
	if (drv->setup(&o->cfg, ds, err, sizeof(err)) < 0) {
		fprintf(stderr, "bookbench: %s setup failed: %s\n", drv->name,
			err);
		return -1;
	}
	fprintf(stderr, "bookbench: data set ready in %.1f s (run tag %s)\n",
		(double)(bb_now_ns() - t0) / 1e9, ds->run_tag);
	if (drv->describe != NULL)
		drv->describe(&o->cfg, run->system, sizeof(run->system));

	r.workers = calloc(r.connections, sizeof(*r.workers));
	struct bb_thread *threads = calloc(r.threads, sizeof(*threads));
	if (r.workers == NULL || threads == NULL)
		bb_die("out of memory");
	uint64_t track_each = o->track_max / r.connections + 1;
	uint64_t preload_total =
		sc->preload ? (uint64_t)ds->event_count *
				      (ds->capacity + ds->waitlist_capacity)
			    : 0;
	if (preload_total > r.customer_count)
		r.customer_count = (uint32_t)
			preload_total; /* preload uses customers 0.. */
	for (unsigned k = 0; k < r.connections; k++) {
		struct bb_worker *w = &r.workers[k];
		w->index = k;
		w->drv = drv;
		w->sc = sc;
		w->ds = ds;
		w->rng = o->seed * 1000003u + k + 1;
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
		if (drv->open(&o->cfg, &w->conn, err, sizeof(err)) < 0) {
			fprintf(stderr, "bookbench: connection %u: %s\n", k,
				err);
			return -1;
		}
	}
	unsigned preloaders = 0;
	for (unsigned k = 0; k < r.connections; k++) {
		struct bb_worker *w = &r.workers[k];
		w->preload_counted = w->preload_next < w->preload_end;
		w->phase = w->preload_counted ? BB_PRELOAD : BB_BARRIER;
		preloaders += w->preload_counted;
	}
	atomic_store(&r.preload_pending, preloaders);
	atomic_store(&r.measuring, false);
	atomic_store(&r.stop, false);
	for (unsigned i = 0; i < r.threads; i++) {
		struct bb_thread *t = &threads[i];
		t->r = &r;
		t->first = r.connections * i / r.threads;
		t->count = r.connections * (i + 1) / r.threads - t->first;
		if (pthread_create(&t->thread, NULL, thread_run, t) != 0)
			bb_die("pthread_create failed");
	}
	if (preload_total > 0) {
		fprintf(stderr, "bookbench: preloading %" PRIu64 " bookings\n",
			preload_total);
		/* Workers that failed (bookd gone) end without their share. */
		while (atomic_load(&r.preload_pending) > 0 && !bb_interrupted &&
		       atomic_load(&r.finished) < r.connections)
			usleep(10000);
	}
	run->timeline = calloc(BB_TIMELINE_MAX, sizeof(*run->timeline));
	if (run->timeline == NULL)
		bb_die("out of memory");
	bb_hist_reset(&run->hist);
	r.start_ns = bb_now_ns();
	atomic_store(&r.measuring, true);

	double duration = o->duration_s;
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
		if (bb_interrupted)
			atomic_store(&r.stop, true);
		if (atomic_load(&r.finished) == r.connections)
			atomic_store(&r.stop,
				     true); /* every connection ran out of work */
		bool all_idle = atomic_load(&r.stop);
		if (now < next_tick && !all_idle)
			continue;
		if (all_idle) { /* wait for the workers to drain */
			for (unsigned i = 0; i < r.threads; i++)
				pthread_join(threads[i].thread, NULL);
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
		double span =
			run->timeline_count > 0
				? elapsed -
					  run->timeline[run->timeline_count - 1]
						  .t
				: elapsed;
		if (run->timeline_count < BB_TIMELINE_MAX &&
		    (iv->count > 0 || !done)) {
			struct bb_second *s =
				&run->timeline[run->timeline_count++];
			s->t = elapsed;
			s->count = iv->count;
			s->errors = errors;
			s->p50_ns = bb_hist_quantile(iv, 0.50);
			s->p99_ns = bb_hist_quantile(iv, 0.99);
			s->max_ns = iv->max_ns;
		}
		if (!o->quiet)
			fprintf(stderr,
				"[%6.1fs] %9.0f req/s  p50 %8.3f ms  p99 %8.3f ms  errors %" PRIu64
				"  total %" PRIu64 "\n",
				elapsed,
				span > 0 ? (double)iv->count / span : 0,
				(double)bb_hist_quantile(iv, 0.5) / 1e6,
				(double)bb_hist_quantile(iv, 0.99) / 1e6,
				errors, run->hist.count);
		next_tick += 1000000000LL;
		if (!done && o->requests > 0 &&
		    atomic_load(&r.tickets) >= o->requests)
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
				fprintf(stderr,
					"bookbench: connection %u: %s\n", k,
					w->err);
		}
		if (w->conn)
			drv->close(w->conn);
		w->conn = NULL;
	}
	run->count = run->hist.count;
	uint64_t errors = bb_run_errors(run);
	run->error_pct =
		run->count ? 100.0 * (double)errors / (double)run->count : 0;
	if (run->count == 0)
		snprintf(run->failed, sizeof(run->failed),
			 "no request was answered");
	else if (run->error_pct > o->max_error_pct)
		snprintf(run->failed, sizeof(run->failed),
			 "%.1f%% of the answers were errors (%" PRIu64
			 " of %" PRIu64
			 "%s), over the %g%% allowed (--max-error-pct): its rates are not a result",
			 run->error_pct, errors, run->count,
			 run->by_code[BB_RATE_LIMITED] > errors / 2
				 ? ", mostly 429: bookd's rate limits"
				 : "",
			 o->max_error_pct);
	bb_report_table(run, stdout);
	if (run->failed[0])
		fprintf(stderr, "bookbench: %s on %s FAILED: %s\n", sc->name,
			drv->name, run->failed);
	if (run->by_code[BB_RATE_LIMITED] > 0 && drv == &bb_driver_http)
		printf("  note: bookd refused %" PRIu64
		       " requests with 429 (its rate limits: "
		       "--service-rate for the service key, --address-rate per client "
		       "address; --sources N spreads the connections over N loopback "
		       "addresses)\n",
		       run->by_code[BB_RATE_LIMITED]);

	if (!o->no_check) {
		fprintf(stderr, "bookbench: checking %s on %s\n", sc->name,
			drv->name);
		bb_check(o, &r, run);
		printf("check (%s on %s): %s\n%s", sc->name, drv->name,
		       run->check_problems == 0 ? "OK" : "PROBLEMS FOUND",
		       run->check_report);
	}
	fflush(stdout);
	for (unsigned k = 0; k < r.connections; k++) {
		free(r.workers[k].own);
		free(r.workers[k].acks);
		pthread_mutex_destroy(&r.workers[k].lock);
	}
	free(r.workers);
	free(threads);
	return fatal > 0 && run->count == 0 ? -1 : 0;
}
