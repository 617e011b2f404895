-- 0010: bookd's scheduled jobs, as the seed's pg_cron functions show them.
--
-- bookd runs its jobs itself (hold expiry, daily generation, snapshots,
-- materialized view refresh, ...: docs/operations.md, Jobs) and keeps their
-- state in a registry (core/jobs.h). The replicator's maintenance thread
-- copies it here every few seconds: bookd.jobs, one row per job and log
-- (the current state), and bookd.job_runs, the runs that did something or
-- failed (a run that succeeded with nothing to say, the every-second tick
-- that expired nothing, is counted in bookd.jobs only), pruned after a
-- retention (7 days). Both live in the schema bookd, bookd's own
-- bookkeeping; the seed's queries read them through
-- public.get_cron_job_status() and public.get_cron_job_history(hours),
-- whose columns are pg_cron's (cron.job, cron.job_run_details): status
-- 'succeeded' or 'failed' ('running' while a run is under way, NULL when
-- the job never ran).

CREATE SCHEMA IF NOT EXISTS bookd;

CREATE TABLE IF NOT EXISTS bookd.jobs (
  log_id              text NOT NULL,      -- the bookd (replication_state)
  jobname             text NOT NULL,
  schedule            text NOT NULL,      -- "every 1 s", "daily, and at start"
  active              boolean NOT NULL,   -- false: configured off
  running             boolean NOT NULL DEFAULT false,
  last_run_started_at timestamptz,        -- NULL: never ran
  last_run_duration   interval,
  last_run_status     text CHECK (last_run_status IN ('succeeded', 'failed')),
  last_run_message    text,
  next_run            timestamptz,        -- NULL: not on a clock
  runs                bigint NOT NULL DEFAULT 0,
  failures            bigint NOT NULL DEFAULT 0,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (log_id, jobname)
);

CREATE TABLE IF NOT EXISTS bookd.job_runs (
  runid          bigserial PRIMARY KEY,
  log_id         text NOT NULL,
  jobname        text NOT NULL,
  seq            bigint NOT NULL,         -- the registry's, per bookd start
  status         text NOT NULL CHECK (status IN ('succeeded', 'failed')),
  return_message text,
  start_time     timestamptz NOT NULL,
  end_time       timestamptz NOT NULL,
  UNIQUE (log_id, jobname, start_time, seq)  -- a copy sent twice is one row
);
CREATE INDEX IF NOT EXISTS job_runs_start_time_idx
  ON bookd.job_runs (start_time);

-- pg_cron's cron.job and the last of its runs, one row per job.
CREATE OR REPLACE FUNCTION public.get_cron_job_status()
RETURNS TABLE (
  jobname             text,
  schedule            text,
  active              boolean,
  last_run_started_at timestamptz,
  last_run_status     text,
  last_run_duration   interval,
  return_message      text,
  next_run            timestamptz,
  runs                bigint,
  failures            bigint,
  log_id              text,
  updated_at          timestamptz
)
LANGUAGE sql STABLE
AS $$
  SELECT j.jobname, j.schedule, j.active, j.last_run_started_at,
         CASE WHEN j.running THEN 'running' ELSE j.last_run_status END,
         j.last_run_duration, j.last_run_message, j.next_run, j.runs,
         j.failures, j.log_id, j.updated_at
    FROM bookd.jobs j
   ORDER BY j.jobname, j.log_id
$$;

-- pg_cron's cron.job_run_details of the last `hours` hours, newest first.
CREATE OR REPLACE FUNCTION public.get_cron_job_history(hours integer DEFAULT 24)
RETURNS TABLE (
  runid          bigint,
  jobname        text,
  status         text,
  return_message text,
  start_time     timestamptz,
  end_time       timestamptz,
  duration       interval,
  log_id         text
)
LANGUAGE sql STABLE
AS $$
  SELECT r.runid, r.jobname, r.status, r.return_message, r.start_time,
         r.end_time, r.end_time - r.start_time, r.log_id
    FROM bookd.job_runs r
   WHERE r.start_time >= now() - make_interval(hours => hours)
   ORDER BY r.start_time DESC, r.runid DESC
$$;
