/*
 * evlog.c: the event lines of evlog.h. A line is built in a buffer on the
 * stack (EVLOG_LINE_MAX) and written with one write(2): no lock, no
 * allocation, and lines from several threads never interleave (the kernel
 * appends each write to a pipe or a file whole for lines of this size).
 * The settings are plain globals written once at start, before threads.
 */
#include "evlog.h"

#include "bookd_assert.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum evlog_format evlog_fmt = EVLOG_LOGFMT;
static enum evlog_level evlog_min = EVLOG_INFO;
static int evlog_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

const char *evlog_level_name(enum evlog_level level)
{
	ASSERT((unsigned)level <= EVLOG_ERROR);
	return level_names[level];
}

int evlog_setup(const char *format, const char *level, char *err,
		size_t err_size)
{
	enum evlog_format f = EVLOG_LOGFMT;
	enum evlog_level l = EVLOG_INFO;
	bool found = false;

	if (format && *format) {
		if (!strcmp(format, "json")) {
			f = EVLOG_JSON;
		} else if (strcmp(format, "logfmt")) {
			snprintf(err, err_size,
				 "BOOKD_LOG_FORMAT must be logfmt or json, "
				 "not '%.40s'",
				 format);
			return -EINVAL;
		}
	}
	if (level && *level) {
		for (unsigned i = 0; i <= EVLOG_ERROR; i++)
			if (!strcmp(level, level_names[i])) {
				l = (enum evlog_level)i;
				found = true;
			}
		if (!found) {
			snprintf(err, err_size,
				 "BOOKD_LOG_LEVEL must be debug, info, warn "
				 "or error, not '%.40s'",
				 level);
			return -EINVAL;
		}
	}
	evlog_fmt = f;
	evlog_min = l;
	return 0;
}

int evlog_setup_env(char *err, size_t err_size)
{
	return evlog_setup(getenv("BOOKD_LOG_FORMAT"),
			   getenv("BOOKD_LOG_LEVEL"), err, err_size);
}

void evlog_set_fd(int fd)
{
	ASSERT(fd >= 0);
	evlog_fd = fd;
}

bool evlog_on(enum evlog_level level) { return level >= evlog_min; }

/* ---- building a line ---- */

/* Bytes kept at the end of a line for what closes it: '"', '}', '\n'. */
#define LINE_CLOSE 3

struct line {
	char b[EVLOG_LINE_MAX];
	size_t n;	/* bytes used; at most sizeof(b) - LINE_CLOSE */
	bool cut;	/* a unit did not fit: nothing more is written */
	bool in_string; /* inside a quoted value (closed if cut there) */
};

/* A unit (a byte, an escape, a key) goes in whole or not at all, so a cut
 * line is still well formed once closed. */
static void put_bytes(struct line *l, const char *s, size_t len)
{
	if (l->cut || len > sizeof(l->b) - LINE_CLOSE - l->n) {
		l->cut = true;
		return;
	}
	memcpy(l->b + l->n, s, len);
	l->n += len;
	ASSERT(l->n <= sizeof(l->b) - LINE_CLOSE);
}

static void put(struct line *l, const char *s) { put_bytes(l, s, strlen(s)); }

static bool logfmt_bare(const char *v)
{
	if (!*v)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' ||
		    *p == 0x7f)
			return false;
	return true;
}

/* A value, quoted and escaped as the format needs. */
static void put_value(struct line *l, const char *v)
{
	bool json = evlog_fmt == EVLOG_JSON;

	if (!v)
		v = "";
	if (!json && logfmt_bare(v)) {
		for (; *v; v++)
			put_bytes(l, v, 1);
		return;
	}
	put(l, "\"");
	l->in_string = !l->cut;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[8];

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put_bytes(l, esc, 2);
		} else if (*p == '\n') {
			put(l, "\\n");
		} else if (*p == '\t') {
			put(l, "\\t");
		} else if (*p < ' ' || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(l, esc);
		} else {
			put_bytes(l, (const char *)p, 1);
		}
	}
	put(l, "\"");
	if (!l->cut)
		l->in_string = false;
}

/* Keys are ours (identifiers): written bare, with their separators, as
 * one unit. */
static void put_field(struct line *l, const char *key, const char *v)
{
	char k[80];
	int n = snprintf(k, sizeof(k),
			 evlog_fmt == EVLOG_JSON ? ",\"%s\":" : " %s=", key);

	ASSERT(n > 0 && (size_t)n < sizeof(k));
	put_bytes(l, k, (size_t)n);
	if (!l->cut)
		put_value(l, v);
}

static void start_line(struct line *l, enum evlog_level level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char t[40];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	ASSERT(n > 0);
	snprintf(t + n, sizeof(t) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	l->n = 0;
	l->cut = false;
	l->in_string = false;
	if (evlog_fmt == EVLOG_JSON) {
		put(l, "{\"time\":\"");
		put(l, t);
		put(l, "\",\"level\":\"");
		put(l, evlog_level_name(level));
		put(l, "\"");
	} else {
		put(l, "time=");
		put(l, t);
		put(l, " level=");
		put(l, evlog_level_name(level));
	}
	put_field(l, "msg", msg);
}

static void end_line(struct line *l)
{
	ssize_t w;

	/* a cut line still closes its string (and object): the room was
	 * kept (LINE_CLOSE) */
	ASSERT(l->n <= sizeof(l->b) - LINE_CLOSE);
	if (l->in_string)
		l->b[l->n++] = '"';
	if (evlog_fmt == EVLOG_JSON)
		l->b[l->n++] = '}';
	l->b[l->n++] = '\n';
	do
		w = write(evlog_fd, l->b, l->n);
	while (w < 0 && errno == EINTR);
}

void evlog(enum evlog_level level, const char *fmt, ...)
{
	char msg[EVLOG_LINE_MAX];
	struct line l;
	va_list ap;

	if (!evlog_on(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	start_line(&l, level, msg);
	end_line(&l);
}

void evlog_kv(enum evlog_level level, const char *msg, ...)
{
	struct line l;
	const char *key;
	va_list ap;
	unsigned count = 0;

	if (!evlog_on(level))
		return;
	start_line(&l, level, msg);
	va_start(ap, msg);
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		ASSERT(++count <= 64); /* a call site lost its NULL */
		put_field(&l, key, v);
	}
	va_end(ap);
	end_line(&l);
}

bool evlog_allow(struct evlog_limit *lim, uint32_t per_second,
		 uint32_t *dropped)
{
	int64_t now = (int64_t)time(NULL);
	int64_t was = atomic_load_explicit(&lim->second, memory_order_relaxed);

	*dropped = 0;
	if (was != now &&
	    atomic_compare_exchange_strong(&lim->second, &was, now))
		atomic_store(&lim->passed, 0);
	if (atomic_fetch_add(&lim->passed, 1) >= per_second) {
		atomic_fetch_add(&lim->dropped, 1);
		return false;
	}
	*dropped = atomic_exchange(&lim->dropped, 0);
	return true;
}
