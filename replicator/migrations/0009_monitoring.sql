-- 0009: the seed's monitoring, true (docs/operations.md, "Monitoring in
-- PostgreSQL").
--
-- performance_metrics now holds per-request samples (the replicator's
-- maintenance thread COPYs what the network threads kept, each with its
-- sample_rate in tags) and, per promotion the replicator applies,
-- waitlist_promotion_delay: how long after bookd decided it the promotion
-- reached PostgreSQL (ms). Every rule of active_alerts can fire from what
-- bookd writes:
--   - active_alerts: a waitlist_delay row from waitlist_promotion_delay;
--     partitions must be attached to class_events (a table of the name in
--     the way no longer passes for one);
--   - ensure_class_events_partitions raises when such a table is in the
--     way (it used to skip it silently), so the partitions_ahead job
--     records the failure (health_checks 'partitions', critical);
--   - health_check_database counts a partition missing the same way, and
--     records its problems (before, `problems || 'response time > 1s'`
--     read the literal as an array and failed: a slow database raised
--     instead of writing its warning or critical row).
-- Rows older than the retention are deleted by bookd's prune job
-- (--metrics-retention-days); health_checks gets a BRIN index on
-- checked_at for it. Safe to run again.

CREATE INDEX IF NOT EXISTS health_checks_time_idx
  ON health_checks USING brin (checked_at);

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
    IF to_regclass(format('%I.%I', parent_schema, part_name)) IS NOT NULL THEN
      -- there already: a partition of ours, or something in its way
      IF NOT EXISTS (SELECT 1 FROM pg_inherits i
                      WHERE i.inhparent = format('%I.class_events', parent_schema)::regclass
                        AND i.inhrelid = to_regclass(format('%I.%I', parent_schema, part_name))) THEN
        RAISE EXCEPTION 'ensure_class_events_partitions: %.% exists and is not a partition of class_events',
          parent_schema, part_name
          USING HINT = 'rename or drop it (an archived month is renamed *_archived)';
      END IF;
    ELSE
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

-- ---- Alerts ------------------------------------------------------------------
-- One row per active alert: severity 'warning' or 'critical'.
--   health_check      the latest check of each name in the last hour, if not healthy
--   booking_latency   p95 of booking_operation_duration (ms) per operation over
--                     15 minutes: > 2000 warning, > 5000 critical
--   booking_errors    share of booking operations tagged {"outcome":"error"}
--                     over 15 minutes (>= 20 samples): > 5% warning, > 20% critical
--   waitlist_delay    upcoming events with a free seat and people waiting
--                     (warning); or a promotion that reached PostgreSQL late:
--                     waitlist_promotion_delay (ms, the replicator's, one
--                     row per promotion) over 15 minutes, max > 30000
--                     warning, > 300000 critical (the seed: < 5 min)
--   partitions        the class_events partition of this (critical) or next
--                     (warning) month is not attached (missing, or a table
--                     of that name that is not one); a failed partition
--                     run shows as the health check 'partitions'
CREATE OR REPLACE VIEW active_alerts AS
WITH latest_checks AS (
  SELECT DISTINCT ON (check_name) check_name, status, details, checked_at, response_time_ms
    FROM health_checks
   WHERE checked_at > now() - interval '1 hour'
   ORDER BY check_name, checked_at DESC
), booking AS (
  SELECT coalesce(tags->>'operation', 'unknown') AS operation,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY metric_value) AS p95_ms,
         count(*) AS samples,
         count(*) FILTER (WHERE tags->>'outcome' = 'error') AS errors,
         max(recorded_at) AS last_at
    FROM performance_metrics
   WHERE metric_name = 'booking_operation_duration'
     AND recorded_at > now() - interval '15 minutes'
   GROUP BY 1
), waitlist AS (
  SELECT count(*) AS events, min(start_at) AS first_start, max(updated_at) AS last_at
    FROM class_events
   WHERE status = 'scheduled' AND start_at > now()
     AND waitlist_count > 0 AND reg_count + held_count < capacity
), promotion AS (
  SELECT max(metric_value) AS max_ms, count(*) AS promotions,
         count(*) FILTER (WHERE metric_value > 30000) AS late,
         max(recorded_at) AS last_at
    FROM performance_metrics
   WHERE metric_name = 'waitlist_promotion_delay'
     AND recorded_at > now() - interval '15 minutes'
), parts AS (
  SELECT m.month, m.severity,
         format('class_events_%s', to_char(m.month, 'YYYY_MM')) AS part_name
    FROM (VALUES (date_trunc('month', now() AT TIME ZONE 'UTC'), 'critical'),
                 (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'warning'))
         AS m(month, severity)
)
SELECT 'health_check'::text AS alert_type,
       c.status AS severity,
       c.check_name AS source,
       format('health check %s is %s', c.check_name, c.status) AS message,
       c.response_time_ms AS value,
       NULL::double precision AS threshold,
       c.details,
       c.checked_at AS triggered_at
  FROM latest_checks c
 WHERE c.status IN ('warning', 'critical')
UNION ALL
SELECT 'booking_latency',
       CASE WHEN b.p95_ms > 5000 THEN 'critical' ELSE 'warning' END,
       b.operation,
       format('booking %s p95 %s ms over 15 minutes', b.operation, round(b.p95_ms::numeric, 1)),
       b.p95_ms,
       CASE WHEN b.p95_ms > 5000 THEN 5000 ELSE 2000 END,
       jsonb_build_object('operation', b.operation, 'samples', b.samples, 'window', '15 minutes'),
       b.last_at
  FROM booking b
 WHERE b.p95_ms > 2000
