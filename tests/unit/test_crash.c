/*
 * test_crash.c: kill -9 a booking node at random moments; after each
 * restart every acknowledged decision must be there.
 *
 * Each cycle forks a child that opens a node (api/node.h) on the same data
 * directory, recovers it, creates the catalogue if no child finished that
 * yet, then books, cancels, changes capacities, retries earlier keyed
 * requests and reuses keys for other requests, one request at a time. For
 * each request the child writes to a pipe to the parent:
 *
 *   intent (op index, the whole struct core_req)   before core_call
 *   ack    (op index, the whole struct core_resp)  once node_wait_durable
 *                                                  covered resp.lsn
 *
 * and takes a snapshot every SNAPSHOT_EVERY requests, so recovery runs
 * from a snapshot plus the log tail (and some kills land in a snapshot).
 * The parent SIGKILLs it a random 5-80 ms after the node reported itself
 * open (in a quarter of the cycles after the fork: some die while
 * recovering, some while creating the catalogue), drains the pipe (records are written whole,
 * below PIPE_BUF) and opens the node itself: that recovery is under test.
 * The acknowledged requests are applied in order to the reference model
 * (tests/model.c) and every acknowledged answer must be the model's; then
 * the whole recovered state (every event's counts and status, every
 * booking) must equal the model's. If it does not and a request was in
 * flight (intent without ack), it may have become durable before the kill:
 * the model applies it and the state must then be equal. (If it is equal,
 * the op was lost or changed nothing visible, like a capacity set to its
 * value, yet may have stored its idempotency key: that key is never used
 * again.) No scheduled event may be overbooked and every acknowledged
 * booking must exist.
 *
 * The model stays exact because the catalogue has only free series (no
 * holds, nothing expires) and time is the op index: now = BASE_NOW + op
 * index * OP_MS, far before the first event. The catalogue calls carry
 * fixed idempotency keys and a fixed time, so a child that dies half-way
 * leaves the next one to finish the same catalogue; it is acknowledged by
 * a record listing the generated events, which the model then mirrors.
 *
 *     CRASH_SEED=n CRASH_CYCLES=n CRASH_VERBOSE=1 CRASH_KEEP=1 ./test_crash
 * CI runs 50 cycles; CRASH_CYCLES=10000 in the Release build is the long
 * profile (docs/reliability.md, Crash cycles), with a progress line every
 * 500 cycles. The run ends with a summary line of the figures published
 * there: cycles, kills by phase (recovering, creating the catalogue,
 * booking, in a snapshot: from the child's last records), acknowledged
 * requests checked, requests in flight at a kill found durable or not,
 * the reads that found no overbooking and no lost booking, and time.
 * The seed is printed first; a failure prints seed and cycle (the kill
 * moments depend on timing: a seed gives the same requests, not the same
 * run). The node's and the log's messages go to a log file beside the data
 * directory (its end shown on failure) unless CRASH_VERBOSE is set;
 * CRASH_KEEP keeps the directory after a failure.
 */
#include "core.h"
#include "model.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHARD_COUNT 2
#define SERIES_COUNT 4
#define SNAPSHOT_EVERY 200
#define OP_COUNT_MAX 1000000		/* op indexes in a whole run */
#define BASE_NOW INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define OP_MS 100			/* now = BASE_NOW + op index * OP_MS */
#define HOLD_MS (10 * 60 * 1000)	/* unused: the series are free */
#define RETENTION_MS (INT64_C(30) * 24 * 60 * 60 * 1000) /* > the run */
#define KILL_DELAY_MS_MIN 5
#define KILL_DELAY_MS_MAX 80
#define LOCK_WAIT_MS_MAX 5000	/* for an orphaned snapshot writer */
#define READY_WAIT_MS_MAX 10000 /* for the child to recover */
#define DRAIN_US 5000		/* the parent reads the pipe this often */
#define CATALOGUE_KEY_HI UINT64_C(0xca7a1095e)

_Static_assert((int64_t)OP_COUNT_MAX *OP_MS < INT64_C(2) * 24 * 60 * 60 * 1000,
	       "every op comes before the first event (2026-01-03)");

/* ---- randomness: a splitmix64 stream per purpose ---- */

struct rng {
	uint64_t state;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static uint32_t rnd_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(rnd(r) % n);
}

/* The stream of one op index (or of the catalogue, or of the kills). */
static struct rng rng_for(uint64_t seed, uint64_t stream, uint64_t index)
{
	struct rng r = { seed ^ stream * UINT64_C(0xD1B54A32D192ED03) };
	r.state ^= rnd(&(struct rng){ index });
	return r;
}

