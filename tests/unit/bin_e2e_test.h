/*
 * bin_e2e_test.h: what the test_bin_e2e*.c programs share. Each starts its
 * own bookd (BOOKD_BIN, else ../api/bookd beside this test's directory;
 * exit 77 when there is none) on a temp data dir with ports chosen by the
 * kernel (read back from its start-up line), so they may run in parallel,
 * and talks to it over the binary protocol, through the client library
 * (bookd_client.h) and raw sockets. Here: starting and killing bookd,
 * connecting (as a key or a JWT, or raw: raw_hello, raw_status), the
 * catalogue every part uses (make_catalogue, make_series, daily_spec,
 * first_event_of), and bin_e2e_main, each
 * program's main: bookd started, the part run on a service connection,
 * then SIGTERM (exit 0), the part's after-stop tests, and bookd's log free
 * of sanitizer reports. The data dir and bookd's log are removed after a
 * clean run, unless BIN_E2E_KEEP is set.
 *
 * test_bin_e2e.c: life cycle, the race, pipelining, replay across kill -9.
 * test_bin_e2e_auth.c: auth refusals, bad clients, bookctl.
 * test_bin_e2e_same.c: the same inputs over HTTP and the binary protocol.
 */
#ifndef BOOKD_TEST_BIN_E2E_H
#define BOOKD_TEST_BIN_E2E_H

#include "bookd_client.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "bookd_test.h"
#include "jwt_test.h"

#define SKIP 77
#define SVC "e2e-service-key"
#define ANON "e2e-anon-key"
#define SECRET "e2e-jwt-secret"
#define RACE_CLIENT_COUNT 200
#define RACE_CAPACITY 20
#define RACE_WAITLIST 100
#define PIPELINE_COUNT 1000
#define BATCH_COUNT 50

static char bookd_bin[4096];
static char data_dir[256];
static char log_path[300];
static char addr[128];
static char http_addr[128]; /* bookd's HTTP side, for test_same_inputs */
static char bin_listen[320] = "127.0.0.1:0";
static pid_t bookd_pid;
static unsigned start_count; /* start-up lines seen in the log */

/* ---- the server ---- */

static inline bool find_bookd(void)
{
	return bookd_test_find(bookd_bin, sizeof(bookd_bin));
}

/* Starts bookd, appending to its log, and waits (up to 30 s: a
 * ThreadSanitizer build on a loaded machine took 10 s to recover the log)
 * for this start's line: where it listens. */
static inline int start_bookd(void)
{
	char *argv[] = { "bookd",	"--data-dir",
			 data_dir,	"--listen",
			 "127.0.0.1:0", "--binary-listen",
			 bin_listen,	"--service-key",
			 SVC,		"--anon-key",
			 ANON,		"--jwt-secret",
			 SECRET,	NULL };

	pid_t pid = bookd_test_spawn(bookd_bin, argv, log_path, true);

	if (pid < 0)
		return pid;
	bookd_pid = pid;
	return bookd_test_wait(bookd_pid, log_path, 600, &start_count, addr,
			       sizeof(addr), http_addr, sizeof(http_addr));
}

static inline void kill9_bookd(void)
{
	int st;

	kill(bookd_pid, SIGKILL);
	waitpid(bookd_pid, &st, 0);
}

/* ---- helpers ---- */

static inline bc_client *connect_as(const char *auth)
{
	bc_client *c = NULL;
	char err[256];
	int rc = bc_connect(addr, auth, &c, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "connect %s: %s (%d)\n", addr, err, rc);
		return NULL;
	}
	return c;
}

/* An HS256 JWT for customer sub, expiring exp (unix seconds). */
static inline void make_jwt(const char *sub, long long exp, char out[512])
{
	char claims[256];

	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", sub,
		 exp);
	jwt_sign(JWT_HS256_HEADER, claims, SECRET, EVP_sha256(), out);
}

/* A raw connection to bookd's binary listener (bookd_test.h). */
static inline int raw_connect(void) { return bookd_test_connect(addr); }

/* A frame from a packer callback into a struct buf. */
static inline void frame_map_start(struct buf *b, msgpack_packer *pk,
				   size_t *start, uint32_t n)
{
	msgpack_packer_init(pk, b, mp_buf_write);
	*start = mp_frame_begin(pk, b->size);
	msgpack_pack_map(pk, n);
}

