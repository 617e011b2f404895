-- bench/baseline/002_functions.sql: the seed's functions, for the baseline.
--
--   ensure_partitions(from, months)  monthly partitions class_events_YYYY_MM
--   generate_events(until)           dated events of every series, idempotent
--   book_event(event, customer, key, payment)
--   cancel_booking(booking, key)
--   key_take(key, hash), key_done(key, answer)   the idempotency key of both
--   key_replay(response, extra)   a stored response as book/cancel's answer
--
-- book_event and cancel_booking are the seed's "atomic RPCs: idempotent
-- booking/cancel flows with capacity enforcement": one transaction each,
-- the event row locked (SELECT ... FOR UPDATE) while the capacity is checked
-- and reg_count moved, the waitlist kept FIFO, a freed seat given to the first
-- waiting customer in the same transaction, a notification queued. An
-- idempotency key is taken first (INSERT ... ON CONFLICT DO NOTHING, so a
-- concurrent duplicate waits for the first and then reads its response);
-- refusals are not stored (a retry is decided afresh), as in docs/contract.md.

CREATE FUNCTION baseline.ensure_partitions(p_from date, p_months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  m date := date_trunc('month', p_from)::date;
  n integer := 0;
  name text;
BEGIN
  FOR i IN 0 .. p_months - 1 LOOP
    name := 'class_events_' || to_char(m, 'YYYY_MM');
    IF to_regclass('baseline.' || name) IS NULL THEN
      EXECUTE format('CREATE TABLE baseline.%I PARTITION OF baseline.class_events
                        FOR VALUES FROM (%L) TO (%L)',
                     name, m::timestamptz, (m + interval '1 month')::timestamptz);
      n := n + 1;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN n;
END $$;

CREATE FUNCTION baseline.generate_events(p_until date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  INSERT INTO baseline.class_events (series_id, org_id, location_id, instructor_id, title,
                                     start_at, duration_min, capacity, waitlist_capacity,
                                     price_cents, currency)
  SELECT s.id, s.org_id, s.location_id, s.instructor_id, s.title,
         (g.d::date + s.start_time) AT TIME ZONE s.timezone, s.duration_min, s.capacity,
         s.waitlist_capacity, s.price_cents, s.currency
    FROM baseline.class_series s
   CROSS JOIN LATERAL generate_series(greatest(s.first_date, current_date)::timestamp,
                                      least(coalesce(s.last_date, p_until), p_until)::timestamp,
                                      interval '1 day') g(d)
   WHERE extract(isodow FROM g.d)::integer = ANY (s.weekdays)
     AND NOT (g.d::date = ANY (s.skip_dates))
  ON CONFLICT (series_id, start_at) DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- Takes an idempotency key for a request whose hash is p_hash, first thing in
-- the caller's transaction: NULL when the key is new (the caller decides, then
-- calls key_done); else the answer to give: the stored response of the same
-- request, or a refusal ({"code": ...}) for a missing key or a key reused with
-- another request. A concurrent holder of the key is waited for.
CREATE FUNCTION baseline.key_take(p_key text, p_hash text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_prev baseline.idempotency_keys%ROWTYPE;
BEGIN
  IF p_key IS NULL OR p_key = '' THEN
    RETURN jsonb_build_object('code', 'idempotency_key_required');
  END IF;
  INSERT INTO baseline.idempotency_keys (key, request_hash)
  VALUES (p_key, p_hash) ON CONFLICT (key) DO NOTHING;
  IF FOUND THEN
    RETURN NULL;
  END IF;
  SELECT * INTO v_prev FROM baseline.idempotency_keys WHERE key = p_key;
  IF v_prev.request_hash <> p_hash THEN
    RETURN jsonb_build_object('code', 'idempotency_key_reused');
  END IF;
  RETURN coalesce(v_prev.response, '{}'::jsonb); -- never NULL: the key is not new
END $$;

-- The decision on a key taken by key_take, book_event's or cancel_booking's
-- answer (p_extra names its fourth column: 'position' or 'promoted_id'): an
-- acceptance (code 'ok') is kept for replays (key_replay reads it back); a
-- refusal frees the key, so a retry is decided afresh.
CREATE FUNCTION baseline.key_done(p_key text, p_code text, p_booking_id bigint,
                                  p_status text, p_extra text, p_extra_value bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_code = 'ok' THEN
    UPDATE baseline.idempotency_keys
       SET response = jsonb_build_object('code', p_code, 'booking_id', p_booking_id,
                                         'status', p_status, p_extra, p_extra_value)
     WHERE key = p_key;
  ELSE
    DELETE FROM baseline.idempotency_keys WHERE key = p_key;
  END IF;
END $$;

-- A response key_take gave back, as the answer of book_event (extra:
-- 'position') or cancel_booking ('promoted_id'): the same four columns.
CREATE FUNCTION baseline.key_replay(p_prev jsonb, p_extra text,
                                    OUT code text, OUT booking_id bigint,
                                    OUT status text, OUT extra bigint)
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_prev->>'code', (p_prev->>'booking_id')::bigint, p_prev->>'status',
         (p_prev->>p_extra)::bigint
$$;

CREATE FUNCTION baseline.book_event(p_event_id bigint, p_customer_id text,
                                    p_idempotency_key text, p_payment text,
                                    OUT code text, OUT booking_id bigint,
                                    OUT status text, OUT wl_position integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_hash text := md5('book|' || p_event_id || '|' || p_customer_id || '|' || p_payment);
  v_prev jsonb;
  v_event record;
  v_position integer;
BEGIN
  v_prev := baseline.key_take(p_idempotency_key, v_hash);
  IF v_prev IS NOT NULL THEN
    SELECT * INTO code, booking_id, status, wl_position
      FROM baseline.key_replay(v_prev, 'position');
    RETURN;
  END IF;

  SELECT e.id, e.start_at, e.capacity, e.waitlist_capacity, e.reg_count,
         e.waitlist_count, e.status
    INTO v_event
    FROM baseline.class_events e
   WHERE e.id = p_event_id
     FOR UPDATE;
  IF NOT FOUND THEN
    code := 'event_not_found';
  ELSIF v_event.status <> 'scheduled' OR v_event.start_at <= now() THEN
    code := 'event_not_bookable';
  ELSE
    INSERT INTO baseline.customers (id) VALUES (p_customer_id) ON CONFLICT (id) DO NOTHING;
    IF EXISTS (SELECT 1 FROM baseline.registrations r
                WHERE r.event_id = p_event_id AND r.customer_id = p_customer_id
                  AND r.status IN ('confirmed', 'pending_payment', 'waitlisted')) THEN
      code := 'already_booked';
    ELSIF v_event.reg_count < v_event.capacity THEN
      INSERT INTO baseline.registrations (event_id, customer_id, status, payment_method)
      VALUES (p_event_id, p_customer_id, 'confirmed', p_payment)
      RETURNING id INTO booking_id;
      UPDATE baseline.class_events SET reg_count = reg_count + 1, updated_at = now()
       WHERE id = p_event_id AND start_at = v_event.start_at;
      INSERT INTO baseline.notifications (kind, registration_id, customer_id)
      VALUES ('booking_confirmed', booking_id, p_customer_id);
      code := 'ok';
      status := 'confirmed';
    ELSIF v_event.waitlist_count < v_event.waitlist_capacity THEN
      INSERT INTO baseline.registrations (event_id, customer_id, status, payment_method)
      VALUES (p_event_id, p_customer_id, 'waitlisted', p_payment)
      RETURNING id INTO booking_id;
      SELECT coalesce(max(w.position), 0) + 1 INTO v_position
        FROM baseline.event_waitlists w WHERE w.event_id = p_event_id;
      INSERT INTO baseline.event_waitlists (event_id, customer_id, registration_id, position)
      VALUES (p_event_id, p_customer_id, booking_id, v_position);
      UPDATE baseline.class_events SET waitlist_count = waitlist_count + 1, updated_at = now()
       WHERE id = p_event_id AND start_at = v_event.start_at;
      code := 'ok';
      status := 'waitlisted';
      wl_position := v_event.waitlist_count + 1;
    ELSE
      code := 'event_full';
    END IF;
  END IF;

  PERFORM baseline.key_done(p_idempotency_key, code, booking_id, status,
                            'position', wl_position);
END $$;

CREATE FUNCTION baseline.cancel_booking(p_booking_id bigint, p_idempotency_key text,
                                        OUT code text, OUT booking_id bigint,
                                        OUT status text, OUT promoted_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_hash text := md5('cancel|' || p_booking_id);
  v_prev jsonb;
  v_event_id bigint;
  v_event record;
  v_reg record;
  v_next record;
BEGIN
  v_prev := baseline.key_take(p_idempotency_key, v_hash);
  IF v_prev IS NOT NULL THEN
    SELECT * INTO code, booking_id, status, promoted_id
      FROM baseline.key_replay(v_prev, 'promoted_id');
    RETURN;
  END IF;

  booking_id := p_booking_id;
  SELECT r.event_id INTO v_event_id FROM baseline.registrations r WHERE r.id = p_booking_id;
  IF NOT FOUND THEN
    code := 'booking_not_found';
  ELSE
    -- the event row first, as book_event does: one lock order
    SELECT e.id, e.start_at INTO v_event
      FROM baseline.class_events e WHERE e.id = v_event_id FOR UPDATE;
    SELECT r.id, r.status, r.customer_id INTO v_reg
      FROM baseline.registrations r WHERE r.id = p_booking_id FOR UPDATE;
    IF v_reg.status NOT IN ('confirmed', 'pending_payment', 'waitlisted') THEN
      code := 'booking_not_active';
    ELSE
      UPDATE baseline.registrations SET status = 'cancelled', updated_at = now()
       WHERE id = p_booking_id;
      INSERT INTO baseline.notifications (kind, registration_id, customer_id)
      VALUES ('cancelled', p_booking_id, v_reg.customer_id);
      IF v_reg.status = 'waitlisted' THEN
        UPDATE baseline.event_waitlists SET left_at = now() WHERE registration_id = p_booking_id;
        UPDATE baseline.class_events SET waitlist_count = waitlist_count - 1, updated_at = now()
         WHERE id = v_event_id AND start_at = v_event.start_at;
      ELSE
        SELECT w.id, w.registration_id, w.customer_id INTO v_next
          FROM baseline.event_waitlists w
         WHERE w.event_id = v_event_id AND w.promoted_at IS NULL AND w.left_at IS NULL
         ORDER BY w.position LIMIT 1
           FOR UPDATE;
        IF FOUND THEN -- the seat passes to the first waiting customer
          UPDATE baseline.event_waitlists SET promoted_at = now() WHERE id = v_next.id;
          UPDATE baseline.registrations SET status = 'confirmed', updated_at = now()
           WHERE id = v_next.registration_id;
          UPDATE baseline.class_events SET waitlist_count = waitlist_count - 1, updated_at = now()
           WHERE id = v_event_id AND start_at = v_event.start_at;
          INSERT INTO baseline.notifications (kind, registration_id, customer_id)
          VALUES ('promoted', v_next.registration_id, v_next.customer_id);
          promoted_id := v_next.registration_id;
        ELSE
          UPDATE baseline.class_events SET reg_count = reg_count - 1, updated_at = now()
           WHERE id = v_event_id AND start_at = v_event.start_at;
        END IF;
      END IF;
      code := 'ok';
      status := 'cancelled';
    END IF;
  END IF;

  PERFORM baseline.key_done(p_idempotency_key, code, booking_id, status,
                            'promoted_id', promoted_id);
END $$;

-- A waitlisted booking's current place (1-based), NULL when not waiting.
CREATE FUNCTION baseline.waitlist_place(p_booking_id bigint)
RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT (SELECT count(*)::integer FROM baseline.event_waitlists w2
           WHERE w2.event_id = w.event_id AND w2.promoted_at IS NULL
             AND w2.left_at IS NULL AND w2.position <= w.position)
    FROM baseline.event_waitlists w
   WHERE w.registration_id = p_booking_id AND w.promoted_at IS NULL AND w.left_at IS NULL
$$;
