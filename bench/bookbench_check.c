/*
 * bookbench_check.c: the check after a run. Everything is read back through
 * the run's own driver, so the same check holds every system:
 *  1. every event within its capacity (booked + held <= capacity);
 *  2. every acknowledged booking present, in the state bookbench expects:
 *     active, or cancelled when bookbench's cancel was acknowledged;
 *  3. each event's waitlist: positions 1..n, n its waitlist length, in FIFO
 *     order of acknowledgement (one acknowledged before another was sent
 *     waits ahead of it);
 *  4. confirmed bookings read back = the seats the events say are taken
 *     (only when every acknowledgement was tracked, --track-max);
 *  5. the driver's own checks (the baseline's SQL invariants);
 *  6. for bookd replicating into PostgreSQL, that PostgreSQL caught up.
 * The reads go through up to BB_CHECK_CONN_MAX connections of their own, in
 * threads, pipelined BB_CHECK_WINDOW deep; a read refused by a rate limit
 * (429, 503) is made again after a pause. Memory: arrays the size of the
 * events and of the tracked acknowledgements, freed at the end.
 */
#include "bookbench_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ack_cmp(const void *a, const void *b)
{
	const struct bb_ack *x = a, *y = b;
	if (x->booking_id != y->booking_id)
		return x->booking_id < y->booking_id ? -1 : 1;
	/* the cancel marker after the booking */
	return (int)x->cancelled - (int)y->cancelled;
}

struct chk_item { /* a booking read back */
	uint64_t booking_id, event_id;
	int64_t sent_ns, acked_ns;
	uint32_t position;
	uint8_t status;
};

static int chk_event_pos_cmp(const void *a, const void *b)
{
	const struct chk_item *x = a, *y = b;
	if (x->event_id != y->event_id)
		return x->event_id < y->event_id ? -1 : 1;
	if (x->position != y->position)
		return x->position < y->position ? -1 : 1;
	return 0;
}

/* event id -> index in ds->event_ids, through a sorted copy. */
struct ev_idx {
	uint64_t id;
	uint32_t index;
};

static int ev_idx_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct ev_idx *)a)->id,
		 y = ((const struct ev_idx *)b)->id;
	return x < y ? -1 : x > y;
}

/* ds->event_count entries; the caller frees it. */
static struct ev_idx *event_index_build(const struct bb_dataset *ds)
{
	struct ev_idx *sorted = malloc((ds->event_count + 1) * sizeof(*sorted));
	if (sorted == NULL)
		bb_die("out of memory");
	for (uint32_t e = 0; e < ds->event_count; e++)
		sorted[e] =
			(struct ev_idx){ .id = ds->event_ids[e], .index = e };
	qsort(sorted, ds->event_count, sizeof(*sorted), ev_idx_cmp);
	return sorted;
}

/* ds->event_count when not found. */
static uint32_t event_index(const struct ev_idx *sorted,
			    const struct bb_dataset *ds, uint64_t id)
{
	struct ev_idx key = { .id = id };
	const struct ev_idx *at = bsearch(&key, sorted, ds->event_count,
					  sizeof(*sorted), ev_idx_cmp);
	return at ? at->index : ds->event_count;
}

