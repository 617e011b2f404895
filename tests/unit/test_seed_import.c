/*
 * test_seed_import.c: the seed's backups into the core (api/seed_csv.c,
 * api/seed_import.c, core/import.c): CSV as RFC 4180 and PostgreSQL's
 * COPY write it, bad rows with their line; the checks that refuse an
 * import (file:line) or accept a past conflict; the mapping into a core:
 * statuses and created_at as they were, waitlists in their positions'
 * order, old ids kept (LEGACY) so that a second run and a run after a
 * snapshot write nothing; an import entry that does not fit refused
 * before it is logged.
 */
#include "check.h"
#include "core.h"
#include "import.h" /* core/import.h */
#include "seed_csv.h"
#include "seed_import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- CSV ---- */

static int parse(struct csv *c, const char *s)
{
	return csv_parse(c, s, strlen(s));
}

CHECK_TEST_FN(csv_quoting)
{
	struct csv c;
	const char *s = "\xef\xbb\xbf"
			"id, name \r\n"
			"1,\"a,b\"\r\n"
			"2,\"he said \"\"hi\"\"\"\n"
			"\n"
			"3,\"two\nlines\"\n"
			"4,\n"
			"5,\"\"";

	CHECK(parse(&c, s) == 0);
	CHECK_EQ(c.rows, 6);
	CHECK_EQ(c.cols, 2);
	CHECK(csv_col(&c, "name") == 1); /* spaces around a name trimmed */
	CHECK(strcmp(csv_get(&c, 0, 0), "id") == 0);
	CHECK(strcmp(csv_get(&c, 1, 1), "a,b") == 0);
	CHECK(strcmp(csv_get(&c, 2, 1), "he said \"hi\"") == 0);
	CHECK(strcmp(csv_get(&c, 3, 1), "two\nlines") == 0);
	CHECK(strcmp(csv_get(&c, 4, 1), "") == 0);
	CHECK(strcmp(csv_get(&c, 5, 1), "") == 0);
	CHECK(strcmp(csv_get(&c, 5, -1), "") == 0);
	/* each row's first line: the blank line and the break counted */
	CHECK_EQ(c.line[1], 2);
	CHECK_EQ(c.line[2], 3);
	CHECK_EQ(c.line[3], 5);
	CHECK_EQ(c.line[4], 7);
	CHECK_EQ(c.line[5], 8);
	csv_free(&c);
}

CHECK_TEST_FN(csv_bad_rows)
{
	static const struct {
		const char *text;
		uint32_t line;
		const char *what;
	} bad[] = {
		{ "a,b\n1,2\n1,2,3\n", 3, "3 fields" },
		{ "a,b\n1,2\n\"open,2\n3,4\n", 3, "not closed" },
		{ "a,b\n1,x\"y\n", 2, "quote inside" },
		{ "a,b\n\"x\"y,2\n", 2, "after a closing quote" },
		{ "a,b\n1\r2,3\n", 2, "CR" },
		{ "", 1, "no header" },
	};
	struct csv c;

	for (size_t i = 0; i < CHECK_COUNT_OF(bad); i++) {
		CHECK(parse(&c, bad[i].text) == -EINVAL);
		CHECK_MSG(c.err_line == bad[i].line, "%zu: line %u", i,
			  c.err_line);
		CHECK_MSG(strstr(c.err, bad[i].what) != NULL, "%zu: %s", i,
			  c.err);
		csv_free(&c);
	}
	CHECK(csv_parse(&c, "a\n\0\n", 4) == -EINVAL);
	csv_free(&c);
}

/* ---- a backup in memory ---- */

#define NOW INT64_C(1790000000000) /* 2026-09-21T14:13:20Z */

static void put(struct import_src *src, enum imp_table t, const char *text)
{
	free(src->file[t].data);
	src->file[t].data = strdup(text);
	src->file[t].size = strlen(text);
	snprintf(src->file[t].name, sizeof(src->file[t].name), "%s",
		 imp_file_names[t][0]);
}

/* Instances: p1 past (full, one still waitlisted on it), f1 future of
 * series s1, f2 future one-off; registrations with every status; a waitlist whose positions are not the
 * order of created_at; a waitlist row that left, one promoted. */
