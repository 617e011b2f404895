/*
 * core.c: the sharded runtime around core_state.
 *
 * Threads. N shard workers, each owning one core_state (the events whose
 * XXH3(event id) mod N is its index, and the idempotency keys homed on it),
 * and any number of callers, each with its own core_port. Nothing on the
 * booking path takes a lock: a request travels as a pointer to a slot owned
 * by the port, through single-producer single-consumer rings:
 *
 *     port -> shard            ring to_shard[port][shard]
 *     shard -> port            ring to_port[shard][port]
 *     shard -> shard           ring between[from][to]
 *
 * Every ring is sized for all the slots that could ever be in it (a port
 * has at most ring_size slots in flight), so a push never fails and there
 * is no overflow path.
 *
 * Routes. A request without an idempotency key goes to its target shard and
 * back. A keyed one goes first to the key's home shard (the low bits of the
 * key), which answers a replay or a mismatch itself, or marks the key in
 * flight and passes the slot to the target shard; the target decides and
 * passes the slot back to the home, which stores the result under the key
 * (when the decision made an entry) and answers the port. So the same key
 * is found whatever event or booking it was used for.
 *
 * Per decision at the target: expire due holds (each its own entry), decide,
 * make room for the entry (tables grow; out of memory refuses it, nothing
 * logged), hand the entry to the log hook (which returns its log position),
 * apply.
 * The answer carries that position: the caller sends it only once the log
 * says it is durable.
 *
 * Catalogue operations are rare: they run on the calling thread under one
 * mutex (decide, log, apply); generated events reach their shards as an
 * APPLY message holding the entry, and the caller waits for every shard.
 *
 * Parking (core_park) stops every shard between decisions with nothing in
 * flight between shards, for snapshots and recovery (see that section).
 *
 * Sleep and wake-up: an idle worker (or a waiting core_call) announces it
 * sleeps, checks its rings once more and waits on a futex; a pusher fences
 * and wakes it only if it announced (Dekker-style), so the fast path costs
 * one fence and one load.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CACHE_LINE 64
#define WORKER_SPIN_MAX 100 /* empty turns spinning, */
#define WORKER_YIELD_MAX 16 /* then yielding, before a worker sleeps */
#define SLEEP_NS_MAX 2000000 /* a sleeper re-checks at least this often */

enum slot_kind {
	SLOT_REQ = 1, /* a request on its way to decision */
	SLOT_DONE,    /* decided: back to the home shard, then the port */
	SLOT_RESERVE, /* catalogue op: reserve the key at its home */
	SLOT_COMPLETE,/* catalogue op: store or release the key at its home */
	SLOT_APPLY,   /* apply an entry's records (generation) */
	SLOT_PREPARE, /* make room for an entry's records, before it is logged */
};

struct slot {
	struct core_req req;
	struct core_resp resp;
	uint64_t tag;
	uint8_t kind;
	uint8_t home, target;
	uint16_t port;
	const void *entry; /* SLOT_APPLY */
	size_t entry_size;
	int rc;
	struct slot *next_free;
};

/* Each side keeps a private copy of the other side's index and reads the
 * shared one only when the copy says full (producer) or empty (consumer),
 * so a busy ring moves few cache lines between cores. */
struct ring {
	_Alignas(CACHE_LINE) _Atomic uint32_t head; /* consumer's */
	uint32_t tail_seen;                         /* consumer's copy */
	_Alignas(CACHE_LINE) _Atomic uint32_t tail; /* producer's */
	uint32_t head_seen;                         /* producer's copy */
	_Alignas(CACHE_LINE) uint32_t mask;
	struct slot **items;
};

struct bell {
	_Alignas(CACHE_LINE) _Atomic uint32_t seq;
	_Atomic uint32_t sleepers;
	int wake_fd; /* >= 0: an eventfd to write instead of a futex wake */
};

struct shard {
	core *c;
	unsigned index;
	core_state *st;
	pthread_t thread;
	struct bell bell;
	core_time now; /* latest request time seen: time never goes back */
	struct map in_flight; /* idempotency keys being decided -> 1 */
	bool park_acked; /* this park: we take no more requests from ports */
};

