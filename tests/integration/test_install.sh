#!/usr/bin/env bash
# test_install: the packaging (deploy/install.cmake, docs/operations.md
# "Install"). `cmake --install` of the build this test belongs to into a
# DESTDIR (prefix /usr): every file in its place; a 20-line C client
# (below) compiled against the installed bookd-client.pc, linked once
# against the shared library and once against the static one; the
# installed bookd started on a temp data dir (--demo) and each client
# books a seat and reads it back. With BOOKD_TEST_DPKG=1 (.ci/run: it
# installs into /usr, as root): the .deb built by cpack, its Depends
# checked, installed with dpkg -i, the installed bookd --version and the
# same client, and the package removed (dpkg -r) whatever happens.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
test_setup test_install cmake pkg-config cc curl
build=$(cd "$(dirname "$bookd")/.." && pwd)
root=$tmp/root
port_http=26011 port_bin=26012
cflags=()
case "$("$bookd" --version)" in *asan*) cflags=(-fsanitize=address,undefined) ;; esac

deb_installed=0
cleanup() {
  stop_pid
  if [ "$deb_installed" = 1 ]; then dpkg -P bookd >/dev/null 2>&1; fi
  keep_logs "$test_name" "$tmp"
  rm -rf "$tmp"
}

cat >"$tmp/client.c" <<'C'
#include <bookd_client.h>
#include <stdio.h>
int main(int argc, char **argv) /* ADDR KEY CUSTOMER */
{
	char err[256];
	bc_client *c;
	struct bc_event ev[1];
	struct bc_booking b, got;
	struct bc_list_query q = { .limit = 1 };
	uint32_t n = 0;
	char cursor[BC_CURSOR_SIZE];
	if (argc != 4 || bc_connect(argv[1], argv[2], &c, err, sizeof(err)))
		return fprintf(stderr, "connect: %s\n", argc == 4 ? err : "args"), 1;
	if (bc_event_list(c, &q, ev, 1, &n, cursor) != BC_OK || n != 1 ||
	    bc_book(c, ev[0].id, argv[3], argv[3], BC_PAY_NONE, &b) != BC_OK ||
	    bc_booking_get(c, b.id, &got) != BC_OK || got.event_id != ev[0].id)
		return fprintf(stderr, "failed: %s\n", bc_last(c)->code_name), 1;
	printf("booking %llu on event %llu: %s\n", (unsigned long long)got.id,
	       (unsigned long long)got.event_id, bc_booking_status_name(got.status));
	bc_close(c);
	return 0;
}
C

# start_bookd BIN DIR: the demo studio on the test's ports (its output in
# DIR.out, not a kept *.log: --demo prints the demo keys on purpose).
start_bookd() {
  "$1" --data-dir "$2" --demo --listen "127.0.0.1:$port_http" \
    --binary-listen "127.0.0.1:$port_bin" >"$2.out" 2>&1 &
  pid=$!
  started_line "$2.out" >/dev/null
}

# book_with CLIENT...: the client books a seat for a new customer (also
# the idempotency key) and reads it back.
customer_n=0
book_with() {
  local out
  customer_n=$((customer_n + 1))
  out=$("$@" "127.0.0.1:$port_bin" demo-service-key "c-install-$customer_n" 2>&1)
  echo "  $out"
  [[ $out == booking*confirmed ]]
}

# ---- cmake --install into a DESTDIR ----
if ! DESTDIR=$root cmake --install "$build" --prefix /usr >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"; bad "cmake --install"; exit 1
fi
ok "cmake --install --prefix /usr into a DESTDIR"
pc=$(find "$root/usr/lib" -name bookd-client.pc | head -1)
libdir=$(dirname "$(dirname "$pc")")
for f in usr/bin/bookd usr/bin/bookctl usr/bin/bookbench usr/bin/bookd-backup \
         usr/share/bookd/scripts/backup.sh usr/share/bookd/scripts/restore.sh \
         usr/include/bookd_client.h usr/share/bookd/migrations/0001_schema.sql \
         usr/share/bookd/bookd.env.example usr/share/doc/bookd/operations.md \
         usr/lib/systemd/system/bookd.service; do
  check "installed $f" test -s "$root/$f"
done
for f in libbookd_client.a libbookd_client.so libbookd_client.so.1; do
  check "installed ${libdir#"$root"}/$f" test -e "$libdir/$f"
done
check "SONAME libbookd_client.so.1" \
  bash -c "objdump -p '$libdir/libbookd_client.so' | grep -q 'SONAME *libbookd_client.so.1$'"
check "the shared library exports only bc_*" \
  bash -c "! nm -D --defined-only '$libdir/libbookd_client.so' | awk '\$2 ~ /^[TDBR]$/ {print \$3}' | grep -v '^bc_'"
