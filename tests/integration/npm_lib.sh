# tests/integration/npm_lib.sh: the TypeScript client's npm packages for the
# shell tests that use them (test_openapi, test_ts_client), sourced after
# lib.sh and test_setup:
#   npm_deps NAME  exit 77 when node or npm is missing; else copies
#                  clients/ts (without node_modules and dist) to
#                  <build>/clients-ts (ts_dir), runs `npm ci` there from the
#                  registry with the checked-in package-lock.json (again only
#                  when the lock changed; under flock, as two tests may ask
#                  at once) and generates src/schema.d.ts from
#                  docs/openapi.yaml (openapi-typescript); 1 when that fails
npm_deps() {
  local name=$1 root build stamp
  need_tools "$name" node npm flock
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  build=$(cd "$(dirname "$bookd")/.." && pwd)
  ts_dir=$build/clients-ts
  mkdir -p "$ts_dir"
  (
    flock 9 || exit 1
    tar -C "$root/clients/ts" --exclude=./node_modules --exclude=./dist \
      --exclude=./src/schema.d.ts -cf - . | tar -C "$ts_dir" -xf - || exit 1
    stamp=$(sha256sum <"$ts_dir/package-lock.json")
    if [ "$(cat "$ts_dir/node_modules/.bookd-lock" 2>/dev/null)" != "$stamp" ]; then
      (cd "$ts_dir" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
      echo "$stamp" >"$ts_dir/node_modules/.bookd-lock"
    fi
    (cd "$ts_dir" && npx --no-install openapi-typescript \
      "$root/docs/openapi.yaml" -o src/schema.d.ts --default-non-nullable false --silent) || exit 1
  ) 9>"$build/clients-ts.lock"
}
