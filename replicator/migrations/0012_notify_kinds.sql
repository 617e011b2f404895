-- 0012: the notification kinds bookd decides today. A new booking that holds
-- a seat to pay (a priced event) is notified as 'pending_payment'; reminders
-- before class stay one kind, 'reminder' (the lead is the record's, in the
-- log: docs/core.md "Reminders"). The CHECK of 0001 is widened in place.

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
  CHECK (kind IN ('booking_confirmed', 'pending_payment', 'promoted',
                  'cancelled', 'event_cancelled', 'reminder', 'hold_expired'));