static void backup(struct import_src *src)
{
	memset(src, 0, sizeof(*src));
	put(src, IMP_ORGS, "id,name,timezone\norg-a,Studio A,Europe/Berlin\n");
	put(src, IMP_CUSTOMERS,
	    "id,email,first_name,last_name\n"
	    "c1,c1@example.com,Ann,One\nc2,,,\n");
	put(src, IMP_SERIES,
	    "id,org_id,title,weekdays,start_time,duration_minutes,"
	    "start_date,capacity,timezone\n"
	    "s1,org-a,Yoga,\"MO,WE\",18:00,60,2026-09-01,2,Europe/Berlin\n");
	put(src, IMP_INSTANCES,
	    "id,org_id,series_id,title,start_time,end_time,capacity,status,"
	    "location_id,instructor_id,extra\n"
	    "p1,org-a,,Past,2026-09-01 16:00:00+00,2026-09-01 17:00:00+00,"
	    "2,completed,loc-1,ins-1,x\n"
	    "f1,org-a,s1,,2026-09-23 16:00:00+00,2026-09-23 17:00:00+00,2,"
	    "scheduled,loc-1,ins-1,x\n"
	    "f2,org-a,,Workshop,2026-10-01T10:00:00Z,,1,,,,x\n");
	put(src, IMP_INSTANCES,
	    "id,org_id,series_id,title,start_time,end_time,duration_minutes,"
	    "capacity,status,location_id,instructor_id,extra\n"
	    "p1,org-a,,Past,2026-09-01 16:00:00+00,2026-09-01 17:00:00+00,,"
	    "2,completed,loc-1,ins-1,x\n"
	    "f1,org-a,s1,,2026-09-23 16:00:00+00,2026-09-23 17:00:00+00,,2,"
	    "scheduled,loc-1,ins-1,x\n"
	    "f2,org-a,,Workshop,2026-10-01T10:00:00Z,,45,1,,,,x\n");
	put(src, IMP_REGISTRATIONS,
	    "id,class_instance_id,customer_id,status,created_at\n"
	    "r1,p1,c1,attended,2026-08-20 10:00:00+00\n"
	    "r2,p1,c2,no_show,2026-08-21 10:00:00.5+00\n"
	    "r3,p1,c3,cancelled,2026-08-19 10:00:00+00\n"
	    "r4,f1,c1,confirmed,2026-09-10 10:00:00+02\n"
	    "r5,f1,c2,confirmed,2026-09-10 11:00:00+00\n"
	    "r6,f1,c3,waitlisted,2026-09-11 10:00:00+00\n"
	    "r7,f1,c4,waitlisted,2026-09-12 10:00:00+00\n"
	    "r8,f2,c4,confirmed,2026-09-12 10:00:00+00\n"
	    "r9,p1,c5,waitlisted,2026-08-22 10:00:00+00\n");
	put(src, IMP_WAITLISTS,
	    "id,class_instance_id,customer_id,position,status,created_at,"
	    "promoted_at\n"
	    "w1,f1,c3,2,waiting,2026-09-11 10:00:00+00,\n"
	    "w2,f1,c4,1,waiting,2026-09-12 10:00:00+00,\n"
	    "w3,f1,c5,,cancelled,2026-09-13 10:00:00+00,\n"
	    "w4,f1,c1,,promoted,2026-09-09 10:00:00+00,"
	    "2026-09-10 08:00:00+00\n");
}

/* Registrations replaced, the waitlists emptied (theirs name them). */
static void regs(struct import_src *src, const char *text)
{
	put(src, IMP_REGISTRATIONS, text);
	put(src, IMP_WAITLISTS,
	    "id,class_instance_id,customer_id,created_at\n");
}

static struct import_report rep;

/* The first problem's "file:line message", or "". */
static const char *first_problem(void)
{
	static char s[400];

	s[0] = '\0';
	if (rep.kept)
		snprintf(s, sizeof(s), "%s:%u %s",
			 rep.file[rep.problem[0].table], rep.problem[0].line,
			 rep.problem[0].msg);
	return s;
}

