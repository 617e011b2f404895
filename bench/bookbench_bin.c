/*
 * bookbench_bin.c: driver bookd-binary, through the client library's
 * pipelined API (api/bookd_client.h): bc_*_async queue; each poll sends
 * what was submitted since the last with one bc_flush, takes every answer
 * already received (bc_recv_ready, no system call) and waits (bc_wait) only
 * when none was, so that a request costs the load generator a fraction of
 * a system call, not a poll and a send of its own. Answers come in request
 * order. One bc_client per bookbench connection (the library's rule: one
 * thread per client).
 *
 * Listings are pipelined as well (bc_event_list_async: the page comes in
 * the answer). A poll waits at most until the next send of an open loop
 * falls due (bc_wait's timeout; 0: it only reads what is there); latency
 * counts from the intended send time all the same. An event loop waits on
 * bc_fd for input; bc_flush sends all or waits for the socket to take it,
 * so no output is left queued between polls.
 *
 * The data set is made with the library's synchronous calls (org,
 * location, instructor, one series per event), then listed.
 */
#include "bookbench.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef BOOKBENCH_HAVE_CLIENT
#include "bookd_client.h"

#define BIN_QUEUE_MAX 4096

struct bin_pending {
	uint64_t req_id; /* 0: in the batch being gathered */
	int32_t index;	 /* its item in a book.batch, -1 for a plain request */
	enum bb_op_kind kind;
	uint64_t booking_id;
};

struct bin_conn {
	bc_client *bc;
	struct bin_pending q[BIN_QUEUE_MAX];
	uint32_t q_head, q_count;
	struct bb_result ready[BIN_QUEUE_MAX];
	uint32_t r_head, r_count;
	bool dirty; /* queued, not flushed */
	/* --batch: bookings gathered into one book.batch frame */
	uint32_t batch_max, batch_count;
	struct bc_book_item items[BC_BATCH_COUNT_MAX];
	char customers[BC_BATCH_COUNT_MAX][BB_CUSTOMER_SIZE_MAX + 1];
	char keys[BC_BATCH_COUNT_MAX][BB_KEY_SIZE_MAX];
};

/* Sends the gathered bookings as one book.batch request. 0 or -errno. */
static int batch_send(struct bin_conn *c)
{
	if (c->batch_count == 0)
		return 0;
	ASSERT(c->batch_count <= c->q_count); /* the last ones queued */
	uint64_t id = 0;
	int rc = bc_book_batch_async(c->bc, c->items, c->batch_count, &id);
	if (rc < 0)
		return rc;
	/* its items are the last batch_count pending requests */
	for (uint32_t i = 0; i < c->batch_count; i++) {
		struct bin_pending *p =
			&c->q[(c->q_head + c->q_count - c->batch_count + i) %
			      BIN_QUEUE_MAX];
		p->req_id = id;
	}
	c->batch_count = 0;
	c->dirty = true;
	return 0;
}

static enum bb_code code_of(int code)
{
	switch (code) {
	case BC_OK: return BB_OK;
	case BC_EVENT_FULL: return BB_EVENT_FULL;
	case BC_ALREADY_BOOKED: return BB_ALREADY_BOOKED;
	case BC_EVENT_NOT_BOOKABLE: return BB_NOT_BOOKABLE;
	case BC_BOOKING_NOT_ACTIVE: return BB_NOT_ACTIVE;
	case BC_NOT_FOUND: return BB_NOT_FOUND;
	case BC_IDEMPOTENCY_KEY_REUSED: return BB_IDEM_MISMATCH;
	case BC_RATE_LIMITED: return BB_RATE_LIMITED;
	case BC_UNAVAILABLE:
	case BC_OVERLOADED: return BB_UNAVAILABLE;
	case BC_INVALID_REQUEST:
	case BC_UNAUTHORIZED:
	case BC_FORBIDDEN:
	case BC_IDEMPOTENCY_KEY_REQUIRED:
	case BC_FRAME_TOO_LARGE: return BB_BAD_REQUEST;
	case BC_INTERNAL: return BB_SERVER_ERROR;
	default: return BB_OTHER;
	}
}

static enum bb_status status_of(enum bc_booking_status s)
{
	switch (s) {
	case BC_BOOKING_CONFIRMED: return BB_ST_CONFIRMED;
	case BC_BOOKING_PENDING_PAYMENT: return BB_ST_PENDING;
	case BC_BOOKING_WAITLISTED: return BB_ST_WAITLISTED;
	case BC_BOOKING_CANCELLED: return BB_ST_CANCELLED;
	case BC_BOOKING_UNKNOWN: return BB_ST_NONE;
	default: return BB_ST_OTHER;
	}
}

