/*
 * buf.h: the project's one growable byte buffer (buf.c), for every folder:
 * the server's answers (api/, srv.h), the binary protocol's frames
 * (api/proto.c, the client library), the replicator's COPY text and
 * bookbench's HTTP input and output. Its own target, bookd_buf, depends on
 * bookd_assert only, so the client library and bookbench use it without
 * depending on core/.
 *
 * A zeroed struct buf is an empty buffer without a cap. data[0, size) is
 * the content, cap the memory held (size <= cap); max, when not 0, is the
 * most memory the buffer may hold (a cap: growing past it fails). Memory
 * grows by doubling from BUF_SIZE_MIN.
 *
 * Failures: buf_reserve returns them (-ENOBUFS past max, -ENOMEM) and
 * leaves the buffer as it was, so a reader can take data out and try
 * again. buf_put and buf_printf cannot return one: a write that does not
 * fit sets broken, which stays (the content is no longer usable) and makes
 * every later write a no-op, until buf_clear. Callers look at broken once,
 * when the whole message is written.
 */
#ifndef BOOKD_BUF_H
#define BOOKD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_SIZE_MIN 4096

struct buf {
	uint8_t *data;
	size_t size, cap;
	size_t max;  /* 0: no cap; else cap never goes past it */
	bool broken; /* a write did not fit (max or no memory): sticky */
};

/* Room for n more bytes: cap - size >= n. 0, -ENOBUFS (past max) or
 * -ENOMEM (also when broken); the buffer is unchanged on failure. */
int buf_reserve(struct buf *b, size_t n);
/* Appends n bytes (p may be NULL when n is 0); on failure sets broken. */
void buf_put(struct buf *b, const void *p, size_t n);
/* Appends the formatted text (no NUL); on failure sets broken. */
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= size); the rest moves to the front. */
void buf_consume(struct buf *b, size_t n);
/* Empties the buffer (and clears broken), keeping its memory and max. */
void buf_clear(struct buf *b);
/* Frees the memory; the buffer is empty and without a cap again. */
void buf_free(struct buf *b);

#endif
