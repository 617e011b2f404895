/*
 * runtime.h: what the files of the sharded runtime share (runtime.c: open,
 * close, parking, snapshots, recovery; worker.c: running shards; port.c:
 * the callers' side). The design is at the top of runtime.c.
 */
#ifndef BOOKD_CORE_RUNTIME_H
#define BOOKD_CORE_RUNTIME_H

#include "catalog.h"
#include "record.h"
#include "ring.h"
#include "state.h"
#include "table.h"

#include <pthread.h>

enum slot_kind {
	SLOT_REQ = 1,  /* a request on its way to decision */
	SLOT_DONE,     /* decided: back to the home shard, then the port */
	SLOT_RESERVE,  /* catalogue op: reserve the key at its home */
	SLOT_COMPLETE, /* catalogue op: store or release the key at its home */
	SLOT_APPLY,    /* apply an entry's records (generation) */
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

struct shard {
	core *c;
	unsigned index;
	core_state *st;
	pthread_t thread;     /* a worker's; none when hosted */
	struct bell own_bell; /* a worker's */
	struct bell *bell;    /* rung when work arrives: own_bell, or the host
			       * port's (its owner runs this shard) */
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
	/* A host port (core_config.host_count): the shards it hosts, run by
	 * whoever holds host_lock (its owner's core_port_run, a waiting
	 * core_call, or the parker, who keeps it while parked). */
	struct shard **hosted;
	unsigned hosted_count;
	pthread_mutex_t host_lock;
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
	_Atomic uint32_t park_acks;    /* shards that stopped taking requests */
	_Atomic uint32_t park_count;   /* shards parked */
	_Atomic int64_t between_count; /* slots in shard-to-shard rings */
	bool hosted;		  /* cfg.host_count > 0: no worker threads */
	_Atomic bool host_parked; /* hosted: the parker holds every host */
};

/* Ops routed first to their idempotency key's home shard when keyed. */
static inline bool op_keyed_shard(enum core_op op)
{
	return op == CORE_OP_BOOK || op == CORE_OP_CANCEL ||
	       op == CORE_OP_PAY || op == CORE_OP_EVENT_PATCH;
}

/* Hands an entry to the log hook (lane: a shard's index, or shard_count
 * for catalogue entries); *lsn = its log position, 0 when not logged. */
static inline int log_entry(core *c, unsigned lane, const void *entry,
			    size_t size, uint64_t *lsn)
{
	*lsn = 0;
	if (!c->cfg.log || size == 0)
		return 0;
	return c->cfg.log(c->cfg.log_ctx, lane, entry, size, lsn);
}

/* A catalogue entry that fits (checked by its maker: core/import.c), made
 * room for in every shard, logged and applied; with cat_lock held
 * (port.c). 0 and *lsn, or -errno with nothing logged. */
int core__cat_write(core_port *p, const uint8_t *entry, size_t size,
		    uint64_t *lsn);
/* CORE_OP_SERIES_PATCH (series_edit.c): parks the core, decides on every
 * shard's events of the series, logs and applies, unparks. 0, or -errno
 * (resp.code CORE_FULL) when the log failed. */
int core__series_patch(core_port *p, const struct core_req *req,
		       struct core_resp *resp);
/* A shard worker's thread (worker.c); arg is its struct shard. */
void *core__shard_main(void *arg);
/* Hosted shards (worker.c). Runs a pass over the shards h hosts if its
 * host_lock is free; returns the slots handled. */
unsigned core__host_run(core_port *h);
/* Work waits in the rings of a shard h hosts (not while parked). */
bool core__host_has_work(core_port *h);
/* Parked (every host_lock held): finishes what travels between shards. */
void core__hosts_drain(core *c);
/* CORE_OP_CATALOG_GET and _LIST (lookup.c), under the catalogue lock. */
int core__catalog_read(core *c, const struct core_req *req,
		       struct core_resp *resp);

#endif
