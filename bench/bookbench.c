/*
 * bookbench.c: the peak-load harness of bookd, and its side-by-side runs
 * against the design it replaces (the seed's PostgreSQL RPCs).
 *
 *   bookbench run --driver baseline-pg|bookd-binary|bookd-http --scenario S[,S]
 *   bookbench baseline ...        (run --driver baseline-pg)
 *   bookbench setup-baseline      (creates the baseline schema, then exits)
 *   bookbench compare --scenario opening,steady [--bookd build/api/bookd]
 *   bookbench --help              (every flag)
 *
 * Design.
 *  - A driver (bookbench.h) reaches one system: baseline-pg (libpq, the
 *    plpgsql RPCs in bench/baseline/), bookd-binary (the client library),
 *    bookd-http (our own HTTP/1.1 keep-alive client). Operations go in on a
 *    connection, results come back in submit order.
 *  - A scenario sets the data set's defaults and, per connection, makes the
 *    next operation from what that connection saw (its own bookings to
 *    cancel, earlier requests to replay with the same idempotency key).
 *  - The connections are split over --threads threads (default: the online
 *    CPUs), each an event loop over its share (bookbench_load.c). Closed
 *    loop: each connection keeps --inflight requests
 *    outstanding and sends the next as soon as one answers; latency is from
 *    the send. Open loop: --rate R split evenly over the connections, each
 *    with a fixed schedule of intended send times; latency is measured from
 *    the intended time, not the actual send, so a stalled server is charged
 *    for the requests it kept waiting (no coordinated omission). A window of
 *    --inflight bounds what is outstanding; a late request still counts from
 *    when it should have left.
 *  - Every run is bounded (--duration, --requests) and stops by itself; an
 *    opening is also over once every customer tried every event. The main
 *    thread prints a progress line each second from per-connection interval
 *    histograms (bookbench_hist.c) and keeps the timeline.
 *  - Throughput counts every answer; comparisons use the answers that are
 *    not errors (a 429 or a lost connection is not a decision). A run whose
 *    errors exceed --max-error-pct (1) of its answers fails: it says why and
 *    bookbench exits 4. A bookd started with --bookd runs with its rate
 *    limits off unless --bookd-limits; result.json records its version.
 *  - After the run, the check reads back through the same driver: every
 *    event within its capacity, every acknowledged booking present in the
 *    state bookbench expects (active, or cancelled by bookbench), each
 *    event's waitlist positions 1..n with n its waitlist length and in FIFO
 *    order of acknowledgement, confirmed bookings = the event's booked
 *    count; the driver's own checks (the baseline's SQL invariants); and for
 *    bookd with DATABASE_URL replication on, that PostgreSQL caught up.
 *
 * Memory: histograms are fixed arrays; acknowledged bookings are kept for the
 * check up to --track-max (then the check says it is partial).
 *
 * Files: this one reads the flags, picks drivers and scenarios, runs each
 * pair and writes the reports; bookbench_scenario.c makes the operations,
 * bookbench_load.c runs the connections, bookbench_check.c checks, and
 * bookbench_bookd.c starts a bookd (bookbench_internal.h, their types);
 * the drivers and the reports behind bookbench.h.
 */
#include "bookd_version.h"
#include "bookbench_internal.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- Small helpers ---------------------------------------------------- */

int64_t bb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bb_dataset_alloc(struct bb_dataset *ds)
{
	ASSERT(ds->org_ids == NULL);
	ASSERT(ds->event_ids == NULL);
	ds->org_ids = calloc(ds->org_count, sizeof(*ds->org_ids));
	ds->event_ids = calloc(ds->event_count, sizeof(*ds->event_ids));
	ds->event_org = calloc(ds->event_count, sizeof(*ds->event_org));
	return ds->org_ids == NULL || ds->event_ids == NULL ||
			       ds->event_org == NULL
		       ? -ENOMEM
		       : 0;
}

void bb_dataset_free(struct bb_dataset *ds)
{
	if (ds == NULL)
		return;
	free(ds->org_ids);
	free(ds->event_ids);
	free(ds->event_org);
	free(ds);
}

