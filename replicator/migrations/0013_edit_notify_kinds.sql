-- 0013: the notification kinds of event edits (docs/core.md "Event edits"):
-- 'event_changed' (a booked class got a new start, duration, location or
-- title) and 'instructor_substituted'. The CHECK of 0012 is widened in
-- place.

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
  CHECK (kind IN ('booking_confirmed', 'pending_payment', 'promoted',
                  'cancelled', 'event_cancelled', 'reminder', 'hold_expired',
                  'event_changed', 'instructor_substituted'));
