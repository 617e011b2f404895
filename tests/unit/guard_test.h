/*
 * guard_test.h: inputs placed right before a PROT_NONE guard page (no NUL
 * after them), so code that reads one byte past its input's end crashes
 * the test (picohttpparser's test.c does the same). For test_auth,
 * test_fields and test_proto: guard_init once, then guard_copy each input.
 */
#ifndef BOOKD_TEST_GUARD_H
#define BOOKD_TEST_GUARD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The room before the guard page, and how large it is. */
static inline uint8_t **guard_room(size_t **size)
{
	static uint8_t *base;
	static size_t room;

	*size = &room;
	return &base;
}

/* Maps room bytes (whole pages) followed by the guard page; exits if it
 * cannot. */
static inline void guard_init(size_t room)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), *size;
	uint8_t **base = guard_room(&size);

	room = (room + page - 1) / page * page;
	*base = mmap(NULL, room + page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*base == MAP_FAILED ||
	    mprotect(*base + room, page, PROT_NONE) < 0) {
		perror("guard page");
		exit(1);
	}
	*size = room;
}

/* p[0..n) copied so that its last byte is the last before the guard
 * page; where it starts. */
static inline void *guard_copy(const void *p, size_t n)
{
	size_t *size;
	uint8_t *base = *guard_room(&size), *d;

	if (n > *size)
		abort();
	d = base + *size - n;
	if (n)
		memcpy(d, p, n);
	return d;
}

#endif