static int bin_open(const struct bb_config *cfg, void **out, char *err,
		    size_t err_size)
{
	struct bin_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	int rc = bc_connect(cfg->binary_addr,
			    cfg->service_key ? cfg->service_key : "", &c->bc,
			    err, err_size);
	if (rc < 0) {
		free(c);
		return rc;
	}
	c->batch_max = cfg->batch > BC_BATCH_COUNT_MAX ? BC_BATCH_COUNT_MAX
						       : cfg->batch;
	*out = c;
	return 0;
}

static void bin_close(void *conn)
{
	struct bin_conn *c = conn;
	bc_close(c->bc);
	free(c);
}

static void fill(struct bb_result *out, const struct bc_answer *a,
		 enum bb_op_kind kind)
{
	memset(out, 0, sizeof(*out));
	out->code = code_of(a->code);
	out->replayed = a->replayed;
	if (a->has_booking) {
		out->booking_id = a->booking.id;
		out->event_id = a->booking.event_id;
		out->status = status_of(a->booking.status);
		out->position = a->booking.position;
	}
	if (kind == BB_OP_CANCEL && a->has_promoted)
		out->promoted_id = a->promoted.id;
	if (kind == BB_OP_EVENT_LIST)
		out->count = a->event_count;
	if (kind == BB_OP_EVENT_GET && a->has_event) {
		out->capacity = a->event.capacity;
		out->booked = a->event.booked;
		out->held = a->event.held;
		out->waitlist_length = a->event.waitlist_length;
		out->event_cancelled = a->event.status == BC_EVENT_CANCELLED;
	}
}

/* The answer a to the oldest pending request into the ready queue (a
 * whole batch refused: one result per item). 0 or -EPROTO. */
static int take(struct bin_conn *c, const struct bc_answer *a)
{
	if (c->q_count == 0 || a->req_id != c->q[c->q_head].req_id)
		return -EPROTO; /* answers come in request order */
	if (a->index < 0 && c->q[c->q_head].index >= 0) {
		/* a whole batch refused: each of its items gets the answer */
		uint64_t id = a->req_id;
		while (c->q_count > 0 && c->q[c->q_head].req_id == id) {
			struct bb_result *out =
				&c->ready[(c->r_head + c->r_count) %
					  BIN_QUEUE_MAX];
			fill(out, a, BB_OP_BOOK);
			c->r_count++;
			c->q_head = (c->q_head + 1) % BIN_QUEUE_MAX;
			c->q_count--;
		}
		return 0;
	}
	if (a->index != c->q[c->q_head].index)
		return -EPROTO; /* a batch's items come in order too */
	struct bin_pending *p = &c->q[c->q_head];
	struct bb_result *out =
		&c->ready[(c->r_head + c->r_count) % BIN_QUEUE_MAX];
	fill(out, a, p->kind);
	if (p->kind == BB_OP_BOOKING_GET && out->booking_id == 0)
		out->booking_id = p->booking_id;
	c->r_count++;
	c->q_head = (c->q_head + 1) % BIN_QUEUE_MAX;
	c->q_count--;
	return 0;
}

/* Sends what is gathered and queued: the batch being gathered, then the
 * queued frames with one send. 0 or -errno. */
static int send_queued(struct bin_conn *c)
{
	int rc = batch_send(c);
	if (rc < 0)
		return rc;
	if (c->dirty) {
		rc = bc_flush(c->bc);
		if (rc < 0)
			return rc;
		c->dirty = false;
	}
	return 0;
}

/* Every answer already received into the ready queue, without a system
 * call. How many, or -errno. */
static int take_ready(struct bin_conn *c)
{
	struct bc_answer a;
	int n = 0, rc = 0;
	while (c->q_count > 0 && (rc = bc_recv_ready(c->bc, &a)) == 1) {
		rc = take(c, &a);
		if (rc < 0)
			return rc;
		n++;
	}
	return rc < 0 ? rc : n;
}

