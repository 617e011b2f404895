/*
 * test_tz_tzif.c: core/tz's reading of TZif files, on files it builds
 * (synthetic transitions, footers, every refused table, truncated and
 * bit-flipped copies of a real zone) in a TZDIR of its own; test_tz.c has
 * the calendar and the real zones (shared helpers: tz_test.h). Random parts
 * print their seed; rerun with TZ_TEST_SEED=<seed>.
 */
#include "tz_test.h"

/* ---- synthetic TZif files ---- */

struct tzif_spec {
	const int64_t *times;
	const uint8_t *indices;
	uint32_t time_count;
	const int32_t *utoffs; /* type i: utoffs[i], isdst[i] */
	const uint8_t *isdst;
	uint32_t type_count;
	uint32_t leap_count;
	const char *footer; /* TZ string between the newlines */
	char version;
};

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put64(uint8_t *p, int64_t v)
{
	p = put32(p, (uint32_t)((uint64_t)v >> 32));
	return put32(p, (uint32_t)(uint64_t)v);
}

static uint8_t *put_header(uint8_t *p, char version, uint32_t leap_count,
			   uint32_t time_count, uint32_t type_count,
			   uint32_t char_count)
{
	memcpy(p, "TZif", 4);
	p[4] = (uint8_t)version;
	memset(p + 5, 0, 15);
	p = put32(p + 20, 0); /* isutcnt */
	p = put32(p, 0);      /* isstdcnt */
	p = put32(p, leap_count);
	p = put32(p, time_count);
	p = put32(p, type_count);
	return put32(p, char_count);
}

/* Where the second header starts in a built file. */
#define V2_HEADER_POS (44 + 7)

static size_t build_tzif(uint8_t *buf, const struct tzif_spec *s)
{
	uint8_t *p = buf;

	/* v1 block: one type, one NUL designation (like zic -b slim). */
	p = put_header(p, s->version, 0, 0, 1, 1);
	memset(p, 0, 7);
	p += 7;
	p = put_header(p, s->version, s->leap_count, s->time_count,
		       s->type_count, 4);
	for (uint32_t i = 0; i < s->time_count; i++)
		p = put64(p, s->times[i]);
	for (uint32_t i = 0; i < s->time_count; i++)
		*p++ = s->indices[i];
	for (uint32_t i = 0; i < s->type_count; i++) {
		p = put32(p, (uint32_t)s->utoffs[i]);
		*p++ = s->isdst[i];
		*p++ = 0;
	}
	memcpy(p, "ABC", 4);
	p += 4;
	for (uint32_t i = 0; i < s->leap_count; i++) {
		p = put64(p, INT64_C(78796800) + i * 15778800);
		p = put32(p, i + 1);
	}
	p += sprintf((char *)p, "\n%s\n", s->footer);
	return (size_t)(p - buf);
}

static int load_bytes(const char *dir, const uint8_t *buf, size_t len,
		      struct tz **out)
{
	int rc = write_file(dir, "Test", buf, len);

	*out = NULL;
	if (rc)
		return rc;
	return tz_load("Test", out);
}

static int load_spec(const char *dir, const struct tzif_spec *s,
		     struct tz **out)
{
	static uint8_t buf[8192];

	return load_bytes(dir, buf, build_tzif(buf, s), out);
}

/* A zone with no transitions: the footer alone decides. */
static int load_footer(const char *dir, const char *footer, struct tz **out)
{
	static const int32_t utoffs[1] = { 0 };
	static const uint8_t isdst[1] = { 0 };
	struct tzif_spec s = { .utoffs = utoffs,
			       .isdst = isdst,
			       .type_count = 1,
			       .footer = footer,
			       .version = '3' };

	return load_spec(dir, &s, out);
}

/* One offset a footer-only zone must give at an instant. */
struct footer_offset {
	const char *label;
	int64_t t;
	int32_t want;
};

