/*
 * bookctl.c: the command line of bookd, on the client library
 * (bookd_client.h) over the binary protocol. `bookctl --help`.
 *
 * Every command is one request (import: one per row) and prints the
 * answer as JSON; a refusal prints `error: <code>: <message>` on stderr and
 * exits 1, a usage error 2, a transport error 3. Booking and cancelling
 * need an idempotency key: --idem, or a random one (printed on stderr so a
 * retry can reuse it).
 *
 * import: CSV with a header row (RFC 4180 quoting). Each row is checked,
 * then sent as one request, so a row is applied whole or not at all; bad
 * rows are reported with their line number and the rest go on; the exit
 * status is 1 if any row failed. Rows carry a key derived from their
 * content, so running an import again applies nothing twice.
 *   customers: id (or customer_id), email?, name (or full_name)?
 *   bookings:  event_id, customer_id, status? (rows not confirmed,
 *              pending_payment or waitlisted are skipped), payment?
 */
#include "bookd_version.h"
#include "bookd_client.h"
#include "bookd_assert.h"
#include "bookctl_seed.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CTL_ARG_COUNT_MAX 64
#define CTL_CSV_FIELD_COUNT_MAX 64
#define CTL_CSV_RECORD_SIZE_MAX 65536

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_TRANSPORT = 3 };

static const char *usage_text =
	"usage: bookctl [--addr HOST:PORT|PATH] [--key KEY] COMMAND [ARGS]\n"
	"\n"
	"  --addr   bookd's binary listener (env BOOKD_BINARY_LISTEN, default 127.0.0.1:7070)\n"
	"  --key    service key, anon key or customer JWT (env BOOKD_SERVICE_KEY)\n"
	"  --idem   idempotency key for the command (book and cancel make one if absent)\n"
	"  --version  the version and build type; --help  this text\n"
	"\n"
	"commands:\n"
	"  org create --name N --timezone TZ [--cancel-cutoff-hours H]\n"
	"         [--hold-minutes M] [--horizon-days D]\n"
	"  org patch --id ID [--cancel-cutoff-hours H] [--hold-minutes M]\n"
	"         [--horizon-days D]   (hold, horizon 0: the server's)\n"
	"  location create --org ID --name N\n"
	"  instructor create --org ID --name N\n"
	"  customer create --id C [--email E] [--name N]\n"
	"  series [create] --org ID --location ID --instructor ID --title T --capacity N\n"
	"         [--waitlist N] [--price CENTS --currency EUR] --timezone TZ\n"
	"         --weekdays MO,WE --start HH:MM --duration MIN --first YYYY-MM-DD\n"
	"         [--last YYYY-MM-DD] [--skip YYYY-MM-DD,...]\n"
	"  series patch ID [--title T] [--capacity N] [--waitlist N]\n"
	"         [--price CENTS] [--currency EUR] [--start HH:MM] [--duration MIN]\n"
	"         [--weekdays MO,WE] [--last YYYY-MM-DD] [--from YYYY-MM-DD]\n"
	"         (from a date on, today if none: future classes change, booked\n"
	"         ones are kept, detached)\n"
	"  series end ID --from YYYY-MM-DD   (its classes from then on cancelled,\n"
	"         their customers told; or --last YYYY-MM-DD, the last day kept)\n"
	"  generate [--until YYYY-MM-DD] [--series ID]\n"
	"  book --event ID --customer C [--payment none|stripe]\n"
	"  cancel --booking ID\n"
	"  show event|booking|org|location|instructor|series ID\n"
	"  list [--org ID] [--location ID] [--instructor ID] [--from T] [--to T]\n"
	"       [--limit N] [--cursor C]        (T: YYYY-MM-DD or RFC 3339 UTC)\n"
	"  list orgs|locations|instructors|series [--org ID] [--limit N] [--cursor C]\n"
	"  bookings --customer C [--limit N]\n"
	"  patch --event ID [--capacity N] [--cancel | --restore] [--instructor ID]\n"
	"        [--location ID] [--start T] [--duration MIN] [--title TEXT]\n"
	"  status\n"
	"  import customers FILE | import bookings FILE   (CSV with a header row)\n"
	"  import seed DIR|FILE.csv... [--dry-run] [--accept-past-conflicts]\n"
	"         [--http URL]  the seed's backup tables (a directory of\n"
	"         class_instances_backup.csv, ..., or the files, each known by\n"
	"         its name or header) with their history, by bookd's POST\n"
	"         /v1/admin/import (bookd reads them); --http: bookd's HTTP API\n"
	"         (env BOOKD_HTTP_URL, default http://127.0.0.1:8080); the\n"
	"         report (JSON) on stdout\n";

struct opts {
	const char *names[CTL_ARG_COUNT_MAX];
	const char *values[CTL_ARG_COUNT_MAX];
	unsigned count;
	const char *pos[CTL_ARG_COUNT_MAX];
	unsigned pos_count;
};

static const char *opt(const struct opts *o, const char *name)
{
	ASSERT(o->count <= CTL_ARG_COUNT_MAX);
	ASSERT(name && name[0] != '-'); /* a flag's name without its "--" */
	for (unsigned i = 0; i < o->count; i++)
		if (strcmp(o->names[i], name) == 0)
			return o->values[i];
	return NULL;
}

static bool flag(const struct opts *o, const char *name)
{
	return opt(o, name) != NULL;
}

static int die_usage(const char *fmt, const char *arg)
{
	ASSERT(fmt && arg); /* every message names what it is about */
	fprintf(stderr, "bookctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(bookctl --help for usage)\n");
	return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static int need_u64(const struct opts *o, const char *name, uint64_t *out)
{
	const char *v = opt(o, name);

	if (!v)
		return die_usage("--%s is required", name);
	if (!parse_u64(v, out))
		return die_usage("--%s: not a number", name);
	return 0;
}

static int want_u64(const struct opts *o, const char *name, uint64_t *out)
{
	const char *v = opt(o, name);

	if (v && !parse_u64(v, out))
		return die_usage("--%s: not a number", name);
	return 0;
}

/* A 32-bit field from an optional number flag: dflt when absent. */
static int want_u32(const struct opts *o, const char *name, uint32_t dflt,
		    uint32_t *out)
{
	uint64_t v = dflt;
	int rc = want_u64(o, name, &v);

	*out = (uint32_t)v; /* as the server reads it: the low 32 bits */
	return rc;
}

static int need_str(const struct opts *o, const char *name, const char **out)
{
	*out = opt(o, name);
	if (!*out)
		return die_usage("--%s is required", name);
	return 0;
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]Z" as ms. */
static bool parse_time(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
		return false;
	if (s[n] == 'T' || s[n] == 't') {
		int m = 0;
		if (sscanf(s + n + 1, "%2d:%2d%n", &h, &mi, &m) != 2)
			return false;
		n += 1 + m;
		if (s[n] == ':') {
			if (sscanf(s + n + 1, "%2d%n", &sec, &m) != 1)
				return false;
			n += 1 + m;
		}
		if (s[n] == 'Z' || s[n] == 'z')
			n++;
	}
	if (s[n] != '\0')
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) * 1000;
	return true;
}

