-- 0003: materialized views, the alerts view and the seed's functions.
--
-- Every materialized view has a UNIQUE index, so it can be refreshed with
-- REFRESH MATERIALIZED VIEW CONCURRENTLY (readers are never blocked).
-- Thresholds are the seed's: booking p95 > 2 s warning, > 5 s critical;
-- database response > 500 ms warning, > 1 s critical.

-- ---- Materialized views ----------------------------------------------------

-- Public event listings and search: events from yesterday on.
CREATE MATERIALIZED VIEW IF NOT EXISTS event_search_mv AS
SELECT e.id,
       e.start_at,
       e.start_at + make_interval(mins => e.duration_min) AS end_at,
       e.series_id,
       e.org_id,
       o.name AS org_name,
       e.location_id,
       l.name AS location_name,
       e.instructor_id,
       i.name AS instructor_name,
       e.title,
       e.duration_min,
       e.capacity,
       e.reg_count,
       e.held_count,
       e.waitlist_count,
       e.waitlist_capacity,
       greatest(e.capacity - e.reg_count - e.held_count, 0) AS available,
       e.price_cents,
       e.currency,
       e.status,
       coalesce(s.timezone, o.timezone, 'UTC') AS timezone,
       to_tsvector('simple', e.title || ' ' || coalesce(l.name, '') || ' ' ||
                             coalesce(i.name, '') || ' ' || coalesce(o.name, '')) AS search_vector,
       e.updated_at
  FROM class_events e
  LEFT JOIN organizations o ON o.id = e.org_id
  LEFT JOIN locations l ON l.id = e.location_id
  LEFT JOIN instructors i ON i.id = e.instructor_id
  LEFT JOIN class_series s ON s.id = e.series_id
 WHERE e.start_at >= now() - interval '1 day';
CREATE UNIQUE INDEX IF NOT EXISTS event_search_mv_id_idx ON event_search_mv (id, start_at);
CREATE INDEX IF NOT EXISTS event_search_mv_org_start_idx ON event_search_mv (org_id, start_at);
CREATE INDEX IF NOT EXISTS event_search_mv_location_start_idx ON event_search_mv (location_id, start_at);
CREATE INDEX IF NOT EXISTS event_search_mv_instructor_start_idx ON event_search_mv (instructor_id, start_at);
CREATE INDEX IF NOT EXISTS event_search_mv_search_idx ON event_search_mv USING gin (search_vector);

-- One row per customer: counts by status, next and last class.
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_dashboard_mv AS
SELECT c.id AS customer_id,
       c.email,
       c.name,
       count(r.id) AS total_bookings,
       count(r.id) FILTER (WHERE r.status = 'confirmed') AS confirmed_count,
       count(r.id) FILTER (WHERE r.status = 'confirmed' AND e.start_at >= now()) AS upcoming_count,
       count(r.id) FILTER (WHERE r.status = 'pending_payment') AS pending_payment_count,
       count(r.id) FILTER (WHERE r.status = 'waitlisted') AS waitlisted_count,
       count(r.id) FILTER (WHERE r.status = 'cancelled') AS cancelled_count,
       count(r.id) FILTER (WHERE r.status IN ('expired', 'payment_failed')) AS lapsed_count,
       min(e.start_at) FILTER (WHERE r.status IN ('confirmed', 'pending_payment')
                                 AND e.start_at >= now()) AS next_class_at,
       max(e.start_at) FILTER (WHERE r.status = 'confirmed' AND e.start_at < now()) AS last_class_at,
       max(r.created_at) AS last_booked_at
  FROM customers c
  LEFT JOIN registrations r ON r.customer_id = c.id
  LEFT JOIN class_events e ON e.id = r.event_id
 GROUP BY c.id, c.email, c.name;
CREATE UNIQUE INDEX IF NOT EXISTS customer_dashboard_mv_customer_idx
  ON customer_dashboard_mv (customer_id);

