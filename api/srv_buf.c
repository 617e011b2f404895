/*
 * srv_buf.c: the growable output buffer of srv.h, on its own so that tests
 * and fuzz targets that fake the network side use the real one.
 */
#include "srv.h"
#include "bookd_assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_buf_put(struct srv_buf *b, const void *p, size_t n)
{
	ASSERT(b->size <= b->cap);
	if (b->broken || n == 0)
		return;
	ASSERT(p);
	if (b->size + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *d;
		while (cap < b->size + n) {
			ASSERT(cap <= SIZE_MAX / 2);
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (!d) {
			b->broken = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->size, p, n);
	b->size += n;
	ASSERT(b->size <= b->cap);
}

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->broken = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		srv_buf_put(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->broken = true;
		return;
	}
	va_start(ap, fmt);
	int m = vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ASSERT(m == n); /* the same format and arguments */
	srv_buf_put(b, big, (size_t)n);
	free(big);
}