static inline bool send_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n) {
		ssize_t k = send(fd, q, n, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		q += k;
		n -= (size_t)k;
	}
	return true;
}

/* Reads one answer frame from a raw socket (timeout 5 s): its code, or ""
 * when the connection closed first. */
static inline int raw_read_answer(int fd, struct bc_answer *a)
{
	static uint8_t buf[1 << 16];
	size_t have = 0;
	msgpack_zone z;

	for (;;) {
		long f = mp_frame_size(buf, have);
		if (f > 0 && (size_t)f <= sizeof(buf)) {
			msgpack_object o;
			int rc;
			msgpack_zone_init(&z, 4096);
			rc = mp_decode(&z, buf + 4, (size_t)f - 4, &o);
			if (rc == 0)
				rc = mp_read_answer(&o, a, NULL, 0, NULL, 0);
			msgpack_zone_destroy(&z);
			return rc;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
		ssize_t k = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (k <= 0)
			return -ECONNRESET;
		have += (size_t)k;
	}
}

/* After an error answer: the server closes (EOF within 5 s). */
static inline bool raw_closed(int fd)
{
	uint8_t b[4096];

	for (int i = 0; i < 1000; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			return false;
		ssize_t k = recv(fd, b, sizeof(b), 0);
		if (k <= 0)
			return true;
	}
	return false;
}

/* Sends the hello frame (v 1, auth) on a raw connection; the answer's
 * code, or -1 if it was not sent or not answered. */
static inline int raw_hello(int fd, const char *auth)
{
	struct buf buf = { 0 };
	msgpack_packer pk;
	struct bc_answer a;
	size_t start;
	int code = -1;

	frame_map_start(&buf, &pk, &start, 2);
	mp_pack_kv_uint(&pk, "v", 1);
	mp_pack_kv_str(&pk, "auth", auth);
	mp_frame_end(buf.data, start, buf.size);
	if (send_all(fd, buf.data, buf.size) && raw_read_answer(fd, &a) == 0)
		code = a.code;
	buf_free(&buf);
	return code;
}

/* Sends the request {id, op: "status"} on a raw connection and reads the
 * answer into a: 0, or -1 if it was not sent or not answered. */
static inline int raw_status(int fd, uint64_t id, struct bc_answer *a)
{
	struct buf buf = { 0 };
	msgpack_packer pk;
	size_t start;
	int rc = -1;

	frame_map_start(&buf, &pk, &start, 2);
	mp_pack_kv_uint(&pk, "id", id);
	mp_pack_kv_str(&pk, "op", "status");
	mp_frame_end(buf.data, start, buf.size);
	if (send_all(fd, buf.data, buf.size) && raw_read_answer(fd, a) == 0)
		rc = 0;
	buf_free(&buf);
	return rc;
}

/* ---- the catalogue every part uses ---- */

static uint64_t org_id, loc_id, ins_id;

/* A series in the catalogue: daily at 23:30 UTC for 30 minutes, no
 * dates yet (the caller sets them and what else it needs). */
static inline struct bc_series_spec daily_spec(const char *title, uint32_t cap)
{
	struct bc_series_spec s = {
		.org_id = org_id,
		.location_id = loc_id,
		.instructor_id = ins_id,
		.title = title,
		.capacity = cap,
		.timezone = "UTC",
		.weekdays = "MO,TU,WE,TH,FR,SA,SU",
		.start_time = "23:30",
		.duration_min = 30,
	};
	return s;
}

/* The date (UTC, YYYY-MM-DD) days after t. */
static inline void date_after(time_t t, unsigned days, char out[16])
{
	struct tm tm;

	t += (time_t)days * 86400;
	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

static inline uint64_t make_series_days(bc_client *c, const char *title,
					uint32_t cap, uint32_t waitlist,
					unsigned days, uint32_t *generated)
{
	struct bc_series_spec s = daily_spec(title, cap);
	char first[16], last[16];
	time_t now = time(NULL);
	uint64_t id = 0;

	s.waitlist_capacity = waitlist;
	s.timezone = "Europe/Vienna";
	date_after(now, 2, first);
	date_after(now, 2 + days - 1, last);
	s.first_date = first;
	s.last_date = last;
	CHECK(bc_series_create(c, &s, NULL, &id, generated) == BC_OK);
	return id;
}

static inline uint64_t make_series(bc_client *c, const char *title,
				   uint32_t cap, uint32_t waitlist,
				   uint32_t *generated)
{
	return make_series_days(c, title, cap, waitlist, 7, generated);
}

/* The first event of a series (list by org, ordered by start). */
static inline uint64_t first_event_of(bc_client *c, uint64_t series)
{
	static struct bc_event ev[BC_LIST_LIMIT_MAX];
	struct bc_list_query q = { .org_id = org_id, .limit = 500 };
	uint32_t n = 0;

	CHECK(bc_event_list(c, &q, ev, BC_LIST_LIMIT_MAX, &n, NULL) == BC_OK);
	for (uint32_t i = 0; i < n; i++)
		if (ev[i].series_id == series)
			return ev[i].id;
	return 0;
}

/* Org "E2E Studio" (Vienna) with a location and an instructor: what
 * make_series uses (test_lifecycle makes its own, checking more). */
static inline void make_catalogue(bc_client *c)
{
	CHECK(bc_org_create(c, "E2E Studio", "Europe/Vienna", NULL, &org_id) ==
	      BC_OK);
	CHECK(bc_location_create(c, org_id, "Hall", NULL, &loc_id) == BC_OK);
	CHECK(bc_instructor_create(c, org_id, "Ana", NULL, &ins_id) == BC_OK);
}

/* Starts bookd, runs run(&c) on a service connection (run may replace c,
 * e.g. across a restart), stops bookd with SIGTERM (drain, sync, exit 0),
 * runs after_stop if not NULL, and checks bookd's log for sanitizer
 * reports. Prints "<prog>: N checks, M failed"; returns the exit status
 * (77: no bookd). */
static inline int bin_e2e_main(const char *prog, void (*run)(bc_client **c),
			       void (*after_stop)(void))
{
	bc_client *c;
	int st;

	signal(SIGPIPE, SIG_IGN);
	if (!find_bookd()) {
		printf("%s: no bookd binary (BOOKD_BIN or ../api/bookd): skip\n",
		       prog);
		return SKIP;
	}
	snprintf(data_dir, sizeof(data_dir), "/tmp/bookd-bin-e2e-XXXXXX");
	if (!mkdtemp(data_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(log_path, sizeof(log_path), "%s.log", data_dir);
	if (start_bookd() != 0) {
		fprintf(stderr, "%s: bookd did not start (log %s)\n", prog,
			log_path);
		return 1;
	}
	printf("%s: %s on %s, data %s\n", prog, bookd_bin, addr, data_dir);
	c = connect_as(SVC);
	if (!c) {
		kill9_bookd();
		return 1;
	}
	CHECK(strcmp(bc_role(c), "service") == 0);
	run(&c);
	bc_close(c);

	/* SIGTERM: drain, sync, exit 0. */
	kill(bookd_pid, SIGTERM);
	CHECK(waitpid(bookd_pid, &st, 0) == bookd_pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (after_stop)
		after_stop();
	/* A sanitizer build of bookd reports into its log. */
	{
		static char logbuf[1 << 20];
		FILE *f = fopen(log_path, "r");
		size_t n = f ? fread(logbuf, 1, sizeof(logbuf) - 1, f) : 0;
		if (f)
			fclose(f);
		logbuf[n] = '\0';
		CHECK(strstr(logbuf, "Sanitizer") == NULL);
		CHECK(strstr(logbuf, "runtime error") == NULL);
		if (strstr(logbuf, "Sanitizer") ||
		    strstr(logbuf, "runtime error"))
			fprintf(stderr, "bookd's log %s:\n%s\n", log_path,
				logbuf);
	}
	printf("%s: %u checks, %u failed\n", prog, check_count,
	       check_fail_count);
	if (check_fail_count == 0 && !getenv("BIN_E2E_KEEP")) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", data_dir,
			 log_path);
		(void)!system(cmd);
	}
	return check_fail_count ? 1 : 0;
}

#endif