CHECK_TEST_FN(check_only)
{
	struct import_src src;
	struct import_opts o = { .dry_run = true, .now = NOW };

	backup(&src);
	CHECK(import_run(&src, &o, NULL, NULL, &rep) == 0);
	CHECK_MSG(rep.errors == 0 && !rep.refused, "%s", first_problem());
	CHECK_EQ(rep.rows[IMP_INSTANCES], 3);
	CHECK_EQ(rep.planned[IMP_C_EVENTS], 3);
	CHECK_EQ(rep.planned[IMP_C_SERIES], 1);
	CHECK_EQ(rep.planned[IMP_C_ONE_OFF], 2);
	/* 9 registrations and the waitlist row that left */
	CHECK_EQ(rep.planned[IMP_C_BOOKINGS], 10);
	CHECK_EQ(rep.planned[IMP_C_WL_MERGED], 3);
	CHECK_EQ(rep.planned[IMP_C_WL_EXPIRED], 1); /* r9: p1 started */
	CHECK_EQ(rep.planned[IMP_C_CUSTOMERS], 5);
	/* org-a; loc-1 and a placeholder (f2 has none); likewise */
	CHECK_EQ(rep.planned[IMP_C_ORGS], 1);
	CHECK_EQ(rep.planned[IMP_C_LOCATIONS], 2);
	CHECK_EQ(rep.planned[IMP_C_INSTRUCTORS], 2);
	import_src_free(&src);
}

/* A faulty backup: refused, the problem at file:line. */
static void refused(struct import_src *src, bool accept, const char *at,
		    const char *what)
{
	struct import_opts o = { .dry_run = true,
				 .now = NOW,
				 .accept_past = accept };

	CHECK(import_run(src, &o, NULL, NULL, &rep) == 0);
	CHECK_MSG(rep.refused && rep.errors >= 1, "%s", at);
	CHECK_MSG(strncmp(first_problem(), at, strlen(at)) == 0 &&
			  strstr(first_problem(), what),
		  "want %s ... %s, got %s", at, what, first_problem());
	import_src_free(src);
}

CHECK_TEST_FN(refusals)
{
	struct import_src src;
	struct import_opts o = { .dry_run = true, .now = NOW };

	backup(&src);
	regs(&src, "id,class_instance_id,customer_id,created_at\nr1,p1,c1,x\n");
	refused(&src, false, "registrations_backup.csv:1", "status");

	backup(&src);
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,p1,c1,attended,2026-08-20 10:00:00+00\n"
		   "r2,nope,c1,attended,2026-08-20 10:00:00+00\n");
	refused(&src, false, "registrations_backup.csv:3", "nope");

	backup(&src); /* a future class over capacity */
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,f2,c1,confirmed,2026-09-01 10:00:00+00\n"
		   "r2,f2,c2,confirmed,2026-09-01 10:00:00+00\n");
	refused(&src, true, "class_instances_backup.csv:4", "capacity");

	backup(&src); /* a customer twice on a class */
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,f1,c1,confirmed,2026-09-01 10:00:00+00\n"
		   "r2,f1,c1,waitlisted,2026-09-02 10:00:00+00\n");
	refused(&src, false, "registrations_backup.csv:3", "twice");

	backup(&src);
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,f1,c1,pending,2026-09-01 10:00:00+00\n");
	refused(&src, false, "registrations_backup.csv:2", "pending");

	backup(&src);
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,f1,c1,confirmed,2026-09-01 10:00:00+00\n"
		   "r1,f1,c2,confirmed,2026-09-01 10:00:00+00\n");
	refused(&src, false, "registrations_backup.csv:3", "twice");

	backup(&src);
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,f1,c 1,confirmed,2026-09-01 10:00:00+00\n");
	refused(&src, false, "registrations_backup.csv:2", "customer id");

	backup(&src);
	put(&src, IMP_INSTANCES,
	    "id,org_id,start_time,capacity\n"
	    "x,org-a,2026-13-01 10:00,2\n");
	refused(&src, false, "class_instances_backup.csv:2", "start_time");

	backup(&src);
	regs(&src, "id,class_instance_id\n\"r1,f1\n");
	refused(&src, false, "registrations_backup.csv:2", "not closed");

	/* the cell checks the tables share (cell_checks): a price without
	 * its currency, a bad price, a bad waitlist capacity, a series'
	 * duration of 0 */
	backup(&src);
	put(&src, IMP_INSTANCES,
	    "id,org_id,start_time,duration_minutes,capacity,price_cents\n"
	    "x,org-a,2026-10-01 10:00:00+00,60,2,1500\n");
	refused(&src, false, "class_instances_backup.csv:2",
		"a price needs a currency");
	backup(&src);
	put(&src, IMP_INSTANCES,
	    "id,org_id,start_time,duration_minutes,capacity,price,currency\n"
	    "x,org-a,2026-10-01 10:00:00+00,60,2,12.5.0,eur\n");
	refused(&src, false, "class_instances_backup.csv:2", "price: like");
	backup(&src);
	put(&src, IMP_INSTANCES,
	    "id,org_id,start_time,duration_minutes,capacity,"
	    "waitlist_capacity\n"
	    "x,org-a,2026-10-01 10:00:00+00,60,2,-1\n");
	refused(&src, false, "class_instances_backup.csv:2",
		"waitlist_capacity: 0 to");
	backup(&src);
	put(&src, IMP_SERIES,
	    "id,org_id,title,duration_minutes,price_cents,currency\n"
	    "s1,org-a,Yoga,0,900,eur\n");
	refused(&src, false, "class_series.csv:2", "duration_minutes: 1 to");

	/* a past class over capacity: refused, accepted on demand */
	backup(&src);
	regs(&src, "id,class_instance_id,customer_id,status,created_at\n"
		   "r1,p1,c1,attended,2026-08-20 10:00:00+00\n"
		   "r2,p1,c2,attended,2026-08-20 10:00:00+00\n"
		   "r3,p1,c3,attended,2026-08-20 10:00:00+00\n");
	CHECK(import_run(&src, &o, NULL, NULL, &rep) == 0);
	CHECK(rep.refused && rep.errors == 1);
	o.accept_past = true;
	CHECK(import_run(&src, &o, NULL, NULL, &rep) == 0);
	CHECK(!rep.refused && rep.errors == 0 && rep.accepted == 1);
	CHECK(rep.kept == 1 && rep.problem[0].accepted);
	import_src_free(&src);
}

