/*
 * seed_import.c: the seed's backup tables into bookd with their history
 * (seed_import.h; docs/operations.md "Migrating from the seed").
 *
 * Three passes, nothing written before the last:
 *   read     each file's CSV (seed_csv.c), its columns bound by name
 *            (required ones missing: file:1), each row's fields checked;
 *   check    references (an instance's series, a registration's instance),
 *            duplicates, and per class instance its bookings in the order
 *            they will take (the rest by created_at, then the waitlist by
 *            position): more confirmed than capacity, a customer active
 *            twice, active bookings on a cancelled class are conflicts;
 *            each problem is reported with file:line and any error refuses
 *            the whole import; old ids already in the core (LEGACY) are
 *            skipped;
 *   write    catalogue entries (orgs, locations, instructors, customers,
 *            series), then one unit per class instance: its EVENT_CREATE,
 *            its bookings as BOOKING_IMPORT, EVENT_PATCH if cancelled and
 *            the LEGACY record of each row, a unit never split across
 *            entries (core/import.h), units packed into entries of up to
 *            IMP_ENTRY_BUDGET bytes.
 * An import stopped part way (the log refused, bookd stopped) is resumed
 * by running it again: what its LEGACY records say was written is
 * skipped.
 */
#include "seed_import.h"
#include "seed_csv.h"
#include "node.h"

#include "bookd_assert.h"
#include "import.h" /* core/import.h: the core's side */
#include "table.h"
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMP_ENTRY_BUDGET 60000 /* bytes of records per entry (of 64 KiB) */
#define DAY_MS INT64_C(86400000)

const char *const imp_file_names[IMP_TABLE_COUNT][4] = {
	[IMP_ORGS] = { "organizations.csv", "organizations_backup.csv" },
	[IMP_LOCATIONS] = { "locations.csv", "locations_backup.csv" },
	[IMP_INSTRUCTORS] = { "instructors.csv", "instructors_backup.csv" },
	[IMP_CUSTOMERS] = { "customers.csv", "customers_backup.csv" },
	[IMP_SERIES] = { "class_series.csv", "class_series_backup.csv" },
	[IMP_INSTANCES] = { "class_instances_backup.csv",
			    "class_instances.csv" },
	[IMP_REGISTRATIONS] = { "registrations_backup.csv",
				"class_registrations.csv",
				"class_registrations_backup.csv" },
	[IMP_WAITLISTS] = { "waitlists_backup.csv", "waitlists.csv" },
};

const char *imp_table_name(enum imp_table t)
{
	static const char *const names[IMP_TABLE_COUNT] = {
		"organizations",       "locations",    "instructors",
		"customers",	       "class_series", "class_instances",
		"class_registrations", "waitlists",
	};
	return t < IMP_TABLE_COUNT ? names[t] : "unknown";
}

/* ---- the files ---- */

static int read_file(const char *path, char **data, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t got = 0;
	char *p;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		if (n <= 0) {
			int rc = n < 0 ? -errno : -EIO;
			free(p);
			close(fd);
			return rc;
		}
		got += (size_t)n;
	}
	close(fd);
	*data = p;
	*size = got;
	return 0;
}

void import_src_free(struct import_src *src)
{
	for (int t = 0; t < IMP_TABLE_COUNT; t++)
		free(src->file[t].data);
	memset(src, 0, sizeof(*src));
}

static int src_take(struct import_src *src, enum imp_table t, const char *path,
		    const char *base, char *msg, size_t msg_size)
{
	int rc;

	if (src->file[t].data) {
		snprintf(msg, msg_size, "%s: a second file for %s", base,
			 imp_table_name(t));
		return -EINVAL;
	}
	rc = read_file(path, &src->file[t].data, &src->file[t].size);
	if (rc) {
		snprintf(msg, msg_size, "%s: %s", base, strerror(-rc));
		return rc;
	}
	snprintf(src->file[t].name, sizeof(src->file[t].name), "%s", base);
	return 0;
}

int import_src_dir(struct import_src *src, const char *dir, char *msg,
		   size_t msg_size)
{
	memset(src, 0, sizeof(*src));
	for (int t = 0; t < IMP_TABLE_COUNT; t++) {
		for (int k = 0; k < 4 && imp_file_names[t][k]; k++) {
			char path[PATH_MAX];
			int rc;
			if (snprintf(path, sizeof(path), "%s/%s", dir,
				     imp_file_names[t][k]) >= (int)sizeof(path))
				continue;
			if (access(path, F_OK) != 0)
				continue;
			rc = src_take(src, t, path, imp_file_names[t][k], msg,
				      msg_size);
			if (rc) {
				import_src_free(src);
				return rc;
			}
		}
	}
	if (!src->file[IMP_INSTANCES].data) {
		snprintf(msg, msg_size,
			 "%s: no class_instances_backup.csv (or "
			 "class_instances.csv)",
			 dir);
		return -ENOENT;
	}
	return 0;
}

/* A file given by path: its table by its base name (one of
 * imp_file_names, else a name holding the table's word: "waitlist" in
 * "2025_waitlists.csv"), else by its header (header_table). */
static const struct {
	const char *word;
	enum imp_table t;
} name_words[] = {
	/* the longer words first: "class_series" before "series" */
	{ "class_instance", IMP_INSTANCES },
	{ "class_series", IMP_SERIES },
	{ "registration", IMP_REGISTRATIONS },
	{ "waitlist", IMP_WAITLISTS },
	{ "instance", IMP_INSTANCES },
	{ "series", IMP_SERIES },
	{ "customer", IMP_CUSTOMERS },
	{ "organization", IMP_ORGS },
	{ "location", IMP_LOCATIONS },
	{ "instructor", IMP_INSTRUCTORS },
};

static int name_table(const char *base)
{
	for (int t = 0; t < IMP_TABLE_COUNT; t++)
		for (int k = 0; k < 4 && imp_file_names[t][k]; k++)
			if (strcmp(base, imp_file_names[t][k]) == 0)
				return t;
	for (size_t i = 0; i < sizeof(name_words) / sizeof(name_words[0]); i++)
		if (strcasestr(base, name_words[i].word))
			return (int)name_words[i].t;
	return -1;
}

/* What a header must have (each "a|b": one of them) and must not, per
 * table told by its header: the five the seed's tables are named after
 * (organizations, locations and instructors only by name: their headers
 * are alike). */
static const struct {
	enum imp_table t;
	const char *has[4], *not ;
} header_sig[] = {
	{ IMP_INSTANCES,
	  { "start_time|start_at|starts_at", "capacity|max_capacity", "id" },
	  "weekdays|days_of_week|customer_id|user_id" },
	{ IMP_SERIES, { "weekdays|days_of_week", "title|name", "id" }, NULL },
	{ IMP_REGISTRATIONS,
	  { "class_instance_id|instance_id|event_id", "customer_id|user_id",
	    "status", "id" },
	  "joined_at|position" },
	{ IMP_WAITLISTS,
	  { "class_instance_id|instance_id|event_id", "customer_id|user_id",
	    "joined_at|position", "id" },
	  "registered_at|waitlist_position" },
	{ IMP_CUSTOMERS,
	  { "email", "id|customer_id|user_id" },
	  "class_instance_id|instance_id|event_id|start_time|org_id|"
	  "organization_id" },
};

static bool header_any(const struct csv *c, const char *names)
{
	char buf[128];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", names);
	for (char *n = strtok_r(buf, "|", &save); n;
	     n = strtok_r(NULL, "|", &save))
		if (csv_col(c, n) >= 0)
			return true;
	return false;
}

/* The table data's header (its first line) is, or -1 with msg: none or
 * more than one fits. */
static int header_table(const char *data, size_t size, const char *base,
			char *msg, size_t msg_size)
{
	const char *nl = memchr(data, '\n', size);
	struct csv c;
	int found = -1, fits = 0;
	char which[160] = "";

	if (csv_parse(&c, data, nl ? (size_t)(nl - data) : size) != 0) {
		snprintf(msg, msg_size, "%s:1: %s", base, c.err);
		csv_free(&c);
		return -1;
	}
	for (size_t i = 0; i < sizeof(header_sig) / sizeof(header_sig[0]);
	     i++) {
		bool ok = !header_sig[i].not ||
			  !header_any(&c, header_sig[i].not );
		for (int k = 0; k < 4 && header_sig[i].has[k] && ok; k++)
			ok = header_any(&c, header_sig[i].has[k]);
		if (!ok)
			continue;
		found = (int)header_sig[i].t;
		snprintf(which + strlen(which), sizeof(which) - strlen(which),
			 "%s%s", fits++ ? " or " : "", imp_table_name(found));
	}
	csv_free(&c);
	if (fits == 1)
		return found;
	if (fits)
		snprintf(msg, msg_size,
			 "%s: its header fits %s: name the file after its "
			 "table (docs/operations.md)",
			 base, which);
	else
		snprintf(msg, msg_size,
			 "%s: neither its name nor its header is one of the "
			 "seed's tables (docs/operations.md)",
			 base);
	return -1;
}

int import_src_files(struct import_src *src, const char *const *paths,
		     unsigned count, char *msg, size_t msg_size)
{
	memset(src, 0, sizeof(*src));
	for (unsigned i = 0; i < count; i++) {
		const char *base = strrchr(paths[i], '/');
		char *data;
		size_t size;
		int t, rc;

		base = base ? base + 1 : paths[i];
		rc = read_file(paths[i], &data, &size);
		if (rc) {
			snprintf(msg, msg_size, "%s: %s", base, strerror(-rc));
			import_src_free(src);
			return rc;
		}
		t = name_table(base);
		if (t < 0)
			t = header_table(data, size, base, msg, msg_size);
		if (t >= 0 && src->file[t].data)
			snprintf(msg, msg_size, "%s: a second file for %s",
				 base, imp_table_name((enum imp_table)t));
		if (t < 0 || src->file[t].data) {
			free(data);
			import_src_free(src);
			return -EINVAL;
		}
		src->file[t].data = data;
		src->file[t].size = size;
		snprintf(src->file[t].name, sizeof(src->file[t].name), "%s",
			 base);
	}
	if (!src->file[IMP_INSTANCES].data) {
		snprintf(msg, msg_size,
			 "no class_instances file among the %u given", count);
		import_src_free(src);
		return -ENOENT;
	}
	return 0;
}

/* ---- strings to indexes ---- */

/* Open addressing: a key's hash -> index + 1 (0 free); the keys are the
 * objects' own (cells of the CSVs), compared through eq on a hit. Sized
 * at init for every key it will hold. */
struct smap {
	uint64_t *hash;
	uint32_t *val;
	uint32_t mask, count;
};

typedef bool (*smap_eq)(const void *arr, uint32_t i, const void *key);

static int smap_init(struct smap *m, uint32_t hint)
{
	uint32_t n = 64;

	while (n < hint * 2u + 2)
		n *= 2;
	m->hash = calloc(n, sizeof(*m->hash));
	m->val = calloc(n, sizeof(*m->val));
	m->mask = n - 1;
	m->count = 0;
	return m->hash && m->val ? 0 : -ENOMEM;
}

