#!/usr/bin/env bash
# tests/chaos/run.sh: the chaos test in one command (docs/reliability.md
# "Chaos"): bookd with PostgreSQL replication and the notification sender
# under a mixed load from binary and HTTP clients that record every request
# and answer, faults at seeded random moments (kill -9, SIGSTOP/SIGCONT,
# PostgreSQL stopped, the log's disk full, the webhook failing), then a
# checker over the histories (tests/chaos/chaos.py, check.py).
#
#   tests/chaos/run.sh [--profile short|long] [--seed N] [--seconds N]
#                      [--faults KIND,...] [--keep] [BUILD_DIR]
#
# short (ctest's test_chaos): 75 s of load, about 2 min in all; long: 25 min
# (a documented command, not in CI). BUILD_DIR defaults to ./build (ctest
# passes its own). --keep keeps the work directory (histories, logs, a copy
# of the data dir) and says where; --faults injects only the kinds named
# (kill9, stop, pg, disk, sink). Skipped (77) without PostgreSQL's
# binaries, python3 or psql. Runs everything on 127.0.0.1 and unix sockets;
# as root the data dir is on a tmpfs mount (else the disk fault is skipped,
# with a notice). Release build only in CI: under ASan each of the many
# restarts and recoveries is several times slower, and the time the short
# profile may add to CI (4 min) holds only one build's run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
args=() build=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile | --seed | --seconds | --faults) args+=("$1" "$2"); shift 2 ;;
    --keep) args+=("$1"); shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
build=${build:-$root/build}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "run.sh: no build dir"; exit 2; }
for f in "$build/api/bookd" "$build/tests/chaos_client"; do
  [ -x "$f" ] || { echo "test_chaos: $f not built, skipped"; exit 77; }
done
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$pg_bin/initdb" ] || ! command -v psql >/dev/null ||
  ! command -v python3 >/dev/null; then
  echo "test_chaos: no PostgreSQL binaries ($pg_bin), psql or python3, skipped"
  exit 77
fi
# the cluster runs as postgres when root: it must reach its directory
export TMPDIR=${TMPDIR:-/tmp}
exec python3 "$here/chaos.py" --build "$build" "${args[@]}"
