/*
 * test_net.c: the io_uring network threads (api/net.c) on their own, with
 * a line protocol of this test's standing in for HTTP and the binary one:
 *
 *   PING            -> "PONG"              (answered at once)
 *   BOOK <cust>     -> "<code> <status>"   (a shard decision, durable)
 *   LIST            -> "LIST <n>"          (a slow worker's fan-out)
 *   BIG             -> ~1 MiB answer       (fills output buffers)
 *
 * Checked: answers leave in request order when a pipeline mixes the three
 * kinds; 60 connections racing for a 20-seat event get exactly 20 seats;
 * a half-closed connection still gets its answers; a client that never
 * reads is disconnected while the others go on; a request line over the
 * limit closes only that connection, and so does a request left
 * unfinished; connections that run the server out of room for requests
 * stop and resume, answered in order; net_stop answers what is in flight;
 * listings answered before net_stop are freed once (net_free); a request
 * not whole within request_timeout of its first byte (the first: of the
 * connect), trickled or never sent, is answered by the protocol's timeout
 * (or closed without one); connections per address are capped over both
 * ports; a port another socket listens on is refused.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bookd_test.h"
#include "check.h"
#include "node_test.h"

#define NOW_BASE INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define LINE_MAX_SIZE 4096
#define ADDR_CAP 64 /* connections per client address */

static uint64_t event_id;

/* ---- the line protocol ---- */

struct line_ctx {
	int kind; /* 1 book, 2 list */
};

static long line_parse(struct srv_conn *c, void *state, const uint8_t *in,
		       size_t len)
{
	size_t used = 0;

	(void)state;
	while (used < len) {
		const uint8_t *nl = memchr(in + used, '\n', len - used);
		char line[LINE_MAX_SIZE];
		size_t n;

		if (!srv_conn_writable(c))
			return -1;
		if (!nl) {
			if (len - used > LINE_MAX_SIZE) {
				srv_answer(c, "TOO LONG\n", 9);
				return -1;
			}
			break;
		}
		n = (size_t)(nl - (in + used));
		if (n >= sizeof(line)) {
			srv_answer(c, "TOO LONG\n", 9);
			return -1;
		}
		memcpy(line, in + used, n);
		line[n] = 0;
		if (!strcmp(line, "PING")) {
			srv_answer(c, "PONG\n", 5);
		} else if (!strcmp(line, "BIG")) {
			struct buf *b = srv_answer_begin(c);
			for (int k = 0; k < 1024; k++)
				buf_printf(b, "%01023d\n", k);
			srv_answer_done(c);
		} else if (!strncmp(line, "BOOK ", 5)) {
			struct core_req q = { .op = CORE_OP_BOOK,
					      .now = srv_now(),
					      .event_id = event_id };
			struct line_ctx ctx = { 1 };
			snprintf(q.customer_id, sizeof(q.customer_id), "%.64s",
				 line + 5);
			q.u.book.payment = CORE_PAY_NONE;
			if (srv_submit(c, &q, &ctx, sizeof(ctx)))
				break; /* full: offered again later */
		} else if (!strcmp(line, "LIST")) {
			struct core_req q = { .op = CORE_OP_EVENT_LIST,
					      .now = srv_now() };
			struct line_ctx ctx = { 2 };
			q.u.list.to = INT64_MAX;
			q.u.list.limit = 500;
			if (srv_submit(c, &q, &ctx, sizeof(ctx)))
				break;
		} else {
			srv_answer(c, "ERR\n", 4);
		}
		used += n + 1;
	}
	return (long)used;
}

static void line_render(struct srv_conn *c, void *state, const void *ctxp,
			int rc, const struct core_resp *r,
			const struct srv_views *views, struct buf *out)
{
	const struct line_ctx *ctx = ctxp;

	(void)c, (void)state, (void)views;
	if (rc)
		buf_printf(out, "FAIL %d\n", rc);
	else if (ctx->kind == 1)
		buf_printf(out, "%s %s\n", core_code_name(r->code),
			   r->code == CORE_OK
				   ? core_booking_status_name(r->booking.status)
				   : "-");
	else
		buf_printf(out, "LIST %u\n", r->count);
}