/* ---- files given by path ---- */

static void file_put(char *path, size_t size, const char *dir, const char *name,
		     const char *text)
{
	FILE *f;

	snprintf(path, size, "%s/%s", dir, name);
	CHECK((f = fopen(path, "w")) != NULL);
	fputs(text, f);
	fclose(f);
}

/* Each file taken for its table by its name, a name holding the table's
 * word, or its header; what fits no table or two, a table twice and no
 * class_instances refused with the file's name. */
CHECK_TEST_FN(files_by_name_or_header)
{
	char dir[] = "/tmp/test_seed_import.XXXXXX";
	char p[6][300], msg[300];
	const char *paths[6];
	struct import_src src, mem;
	struct import_opts o = { .dry_run = true, .now = NOW };

	CHECK(mkdtemp(dir) != NULL);
	backup(&mem);
	file_put(p[0], sizeof(p[0]), dir, "class_instances.csv",
		 mem.file[IMP_INSTANCES].data);
	file_put(p[1], sizeof(p[1]), dir, "export_3.csv", /* its header */
		 mem.file[IMP_REGISTRATIONS].data);
	file_put(p[2], sizeof(p[2]), dir, "2026_Waitlists.csv",
		 mem.file[IMP_WAITLISTS].data);
	file_put(p[3], sizeof(p[3]), dir, "people.csv",
		 mem.file[IMP_CUSTOMERS].data);
	file_put(p[4], sizeof(p[4]), dir, "s.csv", /* weekdays: a series */
		 mem.file[IMP_SERIES].data);
	file_put(p[5], sizeof(p[5]), dir, "orgs_organizations.csv",
		 mem.file[IMP_ORGS].data);
	for (int i = 0; i < 6; i++)
		paths[i] = p[i];
	CHECK_MSG(import_src_files(&src, paths, 6, msg, sizeof(msg)) == 0, "%s",
		  msg);
	CHECK(strcmp(src.file[IMP_INSTANCES].name, "class_instances.csv") == 0);
	CHECK(strcmp(src.file[IMP_REGISTRATIONS].name, "export_3.csv") == 0);
	CHECK(strcmp(src.file[IMP_WAITLISTS].name, "2026_Waitlists.csv") == 0);
	CHECK(strcmp(src.file[IMP_CUSTOMERS].name, "people.csv") == 0);
	CHECK(strcmp(src.file[IMP_SERIES].name, "s.csv") == 0);
	CHECK(strcmp(src.file[IMP_ORGS].name, "orgs_organizations.csv") == 0);
	/* the same import as the backup's in memory */
	CHECK(import_run(&src, &o, NULL, NULL, &rep) == 0);
	CHECK_MSG(rep.errors == 0 && !rep.refused, "%s", first_problem());
	CHECK_EQ(rep.planned[IMP_C_BOOKINGS], 10);
	CHECK_EQ(rep.planned[IMP_C_WL_MERGED], 3);
	CHECK(strcmp(rep.file[IMP_REGISTRATIONS], "export_3.csv") == 0);
	import_src_free(&src);

	/* a header of no table, or with a registration's and a waitlist's
	 * columns; a table twice; no class_instances */
	file_put(p[1], sizeof(p[1]), dir, "x.csv", "id,colour\n1,red\n");
	CHECK(import_src_files(&src, paths, 2, msg, sizeof(msg)) == -EINVAL);
	CHECK_MSG(strstr(msg, "x.csv: neither") != NULL, "%s", msg);
	file_put(p[1], sizeof(p[1]), dir, "y.csv",
		 "id,class_instance_id,customer_id,status,joined_at,"
		 "registered_at\n");
	CHECK(import_src_files(&src, paths, 2, msg, sizeof(msg)) == -EINVAL);
	CHECK_MSG(strstr(msg, "y.csv: neither") != NULL, "%s", msg);
	file_put(p[1], sizeof(p[1]), dir, "z.csv",
		 "id,org_id,start_time,capacity\n");
	CHECK(import_src_files(&src, paths, 2, msg, sizeof(msg)) == -EINVAL);
	CHECK_MSG(strstr(msg, "z.csv: a second file for class_instances"), "%s",
		  msg);
	paths[0] = p[2];
	CHECK(import_src_files(&src, paths, 1, msg, sizeof(msg)) == -ENOENT);
	CHECK_MSG(strstr(msg, "no class_instances") != NULL, "%s", msg);
	paths[0] = "/nonexistent/class_instances.csv";
	CHECK(import_src_files(&src, paths, 1, msg, sizeof(msg)) == -ENOENT);
	import_src_free(&mem);
	{
		static const char *const made[] = {
			"class_instances.csv",
			"export_3.csv",
			"2026_Waitlists.csv",
			"people.csv",
			"s.csv",
			"orgs_organizations.csv",
			"x.csv",
			"y.csv",
			"z.csv",
		};
		for (size_t i = 0; i < CHECK_COUNT_OF(made); i++) {
			snprintf(p[0], sizeof(p[0]), "%s/%s", dir, made[i]);
			CHECK(unlink(p[0]) == 0);
		}
	}
	CHECK(rmdir(dir) == 0);
}

