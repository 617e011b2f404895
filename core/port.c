/*
 * port.c: the callers' side of the runtime (runtime.c has the design). A
 * core_port owns ring_size slots: core_submit sends a request to the shard
 * that decides it (or first to its idempotency key's home), core_poll and
 * core_wait take the answers; core_call is the synchronous form, and also
 * runs what no single shard answers: listings and a customer's bookings
 * (fanned out to every shard and merged) and catalogue operations (decided
 * here under the catalogue lock, logged, then applied in every shard).
 */
#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

/* ---- routing ---- */

unsigned core_shard_of_event(const core *c, uint64_t event_id)
{
	return core__shard_of(event_id, c->shard_count);
}

static bool op_catalogue(enum core_op op)
{
	return (op >= CORE_OP_ORG_CREATE && op <= CORE_OP_ARCHIVE) ||
	       op == CORE_OP_ORG_PATCH || op == CORE_OP_SERIES_PATCH;
}

/* A shard the submitting port hosts rings that port's bell: only the port's
 * owner sleeps on it, and the owner is the caller, awake, and runs the shard
 * (or finds it busy, core__host_has_work) before it sleeps. So no bell then,
 * and no fence a request. */
static void to_shard(core *c, struct slot *s, unsigned shard)
{
	struct bell *b = c->shards[shard].bell;

	ring_push(&c->to_shard[s->port * c->shard_count + shard], s);
	if (b != &c->ports[s->port].bell)
		bell_ring(b);
}

/* ---- submitting ---- */

static struct slot *slot_get(core_port *p)
{
	struct slot *s = p->free;

	if (s) {
		p->free = s->next_free;
	} else if (p->fresh < p->c->cfg.ring_size) {
		s = &p->slots[p->fresh++];
		s->port = (uint16_t)p->index;
	} else {
		return NULL;
	}
	p->free_count--;
	s->rc = 0;
	s->entry = NULL;
	s->entry_size = 0;
	return s;
}

static void slot_put(core_port *p, struct slot *s)
{
	s->next_free = p->free;
	p->free = s;
	p->free_count++;
}

static unsigned target_of(const core *c, const struct core_req *req)
{
	switch (req->op) {
	case CORE_OP_CANCEL:
	case CORE_OP_PAY:
	case CORE_OP_BOOKING_GET:
		return core__shard_of(core_booking_event(req->booking_id),
				      c->shard_count);
	default: return core__shard_of(req->event_id, c->shard_count);
	}
}

static void send_req(core_port *p, struct slot *s, const struct core_req *req,
		     uint64_t tag)
{
	core *c = p->c;

	s->req = *req;
	s->tag = tag;
	s->kind = SLOT_REQ;
	s->target = (uint8_t)target_of(c, req);
	s->home = core_idem_present(&req->idem)
			  ? (uint8_t)core__key_home(&req->idem, c->shard_count)
			  : s->target;
	to_shard(c, s,
		 op_keyed_shard(req->op) && core_idem_present(&req->idem)
			 ? s->home
			 : s->target);
}

int core_submit(core_port *p, const struct core_req *req, uint64_t tag)
{
	struct slot *s;

	if (req->op == CORE_OP_NONE || req->op >= CORE_OP_CUSTOMER_BOOKINGS)
		return -EINVAL; /* fan-out and catalogue ops: core_call */
	s = slot_get(p);
	if (!s)
		return -EAGAIN;
	send_req(p, s, req, tag);
	return 0;
}

static struct slot *port_pop(core_port *p)
{
	core *c = p->c;

	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		struct slot *s =
			ring_pop(&c->to_port[sh * c->port_count + p->index]);
		if (s)
			return s;
	}
	return NULL;
}

int core_poll(core_port *p, struct core_resp *out, int max)
{
	int n = 0;
	struct slot *s;

	while (n < max && (s = port_pop(p))) {
		out[n] = s->resp;
		out[n].tag = s->tag;
		n++;
		slot_put(p, s);
	}
	return n;
}

static bool port_has_work(void *arg)
{
	core_port *p = arg;
	core *c = p->c;

	for (unsigned sh = 0; sh < c->shard_count; sh++)
		if (!ring_empty(&c->to_port[sh * c->port_count + p->index]))
			return true;
	return false;
}

void core_port_set_wake_fd(core_port *p, int fd)
{
	atomic_store_explicit(&p->bell.wake_fd, fd, memory_order_relaxed);
}

