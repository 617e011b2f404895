/*
 * names.c: the public enums' names and messages, as the HTTP and binary
 * answers and the logs spell them (core_code_name, core_limit_message,
 * core_booking_status_name in core.h).
 */
#include "core.h"

#include <stdio.h>

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
	};
	return (unsigned)code < CORE_CODE_COUNT && names[code] ? names[code]
							       : "unknown";
}

const char *core_limit_message(const struct core_resp *resp, char *buf,
			       size_t size)
{
	unsigned v = resp->count;

	switch ((enum core_limit)resp->id) {
	case CORE_LIMIT_GENERATE_DAYS:
		snprintf(buf, size, "until is more than %u days ahead "
			 "(generate_max_days)", v);
		break;
	case CORE_LIMIT_EVENTS:
		snprintf(buf, size, "a shard would hold more than %u events "
			 "(max_events per shard); archive past events or "
			 "raise it", v);
		break;
	case CORE_LIMIT_BOOKINGS:
		snprintf(buf, size, "a shard holds %u bookings (max_bookings "
			 "per shard); archive past events or raise it", v);
		break;
	case CORE_LIMIT_CUSTOMERS:
		snprintf(buf, size, "a shard holds %u customers "
			 "(max_customers per shard)", v);
		break;
	case CORE_LIMIT_EVENT_BOOKINGS:
		snprintf(buf, size, "the event had %u bookings made on it, "
			 "its most", v);
		break;
	default:
		snprintf(buf, size, "a configured limit was reached");
		break;
	}
	return buf;
}

const char *core_booking_status_name(uint8_t status)
{
	switch (status) {
	case CORE_BOOKING_CONFIRMED:
		return "confirmed";
	case CORE_BOOKING_PENDING_PAYMENT:
		return "pending_payment";
	case CORE_BOOKING_WAITLISTED:
		return "waitlisted";
	case CORE_BOOKING_CANCELLED:
		return "cancelled";
	case CORE_BOOKING_EXPIRED:
		return "expired";
	case CORE_BOOKING_PAYMENT_FAILED:
		return "payment_failed";
	default:
		return "unknown";
	}
}
