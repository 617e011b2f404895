/*
 * worker.c: running a shard (runtime.c has the design): a worker thread
 * of its own, or a pass of its host port's owner (core__host_run). It takes
 * slots from the ports' rings and from the other shards, decides each
 * against its own core_state (expiring due holds first), makes room for the
 * entry, hands it to the log hook and applies it; at an idempotency key's
 * home it answers replays and mismatches and keeps first results. Its side
 * of parking (shard_park) is here too; the parker's is in runtime.c.
 */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#define WORKER_SPIN_MAX 100 /* empty turns spinning, */
#define WORKER_YIELD_MAX 16 /* then yielding, before a worker sleeps */

static void to_port(core *c, unsigned from_shard, struct slot *s)
{
	ring_push(&c->to_port[from_shard * c->port_count + s->port], s);
	bell_ring(&c->ports[s->port].bell);
}

static void between(core *c, unsigned from, unsigned to, struct slot *s)
{
	atomic_fetch_add_explicit(&c->between_count, 1, memory_order_relaxed);
	ring_push(&c->between[from * c->shard_count + to], s);
	bell_ring(c->shards[to].bell);
}

/* ---- the worker ---- */

/* Log and apply an entry of this shard's; -errno if the log refused it. */
static int shard_commit(struct shard *sh, const void *entry, size_t size,
			uint64_t *lsn)
{
	/* Room first: an entry that could not be applied is not logged. */
	int rc = core__state_reserve(sh->st, entry, size);

	if (rc == 0)
		rc = log_entry(sh->c, sh->index, entry, size, lsn);
	if (rc)
		return rc;
	rc = core_state_apply(sh->st, entry, size);
	/* Our own decision must fit our own state. */
	ASSERT(rc == 0);
	return 0;
}

static void shard_tick(struct shard *sh, core_time now, uint32_t *expired)
{
	const void *entry;
	size_t size;
	uint64_t lsn;
	uint32_t closed;

	while (core__state_expire_one(sh->st, now, &entry, &size)) {
		if (shard_commit(sh, entry, size, &lsn) != 0)
			return; /* the log refuses: holds expire after restart */
		if (expired)
			(*expired)++;
	}
	/* then the waitlists of classes that started */
	while (core__state_close_one(sh->st, now, &entry, &size, &closed))
		if (shard_commit(sh, entry, size, &lsn) != 0)
			return;
}

static int shard_commit_fn(void *ctx, const void *entry, size_t size)
{
	uint64_t lsn;

	return shard_commit(ctx, entry, size, &lsn);
}

static bool __attribute__((unused))
patch_view_matches(const core_state *st, const struct core_resp *resp)
{
	struct core_event_view v;

	return core_state_event(st, resp->event.id, &v) == CORE_OK &&
	       memcmp(&v, &resp->event, sizeof(v)) == 0;
}

static void shard_decide(struct shard *sh, struct slot *s)
{
	struct core_req *req = &s->req;
	struct core_resp *resp = &s->resp;
	const void *entry;
	size_t size;
	int rc;

	if (req->now < sh->now)
		req->now = sh->now;
	sh->now = req->now;
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	switch (req->op) {
	case CORE_OP_TICK:
		shard_tick(sh, req->now, &resp->count);
		resp->keys_expired = core__state_idem_expire(sh->st, req->now);
		return;
	case CORE_OP_REMIND:
		shard_tick(sh, req->now, NULL);
		rc = core__state_remind(sh->st, req, shard_commit_fn, sh,
					&resp->count);
		resp->code = rc == 0	     ? CORE_OK
			     : rc == -EINVAL ? CORE_INVALID
					     : CORE_FULL;
		return;
	case CORE_OP_EVENT_GET:
		shard_tick(sh, req->now, NULL);
		resp->code =
			core_state_event(sh->st, req->event_id, &resp->event);
		return;
	case CORE_OP_BOOKING_GET:
		shard_tick(sh, req->now, NULL);
		resp->code = core_state_booking(sh->st, req->booking_id,
						&resp->booking);
		return;
	case CORE_OP_EVENT_LIST:
		shard_tick(sh, req->now, NULL);
		resp->count =
			(uint32_t)core__state_list(sh->st, req, req->u.list.out,
						   req->u.list.limit);
		return;
	case CORE_OP_CUSTOMER_BOOKINGS:
		shard_tick(sh, req->now, NULL);
		resp->count = (uint32_t)
			core__state_customer(sh->st, req->customer_id,
					     req->u.customer.out,
					     req->u.customer.capacity);
		return;
	default: break;
	}
	shard_tick(sh, req->now, NULL);
	core__state_decide_nokey(sh->st, req, resp, &entry, &size);
	if (size) {
		rc = shard_commit(sh, entry, size, &resp->lsn);
		if (rc) {
			memset(resp, 0, sizeof(*resp));
			resp->op = req->op;
			resp->code = CORE_FULL;
			s->rc = rc;
		}
	}
	/* The decided view of a patched event must be what apply made. */
	DEBUG_ASSERT(resp->code != CORE_OK || req->op != CORE_OP_EVENT_PATCH ||
		     patch_view_matches(sh->st, resp));
}

