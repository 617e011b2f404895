/*
 * evlog.h: bookd's event lines (what operators call "the logs"; the
 * write-ahead log is wal/, "the log" in these docs). One line per event on
 * stderr, in one write(2) so that lines of several threads never mix:
 *
 *   logfmt (default):
 *     time=2026-12-06T22:04:00.123Z level=info msg="bookd: stopped" k=v
 *   BOOKD_LOG_FORMAT=json:
 *     {"time":"2026-12-06T22:04:00.123Z","level":"info",
 *      "msg":"bookd: stopped","k":"v"}
 *
 * The time is RFC 3339 in UTC with milliseconds. BOOKD_LOG_LEVEL (debug,
 * info, warn, error; default info) drops the lines below it. A value that
 * logfmt cannot carry bare (a space, '=', '"', a control byte, or empty) is
 * quoted with \" \\ \n \t escaped; JSON escapes as JSON does. A line longer
 * than EVLOG_LINE_MAX is cut (its last field may be shortened).
 *
 * Its own target (bookd_evlog) that depends on nothing but bookd_assert, so
 * api/, wal/, replicator/ and notify/ use it without depending on core/.
 * Set up once at start (evlog_setup*), before any thread starts; the
 * writers are then safe from any thread and take no lock.
 *
 * Never pass a secret, a bearer key, a JWT, a signature or a card datum to
 * these functions: the logs are kept and shipped (docs/operations.md
 * "Logs").
 */
#ifndef EVLOG_H
#define EVLOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVLOG_LINE_MAX 2048

enum evlog_level { EVLOG_DEBUG, EVLOG_INFO, EVLOG_WARN, EVLOG_ERROR };
enum evlog_format { EVLOG_LOGFMT, EVLOG_JSON };

/* Sets the format ("logfmt" or "json") and the lowest level written
 * ("debug", "info", "warn", "error"); NULL or "" keeps the default (logfmt,
 * info). -EINVAL with a sentence in err for any other value. */
int evlog_setup(const char *format, const char *level, char *err,
		size_t err_size);
/* evlog_setup from BOOKD_LOG_FORMAT and BOOKD_LOG_LEVEL. */
int evlog_setup_env(char *err, size_t err_size);
/* Where the lines go (default 2, stderr): for tests. */
void evlog_set_fd(int fd);

/* true when lines of this level are written. */
bool evlog_on(enum evlog_level level);
const char *evlog_level_name(enum evlog_level level);

/* One line whose message is printf-formatted. */
void evlog(enum evlog_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line with fields: the message, then key and value pairs (both
 * strings; a NULL value writes the key with an empty value), then NULL. */
void evlog_kv(enum evlog_level level, const char *msg, ...)
	__attribute__((sentinel));

/* A rate limit for a storm of one kind of line (one per call site, static,
 * zero-initialised): at most `per_second` lines pass in each second of the
 * clock. evlog_allow says whether this one passes; when it does and lines
 * were dropped since the last that passed, *dropped says how many (0
 * otherwise), for a "dropped" field. Shared by threads (atomics; only on
 * the paths that log). */
struct evlog_limit {
	_Atomic int64_t second;
	_Atomic uint32_t passed;
	_Atomic uint32_t dropped;
};

bool evlog_allow(struct evlog_limit *lim, uint32_t per_second,
		 uint32_t *dropped);

#endif