static void line_timeout(struct srv_conn *c, void *state)
{
	(void)state;
	srv_answer(c, "TIMEOUT\n", 8);
}

/* On the "HTTP" port a timed-out request is answered; on the "binary" one
 * the connection is closed without a word. */
const struct srv_proto srv_http_proto = { "line",	8,
					  line_parse,	line_render,
					  line_timeout, NULL };
const struct srv_proto srv_bin_proto = { "line2",     8,    line_parse,
					 line_render, NULL, NULL };

/* ---- client side ---- */

static unsigned port, bin_port;

/* A connection to port from 127.0.0.<from> (0: the kernel's choice). */
static int dial_from(unsigned to_port, unsigned from)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)to_port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd >= 0 && from) {
		struct sockaddr_in b = { .sin_family = AF_INET };
		b.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + from);
		if (bind(fd, (struct sockaddr *)&b, sizeof(b))) {
			perror("bind");
			exit(1);
		}
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static int dial(void) { return dial_from(port, 0); }

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

/* Reads lines until `lines` were read or EOF/timeout; returns them joined. */
static size_t read_lines(int fd, char *buf, size_t size, int lines)
{
	size_t got = 0;
	int seen = 0;

	while (seen < lines && got + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;
		if (poll(&p, 1, 10000) <= 0)
			break;
		k = recv(fd, buf + got, size - 1 - got, 0);
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			seen += buf[got + (size_t)i] == '\n';
		got += (size_t)k;
	}
	buf[got] = 0;
	return got;
}

/* Sends req on fd and checks that the next `lines` lines are want. */
static void check_answer(int fd, const char *req, int lines, const char *want)
{
	char buf[4096];

	send_all(fd, req, strlen(req));
	read_lines(fd, buf, sizeof(buf), lines);
	CHECK_MSG(!strcmp(buf, want), "got:\n%s", buf);
}

static void test_pipeline_order(void)
{
	int fd = dial();

	check_answer(fd, "PING\nBOOK p1\nLIST\nPING\nBOOK p1\nBOOK p2\nPING\n",
		     7,
		     "PONG\nok confirmed\nLIST 7\nPONG\n"
		     "already_booked -\nok confirmed\nPONG\n");
	close(fd);
}

static void test_half_close(void)
{
	int fd = dial();
	char buf[256];

	send_all(fd, "BOOK h1\nPING\n", 13);
	shutdown(fd, SHUT_WR);
	read_lines(fd, buf, sizeof(buf), 3);
	CHECK(!strcmp(buf, "ok confirmed\nPONG\n"));
	CHECK(recv(fd, buf, sizeof(buf), 0) == 0); /* then closed */
	close(fd);
}

static void *racer(void *arg)
{
	char req[64], buf[128];
	int fd = dial();

	snprintf(req, sizeof(req), "BOOK racer%ld\n", (long)(intptr_t)arg);
	send_all(fd, req, strlen(req));
	read_lines(fd, buf, sizeof(buf), 1);
	close(fd);
	return (void *)(intptr_t)(strcmp(buf, "ok confirmed\n") == 0   ? 1
				  : strcmp(buf, "event_full -\n") == 0 ? 0
								       : -1000);
}

/* Runs fn((void *)i) for i = 0 .. n-1 (n <= 64), each on a thread of its
 * own, all at once; the sum of what they return (as intptr_t). */
static long run_threads(void *(*fn)(void *), long n)
{
	pthread_t th[64];
	long sum = 0;

	for (long i = 0; i < n; i++)
		pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i);
	for (long i = 0; i < n; i++) {
		void *r;
		pthread_join(th[i], &r);
		sum += (long)(intptr_t)r;
	}
	return sum;
}

static void test_race(void)
{
	/* 20 seats, 3 taken by the tests before. */
	CHECK(run_threads(racer, 60) == 17);
}