struct core_port {
	core *c;
	unsigned index;
	struct slot *slots, *free;
	uint32_t free_count;
	uint32_t fresh; /* slots[fresh..] never used yet (untouched memory) */
	struct bell bell;
	struct core_event_view *list_scratch;
	struct core_booking_view *customer_scratch;
	uint8_t *entry; /* catalogue entries */
};

struct core {
	struct core_config cfg;
	unsigned shard_count, port_count;
	struct catalog *cat;
	pthread_mutex_t cat_lock;
	struct shard *shards;
	struct core_port *ports;
	struct ring *to_shard; /* [port * S + shard] */
	struct ring *to_port;  /* [shard * P + port] */
	struct ring *between;  /* [from * S + to] */
	_Atomic bool stop;
	/* Parking (see core_park): odd while asked, a futex word. */
	_Atomic uint32_t park_gen;
	_Atomic uint32_t park_acks;  /* shards that stopped taking requests */
	_Atomic uint32_t park_count; /* shards parked */
	_Atomic int64_t between_count; /* slots in shard-to-shard rings */
};

/* ---- rings and bells ---- */

static int ring_init(struct ring *r, uint32_t size)
{
	uint32_t cap = 1;

	while (cap < size)
		cap <<= 1;
	r->items = calloc(cap, sizeof(*r->items));
	if (!r->items)
		return -ENOMEM;
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

static void ring_push(struct ring *r, struct slot *s)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (tail - r->head_seen > r->mask)
		r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
	/* Sized for every slot that exists: it can't be full. */
	ASSERT(tail - r->head_seen <= r->mask);
	r->items[tail & r->mask] = s;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

static struct slot *ring_pop(struct ring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	struct slot *s;

	if (head == r->tail_seen) {
		r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == r->tail_seen)
			return NULL;
	}
	s = r->items[head & r->mask];
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return s;
}

/* For a sleeper's last look, from the consumer's side. */
static bool ring_empty(struct ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_relaxed) ==
	       atomic_load_explicit(&r->tail, memory_order_acquire);
}

static void bell_ring(struct bell *b)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&b->sleepers, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&b->seq, 1, memory_order_release);
		if (b->wake_fd >= 0) {
			uint64_t one = 1;
			/* Only fails if the counter is at its maximum: awake. */
			(void)!write(b->wake_fd, &one, sizeof(one));
		} else {
			syscall(SYS_futex, &b->seq, FUTEX_WAKE_PRIVATE, INT_MAX,
				NULL, NULL, 0);
		}
	}
}

/* Sleeps unless has_work() says otherwise after announcing the sleep. */
static void bell_wait(struct bell *b, bool (*has_work)(void *), void *arg)
{
	uint32_t seq = atomic_load_explicit(&b->seq, memory_order_acquire);
	struct timespec ts = { 0, SLEEP_NS_MAX };

	atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
	if (!has_work(arg))
		syscall(SYS_futex, &b->seq, FUTEX_WAIT_PRIVATE, seq, &ts, NULL, 0);
	atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
}

/* ---- routing ---- */

unsigned core_shard_of_event(const core *c, uint64_t event_id)
{
	return core__shard_of(event_id, c->shard_count);
}

static bool op_keyed_shard(enum core_op op)
{
	return op == CORE_OP_BOOK || op == CORE_OP_CANCEL || op == CORE_OP_PAY ||
	       op == CORE_OP_EVENT_PATCH;
}

static bool op_catalogue(enum core_op op)
{
	return op >= CORE_OP_ORG_CREATE && op <= CORE_OP_ARCHIVE;
}

static void to_shard(core *c, struct slot *s, unsigned shard)
{
	ring_push(&c->to_shard[s->port * c->shard_count + shard], s);
	bell_ring(&c->shards[shard].bell);
}

static void to_port(core *c, unsigned from_shard, struct slot *s)
{
	ring_push(&c->to_port[from_shard * c->port_count + s->port], s);
	bell_ring(&c->ports[s->port].bell);
}

static void between(core *c, unsigned from, unsigned to, struct slot *s)
{
	atomic_fetch_add_explicit(&c->between_count, 1, memory_order_relaxed);
	ring_push(&c->between[from * c->shard_count + to], s);
	bell_ring(&c->shards[to].bell);
}

/* ---- the worker ---- */

