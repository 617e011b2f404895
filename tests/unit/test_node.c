/*
 * test_node.c: the durable node (api/node.c) end to end, in process:
 * decisions survive a restart (snapshot + log tail), a replayed key gives
 * the first answer after a restart, a second node on the same directory is
 * refused, and when the disk fails (fdatasync EIO, write ENOSPC, injected
 * through the log's syscall table) decisions are refused, nothing more is
 * acknowledged, reads go on, and a restart holds exactly what was durable.
 */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "node_test.h"

#define NOW INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */

static char dir[] = "/tmp/test_node.XXXXXX";

static node *open_node(void)
{
	struct node_config cfg;

	node_test_config(&cfg, dir);
	cfg.segment_size = 1 << 20;
	return node_test_open(&cfg);
}

static struct core_resp call(node *n, struct core_req q)
{
	struct core_resp r;

	CHECK(core_call(core_port_get(node_core(n), 0), &q, &r) == 0);
	return r;
}

static struct core_req book_req(const char *customer, uint64_t key)
{
	struct core_req q = { .op = CORE_OP_BOOK, .now = NOW, .event_id = 1 };

	snprintf(q.customer_id, sizeof(q.customer_id), "%s", customer);
	/* The fingerprint stands for the request: here, its customer. */
	uint64_t fp = 1469598103934665603u;
	for (const char *c = customer; *c; c++)
		fp = (fp ^ (uint8_t)*c) * 1099511628211u;
	q.idem = (struct core_idem){ key, key + 1, fp };
	return q;
}

static struct core_event_view event1(node *n)
{
	return call(n, (struct core_req){ .op = CORE_OP_EVENT_GET,
					  .now = NOW,
					  .event_id = 1 })
		.event;
}

static void setup(node *n)
{
	static struct core_series_spec s;
	struct core_req q = { .op = CORE_OP_ORG_CREATE, .now = NOW };
	struct core_resp r;

	strcpy(q.u.cat.name, "Studio");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	CHECK(call(n, q).code == CORE_OK);
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = 1;
	CHECK(call(n, q).code == CORE_OK);
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	CHECK(call(n, q).code == CORE_OK);
	s.org_id = s.location_id = s.instructor_id = 1;
	strcpy(s.title, "Yoga");
	s.capacity = 3;
	s.waitlist_capacity = 2;
	strcpy(s.timezone, "Europe/Berlin");
	s.weekday_mask = 0x7f;
	s.start_minute = 18 * 60;
	s.duration_min = 60;
	s.first_date = (struct core_date){ 2026, 1, 1 };
	r = call(n, (struct core_req){ .op = CORE_OP_SERIES_CREATE,
				       .now = NOW,
				       .u.series = &s });
	CHECK(r.code == CORE_OK && r.count > 100);
	CHECK(node_wait_durable(n, r.lsn) == 0);
}

static int fail_fdatasync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

static ssize_t fail_pwrite(int fd, const void *buf, size_t size, off_t off)
{
	(void)fd, (void)buf, (void)size, (void)off;
	errno = ENOSPC;
	return -1;
}

/* Restart: what was acknowledged is there, keys replay, snapshots load. */
static void test_restart(void)
{
	node *n = open_node();
	struct core_resp a, b;

	CHECK(n != NULL);
	setup(n);
	a = call(n, book_req("ana", 100));
	CHECK(a.code == CORE_OK && a.lsn > 0);
	CHECK(node_wait_durable(n, a.lsn) == 0);
	CHECK(node_snapshot(n) == 0);
	b = call(n, book_req("ben", 200)); /* in the log after the snapshot */
	CHECK(b.code == CORE_OK && node_wait_durable(n, b.lsn) == 0);
	node_close(n);

	n = open_node();
	CHECK(n != NULL);
	CHECK(event1(n).booked == 2);
	struct core_resp r = call(n, book_req("ana", 100));
	CHECK(r.code == CORE_OK && r.replayed && r.booking.id == a.booking.id);
	r = call(n, book_req("ben", 200));
	CHECK(r.code == CORE_OK && r.replayed && r.booking.id == b.booking.id);
	/* The same key for another request is still refused. */
	r = call(n, book_req("cleo", 100));
	CHECK(r.code == CORE_IDEM_MISMATCH);

	/* A second node on the same directory is refused. */
	node *other = open_node();
	CHECK(other == NULL);
	node_close(n);
}

/* The disk fails: nothing more is acknowledged, decisions are refused and
 * change nothing, reads go on; after a restart only durable ones exist. */
static void test_disk_failure(const struct wal_syscalls *fault,
			      const char *what, uint64_t key)
{
	node *n = open_node();
	struct core_resp r, lost;
	struct core_event_view before;

	CHECK(n != NULL);
	before = event1(n);
	wal_set_syscalls(fault);
	/* Appended and applied in memory, never durable: never acknowledged. */
	lost = call(n, book_req(what, key));
	CHECK(lost.code == CORE_OK);
	CHECK(node_wait_durable(n, lost.lsn) != 0);
	CHECK(!node_durable(n, lost.lsn));
	CHECK(wal_error(node_wal(n)) != 0);
	/* From now on: refused, nothing applied, reads work. */
	struct core_event_view mid = event1(n);
	for (int i = 0; i < 3; i++) {
		char who[16];
		snprintf(who, sizeof(who), "late%d", i);
		r = call(n, book_req(who, key + 10 + (uint64_t)i));
		CHECK(r.code == CORE_FULL);
	}
	struct core_event_view after = event1(n);
	CHECK(after.booked == mid.booked &&
	      after.waitlist_length == mid.waitlist_length);
	CHECK(after.id == 1);
	wal_set_syscalls(NULL);
	node_close(n);

	/* Restart: the refused ones are not there; the unacknowledged one may
	 * be (its bytes reached the file before the sync failed) or not. */
	n = open_node();
	CHECK(n != NULL);
	after = event1(n);
	r = call(n, (struct core_req){ .op = CORE_OP_BOOKING_GET,
				       .now = NOW,
				       .booking_id = lost.booking.id });
	CHECK(r.code == CORE_NO_BOOKING || r.code == CORE_OK);
	uint32_t kept = r.code == CORE_OK;
	CHECK(after.booked + after.waitlist_length ==
	      before.booked + before.waitlist_length + kept);
	r = call(n, (struct core_req){ .op = CORE_OP_BOOKING_GET,
				       .now = NOW,
				       .booking_id = lost.booking.id + 1 });
	CHECK(r.code == CORE_NO_BOOKING);
	node_close(n);
}

int main(void)
{
	struct wal_syscalls eio = { .fdatasync = fail_fdatasync };
	struct wal_syscalls enospc = { .pwrite = fail_pwrite };
	int passed = 0, failed = 0;
	unsigned f0;
	char cmd[64];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	f0 = check_fail_count;
	test_restart();
	check_fail_count == f0 ? passed++ : failed++;
	f0 = check_fail_count;
	test_disk_failure(&eio, "eio", 300);
	check_fail_count == f0 ? passed++ : failed++;
	f0 = check_fail_count;
	test_disk_failure(&enospc, "enospc", 500);
	check_fail_count == f0 ? passed++ : failed++;

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("node: %u checks, %d passed, %d failed\n", check_count, passed,
	       failed);
	return failed ? 1 : 0;
}
