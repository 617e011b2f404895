/*
 * names.c: the names of the public enums, as the HTTP and binary answers,
 * the logs, the metrics and the reporting schema spell them (core_code_name,
 * core_op_name, core_booking_status_name, core_limit_message in core.h;
 * core_rec_type_name, core_notify_kind_name in entry.h). Each is a table
 * indexed by the enum; a value outside it reads as "unknown" ("other" for
 * core_op_name, the metrics' label for it).
 */
#include "core.h"
#include "entry.h"

#include <stdio.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t count,
			   unsigned value)
{
	return value < count && names[value] ? names[value] : "unknown";
}

const char *core_code_name(enum core_code code)
{
	static const char *const names[CORE_CODE_COUNT] = {
		[CORE_OK] = "ok",
		[CORE_EVENT_FULL] = "event_full",
		[CORE_ALREADY_BOOKED] = "already_booked",
		[CORE_NOT_BOOKABLE] = "event_not_bookable",
		[CORE_NO_EVENT] = "event_not_found",
		[CORE_NO_BOOKING] = "booking_not_found",
		[CORE_NO_ORG] = "org_not_found",
		[CORE_NO_LOCATION] = "location_not_found",
		[CORE_NO_INSTRUCTOR] = "instructor_not_found",
		[CORE_NO_SERIES] = "series_not_found",
		[CORE_NO_CUSTOMER] = "customer_not_found",
		[CORE_NOT_ACTIVE] = "booking_not_active",
		[CORE_NOT_PENDING] = "booking_not_pending",
		[CORE_PAYMENT_MISMATCH] = "payment_mismatch",
		[CORE_CAPACITY_BELOW_TAKEN] = "capacity_below_taken",
		[CORE_IDEM_MISMATCH] = "idempotency_key_reused",
		[CORE_IDEM_IN_FLIGHT] = "idempotency_key_in_use",
		[CORE_INVALID] = "invalid_request",
		[CORE_FULL] = "unavailable",
		[CORE_LIMIT] = "limit_exceeded",
		[CORE_EVENT_STARTED] = "event_started",
	};
	return name_of(names, COUNT_OF(names), (unsigned)code);
}

const char *core_op_name(enum core_op op)
{
	static const char *const names[CORE_OP_COUNT] = {
		[CORE_OP_NONE] = "none",
		[CORE_OP_BOOK] = "book",
		[CORE_OP_CANCEL] = "cancel",
		[CORE_OP_PAY] = "pay",
		[CORE_OP_EVENT_PATCH] = "event_patch",
		[CORE_OP_EVENT_GET] = "event_get",
		[CORE_OP_BOOKING_GET] = "booking_get",
		[CORE_OP_TICK] = "tick",
		[CORE_OP_CUSTOMER_BOOKINGS] = "customer_bookings",
		[CORE_OP_EVENT_LIST] = "event_list",
		[CORE_OP_ORG_CREATE] = "org_create",
		[CORE_OP_LOCATION_CREATE] = "location_create",
		[CORE_OP_INSTRUCTOR_CREATE] = "instructor_create",
		[CORE_OP_CUSTOMER_UPSERT] = "customer_upsert",
		[CORE_OP_SERIES_CREATE] = "series_create",
		[CORE_OP_GENERATE] = "generate",
		[CORE_OP_ARCHIVE] = "archive",
		[CORE_OP_REMIND] = "remind",
		[CORE_OP_SERIES_PATCH] = "series_patch",
		[CORE_OP_ORG_PATCH] = "org_patch",
		[CORE_OP_CATALOG_GET] = "catalog_get",
		[CORE_OP_CATALOG_LIST] = "catalog_list",
	};
	return (unsigned)op < CORE_OP_COUNT && names[op] ? names[op] : "other";
}