-- Instructors' classes from 30 days back on.
CREATE MATERIALIZED VIEW IF NOT EXISTS instructor_schedule_mv AS
SELECT e.instructor_id,
       i.name AS instructor_name,
       e.org_id,
       e.id AS event_id,
       e.series_id,
       e.title,
       e.location_id,
       l.name AS location_name,
       e.start_at,
       e.start_at + make_interval(mins => e.duration_min) AS end_at,
       e.duration_min,
       e.capacity,
       e.reg_count,
       e.held_count,
       e.waitlist_count,
       e.status,
       round(100.0 * e.reg_count / nullif(e.capacity, 0), 1) AS fill_pct
  FROM class_events e
  LEFT JOIN instructors i ON i.id = e.instructor_id
  LEFT JOIN locations l ON l.id = e.location_id
 WHERE e.instructor_id IS NOT NULL
   AND e.start_at >= now() - interval '30 days';
CREATE UNIQUE INDEX IF NOT EXISTS instructor_schedule_mv_event_idx
  ON instructor_schedule_mv (event_id, start_at);
CREATE INDEX IF NOT EXISTS instructor_schedule_mv_instructor_start_idx
  ON instructor_schedule_mv (instructor_id, start_at);

-- One row per org and month (UTC): events, fill, bookings, revenue by currency.
CREATE MATERIALIZED VIEW IF NOT EXISTS org_analytics_mv AS
WITH ev AS (
  SELECT e.org_id,
         date_trunc('month', e.start_at AT TIME ZONE 'UTC')::date AS month,
         count(*) AS events,
         count(*) FILTER (WHERE e.status = 'cancelled') AS cancelled_events,
         coalesce(sum(e.capacity) FILTER (WHERE e.status = 'scheduled'), 0) AS capacity,
         coalesce(sum(e.reg_count) FILTER (WHERE e.status = 'scheduled'), 0) AS confirmed,
         coalesce(sum(e.waitlist_count) FILTER (WHERE e.status = 'scheduled'), 0) AS waiting
    FROM class_events e
   GROUP BY 1, 2
), bk AS (
  SELECT e.org_id,
         date_trunc('month', e.start_at AT TIME ZONE 'UTC')::date AS month,
         count(*) AS bookings,
         count(*) FILTER (WHERE r.status = 'cancelled') AS cancellations,
         count(*) FILTER (WHERE r.status IN ('expired', 'payment_failed')) AS lapsed,
         count(DISTINCT r.customer_id) AS customers
    FROM registrations r
    JOIN class_events e ON e.id = r.event_id
   GROUP BY 1, 2
), wl AS (
  SELECT e.org_id,
         date_trunc('month', e.start_at AT TIME ZONE 'UTC')::date AS month,
         count(*) AS waitlist_joins,
         count(*) FILTER (WHERE w.promoted_at IS NOT NULL) AS waitlist_promotions
    FROM event_waitlists w
    JOIN class_events e ON e.id = w.event_id
   GROUP BY 1, 2
), pay AS (
  SELECT org_id, month, jsonb_object_agg(currency, cents) AS revenue_cents
    FROM (SELECT e.org_id,
                 date_trunc('month', e.start_at AT TIME ZONE 'UTC')::date AS month,
                 p.currency,
                 sum(p.amount_cents) AS cents
            FROM payments p
            JOIN class_events e ON e.id = p.event_id
           WHERE p.status = 'succeeded'
           GROUP BY 1, 2, 3) x
   GROUP BY 1, 2
)
SELECT ev.org_id,
       o.name AS org_name,
       ev.month,
       ev.events,
       ev.cancelled_events,
       ev.capacity,
       ev.confirmed,
       ev.waiting,
       round(100.0 * ev.confirmed / nullif(ev.capacity, 0), 1) AS utilization_pct,
       coalesce(bk.bookings, 0) AS bookings,
       coalesce(bk.cancellations, 0) AS cancellations,
       coalesce(bk.lapsed, 0) AS lapsed,
       coalesce(bk.customers, 0) AS customers,
       coalesce(wl.waitlist_joins, 0) AS waitlist_joins,
       coalesce(wl.waitlist_promotions, 0) AS waitlist_promotions,
       coalesce(pay.revenue_cents, '{}'::jsonb) AS revenue_cents
  FROM ev
  LEFT JOIN organizations o ON o.id = ev.org_id
  LEFT JOIN bk ON bk.org_id = ev.org_id AND bk.month = ev.month
  LEFT JOIN wl ON wl.org_id = ev.org_id AND wl.month = ev.month
  LEFT JOIN pay ON pay.org_id = ev.org_id AND pay.month = ev.month;