check "the unit runs the installed bookd" \
  grep -q '^ExecStart=/usr/bin/bookd$' "$root/usr/lib/systemd/system/bookd.service"
check "the .pc's prefix is /usr" grep -q '^prefix=/usr$' "$pc"

# ---- a client built against the installed pkg-config file ----
export PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_PATH=$(dirname "$pc")
echo "  pkg-config --cflags --libs bookd-client: $(pkg-config --cflags --libs bookd-client)"
echo "  pkg-config --static --libs bookd-client: $(pkg-config --static --libs bookd-client)"
check "pkg-config --static names msgpack-c (Requires.private)" \
  bash -c "pkg-config --static --libs bookd-client | grep -q -- -lmsgpackc"
# shellcheck disable=SC2046
check "compile and link against the shared library" \
  cc "${cflags[@]}" -Wall -Werror -o "$tmp/client_shared" "$tmp/client.c" \
  $(pkg-config --cflags --libs bookd-client)
# The static one: -lbookd_client as an archive, then what it needs
# (--static: msgpack-c), without naming -lbookd_client again.
static_libs=$(pkg-config --static --libs bookd-client)
static_libs=${static_libs//-lbookd_client/}
# shellcheck disable=SC2046,SC2086
check "compile and link against the static library" \
  cc "${cflags[@]}" -Wall -Werror -o "$tmp/client_static" "$tmp/client.c" \
  $(pkg-config --cflags bookd-client) -Wl,-Bstatic \
  $(pkg-config --libs-only-l bookd-client) -Wl,-Bdynamic $static_libs
check "the static client needs no libbookd_client.so" \
  bash -c "! objdump -p '$tmp/client_static' | grep -q 'NEEDED *libbookd_client'"
check "the shared client needs libbookd_client.so.1" \
  bash -c "objdump -p '$tmp/client_shared' | grep -q 'NEEDED *libbookd_client.so.1'"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH

# ---- the installed bookd, and both clients booking ----
if start_bookd "$root/usr/bin/bookd" "$tmp/data"; then
  ok "the installed bookd starts (demo studio)"
  check "the shared client books a seat and reads it back" \
    book_with env LD_LIBRARY_PATH="$libdir" "$tmp/client_shared"
  check "the static client books a seat and reads it back" \
    book_with "$tmp/client_static"
  check "the installed bookctl status" \
    bash -c "'$root/usr/bin/bookctl' --addr 127.0.0.1:$port_bin --key demo-service-key status >/dev/null"
else
  cat "$tmp/data.out"; bad "the installed bookd starts"
fi
stop_pid

# ---- the .deb, installed with dpkg (CI only: it writes /usr) ----
if [ "${BOOKD_TEST_DPKG:-0}" = 1 ] && [ ${#cflags[@]} -gt 0 ]; then
  echo "  (the .deb: from the Release build, not this sanitized one)"
elif [ "${BOOKD_TEST_DPKG:-0}" = 1 ]; then
  if (cd "$build" && cpack -G DEB >"$tmp/cpack.log" 2>&1); then
    ok "cpack -G DEB"
  else
    cat "$tmp/cpack.log"; bad "cpack -G DEB"
  fi
  deb=$(ls "$build"/bookd_*.deb 2>/dev/null | head -1)
  if [ -n "$deb" ]; then
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "  Depends: $depends"
    for p in liburing2 libjemalloc2 libpq5 libmsgpackc2 libssl3 libsystemd0; do
      check "Depends names $p" grep -q "$p" <<<"$depends"
    done
    deb_installed=1
    if dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
      ok "dpkg -i $(basename "$deb")"
      check "installed bookd --version" \
        bash -c "/usr/bin/bookd --version | grep -q '^bookd $(dpkg-deb -f "$deb" Version)'"
      check "ldconfig knows libbookd_client.so.1" \
        bash -c "ldconfig -p | grep -q libbookd_client.so.1"
      cc "${cflags[@]}" -o "$tmp/client_deb" "$tmp/client.c" \
        $(pkg-config --cflags --libs bookd-client)
      if start_bookd /usr/bin/bookd "$tmp/data-deb"; then
        check "a client built against the .deb books a seat" \
          book_with "$tmp/client_deb"
      else
        cat "$tmp/data-deb.out"; bad "the .deb's bookd starts"
      fi
      stop_pid
    else
      cat "$tmp/dpkg.log"; bad "dpkg -i"
    fi
    check "dpkg -r bookd" dpkg -r bookd
    dpkg -P bookd >/dev/null 2>&1 # and its dpkg state (rc: postrm)
    deb_installed=0
    check "removed: no /usr/bin/bookd" test ! -e /usr/bin/bookd
  fi
else
  echo "  (the .deb: BOOKD_TEST_DPKG=1, as .ci/run sets it)"
fi

echo "test_install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
