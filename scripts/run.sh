#!/usr/bin/env bash
# The main job: set up, build, and run bookd in embedded mode (log only, no
# PostgreSQL unless DATABASE_URL is set) with a demo studio and a week of
# classes in ./data. It prints three curl lines to try. Flags are passed on
# (bookd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/api/bookd --demo "$@"
