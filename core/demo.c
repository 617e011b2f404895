/*
 * demo.c: bookd-demo, a walk through the booking core until the server
 * exists: a studio with three weekly classes, generated 120 days ahead,
 * then a class filling up, a waitlist, a cancellation that promotes, a paid
 * class whose hold is paid, and one whose hold runs out.
 */
#include "core.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static core_port *port;

static struct core_resp call(struct core_req q)
{
	struct core_resp r;

	if (core_call(port, &q, &r) != 0) {
		fprintf(stderr, "bookd-demo: core_call failed\n");
		exit(1);
	}
	return r;
}

static void iso(core_time t, char *buf, size_t size)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void show_booking(const char *what, const struct core_booking_view *b)
{
	char hold[32] = "";

	if (b->hold_expires_at)
		iso(b->hold_expires_at, hold, sizeof(hold));
	printf("  %-28s booking %-14" PRIu64 " %-10s %-16s", what, b->id,
	       b->customer_id, core_booking_status_name(b->status));
	if (b->position)
		printf(" position %u", b->position);
	if (*hold)
		printf(" hold until %s", hold);
	printf("\n");
}

static void show_event(uint64_t id, core_time now)
{
	struct core_resp r = call((struct core_req){
		.op = CORE_OP_EVENT_GET, .now = now, .event_id = id });
	char start[32];

	iso(r.event.start_at, start, sizeof(start));
	printf("  event %" PRIu64 " %-8s %s capacity %u booked %u held %u "
	       "waitlist %u\n",
	       id, r.event.title, start, r.event.capacity, r.event.booked,
	       r.event.held, r.event.waitlist_length);
}

static uint64_t book(uint64_t event, const char *customer, core_time now,
		     uint64_t key)
{
	struct core_req q = { .op = CORE_OP_BOOK, .now = now, .event_id = event };
	struct core_resp r;

	snprintf(q.customer_id, sizeof(q.customer_id), "%s", customer);
	q.idem = (struct core_idem){ key, key * 7919, key };
	r = call(q);
	if (r.code != CORE_OK) {
		printf("  book %-22s refused: %s\n", customer, core_code_name(r.code));
		return 0;
	}
	show_booking(r.replayed ? "book (replayed)" : "book", &r.booking);
	return r.booking.id;
}

int main(void)
{
	struct core_config cfg;
	core *c;
	struct timespec ts;
	core_time now;
	static struct core_series_spec spec[3];
	static const char *titles[3] = { "Yoga", "Spin", "Pilates" };
	static struct core_event_view events[CORE_LIST_LIMIT_MAX];
	uint64_t yoga = 0, spin = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (core_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	core_config_default(&cfg);
	cfg.port_count = 1;
	cfg.event_count_max = 1u << 14;
	cfg.booking_count_max = 1u << 14;
	cfg.customer_count_max = 1u << 12;
	cfg.idem_count_max = 1u << 12;
	cfg.ring_size = 64;
	if (core_open(&cfg, &c) != 0) {
		fprintf(stderr, "bookd-demo: cannot start the core\n");
		return 1;
	}
	port = core_port_get(c, 0);

	printf("bookd-demo: %u shards\n\ncatalogue\n", cfg.shard_count);
	struct core_req q = { .op = CORE_OP_ORG_CREATE, .now = now };
	strcpy(q.u.cat.name, "Studio Mitte");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	printf("  org %" PRIu64 " Studio Mitte (Europe/Berlin)\n", call(q).id);
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = 1;
	strcpy(q.u.cat.name, "Torstrasse 1");
	call(q);
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	strcpy(q.u.cat.name, "Alex");
	call(q);

	for (int i = 0; i < 3; i++) {
		struct core_series_spec *s = &spec[i];
		time_t today = (time_t)(now / 1000);
		struct tm tm;

		gmtime_r(&today, &tm);
		s->org_id = s->location_id = s->instructor_id = 1;
		snprintf(s->title, sizeof(s->title), "%s", titles[i]);
		s->capacity = i == 0 ? 3 : 20;
		s->waitlist_capacity = 2;
		s->price_cents = i == 1 ? 1500 : 0;
		strcpy(s->currency, i == 1 ? "eur" : "");
		strcpy(s->timezone, "Europe/Berlin");
		s->weekday_mask = i == 0 ? 0x7f : i == 1 ? 0x15 : 0x40;
		s->start_minute = (uint16_t)((i == 0 ? 18 : i == 1 ? 7 : 10) * 60);
		s->duration_min = 60;
		s->first_date = (struct core_date){ (int16_t)(tm.tm_year + 1900),
						    (int8_t)(tm.tm_mon + 1),
						    (int8_t)tm.tm_mday };
		struct core_resp r = call((struct core_req){
			.op = CORE_OP_SERIES_CREATE, .now = now, .u.series = s });
		printf("  series %" PRIu64 " %-8s generated %u events\n", r.id,
		       titles[i], r.count);
	}

	struct core_req list = { .op = CORE_OP_EVENT_LIST, .now = now };
	list.u.list.from = now;
	list.u.list.to = now + 7 * 86400000LL;
	list.u.list.limit = CORE_LIST_LIMIT_MAX;
	list.u.list.out = events;
	struct core_resp lr = call(list);
	printf("\nthe next 7 days: %u classes\n", lr.count);
	for (uint32_t i = 0; i < lr.count; i++) {
		char start[32];
		iso(events[i].start_at, start, sizeof(start));
		printf("  event %-4" PRIu64 " %-8s %s %u/%u\n", events[i].id,
		       events[i].title, start, events[i].booked,
		       events[i].capacity);
		if (!yoga && events[i].series_id == 1)
			yoga = events[i].id;
		if (!spin && events[i].series_id == 2)
			spin = events[i].id;
	}

	printf("\nYoga fills up (3 seats, waitlist of 2)\n");
	uint64_t first = book(yoga, "ana", now, 1);
	book(yoga, "ben", now + 1, 2);
	book(yoga, "cleo", now + 2, 3);
	book(yoga, "dan", now + 3, 4);
	book(yoga, "eve", now + 4, 5);
	book(yoga, "finn", now + 5, 6);
	book(yoga, "ana", now + 6, 1); /* a retry with the same key */
	show_event(yoga, now + 6);

	printf("\nana cancels: dan is promoted in the same decision\n");
	struct core_req cq = { .op = CORE_OP_CANCEL, .now = now + 10,
			       .booking_id = first };
	cq.idem = (struct core_idem){ 100, 200, 300 };
	struct core_resp cr = call(cq);
	show_booking("cancel", &cr.booking);
	if (cr.has_promoted)
		show_booking("promoted", &cr.promoted);
	show_event(yoga, now + 10);

	printf("\nSpin costs 15.00 EUR: a seat is held for 10 minutes\n");
	uint64_t paid = book(spin, "gus", now + 20, 7);
	book(spin, "hana", now + 21, 8);
	struct core_req pq = { .op = CORE_OP_PAY, .now = now + 60000,
			       .booking_id = paid };
	pq.u.pay.succeeded = true;
	pq.u.pay.amount_cents = 1500;
	strcpy(pq.u.pay.currency, "eur");
	struct core_resp pr = call(pq);
	show_booking("payment succeeded", &pr.booking);
	struct core_req tq = { .op = CORE_OP_TICK, .now = now + 11 * 60000 };
	printf("  11 minutes later: %u hold expired\n", call(tq).count);
	show_event(spin, now + 11 * 60000);

	core_close(c);
	return 0;
}