static int bin_submit(void *conn, const struct bb_op *op)
{
	struct bin_conn *c = conn;
	uint64_t id = 0;
	int rc;
	if (c->q_count + c->r_count >= BIN_QUEUE_MAX - 1)
		return -EBUSY;
	if (op->kind == BB_OP_BOOK && c->batch_max > 1) {
		ASSERT(c->batch_max <= BC_BATCH_COUNT_MAX);
		ASSERT(c->batch_count < c->batch_max); /* sent once full */
		uint32_t i = c->batch_count++;
		snprintf(c->customers[i], sizeof(c->customers[i]), "%s",
			 op->customer);
		snprintf(c->keys[i], sizeof(c->keys[i]), "%s", op->key);
		c->items[i] =
			(struct bc_book_item){ .event_id = op->event_id,
					       .customer_id = c->customers[i],
					       .key = c->keys[i],
					       .payment = BC_PAY_NONE };
		struct bin_pending *p =
			&c->q[(c->q_head + c->q_count) % BIN_QUEUE_MAX];
		*p = (struct bin_pending){ .req_id = 0,
					   .index = (int32_t)i,
					   .kind = BB_OP_BOOK };
		c->q_count++;
		return c->batch_count == c->batch_max ? batch_send(c) : 0;
	}
	rc = batch_send(c); /* what was gathered goes first */
	if (rc < 0)
		return rc;
	switch (op->kind) {
	case BB_OP_BOOK:
		rc = bc_book_async(c->bc, op->event_id, op->customer, op->key,
				   BC_PAY_NONE, &id);
		break;
	case BB_OP_CANCEL:
		rc = bc_cancel_async(c->bc, op->booking_id, op->key, &id);
		break;
	case BB_OP_EVENT_GET:
		rc = bc_event_get_async(c->bc, op->event_id, &id);
		break;
	case BB_OP_BOOKING_GET:
		rc = bc_booking_get_async(c->bc, op->booking_id, &id);
		break;
	case BB_OP_EVENT_LIST: {
		struct bc_list_query q = { .org_id = op->org_id,
					   .from = op->from_ms,
					   .to = op->to_ms,
					   .limit = 50 };
		rc = bc_event_list_async(c->bc, &q, &id);
		break;
	}
	default: return -EINVAL;
	}
	if (rc < 0)
		return rc;
	struct bin_pending *p = &c->q[(c->q_head + c->q_count) % BIN_QUEUE_MAX];
	p->req_id = id;
	p->index = -1;
	p->kind = op->kind;
	p->booking_id = op->booking_id;
	c->q_count++;
	ASSERT(c->q_count + c->r_count < BIN_QUEUE_MAX); /* -EBUSY above */
	c->dirty = true;
	return 0;
}

/* Sends what was submitted since the last call with one send, takes every
 * answer already received, and waits (up to timeout_ns: in an open loop,
 * until the next send falls due) only when none was. */
static int bin_poll(void *conn, struct bb_result *out, int max,
		    int64_t timeout_ns)
{
	struct bin_conn *c = conn;
	int rc = send_queued(c);
	if (rc < 0)
		return rc;
	rc = take_ready(c);
	if (rc < 0)
		return rc;
	if (c->r_count == 0 && c->q_count > 0) {
		rc = bc_wait(c->bc, timeout_ns < 0 ? -1 : timeout_ns / 1000);
		if (rc < 0)
			return rc;
		rc = take_ready(c);
		if (rc < 0)
			return rc;
	}
	int n = 0;
	while (n < max && c->r_count > 0) {
		out[n++] = c->ready[c->r_head];
		c->r_head = (c->r_head + 1) % BIN_QUEUE_MAX;
		c->r_count--;
	}
	return n;
}

static int bin_flush(void *conn)
{
	struct bin_conn *c = conn;
	int rc = send_queued(c);
	/* what bc_flush read while the socket was full is not on the
	 * descriptor any more: taken now, and said */
	if (rc >= 0)
		rc = take_ready(c);
	return rc < 0 ? rc : c->r_count > 0;
}

static int bin_fd(void *conn, short *events)
{
	struct bin_conn *c = conn;
	*events = POLLIN;
	return bc_fd(c->bc);
}

