/*
 * bookbench_internal.h: the harness's own parts, internal to bookbench.c,
 * bookbench_scenario.c, bookbench_load.c, bookbench_check.c and
 * bookbench_bookd.c. The drivers and the reports see only bookbench.h; this
 * header includes it, never the other way round.
 *
 *   bookbench.c           main: flags, the commands, exit codes
 *   bookbench_scenario.c  the scenarios: each connection's next operation,
 *                         what an answer means for it
 *   bookbench_load.c      one run: event-loop threads, closed and open
 *                         loop, progress
 *   bookbench_check.c     the check after a run: everything read back
 *   bookbench_bookd.c     a bookd of bookbench's own (--bookd)
 *
 * Per connection (struct bb_worker) the harness keeps what it sent and has
 * not had answered (slots, in submit order), the bookings it may cancel,
 * recent decisions it may replay, and the bookings acknowledged to it (for
 * the check); struct bb_runner is one run over all connections.
 */
#ifndef BOOKBENCH_INTERNAL_H
#define BOOKBENCH_INTERNAL_H

#include "bookbench.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define BB_CONN_MAX 1024
#define BB_INFLIGHT_MAX 1024
#define BB_OWN_MAX (1u << 16) /* bookings a connection remembers to cancel */
#define BB_REPLAY_MAX 256     /* recent decisions a connection may replay */
#define BB_SCENARIO_MAX 8
#define BB_CHECK_WINDOW 64

/* ---- Options ---------------------------------------------------------- */

struct bb_opts {
	const char *command;
	const char *drivers; /* run: one; compare: comma list */
	const char *scenarios;
	unsigned connections, inflight;
	unsigned threads; /* 1..connections (0 until the flags are read) */
	double rate;
	double duration_s;
	uint64_t requests;
	long events, customers, orgs, capacity,
		waitlist; /* < 0: scenario default */
	uint64_t seed;
	const char *out_dir;
	const char *bookd_path; /* start this bookd */
	bool bookd_replicate; /* the started bookd replicates into a fresh database */
	bool bookd_limits;	  /* the started bookd keeps its rate limits */
	const char *bookd_socket; /* "tcp" | "unix" | NULL: the baseline's */
	double max_error_pct;	  /* a run with more errors fails */
	const char *replica_url; /* where bookd replicates (the check reads it) */
	bool no_check;
	bool quiet;
	unsigned replay_pct;
	uint64_t track_max;
	double check_wait_s; /* replication catch-up wait */
	struct bb_config cfg;
};

/* ---- Scenarios -------------------------------------------------------- */

enum bb_scenario_id {
	SC_OPENING,
	SC_STEADY,
	SC_CANCEL_STORM,
	SC_READ_HEAVY,
	SC_COUNT
};

struct bb_scenario {
	const char *name;
	const char *what;
	uint32_t events, customers, orgs, capacity,
		waitlist;	       /* waitlist 0: = customers */
	unsigned pct_cancel, pct_read; /* of new operations; the rest book */
	bool preload;		       /* fill every event before measuring */
};

/* ---- Per-connection state --------------------------------------------- */

/* Where a connection is in the run. */
enum bb_phase {
	BB_PRELOAD, /* its share of the preload (unmeasured) */
	BB_BARRIER, /* waits for the measurement to start */
	BB_MEASURE, /* sends and takes answers */
	BB_DRAIN,   /* sends no more, takes what is outstanding */
	BB_DONE
};

struct bb_ack { /* an acknowledged booking, for the check */
	uint64_t booking_id, event_id;
	int64_t sent_ns, acked_ns;
	uint8_t status;	   /* enum bb_status at acknowledgement */
	uint8_t cancelled; /* cancelled by bookbench (acknowledged) */
};

struct bb_slot { /* one outstanding request */
	struct bb_op op;
	int64_t intended_ns;
	int64_t sent_ns;
	bool replay;
	uint64_t expect_id; /* replay: the first answer's booking id */
	bool preload;
};

struct bb_recent { /* a decision that may be replayed */
	struct bb_op op;
	uint64_t booking_id;
};