static void smap_free(struct smap *m)
{
	free(m->hash);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

static uint64_t hs(const char *s) { return hash_bytes(s, strlen(s)); }

/* The slot of key: its own, or the free one where it would go. */
static uint32_t smap_slot(const struct smap *m, uint64_t h, smap_eq eq,
			  const void *arr, const void *key)
{
	uint32_t i = (uint32_t)h & m->mask;

	while (m->val[i] && !(m->hash[i] == h && eq(arr, m->val[i] - 1, key)))
		i = (i + 1) & m->mask;
	return i;
}

static uint32_t smap_get(const struct smap *m, uint64_t h, smap_eq eq,
			 const void *arr, const void *key)
{
	uint32_t i = smap_slot(m, h, eq, arr, key);
	return m->val[i] ? m->val[i] - 1 : UINT32_MAX;
}

/* Sets key -> index (replacing); false when full (never: sized). */
static bool smap_set(struct smap *m, uint64_t h, smap_eq eq, const void *arr,
		     const void *key, uint32_t index)
{
	uint32_t i = smap_slot(m, h, eq, arr, key);

	if (!m->val[i]) {
		if ((m->count + 1) * 2 > m->mask)
			return false;
		m->count++;
	}
	m->hash[i] = h;
	m->val[i] = index + 1;
	return true;
}

/* ---- what is read ---- */

struct obj { /* an org, location, instructor: old id -> new */
	const char *legacy, *name, *tz;
	uint32_t org;	/* location, instructor: index of its org */
	uint64_t bookd; /* id (already there, or planned) */
	bool existing;	/* imported before */
	bool owned;	/* legacy is ours (a placeholder's): freed */
	uint8_t table;	/* where first seen */
	uint32_t line;
};

struct cust {
	const char *id, *email;
	char name_buf[CORE_NAME_SIZE_MAX]; /* "" when none */
	bool existing, in_file;
};

struct ser {
	const char *legacy;
	uint32_t line, org, loc, ins;
	struct core_series_spec spec;
	struct core_date through; /* year 0: no instance */
	bool has_weekdays, has_start, has_duration, has_first, has_capacity,
		has_wcap;
	uint64_t bookd;
	bool existing;
};

struct inst {
	const char *legacy, *title;
	uint32_t line, org, loc, ins;
	uint32_t series; /* index + 1 of class_series; 0: one-off */
	core_time start, created, updated;
	uint32_t duration, capacity, wcap, price;
	char currency[4];
	bool cancelled, has_wcap, existing;
	uint32_t first, count; /* its bookings in order[] */
	uint32_t confirmed, waitlisted;
	uint32_t expired; /* of them waitlist_expired (a past class) */
	uint64_t bookd;
	size_t unit_size;
};

struct bk {
	const char *legacy;    /* the registration's (NULL: a waitlist row) */
	const char *wl_legacy; /* the waitlist row's, if any */
	const char *customer;
	const char *detail;
	uint32_t inst;
	uint8_t status;
	uint8_t table;
	uint32_t line, position;
	core_time created, updated, joined, promoted;
	bool existing;
	bool expired; /* waitlisted on a past class: waitlist_expired */
};

struct plan {
	const struct import_opts *opts;
	struct import_report *rep;
	core *core;
	struct csv csv[IMP_TABLE_COUNT];
	struct obj *obj[3]; /* orgs, locations, instructors */
	uint32_t obj_n[3], obj_cap[3];
	struct smap obj_map[3];
	struct cust *cust;
	uint32_t cust_n, cust_cap;
	struct smap cust_map;
	struct ser *ser;
	uint32_t ser_n;
	struct smap ser_map;
	struct inst *inst;
	uint32_t inst_n;
	struct smap inst_map;
	struct bk *bk;
	uint32_t bk_n, bk_cap;
	struct smap reg_map, wl_map, pair_map;
	uint32_t *order; /* bookings by instance, in writing order */
	struct tz_cache {
		char name[CORE_TZ_SIZE_MAX];
		struct tz *z;
	} tz[16];
	unsigned tz_n;
};

static void problem(struct plan *pl, enum imp_table t, uint32_t line,
		    bool accepted, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void problem(struct plan *pl, enum imp_table t, uint32_t line,
		    bool accepted, const char *fmt, ...)
{
	struct import_report *r = pl->rep;
	va_list ap;

	if (accepted)
		r->accepted++;
	else
		r->errors++;
	if (r->kept == IMP_PROBLEMS_KEPT)
		return;
	struct imp_problem *p = &r->problem[r->kept++];
	p->table = (uint8_t)t;
	p->line = line;
	p->accepted = accepted;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
}

static bool obj_eq(const void *arr, uint32_t i, const void *key)
{
	return strcmp(((const struct obj *)arr)[i].legacy, key) == 0;
}
static bool cust_eq(const void *arr, uint32_t i, const void *key)
{
	return strcmp(((const struct cust *)arr)[i].id, key) == 0;
}
static bool ser_eq(const void *arr, uint32_t i, const void *key)
{
	return strcmp(((const struct ser *)arr)[i].legacy, key) == 0;
}
static bool inst_eq(const void *arr, uint32_t i, const void *key)
{
	return strcmp(((const struct inst *)arr)[i].legacy, key) == 0;
}
static bool reg_eq(const void *arr, uint32_t i, const void *key)
{
	const char *l = ((const struct bk *)arr)[i].legacy;
	return l && strcmp(l, key) == 0;
}
static bool wl_eq(const void *arr, uint32_t i, const void *key)
{
	const char *l = ((const struct bk *)arr)[i].wl_legacy;
	return l && strcmp(l, key) == 0;
}
/* (instance index, customer id) of a booking */
struct pair {
	uint32_t inst;
	const char *customer;
};
static bool pair_eq(const void *arr, uint32_t i, const void *key)
{
	const struct bk *b = &((const struct bk *)arr)[i];
	const struct pair *k = key;
	return b->inst == k->inst && strcmp(b->customer, k->customer) == 0;
}
static uint64_t pair_hash(uint32_t inst, const char *customer)
{
	return hs(customer) ^ hash_u64(inst);
}

/* The maps' look-ups by old id (UINT32_MAX: absent). */
#define FIND(map, eq, arr, key) smap_get(&(map), hs(key), eq, arr, key)
#define ADD(map, eq, arr, key, i) smap_set(&(map), hs(key), eq, arr, key, i)

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	uint32_t n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, (size_t)n * size);
	if (!q)
		return -ENOMEM;
	memset((char *)q + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
	*p = q;
	*cap = n;
	return 0;
}

/* ---- fields ---- */

static const char *trim(const char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= CORE_LEGACY_ID_SIZE_MAX;
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	s = trim(s);
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *trim(end) != '\0' || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* "12.50" or "12" -> cents. */
static bool parse_price(const char *s, uint32_t *cents)
{
	uint64_t v = 0;
	int frac = -1;

	s = trim(s);
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s == '.' && frac < 0) {
			frac = 0;
			continue;
		}
		if (!isdigit((unsigned char)*s) || frac == 2)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (frac >= 0)
			frac++;
		if (v > CORE_PRICE_CENTS_MAX)
			return false;
	}
	for (; frac < 2; frac = frac < 0 ? 1 : frac + 1)
		v *= 10;
	if (v > CORE_PRICE_CENTS_MAX)
		return false;
	*cents = (uint32_t)v;
	return true;
}

static int digits(const char **s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*s)[i]))
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	return v;
}

static bool parse_date(const char **s, struct core_date *d)
{
	int y = digits(s, 4), m, dd;

	if (y < 0 || **s != '-')
		return false;
	(*s)++;
	m = digits(s, 2);
	if (m < 0 || **s != '-')
		return false;
	(*s)++;
	dd = digits(s, 2);
	if (dd < 0 || !tz_date_valid(y, m, dd))
		return false;
	*d = (struct core_date){ (int16_t)y, (int8_t)m, (int8_t)dd };
	return true;
}

/* HH:MM[:SS[.frac]] -> seconds of the day and the fraction's ms; *s
 * moves past it. */
static bool parse_clock(const char **s, int *secs, int *ms)
{
	int h = digits(s, 2), m, sec = 0;

	*ms = 0;
	if (h < 0 || h > 23 || **s != ':')
		return false;
	(*s)++;
	m = digits(s, 2);
	if (m < 0 || m > 59)
		return false;
	if (**s == ':') {
		(*s)++;
		sec = digits(s, 2);
		if (sec < 0 || sec > 60)
			return false;
		if (**s == '.')
			for (int scale = 100; isdigit((unsigned char)*++*s);
			     scale /= 10)
				*ms += (**s - '0') * scale;
	}
	*secs = h * 3600 + m * 60 + sec;
	return true;
}

/* A timestamp as PostgreSQL's CSV writes it ("2025-09-01 18:00:00+00",
 * "...:00.123456+02:00") or RFC 3339 ("2025-09-01T18:00:00Z"); no zone
 * reads as UTC; a date alone as its midnight UTC. -> ms. */
static bool parse_time(const char *s, core_time *ms)
{
	struct core_date d;
	int secs = 0, off = 0, frac = 0;

	s = trim(s);
	if (!parse_date(&s, &d))
		return false;
	if (*s == ' ' || *s == 'T') {
		s++;
		if (!parse_clock(&s, &secs, &frac))
			return false;
		if (*s == 'Z' || *s == 'z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			int sign = *s == '-' ? -1 : 1, hh, mm = 0;
			s++;
			hh = digits(&s, 2);
			if (hh < 0 || hh > 15)
				return false;
			if (*s == ':')
				s++;
			if (isdigit((unsigned char)*s)) {
				mm = digits(&s, 2);
				if (mm < 0 || mm > 59)
					return false;
			}
			off = sign * (hh * 3600 + mm * 60);
		}
	}
	if (*trim(s) != '\0')
		return false;
	*ms = (tz_days_from_civil(d.year, d.month, d.day) * 86400 + secs -
	       off) * INT64_C(1000) +
	      frac;
	return true;
}

/* "MO,WE", "mon,wed", "1,3" (ISO: 1 Monday .. 7 Sunday), "{1,3}". */
static bool parse_weekdays(const char *s, uint8_t *mask)
{
	static const char *const names[7] = { "mo", "tu", "we", "th",
					      "fr", "sa", "su" };
	uint8_t m = 0;

	while (*s) {
		char w[16];
		size_t n = 0;
		while (*s == ' ' || *s == ',' || *s == '{' || *s == '}' ||
		       *s == '[' || *s == ']' || *s == '"')
			s++;
		while (*s && *s != ',' && *s != '}' && *s != ']' && *s != ' ' &&
		       *s != '"' && n + 1 < sizeof(w))
			w[n++] = (char)tolower((unsigned char)*s++);
		w[n] = '\0';
		if (n == 0)
			continue;
		if (n == 1 && w[0] >= '1' && w[0] <= '7') {
			m |= (uint8_t)(1u << (w[0] - '1'));
			continue;
		}
		bool found = false;
		for (int k = 0; k < 7 && !found; k++)
			if (strncmp(w, names[k], 2) == 0) {
				m |= (uint8_t)(1u << k);
				found = true;
			}
		if (!found)
			return false;
	}
	*mask = m;
	return m != 0;
}

static bool currency_ok(char cur[4], const char *s)
{
	s = trim(s);
	for (int i = 0; i < 3; i++) {
		if (!isalpha((unsigned char)s[i]))
			return false;
		cur[i] = (char)tolower((unsigned char)s[i]);
	}
	cur[3] = '\0';
	return *trim(s + 3) == '\0';
}

static bool customer_id_ok(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!isalnum((unsigned char)id[n]) && !strchr("._:@-", id[n]))
			return false;
	return n > 0 && n <= CORE_CUSTOMER_ID_SIZE_MAX;
}

static bool name_fits(const char *s) { return strlen(s) < CORE_NAME_SIZE_MAX; }

