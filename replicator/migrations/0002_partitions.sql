-- 0002: monthly partitions of class_events.
--
-- ensure_class_events_partitions(from_date, to_date) creates every missing
-- partition class_events_YYYY_MM for the months (UTC) from from_date's to
-- to_date's, both included, and returns how many it created. Idempotent and
-- safe to call concurrently (an advisory lock serializes callers). The
-- replicator calls it ahead of the events it applies (and at start-up for its
-- horizon); there is no default partition, so nothing lands in a catch-all.

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
        'CREATE TABLE %I.%I PARTITION OF %I.class_events FOR VALUES FROM (%L) TO (%L)',
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

COMMENT ON FUNCTION ensure_class_events_partitions(date, date) IS
  'Creates the missing monthly partitions class_events_YYYY_MM (UTC months) from from_date to to_date; returns the count created.';

-- Partitions for the last month to a year ahead; the replicator keeps going.
SELECT ensure_class_events_partitions((current_date - interval '1 month')::date,
                                      (current_date + interval '12 months')::date);