/* Loads the footer-only zone and checks each of c[0..n) in it. */
static void check_footer_offsets(const char *dir, const char *footer,
				 const struct footer_offset *c, size_t n)
{
	struct tz *z;

	if (load_footer(dir, footer, &z) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		check_offset(z, c[i].label, c[i].t, c[i].want);
	tz_free(z);
}

static void test_footers(const char *dir)
{
	static const char *const libc_ok[] = {
		"CET-1CEST,M3.5.0,M10.5.0/3",
		"<+03>-3",
		"<-0330>3:30",
		"<-00>0",
		"UTC0",
		"IST-5:30",
		"XXX3YYY,J60/2,J300/2",
		"XXX3YYY,59,299",
		"AEST-10AEDT,M10.1.0,M4.1.0/3",
		"IST-1GMT0,M10.5.0,M3.5.0/1",
		"<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
		"EET-2EEST,M3.4.4/50,M10.4.4/50",
		"IST-2IDT,M3.4.4/26,M10.5.0",
		"<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
		"NST3:30NDT,M3.2.0,M11.1.0",
		"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
		"<-04>4<-03>,M9.1.6/24,M4.1.6/24",
		"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
		"EET-2EEST,M4.5.5/0,M10.5.4/24",
		"CST5CDT,M3.2.0/0,M11.1.0/1",
		"ABC+1:02:03DEF-4:05:06,M3.2.0/1:02:03,M11.1.0/-0:30:15",
		"AAA+24BBB-24,M5.1.0,M6.1.0",
	};
	static const char *const bad[] = {
		"CET",
		"CET-",
		"CET-1CEST",
		"CET-1CEST,M3.5.0",
		"CET-1CEST,M3.5.0,",
		"CET-1CEST;M3.5.0,M10.5.0",
		"CET-1CEST,M13.5.0,M10.5.0",
		"CET-1CEST,M0.5.0,M10.5.0",
		"CET-1CEST,M3.6.0,M10.5.0",
		"CET-1CEST,M3.0.0,M10.5.0",
		"CET-1CEST,M3.5.7,M10.5.0",
		"CET-1CEST,M3.5,M10.5.0",
		"CET-1CEST,M3.5.0/168,M10.5.0",
		"CET-1CEST,M3.5.0/,M10.5.0",
		"CET-1CEST,J0,J365",
		"CET-1CEST,J366,J1",
		"CET-1CEST,366,0",
		"CET-25",
		"CET-1:60",
		"CET-1:00:60",
		"CET-1CEST-25,J1,J2",
		"CET-1 ",
		" CET-1",
		"CE-1",
		"<+03",
		"<+3>-3",
		"<+0 3>-3",
		"<+03>",
		"CET-1CEST,M3.5.0,M10.5.0/3,",
		"CET1000",
		"CET-1CEST,M3.5.0,M10.5.0/3x",
		"CET-1\r",
	};
	struct tz *z;
	int rc;

	for (size_t i = 0; i < sizeof(libc_ok) / sizeof(libc_ok[0]); i++) {
		rc = load_footer(dir, libc_ok[i], &z);
		CHECK_MSG(rc == 0, "footer \"%s\": %d", libc_ok[i], rc);
		if (rc)
			continue;
		libc_zone(libc_ok[i]);
		compare_random(z, libc_ok[i], at(1970, 1, 1, 0, 0, 0),
			       at(2200, 1, 1, 0, 0, 0), 500);
		compare_scan(z, libc_ok[i], at(2020, 1, 1, 0, 0, 0),
			     at(2030, 1, 1, 0, 0, 0), 3 * HOUR, true);
		/* Across 2370, where the 400-year reduction wraps. */
		compare_scan(z, libc_ok[i], at(2366, 1, 1, 0, 0, 0),
			     at(2374, 1, 1, 0, 0, 0), 3 * HOUR, false);
		tz_free(z);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = load_footer(dir, bad[i], &z);
		CHECK_MSG(rc == -EINVAL, "footer \"%s\": %d, want -EINVAL",
			  bad[i], rc);
		tz_free(z);
	}

	/* Jn never counts February 29, n does (2024 is a leap year). */
	const struct footer_offset jn[] = {
		{ "J60", at(2024, 3, 1, 4, 59, 59), -3 * HOUR },
		{ "J60", at(2024, 3, 1, 5, 0, 0), -2 * HOUR },
		{ "J300", at(2024, 10, 27, 3, 59, 59), -2 * HOUR },
		{ "J300", at(2024, 10, 27, 4, 0, 0), -3 * HOUR },
	};
	const struct footer_offset n[] = {
		{ "n59", at(2024, 2, 29, 4, 59, 59), -3 * HOUR },
		{ "n59", at(2024, 2, 29, 5, 0, 0), -2 * HOUR },
		{ "n59", at(2023, 3, 1, 5, 0, 0), -2 * HOUR },
		{ "n299", at(2024, 10, 26, 4, 0, 0), -3 * HOUR },
		{ "n299", at(2023, 10, 27, 3, 59, 59), -2 * HOUR },
	};
	check_footer_offsets(dir, "XXX3YYY,J60/2,J300/2", jn,
			     CHECK_COUNT_OF(jn));
	check_footer_offsets(dir, "XXX3YYY,59,299", n, CHECK_COUNT_OF(n));
	/* DST all year (RFC 8536 §3.3.1), also across the new year, where
	 * glibc (which uses the UTC year) disagrees for five hours. */
	if (load_footer(dir, "EST5EDT,0/0,J365/25", &z) == 0) {
		for (int i = 0; i < 2000; i++)
			check_offset(z, "all-year DST",
				     rng_range(at(1970, 1, 1, 0, 0, 0),
					       at(2200, 1, 1, 0, 0, 0)),
				     -4 * HOUR);
		for (int y = 2020; y < 2030; y++)
			for (int64_t t = at(y, 12, 31, 20, 0, 0);
			     t < at(y + 1, 1, 1, 8, 0, 0); t += 600)
				check_offset(z, "all-year DST", t, -4 * HOUR);
		tz_free(z);
	}
	/* Times past the day's end wrap into the next year. */
	if (load_footer(dir, "AAA0BBB,M1.1.0/-167,M12.5.6/167", &z) == 0) {
		/* 2025: 1st Sunday of January (5th) -167 h = 2024-12-29
		 * 01:00Z; last Saturday of December (27th) + 167 h =
		 * 2026-01-02 23:00 local BBB = 22:00Z. */
		check_offset(z, "wrap", at(2024, 12, 29, 0, 59, 59), 0);
		check_offset(z, "wrap", at(2024, 12, 29, 1, 0, 0), HOUR);
		check_offset(z, "wrap", at(2026, 1, 2, 21, 59, 59), HOUR);
		check_offset(z, "wrap", at(2026, 1, 2, 22, 0, 0), 0);
		check_round_trip(z, "wrap", at(1970, 1, 1, 0, 0, 0),
				 at(2100, 1, 1, 0, 0, 0), 1000);
		tz_free(z);
	}
}

static void test_tzif(const char *dir)
{
	static const int64_t times[3] = { -100000, 0, 1000000 };
	static const uint8_t indices[3] = { 1, 2, 1 };
	static const int32_t utoffs[3] = { 1234, 3600, 7200 };
	static const uint8_t isdst[3] = { 1, 0, 1 };
	const struct tzif_spec good = {
		.times = times,
		.indices = indices,
		.time_count = 3,
		.utoffs = utoffs,
		.isdst = isdst,
		.type_count = 3,
		.footer = "",
		.version = '2',
	};
	struct tzif_spec s;
	static uint8_t buf[8192];
	size_t len;
	struct tz *z;
	int rc;

	/* Table only, no footer rule: last type after the table, the first
	 * non-DST type (1, +1 h) before it. */
	rc = load_spec(dir, &good, &z);
	CHECK_MSG(rc == 0, "synthetic: %d", rc);
	if (rc == 0) {
		check_offset(z, "synthetic", INT64_MIN, 3600);
		check_offset(z, "synthetic", -100001, 3600);
		check_offset(z, "synthetic", -100000, 3600);
		check_offset(z, "synthetic", -1, 3600);
		check_offset(z, "synthetic", 0, 7200);
		check_offset(z, "synthetic", 999999, 7200);
		check_offset(z, "synthetic", 1000000, 3600);
		check_offset(z, "synthetic", INT64_MAX, 3600);
		check_utc(z, "synthetic gap", 3600 + 1800, 1800);
		check_utc(z, "synthetic overlap", 1000000 + 3600 + 5,
			  1000000 - 3600 + 5);
		tz_free(z);
	}
	s = good;
	s.version = '4';
	s.footer = "<+01>-1<+02>-2,M3.5.0,M10.5.0/3";
	rc = load_spec(dir, &s, &z);
	CHECK_MSG(rc == 0, "version 4: %d", rc);
	tz_free(z);

	s = good;
	s.version = '\0';
	CHECK_MSG(load_spec(dir, &s, &z) == -EINVAL, "version 1 refused");
	s = good;
	s.footer = "CET-1CEST";
	CHECK_MSG(load_spec(dir, &s, &z) == -EINVAL, "DST without rule");
	s = good;
	s.leap_count = 3;
	rc = load_spec(dir, &s, &z);
	CHECK_MSG(rc == -ENOTSUP, "leap seconds: %d", rc);
	tz_free(z);
	{
		static const int64_t t2[3] = { 0, 0, 5 }, t3[3] = { 5, 0, 9 };
		static const uint8_t i2[3] = { 0, 3, 1 };
		static const int32_t o2[3] = { 0, -90000, 0 };
		static const int32_t o3[3] = { 0, 93600, 0 };
		static const uint8_t d2[3] = { 0, 2, 0 };
		/* The good table with one of its arrays replaced (NULL: the
		 * good one's): each is refused. */
		static const struct {
			const char *what;
			const int64_t *times;
			const uint8_t *indices;
			const int32_t *utoffs;
			const uint8_t *isdst;
		} bad[] = {
			{ "equal times", t2, NULL, NULL, NULL },
			{ "descending times", t3, NULL, NULL, NULL },
			{ "index range", NULL, i2, NULL, NULL },
			{ "utoff < -24:59:59", NULL, NULL, o2, NULL },
			{ "utoff > 25:59:59", NULL, NULL, o3, NULL },
			{ "isdst 2", NULL, NULL, NULL, d2 },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			s = good;
			s.times = bad[i].times ? bad[i].times : s.times;
			s.indices = bad[i].indices ? bad[i].indices : s.indices;
			s.utoffs = bad[i].utoffs ? bad[i].utoffs : s.utoffs;
			s.isdst = bad[i].isdst ? bad[i].isdst : s.isdst;
			CHECK_MSG(load_spec(dir, &s, &z) == -EINVAL, "%s",
				  bad[i].what);
		}
	}

	/* Patched bytes of the good file. */
	static const struct {
		size_t pos;
		uint8_t value;
		const char *what;
	} patches[] = {
		{ 0, 'X', "magic" },
		{ V2_HEADER_POS, 'X', "v2 magic" },
		{ V2_HEADER_POS + 32, 0xff, "timecnt huge" },
		{ V2_HEADER_POS + 35, 4, "timecnt + 1" },
		{ V2_HEADER_POS + 36, 0x80, "typecnt huge" },
		{ V2_HEADER_POS + 39, 0, "typecnt 0" },
		{ V2_HEADER_POS + 43, 0, "charcnt 0" },
		{ V2_HEADER_POS + 23, 3, "isutcnt 3 without data" },
		{ V2_HEADER_POS + 27, 1, "isstdcnt 1" },
		{ 32, 0x7f, "v1 timecnt huge" },
		{ 43, 2, "v1 charcnt + 1" },
	};
	len = build_tzif(buf, &good);
	for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
		uint8_t saved = buf[patches[i].pos];

		buf[patches[i].pos] = patches[i].value;
		rc = load_bytes(dir, buf, len, &z);
		CHECK_MSG(rc == -EINVAL, "%s: %d", patches[i].what, rc);
		tz_free(z);
		buf[patches[i].pos] = saved;
	}
	/* Designations must end in NUL; no trailing bytes; newlines. */
	{
		size_t chars = V2_HEADER_POS + 44 + 3 * 9 + 3 * 6;

		CHECK_MSG(memcmp(buf + chars, "ABC", 4) == 0, "layout");
		buf[chars + 3] = 'D';
		CHECK_MSG(load_bytes(dir, buf, len, &z) == -EINVAL, "no NUL");
		buf[chars + 3] = '\0';
		buf[len] = 'x';
		CHECK_MSG(load_bytes(dir, buf, len + 1, &z) == -EINVAL,
			  "trailing");
		buf[len] = '\n';
		CHECK_MSG(load_bytes(dir, buf, len + 1, &z) == -EINVAL,
			  "\\n\\n\\n");
		buf[len - 2] = 'x';
		CHECK_MSG(load_bytes(dir, buf, len, &z) == -EINVAL,
			  "footer \\n");
	}
	CHECK_MSG(load_bytes(dir, buf, 0, &z) == -EINVAL, "empty file");
}