void bb_errf(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

int bb_parse_addr(const char *addr, char *host, size_t host_size, int *port)
{
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr)
		return -EINVAL;
	const char *h = addr;
	size_t hn = (size_t)(colon - addr);
	if (h[0] == '[' && hn >= 2 && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (hn + 1 > host_size)
		return -EINVAL;
	memcpy(host, h, hn);
	host[hn] = 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end != 0 || p <= 0 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

const char *bb_code_name(enum bb_code code)
{
	static const char *names[BB_CODE_COUNT] = {
		[BB_OK] = "ok",
		[BB_EVENT_FULL] = "event_full",
		[BB_ALREADY_BOOKED] = "already_booked",
		[BB_NOT_BOOKABLE] = "event_not_bookable",
		[BB_NOT_ACTIVE] = "booking_not_active",
		[BB_NOT_FOUND] = "not_found",
		[BB_IDEM_MISMATCH] = "idempotency_key_reused",
		[BB_RATE_LIMITED] = "rate_limited",
		[BB_UNAVAILABLE] = "unavailable",
		[BB_BAD_REQUEST] = "bad_request",
		[BB_SERVER_ERROR] = "server_error",
		[BB_TRANSPORT] = "transport",
		[BB_REPLAY_DIFFERS] = "replay_differs",
		[BB_OTHER] = "other",
	};
	return (unsigned)code < BB_CODE_COUNT ? names[code] : "?";
}

enum bb_code bb_code_of(const char *name)
{
	static const struct {
		const char *name;
		enum bb_code code;
	} alias[] = {
		{ "event_not_found", BB_NOT_FOUND },
		{ "booking_not_found", BB_NOT_FOUND },
		{ "idempotency_key_required", BB_BAD_REQUEST },
	};

	for (int c = 0; c < BB_CODE_COUNT; c++)
		if (strcmp(name, bb_code_name((enum bb_code)c)) == 0)
			return (enum bb_code)c;
	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcmp(name, alias[i].name) == 0)
			return alias[i].code;
	return BB_OTHER;
}

int bb_events_found(uint32_t found, uint32_t want, char *err, size_t err_size)
{
	if (found == want)
		return 0;
	bb_errf(err, err_size,
		"bookd lists %u events for the run's orgs, wanted %u", found,
		want);
	return -EIO;
}

volatile sig_atomic_t bb_interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	bb_interrupted = 1;
}

void bb_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bookbench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static struct bb_opts opts;
static char command_line[2048];
static struct bb_bookd_info bookd_info;

static const struct bb_driver *driver_find(const char *name, size_t n)
{
	const struct bb_driver *all[] = { &bb_driver_pg, &bb_driver_http,
					  &bb_driver_bin };
	for (unsigned i = 0; i < 3; i++)
		if (strlen(all[i]->name) == n &&
		    memcmp(all[i]->name, name, n) == 0)
			return all[i];
	return NULL;
}