UNION ALL
SELECT 'booking_errors',
       CASE WHEN b.errors > 0.20 * b.samples THEN 'critical' ELSE 'warning' END,
       b.operation,
       format('booking %s: %s of %s operations failed over 15 minutes', b.operation, b.errors, b.samples),
       100.0 * b.errors / b.samples,
       CASE WHEN b.errors > 0.20 * b.samples THEN 20 ELSE 5 END,
       jsonb_build_object('operation', b.operation, 'samples', b.samples, 'errors', b.errors),
       b.last_at
  FROM booking b
 WHERE b.samples >= 20 AND b.errors > 0.05 * b.samples
UNION ALL
SELECT 'waitlist_delay', 'warning', 'class_events',
       format('%s upcoming events have a free seat and people waiting', w.events),
       w.events::double precision,
       0,
       jsonb_build_object('events', w.events, 'first_start_at', w.first_start),
       w.last_at
  FROM waitlist w
 WHERE w.events > 0
UNION ALL
SELECT 'waitlist_delay',
       CASE WHEN p.max_ms > 300000 THEN 'critical' ELSE 'warning' END,
       'waitlist_promotion_delay',
       format('%s of %s promotions reached PostgreSQL more than 30 s after they were decided (max %s s) over 15 minutes',
              p.late, p.promotions, round((p.max_ms / 1000)::numeric, 1)),
       p.max_ms,
       CASE WHEN p.max_ms > 300000 THEN 300000 ELSE 30000 END,
       jsonb_build_object('promotions', p.promotions, 'late', p.late, 'window', '15 minutes'),
       p.last_at
  FROM promotion p
 WHERE p.max_ms > 30000
UNION ALL
SELECT 'partitions', p.severity, 'class_events',
       format('partition %s is missing', p.part_name),
       NULL::double precision,
       NULL::double precision,
       jsonb_build_object('partition', p.part_name),
       now()
  FROM parts p
 WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i
                     WHERE i.inhparent = 'class_events'::regclass
                       AND i.inhrelid = to_regclass(p.part_name));

-- Database health: response time of a probe, connections, size, partitions
-- of this and next month (attached), materialized views populated, replication positions.
-- Records a health_checks row ('database') and returns it as jsonb.
CREATE OR REPLACE FUNCTION health_check_database()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  t0          timestamptz := clock_timestamp();
  ms          double precision;
  conns       integer;
  max_conns   integer := current_setting('max_connections')::integer;
  missing     text[];
  unpopulated text[];
  repl        jsonb;
  st          text := 'healthy';
  problems    text[] := '{}';
  details     jsonb;
BEGIN
  SELECT count(*) INTO conns FROM pg_stat_activity WHERE datname = current_database();

  SELECT coalesce(array_agg(p), '{}') INTO missing
    FROM (SELECT format('class_events_%s', to_char(m, 'YYYY_MM')) AS p
            FROM (VALUES (date_trunc('month', now() AT TIME ZONE 'UTC')),
                         (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')) v(m)) x
   WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i
                      WHERE i.inhparent = 'class_events'::regclass
                        AND i.inhrelid = to_regclass(p));

  SELECT coalesce(array_agg(matviewname::text), '{}') INTO unpopulated
    FROM pg_matviews
   WHERE matviewname IN ('event_search_mv', 'customer_dashboard_mv',
                         'instructor_schedule_mv', 'org_analytics_mv')
     AND NOT ispopulated;

  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'log_id', log_id, 'applied_lsn', applied_lsn, 'updated_at', updated_at,
           'seconds_since_update', round(extract(epoch FROM now() - updated_at)::numeric, 1))
           ORDER BY log_id), '[]')
    INTO repl FROM bookd.replication_state;

  ms := extract(epoch FROM clock_timestamp() - t0) * 1000;

  IF ms > 1000 THEN st := 'critical'; problems := problems || 'response time > 1s'::text;
  ELSIF ms > 500 THEN st := 'warning'; problems := problems || 'response time > 500ms'::text;
  END IF;
  IF conns > 0.9 * max_conns THEN st := 'critical'; problems := problems || 'connections > 90%'::text;
  ELSIF conns > 0.75 * max_conns THEN
    IF st = 'healthy' THEN st := 'warning'; END IF;
    problems := problems || 'connections > 75%'::text;
  END IF;
  IF array_length(missing, 1) > 0 THEN
    IF format('class_events_%s', to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')) = ANY (missing) THEN
      st := 'critical';
    ELSIF st = 'healthy' THEN
      st := 'warning';
    END IF;
    problems := problems || 'partitions missing'::text;
  END IF;
  IF array_length(unpopulated, 1) > 0 THEN
    IF st = 'healthy' THEN st := 'warning'; END IF;
    problems := problems || 'materialized views not populated'::text;
  END IF;

  details := jsonb_build_object(
    'connections', conns,
    'max_connections', max_conns,
    'database_size_bytes', pg_database_size(current_database()),
    'class_events_partitions', (SELECT count(*) FROM pg_inherits
                                 WHERE inhparent = 'class_events'::regclass),
    'missing_partitions', to_jsonb(missing),
    'unpopulated_views', to_jsonb(unpopulated),
    'replication', repl,
    'problems', to_jsonb(problems));

  INSERT INTO health_checks (check_name, status, details, response_time_ms)
  VALUES ('database', st, details, ms);

  RETURN jsonb_build_object('check_name', 'database', 'status', st,
                            'response_time_ms', round(ms::numeric, 3),
                            'checked_at', now(), 'details', details);
END;
$$;
