/*
 * bookbench_load.c: one run of one scenario on one driver.
 *  - The data set is made through the driver (setup), then one connection
 *    and one thread per --connections; a scenario that preloads fills its
 *    events first, unmeasured, and every connection waits for the others.
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

struct bb_worker_arg {
	struct bb_runner *r;
	struct bb_worker *w;
};

static void worker_loop(struct bb_runner *r, struct bb_worker *w);

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
		if (preloading && w->preload_next >= w->preload_end &&
		    w->slot_count == 0) {
			preloading = false;
			w->preload_counted = false;
			atomic_fetch_sub(&r->preload_pending, 1);
			while (!atomic_load(&r->measuring) &&
			       !atomic_load(&r->stop))
				usleep(1000);
		}
		if (!preloading && !atomic_load(&r->measuring)) {
			while (!atomic_load(&r->measuring) &&
			       !atomic_load(&r->stop))
				usleep(1000);
		}
		if (!preloading && sched_base == 0) {
			sched_base =
				r->start_ns + (int64_t)(period_ns * w->index /
							r->connections);
		}
		if ((atomic_load(&r->stop) || bb_interrupted) && !stopping) {
			stopping = true;
			if (open_loop && !preloading && sched_base != 0) {
				double due =
					(double)(bb_now_ns() - sched_base) /
					period_ns;
				if (due > (double)sched)
					w->unsent =
						(uint64_t)(due - (double)sched);
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
				intended = sched_base +
					   (int64_t)(period_ns * (double)sched);
				if (intended > now)
					break;
			}
			if (!preloading && bb_scenario_done(r, w)) {
				stopping =
					true; /* the opening is over for this connection */
				break;
			}
			if (!preloading && !take_ticket(r)) {
				stopping = true;
				break;
			}
			struct bb_slot *s =
				&w->slots[(w->slot_head + w->slot_count) %
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
				return;
			}
			w->slot_count++;
			ASSERT(w->slot_count <= r->inflight);
			if (!preloading && open_loop)
				sched++;
		}
		if (w->slot_count == 0) {
			if (stopping)
				break;
			if (open_loop && !preloading) {
				int64_t next =
					sched_base +
					(int64_t)(period_ns * (double)sched);
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
		int64_t timeout =
			50 * 1000000LL; /* check stop flags now and then */
		if (open_loop && !preloading && !stopping &&
		    w->slot_count < r->inflight) {
			int64_t next = sched_base +
				       (int64_t)(period_ns * (double)sched);
			timeout = next - bb_now_ns();
			if (timeout < 0)
				timeout = 0;
		}
		int n = w->drv->poll(w->conn, results, (int)w->slot_count,
				     timeout);
		if (n < 0) {
			bb_errf(w->err, sizeof(w->err), "connection lost: %s",
				strerror(-n));
			w->fatal = n;
			/* count what was outstanding as transport errors */
			now = bb_now_ns();
			while (w->slot_count > 0) {
				struct bb_result res = { .code = BB_TRANSPORT };
				slot_answered(r, w, &res, now);
			}
			return;
		}
		ASSERT(n <=
		       (int)w->slot_count); /* poll's max: at most what is out */
		now = bb_now_ns();
		for (int i = 0; i < n; i++)
			slot_answered(r, w, &results[i], now);
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
		"%u connections x %u in flight%s\n",
		sc->name, drv->name, ds->org_count, ds->event_count,
		ds->capacity, ds->waitlist_capacity, r.customer_count,
		r.connections, r.inflight,
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
	struct bb_worker_arg *args = calloc(r.connections, sizeof(*args));
	if (r.workers == NULL || args == NULL)
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
		preloaders += w->preload_counted;
	}
	atomic_store(&r.preload_pending, preloaders);
	atomic_store(&r.measuring, false);
	atomic_store(&r.stop, false);
	for (unsigned k = 0; k < r.connections; k++) {
		args[k].r = &r;
		args[k].w = &r.workers[k];
		if (pthread_create(&r.workers[k].thread, NULL, worker_run,
				   &args[k]) != 0)
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
	free(args);
	return fatal > 0 && run->count == 0 ? -1 : 0;
}