/* ---- into a core ---- */

static core *open_core(unsigned shards)
{
	struct core_config cfg;
	core *c;

	core_config_default(&cfg);
	cfg.shard_count = shards;
	cfg.port_count = 1;
	cfg.catalog_count_max = 1000;
	CHECK(core_open(&cfg, &c) == 0);
	return c;
}

static uint64_t legacy(core *c, uint8_t kind, const char *id)
{
	uint64_t v = 0;
	return core_legacy_get(c, kind, id, &v) == 0 ? v : UINT64_MAX;
}

static struct core_booking_view booking(core_port *p, uint64_t id)
{
	struct core_req q = { .op = CORE_OP_BOOKING_GET,
			      .now = NOW,
			      .booking_id = id };
	struct core_resp r;

	memset(&r, 0, sizeof(r));
	CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	return r.booking;
}

static struct core_event_view event(core_port *p, uint64_t id)
{
	struct core_req q = { .op = CORE_OP_EVENT_GET,
			      .now = NOW,
			      .event_id = id };
	struct core_resp r;

	memset(&r, 0, sizeof(r));
	CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	return r.event;
}

static uint8_t snap[1 << 20];
static size_t snap_size;
static int snap_write(void *ctx, const void *buf, size_t size)
{
	(void)ctx;
	if (snap_size + size > sizeof(snap))
		return -ENOSPC;
	memcpy(snap + snap_size, buf, size);
	snap_size += size;
	return 0;
}