static void fmt_time(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
	ASSERT(n > 0 && n < 40); /* any int64 ms: a year of at most 9 digits */
}

/* ---- printing ---- */

static void print_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_booking(const char *indent, const struct bc_booking *b)
{
	char t[40];

	printf("{\n%s  \"id\": \"%" PRIu64 "\",\n%s  \"event_id\": \"%" PRIu64
	       "\",\n",
	       indent, b->id, indent, b->event_id);
	printf("%s  \"customer_id\": ", indent);
	print_json_str(b->customer_id);
	printf(",\n%s  \"status\": \"%s\"", indent,
	       bc_booking_status_name(b->status));
	if (b->position)
		printf(",\n%s  \"position\": %u", indent, b->position);
	if (b->hold_expires_at) {
		fmt_time(b->hold_expires_at, t);
		printf(",\n%s  \"hold_expires_at\": \"%s\"", indent, t);
	}
	fmt_time(b->created_at, t);
	printf(",\n%s  \"created_at\": \"%s\"\n%s}", indent, t, indent);
}

static void print_event(const char *indent, const struct bc_event *e)
{
	char t[40];

	fmt_time(e->start_at, t);
	printf("{\n%s  \"id\": \"%" PRIu64 "\", \"series_id\": \"%" PRIu64
	       "\", \"org_id\": \"%" PRIu64 "\",\n",
	       indent, e->id, e->series_id, e->org_id);
	printf("%s  \"location_id\": \"%" PRIu64
	       "\", \"instructor_id\": \"%" PRIu64 "\",\n%s  \"title\": ",
	       indent, e->location_id, e->instructor_id, indent);
	print_json_str(e->title);
	printf(",\n%s  \"start_at\": \"%s\", \"duration_min\": %u,\n", indent,
	       t, e->duration_min);
	printf("%s  \"capacity\": %u, \"booked\": %u, \"held\": %u, \"available\": %u,\n",
	       indent, e->capacity, e->booked, e->held, e->available);
	printf("%s  \"waitlist_length\": %u, \"waitlist_capacity\": %u,\n",
	       indent, e->waitlist_length, e->waitlist_capacity);
	printf("%s  \"price_cents\": %u, \"currency\": \"%s\", \"status\": \"%s\"\n%s}",
	       indent, e->price_cents, e->currency,
	       bc_event_status_name(e->status), indent);
}

/* "a,b,c" as a JSON array of strings. */
static void print_str_list(const char *s)
{
	putchar('[');
	while (*s) {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		printf("\"%.*s\"%s", (int)n, s, end ? ", " : "");
		s += n + (end != NULL);
	}
	putchar(']');
}

/* A catalogue object as the HTTP API shows it. */
static void print_cat(const char *indent, const struct bc_cat *v)
{
	printf("{\"id\": \"%" PRIu64 "\"", v->id);
	if (v->kind != BC_CAT_ORG)
		printf(", \"org_id\": \"%" PRIu64 "\"", v->org_id);
	if (v->kind != BC_CAT_SERIES) {
		printf(", \"name\": ");
		print_json_str(v->name);
		if (v->kind == BC_CAT_ORG) {
			printf(", \"timezone\": ");
			print_json_str(v->timezone);
			printf(", \"cancel_cutoff_hours\": %u",
			       v->cancel_cutoff_hours);
			printf(v->hold_minutes ? ", \"hold_minutes\": %u"
					       : ", \"hold_minutes\": null",
			       v->hold_minutes);
			printf(v->horizon_days ? ", \"horizon_days\": %u"
					       : ", \"horizon_days\": null",
			       v->horizon_days);
		}
		putchar('}');
		return;
	}
	printf(",\n%s  \"location_id\": \"%" PRIu64
	       "\", \"instructor_id\": \"%" PRIu64 "\",\n%s  \"title\": ",
	       indent, v->location_id, v->instructor_id, indent);
	print_json_str(v->name);
	printf(",\n%s  \"capacity\": %u, \"waitlist_capacity\": %u, "
	       "\"price_cents\": %u, \"currency\": ",
	       indent, v->capacity, v->waitlist_capacity, v->price_cents);
	if (v->currency[0])
		print_json_str(v->currency);
	else
		printf("null");
	printf(",\n%s  \"timezone\": ", indent);
	print_json_str(v->timezone);
	printf(", \"weekdays\": ");
	print_str_list(v->weekdays);
	printf(", \"start_time\": \"%s\", \"duration_min\": %u,\n",
	       v->start_time, v->duration_min);
	printf("%s  \"first_date\": \"%s\", \"last_date\": ", indent,
	       v->first_date);
	if (v->last_date[0])
		printf("\"%s\"", v->last_date);
	else
		printf("null");
	printf(", \"skip_dates\": ");
	print_str_list(v->skip_dates);
	printf("\n%s}", indent);
}

/* The items of a list answer, as print_list prints them. */
typedef void (*print_item_fn)(const char *indent, const void *item);

static void print_event_item(const char *indent, const void *e)
{
	print_event(indent, e);
}

static void print_booking_item(const char *indent, const void *b)
{
	print_booking(indent, b);
}

static void print_cat_item(const char *indent, const void *v)
{
	print_cat(indent, v);
}

/* The catalogue's kinds by their names in show (singular) and list
 * (plural); 0 when none. */
static enum bc_cat_kind cat_kind(const char *s, bool plural)
{
	static const char *const one[] = { "", "org", "location", "instructor",
					   "series" };
	static const char *const many[] = { "", "orgs", "locations",
					    "instructors", "series" };

