-- 0001: the reporting schema's tables (PostgreSQL 15).
--
-- Written by the replicator from the WAL; never on the booking path. Names are
-- the seed's (class_series, class_events, registrations, event_waitlists, ...)
-- so its debug and dashboard queries keep working. Applied by the migration
-- runner in one transaction, which records the version in schema_migrations.
-- Every statement is safe to run again.
--
-- No foreign keys between replicated tables: WAL lanes (shards) are applied
-- independently, so an event may land before its series, a registration
-- before its customer. Integrity is the core's; the tests check it with
-- queries (e.g. the seed's booking-conflicts query).

CREATE SCHEMA IF NOT EXISTS bookd;
CREATE TABLE IF NOT EXISTS bookd.schema_migrations (
  version    bigint PRIMARY KEY,
  name       text,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Exactly-once apply: the replicator stores the position it applied up to in
-- the same transaction as the rows. One row per log (node and lane).
CREATE TABLE IF NOT EXISTS bookd.replication_state (
  log_id      text PRIMARY KEY,
  applied_lsn bigint NOT NULL DEFAULT 0 CHECK (applied_lsn >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- ---- Catalogue ----------------------------------------------------------

CREATE TABLE IF NOT EXISTS organizations (
  id         bigint PRIMARY KEY,
  name       text NOT NULL,
  timezone   text NOT NULL DEFAULT 'UTC', -- IANA zone
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS locations (
  id         bigint PRIMARY KEY,
  org_id     bigint NOT NULL,
  name       text NOT NULL,
  timezone   text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS locations_org_idx ON locations (org_id);

CREATE TABLE IF NOT EXISTS instructors (
  id         bigint PRIMARY KEY,
  org_id     bigint NOT NULL,
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS instructors_org_idx ON instructors (org_id);

-- A customer id is the platform's own: 1-64 of A-Za-z0-9._:@-
CREATE TABLE IF NOT EXISTS customers (
  id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._:@-]{1,64}$'),
  email      text,
  name       text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customers_email_idx ON customers (lower(email));

-- A weekly recurring class. weekday_mask: bit 0 = Monday ... bit 6 = Sunday;
-- start_time is local time in `timezone` (IANA), kept across DST changes.
CREATE TABLE IF NOT EXISTS class_series (
  id                bigint PRIMARY KEY,
  org_id            bigint NOT NULL,
  location_id       bigint NOT NULL,
  instructor_id     bigint NOT NULL,
  title             text NOT NULL,
  capacity          integer NOT NULL CHECK (capacity >= 0),
  waitlist_capacity integer NOT NULL DEFAULT 0 CHECK (waitlist_capacity >= 0),
  price_cents       integer NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
  currency          text NOT NULL DEFAULT '', -- ISO 4217 lower case, '' when free
  timezone          text NOT NULL,
  weekday_mask      smallint NOT NULL CHECK (weekday_mask BETWEEN 1 AND 127),
  weekdays          text[] GENERATED ALWAYS AS (
                      array_remove(ARRAY[
                        CASE WHEN weekday_mask &  1 <> 0 THEN 'MO' END,
                        CASE WHEN weekday_mask &  2 <> 0 THEN 'TU' END,
                        CASE WHEN weekday_mask &  4 <> 0 THEN 'WE' END,
                        CASE WHEN weekday_mask &  8 <> 0 THEN 'TH' END,
                        CASE WHEN weekday_mask & 16 <> 0 THEN 'FR' END,
                        CASE WHEN weekday_mask & 32 <> 0 THEN 'SA' END,
                        CASE WHEN weekday_mask & 64 <> 0 THEN 'SU' END], NULL)) STORED,
  start_time        time NOT NULL,
  duration_min      integer NOT NULL CHECK (duration_min > 0),
  first_date        date NOT NULL,
  last_date         date, -- NULL: open ended
  skip_dates        date[] NOT NULL DEFAULT '{}',
  generated_through date, -- how far events are generated (NULL: not yet)
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (last_date IS NULL OR last_date >= first_date)
);
CREATE INDEX IF NOT EXISTS class_series_org_idx ON class_series (org_id);

-- ---- Events: partitioned by month of start_at (UTC) ------------------------
-- Partitions are class_events_YYYY_MM, created ahead by
-- ensure_class_events_partitions() (0002). There is no default partition: a
-- row for a month without a partition fails, so partitions are made first.
-- reg_count = confirmed registrations, held_count = pending_payment holds,
-- waitlist_count = waiting (not yet promoted) customers.
CREATE TABLE IF NOT EXISTS class_events (
  id                bigint NOT NULL,
  series_id         bigint,
  org_id            bigint NOT NULL,
  location_id       bigint,
  instructor_id     bigint,
  title             text NOT NULL DEFAULT '',
  start_at          timestamptz NOT NULL,
  duration_min      integer NOT NULL CHECK (duration_min > 0),
  capacity          integer NOT NULL CHECK (capacity >= 0),
  waitlist_capacity integer NOT NULL DEFAULT 0 CHECK (waitlist_capacity >= 0),
  price_cents       integer NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
  currency          text NOT NULL DEFAULT '',
  reg_count         integer NOT NULL DEFAULT 0 CHECK (reg_count >= 0),
  held_count        integer NOT NULL DEFAULT 0 CHECK (held_count >= 0),
  waitlist_count    integer NOT NULL DEFAULT 0 CHECK (waitlist_count >= 0),
  status            text NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'cancelled')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- no overbooking, ever: a row that breaks it is refused (replicator stops)
  CONSTRAINT class_events_no_overbooking
    CHECK (status <> 'scheduled' OR reg_count + held_count <= capacity),
  -- the partition key must be in the primary key; (id, start_at) is also the
  -- conflict target for upserts: INSERT ... ON CONFLICT (id, start_at)
  CONSTRAINT class_events_pkey PRIMARY KEY (id, start_at)
) PARTITION BY RANGE (start_at);

-- Look-ups by id alone (patches carry the event id only), by org, series,
-- instructor and location in time order. Created on every partition.
CREATE INDEX IF NOT EXISTS class_events_id_idx ON class_events (id);
CREATE INDEX IF NOT EXISTS class_events_org_start_idx ON class_events (org_id, start_at);
CREATE INDEX IF NOT EXISTS class_events_series_start_idx ON class_events (series_id, start_at);
CREATE INDEX IF NOT EXISTS class_events_instructor_start_idx ON class_events (instructor_id, start_at);
CREATE INDEX IF NOT EXISTS class_events_location_start_idx ON class_events (location_id, start_at);

-- ---- Bookings -----------------------------------------------------------
-- A registration is a booking; id = event_id << 24 | n.
CREATE TABLE IF NOT EXISTS registrations (
  id              bigint PRIMARY KEY,
  event_id        bigint NOT NULL,
  customer_id     text NOT NULL,
  status          text NOT NULL CHECK (status IN ('confirmed', 'pending_payment',
                    'waitlisted', 'cancelled', 'expired', 'payment_failed')),
  hold_expires_at timestamptz, -- pending_payment only
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (id >> 24 = event_id)
);
CREATE INDEX IF NOT EXISTS registrations_event_status_idx ON registrations (event_id, status);
CREATE INDEX IF NOT EXISTS registrations_customer_idx ON registrations (customer_id, created_at);
CREATE INDEX IF NOT EXISTS registrations_hold_idx ON registrations (hold_expires_at)
  WHERE status = 'pending_payment';
-- One active booking per customer and event (the core's rule, checked again).
CREATE UNIQUE INDEX IF NOT EXISTS registrations_one_active_idx
  ON registrations (event_id, customer_id)
  WHERE status IN ('confirmed', 'pending_payment', 'waitlisted');

-- FIFO waitlist history: one row per waitlisted booking. position is the
-- 1-based order of joining (stable); the current place is the rank among the
-- rows with promoted_at and left_at both NULL.
CREATE TABLE IF NOT EXISTS event_waitlists (
  booking_id  bigint PRIMARY KEY,
  event_id    bigint NOT NULL,
  customer_id text NOT NULL,
  position    integer NOT NULL CHECK (position > 0),
  joined_at   timestamptz NOT NULL DEFAULT now(),
  promoted_at timestamptz, -- got a seat (or a hold) from the waitlist
  left_at     timestamptz  -- cancelled while waiting, or event cancelled
);
CREATE UNIQUE INDEX IF NOT EXISTS event_waitlists_event_position_idx
  ON event_waitlists (event_id, position);
CREATE INDEX IF NOT EXISTS event_waitlists_waiting_idx
  ON event_waitlists (event_id, position) WHERE promoted_at IS NULL AND left_at IS NULL;
CREATE INDEX IF NOT EXISTS event_waitlists_customer_idx ON event_waitlists (customer_id);

-- Payment outcomes (Stripe webhooks), mismatches and late ones recorded and
-- flagged. payment_ref: the provider's reference (e.g. Stripe event id).
CREATE TABLE IF NOT EXISTS payments (
  id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  booking_id   bigint NOT NULL,
  event_id     bigint GENERATED ALWAYS AS (booking_id >> 24) STORED,
  customer_id  text,
  provider     text NOT NULL DEFAULT 'stripe',
  payment_ref  text NOT NULL,
  amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
  currency     text NOT NULL DEFAULT '',
  status       text NOT NULL CHECK (status IN ('succeeded', 'failed', 'mismatch',
                 'not_pending')),
  flagged      boolean NOT NULL DEFAULT false, -- recorded, not applied
  code         smallint NOT NULL DEFAULT 0,    -- the core's result code
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, payment_ref, booking_id)
);
CREATE INDEX IF NOT EXISTS payments_booking_idx ON payments (booking_id);
CREATE INDEX IF NOT EXISTS payments_recorded_idx ON payments (recorded_at);

-- The notification outbox, id stable for deduplication by senders.
CREATE TABLE IF NOT EXISTS notifications (
  id           text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('booking_confirmed', 'promoted',
                 'cancelled', 'event_cancelled', 'reminder', 'hold_expired')),
  booking_id   bigint,
  event_id     bigint,
  customer_id  text,
  payload      jsonb NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error   text
);
CREATE INDEX IF NOT EXISTS notifications_pending_idx ON notifications (created_at)
  WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS notifications_customer_idx ON notifications (customer_id, created_at);

-- ---- Observability (the seed's names) --------------------------------------
CREATE TABLE IF NOT EXISTS performance_metrics (
  id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  metric_name  text NOT NULL,
  metric_value double precision NOT NULL,
  tags         jsonb NOT NULL DEFAULT '{}',
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS performance_metrics_name_time_idx
  ON performance_metrics (metric_name, recorded_at);
CREATE INDEX IF NOT EXISTS performance_metrics_time_idx
  ON performance_metrics USING brin (recorded_at);

CREATE TABLE IF NOT EXISTS health_checks (
  id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  check_name       text NOT NULL,
  status           text NOT NULL CHECK (status IN ('healthy', 'warning', 'critical',
                     'unknown')),
  details          jsonb NOT NULL DEFAULT '{}',
  checked_at       timestamptz NOT NULL DEFAULT now(),
  response_time_ms double precision
);
CREATE INDEX IF NOT EXISTS health_checks_name_time_idx
  ON health_checks (check_name, checked_at DESC);