/* Truncated and bit-flipped copies of a real zone file. */
static void test_malformed(const char *dir, const struct tz *ref)
{
	static uint8_t orig[FILE_SIZE_MAX], buf[FILE_SIZE_MAX];
	size_t len = 0;
	struct tz *z;
	unsigned long loaded = 0;
	int rc;

	rc = read_file(ZONEINFO "/Europe/Berlin", orig, sizeof(orig), &len);
	CHECK_MSG(rc == 0 && len > 100, "read Berlin: %d", rc);
	if (rc || len <= 100)
		return;
	for (size_t n = 0; n < len; n++) {
		rc = load_bytes(dir, orig, n, &z);
		CHECK_MSG(rc == -EINVAL, "truncated to %zu bytes: %d", n, rc);
		tz_free(z);
	}
	rc = load_bytes(dir, orig, len, &z);
	CHECK_MSG(rc == 0, "full copy: %d", rc);
	if (rc == 0) {
		for (int i = 0; i < 1000; i++) {
			int64_t t = rng_range(at(1800, 1, 1, 0, 0, 0),
					      at(2200, 1, 1, 0, 0, 0));

			check_offset(z, "copy", t, tz_offset_at(ref, t));
		}
		tz_free(z);
	}
	for (int round = 0; round < FLIP_ROUND_COUNT; round++) {
		int flip_count = 1 + (int)(rng_next() % 4);
		/* Half the rounds aim at the headers and the footer. */
		bool edges = rng_next() % 2;

		memcpy(buf, orig, len);
		for (int i = 0; i < flip_count; i++) {
			size_t pos = (size_t)rng_next() % len;

			if (edges) {
				size_t k = (size_t)rng_next() % 64;
				pos = k < 44 ? k : len - 1 - (k - 44);
			}
			buf[pos] ^= (uint8_t)(1 + rng_next() % 255);
		}
		rc = load_bytes(dir, buf, len, &z);
		CHECK_MSG(rc == 0 || rc == -EINVAL, "flip round %d: %d", round,
			  rc);
		if (rc != 0)
			continue;
		loaded++;
		for (int i = 0; i < 50; i++) {
			int64_t t = (int64_t)rng_next();
			int64_t local = rng_range(at(1800, 1, 1, 0, 0, 0),
						  at(2400, 1, 1, 0, 0, 0));
			int32_t off = tz_offset_at(z, t);

			CHECK_MSG(off > -25 * HOUR && off < 26 * HOUR,
				  "offset %d", off);
			(void)tz_local_to_utc(z, local);
			(void)tz_local_to_utc(z, t);
		}
		tz_free(z);
	}
	/* Random bytes after a valid-looking header. */
	for (int round = 0; round < 500; round++) {
		size_t n = 44 + (size_t)rng_next() % 512;

		memcpy(buf, orig, 44);
		for (size_t i = 44; i < n; i++)
			buf[i] = (uint8_t)rng_next();
		rc = load_bytes(dir, buf, n, &z);
		CHECK_MSG(rc == -EINVAL, "random body %d: %d", round, rc);
		tz_free(z);
	}
	printf("tz: %zu truncations, %d flip rounds (%lu still valid)\n", len,
	       FLIP_ROUND_COUNT, loaded);
}