CHECK_TEST_FN(into_core)
{
	struct import_src src;
	struct import_opts o = { .now = NOW };
	core *c = open_core(3), *c2;
	core_port *p = core_port_get(c, 0);
	struct core_booking_view b;
	struct core_event_view e;
	uint64_t id;

	backup(&src);
	CHECK(import_run(&src, &o, c, p, &rep) == 0);
	CHECK_MSG(!rep.refused && rep.failure[0] == '\0', "%s %s",
		  first_problem(), rep.failure);
	CHECK_EQ(rep.written[IMP_C_EVENTS], 3);
	CHECK_EQ(rep.written[IMP_C_BOOKINGS], 10);
	CHECK_EQ(rep.written[IMP_C_WL_EXPIRED], 1);
	CHECK(rep.entries >= 2);

	/* the past class: attended and no_show confirmed, as they were */
	id = legacy(c, CORE_LEGACY_BOOKING, "r1");
	CHECK(id != UINT64_MAX);
	b = booking(p, id);
	CHECK(b.status == CORE_BOOKING_CONFIRMED);
	CHECK(b.created_at == INT64_C(1787220000000)); /* 08-20 10:00Z */
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r2"));
	CHECK(b.status == CORE_BOOKING_CONFIRMED);
	CHECK(b.created_at == INT64_C(1787306400500));
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r3"));
	CHECK(b.status == CORE_BOOKING_CANCELLED);
	e = event(p, legacy(c, CORE_LEGACY_EVENT, "p1"));
	CHECK(e.booked == 2 && e.capacity == 2 && e.duration_min == 60);
	CHECK(strcmp(e.title, "Past") == 0 && e.series_id != 0);
	/* still waitlisted in the seed on a class that started: its
	 * waitlist closed, nothing left for a tick to close and tell */
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r9"));
	CHECK(b.status == CORE_BOOKING_WAITLIST_EXPIRED && b.position == 0);
	CHECK(b.created_at == INT64_C(1787392800000)); /* 08-22 10:00Z */
	CHECK(e.waitlist_length == 0);
	{
		struct core_req q = { .op = CORE_OP_TICK, .now = NOW };
		struct core_resp r;
		CHECK(core_call(p, &q, &r) == 0 && r.code == CORE_OK);
	}
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r9"));
	CHECK(b.status == CORE_BOOKING_WAITLIST_EXPIRED);

	/* f1: r4 came from the waitlist (w4: its created_at, the join) */
	id = legacy(c, CORE_LEGACY_EVENT, "f1");
	e = event(p, id);
	CHECK(e.booked == 2 && e.waitlist_length == 2);
	CHECK(e.series_id == legacy(c, CORE_LEGACY_SERIES, "s1"));
	CHECK(strcmp(e.title, "Yoga") == 0);
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r4"));
	CHECK(b.status == CORE_BOOKING_CONFIRMED);
	CHECK(b.created_at == INT64_C(1788948000000)); /* 09-09 10:00Z */
	CHECK(legacy(c, CORE_LEGACY_WAITLIST, "w4") == b.id);
	/* the waitlist by position: c4 (r7, w2) first, then c3 */
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r7"));
	CHECK(b.status == CORE_BOOKING_WAITLISTED && b.position == 1);
	CHECK(legacy(c, CORE_LEGACY_WAITLIST, "w2") == b.id);
	b = booking(p, legacy(c, CORE_LEGACY_BOOKING, "r6"));
	CHECK(b.status == CORE_BOOKING_WAITLISTED && b.position == 2);
	/* the waitlist row that left: a cancelled booking of its own */
	b = booking(p, legacy(c, CORE_LEGACY_WAITLIST, "w3"));
	CHECK(b.status == CORE_BOOKING_CANCELLED &&
	      strcmp(b.customer_id, "c5") == 0);
	/* f2: a one-off with its own duration, placeholders */
	e = event(p, legacy(c, CORE_LEGACY_EVENT, "f2"));
	CHECK(e.duration_min == 45 && e.booked == 1 && e.capacity == 1);
	CHECK(legacy(c, CORE_LEGACY_LOCATION, "org-a/none") == e.location_id);
	CHECK(legacy(c, CORE_LEGACY_CUSTOMER, "c1") == 0);

	/* run again: nothing written, everything there */
	CHECK(import_run(&src, &o, c, p, &rep) == 0);
	CHECK(!rep.refused && rep.entries == 0);
	CHECK_EQ(rep.existing[IMP_C_BOOKINGS], 10);
	CHECK_EQ(rep.existing[IMP_C_WL_EXPIRED], 1);
	CHECK_EQ(rep.written[IMP_C_BOOKINGS], 0);

	/* a snapshot keeps the old ids: a core made from it writes nothing */
	snap_size = 0;
	CHECK(core_park(c) == 0);
	CHECK(core_snapshot_write(c, snap_write, NULL) == 0);
	core_unpark(c);
	core_close(c);
	c2 = open_core(2);
	CHECK(core_park(c2) == 0);
	CHECK(core_snapshot_load(c2, snap, snap_size) == 0);
	core_unpark(c2);
	p = core_port_get(c2, 0);
	CHECK(import_run(&src, &o, c2, p, &rep) == 0);
	CHECK(!rep.refused && rep.entries == 0);
	CHECK_EQ(rep.existing[IMP_C_EVENTS], 3);
	b = booking(p, legacy(c2, CORE_LEGACY_BOOKING, "r6"));
	CHECK(b.status == CORE_BOOKING_WAITLISTED && b.position == 2);
	core_close(c2);
	import_src_free(&src);
}