/* ---- the run, shared by parent and (as a fork's copy) child ---- */

static uint64_t seed;
static int cycle;
static char base_dir[64]; /* mkdtemp */
static char data_dir[96]; /* base_dir/data: the node's directory */
static char log_path[96]; /* base_dir/stderr.log */
static bool verbose;
static int log_fd = -1;

static bool catalogue_acked; /* the events are in the model */
static uint64_t next_op;     /* the next op index to run */

/* Keyed requests acknowledged (or found durable): retried later. */
static struct core_req *history;
static uint32_t history_count, history_cap;
/* Booking ids acknowledged (or found durable): cancelled later. */
static uint64_t *booking_ids;
static uint32_t booking_count, booking_cap;

static void *grow(void *p, uint32_t *cap, size_t elem_size)
{
	*cap = *cap ? *cap * 2 : 1024;
	p = realloc(p, *cap * elem_size);
	if (!p) {
		fprintf(stderr, "crash: out of memory\n");
		exit(1);
	}
	return p;
}

static void history_add(const struct core_req *q)
{
	if (history_count == history_cap)
		history = grow(history, &history_cap, sizeof(*history));
	history[history_count++] = *q;
}

/* A key whose fate is unknown is never used again. */
static void history_forget(const struct core_idem *k)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < history_count; i++)
		if (history[i].idem.hi != k->hi || history[i].idem.lo != k->lo)
			history[kept++] = history[i];
	history_count = kept;
}

static void booking_add(uint64_t id)
{
	if (booking_count == booking_cap)
		booking_ids =
			grow(booking_ids, &booking_cap, sizeof(*booking_ids));
	booking_ids[booking_count++] = id;
}

/* What an answer teaches the next requests. */
static void learn(const struct core_req *q, const struct core_resp *r)
{
	if (core_idem_present(&q->idem) && !r->replayed &&
	    r->code != CORE_IDEM_MISMATCH)
		history_add(q);
	if (q->op == CORE_OP_BOOK && r->code == CORE_OK && !r->replayed)
		booking_add(r->booking.id);
}

static void node_config(struct node_config *cfg)
{
	node_config_default(cfg);
	cfg->data_dir = data_dir;
	cfg->core.shard_count = SHARD_COUNT;
	cfg->core.port_count = 1;
	if (cycle % 2) {
		/* Odd cycles: the shards are hosted by port 1, which nobody
		 * owns, so port 0's calls run them while they wait (bookd's
		 * network threads host them; see core_port_run). */
		cfg->core.port_count = 2;
		cfg->core.host_first = 1;
		cfg->core.host_count = 1;
	}
	/* The log's fdatasyncs in flight: 1 and 2 every other pair of
	 * cycles, or BOOKD_LOG_SYNCS's for all. */
	cfg->log_syncs = (cycle / 2) % 2 ? 2 : 1;
	if (getenv("BOOKD_LOG_SYNCS"))
		cfg->log_syncs = (unsigned)atoi(getenv("BOOKD_LOG_SYNCS"));
	cfg->core.event_count_max = 256;
	/* Ceilings (tables start small): a long profile's every key and
	 * booking, none refused or dropped early, as the model keeps them. */
	cfg->core.booking_count_max = 1u << 20;
	cfg->core.customer_count_max = 128;
	cfg->core.idem_count_max = 1u << 20;
	cfg->core.ring_size = 16;
	cfg->core.hold_ms = HOLD_MS;
	cfg->core.idem_retention_ms = RETENTION_MS;
	cfg->core.horizon_days = 10;
	cfg->segment_size = WAL_SEGMENT_SIZE_MIN; /* roll over often */
	cfg->quiet = !verbose;
}

/* ---- the pipe: fixed-size records, each written whole ---- */

enum rec_kind {
	REC_READY = 1, /* the node is open: recovered */
	REC_INTENT,
	REC_ACK,
	REC_EVENT, /* a generated event, as listed after the catalogue */
	REC_CATALOGUE_DONE, /* count: the events sent before */
	REC_ERROR,	    /* the child failed: msg */
	REC_SNAP_BEGIN,	    /* node_snapshot called */
	REC_SNAP_END,	    /* and returned */
};

#define REC_MAGIC 0x63726173u

struct rec {
	uint32_t magic, kind;
	uint64_t op_index;
	union {
		struct core_req req;
		struct core_resp resp;
		struct core_event_view event;
		uint32_t count;
		char msg[256];
	} u;
};

_Static_assert(sizeof(struct rec) <= PIPE_BUF, "records are written whole");

/* ---- the child: a node under load until killed ---- */

static int child_fd = -1;