static void rep(struct bb_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rep(struct bb_run *run, const char *fmt, ...)
{
	size_t used = strlen(run->check_report);
	if (used + 2 >= sizeof(run->check_report))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(run->check_report + used, sizeof(run->check_report) - used,
		  fmt, ap);
	va_end(ap);
	used = strlen(run->check_report);
	if (used + 1 < sizeof(run->check_report)) {
		run->check_report[used] = '\n';
		run->check_report[used + 1] = 0;
	}
}

static int read_window(const struct bb_driver *drv, void *conn,
		       const struct bb_op *ops, struct bb_result *res,
		       size_t n);

/* Pipelined reads through one connection: ops[i] -> res[i]. Reads refused
 * by a rate limit are made again, after a pause. */
static int read_many(const struct bb_driver *drv, void *conn,
		     const struct bb_op *ops, struct bb_result *res, size_t n)
{
	int rc = read_window(drv, conn, ops, res, n);
	if (rc < 0)
		return rc;
	for (int round = 0; round < 10000; round++) {
		size_t again = 0;
		for (size_t i = 0; i < n; i++)
			if (res[i].code == BB_RATE_LIMITED ||
			    res[i].code == BB_UNAVAILABLE)
				again++;
		if (again == 0)
			return 0;
		struct bb_op *o = malloc(again * sizeof(*o));
		struct bb_result *r = malloc(again * sizeof(*r));
		size_t *at = malloc(again * sizeof(*at));
		if (o == NULL || r == NULL || at == NULL)
			bb_die("out of memory");
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (res[i].code == BB_RATE_LIMITED ||
			    res[i].code == BB_UNAVAILABLE) {
				o[k] = ops[i];
				at[k++] = i;
			}
		usleep(20000);
		rc = read_window(drv, conn, o, r, again);
		for (size_t j = 0; rc == 0 && j < again; j++)
			res[at[j]] = r[j];
		free(o);
		free(r);
		free(at);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int read_window(const struct bb_driver *drv, void *conn,
		       const struct bb_op *ops, struct bb_result *res, size_t n)
{
	unsigned window = drv->inflight_max < BB_CHECK_WINDOW
				  ? drv->inflight_max
				  : BB_CHECK_WINDOW;
	size_t sent = 0, done = 0;
	ASSERT(window > 0); /* every driver takes at least one request */
	while (done < n) {
		while (sent < n && sent - done < window) {
			int rc = drv->submit(conn, &ops[sent]);
			if (rc < 0)
				return rc;
			sent++;
		}
		int got = drv->poll(conn, res + done, (int)(sent - done),
				    10 * 1000000000LL);
		if (got < 0)
			return got;
		ASSERT(got <= (int)(sent - done)); /* poll's max */
		done += (size_t)got;
	}
	return 0;
}

/* The check's reads, split over up to BB_CHECK_CONN_MAX connections of
 * their own (threads), so that a per-connection limit (bookd's HTTP rate
 * limit is per client address) does not stretch the check. */
#define BB_CHECK_CONN_MAX 16

struct read_part {
	const struct bb_config *cfg;
	const struct bb_driver *drv;
	const struct bb_op *ops;
	struct bb_result *res;
	size_t n;
	int rc;
	char err[BB_ERR_SIZE];
};

static void *read_part_main(void *arg)
{
	struct read_part *p = arg;
	void *conn = NULL;
	p->rc = p->drv->open(p->cfg, &conn, p->err, sizeof(p->err));
	if (p->rc < 0)
		return NULL;
	p->rc = read_many(p->drv, conn, p->ops, p->res, p->n);
	if (p->rc < 0)
		snprintf(p->err, sizeof(p->err), "%s", strerror(-p->rc));
	p->drv->close(conn);
	return NULL;
}

static int read_parallel(const struct bb_opts *o, const struct bb_driver *drv,
			 const struct bb_op *ops, struct bb_result *res,
			 size_t n, char *err, size_t err_size)
{
	unsigned k = o->connections < BB_CHECK_CONN_MAX ? o->connections
							: BB_CHECK_CONN_MAX;
	if (n < (size_t)k * 64)
		k = 1;
	ASSERT(k >= 1); /* --connections is 1.. */
	struct read_part parts[BB_CHECK_CONN_MAX];
	pthread_t threads[BB_CHECK_CONN_MAX];
	for (unsigned i = 0; i < k; i++) {
		size_t a = n * i / k, b = n * (i + 1) / k;
		parts[i] = (struct read_part){ .cfg = &o->cfg,
					       .drv = drv,
					       .ops = ops + a,
					       .res = res + a,
					       .n = b - a };
		if (pthread_create(&threads[i], NULL, read_part_main,
				   &parts[i]) != 0)
			bb_die("pthread_create failed");
	}
	int rc = 0;
	for (unsigned i = 0; i < k; i++) {
		pthread_join(threads[i], NULL);
		if (parts[i].rc < 0 && rc == 0) {
			rc = parts[i].rc;
			snprintf(err, err_size, "%s", parts[i].err);
		}
	}
	return rc;
}

void bb_check(const struct bb_opts *o, struct bb_runner *r, struct bb_run *run)
{
	const struct bb_driver *drv = r->drv;
	struct bb_dataset *ds = r->ds;
	char err[BB_ERR_SIZE] = "";
	int problems = 0;
	bool complete = true;

	run->checked = true;
	int rc;
	/* 1. events: within capacity */
	struct bb_op *ops = calloc(ds->event_count, sizeof(*ops));
	struct bb_result *ev = calloc(ds->event_count, sizeof(*ev));
	if (ops == NULL || ev == NULL)
		bb_die("out of memory");
	for (uint32_t i = 0; i < ds->event_count; i++) {
		ops[i].kind = BB_OP_EVENT_GET;
		ops[i].event_id = ds->event_ids[i];
	}
	rc = read_parallel(o, drv, ops, ev, ds->event_count, err, sizeof(err));
	if (rc < 0) {
		rep(run, "check: reading events failed: %s", err);
		problems++;
		goto out;
	}
	uint32_t over = 0, unread = 0;
	uint64_t booked_total = 0, waiting_total = 0;
	for (uint32_t i = 0; i < ds->event_count; i++) {
		if (ev[i].code != BB_OK) {
			unread++;
			continue;
		}
		booked_total += ev[i].booked;
		waiting_total += ev[i].waitlist_length;
		if (ev[i].booked + ev[i].held > ev[i].capacity)
			over++;
	}
	rep(run,
	    "events: %u read, %u overbooked, %u unreadable; %" PRIu64
	    " seats taken, %" PRIu64 " waiting",
	    ds->event_count - unread, over, unread, booked_total,
	    waiting_total);
	problems += (int)(over + unread);

	/* 2. acknowledged bookings: present, in the state expected */
	uint64_t ack_total = 0;
	for (unsigned k = 0; k < r->connections; k++) {
		ack_total += r->workers[k].ack_count;
		if (r->workers[k].ack_overflow)
			complete = false;
	}
	struct bb_ack *acks = malloc((ack_total + 1) * sizeof(*acks));
	if (acks == NULL)
		bb_die("out of memory");
	size_t m = 0;
	for (unsigned k = 0; k < r->connections; k++) {
		memcpy(acks + m, r->workers[k].acks,
		       r->workers[k].ack_count * sizeof(*acks));
		m += r->workers[k].ack_count;
	}
	qsort(acks, m, sizeof(*acks), ack_cmp);
	/* fold cancel markers into their booking */
	size_t nb = 0;
	uint64_t orphan_cancels = 0;
	for (size_t i = 0; i < m; i++) {
		if (acks[i].cancelled && acks[i].event_id == 0) {
			if (nb > 0 &&
			    acks[nb - 1].booking_id == acks[i].booking_id)
				acks[nb - 1].cancelled = 1;
			else
				orphan_cancels++;
			continue;
		}
		acks[nb++] = acks[i];
	}
	if (orphan_cancels > 0)
		complete = false;
	struct bb_op *bops = calloc(nb + 1, sizeof(*bops));
	struct bb_result *bres = calloc(nb + 1, sizeof(*bres));
	struct chk_item *items = calloc(nb + 1, sizeof(*items));
	if (bops == NULL || bres == NULL || items == NULL)
		bb_die("out of memory");
	for (size_t i = 0; i < nb; i++) {
		bops[i].kind = BB_OP_BOOKING_GET;
		bops[i].booking_id = acks[i].booking_id;
	}
	rc = read_parallel(o, drv, bops, bres, nb, err, sizeof(err));
	if (rc < 0) {
		rep(run, "check: reading bookings failed: %s", err);
		problems++;
		goto out_items;
	}
	uint64_t missing = 0, wrong = 0, cancelled = 0, active = 0, n_wait = 0;
	for (size_t i = 0; i < nb; i++) {
		if (bres[i].code != BB_OK) {
			missing++;
			if (missing <= 3)
				rep(run,
				    "  booking %" PRIu64 " (event %" PRIu64
				    "): %s",
				    acks[i].booking_id, acks[i].event_id,
				    bb_code_name(bres[i].code));
			continue;
		}
		bool is_active = bb_status_active(bres[i].status);
		if (acks[i].cancelled ? bres[i].status != BB_ST_CANCELLED
				      : !is_active) {
			wrong++;
			if (wrong <= 3)
				rep(run,
				    "  booking %" PRIu64
				    ": status %d, expected %s",
				    acks[i].booking_id, (int)bres[i].status,
				    acks[i].cancelled ? "cancelled" : "active");
		}
		if (acks[i].cancelled)
			cancelled++;
		else
			active++;
		if (bres[i].status == BB_ST_WAITLISTED) {
			struct chk_item *it = &items[n_wait++];
			it->booking_id = acks[i].booking_id;
			it->event_id = acks[i].event_id;
			it->sent_ns = acks[i].sent_ns;
			it->acked_ns = acks[i].acked_ns;
			it->position = bres[i].position;
			it->status = (uint8_t)bres[i].status;
		}
	}
	rep(run,
	    "bookings: %zu acknowledged read back: %" PRIu64 " active, %" PRIu64
	    " cancelled by bookbench, %" PRIu64 " missing, %" PRIu64
	    " in a wrong state",
	    nb, active, cancelled, missing, wrong);
	problems += (int)(missing + wrong);

	/* 3. waitlists: positions 1..n, n = the event's waitlist length, FIFO */
	qsort(items, n_wait, sizeof(*items), chk_event_pos_cmp);
	uint32_t *wl_seen = calloc(ds->event_count, sizeof(*wl_seen));
	if (wl_seen == NULL)
		bb_die("out of memory");
	struct ev_idx *ev_sorted = event_index_build(ds);
	uint64_t gaps = 0, fifo = 0, len_diff = 0, events_waiting = 0;
	for (size_t i = 0; i < n_wait;) {
		size_t j = i;
		int64_t sent_max = INT64_MIN;
		while (j < n_wait && items[j].event_id == items[i].event_id) {
			if (items[j].position != (uint32_t)(j - i + 1))
				gaps++;
			/* FIFO: one acknowledged before another was sent waits ahead */
			if (sent_max > items[j].acked_ns)
				fifo++;
			if (items[j].sent_ns > sent_max)
				sent_max = items[j].sent_ns;
			j++;
		}
		events_waiting++;
		uint32_t e = event_index(ev_sorted, ds, items[i].event_id);
		if (e < ds->event_count)
			wl_seen[e] = (uint32_t)(j - i);
		i = j;
	}
	/* each event's waitlist length = its waitlisted bookings we know of
	 * (all of them when every acknowledgement was tracked) */
	for (uint32_t e = 0; e < ds->event_count; e++)
		if (ev[e].code == BB_OK && (complete || wl_seen[e] > 0) &&
		    ev[e].waitlist_length != wl_seen[e])
			len_diff++;
	free(wl_seen);
	free(ev_sorted);
	rep(run,
	    "waitlists: %" PRIu64 " events, %" PRIu64 " waiting; %" PRIu64
	    " position gaps, %" PRIu64 " FIFO inversions, %" PRIu64
	    " length mismatches",
	    events_waiting, n_wait, gaps, fifo, len_diff);
	problems += (int)(gaps + fifo + (complete ? len_diff : 0));

	/* 4. confirmed bookings per event = booked (the data set is this run's) */
	if (complete) {
		uint64_t confirmed = 0;
		for (size_t i = 0; i < nb; i++)
			if (bres[i].code == BB_OK &&
			    (bres[i].status == BB_ST_CONFIRMED ||
			     bres[i].status == BB_ST_PENDING))
				confirmed++;
		uint64_t taken = 0;
		for (uint32_t e = 0; e < ds->event_count; e++)
			taken += ev[e].booked + ev[e].held;
		rep(run,
		    "seats: %" PRIu64 " confirmed bookings read back, %" PRIu64
		    " seats taken in the events%s",
		    confirmed, taken,
		    confirmed == taken ? "" : "  <-- MISMATCH");
		if (confirmed != taken)
			problems++;
	} else {
		rep(run,
		    "partial: not every acknowledged booking was tracked (--track-max), "
		    "per-event totals not compared");
	}

	/* 5. the driver's own checks */
	if (drv->check != NULL) {
		char buf[1024] = "";
		int n = drv->check(&o->cfg, ds, buf, sizeof(buf));
		rep(run, "%s", buf);
		problems += n < 0 ? 1 : n;
	}

	/* 6. replication into PostgreSQL (bookd with DATABASE_URL) */
	if (drv != &bb_driver_pg && o->replica_url != NULL &&
	    strstr(run->system, "\"replication\":\"disabled\"") == NULL &&
	    strstr(run->system, "\"replication\"") != NULL) {
		uint32_t *booked = calloc(ds->event_count, sizeof(*booked));
		if (booked == NULL)
			bb_die("out of memory");
		for (uint32_t e = 0; e < ds->event_count; e++)
			booked[e] = ev[e].booked;
		uint64_t *ids = malloc((nb + 1) * sizeof(*ids));
		uint8_t *gone = malloc(nb + 1);
		if (ids == NULL || gone == NULL)
			bb_die("out of memory");
		for (size_t i = 0; i < nb; i++) {
			ids[i] = acks[i].booking_id;
			gone[i] = acks[i].cancelled;
		}
		char buf[1024] = "";
		int n = bb_pg_replica_check(o->replica_url, ds->event_ids,
					    booked, ds->event_count, ids, gone,
					    nb, o->check_wait_s, buf,
					    sizeof(buf));
		rep(run, "%s", buf);
		problems += n < 0 ? 1 : n;
		free(ids);
		free(gone);
		free(booked);
	}
out_items:
	free(items);
	free(bres);
	free(bops);
	free(acks);
out:
	free(ev);
	free(ops);
	run->check_problems = problems;
}