/* A zone loaded once per import. */
static const struct tz *zone(struct plan *pl, const char *name)
{
	struct tz *z;

	for (unsigned i = 0; i < pl->tz_n; i++)
		if (strcmp(pl->tz[i].name, name) == 0)
			return pl->tz[i].z;
	if (strlen(name) >= CORE_TZ_SIZE_MAX || tz_load(name, &z) != 0)
		return NULL;
	if (pl->tz_n == 16) {
		tz_free(pl->tz[0].z);
		memmove(pl->tz, pl->tz + 1, 15 * sizeof(pl->tz[0]));
		pl->tz_n--;
	}
	snprintf(pl->tz[pl->tz_n].name, CORE_TZ_SIZE_MAX, "%s", name);
	pl->tz[pl->tz_n++].z = z;
	return z;
}

/* A UTC time's local day (days since 1970-01-01) and minute. */
static void local_of(const struct tz *z, core_time ms, int64_t *day,
		     int *minute)
{
	int64_t s = ms / 1000 - (ms % 1000 < 0);
	int64_t l = s + tz_offset_at(z, s);
	int64_t d = l / 86400 - (l % 86400 < 0);

	*day = d;
	*minute = (int)((l - d * 86400) / 60);
}

static struct core_date date_of_day(int64_t day)
{
	int y, m, d;
	tz_civil_from_days(day, &y, &m, &d);
	return (struct core_date){ (int16_t)y, (int8_t)m, (int8_t)d };
}

/* ---- reading the tables ---- */

/* A table's columns: name, or a list of names ("a|b"); required. */
struct col_spec {
	const char *names;
	bool required;
};

/* Binds cols[] to the header: idx[k] (-1 absent); a required one absent
 * is a problem at file:1. */
static bool bind(struct plan *pl, enum imp_table t, const struct col_spec *cols,
		 unsigned n, int *idx)
{
	bool ok = true;

	for (unsigned k = 0; k < n; k++) {
		char names[96];
		char *save = NULL, *name;

		idx[k] = -1;
		snprintf(names, sizeof(names), "%s", cols[k].names);
		for (name = strtok_r(names, "|", &save); name && idx[k] < 0;
		     name = strtok_r(NULL, "|", &save))
			idx[k] = csv_col(&pl->csv[t], name);
		if (idx[k] < 0 && cols[k].required) {
			problem(pl, t, 1, false, "missing column %s",
				cols[k].names);
			ok = false;
		}
	}
	return ok;
}

#define CELL(t, row, k) csv_get(&pl->csv[t], (row), idx[k])
#define HAS(k) (idx[k] >= 0 && CELL(T, r, k)[0] != '\0')

/* The checks the tables share, by column: each a number in a range, or
 * a price (price_cents, else price as 12.50, with its currency). One
 * table of them per reader (cell_checks): every problem at the row's
 * line, false when there was one. */
enum cell_kind {
	CELL_U32,   /* 0..max (min 1 when one) into *u32 */
	CELL_PRICE, /* columns k (price_cents), k + 1 (price), k + 2
		     * (currency) into *u32 and currency */
};

struct cell_check {
	int k; /* the column's index in idx */
	enum cell_kind kind;
	uint32_t min, max;
	uint32_t *u32;
	bool *has; /* set when the cell is there (NULL: not kept) */
	char *currency;
	const char *what; /* the problem's text */
};

static bool cell_checks(struct plan *pl, enum imp_table T, uint32_t r,
			uint32_t line, const int *idx,
			const struct cell_check *c, unsigned n)
{
	bool ok = true;

	for (unsigned i = 0; i < n; i++, c++) {
		if (c->kind == CELL_U32) {
			bool has = HAS(c->k);
			if (c->has)
				*c->has = has;
			if (has &&
			    (!parse_u32(CELL(T, r, c->k), c->max, c->u32) ||
			     *c->u32 < c->min)) {
				problem(pl, T, line, false, "%s", c->what);
				ok = false;
			}
			continue;
		}
		if (HAS(c->k) && !parse_u32(CELL(T, r, c->k),
					    CORE_PRICE_CENTS_MAX, c->u32)) {
			problem(pl, T, line, false, "price_cents: a number");
			ok = false;
		} else if (!HAS(c->k) && HAS(c->k + 1) &&
			   !parse_price(CELL(T, r, c->k + 1), c->u32)) {
			problem(pl, T, line, false, "price: like 12.50");
			ok = false;
		}
		if (HAS(c->k + 2) &&
		    !currency_ok(c->currency, CELL(T, r, c->k + 2))) {
			problem(pl, T, line, false,
				"currency: three letters (ISO 4217)");
			ok = false;
		}
		if (*c->u32 && !c->currency[0]) {
			problem(pl, T, line, false, "a price needs a currency");
			ok = false;
		}
		if (!*c->u32)
			c->currency[0] = '\0';
	}
	return ok;
}

/* An org, location or instructor by old id, found or added (kind 0, 1,
 * 2); UINT32_MAX with a problem when it cannot be. */
static uint32_t obj_get(struct plan *pl, int kind, const char *legacy,
			enum imp_table t, uint32_t line)
{
	uint32_t i = FIND(pl->obj_map[kind], obj_eq, pl->obj[kind], legacy);

	if (i != UINT32_MAX)
		return i;
	if (!id_ok(legacy) || !name_fits(legacy)) {
		problem(pl, t, line, false, "%s id \"%.64s\": 1 to 64 bytes",
			kind == 0   ? "org"
			: kind == 1 ? "location"
				    : "instructor",
			legacy);
		return UINT32_MAX;
	}
	if (grow((void **)&pl->obj[kind], &pl->obj_cap[kind],
		 pl->obj_n[kind] + 1, sizeof(struct obj)) != 0) {
		problem(pl, t, line, false, "out of memory");
		return UINT32_MAX;
	}
	i = pl->obj_n[kind]++;
	memset(&pl->obj[kind][i], 0, sizeof(struct obj));
	pl->obj[kind][i].legacy = legacy;
	pl->obj[kind][i].name = legacy;
	pl->obj[kind][i].tz = "UTC";
	pl->obj[kind][i].org = UINT32_MAX;
	pl->obj[kind][i].table = (uint8_t)t;
	pl->obj[kind][i].line = line;
	if (!ADD(pl->obj_map[kind], obj_eq, pl->obj[kind], legacy, i)) {
		problem(pl, t, line, false, "too many ids");
		return UINT32_MAX;
	}
	return i;
}

/* A location or instructor of an org; a placeholder per org when the row
 * has none ("<org id>/none"). */
static uint32_t place_get(struct plan *pl, int kind, const char *legacy,
			  uint32_t org, enum imp_table t, uint32_t line)
{
	uint32_t i;

	if (legacy[0] == '\0') {
		char *key = malloc(CORE_LEGACY_ID_SIZE_MAX + 8);
		const char *o = pl->obj[0][org].legacy;
		if (!key)
			return UINT32_MAX;
		snprintf(key, CORE_LEGACY_ID_SIZE_MAX + 8, "%.59s/none", o);
		i = FIND(pl->obj_map[kind], obj_eq, pl->obj[kind], key);
		if (i != UINT32_MAX) {
			free(key);
			return i;
		}
		/* kept for the import's life: in the names' arena below */
		i = obj_get(pl, kind, key, t, line);
		if (i == UINT32_MAX) {
			free(key);
			return i;
		}
		pl->obj[kind][i].name =
			kind == 1 ? "(no location)" : "(no instructor)";
		pl->obj[kind][i].owned = true; /* freed with the plan */
		pl->obj[kind][i].org = org;
		return i;
	}
	i = obj_get(pl, kind, legacy, t, line);
	if (i == UINT32_MAX)
		return i;
	if (pl->obj[kind][i].org == UINT32_MAX)
		pl->obj[kind][i].org = org;
	else if (pl->obj[kind][i].org != org) {
		problem(pl, t, line, false,
			"%s %s belongs to org %s, the row's org is %s",
			kind == 1 ? "location" : "instructor", legacy,
			pl->obj[0][pl->obj[kind][i].org].legacy,
			pl->obj[0][org].legacy);
		return UINT32_MAX;
	}
	return i;
}

static uint32_t cust_get(struct plan *pl, const char *id, enum imp_table t,
			 uint32_t line)
{
	uint32_t i = FIND(pl->cust_map, cust_eq, pl->cust, id);

	if (i != UINT32_MAX)
		return i;
	if (!customer_id_ok(id)) {
		problem(pl, t, line, false,
			"customer id \"%.64s\": 1 to 64 of A-Za-z0-9._:@-", id);
		return UINT32_MAX;
	}
	if (grow((void **)&pl->cust, &pl->cust_cap, pl->cust_n + 1,
		 sizeof(*pl->cust)) != 0) {
		problem(pl, t, line, false, "out of memory");
		return UINT32_MAX;
	}
	i = pl->cust_n++;
	memset(&pl->cust[i], 0, sizeof(pl->cust[i]));
	pl->cust[i].id = id;
	pl->cust[i].email = "";
	if (!ADD(pl->cust_map, cust_eq, pl->cust, id, i)) {
		problem(pl, t, line, false, "too many customers");
		pl->cust_n--;
		return UINT32_MAX;
	}
	return i;
}

static void read_places(struct plan *pl)
{
	static const struct col_spec cols[] = {
		{ "id", true },
		{ "name|full_name|title", false },
		{ "timezone|time_zone", false },
		{ "org_id|organization_id", false },
	};
	for (int kind = 0; kind < 3; kind++) {
		enum imp_table T = (enum imp_table)kind; /* ORGS.. */
		int idx[4];
		if (!pl->csv[T].rows || !bind(pl, T, cols, 4, idx))
			continue;
		if (kind > 0 && idx[3] < 0) {
			problem(pl, T, 1, false,
				"missing column org_id|organization_id");
			continue;
		}
		for (uint32_t r = 1; r < pl->csv[T].rows; r++) {
			uint32_t line = pl->csv[T].line[r], i, org = 0;
			const char *id = CELL(T, r, 0);
			if (FIND(pl->obj_map[kind], obj_eq, pl->obj[kind],
				 id) != UINT32_MAX) {
				problem(pl, T, line, false, "id %s twice", id);
				continue;
			}
			if (kind > 0) {
				org = obj_get(pl, 0, CELL(T, r, 3), T, line);
				if (org == UINT32_MAX)
					continue;
				i = place_get(pl, kind, id, org, T, line);
			} else {
				i = obj_get(pl, 0, id, T, line);
			}
			if (i == UINT32_MAX)
				continue;
			if (HAS(1)) {
				if (!name_fits(CELL(T, r, 1)))
					problem(pl, T, line, false,
						"name longer than 127 bytes");
				pl->obj[kind][i].name = CELL(T, r, 1);
			}
			if (kind == 0 && HAS(2)) {
				if (!zone(pl, CELL(T, r, 2)))
					problem(pl, T, line, false,
						"unknown time zone %.64s",
						CELL(T, r, 2));
				else
					pl->obj[0][i].tz = CELL(T, r, 2);
			}
		}
	}
}

