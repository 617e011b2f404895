/*
 * entry.h: log entries and snapshots as typed records: the one definition
 * of a record (struct core_rec), which core/ itself decides, applies and
 * logs (record.h adds the encoder), and readers outside core/ (the
 * replicator, tools) decode. The byte format is core/record.c's (docs/core.md
 * "Records"); this header's functions only decode it.
 *
 * An entry (one log record's payload) is the outcome of one decision: a
 * sequence of records, facts in the order they happened. Walk it with
 *
 *     size_t pos = 0;
 *     struct core_rec r;
 *     int rc;
 *     while ((rc = core_entry_next(buf, size, &pos, &r)) > 0)
 *             use(&r);
 *     if (rc < 0) ... malformed: stop, never skip
 *
 * What the records mean (the core's rules, docs/core.md):
 *   ORG, LOCATION, INSTRUCTOR, CUSTOMER, SERIES   catalogue object created
 *                     (CUSTOMER: created or updated)
 *   SERIES_GENERATED  the series' events exist through a local date
 *   EVENT_CREATE      an event, scheduled, nothing booked; its title is its
 *                     series' title
 *   EVENT_PATCH       the event's capacity, instructor and status as they are
 *                     now (all three set); status CANCELLED also cancels every
 *                     active booking of the event (no BOOKING_SET for them)
 *   EVENT_EDIT        the event's start, duration, location, instructor,
 *                     capacity, waitlist capacity, price and title as they
 *                     are now (title "": its
 *                     series'), scheduled (a cancelled event is restored,
 *                     its bookings stay cancelled); `changed` says what
 *                     moved. NOTIFY EVENT_CHANGED / INSTRUCTOR_SUBSTITUTED
 *                     per active booking follow it.
 *   SERIES_EDIT       a series' spec as it is now (org, zone, location,
 *                     instructor, first date and skips unchanged); a new
 *                     title is its events' from first_event_id on (older
 *                     ones keep the title they had); its events' changes
 *                     are their own records
 *   BOOKING_NEW       a booking created: confirmed, pending_payment (a hold
 *                     until hold_expires_at) or waitlisted (joins the end of
 *                     the event's FIFO waitlist)
 *   BOOKING_SET       an active booking moved to another status: confirmed
 *                     (payment succeeded, or promoted from the waitlist),
 *                     pending_payment (promoted on a priced event), cancelled,
 *                     expired (hold ran out), payment_failed,
 *                     waitlist_expired (the class started: from waitlisted,
 *                     each followed by NOTIFY WAITLIST_EXPIRED). Never back
 *                     to waitlisted. A promotion is followed by NOTIFY
 *                     PROMOTED. `late` on a cancel inside the org's cut-off.
 *   BOOKING_RESTORE   snapshots only: a booking as it is, in any status; the
 *                     bookings of an event in sequence order (waitlisted ones
 *                     in FIFO order)
 *   PAYMENT           a payment outcome recorded; code CORE_OK applied, else
 *                     flagged (CORE_NOT_PENDING, CORE_PAYMENT_MISMATCH);
 *                     ref is the provider's event id, intent_id the intent
 *                     paid (version 2 of the record; version 1 has neither)
 *   PAY_INTENT        the PaymentIntent of a booking's hold was created
 *                     (intent_id pi_...); intent_id "": it could not be,
 *                     the hold is released (BOOKING_SET payment_failed
 *                     follows when the booking still held it). In snapshots
 *                     after the booking's BOOKING_RESTORE.
 *   REFUND            a refund of a paid booking: state due (a cancel before
 *                     the cut-off, or a payment after the hold ended), then
 *                     done (ref re_...) or failed (the provider refused for
 *                     good). In snapshots after PAY_INTENT.
 *   NOTIFY            outbox: a notification to deliver
 *   ORG_SETTINGS      an org's settings as they are now (all of them): at
 *                     its creation when the request gave some, and on each
 *                     patch. In snapshots after the orgs, for the orgs
 *                     whose settings are not the defaults.
 *   IDEM              an idempotency key and its first answer (nothing for
 *                     reporting)
 *   ARCHIVE           events that ended at or before `before` (with their
 *                     bookings, waitlists, idempotency keys older than it)
 *                     leave the core's memory; they happened all the same:
 *                     reporting keeps every row (nothing to delete). Never
 *                     in snapshots.
 *   REMIND            the event's reminder for a lead of `hours` went out:
 *                     the entry's NOTIFY REMINDER records (one per booking
 *                     confirmed then) follow it. next_seq 0: done, the
 *                     event is reminded for `hours` (no lead >= hours is due
 *                     again); else more follow in the next entry, from the
 *                     booking sequence next_seq on (an event with more
 *                     confirmed bookings than one entry holds). In snapshots
 *                     after the event's records.
 *   BOOKING_IMPORT    a booking of the data imported from the seed's
 *                     tables (bookctl import seed, api/import.c), as it
 *                     was: any status, `at` its original created_at, with
 *                     its last change (updated_at) and, for one that was
 *                     on the waitlist, when it joined and when it was
 *                     promoted (0: never). Applied like BOOKING_RESTORE
 *                     (the event's bookings in sequence order, waitlisted
 *                     ones in FIFO order); never decided again.
 *   LEGACY            an imported row's old id (kind, the seed's uuid) and
 *                     the bookd id it became (0 for a customer: its id is
 *                     kept), with the old status when it was not bookd's
 *                     (detail: "attended", "no_show", ...). Catalogue
 *                     state (core/import.h) and the table bookd.legacy_ids.
 *
 * A snapshot file (wal_snapshot_load) is a u64 magic and then entries, each
 * preceded by its u32 size: walk it with core_snapshot_next, then each entry
 * with core_entry_next. Its records rebuild the state at the snapshot's LSN:
 * the catalogue, then per event EVENT_CREATE (start, duration, location,
 * capacity and instructor as they are), EVENT_EDIT if it has a title of its
 * own, EVENT_PATCH if cancelled, its bookings as BOOKING_RESTORE and REMIND
 * if a reminder went out (or is half-way), then
 * IDEM keys. An event's records may span two entries.
 *
 * Decoders take (buf, size), never allocate, never read past size, and check
 * every length and string: bytes from disk are validated, never trusted.
 */