/* A link in TZDIR leading out of it (as zoneinfo's "localtime" does, to
 * /etc/localtime) is no zone, even to a real TZif file; one inside is. */
static void test_link_outside(const char *dir)
{
	char path[512];
	struct tz *z = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/Outside", dir);
	unlink(path);
	CHECK_MSG(symlink(ZONEINFO "/Europe/Berlin", path) == 0, "symlink: %s",
		  strerror(errno));
	rc = tz_load("Outside", &z);
	CHECK_MSG(rc == -ENOENT, "link out of TZDIR: %d, want -ENOENT", rc);
	CHECK_MSG(z == NULL, "*out is NULL on failure");
	unlink(path);
}

int main(void)
{
	uint64_t seed = tz_test_start("tz_tzif");
	char dir[] = "/tmp/test_tz.XXXXXX";
	char path[64];
	struct tz *berlin;

	if (!seed)
		return SKIP;
	if (!mkdtemp(dir)) {
		printf("FAIL mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	berlin = load("Europe/Berlin"); /* before TZDIR points to dir */
	setenv("TZDIR", dir, 1);
	test_footers(dir);
	test_tzif(dir);
	if (berlin)
		test_malformed(dir, berlin);
	test_link_outside(dir);
	unsetenv("TZDIR");
	tz_free(berlin);
	snprintf(path, sizeof(path), "%s/Test", dir);
	unlink(path);
	rmdir(dir);

	return check_end("tz_tzif", seed);
}
