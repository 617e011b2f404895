/*
 * buf.c: the growable byte buffer (buf.h).
 *
 * Invariants, checked on entry and exit: size <= cap; max == 0 or
 * cap <= max; data is NULL exactly when cap is 0.
 */
#include "buf.h"
#include "bookd_assert.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void buf__check(const struct buf *b)
{
	ASSERT(b->size <= b->cap);
	ASSERT(b->max == 0 || b->cap <= b->max);
	ASSERT((b->data == NULL) == (b->cap == 0));
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	uint8_t *d;

	buf__check(b);
	if (n <= b->cap - b->size)
		return 0;
	if (b->broken)
		return -ENOMEM;
	cap = b->cap ? b->cap : BUF_SIZE_MIN;
	while (cap - b->size < n) {
		if (cap > SIZE_MAX / 2)
			return -ENOBUFS;
		cap *= 2;
	}
	if (b->max && cap > b->max)
		return -ENOBUFS;
	d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	ASSERT(b->cap - b->size >= n);
	buf__check(b);
	return 0;
}

void buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->broken || n == 0)
		return;
	ASSERT(p);
	if (buf_reserve(b, n) != 0) {
		b->broken = true;
		return;
	}
	memcpy(b->data + b->size, p, n);
	b->size += n;
	ASSERT(b->size <= b->cap);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	if (b->broken)
		return;
	/* Formats in place when it fits (most do), else once more with room
	 * for all of it; vsnprintf writes a NUL, hence the + 1. */
	for (int pass = 0; pass < 2; pass++) {
		room = b->cap - b->size;
		va_start(ap, fmt);
		n = vsnprintf(room ? (char *)b->data + b->size : NULL, room,
			      fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->broken = true;
			return;
		}
		if ((size_t)n < room) {
			b->size += (size_t)n;
			ASSERT(b->size < b->cap);
			return;
		}
		ASSERT(pass == 0); /* the same format and arguments */
		if (buf_reserve(b, (size_t)n + 1) != 0) {
			b->broken = true;
			return;
		}
	}
}

void buf_consume(struct buf *b, size_t n)
{
	buf__check(b);
	ASSERT(n <= b->size);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->size - n);
	b->size -= n;
}

void buf_clear(struct buf *b)
{
	buf__check(b);
	b->size = 0;
	b->broken = false;
}

void buf_free(struct buf *b)
{
	buf__check(b);
	free(b->data);
	memset(b, 0, sizeof(*b));
}