bool core_port_idle_begin(core_port *p)
{
	atomic_fetch_add_explicit(&p->bell.sleepers, 1, memory_order_seq_cst);
	if (!port_has_work(p) && !core__host_has_work(p))
		return true;
	atomic_fetch_sub_explicit(&p->bell.sleepers, 1, memory_order_relaxed);
	return false;
}

void core_port_idle_end(core_port *p)
{
	atomic_fetch_sub_explicit(&p->bell.sleepers, 1, memory_order_relaxed);
}

unsigned core_port_run(core_port *p) { return core__host_run(p); }

bool core_port_hosts_all(const core_port *p)
{
	return p->hosted_count == p->c->shard_count;
}

/* A waiting caller runs the hosted shards whose hosts are not running
 * them (before their owners start, nobody else would). */
static unsigned run_hosts(core *c)
{
	unsigned n = 0;

	if (!c->hosted)
		return 0;
	for (unsigned h = 0; h < c->cfg.host_count; h++)
		n += core__host_run(&c->ports[c->cfg.host_first + h]);
	return n;
}

void core_wait(core_port *p)
{
	/* Spin a little, then give the core away, then sleep. */
	for (unsigned spin = 0; spin < 1000; spin++) {
		if (port_has_work(p))
			return;
		if (run_hosts(p->c))
			continue;
		__builtin_ia32_pause();
	}
	for (unsigned k = 0; k < 16; k++) {
		if (port_has_work(p))
			return;
		sched_yield();
	}
	bell_wait(&p->bell, port_has_work, p);
}

/* Waits for one answer on p (sync callers: nothing else is in flight). */
static struct slot *port_wait(core_port *p)
{
	struct slot *s;

	for (unsigned spin = 0;; spin++) {
		s = port_pop(p);
		if (s)
			return s;
		if (run_hosts(p->c))
			spin = 0;
		else if (spin < 200)
			__builtin_ia32_pause();
		else
			bell_wait(&p->bell, port_has_work, p);
	}
}

static int call_slot(core_port *p, struct slot *s, unsigned shard)
{
	struct slot *got;

	to_shard(p->c, s, shard);
	got = port_wait(p);
	ASSERT(got == s);
	return 0;
}

/* ---- fan-out reads ---- */

static bool view_before(const struct core_event_view *a,
			const struct core_event_view *b)
{
	return a->start_at < b->start_at ||
	       (a->start_at == b->start_at && a->id < b->id);
}

/* Sends req to every shard and waits for their answers: got[shard] their
 * counts, keys[shard] (if not NULL) their keys_expired, *code (if not
 * NULL) the first that was not CORE_OK. Listings write into the shard's
 * own part of the port's scratch, one more than asked, so that a cut list
 * is known. The caller checked free slots. */
static void fan_out(core_port *p, const struct core_req *req, uint32_t *got,
		    uint32_t *keys, enum core_code *code)
{
	core *c = p->c;

	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		struct slot *s = slot_get(p);
		s->req = *req;
		if (req->op == CORE_OP_EVENT_LIST) {
			s->req.u.list.limit = req->u.list.limit + 1;
			s->req.u.list.out = p->list_scratch +
					    sh * (CORE_LIST_LIMIT_MAX + 1);
		} else if (req->op == CORE_OP_CUSTOMER_BOOKINGS) {
			s->req.u.customer.capacity =
				req->u.customer.capacity + 1;
			s->req.u.customer.out = p->customer_scratch +
						sh * (CORE_LIST_LIMIT_MAX + 1);
		}
		s->kind = SLOT_REQ;
		s->target = s->home = (uint8_t)sh;
		to_shard(c, s, sh);
	}
	for (unsigned k = 0; k < c->shard_count; k++) {
		struct slot *s = port_wait(p);
		got[s->target] = s->resp.count;
		if (keys)
			keys[s->target] = s->resp.keys_expired;
		if (code && *code == CORE_OK)
			*code = s->resp.code;
		slot_put(p, s);
	}
}

static int call_list(core_port *p, const struct core_req *req,
		     struct core_resp *resp)
{
	core *c = p->c;
	unsigned S = c->shard_count;
	uint32_t limit = req->u.list.limit, got[CORE_SHARD_COUNT_MAX] = { 0 },
		 at[CORE_SHARD_COUNT_MAX] = { 0 };