#ifndef BOOKD_CORE_ENTRY_H
#define BOOKD_CORE_ENTRY_H

#include "core.h"

enum core_rec_type {
	CORE_REC_ORG = 1,
	CORE_REC_LOCATION,
	CORE_REC_INSTRUCTOR,
	CORE_REC_CUSTOMER,
	CORE_REC_SERIES,
	CORE_REC_SERIES_GENERATED,
	CORE_REC_EVENT_CREATE,
	CORE_REC_EVENT_PATCH,
	CORE_REC_BOOKING_NEW,
	CORE_REC_BOOKING_SET,
	CORE_REC_PAYMENT,
	CORE_REC_NOTIFY,
	CORE_REC_IDEM,
	CORE_REC_BOOKING_RESTORE,
	CORE_REC_ARCHIVE,
	CORE_REC_REMIND,
	CORE_REC_PAY_INTENT = 17,
	CORE_REC_REFUND = 18,
	CORE_REC_EVENT_EDIT = 19,
	CORE_REC_SERIES_EDIT = 20,
	CORE_REC_ORG_SETTINGS = 21,
	CORE_REC_BOOKING_IMPORT = 23,
	CORE_REC_LEGACY = 24,
	CORE_REC_TYPE_COUNT
};

/* What an old id named (LEGACY records; bookd.legacy_ids.kind:
 * core_legacy_kind_name, core/import.h). */
enum core_legacy_kind {
	CORE_LEGACY_ORG = 1,
	CORE_LEGACY_LOCATION,
	CORE_LEGACY_INSTRUCTOR,
	CORE_LEGACY_CUSTOMER, /* bookd_id 0: the customer id is kept */
	CORE_LEGACY_SERIES,
	CORE_LEGACY_EVENT,    /* a class instance */
	CORE_LEGACY_BOOKING,  /* a registration */
	CORE_LEGACY_WAITLIST, /* a waitlist row: the booking it became */
	CORE_LEGACY_KIND_COUNT
};

/* EVENT_EDIT's `changed`: what the edit changed, for the notifications
 * that follow it and for reporting. */
enum core_edit_changed {
	CORE_EDIT_START = 1,
	CORE_EDIT_DURATION = 2,
	CORE_EDIT_LOCATION = 4,
	CORE_EDIT_TITLE = 8,
	CORE_EDIT_INSTRUCTOR = 16,
	CORE_EDIT_CAPACITY = 32, /* or waitlist capacity, price (a series') */
	CORE_EDIT_RESTORED = 64, /* was cancelled, scheduled again */
	CORE_EDIT_DETACHED =
		128, /* kept off its series' new pattern (booked) */
};

/* IDEM: a keyed decision's first answer, replayed to a retry. */
struct core_idem_result {
	uint64_t lsn; /* runtime only, not in the record: 0 when decoded */
	uint8_t op;   /* enum core_op */
	uint8_t code; /* enum core_code (stored: CORE_OK, flagged payments) */
	uint8_t has_promoted;
	uint32_t count;
	uint64_t id;
	union {
		struct {
			struct core_booking_view booking, promoted;
		};
		struct core_event_view event; /* op EVENT_PATCH */
		struct {		      /* op SERIES_PATCH */
			uint32_t regenerated, kept, cancelled;
		} series;
	};
};

/* One record; core/ itself decides, applies and logs records as this
 * struct (record.c encodes and decodes it). */