static int bin_setup(const struct bb_config *cfg, struct bb_dataset *ds,
		     char *err, size_t err_size)
{
	bc_client *bc;
	int rc = bc_connect(cfg->binary_addr,
			    cfg->service_key ? cfg->service_key : "", &bc, err,
			    err_size);
	if (rc < 0)
		return rc;
	uint32_t no = ds->org_count, ne = ds->event_count;
	uint64_t *locs = calloc(no, sizeof(*locs)),
		 *insts = calloc(no, sizeof(*insts));
	struct bc_event *page = calloc(BC_LIST_LIMIT_MAX, sizeof(*page));
	if (bb_dataset_alloc(ds) < 0 || locs == NULL || insts == NULL ||
	    page == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	char name[96], key[96];
	for (uint32_t o = 0; o < no; o++) {
		snprintf(name, sizeof(name), "bb-%s-org-%u", ds->run_tag, o);
		snprintf(key, sizeof(key), "bb-%s-org-%u", ds->run_tag, o);
		rc = bc_org_create(bc, name, "UTC", key, &ds->org_ids[o]);
		if (rc != BC_OK)
			goto refused;
		snprintf(key, sizeof(key), "bb-%s-loc-%u", ds->run_tag, o);
		rc = bc_location_create(bc, ds->org_ids[o], "studio", key,
					&locs[o]);
		if (rc != BC_OK)
			goto refused;
		snprintf(key, sizeof(key), "bb-%s-ins-%u", ds->run_tag, o);
		rc = bc_instructor_create(bc, ds->org_ids[o], "coach", key,
					  &insts[o]);
		if (rc != BC_OK)
			goto refused;
	}
	for (uint32_t i = 0; i < ne; i++) {
		uint32_t o = i % no;
		unsigned minute = (unsigned)((uint64_t)i * 1440 / ne);
		char title[32], start[16];
		snprintf(title, sizeof(title), "class %u", i);
		snprintf(start, sizeof(start), "%02u:%02u", minute / 60,
			 minute % 60);
		struct bc_series_spec spec = {
			.org_id = ds->org_ids[o],
			.location_id = locs[o],
			.instructor_id = insts[o],
			.title = title,
			.capacity = ds->capacity,
			.waitlist_capacity = ds->waitlist_capacity,
			.price_cents = 0,
			.currency = NULL,
			.timezone = "UTC",
			.weekdays = "MO,TU,WE,TH,FR,SA,SU",
			.start_time = start,
			.duration_min = 60,
			.first_date = ds->day,
			.last_date = ds->day,
		};
		uint64_t sid;
		uint32_t gen;
		snprintf(key, sizeof(key), "bb-%s-series-%u", ds->run_tag, i);
		rc = bc_series_create(bc, &spec, key, &sid, &gen);
		if (rc != BC_OK)
			goto refused;
	}
	uint32_t found = 0;
	for (uint32_t o = 0; o < no; o++) {
		char cursor[BC_CURSOR_SIZE] = "";
		for (int pg = 0; pg < 100000; pg++) {
			struct bc_list_query q = { .org_id = ds->org_ids[o],
						   .from = ds->day_ms,
						   .limit = BC_LIST_LIMIT_MAX,
						   .cursor = cursor[0] ? cursor
								       : NULL };
			uint32_t count = 0;
			char next[BC_CURSOR_SIZE];
			rc = bc_event_list(bc, &q, page, BC_LIST_LIMIT_MAX,
					   &count, next);
			if (rc != BC_OK)
				goto refused;
			for (uint32_t k = 0; k < count; k++) {
				if (found < ne) {
					ds->event_ids[found] = page[k].id;
					ds->event_org[found] = o;
				}
				found++;
			}
			if (next[0] == 0)
				break;
			snprintf(cursor, sizeof(cursor), "%s", next);
		}
	}
	rc = bb_events_found(found, ne, err, err_size);
	goto out;
refused:
	if (rc < 0)
		bb_errf(err, err_size, "binary connection: %s", strerror(-rc));
	else
		bb_errf(err, err_size, "refused: %s (%s)",
			bc_last(bc)->code_name, bc_last(bc)->message);
	rc = -EIO;
out:
	free(page);
	free(locs);
	free(insts);
	bc_close(bc);
	return rc;
}

static void bin_describe(const struct bb_config *cfg, char *out,
			 size_t out_size)
{
	bc_client *bc;
	char err[BB_ERR_SIZE];
	struct bc_status_info st;
	if (bc_connect(cfg->binary_addr,
		       cfg->service_key ? cfg->service_key : "", &bc, err,
		       sizeof(err)) < 0) {
		snprintf(out, out_size, "{\"system\":\"bookd (binary)\"}");
		return;
	}
	if (bc_status(bc, &st) == BC_OK)
		snprintf(out, out_size,
			 "{\"system\":\"bookd (binary)\",\"replication\":\"%s\",\"shards\":%u,"
			 "\"threads\":%u,\"wal_sync_us_avg\":%" PRIu64
			 ",\"binary\":\"%s\"}",
			 st.repl_state, st.shard_count, st.thread_count,
			 st.wal_sync_us_avg, cfg->binary_addr);
	else
		snprintf(out, out_size, "{\"system\":\"bookd (binary)\"}");
	bc_close(bc);
}

const struct bb_driver bb_driver_bin = {
	.name = "bookd-binary",
	.inflight_max = 1024,
	BB_DRIVER_FUNCS(bin),
};

#else /* no client library in this build */

const struct bb_driver bb_driver_bin = {
	.name = "bookd-binary",
	.inflight_max = 1,
};

#endif
