/*
 * record.h: the entry format (record.c), for the files of core/: the
 * encoder and decoder of records (struct core_rec, entry.h), the booking
 * id's layout and the entry's limits. Not part of the public API (readers
 * outside core/ use entry.h).
 *
 * An entry is the outcome of one decision: a sequence of records, applied
 * all or nothing. A record is
 *     u8 type | u8 version (1) | u16 body size | body
 * with little-endian integers and strings as u8 length + bytes. Every record
 * carries the decision time `at`. Records are facts (what happened), not
 * commands: applying them does not decide anything again.
 */
#ifndef BOOKD_CORE_RECORD_H
#define BOOKD_CORE_RECORD_H

#include "bookd_assert.h" /* ASSERT: on in release; DEBUG_ASSERT: costly */
#include "core.h"
#include "entry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A booking id is (event id << 24 | per-event sequence). */
#define CORE_BOOKING_SEQ_BITS 24
#define CORE_BOOKING_SEQ_MAX ((1u << CORE_BOOKING_SEQ_BITS) - 1)
#define CORE_EVENT_ID_MAX ((UINT64_C(1) << 40) - 1)
#define CORE_ENTRY_SIZE_MAX 65536
/* A snapshot: this magic, then (u32 size, entry)*. */
#define CORE_SNAP_MAGIC UINT64_C(0x31504e534b4f4f42) /* "BOOKSNP1" */

struct wbuf {
	uint8_t *data;
	size_t size, capacity;
	bool overflow;
};
void rec_encode(struct wbuf *w, const struct core_rec *r);
/* Decodes the record at *pos; -EINVAL when malformed (never reads past
 * size). */
int rec_decode(const uint8_t *buf, size_t size, size_t *pos,
	       struct core_rec *out);

/* Snapshot writers: every record that rebuilds the state, through fn. */
typedef void (*rec_sink)(void *ctx, const struct core_rec *r);

#endif