static uint64_t in_flight_key(const struct core_idem *k)
{
	uint64_t key = k->hi ^ (k->lo * UINT64_C(0x9E3779B97F4A7C15));
	return key ? key : 1;
}

/* At the key's home: true if the slot was answered here (replay, mismatch,
 * in flight); false if the key is now reserved for this request. */
static bool home_check(struct shard *sh, struct slot *s)
{
	struct core_req *req = &s->req;
	enum core_code code;

	if (req->now < sh->now)
		req->now = sh->now;
	memset(&s->resp, 0, sizeof(s->resp));
	s->resp.op = req->op;
	if (map_get(&sh->in_flight, in_flight_key(&req->idem))) {
		s->resp.code = CORE_IDEM_IN_FLIGHT;
		return true;
	}
	code = core__idem_lookup(sh->st, &req->idem, req->now, &s->resp);
	if (code != CORE_OK) {
		memset(&s->resp, 0, sizeof(s->resp));
		s->resp.op = req->op;
		s->resp.code = code;
		return true;
	}
	if (s->resp.replayed)
		return true;
	if (map_put(&sh->in_flight, in_flight_key(&req->idem), 1) != 0) {
		s->resp.code = CORE_FULL;
		return true;
	}
	return false;
}

/* At the key's home, after the decision: keep its result if it made an
 * entry (resp.lsn set by the log, or any stored outcome), free the key. */
static void home_finish(struct shard *sh, struct slot *s, bool stored)
{
	map_del(&sh->in_flight, in_flight_key(&s->req.idem));
	if (stored) {
		struct core_idem_result res;
		core__idem_result(&s->resp, &res);
		res.lsn = s->resp.lsn;
		core__idem_store(sh->st, &s->req.idem, s->req.now, &res);
	}
}

static bool decision_stored(const struct slot *s)
{
	/* Decisions that made an entry: OK, and recorded payment outcomes. */
	return s->rc == 0 && (s->resp.code == CORE_OK ||
			      (s->req.op == CORE_OP_PAY &&
			       (s->resp.code == CORE_NOT_PENDING ||
				s->resp.code == CORE_PAYMENT_MISMATCH)));
}

static void shard_handle(struct shard *sh, struct slot *s)
{
	core *c = sh->c;

	switch (s->kind) {
	case SLOT_REQ:
		if (core_idem_present(&s->req.idem) &&
		    op_keyed_shard(s->req.op) && s->home == sh->index) {
			if (home_check(sh, s)) {
				to_port(c, sh->index, s);
				return;
			}
			if (s->target != sh->index) {
				between(c, sh->index, s->target, s);
				return;
			}
		}
		shard_decide(sh, s);
		if (core_idem_present(&s->req.idem) &&
		    op_keyed_shard(s->req.op)) {
			if (s->home != sh->index) {
				s->kind = SLOT_DONE;
				between(c, sh->index, s->home, s);
				return;
			}
			home_finish(sh, s, decision_stored(s));
		}
		to_port(c, sh->index, s);
		return;
	case SLOT_DONE:
		home_finish(sh, s, decision_stored(s));
		to_port(c, sh->index, s);
		return;
	case SLOT_RESERVE:
		s->rc = home_check(sh, s) ? 1 : 0;
		to_port(c, sh->index, s);
		return;
	case SLOT_COMPLETE:
		home_finish(sh, s, s->rc == 0 && s->resp.code == CORE_OK);
		to_port(c, sh->index, s);
		return;
	case SLOT_APPLY:
		s->rc = core_state_apply(sh->st, s->entry, s->entry_size);
		s->resp.count = core__state_archive_count(sh->st);
		to_port(c, sh->index, s);
		return;
	case SLOT_PREPARE:
		s->rc = core__state_reserve(sh->st, s->entry, s->entry_size);
		to_port(c, sh->index, s);
		return;

	default: ASSERT(!"unknown slot kind");
	}
}

/* Work waits in one of a shard's count rings into it (ring k is
 * rings[k * shard_count + its index]: to_shard by port, between by shard). */
static bool rings_busy(const struct shard *sh, struct ring *rings,
		       unsigned count)
{
	for (unsigned k = 0; k < count; k++)
		if (!ring_empty(&rings[k * sh->c->shard_count + sh->index]))
			return true;
	return false;
}

/* Work waits in a shard's rings (from the ports, from other shards). */
static bool shard_rings_busy(const struct shard *sh)
{
	core *c = sh->c;

	return rings_busy(sh, c->to_shard, c->port_count) ||
	       rings_busy(sh, c->between, c->shard_count);
}

static bool shard_has_work(void *arg)
{
	struct shard *sh = arg;
	core *c = sh->c;

	return shard_rings_busy(sh) || atomic_load(&c->stop) ||
	       (atomic_load(&c->park_gen) & 1 && !sh->park_acked);
}

