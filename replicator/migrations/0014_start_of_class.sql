-- 0014: per-org settings, late cancels and closed waitlists (docs/core.md
-- "Org settings", "Start of class").
--   organizations: the org's settings as its ORG_SETTINGS records leave them:
--     cancel_cutoff_hours (a cancel at or after start - cut-off is late;
--     12 when never set), hold_minutes and generation_horizon_days (NULL:
--     the server's flags, --hold-minutes... and --horizon-days).
--   registrations.late: cancelled inside the org's cut-off (or after start,
--     recorded with the service key).
--   registrations.status 'waitlist_expired': waitlisted when the class
--     started; notifications kind 'waitlist_expired' tells the customer.
-- The CHECKs of 0001 (and 0012, 0013) are widened in place.

ALTER TABLE organizations
  ADD COLUMN IF NOT EXISTS cancel_cutoff_hours int NOT NULL DEFAULT 12
    CHECK (cancel_cutoff_hours BETWEEN 0 AND 720),
  ADD COLUMN IF NOT EXISTS hold_minutes int
    CHECK (hold_minutes BETWEEN 1 AND 1440),
  ADD COLUMN IF NOT EXISTS generation_horizon_days int
    CHECK (generation_horizon_days > 0);

ALTER TABLE registrations
  ADD COLUMN IF NOT EXISTS late boolean NOT NULL DEFAULT false;

ALTER TABLE registrations DROP CONSTRAINT IF EXISTS registrations_status_check;
ALTER TABLE registrations ADD CONSTRAINT registrations_status_check
  CHECK (status IN ('confirmed', 'pending_payment', 'waitlisted', 'cancelled',
                    'expired', 'payment_failed', 'waitlist_expired'));

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
  CHECK (kind IN ('booking_confirmed', 'pending_payment', 'promoted',
                  'cancelled', 'event_cancelled', 'reminder', 'hold_expired',
                  'event_changed', 'instructor_substituted',
                  'waitlist_expired'));
