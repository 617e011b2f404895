-- 0004: room on class_events pages for HOT updates.
--
-- The replicator updates an event's counters (reg_count, held_count,
-- waitlist_count, updated_at: none indexed) at every booking. With full pages
-- each such update is a new tuple on another page plus an entry in each of
-- the five indexes; with free room on the page it is a HOT update, no index
-- touched. New partitions are created WITH (fillfactor = 70) (the function
-- is 0002's with that clause), existing ones are set to it (their pages get
-- the room as they are rewritten or filled anew). Safe to run again.

CREATE OR REPLACE FUNCTION ensure_class_events_partitions(from_date date, to_date date)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
  parent_schema text;
  month_start   date;
  last_month    date;
  part_name     text;
  created       integer := 0;
BEGIN
  IF from_date IS NULL OR to_date IS NULL THEN
    RAISE EXCEPTION 'ensure_class_events_partitions: dates must not be NULL';
  END IF;
  IF to_date < from_date THEN
    RAISE EXCEPTION 'ensure_class_events_partitions: to_date % before from_date %',
      to_date, from_date;
  END IF;
  IF to_date > from_date + 3660 THEN
    RAISE EXCEPTION 'ensure_class_events_partitions: more than 10 years at once';
  END IF;

  SELECT n.nspname INTO parent_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = 'class_events'::regclass;

  -- one creator at a time; the lock is released at the end of the transaction
  PERFORM pg_advisory_xact_lock(hashtext('bookd.class_events_partitions'));

  month_start := date_trunc('month', from_date)::date;
  last_month  := date_trunc('month', to_date)::date;
  WHILE month_start <= last_month LOOP
    part_name := format('class_events_%s', to_char(month_start, 'YYYY_MM'));
    IF to_regclass(format('%I.%I', parent_schema, part_name)) IS NULL THEN
      -- bounds in UTC whatever the session's TimeZone
      EXECUTE format(
        'CREATE TABLE %I.%I PARTITION OF %I.class_events FOR VALUES FROM (%L) TO (%L)'
        ' WITH (fillfactor = 70)',
        parent_schema, part_name, parent_schema,
        (month_start::timestamp AT TIME ZONE 'UTC'),
        ((month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
      created := created + 1;
    END IF;
    month_start := (month_start + interval '1 month')::date;
  END LOOP;
  RETURN created;
END;
$$;

DO $$
DECLARE
  part regclass;
BEGIN
  FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i
               WHERE i.inhparent = 'class_events'::regclass LOOP
    EXECUTE format('ALTER TABLE %s SET (fillfactor = 70)', part);
  END LOOP;
END;
$$;