static int log_entry(core *c, unsigned lane, const void *entry, size_t size,
		     uint64_t *lsn)
{
	*lsn = 0;
	if (!c->cfg.log || size == 0)
		return 0;
	return c->cfg.log(c->cfg.log_ctx, lane, entry, size, lsn);
}

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

	while (core__state_expire_one(sh->st, now, &entry, &size)) {
		if (shard_commit(sh, entry, size, &lsn) != 0)
			return; /* the log refuses: holds expire after restart */
		if (expired)
			(*expired)++;
	}
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
		return;
	case CORE_OP_EVENT_GET:
		shard_tick(sh, req->now, NULL);
		resp->code = core_state_event(sh->st, req->event_id, &resp->event);
		return;
	case CORE_OP_BOOKING_GET:
		shard_tick(sh, req->now, NULL);
		resp->code = core_state_booking(sh->st, req->booking_id,
						&resp->booking);
		return;
	case CORE_OP_EVENT_LIST:
		shard_tick(sh, req->now, NULL);
		resp->count = (uint32_t)core__state_list(sh->st, req,
							 req->u.list.out,
							 req->u.list.limit);
		return;
	case CORE_OP_CUSTOMER_BOOKINGS:
		shard_tick(sh, req->now, NULL);
		resp->count = (uint32_t)core__state_customer(
			sh->st, req->customer_id, req->u.customer.out,
			req->u.customer.capacity);
		return;
	default:
		break;
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
		struct idem_result res;
		core__idem_result(&s->resp, &res);
		res.lsn = s->resp.lsn;
		core__idem_store(sh->st, &s->req.idem, s->req.now, &res);
	}
}

static bool decision_stored(const struct slot *s)
{
	/* Decisions that made an entry: OK, and recorded payment outcomes. */
	return s->rc == 0 &&
	       (s->resp.code == CORE_OK ||
		(s->req.op == CORE_OP_PAY &&
		 (s->resp.code == CORE_NOT_PENDING ||
		  s->resp.code == CORE_PAYMENT_MISMATCH)));
}

static void shard_handle(struct shard *sh, struct slot *s)
{
	core *c = sh->c;

	switch (s->kind) {
	case SLOT_REQ:
		if (core_idem_present(&s->req.idem) && op_keyed_shard(s->req.op) &&
		    s->home == sh->index) {
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
		if (core_idem_present(&s->req.idem) && op_keyed_shard(s->req.op)) {
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

	default:
		ASSERT(!"unknown slot kind");
	}
}

static bool shard_has_work(void *arg)
{
	struct shard *sh = arg;
	core *c = sh->c;

	for (unsigned p = 0; p < c->port_count; p++)
		if (!ring_empty(&c->to_shard[p * c->shard_count + sh->index]))
			return true;
	for (unsigned f = 0; f < c->shard_count; f++)
		if (!ring_empty(&c->between[f * c->shard_count + sh->index]))
			return true;
	return atomic_load(&c->stop) ||
	       (atomic_load(&c->park_gen) & 1 && !sh->park_acked);
}

#define SHARD_BATCH 64

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
		atomic_fetch_add_explicit(&c->park_count, 1, memory_order_release);
		syscall(SYS_futex, &c->park_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
			NULL, 0);
		while (atomic_load_explicit(&c->park_gen, memory_order_acquire) == gen) {
			struct timespec ts = { 0, SLEEP_NS_MAX };
			syscall(SYS_futex, &c->park_gen, FUTEX_WAIT_PRIVATE, gen,
				&ts, NULL, 0);
		}
		sh->park_acked = false;
	}
	return true;
}