const char *core_limit_message(const struct core_resp *resp, char *buf,
			       size_t size)
{
	/* Each takes the limit's value (resp->count) as its one %u. */
	static const char *const formats[] = {
		[CORE_LIMIT_GENERATE_DAYS] =
			"until is more than %u days ahead (generate_max_days)",
		[CORE_LIMIT_EVENTS] =
			"a shard would hold more than %u events (max_events "
			"per shard); archive past events or raise it",
		[CORE_LIMIT_BOOKINGS] =
			"a shard holds %u bookings (max_bookings per shard); "
			"archive past events or raise it",
		[CORE_LIMIT_CUSTOMERS] =
			"a shard holds %u customers (max_customers per shard)",
		[CORE_LIMIT_EVENT_BOOKINGS] =
			"the event had %u bookings made on it, its most",
		[CORE_LIMIT_CANCEL_NOTIFY] =
			"the event's change would send more than %u "
			"notifications, more than one decision can: cancel "
			"some of its bookings first",
	};
	uint32_t kind = (uint32_t)resp->id; /* an enum core_limit */

	if (kind < COUNT_OF(formats) && formats[kind])
		snprintf(buf, size, formats[kind], (unsigned)resp->count);
	else
		snprintf(buf, size, "a configured limit was reached");
	return buf;
}

const char *core_booking_status_name(uint8_t status)
{
#define NAME_AT(value, name) [value] = name,
	static const char *const names[] = {
		CORE_BOOKING_STATUS_NAMES(NAME_AT) /* [value] = name, ... */
	};
#undef NAME_AT
	return name_of(names, COUNT_OF(names), status);
}

const char *core_rec_type_name(uint8_t type)
{
	static const char *const names[CORE_REC_TYPE_COUNT] = {
		[CORE_REC_ORG] = "org",
		[CORE_REC_LOCATION] = "location",
		[CORE_REC_INSTRUCTOR] = "instructor",
		[CORE_REC_CUSTOMER] = "customer",
		[CORE_REC_SERIES] = "series",
		[CORE_REC_SERIES_GENERATED] = "series_generated",
		[CORE_REC_EVENT_CREATE] = "event_create",
		[CORE_REC_EVENT_PATCH] = "event_patch",
		[CORE_REC_BOOKING_NEW] = "booking_new",
		[CORE_REC_BOOKING_SET] = "booking_set",
		[CORE_REC_PAYMENT] = "payment",
		[CORE_REC_NOTIFY] = "notify",
		[CORE_REC_IDEM] = "idem",
		[CORE_REC_BOOKING_RESTORE] = "booking_restore",
		[CORE_REC_ARCHIVE] = "archive",
		[CORE_REC_REMIND] = "remind",
		[CORE_REC_PAY_INTENT] = "pay_intent",
		[CORE_REC_REFUND] = "refund",
		[CORE_REC_EVENT_EDIT] = "event_edit",
		[CORE_REC_SERIES_EDIT] = "series_edit",
		[CORE_REC_ORG_SETTINGS] = "org_settings",
		[CORE_REC_BOOKING_IMPORT] = "booking_import",
		[CORE_REC_LEGACY] = "legacy",
	};
	return name_of(names, COUNT_OF(names), type);
}

const char *core_notify_kind_name(uint8_t kind)
{
	static const char *const names[] = {
		[CORE_NOTIFY_BOOKING_CONFIRMED] = "booking_confirmed",
		[CORE_NOTIFY_PROMOTED] = "promoted",
		[CORE_NOTIFY_CANCELLED] = "cancelled",
		[CORE_NOTIFY_EVENT_CANCELLED] = "event_cancelled",
		[CORE_NOTIFY_REMINDER] = "reminder",
		[CORE_NOTIFY_HOLD_EXPIRED] = "hold_expired",
		[CORE_NOTIFY_PENDING_PAYMENT] = "pending_payment",
		[CORE_NOTIFY_EVENT_CHANGED] = "event_changed",
		[CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED] = "instructor_substituted",
		[CORE_NOTIFY_WAITLIST_EXPIRED] = "waitlist_expired",
	};
	return name_of(names, COUNT_OF(names), kind);
}