static void child_send(const struct rec *r)
{
	ssize_t k = write(child_fd, r, sizeof(*r));

	if (k != (ssize_t)sizeof(*r))
		_exit(4); /* the parent is gone or broken: nothing to tell */
}

static _Noreturn void child_fail(const char *fmt, ...)
{
	struct rec r = { .magic = REC_MAGIC, .kind = REC_ERROR };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.u.msg, sizeof(r.u.msg), fmt, ap);
	va_end(ap);
	child_send(&r);
	_exit(3);
}

static void child_call(node *n, core_port *p, const struct core_req *q,
		       struct core_resp *r)
{
	int rc = core_call(p, q, r);

	if (rc != 0)
		child_fail("core_call op %d: %s", q->op, strerror(-rc));
	if (r->code == CORE_FULL)
		child_fail("op %d refused with CORE_FULL (log failed?)", q->op);
	rc = node_wait_durable(n, r->lsn);
	if (rc != 0)
		child_fail("node_wait_durable(%" PRIu64 "): %s", r->lsn,
			   strerror(-rc));
}

/* Sends q as op under the catalogue's key `key`; the child dies unless
 * the answer is CORE_OK. */
static void child_call_ok(node *n, core_port *p, struct core_req *q,
			  struct core_resp *r, uint64_t key, enum core_op op,
			  const char *what)
{
	q->idem = (struct core_idem){ CATALOGUE_KEY_HI, key, key };
	q->op = op;
	child_call(n, p, q, r);
	if (r->code != CORE_OK)
		child_fail("%s: %s", what, core_code_name(r->code));
}

/* The same catalogue whoever creates it: fixed keys, time and specs. */
static void child_catalogue(node *n, core_port *p)
{
	static struct core_series_spec spec;
	static struct core_event_view views[CORE_LIST_LIMIT_MAX];
	struct rng g = rng_for(seed, 1, 0);
	struct core_req q;
	struct core_resp r;
	uint64_t org_id, location_id, instructor_id;
	uint32_t count = 0;

	memset(&q, 0, sizeof(q));
	q.now = BASE_NOW;
	strcpy(q.u.cat.name, "Studio");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	child_call_ok(n, p, &q, &r, 1, CORE_OP_ORG_CREATE, "org create");
	org_id = r.id;

	strcpy(q.u.cat.name, "Hall");
	q.u.cat.org_id = org_id;
	child_call_ok(n, p, &q, &r, 2, CORE_OP_LOCATION_CREATE,
		      "location create");
	location_id = r.id;

	strcpy(q.u.cat.name, "Ann");
	child_call_ok(n, p, &q, &r, 3, CORE_OP_INSTRUCTOR_CREATE,
		      "instructor create");
	instructor_id = r.id;

	for (uint64_t i = 0; i < SERIES_COUNT; i++) {
		memset(&spec, 0, sizeof(spec));
		spec.org_id = org_id;
		spec.location_id = location_id;
		spec.instructor_id = instructor_id;
		snprintf(spec.title, sizeof(spec.title), "Class %d", (int)i);
		spec.capacity = 1 + rnd_below(&g, 4);
		spec.waitlist_capacity = rnd_below(&g, 3);
		strcpy(spec.timezone,
		       i % 2 ? "Europe/Berlin" : "America/New_York");
		spec.weekday_mask = (uint8_t)(1 + rnd_below(&g, 127));
		spec.start_minute = (uint16_t)(6 * 60 + rnd_below(&g, 14 * 60));
		spec.duration_min = 60;
		spec.first_date = (struct core_date){ 2026, 1, 3 };
		memset(&q, 0, sizeof(q));
		q.now = BASE_NOW;
		q.u.series = &spec;
		child_call_ok(n, p, &q, &r, 10 + i, CORE_OP_SERIES_CREATE,
			      "series create");
	}

	/* At the same time, generation must find nothing left to do: a
	 * series create answered OK (maybe as a replay) has its events. */
	memset(&q, 0, sizeof(q));
	q.now = BASE_NOW;
	child_call_ok(n, p, &q, &r, 20, CORE_OP_GENERATE, "generate");
	if (!r.replayed && r.count)
		child_fail("generate made %u events that the acknowledged "
			   "series creates had not",
			   r.count);

	memset(&q, 0, sizeof(q));
	q.op = CORE_OP_EVENT_LIST;
	q.now = BASE_NOW;
	q.u.list.to = INT64_MAX;
	q.u.list.limit = CORE_LIST_LIMIT_MAX;
	q.u.list.out = views;
	do {
		if (core_call(p, &q, &r) != 0)
			child_fail("event list");
		for (uint32_t i = 0; i < r.count; i++) {
			struct rec e = { .magic = REC_MAGIC,
					 .kind = REC_EVENT };
			char err[256];
			e.u.event = views[i];
			child_send(&e);
			count++;
			/* This child's copy of the model: to pick targets. */
			if (!model_event_add(&views[i], err, sizeof(err)))
				child_fail("%s", err);
		}
		if (r.count) {
			q.u.list.after_start = views[r.count - 1].start_at;
			q.u.list.after_id = views[r.count - 1].id;
		}
	} while (r.more);
	struct rec done = { .magic = REC_MAGIC, .kind = REC_CATALOGUE_DONE };
	done.u.count = count;
	child_send(&done);
	catalogue_acked = true;
}