CREATE UNIQUE INDEX IF NOT EXISTS org_analytics_mv_org_month_idx
  ON org_analytics_mv (org_id, month);

-- ---- Alerts ------------------------------------------------------------------
-- One row per active alert: severity 'warning' or 'critical'.
--   health_check      the latest check of each name in the last hour, if not healthy
--   booking_latency   p95 of booking_operation_duration (ms) per operation over
--                     15 minutes: > 2000 warning, > 5000 critical
--   booking_errors    share of booking operations tagged {"outcome":"error"}
--                     over 15 minutes (>= 20 samples): > 5% warning, > 20% critical
--   waitlist_delay    upcoming events with a free seat and people waiting
--   partitions        the class_events partition of this (critical) or next
--                     (warning) month is missing
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
SELECT 'partitions', p.severity, 'class_events',
       format('partition %s is missing', p.part_name),
       NULL::double precision,
       NULL::double precision,
       jsonb_build_object('partition', p.part_name),
       now()
  FROM parts p
 WHERE to_regclass(p.part_name) IS NULL;

-- ---- Functions -----------------------------------------------------------

-- Refreshes the four materialized views (CONCURRENTLY when they are populated
-- and `concurrent`), records each duration as a performance metric
-- (materialized_view_refresh_duration, tags {"view": name}) and returns
-- {"refreshed_at", "concurrent", "views": {name: ms}, "total_ms"}.
CREATE OR REPLACE FUNCTION refresh_all_materialized_views(concurrent boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  mv      text;
  t0      timestamptz;
  t_all   timestamptz := clock_timestamp();
  ms      double precision;
  pop     boolean;
  timings jsonb := '{}'::jsonb;
BEGIN
  FOREACH mv IN ARRAY ARRAY['event_search_mv', 'customer_dashboard_mv',
                            'instructor_schedule_mv', 'org_analytics_mv'] LOOP
    t0 := clock_timestamp();
    SELECT ispopulated INTO pop FROM pg_matviews
     WHERE matviewname = mv AND schemaname = ANY (current_schemas(false))
     LIMIT 1;
    IF concurrent AND coalesce(pop, false) THEN
      EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', mv);
    ELSE
      EXECUTE format('REFRESH MATERIALIZED VIEW %I', mv);
    END IF;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    timings := timings || jsonb_build_object(mv, round(ms::numeric, 3));
    INSERT INTO performance_metrics (metric_name, metric_value, tags)
    VALUES ('materialized_view_refresh_duration', ms, jsonb_build_object('view', mv));
  END LOOP;
  RETURN jsonb_build_object(
    'refreshed_at', now(),
    'concurrent', concurrent,
    'views', timings,
    'total_ms', round((extract(epoch FROM clock_timestamp() - t_all) * 1000)::numeric, 3));
END;
$$;

-- Database health: response time of a probe, connections, size, partitions
-- of this and next month, materialized views populated, replication positions.
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
   WHERE to_regclass(p) IS NULL;

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

  IF ms > 1000 THEN st := 'critical'; problems := problems || 'response time > 1s';
  ELSIF ms > 500 THEN st := 'warning'; problems := problems || 'response time > 500ms';
  END IF;
  IF conns > 0.9 * max_conns THEN st := 'critical'; problems := problems || 'connections > 90%';
  ELSIF conns > 0.75 * max_conns THEN
    IF st = 'healthy' THEN st := 'warning'; END IF;
    problems := problems || 'connections > 75%';
  END IF;
  IF array_length(missing, 1) > 0 THEN
    IF format('class_events_%s', to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')) = ANY (missing) THEN
      st := 'critical';
    ELSIF st = 'healthy' THEN
      st := 'warning';
    END IF;
    problems := problems || 'partitions missing';
  END IF;
  IF array_length(unpopulated, 1) > 0 THEN
    IF st = 'healthy' THEN st := 'warning'; END IF;
    problems := problems || 'materialized views not populated';
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

-- Booking-side health (the seed's health_check_booking_system): counters that
-- disagree with registrations on events of the last and next 7 days, holds
-- overdue by more than 5 minutes (replication or expiry behind), events with a
-- free seat and people waiting. Records a health_checks row ('booking_system').
CREATE OR REPLACE FUNCTION health_check_booking_system()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  t0         timestamptz := clock_timestamp();
  ms         double precision;
  mismatched bigint;
  overdue    bigint;
  stalled    bigint;
  st         text := 'healthy';
  details    jsonb;
BEGIN
  SELECT count(*) INTO mismatched
    FROM class_events e
    LEFT JOIN (SELECT event_id,
                      count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
                      count(*) FILTER (WHERE status = 'pending_payment') AS held
                 FROM registrations
                GROUP BY event_id) r ON r.event_id = e.id
   WHERE e.start_at BETWEEN now() - interval '7 days' AND now() + interval '7 days'
     AND (e.reg_count <> coalesce(r.confirmed, 0) OR e.held_count <> coalesce(r.held, 0));

  SELECT count(*) INTO overdue FROM registrations
   WHERE status = 'pending_payment' AND hold_expires_at < now() - interval '5 minutes';

  SELECT count(*) INTO stalled FROM class_events
   WHERE status = 'scheduled' AND start_at > now()
     AND waitlist_count > 0 AND reg_count + held_count < capacity;

  ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
  IF mismatched > 0 THEN st := 'critical';
  ELSIF overdue > 0 OR stalled > 0 OR ms > 1000 THEN st := 'warning';
  END IF;

  details := jsonb_build_object('mismatched_events', mismatched,
                                'overdue_holds', overdue,
                                'waitlist_stalled_events', stalled);
  INSERT INTO health_checks (check_name, status, details, response_time_ms)
  VALUES ('booking_system', st, details, ms);
  RETURN jsonb_build_object('check_name', 'booking_system', 'status', st,
                            'response_time_ms', round(ms::numeric, 3),
                            'checked_at', now(), 'details', details);
END;
$$;

-- Booking latency from performance_metrics (booking_operation_duration, ms)
-- over the last `hours`: overall and per tags->>'operation', with the seed's
-- thresholds and the p95 < 300 ms target.
CREATE OR REPLACE FUNCTION get_booking_performance_summary(hours integer DEFAULT 24)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
  WITH m AS (
    SELECT coalesce(tags->>'operation', 'unknown') AS operation,
           metric_value AS ms,
           tags->>'outcome' = 'error' AS failed
      FROM performance_metrics
     WHERE metric_name = 'booking_operation_duration'
       AND recorded_at > now() - make_interval(hours => hours)
  ), per_op AS (
    SELECT operation,
           jsonb_build_object(
             'count', count(*),
             'errors', count(*) FILTER (WHERE failed),
             'avg_ms', round(avg(ms)::numeric, 3),
             'p50_ms', round((percentile_cont(0.50) WITHIN GROUP (ORDER BY ms))::numeric, 3),
             'p95_ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY ms))::numeric, 3),
             'p99_ms', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 3),
             'max_ms', round(max(ms)::numeric, 3)) AS stats
      FROM m GROUP BY operation
  ), overall AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE failed) AS errors,
           avg(ms) AS avg_ms,
           percentile_cont(0.50) WITHIN GROUP (ORDER BY ms) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           max(ms) AS max_ms
      FROM m
  )
  SELECT jsonb_build_object(
    'window_hours', hours,
    'since', now() - make_interval(hours => hours),
    'generated_at', now(),
    'total_operations', o.n,
    'error_count', o.errors,
    'overall', jsonb_build_object(
      'avg_ms', round(o.avg_ms::numeric, 3),
      'p50_ms', round(o.p50::numeric, 3),
      'p95_ms', round(o.p95::numeric, 3),
      'p99_ms', round(o.p99::numeric, 3),
      'max_ms', round(o.max_ms::numeric, 3)),
    'operations', coalesce((SELECT jsonb_object_agg(operation, stats) FROM per_op), '{}'::jsonb),
    'thresholds', jsonb_build_object('warning_ms', 2000, 'critical_ms', 5000, 'target_p95_ms', 300),
    'meets_target', CASE WHEN o.n = 0 THEN NULL ELSE o.p95 < 300 END,
    'status', CASE WHEN o.n = 0 THEN 'unknown'
                   WHEN o.p95 > 5000 THEN 'critical'
                   WHEN o.p95 > 2000 THEN 'warning'
                   ELSE 'healthy' END)
  FROM overall o;