static void *shard_main(void *arg)
{
	struct shard *sh = arg;
	core *c = sh->c;
	unsigned idle = 0;

	for (;;) {
		unsigned n = 0;
		struct slot *s;

		for (unsigned f = 0; f < c->shard_count; f++) {
			struct ring *r = &c->between[f * c->shard_count + sh->index];
			for (unsigned k = 0; k < SHARD_BATCH && (s = ring_pop(r)); k++, n++) {
				shard_handle(sh, s);
				atomic_fetch_sub_explicit(&c->between_count, 1,
							  memory_order_relaxed);
			}
		}
		if (shard_park(sh, &n))
			continue;
		for (unsigned p = 0; p < c->port_count; p++) {
			struct ring *r = &c->to_shard[p * c->shard_count + sh->index];
			struct slot *batch[SHARD_BATCH];
			unsigned k = 0;

			while (k < SHARD_BATCH && (s = ring_pop(r)))
				batch[k++] = s;
			for (unsigned i = 0; i < k; i++)
				core__state_prefetch(sh->st, &batch[i]->req);
			for (unsigned i = 0; i < k; i++)
				shard_handle(sh, batch[i]);
			n += k;
		}
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
		bell_wait(&sh->bell, shard_has_work, sh);
	}
	return NULL;
}

/* ---- open and close ---- */

static int port_init(core *c, struct core_port *p, unsigned index)
{
	uint32_t n = c->cfg.ring_size;

	p->c = c;
	p->index = index;
	p->bell.wake_fd = -1;
	p->slots = calloc(n, sizeof(*p->slots));
	p->list_scratch = calloc((size_t)c->shard_count * (CORE_LIST_LIMIT_MAX + 1),
				 sizeof(*p->list_scratch));
	p->customer_scratch = calloc((size_t)c->shard_count * (CORE_LIST_LIMIT_MAX + 1),
				     sizeof(*p->customer_scratch));
	p->entry = malloc(CORE_ENTRY_SIZE_MAX);
	if (!p->slots || !p->list_scratch || !p->customer_scratch || !p->entry)
		return -ENOMEM;
	/* Slots are handed out from the array's start as first needed
	 * (slot_get), so the pages of those never used are never touched: a
	 * port of 16384 slots costs ~12 MB only once that many are in flight. */
	p->free_count = n;
	return 0;
}

