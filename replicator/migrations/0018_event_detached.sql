-- 0018: class_events.detached (docs/core.md "Series edits"): true once a
-- series edit kept the event as it was, off the series' new pattern,
-- because it had bookings (EVENT_EDIT with CORE_EDIT_DETACHED; the event
-- view's "detached"). It stays true: a later edit of the event does not
-- bring it back to the pattern. Reports tell such a class from the
-- series' regular ones, e.g.
--   SELECT id, start_at, title FROM class_events
--    WHERE series_id = $1 AND detached ORDER BY start_at;
-- Events flagged before this migration read false until the replicator
-- resyncs from a snapshot (whose EVENT_EDIT records carry the flag).

ALTER TABLE class_events
  ADD COLUMN IF NOT EXISTS detached boolean NOT NULL DEFAULT false;
