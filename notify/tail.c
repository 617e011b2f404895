/*
 * tail.c: the log tailer the senders share (tail.h): the position file,
 * the reader and its gaps, the wait on libcurl. A gap is a log whose
 * segments before the position were removed (a data dir restored without
 * them, or a position file from another log): the tail goes on from the
 * log's end, and says once what it skipped, in the log and in the status.
 */
#include "tail.h"

#include "bookd_assert.h"
#include "evlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TAIL_FILE_MAX (64u << 20)

int64_t tail_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tail_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t tail_rnd(struct tail *t)
{
	t->rnd ^= t->rnd << 13;
	t->rnd ^= t->rnd >> 7;
	t->rnd ^= t->rnd << 17;
	return t->rnd;
}

void tail_error(struct tail *t, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(t->lock);
	va_start(ap, fmt);
	vsnprintf(t->error, t->error_size, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(t->lock);
}

int tail_open(struct tail *t, const char *data_dir, char *err, size_t err_size)
{
	ASSERT(t->name && t->lost && t->w && t->lock && t->error &&
	       t->position_lsn);
	t->dir_fd = -1;
	t->rnd =
		(uint64_t)tail_wall_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e37u;
	t->data_dir = strdup(data_dir);
	if (!t->data_dir) {
		snprintf(err, err_size, "%s: no memory", t->name);
		return -ENOMEM;
	}
	t->dir_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dir_fd < 0) {
		int rc = -errno;
		snprintf(err, err_size, "%s: cannot open %s: %s", t->name,
			 data_dir, strerror(-rc));
		return rc;
	}
	return 0;
}

