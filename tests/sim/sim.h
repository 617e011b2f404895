/*
 * sim.h: the deterministic simulator of a whole bookd node (bookd_sim).
 *
 * One thread runs the real core (core/, hosted: no worker thread), the real
 * log (wal/, in manual mode: wal_step is the writer's turn) and the node
 * (api/node.h: open, recovery, snapshots) against a disk, a clock and a
 * network that a seed drives. Same seed, same run: every request, answer,
 * fault and recovery goes into a trace hash, printed per seed.
 *
 * The disk (sim_disk.c) sits behind wal_set_syscalls: a pwrite goes into
 * an in-memory "unsynced" list of the file (by inode); fdatasync writes
 * that list into the real file (under /dev/shm) and forgets it. A crash
 * (sim_disk_crash) makes every later pwrite, fdatasync and fallocate fail
 * with EIO (the node runs into its own error and is closed: what it does
 * after the crash never reaches the "platter"), then keeps of each file's
 * unsynced writes nothing, a torn prefix (to a random byte), or a random
 * subset of its 4 KiB pages. Faults a seed may also inject: a crash at the
 * Nth I/O (inside a batch, a roll-over, a snapshot, a recovery), fdatasync
 * failing with EIO (its data stays unsynced), ENOSPC from pwrite and
 * fallocate, short writes, slow fdatasync (simulated time passes), and,
 * between a crash and the restart, one bit flipped in synced data that
 * recovery can tell is acknowledged (segments before the last, the last
 * up to DURABLE's end, snapshots, DURABLE itself).
 *
 * Limits (the real file system underneath): file create, rename and unlink
 * happen at once and are never lost or reordered by a crash (as if every
 * directory operation were followed by a directory fsync); DURABLE is
 * written by the log with the real pwrite (evidence, not data: outside the
 * syscall table), so its writes are never lost; mmap reads see only synced
 * data (nothing reads unsynced log data before a restart). A bit flip
 * behind DURABLE's end in the last segment is not injected: it is
 * indistinguishable from a torn write and is cut by design (docs/wal.md).
 *
 * The clock (sim_clock_ns) is the log's (wal_syscalls.now_ns) and the
 * requests' (core_req.now = base + clock + a skew that jumps forward by
 * up to 3 h, or back by up to 1 h). A running shard takes a request older
 * than the latest it saw at that latest time (core/worker.c; a restart
 * forgets it): the checker gives the model that time (sim.c, life_now). The network: several clients with requests in flight; answers
 * leave only once the log made them durable, and a crash loses every
 * answer not sent. The checker (sim.c) compares, after every restart and
 * at the end, the recovered node with the reference model (tests/model.c).
 */
#ifndef BOOKD_SIM_H
#define BOOKD_SIM_H

#include <stdbool.h>
#include <stdint.h>

/* ---- randomness: splitmix64 ---- */

struct sim_rng {
	uint64_t state;
};

static inline uint64_t sim_rnd(struct sim_rng *r)
{
	uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static inline uint32_t sim_below(struct sim_rng *r, uint32_t n)
{
	return n ? (uint32_t)(sim_rnd(r) % n) : 0;
}

/* True with probability per_mille / 1000. */
static inline bool sim_chance(struct sim_rng *r, uint32_t per_mille)
{
	return sim_below(r, 1000) < per_mille;
}

/* ---- the trace: what a seed did, as one hash ---- */

void sim_trace(uint64_t v);
uint64_t sim_trace_hash(void);
void sim_trace_reset(void);

/* ---- the clock ---- */

uint64_t sim_clock_ns(void);
void sim_clock_advance(uint64_t ns);

/* ---- the disk (sim_disk.c) ---- */

enum sim_fault {
	SIM_FAULT_CRASH,	/* a kill between turns */
	SIM_FAULT_CRASH_IO,	/* a kill at the Nth I/O */
	SIM_FAULT_SYNC_EIO,	/* fdatasync failed */
	SIM_FAULT_WRITE_ENOSPC, /* pwrite: disk full */
	SIM_FAULT_ALLOC_ENOSPC, /* fallocate: disk full */
	SIM_FAULT_SHORT_WRITE,	/* pwrite wrote part */
	SIM_FAULT_SLOW_SYNC,	/* fdatasync took long */
	SIM_FAULT_TORN,		/* crash kept a torn prefix */
	SIM_FAULT_PAGES,	/* crash kept a subset of pages */
	SIM_FAULT_BIT_FLIP,	/* a bit of synced data flipped */
	SIM_FAULT_CLOCK_JUMP,	/* the requests' clock jumped ahead */
	SIM_FAULT_CLOCK_BACK,	/* the requests' clock jumped back */
	SIM_FAULT_COUNT
};

extern const char *const sim_fault_names[SIM_FAULT_COUNT];
extern uint64_t sim_fault_counts[SIM_FAULT_COUNT];

/* Per-mille rates of the disk's faults for one seed. */
struct sim_disk_rates {
	uint32_t sync_eio, write_enospc, alloc_enospc, short_write, slow_sync;
};

/* Installs the syscall table; rng drives the faults. */
void sim_disk_start(struct sim_rng *rng, const struct sim_disk_rates *rates);
/* Removes it and forgets every unsynced write (closing its fds). */
void sim_disk_stop(void);
/* Faults on (during a run) or off (catalogue retries, checks). */
void sim_disk_faults(bool on);
/* A crash at the I/O count_from_now-th I/O from now (0: none armed). */
void sim_disk_arm_crash(uint64_t count_from_now);
/* The process "died": at an armed I/O, or now. */
bool sim_disk_crashed(void);
void sim_disk_crash_now(void);
/* After the node was closed: applies the crash to the unsynced writes
 * (lost, torn or some pages) and makes the disk work again. */
void sim_disk_after_crash(void);
/* A fault the log refused to go on after (EIO, ENOSPC) happened since
 * the last restart. */
bool sim_disk_failed(void);
uint64_t sim_disk_io_count(void);

#endif