static void read_customers(struct plan *pl)
{
	static const struct col_spec cols[] = {
		{ "id|customer_id|user_id", true },
		{ "email", false },
		{ "name|full_name", false },
		{ "first_name", false },
		{ "last_name", false },
	};
	enum imp_table T = IMP_CUSTOMERS;
	int idx[5];

	if (!pl->csv[T].rows || !bind(pl, T, cols, 5, idx))
		return;
	for (uint32_t r = 1; r < pl->csv[T].rows; r++) {
		uint32_t line = pl->csv[T].line[r];
		const char *id = CELL(T, r, 0);
		uint32_t i = FIND(pl->cust_map, cust_eq, pl->cust, id);
		struct cust *c;

		if (i != UINT32_MAX) {
			problem(pl, T, line, false, "customer %s twice", id);
			continue;
		}
		if ((i = cust_get(pl, id, T, line)) == UINT32_MAX)
			continue;
		c = &pl->cust[i];
		c->in_file = true;
		c->email = CELL(T, r, 1);
		if (HAS(2))
			snprintf(c->name_buf, sizeof(c->name_buf), "%s",
				 CELL(T, r, 2));
		else if (HAS(3) || HAS(4))
			snprintf(c->name_buf, sizeof(c->name_buf), "%s%s%s",
				 CELL(T, r, 3), HAS(3) && HAS(4) ? " " : "",
				 CELL(T, r, 4));
		if (!name_fits(c->email))
			problem(pl, T, line, false,
				"email longer than 127 bytes");
	}
}

static void read_series(struct plan *pl)
{
	static const struct col_spec cols[] = {
		{ "id", true },
		{ "org_id|organization_id", true },
		{ "title|name", true },
		{ "location_id", false },
		{ "instructor_id", false },
		{ "capacity", false },
		{ "waitlist_capacity", false },
		{ "price_cents", false },
		{ "price", false },
		{ "currency", false },
		{ "timezone|time_zone", false },
		{ "weekdays|days_of_week|weekday", false },
		{ "start_time|local_start_time", false },
		{ "duration_minutes|duration_min|duration", false },
		{ "start_date|first_date", false },
		{ "end_date|last_date|until", false },
	};
	enum imp_table T = IMP_SERIES;
	int idx[16];

	if (!pl->csv[T].rows || !bind(pl, T, cols, 16, idx))
		return;
	pl->ser = calloc(pl->csv[T].rows, sizeof(*pl->ser));
	if (!pl->ser) {
		problem(pl, T, 0, false, "out of memory");
		return;
	}
	for (uint32_t r = 1; r < pl->csv[T].rows; r++) {
		uint32_t line = pl->csv[T].line[r];
		const char *id = CELL(T, r, 0);
		struct ser *s = &pl->ser[pl->ser_n];
		struct core_series_spec *sp = &s->spec;
		bool bad = false;

		if (!id_ok(id)) {
			problem(pl, T, line, false, "id: 1 to 64 bytes");
			continue;
		}
		if (FIND(pl->ser_map, ser_eq, pl->ser, id) != UINT32_MAX) {
			problem(pl, T, line, false, "series %s twice", id);
			continue;
		}
		s->legacy = id;
		s->line = line;
		s->org = obj_get(pl, 0, CELL(T, r, 1), T, line);
		if (s->org == UINT32_MAX)
			continue;
		s->loc = s->ins = UINT32_MAX;
		if (HAS(3))
			s->loc = place_get(pl, 1, CELL(T, r, 3), s->org, T,
					   line);
		if (HAS(4))
			s->ins = place_get(pl, 2, CELL(T, r, 4), s->org, T,
					   line);
		if ((HAS(3) && s->loc == UINT32_MAX) ||
		    (HAS(4) && s->ins == UINT32_MAX))
			continue;
		if (!name_fits(CELL(T, r, 2)) || !CELL(T, r, 2)[0]) {
			problem(pl, T, line, false, "title: 1 to 127 bytes");
			bad = true;
		}
		snprintf(sp->title, sizeof(sp->title), "%s", CELL(T, r, 2));
		{
			const struct cell_check checks[] = {
				{ 5, CELL_U32, 0, CORE_CAPACITY_MAX,
				  &sp->capacity, &s->has_capacity, NULL,
				  "capacity: 0 to 1000000" },
				{ 6, CELL_U32, 0, CORE_CAPACITY_MAX,
				  &sp->waitlist_capacity, &s->has_wcap, NULL,
				  "waitlist_capacity: 0 to 1000000" },
				{ 13, CELL_U32, 1, CORE_DURATION_MIN_MAX,
				  &sp->duration_min, &s->has_duration, NULL,
				  "duration_minutes: 1 to 1440" },
				{ 7, CELL_PRICE, 0, 0, &sp->price_cents, NULL,
				  sp->currency, NULL },
			};
			if (!cell_checks(pl, T, r, line, idx, checks,
					 sizeof(checks) / sizeof(checks[0])))
				bad = true;
		}
		snprintf(sp->timezone, sizeof(sp->timezone), "%s",
			 HAS(10) ? CELL(T, r, 10) : pl->obj[0][s->org].tz);
		if (!zone(pl, sp->timezone)) {
			problem(pl, T, line, false, "unknown time zone %.64s",
				sp->timezone);
			bad = true;
		}
		if ((s->has_weekdays = HAS(11)) &&
		    !parse_weekdays(CELL(T, r, 11), &sp->weekday_mask)) {
			problem(pl, T, line, false,
				"weekdays: like MO,WE or 1,3 (ISO)");
			bad = true;
		}
		if ((s->has_start = HAS(12))) {
			const char *c = trim(CELL(T, r, 12));
			int secs, frac;
			if (!parse_clock(&c, &secs, &frac) || *trim(c)) {
				problem(pl, T, line, false,
					"start_time: HH:MM (local)");
				bad = true;
			}
			sp->start_minute = (uint16_t)(secs / 60);
		}
		if ((s->has_first = HAS(14))) {
			const char *c = trim(CELL(T, r, 14));
			if (!parse_date(&c, &sp->first_date)) {
				problem(pl, T, line, false,
					"start_date: YYYY-MM-DD");
				bad = true;
			}
		}
		if (HAS(15)) {
			const char *c = trim(CELL(T, r, 15));
			if (!parse_date(&c, &sp->last_date)) {
				problem(pl, T, line, false,
					"end_date: YYYY-MM-DD");
				bad = true;
			}
		}
		if (bad)
			continue;
		ADD(pl->ser_map, ser_eq, pl->ser, id, pl->ser_n);
		pl->ser_n++;
	}
}

static void read_instances(struct plan *pl)
{
	static const struct col_spec cols[] = {
		{ "id", true },
		{ "org_id|organization_id", true },
		{ "start_time|start_at|starts_at", true },
		{ "end_time|end_at|ends_at", false },
		{ "duration_minutes|duration_min", false },
		{ "capacity|max_capacity", true },
		{ "waitlist_capacity", false },
		{ "series_id|class_series_id", false },
		{ "title|name", false },
		{ "location_id", false },
		{ "instructor_id", false },
		{ "status", false },
		{ "price_cents", false },
		{ "price", false },
		{ "currency", false },
		{ "created_at", false },
		{ "updated_at", false },
	};
	enum imp_table T = IMP_INSTANCES;
	int idx[17];

	if (!pl->csv[T].rows || !bind(pl, T, cols, 17, idx))
		return;
	pl->inst = calloc(pl->csv[T].rows, sizeof(*pl->inst));
	if (!pl->inst) {
		problem(pl, T, 0, false, "out of memory");
		return;
	}
	for (uint32_t r = 1; r < pl->csv[T].rows; r++) {
		uint32_t line = pl->csv[T].line[r];
		const char *id = CELL(T, r, 0), *st = CELL(T, r, 11);
		struct inst *in = &pl->inst[pl->inst_n];
		core_time end = 0;
		bool bad = false;

		if (!id_ok(id)) {
			problem(pl, T, line, false, "id: 1 to 64 bytes");
			continue;
		}
		if (FIND(pl->inst_map, inst_eq, pl->inst, id) != UINT32_MAX) {
			problem(pl, T, line, false, "class instance %s twice",
				id);
			continue;
		}
		in->legacy = id;
		in->line = line;
		in->org = obj_get(pl, 0, CELL(T, r, 1), T, line);
		if (in->org == UINT32_MAX)
			continue;
		if (!parse_time(CELL(T, r, 2), &in->start) || in->start <= 0) {
			problem(pl, T, line, false,
				"start_time: a timestamp after 1970 "
				"(2025-09-01 18:00:00+00)");
			bad = true;
		}
		if (HAS(3)) {
			if (!parse_time(CELL(T, r, 3), &end)) {
				problem(pl, T, line, false,
					"end_time: a timestamp");
				bad = true;
			}
		}
		if (HAS(4)) {
			if (!parse_u32(CELL(T, r, 4), CORE_DURATION_MIN_MAX,
				       &in->duration)) {
				problem(pl, T, line, false,
					"duration_minutes: 1 to 1440");
				bad = true;
			}
		} else if (end) {
			int64_t d = (end - in->start) / 60000;
			if (d < 1 || d > CORE_DURATION_MIN_MAX) {
				problem(pl, T, line, false,
					"end_time: 1 minute to 24 hours after "
					"start_time");
				bad = true;
			}
			in->duration = (uint32_t)(d > 0 ? d : 0);
		}
		if (!bad && in->duration == 0 && !HAS(7)) {
			problem(pl, T, line, false,
				"no end_time, duration_minutes or series");
			bad = true;
		}
		if (!parse_u32(CELL(T, r, 5), CORE_CAPACITY_MAX,
			       &in->capacity)) { /* required: there, or "" */
			problem(pl, T, line, false, "capacity: 0 to 1000000");
			bad = true;
		}
		{
			const struct cell_check checks[] = {
				{ 6, CELL_U32, 0, CORE_CAPACITY_MAX, &in->wcap,
				  &in->has_wcap, NULL,
				  "waitlist_capacity: 0 to 1000000" },
				{ 12, CELL_PRICE, 0, 0, &in->price, NULL,
				  in->currency, NULL },
			};
			if (!cell_checks(pl, T, r, line, idx, checks,
					 sizeof(checks) / sizeof(checks[0])))
				bad = true;
		}
		if (HAS(7) && pl->csv[IMP_SERIES].rows) {
			uint32_t s = FIND(pl->ser_map, ser_eq, pl->ser,
					  CELL(T, r, 7));
			if (s == UINT32_MAX) {
				problem(pl, T, line, false,
					"series %.64s is not in "
					"class_series",
					CELL(T, r, 7));
				bad = true;
			} else if (pl->ser[s].org != in->org) {
				problem(pl, T, line, false,
					"series %.64s is another org's",
					CELL(T, r, 7));
				bad = true;
			} else {
				in->series = s + 1;
			}
		}
		in->title = CELL(T, r, 8);
		if (!name_fits(in->title)) {
			problem(pl, T, line, false, "title: 127 bytes at most");
			bad = true;
		}
		in->loc = place_get(pl, 1, CELL(T, r, 9), in->org, T, line);
		in->ins = place_get(pl, 2, CELL(T, r, 10), in->org, T, line);
		if (in->loc == UINT32_MAX || in->ins == UINT32_MAX)
			bad = true;
		if (!strcasecmp(st, "cancelled") || !strcasecmp(st, "canceled"))
			in->cancelled = true;
		else if (st[0] && strcasecmp(st, "scheduled") &&
			 strcasecmp(st, "active") &&
			 strcasecmp(st, "published") &&
			 strcasecmp(st, "completed") &&
			 strcasecmp(st, "full") && strcasecmp(st, "open")) {
			problem(pl, T, line, false,
				"status %.32s: scheduled, active, completed "
				"or cancelled",
				st);
			bad = true;
		}
		if (HAS(15) && !parse_time(CELL(T, r, 15), &in->created)) {
			problem(pl, T, line, false, "created_at: a timestamp");
			bad = true;
		}
		if (HAS(16) && !parse_time(CELL(T, r, 16), &in->updated)) {
			problem(pl, T, line, false, "updated_at: a timestamp");
			bad = true;
		}
		if (bad)
			continue;
		ADD(pl->inst_map, inst_eq, pl->inst, id, pl->inst_n);
		pl->inst_n++;
	}
}

