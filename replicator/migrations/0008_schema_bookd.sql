-- 0008: bookd's own bookkeeping in schema bookd.
--
-- The tables that are bookd's and not the seed's (applied migrations,
-- replication positions, the list of archived events) live in schema
-- `bookd`, so they never collide with an application's tables of the same
-- name (a Rails or Flyway schema_migrations in public); the seed's tables,
-- views and functions keep their names in public.
--
-- bookd.schema_migrations is the runner's (replicator/pg.c): it creates it,
-- or moves public.schema_migrations there when that is bookd's (its columns
-- and its 0001_schema row), before any migration runs. This file moves the
-- rest of a database made before it: replication_state (its rows, so
-- replication resumes where it was) and archived_class_events, and replaces
-- the functions that read them. On a fresh database 0001 and 0005 made
-- bookd.replication_state already (they name it bookd.; before 0008 they
-- said replication_state) and 0007 made public.archived_class_events, moved
-- here. Safe to run again.

CREATE SCHEMA IF NOT EXISTS bookd;

DO $$
BEGIN
  IF to_regclass('bookd.replication_state') IS NULL
     AND to_regclass('public.replication_state') IS NOT NULL THEN
    ALTER TABLE public.replication_state SET SCHEMA bookd;
  END IF;
  IF to_regclass('bookd.archived_class_events') IS NULL
     AND to_regclass('public.archived_class_events') IS NOT NULL THEN
    ALTER TABLE public.archived_class_events SET SCHEMA bookd;
  END IF;
END;
$$;

-- 0003's, reading bookd.replication_state.
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

-- 0007's, listing into bookd.archived_class_events.
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
  EXECUTE format('INSERT INTO bookd.archived_class_events (id, start_at, archived_in)'
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
