/*
 * record.h: the entry format (record.c), for the files of core/: records as
 * struct rec, their encoder and decoder, the booking id's layout and the
 * entry's limits. Not part of the public API (readers outside core/ use
 * entry.h).
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A booking id is (event id << 24 | per-event sequence). */
#define CORE_BOOKING_SEQ_BITS 24
#define CORE_BOOKING_SEQ_MAX ((1u << CORE_BOOKING_SEQ_BITS) - 1)
#define CORE_EVENT_ID_MAX ((UINT64_C(1) << 40) - 1)
#define CORE_ENTRY_SIZE_MAX 65536

enum rec_type {
	REC_ORG = 1,
	REC_LOCATION,
	REC_INSTRUCTOR,
	REC_CUSTOMER,
	REC_SERIES,
	REC_SERIES_GENERATED, /* series generated through a local date */
	REC_EVENT_CREATE,
	REC_EVENT_PATCH,      /* capacity / status / instructor set */
	REC_BOOKING_NEW,      /* a booking created in a status */
	REC_BOOKING_SET,      /* a booking moved to another status */
	REC_PAYMENT,          /* a payment outcome recorded (also flagged ones) */
	REC_NOTIFY,           /* outbox: a notification to deliver */
	REC_IDEM,             /* an idempotency key and its first result */
	REC_BOOKING_RESTORE,  /* snapshots: a booking as it is, any status */
	REC_ARCHIVE,          /* events that ended before a time leave memory */
	REC_TYPE_COUNT
};

struct idem_result {
	uint64_t lsn; /* runtime only, not in the record: 0 after replay */
	uint8_t op;   /* enum core_op */
	uint8_t code; /* enum core_code (stored ones are CORE_OK and flagged payments) */
	uint8_t has_promoted;
	uint32_t count;
	uint64_t id;
	union {
		struct {
			struct core_booking_view booking, promoted;
		};
		struct core_event_view event; /* op EVENT_PATCH */
	};
};

struct rec {
	uint8_t type;
	core_time at;
	union {
		struct {
			uint64_t id, org_id;
			char name[CORE_NAME_SIZE_MAX];
			char timezone[CORE_TZ_SIZE_MAX];
		} cat; /* ORG, LOCATION, INSTRUCTOR */
		struct {
			char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
			char email[CORE_NAME_SIZE_MAX], name[CORE_NAME_SIZE_MAX];
		} customer;
		struct {
			uint64_t id;
			struct core_series_spec spec;
		} series;
		struct {
			uint64_t series_id;
			struct core_date through;
		} generated;
		struct {
			uint64_t id, series_id, org_id, location_id, instructor_id;
			core_time start_at;
			uint32_t duration_min, capacity, waitlist_capacity,
				price_cents;
			char currency[4];
		} event;
		struct {
			uint64_t event_id, instructor_id;
			uint32_t capacity;
			uint8_t status;
		} patch;
		struct {
			uint64_t booking_id;
			uint8_t status;
			core_time hold_expires_at;
			char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1]; /* NEW only */
		} booking; /* BOOKING_NEW, BOOKING_SET, BOOKING_RESTORE */
		struct {
			uint64_t booking_id, amount_cents, payment_ref;
			char currency[4];
			uint8_t succeeded, code;
		} payment;
		struct {
			uint64_t booking_id;
			uint8_t kind;
		} notify;
		struct {
			uint64_t hi, lo, fingerprint;
			struct idem_result result;
		} idem;
		struct {
			core_time before;
		} archive;
	} u;
};

struct wbuf {
	uint8_t *data;
	size_t size, capacity;
	bool overflow;
};
void rec_encode(struct wbuf *w, const struct rec *r);
/* Decodes the record at *pos; -EINVAL when malformed (never reads past size). */
int rec_decode(const uint8_t *buf, size_t size, size_t *pos, struct rec *out);
/* The event a record belongs to, 0 for catalogue and idempotency records. */
uint64_t rec_event_id(const struct rec *r);

/* Snapshot writers: every record that rebuilds the state, through fn. */
typedef void (*rec_sink)(void *ctx, const struct rec *r);

#endif