/* core_import_write refuses what would not apply, nothing logged. */
CHECK_TEST_FN(write_checks)
{
	core *c = open_core(1);
	core_port *p = core_port_get(c, 0);
	struct core_import_next nx;
	struct core_rec r[4];
	uint64_t lsn;
	uint32_t bad;

	core_import_next(c, &nx);
	CHECK(nx.org == 1 && nx.event == 1);
	memset(r, 0, sizeof(r));
	r[0].type = CORE_REC_ORG;
	r[0].u.cat.id = 2; /* not the next */
	snprintf(r[0].u.cat.name, sizeof(r[0].u.cat.name), "X");
	CHECK(core_import_write(p, r, 1, &lsn, &bad) == -ESTALE);
	r[0].u.cat.id = 1;
	r[1].type = CORE_REC_LEGACY;
	r[1].u.legacy.kind = CORE_LEGACY_ORG;
	r[1].u.legacy.bookd_id = 1;
	snprintf(r[1].u.legacy.id, sizeof(r[1].u.legacy.id), "o");
	r[2] = r[1]; /* the same old id twice */
	CHECK(core_import_write(p, r, 3, &lsn, &bad) == -EINVAL && bad == 2);
	/* a booking with no event in the entry */
	r[2].type = CORE_REC_BOOKING_IMPORT;
	r[2].u.booking.booking_id = UINT64_C(1) << 24 | 1;
	r[2].u.booking.status = CORE_BOOKING_CONFIRMED;
	snprintf(r[2].u.booking.customer_id, 8, "c1");
	CHECK(core_import_write(p, r, 3, &lsn, &bad) == -EINVAL && bad == 2);
	core_import_next(c, &nx);
	CHECK(nx.org == 1); /* nothing of it applied */
	CHECK(core_import_write(p, r, 2, &lsn, &bad) == 0);
	core_import_next(c, &nx);
	CHECK(nx.org == 2);
	CHECK(legacy(c, CORE_LEGACY_ORG, "o") == 1);
	/* and the same old id again, in a later entry */
	r[0].u.cat.id = 2;
	CHECK(core_import_write(p, r, 2, &lsn, &bad) == -EINVAL && bad == 1);
	core_close(c);
}

int main(int argc, char **argv)
{
	return check_run_all("seed_import", argc > 1 ? argv[1] : NULL);
}
