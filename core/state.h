/*
 * state.h: what the runtime (runtime.c, worker.c, port.c) asks of one
 * shard's state beyond the public core_state_* calls of core.h: made for a
 * shard of a runtime, routing, room before logging, idempotency at a key's
 * home, reads, the snapshot dump. The state's own layout is in state_int.h.
 */
#ifndef BOOKD_CORE_STATE_H
#define BOOKD_CORE_STATE_H

#include "core.h"
#include "record.h"

struct catalog;

/* Room for everything the entry adds to this shard (0), or -ENOMEM /
 * -EINVAL with nothing changed: then applying it cannot run out of room. */
int core__state_reserve(core_state *st, const void *entry, size_t entry_size);
/* Events the last CORE_REC_ARCHIVE applied to this shard dropped. */
uint32_t core__state_archive_count(const core_state *st);
/* Start loading what deciding req will read first (a batch is prefetched,
 * then decided, so the cache misses overlap). */
void core__state_prefetch(const core_state *st, const struct core_req *req);
/* The same for a batch of n requests about to be decided in order (what
 * they point to as well: state.c). A worker passes what it popped. */
void core__state_prefetch_batch(const core_state *st,
				const struct core_req *const reqs[],
				unsigned n);
/* A state for shard `index` of `count` reading the shared catalogue `cat`
 * (the state then owns no catalogue), or owning one when cat is NULL. */
core_state *core__state_new(const struct core_config *cfg, struct catalog *cat,
			    unsigned index, unsigned count);
unsigned core__shard_of(uint64_t event_id, unsigned count);
unsigned core__key_home(const struct core_idem *k, unsigned count);
/* Idempotency look-up at the key's home: CORE_OK (new), or a replay filled
 * into resp (and *replay_lsn), or CORE_IDEM_MISMATCH. */
enum core_code core__idem_lookup(core_state *st, const struct core_idem *k,
				 core_time now, struct core_resp *resp);
void core__idem_store(core_state *st, const struct core_idem *k,
		      core_time created, const struct core_idem_result *res);
void core__idem_result(const struct core_resp *resp,
		       struct core_idem_result *out);
/* Writes the IDEM record that keeps req's key with its first answer. */
void core__idem_emit(struct wbuf *w, const struct core_req *req,
		     const struct core_resp *resp);
/* Decide without the idempotency check (already done at the key's home). */
enum core_code core__state_decide_nokey(core_state *st,
					const struct core_req *req,
					struct core_resp *resp,
					const void **entry, size_t *entry_size);
/* Drops the idempotency keys past their retention (the tick); returns how
 * many. Not a decision: lookups ignore such keys already. */
uint32_t core__state_idem_expire(core_state *st, core_time now);
/* Expire the first due hold, if any: returns true and an entry. */
bool core__state_expire_one(core_state *st, core_time now, const void **entry,
			    size_t *entry_size);
/* Close the waitlist of the first class that started by now, if any
 * (decide.c, docs/core.md "Start of class"): true and an entry that moves
 * up to a chunk of its waitlisted bookings to waitlist_expired (*closed:
 * how many); call again until false. */
bool core__state_close_one(core_state *st, core_time now, const void **entry,
			   size_t *entry_size, uint32_t *closed);
/* Logs and applies an entry of the state's (the runtime's shard_commit,
 * or core_state_apply's caller): 0 or -errno. */
typedef int (*core__commit_fn)(void *ctx, const void *entry, size_t size);
/* A reminder run (CORE_OP_REMIND, decide.c): each reminder due at
 * req->now, decided and then committed through commit, in turn; stops at
 * the first commit that fails (-errno; the next run decides it again).
 * *notified: the NOTIFY records committed. -EINVAL: leads out of range. */
int core__state_remind(core_state *st, const struct core_req *req,
		       core__commit_fn commit, void *ctx, uint32_t *notified);
size_t core__state_list(const core_state *st, const struct core_req *req,
			struct core_event_view *out, size_t out_capacity);
size_t core__state_customer(const core_state *st, const char *customer_id,
			    struct core_booking_view *out, size_t capacity);
/* Snapshot writer: every record that rebuilds this shard's part. */
void core__state_dump(const core_state *st, rec_sink fn, void *ctx);

#endif
