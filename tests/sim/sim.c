/*
 * sim.c: bookd_sim, the deterministic simulator of a whole node: its run
 * and its checker (the disk, the clock and the design: sim.h).
 *
 * A seed is one run: a data directory under /dev/shm, a node (api/node.h)
 * opened with the log in manual mode and its shards hosted by the calling
 * thread, the catalogue of test_crash (an org, 4 series, half of them
 * priced: holds and payments), then TURNS turns. A turn: the clock moves
 * (now and then the requests' clock jumps forward or back), now and then a
 * snapshot (node_snapshot, its fork and all) or a crash armed at the Nth
 * I/O from now, then 1..CLIENT_COUNT clients decide one request each
 * through core_call (bookings, cancels, payments and their failures,
 * capacity changes and event cancels, retries of acknowledged keyed
 * requests and of requests whose answer a crash lost, keys reused for
 * another request, a GENERATE now and then), after the timer's TICK at
 * the turn's time (so every shard expires holds when the model does), each
 * with the log positions its entries took; then the log's turn (wal_step).
 * Only if it made them durable and nothing crashed do the answers leave:
 * the model (tests/model.c) then applies them in decision order and every
 * answer must be the model's (idempotent replays answered as the first
 * time). A crash (between turns, at an I/O, in a snapshot, in recovery)
 * closes the node with every I/O failing, applies the disk's crash to the
 * unsynced writes, maybe flips a bit, and opens the node again.
 *
 * The checker after each restart: the recovered log ends at LSN L (what
 * the log found); every acknowledged answer's LSN must be <= L (nothing
 * acknowledged lost). A request in flight whose entries all lie at or
 * below L was durable: the model applies it; one whose entries lie above
 * L was lost: not applied, and its key may be used again; one cut in the
 * middle (holds expired before its decision, each its own entry) had its
 * expiries applied: the model runs a TICK at its time. Then the whole
 * recovered state must equal the model's: every event's counts, status and
 * settings, every booking (status, waitlist position: FIFO, hold), no event
 * the model does not know, none overbooked, and every acknowledged booking
 * there. A refusal to open is accepted only after a bit flip (reported;
 * the bit is restored and the node opened again); otherwise it fails the
 * seed. At the end the same checks run once more on a clean restart.
 *
 * Determinism: one thread, the clock is simulated, the log's clock too, no
 * background thread (manual log, hosted shards, no snapshotter), the
 * snapshot's child only serialises into a pipe whose reads the log buffers
 * into fixed writes. Every request, answer, fault and recovered L goes into
 * the trace hash printed per seed; --replay-check runs seeds twice and
 * fails if a hash differs.
 *
 *     bookd_sim [--seed N | --first N --seeds K] [--seconds S] [--turns T]
 *               [--replay-check K] [--verbose]
 * Environment: SIM_SEED (first seed), SIM_SEEDS, SIM_TURNS, SIM_KEEP=1
 * (keep a failing seed's directory). A failure prints the seed and turn;
 * `bookd_sim --seed N --verbose` replays it with the trace.
 */
#include "core.h"
#include "evlog.h"
#include "model.h"
#include "node.h"
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHARD_COUNT 2
#define SERIES_COUNT 4
#define CLIENT_COUNT 8
#define TURNS_DEFAULT 300
#define HORIZON_DAYS 14
#define BASE_NOW INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define HOLD_MS (10 * 60 * 1000)
#define RETENTION_MS (INT64_C(6) * 3600 * 1000)
#define TURN_MS_MAX 3000 /* the clock moves 0..3 s a turn */
#define JUMP_MS_MAX (INT64_C(3) * 3600 * 1000) /* a jump: up to 3 h */
#define PENDING_MAX (CLIENT_COUNT + 2)
#define HISTORY_MAX 4096
#define RECOVERY_TRY_MAX 8
#define CATALOGUE_KEY_HI UINT64_C(0xca7a1095e)

/* ---- the run ---- */

static uint64_t seed;
static int turn;
static bool verbose;
static char base_dir[128]; /* /dev/shm/bookd-sim-<pid> */
static char data_dir[160];
static char log_path[160];
static int log_fd = -1;

static struct sim_rng work_rng, disk_rng, fault_rng;
static node *nd;
static core_port *port;
static core_time skew_ms; /* the requests' clock minus the sim's */
/* The latest time the model applied a request at: the checker reads at
 * it (a shard expires due holds before a read too, as the model did). */
static core_time model_time;
/* A running shard takes a request older than the latest it saw at that
 * latest time (core/worker.c); a restart forgets it. Every turn's TICK
 * reaches every shard, and so do the checker's reads: one clock for all
 * of them, the latest time decided since the node opened. */
static core_time life_now;

/* Per seed: how often each fault (per mille, per turn or per I/O). */
static struct {
	uint32_t crash, crash_io, flip, jump, snapshot_every, generate;
	uint32_t recovery_crash;
	struct sim_disk_rates disk;
} rate;