	for (int k = BC_CAT_ORG; k <= BC_CAT_SERIES; k++)
		if (strcmp(s, plural ? many[k] : one[k]) == 0)
			return (enum bc_cat_kind)k;
	return 0;
}

/* {"key": item} and a newline. */
static void print_one(const char *key, const void *item, print_item_fn print)
{
	printf("{\"%s\": ", key);
	print("", item);
	printf("}\n");
}

/* {"key": [ and the n items (each size bytes), one a line, and the ]; what
 * follows in the object is the caller's. */
static void print_list(const char *key, const void *items, size_t size,
		       uint32_t n, print_item_fn item)
{
	printf("{\"%s\": [", key);
	for (uint32_t i = 0; i < n; i++) {
		printf(i ? ",\n  " : "\n  ");
		item("  ", (const char *)items + i * size);
	}
	printf("%s]", n ? "\n" : "");
}

/* rc: < 0 transport, BC_OK, or a refusal. Returns the exit status. */
static int report(bc_client *c, int rc)
{
	const struct bc_answer *a = bc_last(c);

	if (rc < 0) {
		fprintf(stderr, "bookctl: transport: %s\n", strerror(-rc));
		if (a->req_id == 0 && a->code != BC_OK && a->code_name[0])
			fprintf(stderr, "bookctl: server: %s: %s\n",
				a->code_name, a->message);
		return EXIT_TRANSPORT;
	}
	if (rc != BC_OK) {
		fprintf(stderr, "error: %s: %s", a->code_name, a->message);
		if (a->retry_after_s)
			fprintf(stderr, " (retry after %u s)",
				a->retry_after_s);
		fputc('\n', stderr);
		return EXIT_REFUSED;
	}
	return 0;
}

static void random_key(char out[40])
{
	unsigned char b[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof(b)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(out, 40, "ctl-%lld-%ld-%d", (long long)ts.tv_sec,
			 ts.tv_nsec, (int)getpid());
		return;
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	ASSERT(strlen(out) == 32);
}

static const char *idem_key(const struct opts *o, char buf[40], bool make)
{
	const char *k = opt(o, "idem");

	if (k || !make)
		return k;
	random_key(buf);
	ASSERT(buf[0] && strlen(buf) <= BC_KEY_SIZE_MAX); /* a valid key */
	fprintf(stderr, "idempotency key: %s\n", buf);
	return buf;
}

/* ---- CSV ---- */

struct csv {
	FILE *f;
	unsigned line;	    /* the line the current record starts on */
	unsigned next_line; /* the line after it */
	char buf[CTL_CSV_RECORD_SIZE_MAX];
	char *fields[CTL_CSV_FIELD_COUNT_MAX];
	unsigned count;
};

/* The next record: 1, 0 at the end, -1 malformed (reported; the reader
 * skips to the record's end). */
static int csv_next(struct csv *r, char *err, size_t err_size)
{
	size_t n = 0;
	bool quoted = false, field_start = true, bad = false;
	int ch;

	r->count = 0;
	r->line = r->next_line;
	ch = fgetc(r->f);
	if (ch == EOF)
		return 0;
	r->fields[r->count++] = r->buf;
	for (;; ch = fgetc(r->f)) {
		if (ch == EOF) {
			if (quoted && !bad) {
				snprintf(err, err_size, "unterminated quote");
				bad = true;
			}
			break;
		}
		if (ch == '\n')
			r->next_line++;
		if (quoted) {
			if (ch == '"') {
				int nx = fgetc(r->f);
				if (nx == '"') {
					ch = '"';
				} else {
					quoted = false;
					if (nx != EOF)
						ungetc(nx, r->f);
					continue;
				}
			}
		} else if (ch == '"' && field_start) {
			quoted = true;
			field_start = false;
			continue;
		} else if (ch == ',' || ch == '\n' || ch == '\r') {
			if (ch == '\r') {
				int nx = fgetc(r->f);
				if (nx != '\n' && nx != EOF)
					ungetc(nx, r->f);
				if (nx == '\n')
					r->next_line++;
				ch = '\n';
			}
			if (n >= sizeof(r->buf))
				bad = true;
			else
				r->buf[n++] = '\0';
			if (ch == '\n')
				break;
			if (r->count == CTL_CSV_FIELD_COUNT_MAX) {
				if (!bad)
					snprintf(err, err_size,
						 "more than %d fields",
						 CTL_CSV_FIELD_COUNT_MAX);
				bad = true;
			} else if (!bad) {
				r->fields[r->count++] = r->buf + n;
			}
			field_start = true;
			continue;
		} else if (ch == '"') {
			if (!bad)
				snprintf(err, err_size,
					 "a quote inside an unquoted field");
			bad = true;
		}
		field_start = false;
		if (ch == '\0') {
			if (!bad)
				snprintf(err, err_size, "a NUL byte");
			bad = true;
		}
		if (n + 1 >= sizeof(r->buf)) {
			if (!bad)
				snprintf(err, err_size, "record over %d bytes",
					 CTL_CSV_RECORD_SIZE_MAX);
			bad = true;
		} else {
			r->buf[n++] = (char)ch;
		}
	}
	if (n < sizeof(r->buf))
		r->buf[n] = '\0';
	else
		r->buf[sizeof(r->buf) - 1] = '\0';
	ASSERT(r->count >= 1 && r->count <= CTL_CSV_FIELD_COUNT_MAX);
	ASSERT(r->next_line >= r->line);
	return bad ? -1 : 1;
}

static int csv_col(const struct csv *hdr, const char *const *names)
{
	for (unsigned i = 0; i < hdr->count; i++)
		for (const char *const *n = names; *n; n++)
			if (strcasecmp(hdr->fields[i], *n) == 0)
				return (int)i;
	return -1;
}

static const char *csv_get(const struct csv *r, int col)
{
	ASSERT(r->count <= CTL_CSV_FIELD_COUNT_MAX);
	if (col < 0 || (unsigned)col >= r->count)
		return NULL;
	return r->fields[col];
}

static bool customer_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > BC_CUSTOMER_ID_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("._:@-", ch)))
			return false;
	}
	return true;
}

/* A key for a row from its content: importing again applies nothing
 * twice (FNV-1a 64 of the fields). */