struct bb_worker {
	unsigned index;
	const struct bb_driver *drv;
	const struct bb_scenario *sc;
	struct bb_dataset *ds;
	void *conn;
	uint64_t rng;
	uint64_t seq;	 /* operations made */
	uint64_t cursor; /* opening: next (customer, round) of this connection */
	/* own active bookings, oldest first (a ring) */
	uint64_t *own;
	uint32_t own_head, own_count;
	struct bb_recent recent[BB_REPLAY_MAX];
	uint32_t recent_count;
	/* preload (cancel-storm): bookings still to make */
	uint64_t preload_next, preload_end;
	bool preload_counted; /* still counted in preload_pending */
	/* driving (its thread's event loop) */
	enum bb_phase phase;
	bool ready;	    /* its descriptor was ready: take answers */
	uint64_t sched;	    /* open loop: requests scheduled so far */
	int64_t sched_base; /* open loop: its first intended send */
	/* outstanding */
	struct bb_slot slots[BB_INFLIGHT_MAX];
	uint32_t slot_head, slot_count;
	/* acknowledged bookings */
	struct bb_ack *acks;
	uint64_t ack_count, ack_cap;
	bool ack_overflow;
	/* results, private until joined */
	uint64_t by_code[BB_CODE_COUNT];
	uint64_t by_kind[BB_OP_KIND_COUNT];
	uint64_t bookings_acked, cancels_acked, promotions;
	uint64_t unsent; /* open loop: due, not sent when the run ended */
	struct bb_hist hist;
	struct bb_hist hist_kind[BB_OP_KIND_COUNT];
	/* shared with the reporter */
	pthread_mutex_t lock;
	struct bb_hist interval;
	uint64_t interval_errors;
	char err[BB_ERR_SIZE];
	int fatal;
};

struct bb_runner {
	const struct bb_driver *drv;
	const struct bb_scenario *sc;
	struct bb_dataset *ds;
	unsigned connections, inflight, threads;
	double rate;
	int64_t start_ns, end_ns;
	uint64_t requests_max;
	atomic_uint_fast64_t tickets;
	atomic_bool stop;
	atomic_uint preload_pending;
	atomic_bool measuring;
	atomic_uint finished; /* connections that ran out of work (opening) */
	struct bb_worker *workers;
	uint32_t customer_count;
	unsigned replay_pct; /* of operations: replays of a recent decision */
	char key_prefix[32];
};

extern const struct bb_scenario bb_scenarios[SC_COUNT];

/* ---- What the parts give each other ----------------------------------- */

/* Prints "bookbench: ..." and exits 1 (bookbench.c). */
_Noreturn void bb_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* Set by SIGINT: runs end early, the reports are still written. */
extern volatile sig_atomic_t bb_interrupted;

/* splitmix64: the connections' and the run tags' randomness (seeded). */
static inline uint64_t bb_rnd_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Uniform in 0..n-1 (n > 0). */
static inline uint32_t bb_rnd_below(uint64_t *s, uint32_t n)
{
	ASSERT(n > 0);
	return (uint32_t)(((bb_rnd_next(s) >> 32) * n) >> 32);
}

/* Scenarios (bookbench_scenario.c). -1 when no scenario has that name. */
int bb_scenario_find(const char *name, size_t n);
/* The connection's next operation, into s (s->op, and whether it is a
 * replay or a preload). */
void bb_scenario_next(struct bb_runner *r, struct bb_worker *w,
		      struct bb_slot *s);
/* The opening is over for this connection (every customer of its share
 * tried every event); false for the other scenarios. */
bool bb_scenario_done(const struct bb_runner *r, const struct bb_worker *w);
/* What the answer res to s means for the connection's state and counts. */
void bb_scenario_answer(struct bb_runner *r, struct bb_worker *w,
			struct bb_slot *s, struct bb_result *res, int64_t now);

/* One scenario on one driver (bookbench_load.c): fills run, prints its
 * table and check. 0, or -1 when the run could not be made. */
int bb_run_one(const struct bb_opts *o, const struct bb_driver *drv, int sc_id,
	       struct bb_run *run);

/* A bookd of bookbench's own (bookbench_bookd.c): started from path, o's
 * addresses (and key, replica URL) pointed at it, info filled from its
 * --version; exits through bb_die when it does not come up. Stop: a no-op
 * when none was started. */
void bb_bookd_start(struct bb_opts *o, const char *path,
		    struct bb_bookd_info *info);
void bb_bookd_stop(const struct bb_opts *o);

/* After run r: reads back, through r's driver, every event and every
 * acknowledged booking, and checks them (bookbench_check.c); fills
 * run->check_report and run->check_problems. */
void bb_check(const struct bb_opts *o, struct bb_runner *r, struct bb_run *run);

#endif