static void test_never_reads(void)
{
	int hog = dial(), other;
	char chunk[65536];
	size_t sent = 0;

	for (size_t i = 0; i + 4 <= sizeof(chunk); i += 4)
		memcpy(chunk + i, "BIG\n", 4);
	/* Asks for ~1 GiB of answers and never reads them. */
	for (int k = 0; k < 64; k++) {
		struct pollfd p = { .fd = hog, .events = POLLOUT };
		ssize_t n;
		if (poll(&p, 1, 2000) <= 0)
			break;
		n = send(hog, chunk, sizeof(chunk),
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	CHECK(sent > 0);
	/* The server closed it (reset or EOF), and still serves others. */
	{
		struct pollfd p = { .fd = hog, .events = POLLIN };
		int closed = 0;
		for (int k = 0; k < 200 && !closed; k++) {
			char sink[1 << 16];
			ssize_t n;
			if (poll(&p, 1, 100) <= 0)
				continue;
			/* Drain: the kernel buffers some; EOF or reset ends it. */
			while ((n = recv(hog, sink, sizeof(sink),
					 MSG_DONTWAIT)) > 0)
				;
			closed = n == 0 || (n < 0 && errno != EAGAIN);
		}
		CHECK(closed);
	}
	close(hog);
	other = dial();
	check_answer(other, "PING\n", 1, "PONG\n");
	close(other);
}

/* More requests in flight than the server's pool (16 per thread here):
 * connections stop reading, then resume as answers go out; every request
 * is answered, in order. */
static void *piper(void *arg)
{
	char req[64 * 40], buf[64 * 40 + 1];
	size_t n = 0;
	int fd = dial(), ok = 1;

	for (int k = 0; k < 40; k++)
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "PING\nBOOK pipe%ld\n",
				      (long)(intptr_t)arg);
	send_all(fd, req, n);
	read_lines(fd, buf, sizeof(buf), 80);
	/* PONG and a booking's outcome, 40 times, in that order (the event
	 * is full by now, but the outcome is the shard's to say). */
	{
		char *save, *line = strtok_r(buf, "\n", &save);
		for (int k = 0; k < 80 && ok;
		     k++, line = strtok_r(NULL, "\n", &save)) {
			if (!line)
				ok = 0;
			else if (k % 2 == 0)
				ok = !strcmp(line, "PONG");
			else
				ok = !strcmp(line, "ok confirmed") ||
				     !strcmp(line, "event_full -") ||
				     !strcmp(line, "already_booked -");
		}
	}
	close(fd);
	return (void *)(intptr_t)ok;
}

static void test_pool_exhausted(void) { CHECK(run_threads(piper, 8) == 8); }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads what the server says until it closes (or 6 s); how long that took
 * in *took_s. */
static size_t read_to_close(int fd, char *buf, size_t size, double *took_s)
{
	double t0 = now_s();
	size_t got = bookd_test_read_to_close(fd, buf, size, 6000);

	*took_s = now_s() - t0;
	return got;
}

/* Half a request, then nothing: answered TIMEOUT after request_timeout
 * (1 s here; the sweep runs once a second) and closed. */
static void test_slow_sender(void)
{
	int fd = dial();
	char buf[64];
	double took;

	send_all(fd, "PI", 2);
	read_to_close(fd, buf, sizeof(buf), &took);
	CHECK(!strcmp(buf, "TIMEOUT\n"));
	CHECK(took < 5);
	close(fd);
}

/* A connection that never sends its first request: the same deadline,
 * from the accept. On the binary port (no timeout answer): closed
 * without a word. */
static void test_first_request_timeout(void)
{
	int fd = dial(), fd2 = dial_from(bin_port, 0);
	char buf[64];
	double took;

	read_to_close(fd, buf, sizeof(buf), &took);
	CHECK(!strcmp(buf, "TIMEOUT\n"));
	CHECK(took > 0.5 && took < 5);
	read_to_close(fd2, buf, sizeof(buf), &took);
	CHECK(buf[0] == 0);
	CHECK(took < 5);
	close(fd);
	close(fd2);
}

/* A request trickled a byte every 100 ms never completes: the deadline
 * runs from its first byte, not from the last (issue 13: a client that
 * sends its headers a byte at a time held the connection forever). A
 * request finished in time on the same connection is answered first. */
static void test_trickle(void)
{
	int fd = dial();
	char buf[64];
	double t0 = now_s(), took;
	bool closed = false;

	check_answer(fd, "PING\n", 1, "PONG\n");
	while (!closed && now_s() - t0 < 6) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (send(fd, "P", 1, MSG_NOSIGNAL) != 1 ||
		    poll(&p, 1, 100) == 1)
			closed = true;
	}
	read_to_close(fd, buf, sizeof(buf), &took);
	took = now_s() - t0;
	CHECK(closed);
	CHECK(!strcmp(buf, "TIMEOUT\n"));
	CHECK(took < 5);
	close(fd);
}

