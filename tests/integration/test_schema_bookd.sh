#!/usr/bin/env bash
# bookd's bookkeeping in PostgreSQL schema `bookd` (migration 0008 and the
# runner's bootstrap in replicator/pg.c), against a real PostgreSQL:
#   - fresh: bookd creates bookd.schema_migrations (every migration),
#     bookd.replication_state and bookd.archived_class_events, and none of
#     them in public;
#   - an application's public.schema_migrations (Rails-like: version text)
#     is left alone, rows and all;
#   - upgrade: a database made by the migrations as they were before 0008
#     (public.schema_migrations, public.replication_state: the files of
#     0001, 0003 and 0005 with `bookd.` taken out, which is what they said
#     then, byte for byte) holding the rows and the position bookd had
#     replicated, is moved by bookd into schema bookd and replication goes
#     on from that position exactly once: every registration once, the
#     position at the log's end, the seed's booking-conflicts query empty.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_schema_bookd.sh
#
# Exit 77 (skipped) without DATABASE_URL, psql, pg_dump, curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/pg_lib.sh"
test_setup test_schema_bookd curl jq
pg_need test_schema_bookd pg_dump
migrations=$lib_root/replicator/migrations

# ---- a fresh database, with an application's schema_migrations -------------
db_create bookd_fresh
q "CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY);
   INSERT INTO public.schema_migrations VALUES ('20240101000000'), ('20240202000000')" >/dev/null
bookd_start "$tmp/bookd.log"
catalog 2 5
for c in a b c d; do book "${EVENTS[0]}" "cus_$c"; done
check "fresh: replication caught up" caught_up
nmig=$(ls "$migrations"/[0-9]*.sql | wc -l)
check "fresh: bookd.schema_migrations records every migration ($nmig)" \
  test "$(q "SELECT count(*) FROM bookd.schema_migrations")" = "$nmig"
check "fresh: bookd.replication_state has the position" \
  test "$(q "SELECT count(*) FROM bookd.replication_state WHERE applied_lsn > 0")" = 1
check "fresh: bookd.archived_class_events exists" \
  test "$(q "SELECT to_regclass('bookd.archived_class_events') IS NOT NULL")" = t
check "fresh: no replication_state or archived_class_events in public" \
  test "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
             AND tablename IN ('replication_state', 'archived_class_events')")" = 0
check "fresh: the application's public.schema_migrations is untouched" \
  test "$(q "SELECT string_agg(version, ',' ORDER BY version) FROM public.schema_migrations")" \
    = "20240101000000,20240202000000"
check "fresh: get_system_health_summary() reads bookd.replication_state" \
  test "$(q "SELECT jsonb_array_length(get_system_health_summary()->'replication')")" = 1
check "fresh: health_check_database() runs" \
  test "$(q "SELECT health_check_database()->>'check_name'")" = database
stop_pid
fresh_db=$DB

# ---- a database as the migrations before 0008 made it --------------------------
# The rows and position come from the fresh database above (same log).
db_create bookd_old
old_file() { # the file as it was before 0008
  sed -e '/^CREATE SCHEMA IF NOT EXISTS bookd;$/d' \
      -e 's/bookd\.\(schema_migrations\|replication_state\)/\1/g' "$1"
}
q "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY,
   name text, applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null
for f in "$migrations"/000[1-7]_*.sql; do
  base=$(basename "$f" .sql)
  old_file "$f" | psql "$DB" -X -q -v ON_ERROR_STOP=1 --single-transaction \
    -f - -c "INSERT INTO schema_migrations (version, name)
             VALUES ($((10#${base%%_*})), '$base')" >/dev/null ||
    { bad "old migration $base"; }
done
check "old: public.schema_migrations and public.replication_state" \
  test "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
             AND tablename IN ('schema_migrations', 'replication_state')")" = 2
check "old: no schema bookd" \
  test "$(q "SELECT count(*) FROM pg_namespace WHERE nspname = 'bookd'")" = 0
# The rows as the old tables hold them: their columns only (later
# migrations add columns, such as organizations.cancel_cutoff_hours).
copy_old() { # from-table to-table
  local cols
  cols=$(q "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position)
            FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = '${2#public.}'
              AND is_generated = 'NEVER'")
  psql "$fresh_db" -X -q -v ON_ERROR_STOP=1 -c "\copy (SELECT $cols FROM $1) TO STDOUT" |
    psql "$DB" -X -q -v ON_ERROR_STOP=1 -c "\copy $2 ($cols) FROM STDIN"
}
for t in organizations locations instructors customers class_series class_events \
  registrations event_waitlists payments notifications; do
  copy_old "public.$t" "public.$t" || bad "old: copy $t"
done
copy_old bookd.replication_state public.replication_state || bad "old: copy position"
lsn0=$(q "SELECT applied_lsn FROM public.replication_state")
regs0=$(q "SELECT count(*) FROM registrations")
check "old: holds the position ($lsn0) and the rows ($regs0 registrations)" \
  test "$lsn0" -gt 0 -a "$regs0" = 4

bookd_start "$tmp/bookd.log"
for c in e f g; do book "${EVENTS[1]}" "cus_$c"; done
book "${EVENTS[0]}" cus_h
caught_up || cat "$tmp/bookd.log"
check "upgraded: replication caught up" caught_up
check "upgraded: every migration recorded in bookd.schema_migrations" \
  test "$(q "SELECT count(*) FROM bookd.schema_migrations")" = "$nmig"
check "upgraded: 0001 keeps its first record (moved, not made anew)" \
  test "$(q "SELECT count(*) FROM bookd.schema_migrations
             WHERE version < 8 AND applied_at < (SELECT applied_at
               FROM bookd.schema_migrations WHERE version = 8)")" = 7
check "upgraded: nothing of bookd's left in public" \
  test "$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
             AND tablename IN ('schema_migrations', 'replication_state',
                               'archived_class_events')")" = 0
lsn1=$(q "SELECT applied_lsn FROM bookd.replication_state")
svc GET /v1/admin/status
durable=$(printf '%s' "$body" | jq -r '.replication.applied_lsn')
check "upgraded: position moved on from $lsn0 to the log's ($lsn1 = $durable)" \
  test "$lsn1" -gt "$lsn0" -a "$lsn1" = "$durable"
check "upgraded: every registration once (4 before, 4 after)" \
  test "$(q "SELECT count(*) || '/' || count(DISTINCT id) FROM registrations")" = 8/8
check "upgraded: the seed's booking-conflicts query returns no row" \
  test "$(q "SELECT count(*) FROM (SELECT event_id, count(*) AS registration_count,
               capacity, reg_count FROM public.registrations r
               JOIN public.class_events e ON e.id = r.event_id
              WHERE r.status = 'confirmed'
              GROUP BY event_id, capacity, reg_count
             HAVING count(*) != reg_count) x")" = 0
check "upgraded: event 1 has 2 confirmed and 3 waiting" \
  test "$(q "SELECT reg_count || '/' || waitlist_count FROM class_events WHERE id = ${EVENTS[0]}")" = 2/3
stop_pid

echo "schema_bookd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