/* A registration's status: bookd's, and the old name when bookd has none
 * of it (detail); false when it cannot be imported. */
static bool reg_status(const char *s, uint8_t *st, const char **detail)
{
	*detail = NULL;
	if (!strcasecmp(s, "confirmed") || !strcasecmp(s, "booked") ||
	    !strcasecmp(s, "registered") || !strcasecmp(s, "paid"))
		*st = CORE_BOOKING_CONFIRMED;
	else if (!strcasecmp(s, "attended") || !strcasecmp(s, "checked_in"))
		*st = CORE_BOOKING_CONFIRMED, *detail = "attended";
	else if (!strcasecmp(s, "no_show") || !strcasecmp(s, "noshow"))
		*st = CORE_BOOKING_CONFIRMED, *detail = "no_show";
	else if (!strcasecmp(s, "cancelled") || !strcasecmp(s, "canceled"))
		*st = CORE_BOOKING_CANCELLED;
	else if (!strcasecmp(s, "late_cancelled") ||
		 !strcasecmp(s, "late_cancel"))
		*st = CORE_BOOKING_CANCELLED, *detail = "late_cancelled";
	else if (!strcasecmp(s, "waitlisted") || !strcasecmp(s, "waitlist"))
		*st = CORE_BOOKING_WAITLISTED;
	else if (!strcasecmp(s, "expired"))
		*st = CORE_BOOKING_EXPIRED;
	else if (!strcasecmp(s, "payment_failed"))
		*st = CORE_BOOKING_PAYMENT_FAILED;
	else
		return false;
	return true;
}

static struct bk *bk_new(struct plan *pl, enum imp_table t, uint32_t line)
{
	if (grow((void **)&pl->bk, &pl->bk_cap, pl->bk_n + 1,
		 sizeof(*pl->bk)) != 0) {
		problem(pl, t, line, false, "out of memory");
		return NULL;
	}
	memset(&pl->bk[pl->bk_n], 0, sizeof(*pl->bk));
	pl->bk[pl->bk_n].table = (uint8_t)t;
	pl->bk[pl->bk_n].line = line;
	return &pl->bk[pl->bk_n];
}

static void read_registrations(struct plan *pl)
{
	static const struct col_spec cols[] = {
		{ "id", true },
		{ "class_instance_id|instance_id|event_id", true },
		{ "customer_id|user_id", true },
		{ "status", true },
		{ "created_at|registered_at", true },
		{ "updated_at", false },
		{ "promoted_at", false },
		{ "waitlist_position|position", false },
	};
	enum imp_table T = IMP_REGISTRATIONS;
	int idx[8];

	if (!pl->csv[T].rows || !bind(pl, T, cols, 8, idx))
		return;
	for (uint32_t r = 1; r < pl->csv[T].rows; r++) {
		uint32_t line = pl->csv[T].line[r], in;
		const char *id = CELL(T, r, 0);
		struct bk *b;
		bool bad = false;

		if (!id_ok(id)) {
			problem(pl, T, line, false, "id: 1 to 64 bytes");
			continue;
		}
		if (FIND(pl->reg_map, reg_eq, pl->bk, id) != UINT32_MAX) {
			problem(pl, T, line, false, "registration %s twice",
				id);
			continue;
		}
		in = FIND(pl->inst_map, inst_eq, pl->inst, CELL(T, r, 1));
		if (in == UINT32_MAX) {
			problem(pl, T, line, false,
				"class instance %.64s is not in "
				"class_instances",
				CELL(T, r, 1));
			continue;
		}
		if (!(b = bk_new(pl, T, line)))
			return;
		b->legacy = id;
		b->inst = in;
		if (cust_get(pl, CELL(T, r, 2), T, line) == UINT32_MAX)
			bad = true;
		b->customer = CELL(T, r, 2);
		if (!reg_status(trim(CELL(T, r, 3)), &b->status, &b->detail)) {
			problem(pl, T, line, false,
				"status %.32s: confirmed, attended, no_show, "
				"cancelled, waitlisted (a pending payment "
				"cannot be imported: settle it first)",
				CELL(T, r, 3));
			bad = true;
		}
		if (!parse_time(CELL(T, r, 4), &b->created) ||
		    b->created <= 0) {
			problem(pl, T, line, false, "created_at: a timestamp");
			bad = true;
		}
		if (HAS(5) && !parse_time(CELL(T, r, 5), &b->updated)) {
			problem(pl, T, line, false, "updated_at: a timestamp");
			bad = true;
		}
		if (HAS(6) && !parse_time(CELL(T, r, 6), &b->promoted)) {
			problem(pl, T, line, false, "promoted_at: a timestamp");
			bad = true;
		}
		if (HAS(7) &&
		    !parse_u32(CELL(T, r, 7), UINT32_MAX - 1, &b->position)) {
			problem(pl, T, line, false, "position: a number");
			bad = true;
		}
		if (bad)
			continue;
		ADD(pl->reg_map, reg_eq, pl->bk, id, pl->bk_n);
		/* a customer's registration on the instance: the active
		 * one, else the latest (for its waitlist row) */
		{
			struct pair k = { in, b->customer };
			uint64_t h = pair_hash(in, b->customer);
			uint32_t o =
				smap_get(&pl->pair_map, h, pair_eq, pl->bk, &k);
			if (o == UINT32_MAX ||
			    b->status == CORE_BOOKING_CONFIRMED ||
			    b->status == CORE_BOOKING_WAITLISTED ||
			    (pl->bk[o].status != CORE_BOOKING_CONFIRMED &&
			     pl->bk[o].status != CORE_BOOKING_WAITLISTED &&
			     pl->bk[o].created < b->created))
				smap_set(&pl->pair_map, h, pair_eq, pl->bk, &k,
					 pl->bk_n);
		}
		pl->bk_n++;
	}
}

static void read_waitlists(struct plan *pl)
{
	static const struct col_spec cols[] = {
		{ "id", true },
		{ "class_instance_id|instance_id|event_id", true },
		{ "customer_id|user_id", true },
		{ "position|waitlist_position", false },
		{ "status", false },
		{ "created_at|joined_at", true },
		{ "promoted_at", false },
		{ "updated_at", false },
	};
	enum imp_table T = IMP_WAITLISTS;
	int idx[8];

	if (!pl->csv[T].rows || !bind(pl, T, cols, 8, idx))
		return;
	for (uint32_t r = 1; r < pl->csv[T].rows; r++) {
		uint32_t line = pl->csv[T].line[r], in, pos = 0;
		const char *id = CELL(T, r, 0), *st = trim(CELL(T, r, 4));
		core_time created = 0, promoted = 0, updated = 0;
		struct bk *b;
		bool bad = false, left = false;
		struct pair k;
		uint32_t reg;

		if (!id_ok(id)) {
			problem(pl, T, line, false, "id: 1 to 64 bytes");
			continue;
		}
		if (FIND(pl->wl_map, wl_eq, pl->bk, id) != UINT32_MAX) {
			problem(pl, T, line, false, "waitlist row %s twice",
				id);
			continue;
		}
		in = FIND(pl->inst_map, inst_eq, pl->inst, CELL(T, r, 1));
		if (in == UINT32_MAX) {
			problem(pl, T, line, false,
				"class instance %.64s is not in "
				"class_instances",
				CELL(T, r, 1));
			continue;
		}
		if (cust_get(pl, CELL(T, r, 2), T, line) == UINT32_MAX)
			continue;
		if (HAS(3) && !parse_u32(CELL(T, r, 3), UINT32_MAX - 1, &pos)) {
			problem(pl, T, line, false, "position: a number");
			bad = true;
		}
		if (!parse_time(CELL(T, r, 5), &created) || created <= 0) {
			problem(pl, T, line, false, "created_at: a timestamp");
			bad = true;
		}
		if (HAS(6) && !parse_time(CELL(T, r, 6), &promoted)) {
			problem(pl, T, line, false, "promoted_at: a timestamp");
			bad = true;
		}
		if (HAS(7) && !parse_time(CELL(T, r, 7), &updated)) {
			problem(pl, T, line, false, "updated_at: a timestamp");
			bad = true;
		}
		if (!strcasecmp(st, "promoted") ||
		    !strcasecmp(st, "converted")) {
			if (!promoted)
				promoted = updated ? updated : created;
		} else if (!strcasecmp(st, "cancelled") ||
			   !strcasecmp(st, "canceled") ||
			   !strcasecmp(st, "removed") ||
			   !strcasecmp(st, "left") ||
			   !strcasecmp(st, "expired"))
			left = true;
		else if (st[0] && strcasecmp(st, "waiting") &&
			 strcasecmp(st, "active") &&
			 strcasecmp(st, "waitlisted")) {
			problem(pl, T, line, false,
				"status %.32s: waiting, promoted or cancelled",
				st);
			bad = true;
		}
		if (bad)
			continue;
		/* the customer's registration on the instance, if any */
		k = (struct pair){ in, CELL(T, r, 2) };
		reg = smap_get(&pl->pair_map, pair_hash(in, k.customer),
			       pair_eq, pl->bk, &k);
		if (reg != UINT32_MAX) {
			b = &pl->bk[reg];
			if (b->wl_legacy) {
				problem(pl, T, line, false,
					"a second waitlist row of customer "
					"%.64s on class instance %.64s",
					b->customer, CELL(T, r, 1));
				continue;
			}
			/* the registration came from this waitlist row */
			b->wl_legacy = id;
			b->joined = created;
			if (promoted && b->status != CORE_BOOKING_WAITLISTED)
				b->promoted = promoted;
			if (b->status == CORE_BOOKING_WAITLISTED && pos)
				b->position = pos;
			if (created < b->created)
				b->created = created;
			pl->rep->planned[IMP_C_WL_MERGED]++;
			ADD(pl->wl_map, wl_eq, pl->bk, id, reg);
			continue;
		}
		if (promoted) {
			problem(pl, T, line, false,
				"promoted, but customer %.64s has no "
				"registration on class instance %.64s",
				CELL(T, r, 2), CELL(T, r, 1));
			continue;
		}
		if (!(b = bk_new(pl, T, line)))
			return;
		b->wl_legacy = id;
		b->inst = in;
		b->customer = CELL(T, r, 2);
		b->status =
			left ? CORE_BOOKING_CANCELLED : CORE_BOOKING_WAITLISTED;
		b->position = pos;
		b->created = b->joined = created;
		b->updated = updated;
		ADD(pl->wl_map, wl_eq, pl->bk, id, pl->bk_n);
		pl->bk_n++;
	}
}

/* ---- checking ---- */

static struct plan *sort_ctx; /* qsort's comparator reads the bookings */