$$;

-- The whole picture: worst status of the latest health check of each name
-- (last 24 h) and of the active alerts, the checks, the alerts, the last
-- hour's booking latency, replication positions and table size estimates.
CREATE OR REPLACE FUNCTION get_system_health_summary()
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
  WITH checks AS (
    SELECT DISTINCT ON (check_name) check_name, status, checked_at, response_time_ms, details
      FROM health_checks
     WHERE checked_at > now() - interval '24 hours'
     ORDER BY check_name, checked_at DESC
  ), alerts AS (
    SELECT * FROM active_alerts
  ), sev AS (
    SELECT max(CASE status WHEN 'critical' THEN 3 WHEN 'warning' THEN 2
                           WHEN 'unknown' THEN 1 ELSE 0 END) AS s
      FROM (SELECT status FROM checks UNION ALL SELECT severity FROM alerts) x
  )
  SELECT jsonb_build_object(
    'status', CASE (SELECT s FROM sev) WHEN 3 THEN 'critical' WHEN 2 THEN 'warning'
                                       WHEN 1 THEN 'unknown' WHEN 0 THEN 'healthy'
                                       ELSE 'unknown' END,
    'generated_at', now(),
    'checks', coalesce((SELECT jsonb_agg(jsonb_build_object(
                 'check_name', check_name, 'status', status, 'checked_at', checked_at,
                 'response_time_ms', response_time_ms, 'details', details)
                 ORDER BY check_name) FROM checks), '[]'::jsonb),
    'active_alerts', (SELECT count(*) FROM alerts),
    'critical_alerts', (SELECT count(*) FROM alerts WHERE severity = 'critical'),
    'warning_alerts', (SELECT count(*) FROM alerts WHERE severity = 'warning'),
    'alerts', coalesce((SELECT jsonb_agg(jsonb_build_object(
                 'alert_type', alert_type, 'severity', severity, 'source', source,
                 'message', message, 'triggered_at', triggered_at)
                 ORDER BY severity, alert_type) FROM alerts), '[]'::jsonb),
    'booking_performance', get_booking_performance_summary(1)->'overall',
    'replication', coalesce((SELECT jsonb_agg(jsonb_build_object(
                 'log_id', log_id, 'applied_lsn', applied_lsn, 'updated_at', updated_at)
                 ORDER BY log_id) FROM bookd.replication_state), '[]'::jsonb),
    'estimated_rows', (SELECT jsonb_object_agg(c.relname, greatest(c.reltuples, 0)::bigint)
                         FROM pg_class c
                        WHERE c.oid IN (to_regclass('registrations'), to_regclass('customers'),
                                        to_regclass('event_waitlists'), to_regclass('payments'),
                                        to_regclass('notifications'))),
    'class_events_partitions', (SELECT count(*) FROM pg_inherits
                                 WHERE inhparent = 'class_events'::regclass));
$$;