/* The request of one op index: its randomness is its own, its targets come
 * from what was acknowledged before. */
static void make_request(uint64_t op_index, struct core_req *q)
{
	struct rng g = rng_for(seed, 2, op_index);
	uint32_t dice = rnd_below(&g, 100);
	core_time now = BASE_NOW + (core_time)op_index * OP_MS;
	struct model_event *e = &model_events[rnd_below(&g, model_event_count)];
	bool keyed = true;

	memset(q, 0, sizeof(*q));
	q->now = now;
	if (history_count && dice < 10) { /* a retry: the same request */
		*q = history[rnd_below(&g, history_count)];
		q->now = now;
		return;
	}
	if (dice < 60) {
		q->op = CORE_OP_BOOK;
		q->event_id = e->id;
		strcpy(q->customer_id,
		       model_customer_ids[rnd_below(&g, MODEL_CUSTOMER_COUNT)]);
		q->u.book.payment = CORE_PAY_AUTO;
	} else if (dice < 85) {
		/* Mostly a recent booking: still active. */
		uint32_t recent = booking_count < 16 ? booking_count : 16;
		q->op = CORE_OP_CANCEL;
		if (booking_count == 0)
			q->booking_id = 12345;
		else if (rnd_below(&g, 4))
			q->booking_id = booking_ids[booking_count - 1 -
						    rnd_below(&g, recent)];
		else
			q->booking_id =
				booking_ids[rnd_below(&g, booking_count)];
	} else {
		q->op = CORE_OP_EVENT_PATCH;
		q->event_id = e->id;
		q->u.patch.capacity = rnd_below(&g, 6);
		if (rnd_below(&g, 150) == 0) { /* only the first event, once */
			q->event_id = model_events[0].id;
			q->u.patch.capacity = -1;
			q->u.patch.cancel = true;
		}
		keyed = rnd_below(&g, 2);
	}
	if (keyed) {
		q->idem.hi = rnd(&g);
		q->idem.lo = rnd(&g);
		q->idem.fingerprint = model_fingerprint(q);
	}
	if (history_count && dice >= 95) { /* an old key, another request */
		struct core_idem k = history[rnd_below(&g, history_count)].idem;
		q->idem.hi = k.hi;
		q->idem.lo = k.lo;
		q->idem.fingerprint = model_fingerprint(q);
	}
}

static _Noreturn void child_run(void)
{
	struct node_config cfg;
	char err[256];
	node *n;
	int rc;

	node_config(&cfg);
	rc = node_open(&cfg, &n, err, sizeof(err));
	if (rc != 0)
		child_fail("node_open: %s (%s)", err, strerror(-rc));
	core_port *p = core_port_get(node_core(n), 0);
	child_send(&(struct rec){ .magic = REC_MAGIC, .kind = REC_READY });
	if (!catalogue_acked)
		child_catalogue(n, p);
	for (uint64_t op = next_op; op < OP_COUNT_MAX; op++) {
		struct rec r = { .magic = REC_MAGIC, .op_index = op };
		struct core_req q;
		struct core_resp a;

		if (op % SNAPSHOT_EVERY == SNAPSHOT_EVERY - 1) {
			child_send(&(struct rec){ .magic = REC_MAGIC,
						  .kind = REC_SNAP_BEGIN });
			rc = node_snapshot(n);
			if (rc != 0)
				child_fail("node_snapshot: %s", strerror(-rc));
			child_send(&(struct rec){ .magic = REC_MAGIC,
						  .kind = REC_SNAP_END });
		}
		make_request(op, &q);
		r.kind = REC_INTENT;
		r.u.req = q;
		child_send(&r);
		child_call(n, p, &q, &a);
		r.kind = REC_ACK;
		r.u.resp = a;
		child_send(&r);
		learn(&q, &a);
	}
	for (;;)
		pause(); /* OP_COUNT_MAX reached: wait for the kill */
}

/* ---- the parent ---- */

