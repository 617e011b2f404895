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
 * listings answered before net_stop are freed once (net_free).
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

#include "check.h"

#define NOW_BASE INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define LINE_MAX_SIZE 4096



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
			struct srv_buf *b = srv_answer_begin(c);
			for (int k = 0; k < 1024; k++)
				srv_buf_printf(b, "%01023d\n", k);
			srv_answer_done(c);
		} else if (!strncmp(line, "BOOK ", 5)) {
			struct core_req q = { .op = CORE_OP_BOOK, .now = srv_now(),
					      .event_id = event_id };
			struct line_ctx ctx = { 1 };
			snprintf(q.customer_id, sizeof(q.customer_id), "%.64s", line + 5);
			q.u.book.payment = CORE_PAY_NONE;
			if (srv_submit(c, &q, &ctx, sizeof(ctx)))
				break; /* full: offered again later */
		} else if (!strcmp(line, "LIST")) {
			struct core_req q = { .op = CORE_OP_EVENT_LIST, .now = srv_now() };
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
			const struct srv_views *views, struct srv_buf *out)
{
	const struct line_ctx *ctx = ctxp;

	(void)c, (void)state, (void)views;
	if (rc)
		srv_buf_printf(out, "FAIL %d\n", rc);
	else if (ctx->kind == 1)
		srv_buf_printf(out, "%s %s\n", core_code_name(r->code),
			       r->code == CORE_OK
				       ? core_booking_status_name(r->booking.status)
				       : "-");
	else
		srv_buf_printf(out, "LIST %u\n", r->count);
}

const struct srv_proto srv_http_proto = { "line", 8, line_parse, line_render };
const struct srv_proto srv_bin_proto = { "line2", 8, line_parse, line_render };

/* ---- client side ---- */

static unsigned port;

static int dial(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	return fd;
}

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

static void test_pipeline_order(void)
{
	int fd = dial();
	char buf[4096];
	const char *req = "PING\nBOOK p1\nLIST\nPING\nBOOK p1\nBOOK p2\nPING\n";

	send_all(fd, req, strlen(req));
	read_lines(fd, buf, sizeof(buf), 7);
	CHECK(!strcmp(buf, "PONG\nok confirmed\nLIST 7\nPONG\n"
			   "already_booked -\nok confirmed\nPONG\n"));
	if (strcmp(buf, "PONG\nok confirmed\nLIST 7\nPONG\n"
			"already_booked -\nok confirmed\nPONG\n"))
		fprintf(stderr, "got:\n%s", buf);
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
	return (void *)(intptr_t)(strcmp(buf, "ok confirmed\n") == 0 ? 1 :
				  strcmp(buf, "event_full -\n") == 0 ? 0 : -1000);
}

static void test_race(void)
{
	pthread_t th[60];
	long confirmed = 0;

	for (long i = 0; i < 60; i++)
		pthread_create(&th[i], NULL, racer, (void *)(intptr_t)i);
	for (int i = 0; i < 60; i++) {
		void *r;
		pthread_join(th[i], &r);
		confirmed += (long)(intptr_t)r;
	}
	/* 20 seats, 3 taken by the tests before. */
	CHECK(confirmed == 17);
}

