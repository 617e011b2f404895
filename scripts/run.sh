#!/usr/bin/env bash
# The main job: set up, build, run. Until the server lands this is the core demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/core/bookd-demo
