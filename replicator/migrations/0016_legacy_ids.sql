-- 0016: the old ids of rows imported from the seed's backup tables
-- (`bookctl import seed`, docs/operations.md "Migrating from the seed").
--
-- One row per imported row: its kind ('org', 'location', 'instructor',
-- 'customer', 'series', 'event', 'booking', 'waitlist'), its id in the old
-- system (the seed's uuid) and the bookd id it became (NULL for a
-- customer: its id is kept as it was). detail holds the old status when
-- bookd has none of its name ('attended', 'no_show'). The core keeps the
-- same table in its log (LEGACY records), so an import run again skips
-- what it wrote; reports join on it, e.g.
--   SELECT l.legacy_id, r.* FROM registrations r
--   JOIN bookd.legacy_ids l ON l.kind = 'booking' AND l.bookd_id = r.id;
-- Safe to run again.

CREATE TABLE IF NOT EXISTS bookd.legacy_ids (
  kind        text NOT NULL CHECK (kind IN ('org', 'location', 'instructor',
                'customer', 'series', 'event', 'booking', 'waitlist')),
  legacy_id   text NOT NULL,
  bookd_id    bigint,
  detail      text,
  imported_at timestamptz NOT NULL,
  PRIMARY KEY (kind, legacy_id)
);
CREATE INDEX IF NOT EXISTS legacy_ids_bookd_id
  ON bookd.legacy_ids (kind, bookd_id);