static void machine_line(char *out, size_t size)
{
	struct utsname u;
	char model[128] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f != NULL) {
		char line[256];
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');
				if (p != NULL) {
					p++;
					while (*p == ' ')
						p++;
					p[strcspn(p, "\n")] = 0;
					snprintf(model, sizeof(model), "%s", p);
				}
				break;
			}
		fclose(f);
	}
	uname(&u);
	snprintf(out, size,
		 "%ld cpus (%.64s), %.16s %.48s, load generator on the same machine",
		 sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release);
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bookbench COMMAND [flags]\n"
		"\n"
		"commands:\n"
		"  run             one driver (--driver), one or more scenarios (--scenario)\n"
		"  baseline        run --driver baseline-pg (the seed's design in PostgreSQL)\n"
		"  setup-baseline  create the baseline schema in DATABASE_URL and exit\n"
		"  compare         each scenario on the baseline and on bookd, same client counts;\n"
		"                  prints the ratios\n"
		"\n"
		"scenarios (--scenario a,b,...):\n");
	for (int i = 0; i < SC_COUNT; i++)
		fprintf(f,
			"  %-13s %s (defaults: %u events, %u customers, %u orgs, capacity %u)\n",
			bb_scenarios[i].name, bb_scenarios[i].what,
			bb_scenarios[i].events, bb_scenarios[i].customers,
			bb_scenarios[i].orgs, bb_scenarios[i].capacity);
	fprintf(f,
		"\n"
		"flags:\n"
		"  --driver NAME        baseline-pg | bookd-binary | bookd-http (run); compare:\n"
		"                       comma list, default baseline-pg,bookd-binary\n"
		"  --scenario LIST      default opening\n"
		"  --connections N      connections (default 16)\n"
		"  --threads N          threads driving them, each an event loop over its share\n"
		"                       of the connections (default: the online CPUs, at most\n"
		"                       --connections; = --connections: one thread each)\n"
		"  --inflight P         requests in flight per connection (default 1; the\n"
		"                       baseline takes 1: one transaction per connection)\n"
		"  --rate R             open loop: R requests/s in total, latency from the\n"
		"                       intended send time (default: closed loop)\n"
		"  --duration S         seconds per run (default 10 unless --requests)\n"
		"  --requests N         stop after N requests\n"
		"  --events N --customers N --orgs N --capacity N --waitlist N   data set size\n"
		"  --replay-pct P       %% of requests that replay an earlier decision with the\n"
		"                       same idempotency key, checked equal (default 1)\n"
		"  --seed S             random seed (default 1; printed)\n"
		"  --out DIR            result.json and report.html go here (default bookbench-out)\n"
		"  --http ADDR          bookd HTTP (BOOKD_LISTEN, default 127.0.0.1:8080)\n"
		"  --binary ADDR        bookd binary (BOOKD_BINARY_LISTEN, default 127.0.0.1:7070)\n"
		"  --key KEY            service key (BOOKD_SERVICE_KEY)\n"
		"  --bookd PATH         start this bookd on a temp dir and free ports, stop it at the end\n"
		"  --bookd-socket tcp|unix  the started bookd's binary protocol on a loopback\n"
		"                       port or a unix socket in its data dir (default: as the\n"
		"                       baseline reaches PostgreSQL in a compare, else tcp)\n"
		"  --bookd-limits       the started bookd keeps its rate limits (default: it runs\n"
		"                       with BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0\n"
		"                       BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0, and says so)\n"
		"  --max-error-pct P    a run whose errors (429, 5xx, lost connections, replays\n"
		"                       that differ, ...) exceed P%% of its answers fails: exit 4\n"
		"                       (default 1)\n"
		"  --bookd-replicate    the started bookd replicates into a fresh database next to\n"
		"                       DATABASE_URL's (dropped at the end); else embedded mode\n"
		"  --database-url URL   PostgreSQL (DATABASE_URL): the baseline; and for bookd runs\n"
		"                       (not started by bookbench) the replication check: if the\n"
		"                       bookd says it replicates, its tables are compared\n"
		"  --baseline-sql DIR   the baseline's SQL files (default: the source tree's)\n"
		"  --pg-durable         ALTER SYSTEM SET fsync = on, synchronous_commit = on before\n"
		"                       the baseline (a test cluster may run with fsync off)\n"
		"  --no-check           skip the correctness check after each run\n"
		"  --check-wait S       how long to wait for replication to catch up (default 60)\n"
		"  --track-max N        acknowledged bookings kept for the check (default 4000000)\n"
		"  --sources N          bookd-http to a loopback address: spread the connections\n"
		"                       over N source addresses 127.0.0.2.. (bookd rate-limits\n"
		"                       HTTP per client address; a real peak comes from many)\n"
		"  --batch N            bookd-binary: send consecutive bookings of a connection as\n"
		"                       one book.batch frame of up to N (each still one request,\n"
		"                       with its own answer and latency)\n"
		"  --quiet              no progress line\n"
		"  --version            the version and build type\n");
	fprintf(f, "\ndrivers built: baseline-pg bookd-http%s\n",
		bb_driver_bin.submit != NULL ? " bookd-binary" : "");
}

static int scenario_list(const char *list, int *ids)
{
	int n = 0;
	const char *p = list;
	while (*p != 0) {
		size_t len = strcspn(p, ",");
		int id = bb_scenario_find(p, len);
		if (id < 0)
			bb_die("unknown scenario '%.*s' (see --help)", (int)len,
			       p);
		if (n == BB_SCENARIO_MAX)
			bb_die("too many scenarios");
		ids[n++] = id;
		p += len;
		if (*p == ',')
			p++;
	}
	return n;
}

static void write_reports(struct bb_run **runs, unsigned n, bool uses_bookd)
{
	struct bb_report_in in = {
		.runs = (const struct bb_run *const *)runs,
		.run_count = n,
		.command = command_line,
		.bookd = uses_bookd ? &bookd_info : NULL,
	};
	char path[512];
	machine_line(in.machine, sizeof(in.machine));
	mkdir(opts.out_dir, 0755);
	static const struct {
		const char *name;
		enum bb_report_format format;
	} files[] = { { "result.json", BB_REPORT_JSON },
		      { "report.html", BB_REPORT_HTML } };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", opts.out_dir,
			 files[i].name);
		if (bb_report_write(files[i].format, &in, path) < 0)
			fprintf(stderr, "bookbench: cannot write %s\n", path);
		else
			fprintf(stderr, "bookbench: wrote %s\n", path);
	}
}

