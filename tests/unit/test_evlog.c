/*
 * test_evlog.c: the event lines (core/evlog.h) read back from a pipe: the
 * logfmt and JSON forms (time, level, msg, fields, quoting and escapes),
 * the level filter, refused settings, a line past EVLOG_LINE_MAX still
 * closed, and the rate limit (lines per second, then how many were
 * dropped).
 */
#include "check.h"
#include "evlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fds[2];

/* What the lines written since the last call say (NUL-terminated). */
static const char *drain(void)
{
	static char got[16384];
	ssize_t n = read(fds[0], got, sizeof(got) - 1);

	got[n > 0 ? n : 0] = 0;
	return got;
}

static bool rfc3339_utc(const char *line)
{
	struct tm tm;
	const char *end;

	if (strncmp(line, "time=", 5) == 0)
		line += 5;
	else if (strncmp(line, "{\"time\":\"", 9) == 0)
		line += 9;
	else
		return false;
	end = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
	return end && end[0] == '.' && end[4] == 'Z';
}

CHECK_TEST_FN(test_logfmt)
{
	char err[128];
	const char *got;

	CHECK(evlog_setup("logfmt", "info", err, sizeof(err)) == 0);
	evlog(EVLOG_INFO, "bookd: generated %u events", 3u);
	got = drain();
	CHECK_MSG(rfc3339_utc(got), "%s", got);
	CHECK_MSG(strstr(got, " level=info msg=\"bookd: generated 3 "
			      "events\"\n") != NULL,
		  "%s", got);
	evlog_kv(EVLOG_WARN, "slow", "request_id", "t1-7", "path", "/v1/a b",
		 "q", "say \"hi\"\n", "empty", "", "none", NULL, NULL);
	got = drain();
	CHECK_MSG(strstr(got, " level=warn msg=slow request_id=t1-7 "
			      "path=\"/v1/a b\" q=\"say \\\"hi\\\"\\n\" "
			      "empty=\"\" none=\"\"\n") != NULL,
		  "%s", got);
	/* below the level: nothing */
	evlog(EVLOG_DEBUG, "not this");
	evlog(EVLOG_ERROR, "this");
	got = drain();
	CHECK_MSG(strstr(got, "not this") == NULL && strstr(got, "this"), "%s",
		  got);
	CHECK(!evlog_on(EVLOG_DEBUG) && evlog_on(EVLOG_INFO));
}

CHECK_TEST_FN(test_json)
{
	char err[128];
	const char *got;

	CHECK(evlog_setup("json", "debug", err, sizeof(err)) == 0);
	evlog_kv(EVLOG_DEBUG, "a \"b\"", "k", "v\t\x01", NULL);
	got = drain();
	CHECK_MSG(rfc3339_utc(got), "%s", got);
	CHECK_MSG(strstr(got, "Z\",\"level\":\"debug\",\"msg\":\"a \\\"b\\\"\","
			      "\"k\":\"v\\t\\u0001\"}\n") != NULL,
		  "%s", got);
	CHECK(evlog_setup(NULL, NULL, err, sizeof(err)) == 0); /* defaults */
	CHECK(!evlog_on(EVLOG_DEBUG) && evlog_on(EVLOG_INFO));
}

CHECK_TEST_FN(test_refused)
{
	char err[128];

	CHECK(evlog_setup("xml", NULL, err, sizeof(err)) == -EINVAL);
	CHECK_MSG(strstr(err, "BOOKD_LOG_FORMAT must be logfmt or json"), "%s",
		  err);
	CHECK(evlog_setup(NULL, "verbose", err, sizeof(err)) == -EINVAL);
	CHECK_MSG(strstr(err, "BOOKD_LOG_LEVEL must be"), "%s", err);
}

/* A line past EVLOG_LINE_MAX is cut but stays one closed line. */
CHECK_TEST_FN(test_long)
{
	static char big[3 * EVLOG_LINE_MAX];
	char err[128];
	const char *got;
	size_t n;

	memset(big, '"', sizeof(big) - 1);
	for (int json = 0; json < 2; json++) {
		CHECK(evlog_setup(json ? "json" : "logfmt", NULL, err,
				  sizeof(err)) == 0);
		evlog_kv(EVLOG_INFO, "long", "v", big, "after", "x", NULL);
		got = drain();
		n = strlen(got);
		CHECK_MSG(n <= EVLOG_LINE_MAX && n > EVLOG_LINE_MAX - 8, "%zu",
			  n);
		CHECK(strchr(got, '\n') == got + n - 1);
		CHECK(strstr(got, "after") == NULL);
		/* closed: ends in \"" (logfmt) or \""} (JSON) after an
		 * escape that is whole */
		CHECK_MSG(strcmp(got + n - (json ? 5 : 4),
				 json ? "\\\"\"}\n" : "\\\"\"\n") == 0,
			  "%s", got + n - 8);
	}
	CHECK(evlog_setup(NULL, NULL, err, sizeof(err)) == 0);
}

CHECK_TEST_FN(test_limit)
{
	struct evlog_limit lim = { 0 };
	uint32_t dropped, passed = 0, first_dropped = 0;
	time_t start = time(NULL);

	/* within one second (retried if the clock ticks meanwhile) */
	for (int tries = 0; tries < 5; tries++) {
		passed = 0;
		lim = (struct evlog_limit){ 0 };
		start = time(NULL);
		for (int i = 0; i < 100; i++)
			if (evlog_allow(&lim, 10, &dropped))
				passed++;
		if (time(NULL) == start)
			break;
	}
	CHECK_EQ(passed, 10);
	while (time(NULL) == start)
		usleep(10000);
	CHECK(evlog_allow(&lim, 10, &first_dropped));
	CHECK_EQ(first_dropped, 90);
	CHECK(evlog_allow(&lim, 10, &dropped));
	CHECK_EQ(dropped, 0);
}

int main(void)
{
	REQUIRE(pipe2(fds, O_NONBLOCK) == 0);
	evlog_set_fd(fds[1]);
	return check_run_all("evlog", NULL);
}