static int bk_order(const void *a, const void *b)
{
	const struct bk *x = &sort_ctx->bk[*(const uint32_t *)a];
	const struct bk *y = &sort_ctx->bk[*(const uint32_t *)b];
	bool xw = x->status == CORE_BOOKING_WAITLISTED,
	     yw = y->status == CORE_BOOKING_WAITLISTED;
	uint32_t xp = x->position ? x->position : UINT32_MAX,
		 yp = y->position ? y->position : UINT32_MAX;

	if (xw != yw) /* the waitlist last, so its FIFO is its order */
		return xw ? 1 : -1;
	if (xw && xp != yp)
		return xp < yp ? -1 : 1;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int by_customer(const void *a, const void *b)
{
	const struct bk *x = &sort_ctx->bk[*(const uint32_t *)a];
	const struct bk *y = &sort_ctx->bk[*(const uint32_t *)b];
	int c = strcmp(x->customer, y->customer);

	return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}

static bool active(uint8_t st)
{
	return st == CORE_BOOKING_CONFIRMED || st == CORE_BOOKING_WAITLISTED;
}

/* A class that started before the import: what the seed left waitlisted
 * on it is written as bookd's start of class would have left it,
 * waitlist_expired at the class's start (unless updated later), the old
 * status kept in bookd.legacy_ids.detail. Nothing is decided: no tick
 * closes an imported waitlist, so no customer is told about an old
 * class (docs/operations.md "What it becomes"). */
static void expire_waitlist(struct plan *pl, struct inst *in, const uint32_t *o)
{
	for (uint32_t k = 0; k < in->count; k++) {
		struct bk *b = &pl->bk[o[k]];
		if (b->status != CORE_BOOKING_WAITLISTED)
			continue;
		b->status = CORE_BOOKING_WAITLIST_EXPIRED;
		b->expired = true;
		in->expired++;
		b->detail = "waitlisted";
		if (!b->joined) /* its join: the waitlist's history */
			b->joined = b->created;
		if (b->updated < in->start)
			b->updated = in->start;
	}
}

/* Bookings bucketed per instance in writing order; conflicts. */
static int check_instances(struct plan *pl)
{
	uint32_t *scratch;

	pl->order = malloc(((size_t)pl->bk_n + 1) * sizeof(*pl->order));
	scratch = malloc(((size_t)pl->bk_n + 1) * sizeof(*scratch));
	if (!pl->order || !scratch) {
		free(scratch);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < pl->bk_n; i++)
		pl->inst[pl->bk[i].inst].count++;
	for (uint32_t i = 0, at = 0; i < pl->inst_n; i++) {
		pl->inst[i].first = at;
		at += pl->inst[i].count;
		pl->inst[i].count = 0;
	}
	for (uint32_t i = 0; i < pl->bk_n; i++) {
		struct inst *in = &pl->inst[pl->bk[i].inst];
		pl->order[in->first + in->count++] = i;
	}
	sort_ctx = pl;
	for (uint32_t i = 0; i < pl->inst_n; i++) {
		struct inst *in = &pl->inst[i];
		uint32_t *o = pl->order + in->first, na = 0;
		bool past = in->start < pl->opts->now;
		bool accept = past && pl->opts->accept_past;

		qsort(o, in->count, sizeof(*o), bk_order);
		for (uint32_t k = 0; k < in->count; k++) {
			const struct bk *b = &pl->bk[o[k]];
			in->confirmed += b->status == CORE_BOOKING_CONFIRMED;
			in->waitlisted += b->status == CORE_BOOKING_WAITLISTED;
			if (active(b->status))
				scratch[na++] = o[k];
		}
		qsort(scratch, na, sizeof(*scratch), by_customer);
		for (uint32_t k = 1; k < na; k++) {
			const struct bk *a = &pl->bk[scratch[k - 1]],
					*b = &pl->bk[scratch[k]];
			if (strcmp(a->customer, b->customer) == 0)
				problem(pl, b->table, b->line, false,
					"customer %.64s is on class instance "
					"%.64s twice (also %s line %u)",
					b->customer, in->legacy,
					pl->rep->file[a->table], a->line);
		}
		if (in->confirmed > in->capacity) {
			problem(pl, IMP_INSTANCES, in->line, accept,
				"%u confirmed for a capacity of %u%s",
				in->confirmed, in->capacity,
				accept ? ": imported with capacity raised"
				: past ? " (--accept-past-conflicts "
					 "takes it as it is)"
				       : "");
			in->capacity = in->confirmed;
		}
		if (in->cancelled && na) {
			problem(pl, IMP_INSTANCES, in->line, accept,
				"cancelled, with %u active registrations%s", na,
				accept ? ": imported, cancelled with the "
					 "class"
				: past ? " (--accept-past-conflicts takes "
					 "it)"
				       : "");
		}
		if (!in->has_wcap && in->series &&
		    pl->ser[in->series - 1].has_wcap)
			in->wcap =
				pl->ser[in->series - 1].spec.waitlist_capacity,
			in->has_wcap = true;
		if (!in->has_wcap)
			in->wcap = in->capacity;
		if (in->waitlisted > in->wcap) {
			if (in->has_wcap)
				problem(pl, IMP_INSTANCES, in->line, accept,
					"%u waitlisted for a waitlist of %u%s",
					in->waitlisted, in->wcap,
					accept ? ": imported with it raised"
					       : "");
			in->wcap = in->waitlisted;
		}
		if (past) /* its waitlist closed at its start */
			expire_waitlist(pl, in, o);
	}
	free(scratch);
	return 0;
}

/* Series' patterns from their instances where class_series lacks them. */
static void check_series(struct plan *pl)
{
	for (uint32_t i = 0; i < pl->ser_n; i++) {
		struct ser *s = &pl->ser[i];
		struct core_series_spec *sp = &s->spec;
		const struct tz *z = zone(pl, sp->timezone);
		int64_t lo = INT64_MAX, hi = INT64_MIN;
		const struct inst *first = NULL;
		uint8_t mask = 0;

		ASSERT(z); /* checked when read */
		for (uint32_t k = 0; k < pl->inst_n; k++) {
			const struct inst *in = &pl->inst[k];
			int64_t day;
			int minute;
			if (in->series != i + 1)
				continue;
			local_of(z, in->start, &day, &minute);
			mask |= (uint8_t)(1u << tz_weekday(day));
			if (day < lo || !first || in->start < first->start)
				lo = day < lo ? day : lo;
			if (!first || in->start < first->start)
				first = in;
			if (day > hi)
				hi = day;
		}
		if (first) {
			int64_t day;
			int minute;
			local_of(z, first->start, &day, &minute);
			if (!s->has_weekdays)
				sp->weekday_mask = mask;
			if (!s->has_start)
				sp->start_minute = (uint16_t)minute;
			if (!s->has_duration)
				sp->duration_min = first->duration;
			if (!s->has_first)
				sp->first_date = date_of_day(lo);
			if (!s->has_capacity)
				sp->capacity = first->capacity;
			if (s->loc == UINT32_MAX)
				s->loc = first->loc;
			if (s->ins == UINT32_MAX)
				s->ins = first->ins;
			s->through = date_of_day(hi);
		} else if (!s->has_weekdays || !s->has_start ||
			   !s->has_duration || !s->has_first) {
			problem(pl, IMP_SERIES, s->line, false,
				"no instances, and not weekdays, start_time, "
				"duration_minutes and start_date all given");
			continue;
		}
		if (!s->has_wcap)
			sp->waitlist_capacity = sp->capacity;
		if (sp->duration_min == 0)
			problem(pl, IMP_SERIES, s->line, false,
				"no duration: duration_minutes, or instances "
				"with an end_time");
		if (sp->last_date.year &&
		    tz_days_from_civil(sp->last_date.year, sp->last_date.month,
				       sp->last_date.day) <
			    tz_days_from_civil(sp->first_date.year,
					       sp->first_date.month,
					       sp->first_date.day))
			problem(pl, IMP_SERIES, s->line, false,
				"end_date before start_date");
		if (s->loc == UINT32_MAX)
			s->loc = place_get(pl, 1, "", s->org, IMP_SERIES,
					   s->line);
		if (s->ins == UINT32_MAX)
			s->ins = place_get(pl, 2, "", s->org, IMP_SERIES,
					   s->line);
	}
	for (uint32_t k = 0; k < pl->inst_n; k++) {
		struct inst *in = &pl->inst[k];
		if (in->series && in->duration == 0)
			in->duration =
				pl->ser[in->series - 1].spec.duration_min;
		if (in->duration == 0)
			problem(pl, IMP_INSTANCES, in->line, false,
				"no duration (end_time, duration_minutes or "
				"its series')");
	}
}

/* What the core has already (LEGACY records of an earlier run). */
static bool legacy_known(struct plan *pl, uint8_t kind, const char *id,
			 uint64_t *bookd, enum imp_table t, uint32_t line)
{
	int rc;

	if (!pl->core)
		return false;
	rc = core_legacy_get(pl->core, kind, id, bookd);
	if (rc == -EEXIST)
		problem(pl, t, line, false,
			"id %.64s: another old id has its hash; rename it", id);
	return rc == 0;
}

static void check_existing(struct plan *pl)
{
	static const uint8_t kinds[3] = { CORE_LEGACY_ORG, CORE_LEGACY_LOCATION,
					  CORE_LEGACY_INSTRUCTOR };
	struct import_report *r = pl->rep;

	for (int k = 0; k < 3; k++)
		for (uint32_t i = 0; i < pl->obj_n[k]; i++) {
			struct obj *o = &pl->obj[k][i];
			o->existing =
				legacy_known(pl, kinds[k], o->legacy, &o->bookd,
					     o->table, o->line);
			if (o->existing)
				r->existing[IMP_C_ORGS + k]++;
			else
				r->planned[IMP_C_ORGS + k]++;
		}
	for (uint32_t i = 0; i < pl->cust_n; i++) {
		uint64_t unused;
		pl->cust[i].existing =
			legacy_known(pl, CORE_LEGACY_CUSTOMER, pl->cust[i].id,
				     &unused, IMP_CUSTOMERS, 0);
		r->existing[IMP_C_CUSTOMERS] += pl->cust[i].existing;
		r->planned[IMP_C_CUSTOMERS] += !pl->cust[i].existing;
	}
	for (uint32_t i = 0; i < pl->ser_n; i++) {
		struct ser *s = &pl->ser[i];
		s->existing = legacy_known(pl, CORE_LEGACY_SERIES, s->legacy,
					   &s->bookd, IMP_SERIES, s->line);
		r->existing[IMP_C_SERIES] += s->existing;
		r->planned[IMP_C_SERIES] += !s->existing;
	}
	for (uint32_t i = 0; i < pl->inst_n; i++) {
		struct inst *in = &pl->inst[i];
		in->existing =
			legacy_known(pl, CORE_LEGACY_EVENT, in->legacy,
				     &in->bookd, IMP_INSTANCES, in->line);
		r->existing[IMP_C_EVENTS] += in->existing;
		r->planned[IMP_C_EVENTS] += !in->existing;
		if (!in->series) {
			r->existing[IMP_C_ONE_OFF] += in->existing;
			r->planned[IMP_C_ONE_OFF] += !in->existing;
		}
		for (uint32_t k = 0; k < in->count; k++) {
			struct bk *b = &pl->bk[pl->order[in->first + k]];
			uint64_t id;
			bool known =
				b->legacy
					? legacy_known(pl, CORE_LEGACY_BOOKING,
						       b->legacy, &id, b->table,
						       b->line)
					: legacy_known(pl, CORE_LEGACY_WAITLIST,
						       b->wl_legacy, &id,
						       b->table, b->line);
			b->existing = known;
			if (known != in->existing)
				problem(pl, b->table, b->line, false,
					"%s, but its class instance %.64s %s",
					known ? "imported before"
					      : "not imported before",
					in->legacy,
					in->existing ? "was (its bookings "
						       "are written with it)"
						     : "was not");
			r->existing[IMP_C_BOOKINGS] += known;
			r->planned[IMP_C_BOOKINGS] += !known;
			r->existing[IMP_C_WL_EXPIRED] += known && b->expired;
			r->planned[IMP_C_WL_EXPIRED] += !known && b->expired;
		}
	}
}

/* ---- the records ---- */

struct recs {
	struct core_rec *r;
	uint32_t n, cap;
	size_t size;
};

static struct core_rec *rec_add(struct recs *rs, uint8_t type, core_time at)
{
	struct core_rec *r;

	if (grow((void **)&rs->r, &rs->cap, rs->n + 1, sizeof(*rs->r)) != 0)
		return NULL;
	r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->at = at;
	return r;
}

/* The record just added counted in rs->size. */
static void rec_done(struct recs *rs)
{
	rs->size += core_import_rec_size(&rs->r[rs->n - 1]);
}

static int legacy_add(struct recs *rs, uint8_t kind, const char *id,
		      uint64_t bookd, const char *detail, core_time at)
{
	struct core_rec *r = rec_add(rs, CORE_REC_LEGACY, at);

	if (!r)
		return -ENOMEM;
	r->u.legacy.kind = kind;
	r->u.legacy.bookd_id = bookd;
	snprintf(r->u.legacy.id, sizeof(r->u.legacy.id), "%s", id);
	if (detail)
		snprintf(r->u.legacy.detail, sizeof(r->u.legacy.detail), "%s",
			 detail);
	rec_done(rs);
	return 0;
}

/* A one-off instance's series: its one date. */
static void one_off_spec(struct plan *pl, const struct inst *in,
			 struct core_series_spec *sp, struct core_date *day_out)
{
	const char *zone_name = pl->obj[0][in->org].tz;
	const struct tz *z = zone(pl, zone_name);
	int64_t day;
	int minute;

	ASSERT(z); /* the org's zone: checked, or UTC */
	local_of(z, in->start, &day, &minute);
	memset(sp, 0, sizeof(*sp));
	sp->org_id = pl->obj[0][in->org].bookd;
	sp->location_id = pl->obj[1][in->loc].bookd;
	sp->instructor_id = pl->obj[2][in->ins].bookd;
	if (in->title[0])
		snprintf(sp->title, sizeof(sp->title), "%s", in->title);
	else
		snprintf(sp->title, sizeof(sp->title), "Class %s", in->legacy);
	sp->capacity = in->capacity;
	sp->waitlist_capacity = in->wcap;
	sp->price_cents = in->price;
	memcpy(sp->currency, in->currency, 4);
	snprintf(sp->timezone, sizeof(sp->timezone), "%s", zone_name);
	sp->weekday_mask = (uint8_t)(1u << tz_weekday(day));
	sp->start_minute = (uint16_t)minute;
	sp->duration_min = in->duration;
	sp->first_date = sp->last_date = *day_out = date_of_day(day);
}

/* The records of instance in (a unit), ids from nx. */
static int emit_instance(struct plan *pl, struct inst *in,
			 struct core_import_next *nx, struct recs *rs)
{
	core_time now = pl->opts->now;
	uint64_t series_id = 0, eid;
	struct core_rec *r;

	if (in->series) {
		series_id = pl->ser[in->series - 1].bookd;
	} else {
		struct core_date day;
		if (!(r = rec_add(rs, CORE_REC_SERIES, now)))
			return -ENOMEM;
		r->u.series.id = series_id = nx->series++;
		one_off_spec(pl, in, &r->u.series.spec, &day);
		rec_done(rs);
		if (!(r = rec_add(rs, CORE_REC_SERIES_GENERATED, now)))
			return -ENOMEM;
		r->u.generated.series_id = series_id;
		r->u.generated.through = day;
		rec_done(rs);
	}
	if (!(r = rec_add(rs, CORE_REC_EVENT_CREATE,
			  in->created ? in->created : now)))
		return -ENOMEM;
	r->u.event.id = eid = in->bookd = nx->event++;
	r->u.event.series_id = series_id;
	r->u.event.org_id = pl->obj[0][in->org].bookd;
	r->u.event.location_id = pl->obj[1][in->loc].bookd;
	r->u.event.instructor_id = pl->obj[2][in->ins].bookd;
	r->u.event.start_at = in->start;
	r->u.event.duration_min = in->duration;
	r->u.event.capacity = in->capacity;
	r->u.event.waitlist_capacity = in->wcap;
	r->u.event.price_cents = in->price;
	memcpy(r->u.event.currency, in->currency, 4);
	rec_done(rs);
	if (legacy_add(rs, CORE_LEGACY_EVENT, in->legacy, eid, NULL, now))
		return -ENOMEM;
	for (uint32_t k = 0; k < in->count; k++) {
		const struct bk *b = &pl->bk[pl->order[in->first + k]];
		uint64_t bid = eid << 24 | (k + 1) /* core_booking_event */;

		if (!(r = rec_add(rs, CORE_REC_BOOKING_IMPORT, b->created)))
			return -ENOMEM;
		r->u.booking.booking_id = bid;
		r->u.booking.status = b->status;
		snprintf(r->u.booking.customer_id,
			 sizeof(r->u.booking.customer_id), "%s", b->customer);
		r->u.booking.updated_at = b->updated;
		r->u.booking.joined_at = b->joined;
		r->u.booking.promoted_at = b->promoted;
		rec_done(rs);
		if (b->legacy && legacy_add(rs, CORE_LEGACY_BOOKING, b->legacy,
					    bid, b->detail, now))
			return -ENOMEM;
		if (b->wl_legacy &&
		    legacy_add(rs, CORE_LEGACY_WAITLIST, b->wl_legacy, bid,
			       b->legacy ? NULL : b->detail, now))
			return -ENOMEM;
	}
	if (in->cancelled) {
		if (!(r = rec_add(rs, CORE_REC_EVENT_PATCH,
				  in->updated ? in->updated : now)))
			return -ENOMEM;
		r->u.patch.event_id = eid;
		r->u.patch.instructor_id = pl->obj[2][in->ins].bookd;
		r->u.patch.capacity = in->capacity;
		r->u.patch.status = CORE_EVENT_CANCELLED;
		rec_done(rs);
	}
	return 0;
}

/* The records of item i of phase ph (0-2 orgs, locations, instructors; 3
 * customers; 4 series; 5 instances); 1 when it is there already. */
static int emit(struct plan *pl, int ph, uint32_t i,
		struct core_import_next *nx, struct recs *rs)
{
	static const uint8_t types[3] = { CORE_REC_ORG, CORE_REC_LOCATION,
					  CORE_REC_INSTRUCTOR };
	static const uint8_t kinds[3] = { CORE_LEGACY_ORG, CORE_LEGACY_LOCATION,
					  CORE_LEGACY_INSTRUCTOR };
	core_time now = pl->opts->now;
	struct core_rec *r;

	switch (ph) {
	case 0:
	case 1:
	case 2: {
		struct obj *o = &pl->obj[ph][i];
		uint64_t *next = ph == 0   ? &nx->org
				 : ph == 1 ? &nx->location
					   : &nx->instructor;
		if (o->existing)
			return 1;
		if (!(r = rec_add(rs, types[ph], now)))
			return -ENOMEM;
		r->u.cat.id = o->bookd = (*next)++;
		r->u.cat.org_id = ph ? pl->obj[0][o->org].bookd : 0;
		snprintf(r->u.cat.name, sizeof(r->u.cat.name), "%s", o->name);
		if (ph == 0)
			snprintf(r->u.cat.timezone, sizeof(r->u.cat.timezone),
				 "%s", o->tz);
		rec_done(rs);
		return legacy_add(rs, kinds[ph], o->legacy, o->bookd, NULL,
				  now);
	}
	case 3: {
		const struct cust *c = &pl->cust[i];
		if (c->existing)
			return 1;
		if (c->in_file) {
			if (!(r = rec_add(rs, CORE_REC_CUSTOMER, now)))
				return -ENOMEM;
			snprintf(r->u.customer.id, sizeof(r->u.customer.id),
				 "%s", c->id);
			snprintf(r->u.customer.email,
				 sizeof(r->u.customer.email), "%s", c->email);
			snprintf(r->u.customer.name, sizeof(r->u.customer.name),
				 "%s", c->name_buf);
			rec_done(rs);
		}
		return legacy_add(rs, CORE_LEGACY_CUSTOMER, c->id, 0, NULL,
				  now);
	}
	case 4: {
		struct ser *s = &pl->ser[i];
		if (s->existing)
			return 1;
		if (!(r = rec_add(rs, CORE_REC_SERIES, now)))
			return -ENOMEM;
		r->u.series.id = s->bookd = nx->series++;
		r->u.series.spec = s->spec;
		r->u.series.spec.org_id = pl->obj[0][s->org].bookd;
		r->u.series.spec.location_id = pl->obj[1][s->loc].bookd;
		r->u.series.spec.instructor_id = pl->obj[2][s->ins].bookd;
		rec_done(rs);
		if (legacy_add(rs, CORE_LEGACY_SERIES, s->legacy, s->bookd,
			       NULL, now))
			return -ENOMEM;
		if (s->through.year) { /* its instances are imported, not
					* generated again */
			if (!(r = rec_add(rs, CORE_REC_SERIES_GENERATED, now)))
				return -ENOMEM;
			r->u.generated.series_id = s->bookd;
			r->u.generated.through = s->through;
			rec_done(rs);
		}
		return 0;
	}
	default: {
		struct inst *in = &pl->inst[i];
		if (in->existing)
			return 1;
		return emit_instance(pl, in, nx, rs);
	}
	}
}

static uint32_t phase_count(const struct plan *pl, int ph)
{
	switch (ph) {
	case 0:
	case 1:
	case 2: return pl->obj_n[ph];
	case 3: return pl->cust_n;
	case 4: return pl->ser_n;
	default: return pl->inst_n;
	}
}

/* Sizes of the units, with made-up ids (sizes do not depend on them). */
static void check_sizes(struct plan *pl)
{
	struct core_import_next nx = { 1, 1, 1, 1, 1 };
	struct recs rs = { 0 };

	for (uint32_t i = 0; i < pl->inst_n; i++) {
		struct inst *in = &pl->inst[i];
		bool existing = in->existing;

		in->existing = false;
		rs.n = 0;
		rs.size = 0;
		if (emit(pl, 5, i, &nx, &rs) == 0 && rs.size > IMP_ENTRY_BUDGET)
			problem(pl, IMP_INSTANCES, in->line, false,
				"%u registrations: more than one log entry "
				"holds (%zu bytes of %d)",
				in->count, rs.size, IMP_ENTRY_BUDGET);
		in->existing = existing;
		in->bookd = 0;
	}
	free(rs.r);
}

/* ---- writing ---- */

static int write_all(struct plan *pl, core_port *p)
{
	struct import_report *rep = pl->rep;
	struct recs rs = { 0 };
	int rc = 0;

	for (int ph = 0; ph < 6 && rc == 0; ph++) {
		uint32_t n = phase_count(pl, ph), i = 0;
		while (i < n && rc == 0) {
			struct core_import_next nx;
			uint32_t j, tries = 0, bad;
			uint64_t lsn;
again:
			core_import_next(pl->core, &nx);
			rs.n = 0;
			rs.size = 0;
			for (j = i; j < n; j++) {
				struct core_import_next keep = nx;
				uint32_t n0 = rs.n;
				size_t s0 = rs.size;
				int e = emit(pl, ph, j, &nx, &rs);
				if (e < 0) {
					rc = e;
					break;
				}
				if (rs.size > IMP_ENTRY_BUDGET && n0) {
					rs.n = n0, rs.size = s0, nx = keep;
					break;
				}
			}
			if (rc || rs.n == 0)
				break;
			rc = core_import_write(p, rs.r, rs.n, &lsn, &bad);
			if (rc == -ESTALE && ++tries < 10) {
				rc = 0;
				goto again;
			}
			if (rc) {
				snprintf(rep->failure, sizeof(rep->failure),
					 "writing %s: %s%s",
					 ph == 5   ? "class instances"
					 : ph == 4 ? "series"
					 : ph == 3 ? "customers"
						   : "orgs, locations, "
						     "instructors",
					 strerror(-rc),
					 rc == -EINVAL
						 ? " (a record the check let "
						   "through: a bug)"
						 : "");
				break;
			}
			rep->entries++;
			rep->lsn = lsn;
			for (uint32_t k = i; k < j; k++) {
				switch (ph) {
				case 0:
				case 1:
				case 2:
					rep->written[IMP_C_ORGS + ph] +=
						!pl->obj[ph][k].existing;
					break;
				case 3:
					rep->written[IMP_C_CUSTOMERS] +=
						!pl->cust[k].existing;
					break;
				case 4:
					rep->written[IMP_C_SERIES] +=
						!pl->ser[k].existing;
					break;
				default:
					if (pl->inst[k].existing)
						break;
					rep->written[IMP_C_EVENTS]++;
					rep->written[IMP_C_ONE_OFF] +=
						!pl->inst[k].series;
					rep->written[IMP_C_BOOKINGS] +=
						pl->inst[k].count;
					rep->written[IMP_C_WL_EXPIRED] +=
						pl->inst[k].expired;
				}
			}
			i = j;
		}
	}
	free(rs.r);
	return rc;
}

/* ---- the whole ---- */

static void plan_free(struct plan *pl)
{
	for (int t = 0; t < IMP_TABLE_COUNT; t++)
		csv_free(&pl->csv[t]);
	for (int k = 0; k < 3; k++) {
		for (uint32_t i = 0; i < pl->obj_n[k]; i++)
			if (pl->obj[k][i].owned) /* a placeholder's */
				free((char *)pl->obj[k][i].legacy);
		free(pl->obj[k]);
		smap_free(&pl->obj_map[k]);
	}
	free(pl->cust);
	smap_free(&pl->cust_map);
	free(pl->ser);
	smap_free(&pl->ser_map);
	free(pl->inst);
	smap_free(&pl->inst_map);
	free(pl->bk);
	smap_free(&pl->reg_map);
	smap_free(&pl->wl_map);
	smap_free(&pl->pair_map);
	free(pl->order);
	for (unsigned i = 0; i < pl->tz_n; i++)
		tz_free(pl->tz[i].z);
}

static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

int import_run(const struct import_src *src, const struct import_opts *opts,
	       core *c, core_port *p, struct import_report *rep)
{
	struct plan *pl = calloc(1, sizeof(*pl));
	uint32_t all = 0;
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	if (!pl)
		return -ENOMEM;
	pl->opts = opts;
	pl->rep = rep;
	pl->core = c;
	for (int t = 0; t < IMP_TABLE_COUNT; t++) {
		if (!src->file[t].data)
			continue;
		snprintf(rep->file[t], sizeof(rep->file[t]), "%s",
			 src->file[t].name);
		if (csv_parse(&pl->csv[t], src->file[t].data,
			      src->file[t].size) != 0) {
			problem(pl, (enum imp_table)t, pl->csv[t].err_line,
				false, "%s", pl->csv[t].err);
			continue;
		}
		rep->rows[t] = pl->csv[t].rows - 1;
		all += pl->csv[t].rows;
	}
	if (rep->errors)
		goto out;
	for (int k = 0; k < 3 && rc == 0; k++)
		rc = smap_init(&pl->obj_map[k], all + 8);
	if (rc == 0)
		rc = smap_init(&pl->cust_map, all + 8);
	if (rc == 0)
		rc = smap_init(&pl->ser_map, rep->rows[IMP_SERIES] + 8);
	if (rc == 0)
		rc = smap_init(&pl->inst_map, rep->rows[IMP_INSTANCES] + 8);
	if (rc == 0)
		rc = smap_init(&pl->reg_map, rep->rows[IMP_REGISTRATIONS] + 8);
	if (rc == 0)
		rc = smap_init(&pl->wl_map, rep->rows[IMP_REGISTRATIONS] +
						    rep->rows[IMP_WAITLISTS] +
						    8);
	if (rc == 0)
		rc = smap_init(&pl->pair_map, rep->rows[IMP_REGISTRATIONS] + 8);
	if (rc)
		goto out;
	read_places(pl);
	read_customers(pl);
	read_series(pl);
	read_instances(pl);
	read_registrations(pl);
	read_waitlists(pl);
	if (rep->errors)
		goto out;
	check_series(pl);
	pthread_mutex_lock(&sort_lock); /* sort_ctx */
	rc = check_instances(pl);
	pthread_mutex_unlock(&sort_lock);
	if (rc || rep->errors)
		goto out;
	check_existing(pl);
	check_sizes(pl);
	if (rep->errors || opts->dry_run || !c)
		goto out;
	rc = write_all(pl, p);
out:
	rep->refused = rep->errors > 0;
	plan_free(pl);
	free(pl);
	return rc;
}

/* ---- the report ---- */

static void json_str(struct buf *o, const char *s)
{
	buf_put(o, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			buf_printf(o, "\\%c", ch);
		else if (ch < 0x20)
			buf_printf(o, "\\u%04x", ch);
		else
			buf_put(o, s, 1);
	}
	buf_put(o, "\"", 1);
}

static void json_counts(struct buf *o, const char *name, const uint64_t *c)
{
	static const char *const names[IMP_C_COUNT] = {
		"orgs",
		"locations",
		"instructors",
		"customers",
		"series",
		"one_off_series",
		"events",
		"bookings",
		"waitlist_rows_merged",
		"waitlist_expired",
	};
	buf_printf(o, "\"%s\":{", name);
	for (int k = 0; k < IMP_C_COUNT; k++)
		buf_printf(o, "%s\"%s\":%" PRIu64, k ? "," : "", names[k],
			   c[k]);
	buf_put(o, "}", 1);
}

void import_report_json(const struct import_report *rep, const char *state,
			const struct import_opts *opts, struct buf *o)
{
	uint64_t all[IMP_C_COUNT];

	buf_printf(o,
		   "{\"state\":\"%s\",\"dry_run\":%s,"
		   "\"accept_past_conflicts\":%s,\"files\":{",
		   state, opts->dry_run ? "true" : "false",
		   opts->accept_past ? "true" : "false");
	for (int t = 0, n = 0; t < IMP_TABLE_COUNT; t++) {
		if (!rep->file[t][0])
			continue;
		buf_printf(o, "%s\"%s\":{\"file\":", n++ ? "," : "",
			   imp_table_name((enum imp_table)t));
		json_str(o, rep->file[t]);
		buf_printf(o, ",\"rows\":%u}", rep->rows[t]);
	}
	buf_put(o, "},", 2);
	json_counts(o, "planned", rep->planned);
	buf_put(o, ",", 1);
	json_counts(o, "existing", rep->existing);
	buf_put(o, ",", 1);
	json_counts(o, "written", rep->written);
	/* what the seed's Step 3 counts should find in PostgreSQL */
	for (int k = 0; k < IMP_C_COUNT; k++)
		all[k] = rep->planned[k] + rep->existing[k];
	buf_printf(o,
		   ",\"expected\":{\"class_series\":%" PRIu64
		   ",\"class_events\":%" PRIu64 ",\"registrations\":%" PRIu64
		   "},\"errors\":%u,\"accepted\":%u,\"entries\":%u,"
		   "\"lsn\":%" PRIu64 ",\"problems\":[",
		   all[IMP_C_SERIES] + all[IMP_C_ONE_OFF], all[IMP_C_EVENTS],
		   all[IMP_C_BOOKINGS], rep->errors, rep->accepted,
		   rep->entries, rep->lsn);
	for (uint32_t i = 0; i < rep->kept; i++) {
		const struct imp_problem *p = &rep->problem[i];
		char where[300];
		snprintf(where, sizeof(where), "%s:%u",
			 rep->file[p->table][0]
				 ? rep->file[p->table]
				 : imp_table_name((enum imp_table)p->table),
			 p->line);
		buf_printf(o, "%s{\"at\":", i ? "," : "");
		json_str(o, where);
		buf_printf(o, ",\"severity\":\"%s\",\"message\":",
			   p->accepted ? "accepted" : "error");
		json_str(o, p->msg);
		buf_put(o, "}", 1);
	}
	buf_put(o, "]", 1);
	if (rep->failure[0]) {
		buf_put(o, ",\"failure\":", 11);
		json_str(o, rep->failure);
	}
	buf_put(o, "}\n", 2);
}

/* ---- the server's import thread ---- */

struct import_server {
	node *node;
	unsigned port_index;
	pthread_mutex_t lock;
	pthread_t thread;
	bool running, joinable;
	const char *state; /* "none", "running", "done", "refused", "failed" */
	struct import_src src;
	struct import_opts opts;
	struct import_report *rep;
	struct buf json; /* the last report */
};

struct import_server *import_server_new(void)
{
	struct import_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->state = "none";
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void import_server_attach(struct import_server *s, node *n, unsigned port_index)
{
	pthread_mutex_lock(&s->lock);
	s->node = n;
	s->port_index = port_index;
	pthread_mutex_unlock(&s->lock);
}

void import_server_free(struct import_server *s)
{
	if (!s)
		return;
	if (s->joinable)
		pthread_join(s->thread, NULL);
	import_src_free(&s->src);
	free(s->rep);
	buf_free(&s->json);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void *import_main(void *arg)
{
	struct import_server *s = arg;
	core *c = node_core(s->node);
	core_port *p = core_port_get(c, s->port_index);
	struct buf out = { 0 };
	const char *state;
	int rc;

	rc = import_run(&s->src, &s->opts, c, p, s->rep);
	if (rc == 0 && s->rep->lsn)
		rc = node_wait_durable(s->node, s->rep->lsn);
	if (rc && !s->rep->failure[0])
		snprintf(s->rep->failure, sizeof(s->rep->failure), "%s",
			 strerror(-rc));
	state = rc ? "failed" : s->rep->refused ? "refused" : "done";
	import_report_json(s->rep, state, &s->opts, &out);
	pthread_mutex_lock(&s->lock);
	buf_free(&s->json);
	s->json = out;
	s->state = state;
	s->running = false;
	import_src_free(&s->src);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int import_server_start(struct import_server *s, const char *dir,
			const char *const *files, unsigned file_count,
			const struct import_opts *opts, char *msg,
			size_t msg_size)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	if (s->running || !s->node) {
		pthread_mutex_unlock(&s->lock);
		snprintf(msg, msg_size, "%s",
			 s->node ? "an import is running" : "starting");
		return s->node ? -EBUSY : -EAGAIN;
	}
	if (s->joinable) {
		pthread_join(s->thread, NULL);
		s->joinable = false;
	}
	rc = dir ? import_src_dir(&s->src, dir, msg, msg_size)
		 : import_src_files(&s->src, files, file_count, msg, msg_size);
	if (rc == 0 && !s->rep && !(s->rep = malloc(sizeof(*s->rep))))
		rc = -ENOMEM;
	if (rc == 0) {
		s->opts = *opts;
		rc = -pthread_create(&s->thread, NULL, import_main, s);
	}
	if (rc == 0) {
		s->running = s->joinable = true;
		s->state = "running";
	} else {
		import_src_free(&s->src);
		if (!msg[0])
			snprintf(msg, msg_size, "%s", strerror(-rc));
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void import_server_status(struct import_server *s, struct buf *out)
{
	pthread_mutex_lock(&s->lock);
	if (s->running || !s->json.size)
		buf_printf(out, "{\"state\":\"%s\"}\n", s->state);
	else
		buf_put(out, s->json.data, s->json.size);
	pthread_mutex_unlock(&s->lock);
}