int tail_file_read(struct tail *t, const char *file, char **text, char *err,
		   size_t err_size)
{
	struct stat st;
	char *buf;
	ssize_t got = 0;
	int fd, rc = 0;

	*text = NULL;
	fd = openat(t->dir_fd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(err, err_size, "cannot open %s/%s: %s", t->data_dir,
			 file, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0)
		rc = -errno;
	else if (st.st_size > TAIL_FILE_MAX)
		rc = -EFBIG;
	buf = rc ? NULL : malloc((size_t)st.st_size + 1);
	if (!rc && !buf)
		rc = -ENOMEM;
	if (!rc && (got = read(fd, buf, (size_t)st.st_size)) < 0)
		rc = -errno;
	close(fd);
	if (rc) {
		snprintf(err, err_size, "cannot read %s/%s: %s", t->data_dir,
			 file, strerror(-rc));
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*text = buf;
	return 0;
}

int tail_file_write(struct tail *t, const char *file, const char *text,
		    size_t len)
{
	char tmp[80];
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(t->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fdatasync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && renameat(t->dir_fd, tmp, t->dir_fd, file) != 0)
		rc = -errno;
	if (rc == 0 && fsync(t->dir_fd) != 0)
		rc = -errno;
	return rc;
}

int tail_start(struct tail *t, uint64_t from, char *err, size_t err_size)
{
	int rc;

	wal_retain_for(t->w, t->holder, from);
	t->retained = true;
	rc = wal_reader_open(t->w, from, &t->reader);
	if (rc == -ENODATA) {
		uint64_t to = wal_durable_lsn(t->w) + 1;

		evlog(EVLOG_ERROR,
		      "bookd: %s: the log before LSN %" PRIu64
		      " is gone: LSN %" PRIu64 "..%" PRIu64 " skipped (no %s)",
		      t->name, to, from, to - 1, t->lost);
		snprintf(t->error, t->error_size,
			 "the log from LSN %" PRIu64 " was gone at start: "
			 "up to LSN %" PRIu64 " skipped (no %s)",
			 from, to - 1, t->lost);
		from = to;
		wal_retain_for(t->w, t->holder, from);
		rc = wal_reader_open(t->w, from, &t->reader);
	}
	if (rc) {
		snprintf(err, err_size,
			 "%s: cannot read the log from LSN %" PRIu64 ": %s",
			 t->name, from, strerror(-rc));
		return rc;
	}
	t->written = from;
	*t->position_lsn = from;
	return 0;
}

int tail_read(struct tail *t, uint32_t max,
	      int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			size_t size),
	      void *ctx)
{
	int got;

	if (t->stopped)
		return 0;
	got = wal_reader_next(t->reader, max, fn, ctx);
	if (got == -EUCLEAN) {
		t->stopped = true;
		tail_error(t,
			   "the log record at LSN %" PRIu64 " does not "
			   "decode: stopped there",
			   wal_reader_lsn(t->reader));
		evlog(EVLOG_ERROR, "bookd: %s: %s", t->name, t->error);
	} else if (got == -ENODATA) {
		uint64_t from = wal_reader_lsn(t->reader),
			 to = wal_durable_lsn(t->w) + 1;
		wal_reader *r = NULL;

		if (wal_reader_open(t->w, to, &r) == 0) {
			wal_reader_close(t->reader);
			t->reader = r;
			tail_error(t,
				   "the log before LSN %" PRIu64 " is gone: "
				   "LSN %" PRIu64 "..%" PRIu64
				   " skipped (no %s)",
				   to, from, to - 1, t->lost);
			evlog(EVLOG_ERROR, "bookd: %s: %s", t->name, t->error);
			t->dirty = true;
		}
	} else if (got < 0) {
		tail_error(t, "reading the log: %s", strerror(-got));
	} else if (got > 0) {
		t->dirty = true;
	}
	return got;
}

int tail_save(struct tail *t, uint64_t pos, const char *text, size_t len)
{
	char file[64];
	int rc;

	snprintf(file, sizeof(file), "%s.pos", t->name);
	rc = tail_file_write(t, file, text, len);
	if (rc) {
		tail_error(t, "cannot write %s/%s: %s", t->data_dir, file,
			   strerror(-rc));
		return rc;
	}
	t->written = pos;
	t->dirty = false;
	wal_retain_for(t->w, t->holder, pos);
	pthread_mutex_lock(t->lock);
	*t->position_lsn = pos;
	pthread_mutex_unlock(t->lock);
	return 0;
}

bool tail_save_due(struct tail *t, int64_t now, int64_t every_ms,
		   int64_t *wait_ms)
{
	bool due;
	int64_t left;

	if (!t->dirty)
		return false;
	due = now - t->written_at_ms >= every_ms;
	if (due)
		t->written_at_ms = now; /* again in every_ms if it fails */
	left = t->written_at_ms + every_ms - now;
	if (left < *wait_ms)
		*wait_ms = left < 1 ? 1 : left;
	return due;
}

void tail_wait(CURLM *multi, int wake_fd, int64_t wait_ms)
{
	struct curl_waitfd wfd = { .fd = wake_fd, .events = CURL_WAIT_POLLIN };

	if (wait_ms < 0)
		wait_ms = 0;
	if (wake_fd < 0 && wait_ms > 5)
		wait_ms = 5;
	curl_multi_poll(multi, wake_fd >= 0 ? &wfd : NULL, wake_fd >= 0 ? 1 : 0,
			(int)wait_ms, NULL);
	if (wake_fd >= 0 && (wfd.revents & CURL_WAIT_POLLIN)) {
		uint64_t v;
		(void)!read(wake_fd, &v, sizeof(v));
	}
}

void tail_close(struct tail *t)
{
	if (t->reader)
		wal_reader_close(t->reader);
	if (t->data_dir && t->dir_fd >= 0) /* opened by tail_open */
		close(t->dir_fd);
	if (t->retained)
		wal_retain_for(t->w, t->holder, UINT64_MAX);
	free(t->data_dir);
	t->reader = NULL;
	t->dir_fd = -1;
	t->retained = false;
	t->data_dir = NULL;
}