/* What was checked (whole run). */
static uint64_t acked_total, recoveries_total, inflight_durable_total,
	inflight_lost_total, inflight_partial_total, refusals_total,
	flip_refused_total, turns_total, requests_total, full_total,
	replays_total;

/* A request decided and not yet answered: its entries are (lo, hi]. */
struct pending {
	struct core_req q;
	struct core_resp a;
	uint64_t lo, hi;
	core_time mnow; /* the time the shards decided it at (below) */
};

static struct pending pend[PENDING_MAX];
static uint32_t pend_count;
static uint64_t acked_lsn; /* every acknowledged answer's entries <= it */

/* Keyed requests acknowledged (or found durable): retried later. Keyed
 * requests whose answer a crash lost: retried once soon after. */
static struct core_req history[HISTORY_MAX];
static uint32_t history_count;
static struct core_req lost[PENDING_MAX];
static uint32_t lost_count;

static struct core_series_spec specs[SERIES_COUNT];

/* ---- failing ---- */

static void remove_dir(void);

static void show_log(void)
{
	char cmd[256];

	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "tail -n 15 '%s' >&2", log_path);
	if (system(cmd) != 0)
		fprintf(stderr, "sim: (no log)\n");
}

static _Noreturn void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL: sim: seed %" PRIu64 " turn %d: ", seed, turn);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, "sim: the node's log (%s), its end:\n", log_path);
	show_log();
	fprintf(stderr, "sim: replay: bookd_sim --seed %" PRIu64 " --verbose\n",
		seed);
	if (getenv("SIM_KEEP"))
		fprintf(stderr, "sim: data kept in %s\n", data_dir);
	else
		remove_dir();
	exit(1);
}

static void model_failed(const char *msg) { fail("model: %s", msg); }

