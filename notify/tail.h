/*
 * tail.h: what the senders off the log share (the notification sender,
 * notify.h, and the Stripe sender, payments.h). Each runs its own thread
 * that tails the durable log from a position kept in `<data dir>/<name>.pos`
 * and makes libcurl requests for what it reads; the position is written
 * atomically (a temporary file, fdatasync, rename, the directory's fsync)
 * and the log keeps its segments from there (wal_retain_for with the
 * sender's holder), so a restart neither loses nor repeats more than the
 * requests in flight.
 *
 * A sender embeds a struct tail, fills its names and its status fields,
 * then: tail_open (the data dir), tail_file_read (the position file's text,
 * for the sender to parse: each keeps more than the position in it), tail_start
 * (the reader from a position); in its thread tail_read, tail_save_due and
 * tail_wait; and tail_close at the end. Only the sender's thread uses it,
 * but for the status fields (under the sender's lock).
 */
#ifndef BOOKD_TAIL_H
#define BOOKD_TAIL_H

#include "wal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tail {
	/* set by the sender before tail_open */
	const char *name; /* "notify": messages, <name>.pos */
	const char *lost; /* what a gap in the log leaves undone */
	enum wal_holder holder;
	wal *w;
	pthread_mutex_t *lock; /* the sender's, guarding the three below */
	char *error;	       /* the sender's status: last error */
	size_t error_size;
	uint64_t *position_lsn; /* the sender's status: the file's position */

	/* the tail's own */
	char *data_dir;
	int dir_fd;
	wal_reader *reader;
	bool retained;	       /* the log holds segments for this holder */
	bool stopped;	       /* at a record that does not decode */
	bool dirty;	       /* read or finished past the file's position */
	uint64_t written;      /* the position the file holds */
	int64_t written_at_ms; /* monotonic */
	uint64_t rnd;	       /* xorshift64 state: backoff jitter */
};

int64_t tail_mono_ms(void);
int64_t tail_wall_ms(void);
uint64_t tail_rnd(struct tail *t);
void tail_error(struct tail *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Opens the data dir. 0, or -errno with err. */
int tail_open(struct tail *t, const char *data_dir, char *err, size_t err_size);
/* The text of file (in the data dir; malloc'd, NUL-ended) in *text, NULL
 * when there is none. 0, or -errno with err. */
int tail_file_read(struct tail *t, const char *file, char **text, char *err,
		   size_t err_size);
/* Replaces file with text atomically and durably. 0, or -errno. */
int tail_file_write(struct tail *t, const char *file, const char *text,
		    size_t len);
/* Retains the log from `from` and opens the reader there; when the log
 * before it is gone, from the log's end (one error line says what was not
 * done). 0, or -errno with err. */
int tail_start(struct tail *t, uint64_t from, char *err, size_t err_size);
/* One wal_reader_next of up to max records through fn: what it returns
 * (records passed, 0, or -errno); a record that does not decode stops the
 * tail there for good, a gap in the log restarts it at the log's end. */
int tail_read(struct tail *t, uint32_t max,
	      int (*fn)(void *ctx, uint64_t lsn, const void *payload,
			size_t size),
	      void *ctx);
/* Writes text as <name>.pos, which says the sender finished every
 * record before pos; the log may drop them. 0, or -errno (logged in the
 * status). */
int tail_save(struct tail *t, uint64_t pos, const char *text, size_t len);
/* Whether the position should be written now (dirty, and every_ms since
 * the last try); *wait_ms shrinks to when the next try is due. */
bool tail_save_due(struct tail *t, int64_t now, int64_t every_ms,
		   int64_t *wait_ms);
/* Waits up to wait_ms for libcurl's sockets or a write to wake_fd (-1:
 * none, then at most 5 ms). */
void tail_wait(CURLM *multi, int wake_fd, int64_t wait_ms);
/* The reader and the data dir closed, the log's hold released. */
void tail_close(struct tail *t);

#endif /* BOOKD_TAIL_H */