static long acked_count, recovered_count, busy_wait_count;
static long outcome_counts[CORE_OP_COUNT][CORE_CODE_COUNT];
static long replay_counts[CORE_OP_COUNT];
static long inflight_applied_count, inflight_count;
static long event_checks, booking_checks; /* reads of the recovered node */

/* Where each kill landed, from the child's last records. */
enum kill_phase {
	KILL_RECOVERING, /* no ready record: node_open had not returned */
	KILL_CATALOGUE,	 /* creating the catalogue */
	KILL_BOOKING,	 /* between requests or in one */
	KILL_SNAPSHOT,	 /* in node_snapshot */
	KILL_PHASE_COUNT
};
static long kill_counts[KILL_PHASE_COUNT];

static void remove_dir(void);

static void show_log(void)
{
	char line[1024];
	FILE *f;
	long count = 0, shown = 0;

	if (verbose || !(f = fopen(log_path, "r")))
		return;
	while (fgets(line, sizeof(line), f))
		count++;
	rewind(f);
	fprintf(stderr, "---- last lines of %s ----\n", log_path);
	while (fgets(line, sizeof(line), f))
		if (++shown > count - 80)
			fputs(line, stderr);
	fprintf(stderr, "----\n");
	fclose(f);
}

/* Orphaned children of a killed child (its snapshot writer) are ours
 * (PR_SET_CHILD_SUBREAPER): reap the dead ones, list the living. */
static int orphans(pid_t *out, int max)
{
	char path[64], buf[512];
	int count = 0;

	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", getpid(),
		 getpid());
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *s = buf, *end;
		while (count < max) {
			long pid = strtol(s, &end, 10);
			if (end == s)
				break;
			out[count++] = (pid_t)pid;
			s = end;
		}
	}
	fclose(f);
	return count;
}