/* ADDR_CAP connections from one address at most: one more is closed at
 * once; another address still gets in; a freed place is taken again.
 * 127.0.0.3 and .4 are this test's own. */
static void test_per_address_cap(void)
{
	int fds[ADDR_CAP], extra, other;
	char buf[64];
	double took;
	bool again = false;

	for (int k = 0; k < ADDR_CAP; k++) {
		fds[k] = dial_from(k % 2 ? bin_port : port, 3);
		check_answer(fds[k], "PING\n", 1, "PONG\n");
	}
	extra = dial_from(port, 3);
	send_all(extra, "PING\n", 5);
	read_to_close(extra, buf, sizeof(buf), &took);
	CHECK(buf[0] == 0); /* closed before any answer */
	CHECK(took < 1);
	close(extra);
	other = dial_from(port, 4);
	check_answer(other, "PING\n", 1, "PONG\n");
	close(other);
	close(fds[0]);
	/* The server releases the place once it saw the close. */
	for (int tries = 0; tries < 40 && !again; tries++) {
		usleep(50000);
		extra = dial_from(port, 3);
		send_all(extra, "PING\n", 5);
		read_lines(extra, buf, sizeof(buf), 1);
		again = !strcmp(buf, "PONG\n");
		close(extra);
	}
	CHECK(again);
	for (int k = 1; k < ADDR_CAP; k++)
		close(fds[k]);
}

static void test_too_long(void)
{
	int fd = dial();
	size_t n = 2u << 20;
	char *big = malloc(n), buf[64];

	memset(big, 'x', n);
	send_all(fd, "PING\n", 5);
	send_all(fd, big, n);
	read_lines(fd, buf, sizeof(buf), 2);
	CHECK(!strcmp(buf, "PONG\nTOO LONG\n"));
	free(big);
	close(fd);
}

/* Listings answered, then the server stops: each pending that carried a
 * listing's views frees them once (issue 13: they were freed again at
 * net_free, a double free under ASan and a crash in jemalloc). Run last:
 * nothing reuses those pendings before net_stop. */
static void test_lists_then_stop(void)
{
	int fd = dial();

	check_answer(fd, "LIST\nLIST\nLIST\nLIST\nLIST\nLIST\n", 6,
		     "LIST 7\nLIST 7\nLIST 7\nLIST 7\nLIST 7\nLIST 7\n");
	close(fd);
}

/* Another socket joins the server's port through SO_REUSEPORT (what a
 * second server that probed at the same instant would do): refused by
 * net_check_ports; once it is gone, the ports are the server's alone. A
 * second server on a port in use is refused by its probe. */
static void test_port_in_use(struct srv *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	char err[256] = "", addr[64];
	struct net_config nc;
	struct srv *s2 = NULL;

	CHECK(net_check_ports(s, err, sizeof(err)) == 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(fd, 4) == 0);
	CHECK(net_check_ports(s, err, sizeof(err)) == -EADDRINUSE);
	CHECK(strstr(err, "another socket listens on port") != NULL);
	close(fd);
	CHECK(net_check_ports(s, err, sizeof(err)) == 0);

	net_config_default(&nc);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	nc.http_listen = addr;
	nc.binary_listen = "127.0.0.1:0";
	CHECK(net_prepare(&nc, &s2, err, sizeof(err)) == -EADDRINUSE);
	CHECK(strstr(err, "is in use") != NULL);
	CHECK(s2 == NULL);
}

