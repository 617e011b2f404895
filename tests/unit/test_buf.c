/*
 * test_buf.c: the growable buffer (core/buf.h) on its own: appends and
 * growth by doubling, printf in place and past the room, consume, clear,
 * the cap (max: buf_reserve's -ENOBUFS leaves the buffer usable, a write
 * past it sets the sticky broken flag) and free.
 */
#include "buf.h"
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

CHECK_TEST_FN(test_put_grow)
{
	struct buf b = { 0 };
	char big[10000];

	buf_put(&b, NULL, 0); /* nothing: no memory yet */
	CHECK(b.data == NULL && b.size == 0 && b.cap == 0);
	buf_put(&b, "abc", 3);
	CHECK(b.size == 3 && b.cap == BUF_SIZE_MIN);
	CHECK(memcmp(b.data, "abc", 3) == 0);
	memset(big, 'x', sizeof(big));
	buf_put(&b, big, sizeof(big));
	CHECK(b.size == 3 + sizeof(big));
	CHECK(b.cap == 4 * BUF_SIZE_MIN); /* doubled until it fits */
	CHECK(b.data[2] == 'c' && b.data[3] == 'x' &&
	      b.data[b.size - 1] == 'x');
	CHECK(!b.broken);
	buf_free(&b);
	CHECK(b.data == NULL && b.size == 0 && b.cap == 0 && b.max == 0);
}

CHECK_TEST_FN(test_printf)
{
	struct buf b = { 0 };
	char want[2000];

	buf_printf(&b, "%s-%d", "id", 42);
	CHECK(b.size == 5 && memcmp(b.data, "id-42", 5) == 0);
	/* longer than the room left: formatted again after growing */
	for (int i = 0; i < 3; i++)
		buf_printf(&b, "%01999d", i);
	CHECK(b.size == 5 + 3 * 1999);
	snprintf(want, sizeof(want), "%01999d", 2);
	CHECK(memcmp(b.data + b.size - 1999, want, 1999) == 0);
	CHECK(b.cap == 2 * BUF_SIZE_MIN);
	buf_free(&b);
}

CHECK_TEST_FN(test_consume_clear)
{
	struct buf b = { 0 };

	buf_put(&b, "0123456789", 10);
	buf_consume(&b, 0);
	CHECK(b.size == 10);
	buf_consume(&b, 4);
	CHECK(b.size == 6 && memcmp(b.data, "456789", 6) == 0);
	buf_consume(&b, 6);
	CHECK(b.size == 0 && b.cap == BUF_SIZE_MIN);
	buf_put(&b, "z", 1);
	b.broken = true;
	buf_clear(&b);
	CHECK(b.size == 0 && !b.broken && b.cap == BUF_SIZE_MIN);
	buf_free(&b);
}

CHECK_TEST_FN(test_max)
{
	struct buf b = { .max = 2 * BUF_SIZE_MIN };
	char big[BUF_SIZE_MIN];

	memset(big, 'y', sizeof(big));
	CHECK(buf_reserve(&b, 2 * BUF_SIZE_MIN) == 0);
	CHECK(b.cap == 2 * BUF_SIZE_MIN);
	CHECK(buf_reserve(&b, 2 * BUF_SIZE_MIN + 1) == -ENOBUFS);
	CHECK(!b.broken && b.cap == 2 * BUF_SIZE_MIN); /* unchanged */
	buf_put(&b, big, sizeof(big));
	buf_put(&b, big, sizeof(big)); /* exactly max */
	CHECK(!b.broken && b.size == 2 * BUF_SIZE_MIN);
	/* a reader takes some out and the room is there again */
	buf_consume(&b, 10);
	CHECK(buf_reserve(&b, 10) == 0);
	buf_put(&b, big, 11); /* one byte too many */
	CHECK(b.broken);
	CHECK(b.size == 2 * BUF_SIZE_MIN - 10);
	/* sticky: a write that would fit is dropped too */
	buf_put(&b, "a", 1);
	buf_printf(&b, "%d", 1);
	CHECK(b.size == 2 * BUF_SIZE_MIN - 10);
	CHECK(buf_reserve(&b, 11) == -ENOMEM);
	buf_clear(&b);
	CHECK(!b.broken && b.max == 2 * BUF_SIZE_MIN);
	buf_printf(&b, "%0*d", 3 * BUF_SIZE_MIN, 7); /* past max */
	CHECK(b.broken && b.size == 0);
	buf_free(&b);
}

int main(void) { return check_run_all("buf", NULL); }