int core_open(const struct core_config *cfg, core **out)
{
	core *c;
	unsigned S = cfg->shard_count, P = cfg->port_count;
	uint32_t slots_total;
	int rc = -ENOMEM;
	unsigned started = 0;

	*out = NULL;
	if (S == 0 || S > CORE_SHARD_COUNT_MAX || P == 0 || P > UINT16_MAX ||
	    cfg->ring_size == 0 || cfg->ring_size > (1u << 20) ||
	    cfg->catalog_count_max == 0 || cfg->catalog_count_max > CORE_CATALOG_COUNT_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->shard_count = S;
	c->port_count = P;
	slots_total = cfg->ring_size * P;
	pthread_mutex_init(&c->cat_lock, NULL);
	c->cat = catalog_new(cfg->catalog_count_max, cfg->horizon_days,
			     cfg->generate_max_days);
	c->shards = calloc(S, sizeof(*c->shards));
	c->ports = calloc(P, sizeof(*c->ports));
	c->to_shard = calloc((size_t)P * S, sizeof(*c->to_shard));
	c->to_port = calloc((size_t)S * P, sizeof(*c->to_port));
	c->between = calloc((size_t)S * S, sizeof(*c->between));
	if (!c->cat || !c->shards || !c->ports || !c->to_shard || !c->to_port ||
	    !c->between)
		goto out_free;
	for (unsigned i = 0; i < P * S; i++)
		if (ring_init(&c->to_shard[i], cfg->ring_size) ||
		    ring_init(&c->to_port[i], cfg->ring_size))
			goto out_free;
	for (unsigned i = 0; i < S * S; i++)
		if (ring_init(&c->between[i], slots_total))
			goto out_free;
	for (unsigned p = 0; p < P; p++)
		if (port_init(c, &c->ports[p], p))
			goto out_free;
	for (unsigned s = 0; s < S; s++) {
		struct shard *sh = &c->shards[s];
		sh->c = c;
		sh->index = s;
		sh->bell.wake_fd = -1;
		sh->st = core__state_new(cfg, c->cat, s, S);
		if (!sh->st || map_init(&sh->in_flight, 256))
			goto out_free;
	}
	for (; started < S; started++) {
		rc = -pthread_create(&c->shards[started].thread, NULL, shard_main,
				     &c->shards[started]);
		if (rc)
			goto out_stop;
	}
	*out = c;
	return 0;

out_stop:
	atomic_store(&c->stop, true);
	for (unsigned s = 0; s < started; s++) {
		bell_ring(&c->shards[s].bell);
		pthread_join(c->shards[s].thread, NULL);
	}
out_free:
	c->shard_count = S;
	atomic_store(&c->stop, true);
	for (unsigned s = 0; c->shards && s < S; s++)
		c->shards[s].thread = 0;
	core_close(c);
	return rc;
}

void core_close(core *c)
{
	unsigned S, P;

	if (!c)
		return;
	S = c->shard_count;
	P = c->port_count;
	if (!atomic_exchange(&c->stop, true)) {
		for (unsigned s = 0; s < S; s++) {
			atomic_fetch_add(&c->shards[s].bell.seq, 1);
			syscall(SYS_futex, &c->shards[s].bell.seq,
				FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
			pthread_join(c->shards[s].thread, NULL);
		}
	}
	for (unsigned s = 0; c->shards && s < S; s++) {
		core_state_free(c->shards[s].st);
		map_free(&c->shards[s].in_flight);
	}
	for (unsigned i = 0; c->to_shard && i < P * S; i++) {
		free(c->to_shard[i].items);
		free(c->to_port[i].items);
	}
	for (unsigned i = 0; c->between && i < S * S; i++)
		free(c->between[i].items);
	for (unsigned p = 0; c->ports && p < P; p++) {
		free(c->ports[p].slots);
		free(c->ports[p].list_scratch);
		free(c->ports[p].customer_scratch);
		free(c->ports[p].entry);
	}
	catalog_free(c->cat);
	free(c->shards);
	free(c->ports);
	free(c->to_shard);
	free(c->to_port);
	free(c->between);
	pthread_mutex_destroy(&c->cat_lock);
	free(c);
}

core_port *core_port_get(core *c, unsigned port_index)
{
	return port_index < c->port_count ? &c->ports[port_index] : NULL;
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
	default:
		return core__shard_of(req->event_id, c->shard_count);
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
	to_shard(c, s, op_keyed_shard(req->op) && core_idem_present(&req->idem)
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
		struct slot *s = ring_pop(&c->to_port[sh * c->port_count + p->index]);
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
	p->bell.wake_fd = fd;
}

bool core_port_idle_begin(core_port *p)
{
	atomic_fetch_add_explicit(&p->bell.sleepers, 1, memory_order_seq_cst);
	if (!port_has_work(p))
		return true;
	atomic_fetch_sub_explicit(&p->bell.sleepers, 1, memory_order_relaxed);
	return false;
}

void core_port_idle_end(core_port *p)
{
	atomic_fetch_sub_explicit(&p->bell.sleepers, 1, memory_order_relaxed);
}

void core_wait(core_port *p)
{
	/* Spin a little, then give the core away, then sleep. */
	for (unsigned spin = 0; spin < 1000; spin++) {
		if (port_has_work(p))
			return;
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
		if (spin < 200)
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

/* Sends req to every shard and waits for all: got[shard] = its count.
 * Listings write into the shard's own part of the port's scratch, one more
 * than asked, so that a cut list is known. The caller checked free slots. */
static void fan_out(core_port *p, const struct core_req *req, uint32_t *got)
{
	core *c = p->c;

	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		struct slot *s = slot_get(p);
		s->req = *req;
		if (req->op == CORE_OP_EVENT_LIST) {
			s->req.u.list.limit = req->u.list.limit + 1;
			s->req.u.list.out = p->list_scratch + sh * (CORE_LIST_LIMIT_MAX + 1);
		} else if (req->op == CORE_OP_CUSTOMER_BOOKINGS) {
			s->req.u.customer.capacity = req->u.customer.capacity + 1;
			s->req.u.customer.out =
				p->customer_scratch + sh * (CORE_LIST_LIMIT_MAX + 1);
		}
		s->kind = SLOT_REQ;
		s->target = s->home = (uint8_t)sh;
		to_shard(c, s, sh);
	}
	for (unsigned k = 0; k < c->shard_count; k++) {
		struct slot *s = port_wait(p);
		got[s->target] = s->resp.count;
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
	fan_out(p, req, got);
	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	for (;;) {
		int best = -1;
		for (unsigned sh = 0; sh < S; sh++) {
			const struct core_event_view *v;
			if (at[sh] == got[sh])
				continue;
			v = &p->list_scratch[sh * (CORE_LIST_LIMIT_MAX + 1) + at[sh]];
			if (best < 0 ||
			    view_before(v, &p->list_scratch[best * (CORE_LIST_LIMIT_MAX + 1) + at[best]]))
				best = (int)sh;
		}
		if (best < 0)
			break;
		if (resp->count == limit) {
			resp->more = true;
			break;
		}
		req->u.list.out[resp->count++] =
			p->list_scratch[best * (CORE_LIST_LIMIT_MAX + 1) + at[best]++];
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
	fan_out(p, req, got);
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

/* Before a catalogue entry with events is logged: every shard makes room
 * for its part (-ENOMEM: refused, nothing logged; rooms made stay). */
static int cat_prepare(core_port *p, const uint8_t *entry, size_t size)
{
	core *c = p->c;
	int rc = 0;

	for (unsigned sh = 0; sh < c->shard_count && rc == 0; sh++) {
		struct slot *s = slot_get(p);
		ASSERT(s);
		s->kind = SLOT_PREPARE;
		s->entry = entry;
		s->entry_size = size;
		call_slot(p, s, sh);
		rc = s->rc;
		slot_put(p, s);
	}
	return rc;
}

/* Apply a catalogue entry: the catalogue's records here, the events' in
 * their shards (waiting for each), an ARCHIVE in every shard. Returns the
 * events an ARCHIVE dropped in all (0 for other entries). Called with
 * cat_lock held. */
static int cat_apply(core_port *p, const uint8_t *entry, size_t size)
{
	core *c = p->c;
	struct rec r;
	size_t pos = 0;
	bool events = false;
	uint32_t archived = 0;

	while (pos < size) {
		ASSERT(rec_decode(entry, size, &pos, &r) == 0);
		ASSERT(catalog_apply(c->cat, &r) == 0);
		events |= rec_event_id(&r) != 0 || r.type == REC_ARCHIVE;
	}
	if (!events)
		return 0;
	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		struct slot *s = slot_get(p);
		ASSERT(s);
		s->kind = SLOT_APPLY;
		s->entry = entry;
		s->entry_size = size;
		call_slot(p, s, sh);
		ASSERT(s->rc == 0);
		archived += s->resp.count;
		slot_put(p, s);
	}
	return (int)archived;
}

static void emit_idem(struct wbuf *w, const struct core_req *req,
		      const struct core_resp *resp)
{
	struct rec r = { .type = REC_IDEM, .at = req->now };

	r.u.idem.hi = req->idem.hi;
	r.u.idem.lo = req->idem.lo;
	r.u.idem.fingerprint = req->idem.fingerprint;
	core__idem_result(resp, &r.u.idem.result);
	rec_encode(w, &r);
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
		total += c->cfg.event_count_max - (held[sh] < c->cfg.event_count_max
						   ? held[sh] : c->cfg.event_count_max);
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
		struct wbuf w = { .data = p->entry, .capacity = CORE_ENTRY_SIZE_MAX };
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
			if (resp->replayed && req->op == CORE_OP_SERIES_CREATE &&
			    resp->code == CORE_OK) {
				pthread_mutex_lock(&c->cat_lock);
				rc = series_generate(p, req->now, resp->id, resp);
				pthread_mutex_unlock(&c->cat_lock);
			}
			return rc;
		}
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
			emit_idem(&w, req, resp);
			rc = log_entry(c, c->shard_count, w.data, w.size, &resp->lsn);
		}
	} else {
		struct wbuf w = { .data = p->entry, .capacity = CORE_ENTRY_SIZE_MAX };
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
				emit_idem(&w, req, resp);
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
	case CORE_OP_EVENT_LIST:
		return call_list(p, req, resp);
	case CORE_OP_CUSTOMER_BOOKINGS:
		return call_customer(p, req, resp);
	case CORE_OP_TICK: {
		uint32_t got[CORE_SHARD_COUNT_MAX];
		if (p->free_count < c->shard_count)
			return -EAGAIN;
		fan_out(p, req, got);
		memset(resp, 0, sizeof(*resp));
		resp->op = req->op;
		for (unsigned sh = 0; sh < c->shard_count; sh++)
			resp->count += got[sh];
		return 0;
	}
	default:
		break;
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

/* ---- parking, snapshots, recovery ----
 *
 * Parking stops every shard between two decisions, with nothing in flight
 * between shards and the catalogue lock held: every entry the log was
 * given is then applied, so the state is exactly the log up to its last
 * position, and the caller may read it (snapshot) or change it (recovery).
 * A snapshot is the whole state written as entries of records (the log's
 * records, plus REC_BOOKING_RESTORE for a booking as it is), each entry
 * preceded by its u32 size, after a u64 magic.
 */

#define SNAP_MAGIC UINT64_C(0x31504e534b4f4f42) /* "BOOKSNP1" */

int core_park(core *c)
{
	uint32_t gen, n;

	pthread_mutex_lock(&c->cat_lock);
	atomic_store(&c->park_acks, 0);
	atomic_store(&c->park_count, 0);
	gen = atomic_fetch_add(&c->park_gen, 1) + 1;
	ASSERT(gen & 1);
	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		atomic_fetch_add(&c->shards[sh].bell.seq, 1);
		syscall(SYS_futex, &c->shards[sh].bell.seq, FUTEX_WAKE_PRIVATE,
			INT_MAX, NULL, NULL, 0);
	}
	while ((n = atomic_load_explicit(&c->park_count, memory_order_acquire)) <
	       c->shard_count) {
		struct timespec ts = { 0, 100000 };
		syscall(SYS_futex, &c->park_gen, FUTEX_WAIT_PRIVATE, gen, &ts,
			NULL, 0);
	}
	return 0;
}

void core_unpark(core *c)
{
	ASSERT(atomic_load(&c->park_gen) & 1);
	atomic_fetch_add_explicit(&c->park_gen, 1, memory_order_release);
	syscall(SYS_futex, &c->park_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	pthread_mutex_unlock(&c->cat_lock);
}

struct snap_out {
	int (*fn)(void *ctx, const void *buf, size_t size);
	void *ctx;
	struct wbuf w;
	uint8_t buf[CORE_ENTRY_SIZE_MAX];
	int rc;
};

static void snap_flush(struct snap_out *o)
{
	uint32_t n = (uint32_t)o->w.size;

	if (n == 0 || o->rc)
		return;
	o->rc = o->fn(o->ctx, &n, sizeof(n));
	if (!o->rc)
		o->rc = o->fn(o->ctx, o->w.data, n);
	o->w.size = 0;
}

static void snap_rec(void *arg, const struct rec *r)
{
	struct snap_out *o = arg;
	size_t before = o->w.size;

	rec_encode(&o->w, r);
	if (o->w.overflow) { /* entry full: flush it, start the next */
		o->w.size = before;
		o->w.overflow = false;
		snap_flush(o);
		rec_encode(&o->w, r);
		ASSERT(!o->w.overflow);
	}
}

int core_snapshot_write(core *c, int (*fn)(void *ctx, const void *buf, size_t size),
			void *ctx)
{
	struct snap_out *o = calloc(1, sizeof(*o));
	uint64_t magic = SNAP_MAGIC;
	int rc;

	ASSERT(atomic_load(&c->park_gen) & 1);
	if (!o)
		return -ENOMEM;
	o->fn = fn;
	o->ctx = ctx;
	o->w = (struct wbuf){ .data = o->buf, .capacity = sizeof(o->buf) };
	o->rc = fn(ctx, &magic, sizeof(magic));
	catalog_dump(c->cat, snap_rec, o);
	for (unsigned sh = 0; sh < c->shard_count && !o->rc; sh++)
		core__state_dump(c->shards[sh].st, snap_rec, o);
	snap_flush(o);
	rc = o->rc;
	free(o);
	return rc;
}

int core_replay(core *c, const void *entry, size_t size)
{
	const uint8_t *p = entry;
	struct rec r;
	size_t pos = 0;
	int rc;

	ASSERT(atomic_load(&c->park_gen) & 1);
	if (size > CORE_ENTRY_SIZE_MAX)
		return -EINVAL;
	while (pos < size)
		if (rec_decode(p, size, &pos, &r) != 0)
			return -EINVAL;
	for (pos = 0; pos < size;) {
		ASSERT(rec_decode(p, size, &pos, &r) == 0);
		if (catalog_apply(c->cat, &r) != 0)
			return -EUCLEAN;
	}
	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		rc = core_state_apply(c->shards[sh].st, entry, size);
		if (rc)
			return rc;
	}
	return 0;
}

int core_snapshot_load(core *c, const void *buf, size_t size)
{
	const uint8_t *p = buf;
	uint64_t magic;
	uint32_t n;
	int rc;

	if (size < sizeof(magic))
		return -EINVAL;
	memcpy(&magic, p, sizeof(magic));
	if (magic != SNAP_MAGIC)
		return -EINVAL;
	for (size_t pos = sizeof(magic); pos < size; pos += n) {
		if (size - pos < 4)
			return -EINVAL;
		memcpy(&n, p + pos, 4);
		pos += 4;
		if (n == 0 || n > CORE_ENTRY_SIZE_MAX || n > size - pos)
			return -EINVAL;
		rc = core_replay(c, p + pos, n);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- names ---- */

const char *core_code_name(enum core_code code)
{
	static const char *const names[CORE_CODE_COUNT] = {
		[CORE_OK] = "ok",
		[CORE_EVENT_FULL] = "event_full",
		[CORE_ALREADY_BOOKED] = "already_booked",
		[CORE_NOT_BOOKABLE] = "event_not_bookable",
		[CORE_NO_EVENT] = "event_not_found",
		[CORE_NO_BOOKING] = "booking_not_found",
		[CORE_NO_ORG] = "org_not_found",
		[CORE_NO_LOCATION] = "location_not_found",
		[CORE_NO_INSTRUCTOR] = "instructor_not_found",
		[CORE_NO_SERIES] = "series_not_found",
		[CORE_NO_CUSTOMER] = "customer_not_found",
		[CORE_NOT_ACTIVE] = "booking_not_active",
		[CORE_NOT_PENDING] = "booking_not_pending",
		[CORE_PAYMENT_MISMATCH] = "payment_mismatch",
		[CORE_CAPACITY_BELOW_TAKEN] = "capacity_below_taken",
		[CORE_IDEM_MISMATCH] = "idempotency_key_reused",
		[CORE_IDEM_IN_FLIGHT] = "idempotency_key_in_use",
		[CORE_INVALID] = "invalid_request",
		[CORE_FULL] = "unavailable",
		[CORE_LIMIT] = "limit_exceeded",
	};
	return (unsigned)code < CORE_CODE_COUNT && names[code] ? names[code]
							       : "unknown";
}

const char *core_limit_message(const struct core_resp *resp, char *buf,
			       size_t size)
{
	unsigned v = resp->count;

	switch ((enum core_limit)resp->id) {
	case CORE_LIMIT_GENERATE_DAYS:
		snprintf(buf, size, "until is more than %u days ahead "
			 "(generate_max_days)", v);
		break;
	case CORE_LIMIT_EVENTS:
		snprintf(buf, size, "a shard would hold more than %u events "
			 "(max_events per shard); archive past events or "
			 "raise it", v);
		break;
	case CORE_LIMIT_BOOKINGS:
		snprintf(buf, size, "a shard holds %u bookings (max_bookings "
			 "per shard); archive past events or raise it", v);
		break;
	case CORE_LIMIT_CUSTOMERS:
		snprintf(buf, size, "a shard holds %u customers "
			 "(max_customers per shard)", v);
		break;
	case CORE_LIMIT_EVENT_BOOKINGS:
		snprintf(buf, size, "the event had %u bookings made on it, "
			 "its most", v);
		break;
	default:
		snprintf(buf, size, "a configured limit was reached");
		break;
	}
	return buf;
}

const char *core_booking_status_name(uint8_t status)
{
	switch (status) {
	case CORE_BOOKING_CONFIRMED:
		return "confirmed";
	case CORE_BOOKING_PENDING_PAYMENT:
		return "pending_payment";
	case CORE_BOOKING_WAITLISTED:
		return "waitlisted";
	case CORE_BOOKING_CANCELLED:
		return "cancelled";
	case CORE_BOOKING_EXPIRED:
		return "expired";
	case CORE_BOOKING_PAYMENT_FAILED:
		return "payment_failed";
	default:
		return "unknown";
	}
}