	if (limit == 0 || limit > CORE_LIST_LIMIT_MAX || !req->u.list.out)
		return -EINVAL;
	if (p->free_count < S)
		return -EAGAIN;
	fan_out(p, req, got, NULL, NULL);
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	for (;;) {
		int best = -1;
		for (unsigned sh = 0; sh < S; sh++) {
			const struct core_event_view *v;
			if (at[sh] == got[sh])
				continue;
			v = &p->list_scratch[sh * (CORE_LIST_LIMIT_MAX + 1) +
					     at[sh]];
			if (best < 0 ||
			    view_before(v,
					&p->list_scratch
						 [best * (CORE_LIST_LIMIT_MAX +
							  1) +
						  at[best]]))
				best = (int)sh;
		}
		if (best < 0)
			break;
		if (resp->count == limit) {
			resp->more = true;
			break;
		}
		req->u.list.out[resp->count++] =
			p->list_scratch[best * (CORE_LIST_LIMIT_MAX + 1) +
					at[best]++];
	}
	return 0;
}

/* Newest first. */
static int booking_order(const void *a, const void *b)
{
	const struct core_booking_view *x = a, *y = b;

	if (x->created_at != y->created_at)
		return x->created_at > y->created_at ? -1 : 1;
	return x->id > y->id ? -1 : x->id < y->id;
}

static int call_customer(core_port *p, const struct core_req *req,
			 struct core_resp *resp)
{
	core *c = p->c;
	unsigned S = c->shard_count;
	uint32_t cap = req->u.customer.capacity, n = 0;
	struct core_booking_view *all = p->customer_scratch;

	if (cap == 0 || cap > CORE_LIST_LIMIT_MAX || !req->u.customer.out)
		return -EINVAL;
	if (p->free_count < S)
		return -EAGAIN;
	/* Each shard gives its newest cap + 1; the newest cap overall win,
	 * and one more anywhere means the list was cut. */
	uint32_t got[CORE_SHARD_COUNT_MAX];
	fan_out(p, req, got, NULL, NULL);
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	for (unsigned sh = 0; sh < S; sh++) { /* every shard is done: compact */
		memmove(all + n, all + sh * (CORE_LIST_LIMIT_MAX + 1),
			got[sh] * sizeof(*all));
		n += got[sh];
	}
	qsort(all, n, sizeof(*all), booking_order);
	resp->more = n > cap;
	resp->count = n > cap ? cap : n;
	memcpy(req->u.customer.out, all, resp->count * sizeof(*all));
	return 0;
}

/* ---- catalogue ---- */

/* Hands a catalogue entry to every shard in turn as a slot of `kind`
 * (SLOT_PREPARE, SLOT_APPLY), waiting for each; stops at the first that
 * fails and returns its rc. *count (if not NULL) adds up their resp.count. */
static int each_shard(core_port *p, uint8_t kind, const uint8_t *entry,
		      size_t size, uint32_t *count)
{
	core *c = p->c;
	int rc = 0;

	for (unsigned sh = 0; sh < c->shard_count && rc == 0; sh++) {
		struct slot *s = slot_get(p);
		ASSERT(s);
		s->kind = kind;
		s->entry = entry;
		s->entry_size = size;
		call_slot(p, s, sh);
		rc = s->rc;
		if (count)
			*count += s->resp.count;
		slot_put(p, s);
	}
	return rc;
}

/* Before a catalogue entry with events is logged: every shard makes room
 * for its part (-ENOMEM: refused, nothing logged; rooms made stay). */
static int cat_prepare(core_port *p, const uint8_t *entry, size_t size)
{
	return each_shard(p, SLOT_PREPARE, entry, size, NULL);
}

/* Apply a catalogue entry: the catalogue's records here, the events' in
 * their shards (waiting for each), an ARCHIVE in every shard. Returns the
 * events an ARCHIVE dropped in all (0 for other entries). Called with
 * cat_lock held. */
static int cat_apply(core_port *p, const uint8_t *entry, size_t size)
{
	core *c = p->c;
	struct core_rec r;
	size_t pos = 0;
	bool events = false;
	uint32_t archived = 0;
	int rc;

	while (pos < size) {
		ASSERT(rec_decode(entry, size, &pos, &r) == 0);
		ASSERT(catalog_apply(c->cat, &r) == 0);
		events |= core_rec_event_id(&r) != 0 ||
			  r.type == CORE_REC_ARCHIVE;
	}
	if (!events)
		return 0;
	rc = each_shard(p, SLOT_APPLY, entry, size, &archived);
	ASSERT(rc == 0); /* room was made first (cat_prepare) */
	return (int)archived;
}

/* A catalogue entry built elsewhere (core/import.c), checked to fit:
 * room made in every shard, logged, applied. With cat_lock held. */