#define SHARD_BATCH 64

/* Decides what waits in a shard's count rings (as in rings_busy), at most
 * a batch from each, its slots prefetched before any is decided. Returns
 * how many. */
static unsigned shard_drain(struct shard *sh, struct ring *rings,
			    unsigned count)
{
	core *c = sh->c;
	unsigned n = 0;

	for (unsigned k = 0; k < count; k++) {
		struct ring *r = &rings[k * c->shard_count + sh->index];
		struct slot *batch[SHARD_BATCH], *s;
		const struct core_req *reqs[SHARD_BATCH];
		unsigned m = 0;

		while (m < SHARD_BATCH && (s = ring_pop(r))) {
			reqs[m] = &s->req;
			batch[m++] = s;
		}
		core__state_prefetch_batch(sh->st, reqs, m);
		for (unsigned i = 0; i < m; i++)
			shard_handle(sh, batch[i]);
		n += m;
	}
	return n;
}

/* What other shards passed to this one. Counted out of between_count once
 * handled (so a parker never sees 0 while one is still on its way). */
static unsigned shard_pass_between(struct shard *sh)
{
	unsigned n = shard_drain(sh, sh->c->between, sh->c->shard_count);

	atomic_fetch_sub_explicit(&sh->c->between_count, n,
				  memory_order_relaxed);
	return n;
}

/* What the ports sent. */
static unsigned shard_pass_ports(struct shard *sh)
{
	return shard_drain(sh, sh->c->to_shard, sh->c->port_count);
}

/* Parking, from the shard's side: stop taking requests from ports, finish
 * what travels between shards, and once every shard has stopped and nothing
 * travels, wait. Returns true while parking is asked. */
static bool shard_park(struct shard *sh, unsigned *handled)
{
	core *c = sh->c;
	uint32_t gen = atomic_load_explicit(&c->park_gen, memory_order_acquire);

	if (!(gen & 1))
		return false;
	if (!sh->park_acked) {
		sh->park_acked = true;
		atomic_fetch_add(&c->park_acks, 1);
	}
	if (*handled == 0 && atomic_load(&c->park_acks) == c->shard_count &&
	    atomic_load(&c->between_count) == 0) {
		/* Nothing moves: our state is the parker's until it bumps
		 * the generation (release there, acquire here). */
		atomic_fetch_add_explicit(&c->park_count, 1,
					  memory_order_release);
		syscall(SYS_futex, &c->park_gen, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
		while (atomic_load_explicit(&c->park_gen,
					    memory_order_acquire) == gen) {
			struct timespec ts = { 0, SLEEP_NS_MAX };
			syscall(SYS_futex, &c->park_gen, FUTEX_WAIT_PRIVATE,
				gen, &ts, NULL, 0);
		}
		sh->park_acked = false;
	}
	return true;
}

void *core__shard_main(void *arg)
{
	struct shard *sh = arg;
	core *c = sh->c;
	unsigned idle = 0;

	for (;;) {
		unsigned n = shard_pass_between(sh);

		if (shard_park(sh, &n))
			continue;
		n += shard_pass_ports(sh);
		if (n) {
			idle = 0;
			continue;
		}
		if (atomic_load(&c->stop))
			break;
		if (++idle < WORKER_SPIN_MAX) {
			__builtin_ia32_pause();
			continue;
		}
		if (idle < WORKER_SPIN_MAX + WORKER_YIELD_MAX) {
			sched_yield(); /* cores are shared with the callers */
			continue;
		}
		bell_wait(sh->bell, shard_has_work, sh);
	}
	return NULL;
}

/* ---- hosted shards ----
 *
 * With core_config.host_count, no shard has a thread: whoever holds a host
 * port's host_lock runs the shards it hosts, one pass at a time. The
 * port's owner (a network thread) tries every turn, so its own requests
 * are decided in the turn that read them, with no thread crossed; a
 * core_call waiting on a hosted shard tries too (before the owner starts,
 * nobody else would); the parker takes every host_lock and keeps them. */

unsigned core__host_run(core_port *h)
{
	unsigned n = 0;

	if (h->hosted_count == 0 || pthread_mutex_trylock(&h->host_lock))
		return 0;
	for (unsigned i = 0; i < h->hosted_count; i++) {
		n += shard_pass_between(h->hosted[i]);
		n += shard_pass_ports(h->hosted[i]);
	}
	pthread_mutex_unlock(&h->host_lock);
	return n;
}

bool core__host_has_work(core_port *h)
{
	if (atomic_load(&h->c->host_parked))
		return false; /* the unparker rings the host's bell */
	for (unsigned i = 0; i < h->hosted_count; i++)
		if (shard_rings_busy(h->hosted[i]))
			return true;
	return false;
}

void core__hosts_drain(core *c)
{
	unsigned n;

	do {
		n = 0;
		for (unsigned s = 0; s < c->shard_count; s++)
			n += shard_pass_between(&c->shards[s]);
	} while (n);
	ASSERT(atomic_load(&c->between_count) == 0);
}