static void test_never_reads(void)
{
	int hog = dial(), other;
	char chunk[65536], buf[64];
	size_t sent = 0;

	for (size_t i = 0; i + 4 <= sizeof(chunk); i += 4)
		memcpy(chunk + i, "BIG\n", 4);
	/* Asks for ~1 GiB of answers and never reads them. */
	for (int k = 0; k < 64; k++) {
		struct pollfd p = { .fd = hog, .events = POLLOUT };
		ssize_t n;
		if (poll(&p, 1, 2000) <= 0)
			break;
		n = send(hog, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);
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
			while ((n = recv(hog, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
				;
			closed = n == 0 || (n < 0 && errno != EAGAIN);
		}
		CHECK(closed);
	}
	close(hog);
	other = dial();
	send_all(other, "PING\n", 5);
	read_lines(other, buf, sizeof(buf), 1);
	CHECK(!strcmp(buf, "PONG\n"));
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
		n += (size_t)snprintf(req + n, sizeof(req) - n, "PING\nBOOK pipe%ld\n",
				      (long)(intptr_t)arg);
	send_all(fd, req, n);
	read_lines(fd, buf, sizeof(buf), 80);
	/* PONG and a booking's outcome, 40 times, in that order (the event
	 * is full by now, but the outcome is the shard's to say). */
	{
		char *save, *line = strtok_r(buf, "\n", &save);
		for (int k = 0; k < 80 && ok; k++, line = strtok_r(NULL, "\n", &save)) {
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

static void test_pool_exhausted(void)
{
	pthread_t th[8];
	long ok = 0;

	for (long i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, piper, (void *)(intptr_t)i);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		ok += (long)(intptr_t)r;
	}
	CHECK(ok == 8);
}

/* Half a request, then nothing: closed after read_timeout (1 s here). */
static void test_slow_sender(void)
{
	int fd = dial();
	char buf[16];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	send_all(fd, "PI", 2);
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(recv(fd, buf, sizeof(buf), 0) <= 0);
	close(fd);
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
	char buf[256];
	const char *req = "LIST\nLIST\nLIST\nLIST\nLIST\nLIST\n";

	send_all(fd, req, strlen(req));
	read_lines(fd, buf, sizeof(buf), 6);
	CHECK(!strcmp(buf, "LIST 7\nLIST 7\nLIST 7\nLIST 7\nLIST 7\nLIST 7\n"));
	close(fd);
}

/* ---- set-up ---- */

static struct core_date date_after(int days)
{
	time_t t = (time_t)(srv_now() / 1000) + days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	return (struct core_date){ (int16_t)(tm.tm_year + 1900),
				   (int8_t)(tm.tm_mon + 1), (int8_t)tm.tm_mday };
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
	q = (struct core_req){ .op = CORE_OP_SERIES_CREATE, .now = srv_now(),
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
	unsigned fd_count;

	if (!mkdtemp(dir))
		return 1;
	net_config_default(&nc);
	nc.http_listen = "127.0.0.1:0";
	nc.binary_listen = "127.0.0.1:0";
	nc.thread_count = 2;
	nc.conn_count_max = 256;
	nc.pending_count_max = 16; /* small: the race and the pipes exhaust it */
	nc.first_port = 1;
	nc.send_timeout_ms = 1000;
	nc.read_timeout_ms = 1000;
	if (net_prepare(&nc, &s, err, sizeof(err))) {
		fprintf(stderr, "net_prepare: %s\n", err);
		return 1;
	}
	port = (unsigned)atoi(strrchr(net_http_address(s), ':') + 1);
	net_wake_fds(s, &fds, &fd_count);
	node_config_default(&cfg);
	cfg.data_dir = dir;
	cfg.quiet = true;
	cfg.core.shard_count = 2;
	cfg.core.port_count = 1 + net_port_count(&nc);
	cfg.core.ring_size = 256;
	cfg.core.event_count_max = 4096;
	cfg.core.booking_count_max = 4096;
	cfg.core.customer_count_max = 1024;
	cfg.core.idem_count_max = 1024;
	cfg.wake_fds = fds;
	cfg.wake_fd_count = fd_count;
	if (node_open(&cfg, &n, err, sizeof(err))) {
		fprintf(stderr, "node_open: %s\n", err);
		return 1;
	}
	setup(n);
	CHECK(net_start(s, n) == 0);

	test_pipeline_order();
	test_half_close();
	test_race();
	test_never_reads();
	test_too_long();
	test_slow_sender();
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
	printf("test_net: %u checks, %u failed\n", check_count, check_fail_count);
	return check_fail_count ? 1 : 0;
}
