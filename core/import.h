/*
 * import.h: the core's side of importing another system's data with its
 * history (api/import.c reads the seed's CSV backups and plans the
 * records; docs/operations.md "Migrating from the seed"): the old ids
 * kept as LEGACY records in the catalogue, the ids the next objects get,
 * and the writing of an import entry, checked whole before it is logged so
 * that applying it cannot fail.
 *
 * An import entry holds catalogue records (ORG, LOCATION, INSTRUCTOR,
 * CUSTOMER, SERIES, SERIES_GENERATED, LEGACY) and events with their
 * history: EVENT_CREATE, then that event's BOOKING_IMPORT records in
 * sequence order, then EVENT_PATCH (cancelled) if it was cancelled. An
 * event's bookings are in the entry that creates it: an entry is all or
 * nothing, so a unit (an event, its bookings and their LEGACY records) is
 * either imported or not, and an import run again skips the units whose
 * LEGACY record is there.
 */
#ifndef BOOKD_CORE_IMPORT_H
#define BOOKD_CORE_IMPORT_H

#include "core.h"
#include "entry.h"

#include <stddef.h>
#include <stdint.h>

/* "org", "location", "instructor", "customer", "series", "event",
 * "booking", "waitlist"; "unknown" outside. */
const char *core_legacy_kind_name(uint8_t kind);

/* The bookd id an old id became: 0 and *bookd_id; -ENOENT when it was not
 * imported; -EEXIST when another old id has its 64-bit hash (it cannot be
 * imported). */
int core_legacy_get(core *c, uint8_t kind, const char *id, uint64_t *bookd_id);

/* The ids the next catalogue objects and event will get. */
struct core_import_next {
	uint64_t org, location, instructor, series, event;
};
void core_import_next(core *c, struct core_import_next *out);

/* The bytes r takes in an entry (an entry holds CORE_IMPORT_ENTRY_MAX). */
size_t core_import_rec_size(const struct core_rec *r);
#define CORE_IMPORT_ENTRY_MAX 65536

/* Writes recs[0..n) as one entry: checked whole (ids the next ones in
 * order, references to objects that exist or come before in the entry,
 * an event's bookings after it in sequence order within its capacity and
 * waitlist capacity, one active booking per customer and event, no old
 * id twice), then logged and applied. Returns 0 and *lsn; -ESTALE when
 * another catalogue operation took the ids first (plan the entry again);
 * -EINVAL when the records do not fit (*bad: the index of the first that
 * does not); -E2BIG past CORE_IMPORT_ENTRY_MAX; or the log's -errno.
 * Nothing is logged unless 0. On a port with nothing else in flight. */
int core_import_write(core_port *p, const struct core_rec *recs, uint32_t n,
		      uint64_t *lsn, uint32_t *bad);

#endif
