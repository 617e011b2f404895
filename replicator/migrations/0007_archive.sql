-- 0007: archiving past months of class_events.
--
-- archive_class_events_month(month) detaches the partition class_events_YYYY_MM
-- of a month that is over, renames it class_events_YYYY_MM_archived (to dump
-- or drop at leisure; a new event in that month gets a fresh partition), and
-- lists its events in archived_class_events, all in one transaction. It
-- returns how many events it archived. The replicator still applies what the
-- log says about those events' bookings (registrations, waitlists, payments,
-- notifications); the event's own row is no longer there to update, and an
-- event listed here is the one kind of missing event that does not stop it.

CREATE TABLE IF NOT EXISTS archived_class_events (
  id          bigint PRIMARY KEY,
  start_at    timestamptz NOT NULL,
  archived_in text NOT NULL,         -- the detached table holding its row
  archived_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION archive_class_events_month(month date)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  parent_schema text;
  part_name     text;
  archived_name text;
  n             bigint;
BEGIN
  IF month IS NULL THEN
    RAISE EXCEPTION 'archive_class_events_month: month must not be NULL';
  END IF;
  IF date_trunc('month', month) >= date_trunc('month', now() AT TIME ZONE 'UTC') THEN
    RAISE EXCEPTION 'archive_class_events_month: % is not over yet', month;
  END IF;
  SELECT n2.nspname INTO parent_schema
    FROM pg_class c JOIN pg_namespace n2 ON n2.oid = c.relnamespace
   WHERE c.oid = 'class_events'::regclass;
  part_name := format('class_events_%s', to_char(month, 'YYYY_MM'));
  archived_name := part_name || '_archived';
  IF NOT EXISTS (SELECT 1 FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   JOIN pg_namespace s ON s.oid = c.relnamespace
                  WHERE i.inhparent = 'class_events'::regclass
                    AND c.relname = part_name AND s.nspname = parent_schema) THEN
    RAISE EXCEPTION 'archive_class_events_month: no partition %', part_name;
  END IF;
  IF to_regclass(format('%I.%I', parent_schema, archived_name)) IS NOT NULL THEN
    RAISE EXCEPTION 'archive_class_events_month: % exists already', archived_name;
  END IF;
  -- the same lock as partition creation: never while one is made
  PERFORM pg_advisory_xact_lock(hashtext('bookd.class_events_partitions'));
  EXECUTE format('INSERT INTO archived_class_events (id, start_at, archived_in)'
                 ' SELECT id, start_at, %L FROM %I.%I',
                 archived_name, parent_schema, part_name);
  GET DIAGNOSTICS n = ROW_COUNT;
  EXECUTE format('ALTER TABLE %I.class_events DETACH PARTITION %I.%I',
                 parent_schema, parent_schema, part_name);
  EXECUTE format('ALTER TABLE %I.%I RENAME TO %I',
                 parent_schema, part_name, archived_name);
  RETURN n;
END;
$$;