static void kill_orphans(void)
{
	pid_t pids[16];
	int count = orphans(pids, 16);

	for (int i = 0; i < count; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

static _Noreturn void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr,
		"FAIL: crash: cycle %d (CRASH_SEED=%" PRIu64 "): ", cycle,
		seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	show_log();
	kill_orphans();
	if (getenv("CRASH_KEEP"))
		fprintf(stderr, "crash: data kept in %s\n", data_dir);
	else
		remove_dir();
	exit(1);
}

static void model_failed(const char *msg) { fail("%s", msg); }

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void remove_dir(void)
{
	if (base_dir[0])
		nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void) { return now_us() / 1000; }

static void sleep_us(int64_t us)
{
	struct timespec ts = { us / 1000000, us % 1000000 * 1000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* fd 2 into the log file (or back): quiet node and log messages. */
static void stderr_to_log(bool on)
{
	static int saved = -1;

	if (verbose)
		return;
	fflush(stderr);
	if (on) {
		saved = dup(2);
		dup2(log_fd, 2);
	} else {
		dup2(saved, 2);
		close(saved);
	}
}

/* Reads what the child wrote so far. False at EOF (every writer gone). */
static bool read_pipe(int fd, uint8_t **buf, size_t *size, size_t *cap)
{
	for (;;) {
		if (*cap - *size < 65536) {
			*cap = *cap ? *cap * 2 : (1u << 20);
			*buf = realloc(*buf, *cap);
			if (!*buf)
				fail("out of memory");
		}
		ssize_t k = read(fd, *buf + *size, *cap - *size);
		if (k > 0) {
			*size += (size_t)k;
			continue;
		}
		if (k == 0)
			return false;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			fail("read from the child: %s", strerror(errno));
		return true;
	}
}

/* ---- checking the recovered node ---- */

static bool catalogue_first(void *ctx, const struct core_event_view *v,
			    char *err, size_t err_size)
{
	(void)ctx;
	if (catalogue_acked || !(v->booked || v->held || v->waitlist_length))
		return true;
	snprintf(err, err_size,
		 "event %" PRIu64 " booked before the catalogue was done",
		 v->id);
	return false;
}

/* Every event the node has: known to the model once the catalogue is
 * acknowledged (before, empty), and none overbooked. */
static void check_events(const struct model_port_reader *rd)
{
	char err[256];
	uint32_t count;

	if (!model_list_events(rd, catalogue_acked, catalogue_first, NULL,
			       &count, err, sizeof(err)))
		fail("%s", err);
	event_checks += count;
	if (catalogue_acked && count != model_event_count)
		fail("%u events recovered, the model has %u", count,
		     model_event_count);
}

static void check_bookings_exist(struct model_port_reader *rd)
{
	for (uint32_t i = 0; i < booking_count; i++) {
		struct core_booking_view v;
		if (model_port_booking(rd, booking_ids[i], &v) != CORE_OK ||
		    v.id != booking_ids[i])
			fail("acknowledged booking %" PRIx64 " lost",
			     booking_ids[i]);
	}
	booking_checks += booking_count;
}

/* What one cycle's pipe said. */
struct acked {
	uint64_t op_index;
	struct core_req req;
	struct core_resp resp;
};

struct cycle_log {
	struct acked *acks; /* in op order */
	uint32_t ack_count, ack_cap;
	bool inflight;
	struct rec intent; /* the last intent without an ack */
	struct core_event_view *events;
	uint32_t event_count, event_cap;
	bool catalogue_done;
	bool ready, in_snapshot;
};

static void parse(const uint8_t *buf, size_t size, struct cycle_log *cl)
{
	uint64_t expect = next_op;

	for (size_t pos = 0; pos + sizeof(struct rec) <= size;
	     pos += sizeof(struct rec)) {
		struct rec r;
		memcpy(&r, buf + pos, sizeof(r));
		if (r.magic != REC_MAGIC)
			fail("bad record at byte %zu of the pipe", pos);
		switch (r.kind) {
		case REC_READY:
			if (pos != 0)
				fail("ready record at byte %zu", pos);
			cl->ready = true;
			break;
		case REC_SNAP_BEGIN:
			if (cl->in_snapshot || cl->inflight)
				fail("snapshot begun at byte %zu", pos);
			cl->in_snapshot = true;
			break;
		case REC_SNAP_END:
			if (!cl->in_snapshot)
				fail("snapshot end without its begin");
			cl->in_snapshot = false;
			break;
		case REC_EVENT:
			if (cl->catalogue_done || catalogue_acked)
				fail("event record after the catalogue");
			if (cl->event_count == cl->event_cap)
				cl->events = grow(cl->events, &cl->event_cap,
						  sizeof(*cl->events));
			cl->events[cl->event_count++] = r.u.event;
			break;
		case REC_CATALOGUE_DONE:
			if (r.u.count != cl->event_count)
				fail("catalogue record: %u events, %u sent",
				     r.u.count, cl->event_count);
			cl->catalogue_done = true;
			break;
		case REC_INTENT:
			if (cl->inflight || r.op_index != expect)
				fail("intent %" PRIu64 ", expected %" PRIu64,
				     r.op_index, expect);
			if (!catalogue_acked && !cl->catalogue_done)
				fail("intent before the catalogue");
			cl->intent = r;
			cl->inflight = true;
			expect++;
			break;
		case REC_ACK:
			if (!cl->inflight || r.op_index != cl->intent.op_index)
				fail("ack %" PRIu64 " without its intent",
				     r.op_index);
			if (cl->ack_count == cl->ack_cap)
				cl->acks = grow(cl->acks, &cl->ack_cap,
						sizeof(*cl->acks));
			cl->acks[cl->ack_count++] =
				(struct acked){ r.op_index, cl->intent.u.req,
						r.u.resp };
			cl->inflight = false;
			break;
		case REC_ERROR: fail("the child failed: %s", r.u.msg);
		default: fail("bad record kind %u", r.kind);
		}
	}
}

/* Opens the node as a restart would: the recovery under test. */
static node *recover(void)
{
	struct node_config cfg;
	char err[256];
	node *n;
	int rc;
	int64_t start = now_ms();

	node_config(&cfg);
	for (;;) {
		stderr_to_log(true);
		rc = node_open(&cfg, &n, err, sizeof(err));
		stderr_to_log(false);
		if (rc != -EBUSY)
			break;
		/* The killed child's snapshot writer (a fork) may still hold
		 * the directory's lock. */
		if (now_ms() - start > LOCK_WAIT_MS_MAX) {
			pid_t pids[16];
			char path[64], wchan[64] = "?";
			int count = orphans(pids, 16);
			FILE *f;

			snprintf(path, sizeof(path), "/proc/%d/wchan",
				 count ? pids[0] : 0);
			if (count && (f = fopen(path, "r"))) {
				if (!fgets(wchan, sizeof(wchan), f))
					strcpy(wchan, "?");
				fclose(f);
			}
			fail("node_open: still locked after %d ms (%s); %d orphaned "
			     "process(es) of the killed node alive, pid %d waiting in %s",
			     LOCK_WAIT_MS_MAX, err, count, count ? pids[0] : 0,
			     wchan);
		}
		busy_wait_count++;
		usleep(10000);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	if (rc != 0)
		fail("node_open: %s (%s)", err, strerror(-rc));
	return n;
}

static void verify(struct cycle_log *cl)
{
	char err[512], err2[512];
	node *n = recover();
	struct model_port_reader rd = { core_port_get(node_core(n), 0), 0 };

	rd.now = BASE_NOW + (core_time)next_op * OP_MS;
	if (cl->catalogue_done && !catalogue_acked) {
		for (uint32_t i = 0; i < cl->event_count; i++)
			if (!model_event_add(&cl->events[i], err, sizeof(err)))
				fail("%s", err);
		if (model_event_count == 0)
			fail("no events generated");
		catalogue_acked = true;
	}
	for (uint32_t i = 0; i < cl->ack_count; i++) {
		const struct core_req *q = &cl->acks[i].req;
		const struct core_resp *a = &cl->acks[i].resp;
		struct core_resp m;

		model_apply(q, &m);
		if (!model_cmp_resp(a, &m, err, sizeof(err)))
			fail("acknowledged op %" PRIu64 ": %s",
			     cl->acks[i].op_index, err);
		learn(q, a);
		next_op = cl->acks[i].op_index + 1;
		acked_count++;
		outcome_counts[q->op][a->code]++;
		replay_counts[q->op] += a->replayed;
	}
	if (cl->inflight) {
		next_op = cl->intent.op_index + 1;
		inflight_count++;
	}
	check_events(&rd);
	if (model_cmp_all(model_port_event, model_port_booking, &rd, err,
			  sizeof(err))) {
		/* The op in flight was lost, or made no visible change (a
		 * capacity set to what it was) but may have stored its key. */
		if (cl->inflight && core_idem_present(&cl->intent.u.req.idem))
			history_forget(&cl->intent.u.req.idem);
	} else {
		const struct core_req *q = &cl->intent.u.req;
		struct core_resp m;

		if (!cl->inflight)
			fail("recovered state differs from the model: %s", err);
		/* The op in flight was decided and logged before the kill. */
		model_apply(q, &m);
		learn(q, &m);
		inflight_applied_count++;
		if (!model_cmp_all(model_port_event, model_port_booking, &rd,
				   err2, sizeof(err2)))
			fail("recovered state differs from the model (%s), and "
			     "with op %" PRIu64 " in flight applied too (%s)",
			     err, cl->intent.op_index, err2);
	}
	check_bookings_exist(&rd);
	recovered_count++;
	node_close(n);
}

static void run_cycle(struct rng *g)
{
	static uint8_t *buf;
	static size_t cap;
	size_t size = 0;
	struct cycle_log cl = { 0 };
	int fds[2], status;
	int64_t delay =
		KILL_DELAY_MS_MIN * 1000 +
		rnd_below(g, (KILL_DELAY_MS_MAX - KILL_DELAY_MS_MIN) * 1000);
	/* Mostly the delay runs from the child's ready record (recovery is
	 * slow in a sanitizer build); else from the fork, to kill recoveries
	 * and catalogue creations too. */
	bool delay_running = rnd_below(g, 4) == 0;
	pid_t parent = getpid(), pid;
	int64_t deadline;

	if (pipe2(fds, O_CLOEXEC) != 0)
		fail("pipe: %s", strerror(errno));
	fcntl(fds[0], F_SETPIPE_SZ, 1 << 20); /* best effort */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(5);
		close(fds[0]);
		child_fd = fds[1];
		if (!verbose)
			dup2(log_fd, 2);
		child_run();
	}
	close(fds[1]);
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0)
		fail("fcntl: %s", strerror(errno));
	/* The parent wakes on its own clock, not on the child's writes (which
	 * would put most kills right after one: 2 CPUs are common). */
	deadline =
		now_us() + (delay_running ? delay : READY_WAIT_MS_MAX * 1000);
	for (int64_t t; (t = now_us()) < deadline;) {
		sleep_us(deadline - t < DRAIN_US ? deadline - t : DRAIN_US);
		if (!read_pipe(fds[0], &buf, &size, &cap))
			break;
		if (!delay_running && size >= sizeof(struct rec)) {
			delay_running = true; /* the child is ready */
			deadline = now_us() + delay;
		}
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fail("waitpid: %s", strerror(errno));
	/* Everything it wrote is in the pipe now (a snapshot writer it forked
	 * may hold the write end: no EOF to wait for). */
	read_pipe(fds[0], &buf, &size, &cap);
	close(fds[0]);
	parse(buf, size, &cl);
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		fail("the child ended by itself (status 0x%x)", status);
	if (!cl.ready)
		kill_counts[KILL_RECOVERING]++;
	else if (!catalogue_acked && !cl.catalogue_done)
		kill_counts[KILL_CATALOGUE]++;
	else if (cl.in_snapshot)
		kill_counts[KILL_SNAPSHOT]++;
	else
		kill_counts[KILL_BOOKING]++;
	verify(&cl);
	free(cl.acks);
	free(cl.events);
}

int main(void)
{
	const char *env;
	int cycles = 50;
	struct rng g;
	int64_t start = now_ms();

	seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	if ((env = getenv("CRASH_SEED")))
		seed = strtoull(env, NULL, 10);
	if ((env = getenv("CRASH_CYCLES")))
		cycles = atoi(env);
	verbose = getenv("CRASH_VERBOSE") != NULL;
	printf("crash: seed %" PRIu64 ", %d cycles\n", seed, cycles);
	g = rng_for(seed, 3, 0);

	strcpy(base_dir, "/tmp/bookd-crash-XXXXXX");
	if (!mkdtemp(base_dir)) {
		base_dir[0] = 0;
		fail("mkdtemp: %s", strerror(errno));
	}
	snprintf(data_dir, sizeof(data_dir), "%s/data", base_dir);
	snprintf(log_path, sizeof(log_path), "%s/stderr.log", base_dir);
	log_fd =
		open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0)
		fail("open %s: %s", log_path, strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	model_init(HOLD_MS, RETENTION_MS, model_failed);

	for (cycle = 1; cycle <= cycles; cycle++) {
		run_cycle(&g);
		if (cycles >= 1000 && cycle % 500 == 0) /* a long profile */
			printf("crash: %d of %d cycles, %ld acknowledged ops, "
			       "%.1f s\n",
			       cycle, cycles, acked_count,
			       (double)(now_ms() - start) / 1000);
		fflush(stdout);
	}

	kill_orphans();
	/* A sanitizer build reports into the log, also from the children
	 * (their exit status is SIGKILL, never the sanitizer's). */
	{
		char line[1024];
		FILE *f = fopen(log_path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "Sanitizer") ||
			    strstr(line, "runtime error"))
				fail("a sanitizer report in %s: %s", log_path,
				     line);
		if (f)
			fclose(f);
	}
	static const char *op_names[CORE_OP_COUNT] = { [CORE_OP_BOOK] = "book",
						       [CORE_OP_CANCEL] =
							       "cancel",
						       [CORE_OP_EVENT_PATCH] =
							       "patch" };
	for (int o = 0; o < CORE_OP_COUNT; o++) {
		for (int k = 0; k < CORE_CODE_COUNT; k++)
			if (outcome_counts[o][k])
				printf("crash: %-8s %-24s %8ld\n", op_names[o],
				       core_code_name(k), outcome_counts[o][k]);
		if (replay_counts[o])
			printf("crash: %-8s %-24s %8ld\n", op_names[o],
			       "(of which replayed)", replay_counts[o]);
	}
	printf("crash: %d cycles, %" PRIu64
	       " op indexes, %ld in flight at the kill "
	       "(%ld found durable), %ld waits for the lock, %u events, %u bookings, "
	       "%.1f s\n",
	       cycles, next_op, inflight_count, inflight_applied_count,
	       busy_wait_count, model_event_count, booking_count,
	       (double)(now_ms() - start) / 1000);
	if (next_op >= OP_COUNT_MAX)
		printf("crash: note: the last cycles ran no ops (OP_COUNT_MAX)\n");
	/* The figures docs/reliability.md publishes, on one line. Any
	 * overbooking or lost acknowledged decision failed the run above. */
	double seconds = (double)(now_ms() - start) / 1000;
	printf("crash: summary: seed %" PRIu64 ", %d cycles (kills: %ld "
	       "while recovering, %ld creating the catalogue, %ld booking, "
	       "%ld in a snapshot), %ld acknowledged requests checked, %ld "
	       "in flight at a kill (%ld found durable, %ld not), "
	       "overbookings 0 (%ld event reads), lost acknowledged "
	       "decisions 0 (%ld booking reads), %.1f s (%.1f ms a cycle)\n",
	       seed, cycles, kill_counts[KILL_RECOVERING],
	       kill_counts[KILL_CATALOGUE], kill_counts[KILL_BOOKING],
	       kill_counts[KILL_SNAPSHOT], acked_count, inflight_count,
	       inflight_applied_count, inflight_count - inflight_applied_count,
	       event_checks, booking_checks, seconds,
	       cycles ? seconds * 1000 / cycles : 0.0);
	printf("crash: %d cycles, %ld acknowledged ops, %ld recoveries checked: "
	       "1 passed, 0 failed\n",
	       cycles, acked_count, recovered_count);
	close(log_fd);
	remove_dir();
	model_free();
	free(history);
	free(booking_ids);
	return 0;
}
