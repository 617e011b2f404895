#!/usr/bin/env bash
# The main job: set up, build, and run bookd in embedded mode (log only, no
# PostgreSQL unless DATABASE_URL is set) with a demo studio, a week of
# classes and one booking in ./data (bookd --demo, docs/operations.md). It
# prints curl lines to try (list, book, show and cancel), each runnable as
# printed, on the first start and on every later one on the same data dir,
# then the status page's address (http://.../status, it asks for the
# service key), the schedule page's (http://.../#key=...) and the same
# signed in as the demo customer alice (a JWT in the URL's fragment): open
# it in a browser and book (docs/operations.md "The schedule page").
# Flags are passed on (bookd --help).
#
# BOOKD_RUN_SETUP=0 skips installing packages and building: bookd is run as
# built (BOOKD_BIN, default build/api/bookd); tests/integration/test_demo.sh
# uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
bookd=${BOOKD_BIN:-build/api/bookd}
if [ "${BOOKD_RUN_SETUP:-1}" != 0 ]; then
  scripts/setup.sh
  scripts/build.sh release
  bookd=build/api/bookd
fi
exec "$bookd" --demo "$@"
