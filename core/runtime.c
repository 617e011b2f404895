/*
 * runtime.c: the sharded runtime around core_state: opening and closing it,
 * parking, snapshots and recovery. Running a shard (a worker thread, or a
 * host port's pass) is in worker.c, the
 * callers' side (ports, fan-out reads, catalogue operations) in port.c, the
 * rings and bells in ring.h; what they share in runtime.h.
 *
 *
 * Threads. N shards, each owning one core_state (the events whose
 * XXH3(event id) mod N is its index, and the idempotency keys homed on
 * it), and any number of callers, each with its own core_port. A shard is
 * run either by a worker thread of its own (worker.c) or, hosted
 * (core_config.host_count), by whoever holds its host port's lock: that
 * port's owner each turn of its loop (bookd's network threads, so a
 * request is decided in the turn that read it, no thread woken), a
 * core_call waiting for it, or the parker. Nothing on the booking path
 * takes a contended lock: a request travels as a pointer to a slot owned
 * by the port, through single-producer single-consumer rings:
 *
 *     port -> shard            ring to_shard[port][shard]
 *     shard -> port            ring to_port[shard][port]
 *     shard -> shard           ring between[from][to]
 *
 * (one producer and one consumer at a time: a hosted shard's side of a
 * ring is used only under its host's lock). Every ring is sized for all
 * the slots that could ever be in it (a port has at most ring_size slots
 * in flight), so a push never fails and there is no overflow path.
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
 * flight between shards, for snapshots and recovery (see that section):
 * workers acknowledge and wait; hosted shards are parked by taking every
 * host's lock, then finishing what travels between shards.
 *
 * Sleep and wake-up (ring.h): an idle worker (or a waiting core_call, or
 * an idle host, whose bell is its hosted shards' too) announces it
 * sleeps, checks its rings once more and waits on a futex (a host: on
 * its eventfd); a pusher fences and wakes it only if it announced
 * (Dekker-style), so the fast path costs one fence and one load.
 */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

/* ---- open and close ---- */