int main(int argc, char **argv)
{
	enum {
		O_DRIVER = 256,
		O_SCENARIO,
		O_CONN,
		O_THREADS,
		O_INFLIGHT,
		O_RATE,
		O_DURATION,
		O_REQUESTS,
		O_EVENTS,
		O_CUSTOMERS,
		O_ORGS,
		O_CAPACITY,
		O_WAITLIST,
		O_SEED,
		O_OUT,
		O_HTTP,
		O_BINARY,
		O_KEY,
		O_BOOKD,
		O_REPLICATE,
		O_DBURL,
		O_SQL,
		O_DURABLE,
		O_NOCHECK,
		O_CHECKWAIT,
		O_TRACK,
		O_QUIET,
		O_REPLAY,
		O_SOURCES,
		O_BATCH,
		O_LIMITS,
		O_SOCKET,
		O_MAXERR,
		O_HELP
	};
	static const struct option longs[] = {
		{ "driver", 1, 0, O_DRIVER },
		{ "scenario", 1, 0, O_SCENARIO },
		{ "connections", 1, 0, O_CONN },
		{ "threads", 1, 0, O_THREADS },
		{ "inflight", 1, 0, O_INFLIGHT },
		{ "rate", 1, 0, O_RATE },
		{ "duration", 1, 0, O_DURATION },
		{ "requests", 1, 0, O_REQUESTS },
		{ "events", 1, 0, O_EVENTS },
		{ "customers", 1, 0, O_CUSTOMERS },
		{ "orgs", 1, 0, O_ORGS },
		{ "capacity", 1, 0, O_CAPACITY },
		{ "waitlist", 1, 0, O_WAITLIST },
		{ "seed", 1, 0, O_SEED },
		{ "out", 1, 0, O_OUT },
		{ "http", 1, 0, O_HTTP },
		{ "binary", 1, 0, O_BINARY },
		{ "key", 1, 0, O_KEY },
		{ "bookd", 1, 0, O_BOOKD },
		{ "bookd-replicate", 0, 0, O_REPLICATE },
		{ "database-url", 1, 0, O_DBURL },
		{ "baseline-sql", 1, 0, O_SQL },
		{ "pg-durable", 0, 0, O_DURABLE },
		{ "no-check", 0, 0, O_NOCHECK },
		{ "check-wait", 1, 0, O_CHECKWAIT },
		{ "track-max", 1, 0, O_TRACK },
		{ "quiet", 0, 0, O_QUIET },
		{ "replay-pct", 1, 0, O_REPLAY },
		{ "sources", 1, 0, O_SOURCES },
		{ "batch", 1, 0, O_BATCH },
		{ "bookd-limits", 0, 0, O_LIMITS },
		{ "bookd-socket", 1, 0, O_SOCKET },
		{ "max-error-pct", 1, 0, O_MAXERR },
		{ "help", 0, 0, O_HELP },
		{ 0, 0, 0, 0 }
	};

	size_t used = 0;
	for (int i = 0; i < argc && used + 2 < sizeof(command_line); i++)
		used += (size_t)snprintf(command_line + used,
					 sizeof(command_line) - used, "%s%s",
					 i ? " " : "", argv[i]);
	if (used >= sizeof(command_line))
		command_line[sizeof(command_line) - 1] = 0;

	opts.connections = 16;
	opts.inflight = 1;
	opts.events = opts.customers = opts.orgs = opts.capacity =
		opts.waitlist = -1;
	opts.seed = 1;
	opts.out_dir = "bookbench-out";
	opts.replay_pct = 1;
	opts.track_max = 4000000;
	opts.check_wait_s = 60;
	opts.max_error_pct = 1;
	opts.scenarios = "opening";
	opts.cfg.database_url = getenv("DATABASE_URL");
	opts.cfg.http_addr = getenv("BOOKD_LISTEN") ? getenv("BOOKD_LISTEN")
						    : "127.0.0.1:8080";
	opts.cfg.binary_addr = getenv("BOOKD_BINARY_LISTEN")
				       ? getenv("BOOKD_BINARY_LISTEN")
				       : "127.0.0.1:7070";
	opts.cfg.service_key = getenv("BOOKD_SERVICE_KEY");
#ifdef BOOKBENCH_BASELINE_DIR
	opts.cfg.baseline_sql_dir = BOOKBENCH_BASELINE_DIR;
#endif
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("bookbench %s (%s)\n", BOOKD_VERSION, BOOKD_BUILD_TYPE);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
				  strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	opts.command = argv[1];
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case O_DRIVER: opts.drivers = optarg; break;
		case O_SCENARIO: opts.scenarios = optarg; break;
		case O_CONN: opts.connections = (unsigned)atoi(optarg); break;
		case O_THREADS: opts.threads = (unsigned)atoi(optarg); break;
		case O_INFLIGHT: opts.inflight = (unsigned)atoi(optarg); break;
		case O_RATE: opts.rate = atof(optarg); break;
		case O_DURATION: opts.duration_s = atof(optarg); break;
		case O_REQUESTS:
			opts.requests = strtoull(optarg, NULL, 10);
			break;
		case O_EVENTS: opts.events = atol(optarg); break;
		case O_CUSTOMERS: opts.customers = atol(optarg); break;
		case O_ORGS: opts.orgs = atol(optarg); break;
		case O_CAPACITY: opts.capacity = atol(optarg); break;
		case O_WAITLIST: opts.waitlist = atol(optarg); break;
		case O_SEED: opts.seed = strtoull(optarg, NULL, 10); break;
		case O_OUT: opts.out_dir = optarg; break;
		case O_HTTP: opts.cfg.http_addr = optarg; break;
		case O_BINARY: opts.cfg.binary_addr = optarg; break;
		case O_KEY: opts.cfg.service_key = optarg; break;
		case O_BOOKD: opts.bookd_path = optarg; break;
		case O_REPLICATE: opts.bookd_replicate = true; break;
		case O_DBURL: opts.cfg.database_url = optarg; break;
		case O_SQL: opts.cfg.baseline_sql_dir = optarg; break;
		case O_DURABLE: opts.cfg.pg_durable = true; break;
		case O_NOCHECK: opts.no_check = true; break;
		case O_CHECKWAIT: opts.check_wait_s = atof(optarg); break;
		case O_TRACK:
			opts.track_max = strtoull(optarg, NULL, 10);
			break;
		case O_QUIET: opts.quiet = true; break;
		case O_REPLAY: opts.replay_pct = (unsigned)atoi(optarg); break;
		case O_SOURCES:
			opts.cfg.source_count = (unsigned)atoi(optarg);
			break;
		case O_BATCH: opts.cfg.batch = (unsigned)atoi(optarg); break;
		case O_LIMITS: opts.bookd_limits = true; break;
		case O_SOCKET:
			if (strcmp(optarg, "tcp") != 0 &&
			    strcmp(optarg, "unix") != 0)
				bb_die("--bookd-socket: tcp or unix");
			opts.bookd_socket = optarg;
			break;
		case O_MAXERR: opts.max_error_pct = atof(optarg); break;
		case O_HELP:
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc)
		bb_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (opts.connections == 0 || opts.connections > BB_CONN_MAX)
		bb_die("--connections must be 1..%d", BB_CONN_MAX);
	if (opts.threads == 0) { /* the online CPUs */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		opts.threads = cpus > 0 ? (unsigned)cpus : 1;
	}
	if (opts.threads > opts.connections)
		opts.threads = opts.connections;
	if (opts.inflight == 0 || opts.inflight > BB_INFLIGHT_MAX)
		bb_die("--inflight must be 1..%d", BB_INFLIGHT_MAX);
	if (opts.replay_pct > 50)
		bb_die("--replay-pct must be 0..50");
	if (opts.duration_s <= 0 && opts.requests == 0)
		opts.duration_s = 10;
	if (opts.rate < 0)
		bb_die("--rate must be positive");
	if (!(opts.max_error_pct >= 0 && opts.max_error_pct <= 100))
		bb_die("--max-error-pct must be 0..100");
	signal(SIGINT, on_sigint);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "bookbench: seed %" PRIu64 "\n", opts.seed);

	if (strcmp(opts.command, "setup-baseline") == 0) {
		char err[BB_ERR_SIZE];
		if (bb_pg_setup_schema(&opts.cfg, err, sizeof(err)) < 0)
			bb_die("%s", err);
		fprintf(stderr, "bookbench: baseline schema ready\n");
		return 0;
	}

	const struct bb_driver *drivers[4];
	unsigned driver_count = 0;
	bool compare = false;
	if (strcmp(opts.command, "baseline") == 0) {
		drivers[driver_count++] = &bb_driver_pg;
	} else if (strcmp(opts.command, "run") == 0 ||
		   strcmp(opts.command, "compare") == 0) {
		compare = strcmp(opts.command, "compare") == 0;
		const char *list = opts.drivers;
		if (list == NULL) {
			if (!compare)
				bb_die("run needs --driver (see --help)");
			list = bb_driver_bin.submit != NULL
				       ? "baseline-pg,bookd-binary"
				       : "baseline-pg,bookd-http";
		}
		const char *p = list;
		while (*p != 0) {
			size_t len = strcspn(p, ",");
			const struct bb_driver *d = driver_find(p, len);
			if (d == NULL)
				bb_die("unknown driver '%.*s'", (int)len, p);
			if (d->submit == NULL)
				bb_die("driver %s was not built (no bookd_client library)",
				       d->name);
			if (driver_count == 4)
				bb_die("too many drivers");
			drivers[driver_count++] = d;
			p += len;
			if (*p == ',')
				p++;
		}
		if (!compare && driver_count != 1)
			bb_die("run takes one --driver; compare takes several");
	} else {
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < driver_count; i++) {
		if (drivers[i] == &bb_driver_pg &&
		    opts.cfg.database_url == NULL)
			bb_die("the baseline needs DATABASE_URL or --database-url");
		if (drivers[i] != &bb_driver_pg &&
		    opts.cfg.service_key == NULL && opts.bookd_path == NULL)
			bb_die("bookd drivers need a service key: --key or BOOKD_SERVICE_KEY");
	}
	bool uses_bookd = false, uses_pg = false;
	for (unsigned i = 0; i < driver_count; i++) {
		uses_bookd |= drivers[i] != &bb_driver_pg;
		uses_pg |= drivers[i] == &bb_driver_pg;
	}
	/* Side by side, both sides reach their server the same way: the
	 * baseline's libpq through a unix socket, then so does bookd's. */
	if (opts.bookd_socket == NULL)
		opts.bookd_socket =
			uses_pg && bb_pg_url_is_unix(opts.cfg.database_url)
				? "unix"
				: "tcp";
	if (uses_bookd && opts.bookd_path == NULL)
		opts.replica_url =
			opts.cfg.database_url; /* a bookd of yours may replicate there */
	/* every flag checked before a bookd is started: bb_die leaves it running */
	int sc_ids[BB_SCENARIO_MAX];
	int sc_count = scenario_list(opts.scenarios, sc_ids);
	if (uses_bookd && opts.bookd_path != NULL)
		bb_bookd_start(&opts, opts.bookd_path, &bookd_info);

	struct bb_run *runs[BB_SCENARIO_MAX * 4];
	unsigned run_count = 0;
	int failed = 0, problems = 0, over_budget = 0;
	for (int s = 0; s < sc_count && !bb_interrupted; s++) {
		for (unsigned d = 0; d < driver_count && !bb_interrupted; d++) {
			struct bb_run *run = calloc(1, sizeof(*run));
			if (run == NULL)
				bb_die("out of memory");
			if (bb_run_one(&opts, drivers[d], sc_ids[s], run) < 0) {
				failed++;
				bb_dataset_free(run->ds);
				free(run->timeline);
				free(run);
				continue;
			}
			if (run->check_problems > 0)
				problems++;
			if (run->failed[0])
				over_budget++;
			runs[run_count++] = run;
		}
	}
	if (compare)
		bb_report_compare((const struct bb_run *const *)runs, run_count,
				  stdout);
	if (uses_bookd && !bookd_info.started &&
	    bb_bookd_version(&opts.cfg, &bookd_info) == 0)
		snprintf(bookd_info.source, sizeof(bookd_info.source),
			 "admin/status");
	if (run_count > 0)
		write_reports(runs, run_count, uses_bookd);
	bb_bookd_stop(&opts);
	for (unsigned i = 0; i < run_count; i++) {
		free(runs[i]->timeline);
		bb_dataset_free(runs[i]->ds);
		free(runs[i]);
	}
	if (failed > 0)
		return 1;
	if (problems > 0)
		return 3;
	if (over_budget > 0) {
		fprintf(stderr,
			"bookbench: %d run(s) FAILED: errors over %g%% of the answers "
			"(see above)\n",
			over_budget, opts.max_error_pct);
		return 4;
	}
	return bb_interrupted ? 130 : 0;
}