int core__cat_write(core_port *p, const uint8_t *entry, size_t size,
		    uint64_t *lsn)
{
	int rc = cat_prepare(p, entry, size);

	if (rc == 0)
		rc = log_entry(p->c, p->c->shard_count, entry, size, lsn);
	if (rc == 0)
		cat_apply(p, entry, size);
	return rc;
}

/* Would the events [next id, next id + count) pass a shard's ceiling?
 * Ids go to shards by hash: counted per shard, as they will land. With
 * cat_lock held: only catalogue operations add events. */
static bool generate_fits(core *c, uint64_t count)
{
	uint64_t add[CORE_SHARD_COUNT_MAX] = { 0 };
	uint64_t held[CORE_SHARD_COUNT_MAX], total = 0;
	uint64_t id = c->cat->next_event_id;

	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		struct core_stats st;
		core_state_stats(c->shards[sh].st, &st);
		held[sh] = st.event_count;
		total += c->cfg.event_count_max -
			 (held[sh] < c->cfg.event_count_max
				  ? held[sh]
				  : c->cfg.event_count_max);
	}
	if (count > total)
		return false; /* more than all the room there is */
	for (uint64_t k = 0; k < count; k++)
		add[core__shard_of(id + k, c->shard_count)]++;
	for (unsigned sh = 0; sh < c->shard_count; sh++)
		if (held[sh] + add[sh] > c->cfg.event_count_max)
			return false;
	return true;
}

/* Generation in chunks, each logged and applied before the next. The whole
 * request is checked first (until's limit, every shard's ceiling), so a
 * request that cannot be applied whole is refused before any of it is
 * logged. */
static int cat_generate(core_port *p, core_time now, uint64_t series_id,
			struct core_date until, struct core_resp *resp)
{
	core *c = p->c;
	struct core_resp chunk;
	uint64_t planned;
	int rc;

	resp->count = 0;
	memset(&chunk, 0, sizeof(chunk));
	resp->code = catalog_generate_plan(c->cat, series_id, until, now,
					   &planned, &chunk);
	if (resp->code == CORE_OK && !generate_fits(c, planned)) {
		chunk.id = CORE_LIMIT_EVENTS;
		chunk.count = c->cfg.event_count_max;
		resp->code = CORE_LIMIT;
	}
	if (resp->code != CORE_OK) {
		resp->id = chunk.id;
		resp->count = chunk.count;
		return 0;
	}
	for (;;) {
		struct wbuf w = { .data = p->entry,
				  .capacity = CORE_ENTRY_SIZE_MAX };
		uint64_t lsn;

		memset(&chunk, 0, sizeof(chunk));
		resp->code = catalog_generate(c->cat, series_id, until, now,
					      &chunk, &w);
		if (resp->code != CORE_OK || !chunk.more)
			return 0;
		ASSERT(!w.overflow);
		rc = cat_prepare(p, w.data, w.size);
		if (rc == 0)
			rc = log_entry(c, c->shard_count, w.data, w.size, &lsn);
		if (rc)
			return rc;
		cat_apply(p, w.data, w.size);
		resp->count += chunk.count;
		resp->lsn = lsn;
	}
}

/* Generates what series `id` still lacks up to the horizon (idempotent);
 * the answer then also waits for the last chunk. With cat_lock held. */
static int series_generate(core_port *p, core_time now, uint64_t id,
			   struct core_resp *resp)
{
	struct core_resp gen;
	int rc;

	memset(&gen, 0, sizeof(gen));
	rc = cat_generate(p, now, id, (struct core_date){ 0, 0, 0 }, &gen);
	if (gen.lsn > resp->lsn)
		resp->lsn = gen.lsn;
	return rc;
}

static int call_catalogue(core_port *p, const struct core_req *req,
			  struct core_resp *resp)
{
	core *c = p->c;
	bool keyed = core_idem_present(&req->idem);
	unsigned home = keyed ? core__key_home(&req->idem, c->shard_count) : 0;
	struct slot *key_slot = NULL;
	int rc = 0;

	if (keyed) {
		key_slot = slot_get(p);
		if (!key_slot)
			return -EAGAIN;
		key_slot->req = *req;
		key_slot->kind = SLOT_RESERVE;
		call_slot(p, key_slot, home);
		if (key_slot->rc) { /* answered at the home */
			*resp = key_slot->resp;
			slot_put(p, key_slot);
			/* The key is logged with the series, its events after:
			 * a crash between them left a series to generate.
			 * Generating again is idempotent. */
			/* The key keeps the org's id, not its settings:
			 * a replay answers them as they are now. */
			if (resp->replayed && resp->code == CORE_OK &&
			    (req->op == CORE_OP_ORG_CREATE ||
			     req->op == CORE_OP_ORG_PATCH)) {
				pthread_mutex_lock(&c->cat_lock);
				catalog_org_settings(c->cat, resp->id,
						     &resp->org);
				pthread_mutex_unlock(&c->cat_lock);
			}
			if (resp->replayed &&
			    req->op == CORE_OP_SERIES_CREATE &&
			    resp->code == CORE_OK) {
				pthread_mutex_lock(&c->cat_lock);
				rc = series_generate(p, req->now, resp->id,
						     resp);
				pthread_mutex_unlock(&c->cat_lock);
			}
			return rc;
		}
	}