static int port_init(core *c, struct core_port *p, unsigned index)
{
	uint32_t n = c->cfg.ring_size;

	p->c = c;
	p->index = index;
	atomic_init(&p->bell.wake_fd, -1);
	pthread_mutex_init(&p->host_lock, NULL);
	p->slots = calloc(n, sizeof(*p->slots));
	p->list_scratch =
		calloc((size_t)c->shard_count * (CORE_LIST_LIMIT_MAX + 1),
		       sizeof(*p->list_scratch));
	p->customer_scratch =
		calloc((size_t)c->shard_count * (CORE_LIST_LIMIT_MAX + 1),
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

static void port_free(struct core_port *p)
{
	free(p->slots);
	free(p->list_scratch);
	free(p->customer_scratch);
	free(p->entry);
	free(p->hosted);
	pthread_mutex_destroy(&p->host_lock);
}

/* An array of n rings (NULL: none made) and their items. */
static void rings_free(struct ring *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		free(r[i].items);
	free(r);
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
	    cfg->catalog_count_max == 0 ||
	    cfg->catalog_count_max > CORE_CATALOG_COUNT_MAX ||
	    cfg->host_count > P || cfg->host_first > P - cfg->host_count)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->shard_count = S;
	c->port_count = P;
	c->hosted = cfg->host_count > 0;
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
		atomic_init(&sh->own_bell.wake_fd, -1);
		sh->bell = &sh->own_bell;
		sh->st = core__state_new(cfg, c->cat, s, S);
		if (!sh->st || map_init(&sh->in_flight, 256))
			goto out_free;
		if (c->hosted) {
			struct core_port *h =
				&c->ports[cfg->host_first + s % cfg->host_count];
			if (!h->hosted)
				h->hosted = calloc(S, sizeof(*h->hosted));
			if (!h->hosted)
				goto out_free;
			h->hosted[h->hosted_count++] = sh;
			sh->bell = &h->bell;
		}
	}
	for (; !c->hosted && started < S; started++) {
		rc = -pthread_create(&c->shards[started].thread, NULL,
				     core__shard_main, &c->shards[started]);
		if (rc)
			goto out_stop;
	}
	*out = c;
	return 0;

out_stop:
	atomic_store(&c->stop, true);
	for (unsigned s = 0; s < started; s++) {
		bell_ring(c->shards[s].bell);
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
	if (!atomic_exchange(&c->stop, true) && !c->hosted) {
		for (unsigned s = 0; s < S; s++) {
			atomic_fetch_add(&c->shards[s].own_bell.seq, 1);
			syscall(SYS_futex, &c->shards[s].own_bell.seq,
				FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
			pthread_join(c->shards[s].thread, NULL);
		}
	}
	for (unsigned s = 0; c->shards && s < S; s++) {
		core_state_free(c->shards[s].st);
		map_free(&c->shards[s].in_flight);
	}
	rings_free(c->to_shard, P * S);
	rings_free(c->to_port, P * S);
	rings_free(c->between, S * S);
	for (unsigned p = 0; c->ports && p < P; p++)
		port_free(&c->ports[p]);
	free(c->ports);
	catalog_free(c->cat);
	free(c->shards);
	pthread_mutex_destroy(&c->cat_lock);
	free(c);
}

core_port *core_port_get(core *c, unsigned port_index)
{
	return port_index < c->port_count ? &c->ports[port_index] : NULL;
}

/* ---- parking, snapshots, recovery ----
 *
 * Parking stops every shard between two decisions, with nothing in flight
 * between shards and the catalogue lock held: every entry the log was
 * given is then applied, so the state is exactly the log up to its last
 * position, and the caller may read it (snapshot) or change it (recovery).
 * A snapshot is the whole state written as entries of records (the log's
 * records, plus CORE_REC_BOOKING_RESTORE for a booking as it is), each entry
 * preceded by its u32 size, after a u64 magic.
 */

static bool is_parked(core *c)
{
	return c->hosted ? atomic_load(&c->host_parked)
			 : atomic_load(&c->park_gen) & 1;
}

int core_park(core *c)
{
	uint32_t gen, n;

	pthread_mutex_lock(&c->cat_lock);
	if (c->hosted) {
		/* Each host's pass ends soon; then nobody runs its shards. */
		for (unsigned p = 0; p < c->port_count; p++)
			if (c->ports[p].hosted_count)
				pthread_mutex_lock(&c->ports[p].host_lock);
		atomic_store(&c->host_parked, true);
		core__hosts_drain(c);
		return 0;
	}
	atomic_store(&c->park_acks, 0);
	atomic_store(&c->park_count, 0);
	gen = atomic_fetch_add(&c->park_gen, 1) + 1;
	ASSERT(gen & 1);
	for (unsigned sh = 0; sh < c->shard_count; sh++) {
		atomic_fetch_add(&c->shards[sh].own_bell.seq, 1);
		syscall(SYS_futex, &c->shards[sh].own_bell.seq,
			FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	}
	while ((n = atomic_load_explicit(&c->park_count,
					 memory_order_acquire)) <
	       c->shard_count) {
		struct timespec ts = { 0, 100000 };
		syscall(SYS_futex, &c->park_gen, FUTEX_WAIT_PRIVATE, gen, &ts,
			NULL, 0);
	}
	return 0;
}

void core_unpark(core *c)
{
	if (c->hosted) {
		ASSERT(atomic_load(&c->host_parked));
		atomic_store(&c->host_parked, false);
		for (unsigned p = 0; p < c->port_count; p++) {
			if (!c->ports[p].hosted_count)
				continue;
			pthread_mutex_unlock(&c->ports[p].host_lock);
			bell_ring(
				&c->ports[p].bell); /* what waited meanwhile */
		}
		pthread_mutex_unlock(&c->cat_lock);
		return;
	}
	ASSERT(atomic_load(&c->park_gen) & 1);
	atomic_fetch_add_explicit(&c->park_gen, 1, memory_order_release);
	syscall(SYS_futex, &c->park_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
		NULL, 0);
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

static void snap_rec(void *arg, const struct core_rec *r)
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

int core_snapshot_write(core *c,
			int (*fn)(void *ctx, const void *buf, size_t size),
			void *ctx)
{
	struct snap_out *o = calloc(1, sizeof(*o));
	uint64_t magic = CORE_SNAP_MAGIC;
	int rc;

	ASSERT(is_parked(c));
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
	struct core_rec r;
	size_t pos = 0;
	int rc;

	ASSERT(is_parked(c));
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
	const void *entry;
	size_t pos = 0, n;
	int rc;

	while ((rc = core_snapshot_next(buf, size, &pos, &entry, &n)) > 0) {
		rc = core_replay(c, entry, n);
		if (rc)
			return rc;
	}
	return rc;
}