struct core_rec {
	uint8_t type; /* enum core_rec_type */
	core_time at; /* decision time, ms since the epoch (UTC) */
	union {
		struct {		     /* ORG, LOCATION, INSTRUCTOR */
			uint64_t id, org_id; /* org_id 0 for an org */
			char name[CORE_NAME_SIZE_MAX];
			char timezone[CORE_TZ_SIZE_MAX]; /* "" when none */
		} cat;
		struct {
			char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
			char email[CORE_NAME_SIZE_MAX],
				name[CORE_NAME_SIZE_MAX];
		} customer;
		struct { /* SERIES, SERIES_EDIT */
			uint64_t id;
			struct core_series_spec spec;
			/* SERIES_EDIT: the first event id of a new title (the
			 * events before it keep theirs) */
			uint64_t first_event_id;
		} series;
		struct {
			uint64_t series_id;
			struct core_date through;
		} generated;
		struct {
			uint64_t id, series_id, org_id, location_id,
				instructor_id;
			core_time start_at;
			uint32_t duration_min, capacity, waitlist_capacity,
				price_cents;
			char currency[4];
		} event;
		struct {
			uint64_t event_id, instructor_id;
			uint32_t capacity;
			uint8_t status; /* enum core_event_status */
		} patch;
		struct { /* EVENT_EDIT: the event as it is now */
			uint64_t event_id, location_id, instructor_id;
			core_time start_at;
			uint32_t duration_min, capacity, waitlist_capacity,
				price_cents;
			char currency[4];
			uint8_t changed; /* enum core_edit_changed bits */
			char title[CORE_NAME_SIZE_MAX]; /* "": the series' */
		} edit;
		struct { /* BOOKING_NEW, _SET, _RESTORE, _IMPORT */
			uint64_t booking_id; /* event id = booking_id >> 24 */
			uint8_t status;	     /* enum core_booking_status */
			core_time hold_expires_at; /* 0: no hold */
			/* SET (cancelled) and RESTORE: a late cancel
			 * (core_booking_view.late); a byte at the end of
			 * the body, there only when true */
			bool late;
			/* NEW, RESTORE, IMPORT ("" for SET) */
			char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
			/* IMPORT only: last change, waitlist joined and
			 * promoted (0: none) */
			core_time updated_at, joined_at, promoted_at;
		} booking;
		struct {
			uint64_t booking_id, amount_cents;
			uint64_t payment_ref; /* hash of the provider's event id */
			char currency[4];
			bool succeeded;
			uint8_t code; /* enum core_code: CORE_OK applied */
			char ref[CORE_PAY_REF_SIZE_MAX];       /* evt_... */
			char intent_id[CORE_PAY_REF_SIZE_MAX]; /* pi_... */
		} payment;
		struct {
			uint64_t booking_id;
			char intent_id[CORE_PAY_REF_SIZE_MAX]; /* "": failed */
		} intent;
		struct {
			uint64_t booking_id, amount_cents;
			char currency[4];
			char intent_id[CORE_PAY_REF_SIZE_MAX]; /* refunded */
			char ref[CORE_PAY_REF_SIZE_MAX]; /* re_... when done */
			uint8_t reason; /* enum core_refund_reason */
			uint8_t state;	/* enum core_refund_state */
		} refund;
		struct {
			uint64_t booking_id;
			uint8_t kind; /* enum core_notify_kind */
		} notify;
		struct {
			uint64_t hi, lo, fingerprint;
			struct core_idem_result result;
		} idem;
		struct {
			core_time before;
		} archive;
		struct {
			uint64_t org_id;
			struct core_org_settings s;
		} org_settings;
		struct {
			uint8_t kind;	   /* enum core_legacy_kind */
			uint64_t bookd_id; /* 0 for a customer */
			char id[CORE_LEGACY_ID_SIZE_MAX + 1];
			char detail[CORE_LEGACY_DETAIL_SIZE];
		} legacy;
		struct {
			uint64_t event_id;
			uint16_t hours; /* the lead: 1..CORE_REMIND_HOURS_MAX */
			uint32_t next_seq; /* 0: done; else the next chunk's */
		} remind;
	} u;
};

/* Decodes the record at *pos of an entry and advances *pos: 1 a record,
 * 0 at the end (*pos == size), -EINVAL malformed (*pos unchanged). */
int core_entry_next(const void *entry, size_t size, size_t *pos,
		    struct core_rec *out);

/* Checks a whole entry: 0 when every record decodes, else -EINVAL. *count
 * (if not NULL) gets the number of records. */
int core_entry_check(const void *entry, size_t size, uint32_t *count);

/* The event a record belongs to; 0 for catalogue and IDEM records. */
uint64_t core_rec_event_id(const struct core_rec *r);

/* Snapshot bytes: *pos = 0 to start (the magic is checked and skipped).
 * 1 with the next entry in *entry / *entry_size, 0 at the end, -EINVAL
 * for a bad magic or framing. */
int core_snapshot_next(const void *snap, size_t size, size_t *pos,
		       const void **entry, size_t *entry_size);

/* Names as the reporting schema spells them ("org", "confirmed", ...). */
const char *core_rec_type_name(uint8_t type);
const char *core_notify_kind_name(uint8_t kind);

#endif