/* ---- set-up ---- */

static struct core_date date_after(int days)
{
	time_t t = (time_t)(srv_now() / 1000) + days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	return (struct core_date){ (int16_t)(tm.tm_year + 1900),
				   (int8_t)(tm.tm_mon + 1),
				   (int8_t)tm.tm_mday };
}

static void setup(node *n)
{
	static struct core_series_spec s;
	core_port *p = core_port_get(node_core(n), 0);
	struct core_req q = { .op = CORE_OP_ORG_CREATE, .now = NOW_BASE };
	struct core_resp r;
	struct core_event_view ev[8];

	strcpy(q.u.cat.name, "Studio");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = r.id;
	CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	s.org_id = s.location_id = s.instructor_id = 1;
	strcpy(s.title, "Yoga");
	s.capacity = 20;
	strcpy(s.timezone, "Europe/Berlin");
	s.weekday_mask = 0x7f;
	s.start_minute = 23 * 60;
	s.duration_min = 30;
	s.first_date = date_after(2);
	s.last_date = date_after(8);
	q = (struct core_req){ .op = CORE_OP_SERIES_CREATE,
			       .now = srv_now(),
			       .u.series = &s };
	CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	q = (struct core_req){ .op = CORE_OP_EVENT_LIST, .now = srv_now() };
	q.u.list.to = INT64_MAX;
	q.u.list.limit = 8;
	q.u.list.out = ev;
	CHECK(core_call(p, &q, &r) == 0 && r.count == 7);
	event_id = ev[0].id;
}

int main(void)
{
	char dir[] = "/tmp/test_net.XXXXXX";
	struct net_config nc;
	struct node_config cfg;
	struct srv *s;
	node *n;
	char err[256];
	const int *fds;
	const _Atomic bool *const *idle;
	unsigned fd_count;

	if (!mkdtemp(dir))
		return 1;
	net_config_default(&nc);
	nc.http_listen = "127.0.0.1:0";
	nc.binary_listen = "127.0.0.1:0";
	nc.thread_count = 2;
	nc.log_on_ring = true; /* bookd --log-ring: two threads share a log */
	nc.conn_count_max = 256;
	nc.pending_count_max =
		16; /* small: the race and the pipes exhaust it */
	nc.first_port = 1;
	nc.send_timeout_ms = 1000;
	nc.request_timeout_ms = 1000;
	nc.conn_per_address_max = ADDR_CAP; /* the race's 60 fit */
	if (net_prepare(&nc, &s, err, sizeof(err))) {
		fprintf(stderr, "net_prepare: %s\n", err);
		return 1;
	}
	port = (unsigned)atoi(strrchr(net_http_address(s), ':') + 1);
	bin_port = (unsigned)atoi(strrchr(net_binary_address(s), ':') + 1);
	net_wake_fds(s, &fds, &idle, &fd_count);
	node_test_config(&cfg, dir);
	cfg.core.port_count = 1 + net_port_count(&nc);
	cfg.core.host_first = nc.first_port;   /* as bookd: each network */
	cfg.core.host_count = nc.thread_count; /* thread hosts a shard */
	cfg.core.ring_size = 256;
	cfg.wake_fds = fds;
	cfg.wake_idle = idle;
	cfg.wake_fd_count = fd_count;
	if (!(n = node_test_open(&cfg)))
		return 1;
	setup(n);
	CHECK(net_start(s, n) == 0);

	test_pipeline_order();
	test_half_close();
	test_race();
	test_never_reads();
	test_too_long();
	test_slow_sender();
	test_first_request_timeout();
	test_trickle();
	test_per_address_cap();
	test_port_in_use(s);
	test_pool_exhausted();
	test_lists_then_stop();

	net_stop(s, 5000);
	node_close(n);
	net_free(s);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK(system(cmd) == 0);
	}
	printf("test_net: %u checks, %u failed\n", check_count,
	       check_fail_count);
	return check_fail_count ? 1 : 0;
}