	if (req->op == CORE_OP_SERIES_PATCH) { /* parks the core itself */
		rc = core__series_patch(p, req, resp);
		goto complete;
	}
	pthread_mutex_lock(&c->cat_lock);
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	if (req->op == CORE_OP_GENERATE) {
		rc = cat_generate(p, req->now, req->u.generate.series_id,
				  req->u.generate.until, resp);
		if (rc == 0 && keyed && resp->code == CORE_OK) {
			struct wbuf w = { .data = p->entry,
					  .capacity = CORE_ENTRY_SIZE_MAX };
			core__idem_emit(&w, req, resp);
			rc = log_entry(c, c->shard_count, w.data, w.size,
				       &resp->lsn);
		}
	} else {
		struct wbuf w = { .data = p->entry,
				  .capacity = CORE_ENTRY_SIZE_MAX };
		resp->code = catalog_decide(c->cat, req, resp, &w);
		/* A series whose first generation (resp.count events) would
		 * pass a shard's ceiling is refused before it is logged. */
		if (resp->code == CORE_OK && req->op == CORE_OP_SERIES_CREATE &&
		    !generate_fits(c, resp->count)) {
			resp->code = CORE_LIMIT;
			resp->id = CORE_LIMIT_EVENTS;
			resp->count = c->cfg.event_count_max;
		}
		if (resp->code == CORE_OK) {
			if (keyed)
				core__idem_emit(&w, req, resp);
			ASSERT(!w.overflow);
			rc = log_entry(c, c->shard_count, w.data, w.size,
				       &resp->lsn);
			if (rc == 0) {
				int dropped = cat_apply(p, w.data, w.size);
				if (req->op == CORE_OP_ARCHIVE)
					resp->count = (uint32_t)dropped;
			}
		}
		if (rc == 0 && resp->code == CORE_OK &&
		    req->op == CORE_OP_SERIES_CREATE)
			rc = series_generate(p, req->now, resp->id, resp);
	}
	pthread_mutex_unlock(&c->cat_lock);

complete:
	if (keyed) {
		key_slot->kind = SLOT_COMPLETE;
		key_slot->resp = *resp;
		key_slot->rc = rc;
		call_slot(p, key_slot, home);
		slot_put(p, key_slot);
	}
	if (rc) {
		memset(resp, 0, sizeof(*resp));
		resp->op = req->op;
		resp->code = CORE_FULL;
	}
	return rc;
}

int core_call(core_port *p, const struct core_req *req, struct core_resp *resp)
{
	core *c = p->c;
	struct slot *s;

	switch (req->op) {
	case CORE_OP_EVENT_LIST: return call_list(p, req, resp);
	case CORE_OP_CUSTOMER_BOOKINGS: return call_customer(p, req, resp);
	case CORE_OP_CATALOG_GET:
	case CORE_OP_CATALOG_LIST: return core__catalog_read(c, req, resp);
	case CORE_OP_TICK:
	case CORE_OP_REMIND: {
		uint32_t got[CORE_SHARD_COUNT_MAX], keys[CORE_SHARD_COUNT_MAX];
		enum core_code code = CORE_OK;
		if (p->free_count < c->shard_count)
			return -EAGAIN;
		fan_out(p, req, got, keys, &code);
		memset(resp, 0, sizeof(*resp));
		resp->op = req->op;
		resp->code = code;
		for (unsigned sh = 0; sh < c->shard_count; sh++) {
			resp->count += got[sh];
			resp->keys_expired += keys[sh];
		}
		return 0;
	}
	default: break;
	}
	if (op_catalogue(req->op))
		return call_catalogue(p, req, resp);
	if (req->op == CORE_OP_NONE || req->op >= CORE_OP_COUNT)
		return -EINVAL;
	s = slot_get(p);
	if (!s)
		return -EAGAIN;
	send_req(p, s, req, 0);
	ASSERT(port_wait(p) == s);
	*resp = s->resp;
	slot_put(p, s);
	return 0;
}