static void trace_line(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	printf("  t%-4d ", turn);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_dir(void)
{
	if (data_dir[0])
		nftw(data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the node ---- */

static core_time now_ms(void)
{
	return BASE_NOW + (core_time)(sim_clock_ns() / 1000000) + skew_ms;
}

static void node_config(struct node_config *cfg)
{
	node_config_default(cfg);
	cfg->data_dir = data_dir;
	cfg->core.shard_count = SHARD_COUNT;
	/* bookd's way: the shards are hosted by port 1, which nobody owns,
	 * so port 0's calls run them in this thread. */
	cfg->core.port_count = 2;
	cfg->core.host_first = 1;
	cfg->core.host_count = 1;
	cfg->core.event_count_max = 1024;
	cfg->core.booking_count_max = 1u << 16;
	cfg->core.customer_count_max = 128;
	cfg->core.idem_count_max = 1u << 16;
	cfg->core.ring_size = 16;
	cfg->core.hold_ms = HOLD_MS;
	cfg->core.idem_retention_ms = RETENTION_MS;
	cfg->core.horizon_days = HORIZON_DAYS;
	cfg->segment_size = WAL_SEGMENT_SIZE_MIN; /* roll over often */
	cfg->snapshot_every = 0;
	cfg->manual_log = true;
	cfg->quiet = true;
}

static uint64_t appended_lsn(void)
{
	struct wal_stats st;

	wal_stats(node_wal(nd), &st);
	return st.appended_lsn;
}

/* The node's side at t. */
static struct model_port_reader *reader(core_time t)
{
	static struct model_port_reader rd;

	rd = (struct model_port_reader){ port, t };
	return &rd;
}

/* ---- requests ---- */

static void trace_req(const struct core_req *q)
{
	sim_trace((uint64_t)q->op << 56 ^ (uint64_t)q->now);
	sim_trace(q->idem.lo ^ q->event_id ^ q->booking_id << 1);
}

static void trace_resp(const struct core_resp *a)
{
	sim_trace((uint64_t)a->code << 40 ^ (uint64_t)a->replayed << 39 ^
		  a->booking.id);
	sim_trace((uint64_t)a->booking.status << 32 ^ a->booking.position);
}

/* Decides q now; its entries' positions. */
static void decide(const struct core_req *q, struct pending *p)
{
	p->q = *q;
	p->mnow = q->now > life_now ? q->now : life_now;
	if (q->op != CORE_OP_GENERATE) /* a catalogue call: no shard's */
		life_now = p->mnow;
	else
		p->mnow = q->now;
	p->lo = appended_lsn();
	if (core_call(port, q, &p->a) != 0)
		fail("core_call op %d", q->op);
	p->hi = appended_lsn();
	requests_total++;
	trace_req(q);
	trace_resp(&p->a);
	trace_line("op %d key %" PRIx64 " ev %" PRIu64 " bk %" PRIx64
		   " -> %s lsn (%" PRIu64 ",%" PRIu64 "]",
		   q->op, q->idem.lo, q->event_id, q->booking_id,
		   core_code_name(p->a.code), p->lo, p->hi);
}

static struct model_event *pick_event(core_time now)
{
	struct model_event *e =
		&model_events[sim_below(&work_rng, model_event_count)];

	for (int tries = 0;
	     tries < 16 && e->start_at <= now && sim_below(&work_rng, 10);
	     tries++)
		e = &model_events[sim_below(&work_rng, model_event_count)];
	return e;
}

static struct model_booking *pick_booking(struct model_event **ev,
					  core_time now)
{
	for (int tries = 0; tries < 8; tries++) {
		struct model_event *e = pick_event(now);
		if (e->n) {
			*ev = e;
			return &e->b[sim_below(&work_rng, e->n)];
		}
	}
	return NULL;
}

static void history_add(const struct core_req *q)
{
	if (!core_idem_present(&q->idem))
		return;
	history[history_count < HISTORY_MAX
			? history_count++
			: sim_below(&work_rng, HISTORY_MAX)] = *q;
}

/* One client's request at now. */
static void make_request(struct core_req *q, core_time now)
{
	struct sim_rng *g = &work_rng;
	uint32_t dice = sim_below(g, 100);
	struct model_event *e = pick_event(now);
	struct model_booking *b;

	memset(q, 0, sizeof(*q));
	q->now = now;
	if (lost_count && dice < 50) { /* its answer was lost: again */
		*q = lost[--lost_count];
		q->now = now;
		return;
	}
	if (history_count && dice < 6) { /* a retry, the same request */
		*q = history[sim_below(g, history_count)];
		q->now = now;
		return;
	}
	if (dice < 55) {
		q->op = CORE_OP_BOOK;
		q->event_id = e->id;
		strcpy(q->customer_id,
		       model_customer_ids[sim_below(g, MODEL_CUSTOMER_COUNT)]);
		q->u.book.payment =
			sim_below(g, 5) ? CORE_PAY_AUTO : CORE_PAY_NONE;
	} else if (dice < 75) {
		q->op = CORE_OP_CANCEL;
		b = pick_booking(&e, now);
		q->booking_id = b ? b->id : 12345;
		if (b && sim_below(g, 3) == 0)
			strcpy(q->customer_id, model_customer_ids[b->customer]);
	} else if (dice < 90) {
		q->op = CORE_OP_PAY;
		b = pick_booking(&e, now);
		q->booking_id = b ? b->id : 12345;
		q->u.pay.succeeded = sim_below(g, 4) != 0;
		q->u.pay.amount_cents =
			sim_below(g, 10) ? e->price : e->price + 1;
		strcpy(q->u.pay.currency,
		       sim_below(g, 20) ? e->currency : "usd");
		if (sim_below(g, 8) == 0)
			q->u.pay.kind = CORE_PAY_KIND_INTENT;
	} else {
		q->op = CORE_OP_EVENT_PATCH;
		q->event_id = e->id;
		q->u.patch.capacity = sim_below(g, 6);
		if (sim_below(g, 40) == 0) {
			q->u.patch.capacity = -1;
			q->u.patch.cancel = true;
		}
	}
	if (q->op != CORE_OP_EVENT_PATCH || sim_below(g, 2)) {
		q->idem.hi = sim_rnd(g);
		q->idem.lo = sim_rnd(g);
		q->idem.fingerprint = model_fingerprint(q);
	}
	if (history_count && dice >= 97 && core_idem_present(&q->idem)) {
		/* An old key, another request: refused as a mismatch. */
		struct core_idem k = history[sim_below(g, history_count)].idem;
		q->idem.hi = k.hi;
		q->idem.lo = k.lo;
	}
}

/* ---- answers ---- */

/* What the model says of an op that became durable: its answer (sent,
 * or decided before a crash and found durable) must be the model's. */
static void model_take(const struct pending *p, bool acked)
{
	struct core_req q = p->q;
	struct core_resp m;
	char err[512];

	q.now = p->mnow;
	if (q.now > model_time)
		model_time = q.now;
	if (q.op == CORE_OP_GENERATE) {
		if (p->a.code != CORE_OK)
			fail("generate: %s", core_code_name(p->a.code));
		model_generated(q.now);
		if (!model_load_events(reader(model_time), err, sizeof(err)))
			fail("%s", err);
		return;
	}
	model_apply(&q, &m);
	replays_total += acked && p->a.replayed;
	if (!model_cmp_resp(&p->a, &m, err, sizeof(err)))
		fail("%s answer (op %d, key %" PRIx64 "): %s",
		     acked ? "acknowledged" : "durable in-flight", p->q.op,
		     p->q.idem.lo, err);
	if (!p->a.replayed && p->a.code != CORE_IDEM_MISMATCH)
		history_add(&p->q);
}

/* The log made every pending request durable: the answers leave. */
static void deliver(void)
{
	for (uint32_t i = 0; i < pend_count; i++) {
		if (pend[i].a.code == CORE_FULL)
			fail("CORE_FULL while the log works");
		model_take(&pend[i], true);
		acked_total++;
	}
	acked_lsn = wal_durable_lsn(node_wal(nd));
	pend_count = 0;
}

/* ---- checking the node against the model ---- */

static bool trace_event(void *ctx, const struct core_event_view *v, char *err,
			size_t err_size)
{
	(void)ctx;
	(void)err;
	(void)err_size;
	sim_trace(v->id ^ (uint64_t)v->booked << 40 ^ (uint64_t)v->held << 48 ^
		  (uint64_t)v->waitlist_length << 56);
	return true;
}

/* Every event the node has: the model's, none overbooked. */
static void check_events(void)
{
	char err[256];
	uint32_t count;

	if (!model_list_events(reader(model_time), true, trace_event, NULL,
			       &count, err, sizeof(err)))
		fail("%s", err);
	if (count != model_event_count)
		fail("%u events in the node, the model has %u", count,
		     model_event_count);
}

static bool state_equal(char *err, size_t err_size)
{
	if (model_time > life_now)
		life_now = model_time; /* the reads reach every shard */
	return model_cmp_all(model_port_event, model_port_booking,
			     reader(model_time), err, err_size);
}

static void check_state(const char *when)
{
	char err[512];

	if (!state_equal(err, sizeof(err)))
		fail("%s: the node's state is not the model's: %s", when, err);
	check_events();
}

/* ---- the catalogue: fixed keys and time, faults off ---- */

static void call_ok(struct core_req *q, struct core_resp *r, uint64_t key,
		    enum core_op op, const char *what)
{
	struct pending p;

	q->idem = (struct core_idem){ CATALOGUE_KEY_HI, key, key };
	q->op = op;
	decide(q, &p);
	*r = p.a;
	if (r->code != CORE_OK)
		fail("%s: %s", what, core_code_name(r->code));
	if (wal_wait_durable(node_wal(nd), p.hi) != 0)
		fail("%s: not durable", what);
}

static void catalogue(void)
{
	struct core_req q;
	struct core_resp r;
	uint64_t org_id, location_id, instructor_id;
	char err[512];

	memset(&q, 0, sizeof(q));
	q.now = BASE_NOW;
	strcpy(q.u.cat.name, "Studio");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	call_ok(&q, &r, 1, CORE_OP_ORG_CREATE, "org create");
	org_id = r.id;
	strcpy(q.u.cat.name, "Hall");
	q.u.cat.org_id = org_id;
	call_ok(&q, &r, 2, CORE_OP_LOCATION_CREATE, "location create");
	location_id = r.id;
	strcpy(q.u.cat.name, "Ann");
	call_ok(&q, &r, 3, CORE_OP_INSTRUCTOR_CREATE, "instructor create");
	instructor_id = r.id;
	for (int i = 0; i < SERIES_COUNT; i++) {
		struct core_series_spec *s = &specs[i];
		memset(s, 0, sizeof(*s));
		s->org_id = org_id;
		s->location_id = location_id;
		s->instructor_id = instructor_id;
		snprintf(s->title, sizeof(s->title), "Class %d", i);
		s->capacity = 1 + sim_below(&work_rng, 4);
		s->waitlist_capacity = sim_below(&work_rng, 4);
		s->price_cents = i % 2 ? 1500 : 0;
		strcpy(s->currency, i % 2 ? "eur" : "");
		strcpy(s->timezone,
		       i % 2 ? "Europe/Berlin" : "America/New_York");
		s->weekday_mask = (uint8_t)(1 + sim_below(&work_rng, 127));
		s->start_minute =
			(uint16_t)(6 * 60 + sim_below(&work_rng, 840));
		s->duration_min = 60;
		s->first_date = (struct core_date){ 2026, 1, 1 };
		memset(&q, 0, sizeof(q));
		q.now = BASE_NOW;
		q.u.series = s;
		call_ok(&q, &r, 10 + (uint64_t)i, CORE_OP_SERIES_CREATE,
			"series create");
		model_series_add(r.id, s, HORIZON_DAYS, BASE_NOW);
	}
	if (!model_load_events(reader(BASE_NOW), err, sizeof(err)))
		fail("%s", err);
	if (model_event_count == 0)
		fail("no events generated");
	acked_lsn = wal_durable_lsn(node_wal(nd));
}

/* ---- crash and recovery ---- */

struct flip {
	bool done;
	char path[256];
	uint64_t off;
	uint8_t bit;
};

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Flips one bit of synced data that recovery can tell is acknowledged
 * (sim.h): a segment before the last, the last up to DURABLE's end, a
 * snapshot, or DURABLE itself. */
static void bit_flip(struct flip *fl)
{
	char path[256], names[64][64];
	uint32_t count = 0, seg_count = 0;
	uint64_t last_seg = 0, ckpt_seg = 0, ckpt_end = 0;
	uint8_t ckpt[64];
	FILE *f;
	int fd;

	fl->done = false;
	snprintf(path, sizeof(path), "%s/DURABLE", data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		/* docs/wal.md: magic, lsn, segment's first LSN, end offset */
		if (pread(fd, ckpt, 64, 0) == 64 &&
		    le64(ckpt) == UINT64_C(0x52554457444b4f42)) {
			ckpt_seg = le64(ckpt + 16);
			ckpt_end = le64(ckpt + 24);
		}
		close(fd);
	}
	/* The candidates, in name order (deterministic). */
	char cmd[320];
	snprintf(cmd, sizeof(cmd), "ls -1 '%s'", data_dir);
	f = popen(cmd, "r");
	if (!f)
		return;
	while (count < 64 && fgets(names[count], sizeof(names[count]), f)) {
		names[count][strcspn(names[count], "\n")] = 0;
		size_t l = strlen(names[count]);
		if (l == 24 && strcmp(names[count] + 20, ".wal") == 0) {
			uint64_t first = strtoull(names[count], NULL, 10);
			if (first > last_seg)
				last_seg = first;
			seg_count++;
			count++;
		} else if (strncmp(names[count], "snap-", 5) == 0 &&
			   !strstr(names[count], ".tmp")) {
			count++;
		} else if (strcmp(names[count], "DURABLE") == 0) {
			count++;
		}
	}
	pclose(f);
	if (count == 0)
		return;
	const char *name = names[sim_below(&fault_rng, count)];
	uint64_t limit;
	struct stat st;

	snprintf(fl->path, sizeof(fl->path), "%s/%s", data_dir, name);
	if (stat(fl->path, &st) != 0)
		return;
	limit = (uint64_t)st.st_size;
	if (strlen(name) == 24 && strcmp(name + 20, ".wal") == 0) {
		uint64_t first = strtoull(name, NULL, 10);
		if (first == last_seg)
			limit = first == ckpt_seg ? ckpt_end : 0;
	} else if (strcmp(name, "DURABLE") == 0) {
		limit = 64;
	}
	if (limit == 0)
		return;
	fl->off = sim_rnd(&fault_rng) % limit;
	fl->bit = (uint8_t)(1u << sim_below(&fault_rng, 8));
	fd = open(fl->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	uint8_t b;
	if (pread(fd, &b, 1, (off_t)fl->off) == 1) {
		b ^= fl->bit;
		if (pwrite(fd, &b, 1, (off_t)fl->off) == 1)
			fl->done = true;
	}
	close(fd);
	if (fl->done) {
		sim_fault_counts[SIM_FAULT_BIT_FLIP]++;
		sim_trace(0xf11b ^ fl->off ^ (uint64_t)fl->bit << 56);
		trace_line("bit flip: %s+%" PRIu64 " bit 0x%x", name, fl->off,
			   fl->bit);
	}
}

static void unflip(struct flip *fl)
{
	int fd = open(fl->path, O_RDWR | O_CLOEXEC);
	uint8_t b;

	if (fd < 0)
		fail("cannot undo the bit flip in %s", fl->path);
	if (pread(fd, &b, 1, (off_t)fl->off) != 1)
		fail("cannot read %s", fl->path);
	b ^= fl->bit;
	if (pwrite(fd, &b, 1, (off_t)fl->off) != 1)
		fail("cannot write %s", fl->path);
	close(fd);
	fl->done = false;
}

/* Opens the node as a restart does; a crash may be armed in it. */
static void open_node(struct flip *fl)
{
	struct node_config cfg;
	char err[512];
	int rc;

	node_config(&cfg);
	for (int attempt = 0;; attempt++) {
		if (attempt == RECOVERY_TRY_MAX)
			fail("node_open: still failing after %d attempts",
			     attempt);
		sim_disk_faults(false);
		if (attempt < 2 && sim_chance(&fault_rng, rate.recovery_crash))
			sim_disk_arm_crash(1 + sim_below(&fault_rng, 12));
		rc = node_open(&cfg, &nd, err, sizeof(err));
		sim_disk_arm_crash(0);
		sim_trace(0x0be7 ^ (uint64_t)(-rc));
		if (sim_disk_crashed()) {
			/* Died while recovering: again, from what it left. */
			trace_line("crash during recovery (rc %d)", rc);
			if (rc == 0)
				node_close(nd);
			nd = NULL;
			sim_disk_after_crash();
			continue;
		}
		if (rc == 0)
			break;
		if (fl->done) {
			/* Damage detected and refused: accepted. The
			 * operator restores the byte (a backup). */
			trace_line("refused after the bit flip: %s", err);
			flip_refused_total++;
			unflip(fl);
			continue;
		}
		fail("node_open refused an undamaged data dir: %s (%s)", err,
		     strerror(-rc));
	}
	port = core_port_get(node_core(nd), 0);
}

/* The crash: the node dies (every I/O from now fails), is closed, the
 * disk keeps what it keeps, maybe a bit flips; then the restart and the
 * checks. */
static void crash_restart(void)
{
	struct flip fl = { 0 };
	uint64_t L;
	char err[512];
	bool partial = false;

	sim_disk_crash_now();
	node_close(nd);
	nd = NULL;
	life_now = 0; /* a new process: the shards' clocks start anew */
	sim_disk_after_crash();
	if (sim_chance(&fault_rng, rate.flip))
		bit_flip(&fl);
	open_node(&fl);
	recoveries_total++;

	L = appended_lsn();
	sim_trace(L);
	trace_line("restarted: log ends at %" PRIu64 ", acknowledged %" PRIu64
		   ", %u in flight",
		   L, acked_lsn, pend_count);
	if (L < acked_lsn)
		fail("acknowledged data lost: the log ends at LSN %" PRIu64
		     ", answers were sent for LSN %" PRIu64,
		     L, acked_lsn);

	/* The requests in flight, in decision order. */
	for (uint32_t i = 0; i < pend_count; i++) {
		struct pending *p = &pend[i];

		if (p->a.code == CORE_FULL) {
			if (p->hi != p->lo)
				fail("CORE_FULL with log entries");
			continue; /* refused by the failed log: nothing */
		}
		if (p->hi <= L) {
			if (p->q.op == CORE_OP_GENERATE || p->hi > p->lo)
				inflight_durable_total++;
			model_take(p, false);
		} else if (p->lo >= L) {
			inflight_lost_total++;
			if (core_idem_present(&p->q.idem) &&
			    lost_count < PENDING_MAX)
				lost[lost_count++] = p->q; /* retried */
			if (p->q.op == CORE_OP_GENERATE) {
				/* Generation again, at its time. */
				struct pending g;
				decide(&p->q, &g);
				if (wal_wait_durable(node_wal(nd), g.hi) != 0)
					fail("generate again: not durable");
				model_take(&g, false);
			}
		} else {
			/* Holds expired before its decision (each its own
			 * entry), some durable: they happened. */
			struct core_req t = { .op = CORE_OP_TICK,
					      .now = p->mnow };
			struct core_resp m;
			inflight_partial_total++;
			partial = true;
			if (t.now > model_time)
				model_time = t.now;
			model_apply(&t, &m);
			if (core_idem_present(&p->q.idem) &&
			    lost_count < PENDING_MAX)
				lost[lost_count++] = p->q;
		}
	}
	pend_count = 0;
	acked_lsn = L;
	if (!state_equal(err, sizeof(err)))
		fail("after the restart the node's state is not the "
		     "model's%s: %s",
		     partial ? " (a request cut between its entries)" : "",
		     err);
	check_events();
	/* The reads expired due holds (logged): durable before going on. */
	if (wal_wait_durable(node_wal(nd), appended_lsn()) != 0)
		fail("the reads' entries: not durable");
	acked_lsn = wal_durable_lsn(node_wal(nd));
}

/* ---- a seed ---- */

static void pick_rates(void)
{
	struct sim_rng *g = &fault_rng;

	/* Swarm testing: each seed its own mix, some kinds off. */
	memset(&rate, 0, sizeof(rate));
	rate.crash = sim_below(g, 4) ? 5 + sim_below(g, 40) : 0;
	rate.crash_io = sim_below(g, 3) ? 5 + sim_below(g, 40) : 0;
	rate.flip = sim_below(g, 2) ? 100 + sim_below(g, 400) : 0;
	rate.jump = sim_below(g, 2) ? sim_below(g, 20) : 0;
	rate.snapshot_every = 20 + sim_below(g, 100);
	rate.generate = 5 + sim_below(g, 20);
	rate.recovery_crash = sim_below(g, 2) ? sim_below(g, 300) : 0;
	rate.disk.sync_eio = sim_below(g, 3) == 0 ? 1 + sim_below(g, 10) : 0;
	rate.disk.write_enospc = sim_below(g, 3) == 0 ? 1 + sim_below(g, 5) : 0;
	rate.disk.alloc_enospc =
		sim_below(g, 3) == 0 ? 1 + sim_below(g, 100) : 0;
	rate.disk.short_write = sim_below(g, 2) ? sim_below(g, 100) : 0;
	rate.disk.slow_sync = sim_below(g, 2) ? sim_below(g, 100) : 0;
}

static void seed_reset(void)
{
	model_free();
	model_init(HOLD_MS, RETENTION_MS, model_failed);
	pend_count = history_count = lost_count = 0;
	acked_lsn = 0;
	skew_ms = 0;
	life_now = 0;
	model_time = BASE_NOW;
	sim_trace_reset();
	remove_dir();
	if (ftruncate(log_fd, 0) != 0 || lseek(log_fd, 0, SEEK_SET) != 0)
		fail("cannot truncate %s", log_path);
}

static void one_turn(int turns)
{
	struct sim_rng *g = &work_rng;
	struct core_req q;
	uint32_t clients;
	int rc;

	(void)turns;
	sim_clock_advance((uint64_t)sim_below(g, TURN_MS_MAX) * 1000000);
	if (sim_chance(&fault_rng, rate.jump)) {
		/* Back now and then (by up to an hour), never before the
		 * start. */
		core_time j = (core_time)(sim_rnd(&fault_rng) % JUMP_MS_MAX);
		if (sim_below(&fault_rng, 3) == 0 &&
		    now_ms() - j / 3 > BASE_NOW)
			j = -j / 3;
		skew_ms += j;
		sim_fault_counts[j < 0 ? SIM_FAULT_CLOCK_BACK
				       : SIM_FAULT_CLOCK_JUMP]++;
		sim_trace(0xc10c ^ (uint64_t)j);
		trace_line("clock jump %+" PRId64 " ms", j);
	}
	if (wal_error(node_wal(nd)) != 0) {
		/* The log failed: requests that need it are refused
		 * (CORE_FULL), nothing more is logged, no answer waits for
		 * durability; then the restart. */
		uint32_t n = 1 + sim_below(g, 3);
		for (uint32_t c = 0; c < n && pend_count < PENDING_MAX; c++) {
			struct pending *p = &pend[pend_count++];
			make_request(&q, now_ms());
			decide(&q, p);
			if (p->hi != p->lo)
				fail("op %d logged after the log failed", q.op);
			if (p->a.code == CORE_FULL)
				full_total++;
		}
	}
	if (wal_error(node_wal(nd)) != 0 || sim_disk_failed() ||
	    sim_chance(&fault_rng, rate.crash)) {
		trace_line("crash (log error %d)", wal_error(node_wal(nd)));
		crash_restart();
	}
	sim_disk_faults(true);
	if (sim_chance(&fault_rng, rate.crash_io))
		sim_disk_arm_crash(1 + sim_below(&fault_rng, 6));
	if (turn % (int)rate.snapshot_every == (int)rate.snapshot_every - 1) {
		rc = node_snapshot(nd);
		sim_trace(0x5a9 ^ (uint64_t)(-rc));
		trace_line("snapshot: %d", rc);
		if (rc != 0 && !sim_disk_crashed() && !sim_disk_failed())
			fail("snapshot failed without a fault: %s",
			     strerror(-rc));
		if (sim_disk_crashed()) {
			crash_restart();
			return;
		}
	}
	/* The server's timer: every shard expires what is due at the new
	 * time before any request at it (the model does so at each step). */
	q = (struct core_req){ .op = CORE_OP_TICK, .now = now_ms() };
	decide(&q, &pend[pend_count++]);
	if (sim_chance(g, rate.generate)) {
		q = (struct core_req){ .op = CORE_OP_GENERATE,
				       .now = now_ms() };
		decide(&q, &pend[pend_count++]);
	}
	clients = 1 + sim_below(g, CLIENT_COUNT);
	for (uint32_t c = 0; c < clients; c++) {
		make_request(&q, now_ms());
		decide(&q, &pend[pend_count++]);
		if (pend[pend_count - 1].a.code == CORE_FULL)
			full_total++;
	}
	rc = wal_step(node_wal(nd));
	sim_trace(0x57e9 ^ (uint64_t)rc);
	if (sim_disk_crashed()) {
		crash_restart();
		return;
	}
	if (rc < 0 || wal_error(node_wal(nd)) != 0) {
		/* The log failed (EIO, ENOSPC): no answer leaves; the
		 * next turn restarts the node. */
		trace_line("the log failed: %s", strerror(-rc));
		return;
	}
	sim_disk_arm_crash(0);
	deliver();
}

/* Runs one seed; its trace hash. */
static uint64_t run_seed(uint64_t s, int turns)
{
	struct node_config cfg;
	char err[512];
	int rc;

	seed = s;
	turn = 0;
	work_rng = (struct sim_rng){ s * UINT64_C(0x9E3779B97F4A7C15) + 1 };
	disk_rng = (struct sim_rng){ s ^ UINT64_C(0xd15c) };
	fault_rng = (struct sim_rng){ s ^ UINT64_C(0xfa017) };
	sim_rnd(&disk_rng);
	seed_reset();
	pick_rates();
	sim_disk_start(&disk_rng, &rate.disk);

	node_config(&cfg);
	rc = node_open(&cfg, &nd, err, sizeof(err));
	if (rc != 0)
		fail("node_open: %s", err);
	port = core_port_get(node_core(nd), 0);
	catalogue();
	for (turn = 1; turn <= turns; turn++)
		one_turn(turns);
	/* The end: a last crash, then a clean close and open. */
	turn = turns + 1;
	crash_restart();
	sim_disk_faults(false);
	node_close(nd);
	nd = NULL;
	life_now = 0;
	{
		struct flip none = { 0 };
		open_node(&none);
	}
	if (appended_lsn() < acked_lsn)
		fail("a clean restart lost acknowledged entries");
	check_state("after a clean restart");
	node_close(nd);
	nd = NULL;
	sim_disk_stop();
	turns_total += (uint64_t)turns;
	return sim_trace_hash();
}

/* ---- main ---- */

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bookd_sim [--seed N | --first N --seeds K] "
		"[--seconds S] [--turns T] [--replay-check K] [--verbose]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t first = 1, seeds = 10, replay = 0;
	int turns = TURNS_DEFAULT;
	double seconds = 0, t0;
	const char *env;
	bool one = false;

	if ((env = getenv("SIM_SEED")))
		first = strtoull(env, NULL, 10);
	if ((env = getenv("SIM_SEEDS")))
		seeds = strtoull(env, NULL, 10);
	if ((env = getenv("SIM_TURNS")))
		turns = atoi(env);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--verbose") == 0) {
			verbose = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--seed") == 0) {
			first = strtoull(v, NULL, 10);
			seeds = 1;
			one = true;
		} else if (strcmp(a, "--first") == 0) {
			first = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--seeds") == 0) {
			seeds = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--seconds") == 0) {
			seconds = atof(v);
		} else if (strcmp(a, "--turns") == 0) {
			turns = atoi(v);
		} else if (strcmp(a, "--replay-check") == 0) {
			replay = strtoull(v, NULL, 10);
		} else {
			usage();
		}
	}
	if (turns < 1 || (one && seconds > 0))
		usage();

	snprintf(base_dir, sizeof(base_dir), "%s/bookd-sim-%d",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
		 (int)getpid());
	if (mkdir(base_dir, 0700) != 0) {
		perror(base_dir);
		return 2;
	}
	snprintf(data_dir, sizeof(data_dir), "%s/data", base_dir);
	snprintf(log_path, sizeof(log_path), "%s/node.log", base_dir);
	log_fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		perror(log_path);
		return 2;
	}
	evlog_set_fd(log_fd);
	model_init(HOLD_MS, RETENTION_MS, model_failed);

	printf("sim: first seed %" PRIu64 ", %s, %d turns a seed\n", first,
	       seconds > 0 ? "until the time is up" : "a fixed count", turns);
	t0 = mono_s();
	uint64_t done = 0;
	for (uint64_t s = first;; s++) {
		if (seconds > 0 ? mono_s() - t0 >= seconds : s - first >= seeds)
			break;
		uint64_t h = run_seed(s, turns);
		done++;
		if (verbose || seconds == 0 || done % 100 == 0)
			printf("sim: seed %" PRIu64 ": trace %016" PRIx64
			       " (%.0f s)\n",
			       s, h, mono_s() - t0);
		if (done <= replay) {
			uint64_t again = run_seed(s, turns);
			if (again != h) {
				fprintf(stderr,
					"FAIL: sim: seed %" PRIu64
					" ran twice: trace %016" PRIx64
					", then %016" PRIx64 "\n",
					s, h, again);
				return 1;
			}
			printf("sim: seed %" PRIu64
			       ": replayed, the same trace\n",
			       s);
		}
		fflush(stdout);
	}
	double took = mono_s() - t0;
	uint64_t faults = 0;
	printf("sim: faults injected, by kind:\n");
	for (int k = 0; k < SIM_FAULT_COUNT; k++) {
		faults += sim_fault_counts[k];
		printf("sim:   %-34s %10" PRIu64 "\n", sim_fault_names[k],
		       sim_fault_counts[k]);
	}
	printf("sim: %" PRIu64 " requests decided, %" PRIu64
	       " answers acknowledged and checked against the model (%" PRIu64
	       " of them idempotent replays), %" PRIu64
	       " refused by a failed log\n",
	       requests_total, acked_total, replays_total, full_total);
	printf("sim: %" PRIu64
	       " restarts checked; in flight at a crash: %" PRIu64
	       " found durable, %" PRIu64 " lost, %" PRIu64
	       " cut between entries; %" PRIu64
	       " refusals to open after a bit flip\n",
	       recoveries_total, inflight_durable_total, inflight_lost_total,
	       inflight_partial_total, flip_refused_total);
	(void)refusals_total;
	printf("sim: %" PRIu64 " seeds (%" PRIu64 " replayed), %" PRIu64
	       " turns, %" PRIu64 " faults in %.1f s: %.2f seeds/s; "
	       "data lost 0, overbookings 0: passed\n",
	       done, replay < done ? replay : done, turns_total, faults, took,
	       (double)done / took);
	model_free();
	close(log_fd);
	unlink(log_path);
	remove_dir(); /* the last seed's data dir, then the base dir */
	rmdir(base_dir);
	return 0;
}