static void row_key(const char *kind, const char *a, const char *b,
		    const char *d, char out[96])
{
	uint64_t h = 0xcbf29ce484222325ull;
	const char *parts[3] = { a, b, d };

	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i] ? parts[i] : ""; *p; p++) {
			h ^= (unsigned char)*p;
			h *= 0x100000001b3ull;
		}
		h ^= 0xff;
		h *= 0x100000001b3ull;
	}
	int n = snprintf(out, 96, "import:%s:%016" PRIx64, kind, h);

	ASSERT(n > 0 && n < 96); /* kind: "customers" or "bookings" */
	ASSERT(n <= BC_KEY_SIZE_MAX);
}

static int cmd_import(bc_client *c, const struct opts *o)
{
	struct csv *hdr, *row;
	const char *kind = o->pos_count > 1 ? o->pos[1] : NULL;
	const char *path = o->pos_count > 2 ? o->pos[2] : NULL;
	bool customers;
	FILE *f;
	char err[160];
	unsigned ok = 0, bad = 0, skipped = 0;
	int c_id, c_email, c_name, c_event, c_status, c_pay, rc, exit_rc = 0;

	if (!kind || !path)
		return die_usage("import: want customers|bookings FILE%s", "");
	if (strcmp(kind, "customers") != 0 && strcmp(kind, "bookings") != 0)
		return die_usage("import: unknown kind %s", kind);
	customers = strcmp(kind, "customers") == 0;
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) {
		fprintf(stderr, "bookctl: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	hdr = calloc(1, sizeof(*hdr));
	row = calloc(1, sizeof(*row));
	if (!hdr || !row) {
		fprintf(stderr, "bookctl: out of memory\n");
		exit_rc = EXIT_TRANSPORT;
		goto out;
	}
	hdr->f = row->f = f;
	hdr->next_line = 1;
	if (csv_next(hdr, err, sizeof(err)) != 1) {
		fprintf(stderr, "%s:1: no header row\n", path);
		exit_rc = EXIT_REFUSED;
		goto out;
	}
	row->next_line = hdr->next_line;
	{
		static const char *const id_names[] = { "id", "customer_id",
							NULL };
		static const char *const cust_names[] = { "customer_id", NULL };
		static const char *const email_names[] = { "email", NULL };
		static const char *const name_names[] = { "name", "full_name",
							  NULL };
		static const char *const event_names[] = { "event_id", NULL };
		static const char *const status_names[] = { "status", NULL };
		static const char *const pay_names[] = { "payment", NULL };
		c_id = csv_col(hdr, customers ? id_names : cust_names);
		c_email = csv_col(hdr, email_names);
		c_name = csv_col(hdr, name_names);
		c_event = csv_col(hdr, event_names);
		c_status = csv_col(hdr, status_names);
		c_pay = csv_col(hdr, pay_names);
	}
	if (c_id < 0 || (!customers && c_event < 0)) {
		fprintf(stderr, "%s:1: header needs %s\n", path,
			customers ? "id (or customer_id)"
				  : "event_id and customer_id");
		exit_rc = EXIT_REFUSED;
		goto out;
	}
	for (;;) {
		const char *id, *email, *name, *status, *pay;
		uint64_t event_id = 0;
		char key[96];
		err[0] = '\0';
		rc = csv_next(row, err, sizeof(err));
		if (rc == 0)
			break;
		if (rc < 0) {
			fprintf(stderr, "%s:%u: %s\n", path, row->line, err);
			bad++;
			continue;
		}
		if (row->count == 1 && row->fields[0][0] == '\0')
			continue; /* an empty line */
		if (row->count != hdr->count) {
			fprintf(stderr, "%s:%u: %u fields, the header has %u\n",
				path, row->line, row->count, hdr->count);
			bad++;
			continue;
		}
		id = csv_get(row, c_id);
		email = csv_get(row, c_email);
		name = csv_get(row, c_name);
		if (!customer_id_ok(id)) {
			fprintf(stderr,
				"%s:%u: customer id \"%.80s\": 1-64 of A-Za-z0-9._:@-\n",
				path, row->line, id);
			bad++;
			continue;
		}
		if (customers) {
			if ((email && strlen(email) >= BC_NAME_SIZE_MAX) ||
			    (name && strlen(name) >= BC_NAME_SIZE_MAX)) {
				fprintf(stderr,
					"%s:%u: email or name over %d bytes\n",
					path, row->line, BC_NAME_SIZE_MAX - 1);
				bad++;
				continue;
			}
			if (email && !*email)
				email = NULL;
			if (name && !*name)
				name = NULL;
			row_key("customer", id, email, name, key);
			rc = bc_customer_create(c, id, email, name, key);
		} else {
			enum bc_payment p = BC_PAY_NONE;
			status = csv_get(row, c_status);
			pay = csv_get(row, c_pay);
			if (!parse_u64(csv_get(row, c_event), &event_id) ||
			    event_id == 0) {
				fprintf(stderr,
					"%s:%u: event_id \"%.40s\": not an id\n",
					path, row->line, csv_get(row, c_event));
				bad++;
				continue;
			}
			if (status && *status &&
			    strcmp(status, "confirmed") != 0 &&
			    strcmp(status, "pending_payment") != 0 &&
			    strcmp(status, "waitlisted") != 0) {
				skipped++;
				continue;
			}
			if (pay && strcmp(pay, "stripe") == 0)
				p = BC_PAY_STRIPE;
			else if (status &&
				 strcmp(status, "pending_payment") == 0)
				p = BC_PAY_STRIPE;
			row_key("booking", csv_get(row, c_event), id, NULL,
				key);
			rc = bc_book(c, event_id, id, key, p, NULL);
		}
		if (rc < 0) {
			fprintf(stderr,
				"%s:%u: transport: %s (import stopped)\n", path,
				row->line, strerror(-rc));
			exit_rc = EXIT_TRANSPORT;
			goto out;
		}
		if (rc != BC_OK && !(rc == BC_ALREADY_BOOKED && !customers)) {
			fprintf(stderr, "%s:%u: %s: %s\n", path, row->line,
				bc_last(c)->code_name, bc_last(c)->message);
			bad++;
			continue;
		}
		ok++;
	}
	printf("{\"imported\": %u, \"failed\": %u, \"skipped\": %u}\n", ok, bad,
	       skipped);
	if (bad)
		exit_rc = EXIT_REFUSED;
out:
	free(hdr);
	free(row);
	if (f != stdin)
		fclose(f);
	return exit_rc;
}

/* ---- commands ---- */

/* An org's settings from --cancel-cutoff-hours, --hold-minutes and
 * --horizon-days (-1: not given); how many were given into *given. */
static int org_settings_opts(const struct opts *o, struct bc_org_settings *s,
			     unsigned *given)
{
	static const char *const names[] = { "cancel-cutoff-hours",
					     "hold-minutes", "horizon-days" };
	int32_t *at[] = { &s->cancel_cutoff_hours, &s->hold_minutes,
			  &s->horizon_days };

	*given = 0;
	for (unsigned i = 0; i < 3; i++) {
		uint64_t v = UINT64_MAX;
		int rc = want_u64(o, names[i], &v);

		if (rc)
			return rc;
		*at[i] = -1;
		if (v == UINT64_MAX)
			continue;
		if (v > UINT16_MAX)
			return die_usage("--%s: too large", names[i]);
		*at[i] = (int32_t)v;
		(*given)++;
	}
	return 0;
}

/* {"org": {"id": "N", "cancel_cutoff_hours": H, "hold_minutes": M or null,
 * "horizon_days": D or null}} (settings when the answer had them) */
static void print_org(bc_client *c, uint64_t id)
{
	const struct bc_answer *a = bc_last(c);
	const struct bc_org_settings *s = &a->org_settings;

	printf("{\"org\": {\"id\": \"%" PRIu64 "\"", id);
	if (a->has_org_settings) {
		printf(", \"cancel_cutoff_hours\": %" PRId32,
		       s->cancel_cutoff_hours);
		if (s->hold_minutes)
			printf(", \"hold_minutes\": %" PRId32, s->hold_minutes);
		else
			printf(", \"hold_minutes\": null");
		if (s->horizon_days)
			printf(", \"horizon_days\": %" PRId32, s->horizon_days);
		else
			printf(", \"horizon_days\": null");
	}
	printf("}%s}\n", a->replayed ? ", \"replayed\": true" : "");
}

static int cmd_org(bc_client *c, const struct opts *o)
{
	struct bc_org_settings s;
	const char *name, *tz;
	char kb[40];
	const char *key = idem_key(o, kb, false);
	uint64_t id = 0;
	unsigned given;
	int rc;

	if (o->pos_count < 2)
		return die_usage("org: want %s", "create or patch");
	if ((rc = org_settings_opts(o, &s, &given)))
		return rc;
	if (strcmp(o->pos[1], "create") == 0) {
		if ((rc = need_str(o, "name", &name)) ||
		    (rc = need_str(o, "timezone", &tz)))
			return rc;
		rc = bc_org_create_with(c, name, tz, given ? &s : NULL, key,
					&id);
	} else if (strcmp(o->pos[1], "patch") == 0) {
		if ((rc = need_u64(o, "id", &id)))
			return rc;
		if (!given)
			return die_usage("org patch: nothing to change (%s)",
					 "--cancel-cutoff-hours, "
					 "--hold-minutes, --horizon-days");
		rc = bc_org_patch(c, id, &s, key, NULL);
	} else {
		return die_usage("org: want create or patch, not %s",
				 o->pos[1]);
	}
	if (rc == BC_OK)
		print_org(c, id);
	return report(c, rc);
}

static int cmd_create(bc_client *c, const struct opts *o, const char *what)
{
	uint64_t org = 0, id = 0;
	const char *name, *cust;
	char kb[40];
	const char *key = idem_key(o, kb, false);
	int rc;

	if (strcmp(what, "location") == 0 || strcmp(what, "instructor") == 0) {
		if ((rc = need_u64(o, "org", &org)) ||
		    (rc = need_str(o, "name", &name)))
			return rc;
		rc = what[0] == 'l'
			     ? bc_location_create(c, org, name, key, &id)
			     : bc_instructor_create(c, org, name, key, &id);
	} else if (strcmp(what, "customer") == 0) {
		if ((rc = need_str(o, "id", &cust)))
			return rc;
		rc = bc_customer_create(c, cust, opt(o, "email"),
					opt(o, "name"), key);
		if (rc == BC_OK) {
			printf("{\"customer\": {\"id\": ");
			print_json_str(cust);
			printf("}}\n");
		}
		return report(c, rc);
	} else {
		return die_usage("create: unknown kind %s", what);
	}
	if (rc == BC_OK)
		printf("{\"%s\": {\"id\": \"%" PRIu64 "\"}%s}\n", what, id,
		       bc_last(c)->replayed ? ", \"replayed\": true" : "");
	return report(c, rc);
}

/* The day before "YYYY-MM-DD" into out (11 bytes); false when no date. */
static bool day_before(const char *d, char out[11])
{
	struct tm tm = { 0 };
	int y, mo, dd, n = 0;
	time_t t;

	if (sscanf(d, "%4d-%2d-%2d%n", &y, &mo, &dd, &n) != 3 || d[n] ||
	    y < 1971 || mo < 1 || mo > 12 || dd < 1 || dd > 31)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = dd - 1;
	tm.tm_hour = 12;
	t = timegm(&tm);
	if (!gmtime_r(&t, &tm))
		return false;
	if (tm.tm_year + 1900 > 9999)
		return false;
	return strftime(out, 11, "%Y-%m-%d", &tm) == 10;
}

/* A signed field from an optional number flag: -1 when absent. */
static int want_i64(const struct opts *o, const char *name, int64_t *out)
{
	uint64_t v = 0;
	int rc;

	*out = -1;
	if (!opt(o, name))
		return 0;
	if ((rc = need_u64(o, name, &v)))
		return rc;
	if (v > INT64_MAX)
		return die_usage("--%s: too large", name);
	*out = (int64_t)v;
	return 0;
}

/* series patch ID ..., series end ID --from D (or --last D). */
static int cmd_series_edit(bc_client *c, const struct opts *o)
{
	const struct bc_answer *a;
	char kb[40], last[11];
	const char *key = idem_key(o, kb, false);
	uint64_t id;
	int rc;

	if (o->pos_count < 3 || !parse_u64(o->pos[2], &id))
		return die_usage("series %s: want the series' ID", o->pos[1]);
	if (strcmp(o->pos[1], "end") == 0) {
		const char *from = opt(o, "from"), *l = opt(o, "last");
		if ((from == NULL) == (l == NULL))
			return die_usage("series end: want --from YYYY-MM-DD "
					 "or --last YYYY-MM-DD%s",
					 "");
		if (from && !day_before(from, last))
			return die_usage("--from: not a date: %s", from);
		rc = bc_series_end(c, id, from ? last : l, key);
	} else {
		struct bc_series_patch p = { 0 };
		uint64_t v = 0;
		if ((rc = want_i64(o, "capacity", &p.capacity)) ||
		    (rc = want_i64(o, "waitlist", &p.waitlist_capacity)) ||
		    (rc = want_i64(o, "price", &p.price_cents)) ||
		    (rc = want_u64(o, "duration", &v)))
			return rc;
		if (v > UINT32_MAX)
			return die_usage("--duration: too large%s", "");
		p.duration_min = (uint32_t)v;
		p.title = opt(o, "title");
		p.currency = opt(o, "currency");
		p.start_time = opt(o, "start");
		p.weekdays = opt(o, "weekdays");
		p.last_date = opt(o, "last");
		p.from = opt(o, "from");
		rc = bc_series_patch(c, id, &p, key);
		if (rc == -EINVAL)
			return die_usage("series patch: nothing to change, or a "
					 "bad value%s",
					 "");
	}
	a = bc_last(c);
	if (rc == BC_OK)
		printf("{\"series_id\": \"%" PRIu64 "\", \"regenerated\": %u, "
		       "\"kept\": %u, \"cancelled\": %u%s}\n",
		       a->series_id, a->regenerated, a->kept, a->cancelled,
		       a->replayed ? ", \"replayed\": true" : "");
	return report(c, rc);
}

static int cmd_series(bc_client *c, const struct opts *o)
{
	struct bc_series_spec s = { 0 };
	uint64_t v = 0, id = 0;
	uint32_t generated = 0;
	char kb[40];
	int rc;

	if (o->pos_count >= 2 &&
	    (strcmp(o->pos[1], "patch") == 0 || strcmp(o->pos[1], "end") == 0))
		return cmd_series_edit(c, o);

	if ((rc = need_u64(o, "org", &s.org_id)) ||
	    (rc = need_u64(o, "location", &s.location_id)) ||
	    (rc = need_u64(o, "instructor", &s.instructor_id)) ||
	    (rc = need_str(o, "title", &s.title)) ||
	    (rc = need_str(o, "timezone", &s.timezone)) ||
	    (rc = need_str(o, "weekdays", &s.weekdays)) ||
	    (rc = need_str(o, "start", &s.start_time)) ||
	    (rc = need_str(o, "first", &s.first_date)))
		return rc;
	if ((rc = need_u64(o, "capacity", &v)))
		return rc;
	s.capacity = (uint32_t)v;
	if ((rc = want_u32(o, "duration", 60, &s.duration_min)) ||
	    (rc = want_u32(o, "waitlist", 0, &s.waitlist_capacity)) ||
	    (rc = want_u32(o, "price", 0, &s.price_cents)))
		return rc;
	s.currency = opt(o, "currency");
	s.last_date = opt(o, "last");
	s.skip_dates = opt(o, "skip");
	rc = bc_series_create(c, &s, idem_key(o, kb, false), &id, &generated);
	if (rc == BC_OK)
		printf("{\"series\": {\"id\": \"%" PRIu64
		       "\"}, \"generated\": %u}\n",
		       id, generated);
	return report(c, rc);
}

static int cmd_generate(bc_client *c, const struct opts *o)
{
	uint64_t series = 0;
	uint32_t generated = 0;
	char kb[40];
	int rc;

	if ((rc = want_u64(o, "series", &series)))
		return rc;
	rc = bc_generate(c, opt(o, "until"), series, idem_key(o, kb, false),
			 &generated);
	if (rc == BC_OK)
		printf("{\"generated\": %u}\n", generated);
	return report(c, rc);
}

static int cmd_book(bc_client *c, const struct opts *o)
{
	uint64_t event = 0;
	const char *cust = opt(o, "customer"), *pay = opt(o, "payment");
	enum bc_payment p = BC_PAY_AUTO;
	struct bc_booking b;
	char kb[40];
	int rc;

	if ((rc = need_u64(o, "event", &event)))
		return rc;
	if (pay && strcmp(pay, "none") == 0)
		p = BC_PAY_NONE;
	else if (pay && strcmp(pay, "stripe") == 0)
		p = BC_PAY_STRIPE;
	else if (pay)
		return die_usage("--payment: none or stripe, not %s", pay);
	rc = bc_book(c, event, cust, idem_key(o, kb, true), p, &b);
	if (rc == BC_OK) {
		printf("{\"booking\": ");
		print_booking("", &b);
		printf("%s}\n",
		       bc_last(c)->replayed ? ", \"replayed\": true" : "");
	}
	return report(c, rc);
}

static int cmd_cancel(bc_client *c, const struct opts *o)
{
	uint64_t id = 0;
	struct bc_booking b, p;
	char kb[40];
	int rc;

	if ((rc = need_u64(o, "booking", &id)))
		return rc;
	rc = bc_cancel(c, id, idem_key(o, kb, true), &b, &p);
	if (rc == BC_OK) {
		printf("{\"booking\": ");
		print_booking("", &b);
		printf(",\n\"promoted\": ");
		if (p.id)
			print_booking("", &p);
		else
			printf("null");
		printf("%s}\n",
		       bc_last(c)->replayed ? ", \"replayed\": true" : "");
	}
	return report(c, rc);
}

static int cmd_show(bc_client *c, const struct opts *o)
{
	const char *what = o->pos_count > 1 ? o->pos[1] : NULL;
	uint64_t id;
	int rc;

	if (!what || o->pos_count < 3 || !parse_u64(o->pos[2], &id))
		return die_usage("show: want event|booking|org|location|"
				 "instructor|series ID%s",
				 "");
	if (cat_kind(what, false)) {
		struct bc_cat v;
		rc = bc_cat_get(c, cat_kind(what, false), id, &v);
		if (rc == BC_OK)
			print_one(what, &v, print_cat_item);
	} else if (strcmp(what, "event") == 0) {
		struct bc_event e;
		rc = bc_event_get(c, id, &e);
		if (rc == BC_OK)
			print_one("event", &e, print_event_item);
	} else if (strcmp(what, "booking") == 0) {
		struct bc_booking b;
		rc = bc_booking_get(c, id, &b);
		if (rc == BC_OK)
			print_one("booking", &b, print_booking_item);
	} else {
		return die_usage("show: unknown kind %s", what);
	}
	return report(c, rc);
}

/* list orgs|locations|instructors|series [--org ID] [--limit N]
 * [--cursor C] */
static int cmd_list_cat(bc_client *c, const struct opts *o)
{
	static struct bc_cat items[BC_LIST_LIMIT_MAX];
	enum bc_cat_kind kind = cat_kind(o->pos[1], true);
	char cursor[BC_CURSOR_SIZE];
	uint64_t org = 0, limit = 0;
	uint32_t n = 0;
	int rc;

	if (!kind)
		return die_usage("list: orgs, locations, instructors or "
				 "series, not %s",
				 o->pos[1]);
	if ((rc = want_u64(o, "org", &org)) ||
	    (rc = want_u64(o, "limit", &limit)))
		return rc;
	if (limit > BC_LIST_LIMIT_MAX)
		return die_usage("--limit: at most 500%s", "");
	if (kind == BC_CAT_ORG && org)
		return die_usage("list orgs: no --org%s", "");
	rc = bc_cat_list(c, kind, org, (uint32_t)limit, opt(o, "cursor"), items,
			 BC_LIST_LIMIT_MAX, &n, cursor);
	if (rc == BC_OK) {
		print_list(o->pos[1], items, sizeof(items[0]), n,
			   print_cat_item);
		printf(",\n\"next_cursor\": ");
		if (cursor[0])
			print_json_str(cursor);
		else
			printf("null");
		printf("}\n");
	}
	return report(c, rc);
}

static int cmd_list(bc_client *c, const struct opts *o)
{
	struct bc_list_query q = { 0 };
	static struct bc_event ev[BC_LIST_LIMIT_MAX];
	char cursor[BC_CURSOR_SIZE];
	uint64_t limit = 0;
	uint32_t n = 0;
	const char *t;
	int rc;

	if (o->pos_count > 1)
		return cmd_list_cat(c, o);
	if ((rc = want_u64(o, "org", &q.org_id)) ||
	    (rc = want_u64(o, "location", &q.location_id)) ||
	    (rc = want_u64(o, "instructor", &q.instructor_id)) ||
	    (rc = want_u64(o, "limit", &limit)))
		return rc;
	if (limit > BC_LIST_LIMIT_MAX)
		return die_usage("--limit: at most 500%s", "");
	q.limit = (uint32_t)limit;
	if ((t = opt(o, "from")) && !parse_time(t, &q.from))
		return die_usage("--from: YYYY-MM-DD or RFC 3339 UTC, not %s",
				 t);
	if ((t = opt(o, "to")) && !parse_time(t, &q.to))
		return die_usage("--to: YYYY-MM-DD or RFC 3339 UTC, not %s", t);
	q.cursor = opt(o, "cursor");
	rc = bc_event_list(c, &q, ev, BC_LIST_LIMIT_MAX, &n, cursor);
	if (rc == BC_OK) {
		print_list("events", ev, sizeof(*ev), n, print_event_item);
		printf(",\n\"next_cursor\": ");
		if (cursor[0])
			print_json_str(cursor);
		else
			printf("null");
		printf("}\n");
	}
	return report(c, rc);
}

static int cmd_bookings(bc_client *c, const struct opts *o)
{
	static struct bc_booking b[BC_LIST_LIMIT_MAX];
	uint64_t limit = 50;
	uint32_t n = 0;
	int rc;

	if ((rc = want_u64(o, "limit", &limit)))
		return rc;
	if (limit == 0 || limit > BC_LIST_LIMIT_MAX)
		return die_usage("--limit: 1..500%s", "");
	rc = bc_customer_bookings(c, opt(o, "customer"), b, (uint32_t)limit,
				  &n);
	if (rc == BC_OK) {
		print_list("bookings", b, sizeof(*b), n, print_booking_item);
		printf("}\n");
	}
	return report(c, rc);
}

static int cmd_patch(bc_client *c, const struct opts *o)
{
	struct bc_event_patch p = { .capacity = -1 };
	uint64_t event = 0, v = 0;
	const char *t;
	struct bc_event e;
	char kb[40];
	int rc;

	if ((rc = need_u64(o, "event", &event)))
		return rc;
	if (flag(o, "capacity")) {
		if ((rc = want_u64(o, "capacity", &v)))
			return rc;
		p.capacity = (int64_t)v;
	}
	p.cancel = flag(o, "cancel");
	p.restore = flag(o, "restore");
	if (p.cancel && p.restore)
		return die_usage("--cancel or --restore, not both%s", "");
	if ((rc = want_u64(o, "instructor", &p.instructor_id)) ||
	    (rc = want_u64(o, "location", &p.location_id)) ||
	    (rc = want_u32(o, "duration", 0, &p.duration_min)))
		return rc;
	if ((t = opt(o, "start")) && !parse_time(t, &p.start_at))
		return die_usage("--start: YYYY-MM-DD or RFC 3339 UTC, not %s",
				 t);
	p.title = opt(o, "title");
	rc = bc_event_patch(c, event, &p, idem_key(o, kb, false), &e);
	if (rc == BC_OK)
		print_one("event", &e, print_event_item);
	return report(c, rc);
}

/* A time as a JSON string, or null for 0 (never, not known). */
static void print_time_or_null(int64_t ms)
{
	char t[40];

	if (ms == 0) {
		fputs("null", stdout);
		return;
	}
	fmt_time(ms, t);
	printf("\"%s\"", t);
}

/* "jobs": one line per scheduled job of the server. */
static void print_jobs(const struct bc_status_info *s)
{
	ASSERT(s->job_count <= BC_JOB_COUNT_MAX);
	printf(" \"jobs\": [");
	for (uint32_t i = 0; i < s->job_count; i++) {
		const struct bc_job_info *j = &s->jobs[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		print_json_str(j->name);
		printf(", \"schedule\": ");
		print_json_str(j->schedule);
		printf(", \"active\": %s, \"result\": ",
		       j->active ? "true" : "false");
		print_json_str(j->result);
		printf(", \"last_run_at\": ");
		print_time_or_null(j->last_run_at);
		printf(", \"duration_ms\": %.3f, \"next_run_at\": ",
		       (double)j->duration_us / 1e3);
		print_time_or_null(j->next_run_at);
		printf(", \"runs\": %" PRIu64 ", \"failures\": %" PRIu64
		       ", \"message\": ",
		       j->runs, j->failures);
		print_json_str(j->message);
		putchar('}');
	}
	printf("],\n");
}

static int cmd_status(bc_client *c, const struct opts *o)
{
	struct bc_status_info s;
	int rc = bc_status(c, &s);
	char t[40];

	if (rc == BC_OK) {
		fmt_time(s.started_at, t);
		printf("{\"shards\": %u, \"threads\": %u, \"connections\": %" PRIu64
		       ",\n"
		       " \"wal\": {\"appended_lsn\": %" PRIu64
		       ", \"durable_lsn\": %" PRIu64 ", \"syncs\": %" PRIu64
		       ", \"sync_us_avg\": %" PRIu64
		       ", \"sync_us_max\": %" PRIu64 ", \"error\": %" PRId64
		       "},\n"
		       " \"replication\": {\"state\": \"%s\", \"lag_records\": %" PRIu64
		       ", \"lag_seconds\": %.3f},\n",
		       s.shard_count, s.thread_count, s.conn_count,
		       s.wal_appended_lsn, s.wal_durable_lsn, s.wal_sync_count,
		       s.wal_sync_us_avg, s.wal_sync_us_max, s.wal_error,
		       s.repl_state, s.repl_lag_records, s.repl_lag_seconds);
		print_jobs(&s);
		printf(" \"requests_total\": %" PRIu64
		       ", \"started_at\": \"%s\"}\n",
		       s.requests_total, t);
	}
	return report(c, rc);
}

/* location, instructor and customer: "<what> create" (org: cmd_org). */
static int cmd_create_of(bc_client *c, const struct opts *o)
{
	const char *what = o->pos[0];

	ASSERT(o->pos_count >= 1);
	if (o->pos_count < 2 || strcmp(o->pos[1], "create") != 0)
		return die_usage("%s: want create", what);
	return cmd_create(c, o, what);
}

/* The commands (the first argument) and what runs each. */
static const struct command {
	const char *name;
	int (*run)(bc_client *c, const struct opts *o);
} commands[] = {
	{ "org", cmd_org },
	{ "location", cmd_create_of },
	{ "instructor", cmd_create_of },
	{ "customer", cmd_create_of },
	{ "series", cmd_series },
	{ "generate", cmd_generate },
	{ "book", cmd_book },
	{ "cancel", cmd_cancel },
	{ "show", cmd_show },
	{ "list", cmd_list },
	{ "bookings", cmd_bookings },
	{ "patch", cmd_patch },
	{ "status", cmd_status },
	{ "import", cmd_import },
};

/* Flags with a value, and flags without (--cancel, --restore, --help). */
static bool takes_value(const char *name)
{
	return strcmp(name, "cancel") != 0 && strcmp(name, "help") != 0 &&
	       strcmp(name, "restore") != 0 && strcmp(name, "dry-run") != 0 &&
	       strcmp(name, "accept-past-conflicts") != 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .count = 0 };
	const struct command *cmd = NULL;
	const char *addr, *key;
	char err[256];
	bc_client *c;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("bookctl %s (%s)\n", BOOKD_VERSION,
			       BOOKD_BUILD_TYPE);
			return 0;
		}
		if (strncmp(a, "--", 2) == 0 && a[2]) {
			const char *name = a + 2, *eq = strchr(name, '=');
			if (o.count == CTL_ARG_COUNT_MAX)
				return die_usage("too many flags%s", "");
			if (eq) {
				char *n = strndup(name, (size_t)(eq - name));
				if (!n)
					return EXIT_TRANSPORT;
				o.names[o.count] = n;
				o.values[o.count++] = eq + 1;
			} else if (!takes_value(name)) {
				o.names[o.count] = name;
				o.values[o.count++] = "";
			} else if (i + 1 < argc) {
				o.names[o.count] = name;
				o.values[o.count++] = argv[++i];
			} else {
				return die_usage("--%s needs a value", name);
			}
		} else {
			if (o.pos_count == CTL_ARG_COUNT_MAX)
				return die_usage("too many arguments%s", "");
			o.pos[o.pos_count++] = a;
		}
	}
	if (o.pos_count == 0) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	ASSERT(o.count <= CTL_ARG_COUNT_MAX);
	ASSERT(o.pos_count <= CTL_ARG_COUNT_MAX);
	addr = opt(&o, "addr");
	if (!addr)
		addr = getenv("BOOKD_BINARY_LISTEN");
	if (!addr || !*addr)
		addr = BC_DEFAULT_ADDR;
	key = opt(&o, "key");
	if (!key)
		key = getenv("BOOKD_SERVICE_KEY");
	if (!key || !*key) {
		fprintf(stderr,
			"bookctl: no key: --key or BOOKD_SERVICE_KEY\n");
		return EXIT_USAGE;
	}
	if (strcmp(o.pos[0], "import") == 0 && o.pos_count > 1 &&
	    strcmp(o.pos[1], "seed") == 0) { /* over HTTP, not this protocol */
		const char *http = opt(&o, "http");
		if (o.pos_count < 3)
			return die_usage("import seed: want DIR or FILE.csv...%s",
					 "");
		if (!http)
			http = getenv("BOOKD_HTTP_URL");
		if (!http || !*http)
			http = "http://127.0.0.1:8080";
		return bookctl_import_seed(&o.pos[2], o.pos_count - 2,
					   flag(&o, "dry-run"),
					   flag(&o, "accept-past-conflicts"),
					   http, key);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, o.pos[0]) == 0)
			cmd = &commands[i];
	if (!cmd)
		return die_usage("unknown command %s", o.pos[0]);
	rc = bc_connect(addr, key, &c, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "bookctl: %s\n", err[0] ? err : strerror(-rc));
		return rc == -EACCES ? EXIT_REFUSED : EXIT_TRANSPORT;
	}
	rc = cmd->run(c, &o);
	bc_close(c);
	return rc;
}
