#!/bin/sh
# The installed package as a user meets it: `make install` into a temporary DESTDIR, then a
# program built only through `pkg-config messenger` (shared, then static) must run; the shared
# library must export exactly the functions the installed headers declare MSGR_API; `make
# uninstall` must leave nothing behind. Usage: package_test.sh BUILD_DIR
set -u
build=${1:-build}
CC=${CC:-cc}
if ! command -v pkg-config >/dev/null 2>&1; then
    echo "[SKIP] package: pkg-config is not installed (apt-get install pkgconf)"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/messenger-test
dest=$tmp/root
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "[FAIL] package: $*"; }

make --no-print-directory -s BUILD="$build" install PREFIX=$prefix DESTDIR="$dest" \
    >"$tmp/install.log" 2>&1 || { bad "make install failed:"; cat "$tmp/install.log"; }
for f in include/messenger.h include/msgr_app.h include/msgr/runtime.h include/msgr/export.h \
         lib/libmessenger.a lib/libmessenger.so lib/libmessenger.so.0 lib/pkgconfig/messenger.pc \
         bin/msgr share/man/man1/msgr.1; do
    [ -e "$dest$prefix/$f" ] && ok || bad "not installed: $prefix/$f"
done
[ -z "$(find "$dest$prefix/include" -name '*internal*')" ] && ok || bad "an internal header is installed"

# pkg-config sees the staged tree as if it were installed (the sysroot prefixes -I and -L).
export PKG_CONFIG_PATH="$dest$prefix/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
cflags=$(pkg-config --cflags messenger) && libs=$(pkg-config --libs messenger) &&
    slibs=$(pkg-config --static --libs messenger) && ok || bad "pkg-config does not know messenger"
[ "$(pkg-config --modversion messenger)" = "$(sed -n 's/^VERSION *= *//p' Makefile)" ] && ok ||
    bad "pkg-config version differs from the Makefile's"

# shellcheck disable=SC2086
if $CC -std=c11 -Wall -Wextra -Werror $cflags tests/package/hello.c -o "$tmp/hello" $libs \
        2>"$tmp/cc.log"; then
    if LD_LIBRARY_PATH="$dest$prefix/lib" "$tmp/hello" >"$tmp/run.log" 2>&1; then ok
    else bad "the shared build does not run:"; cat "$tmp/run.log"; fi
    LD_LIBRARY_PATH="$dest$prefix/lib" ldd "$tmp/hello" | grep -q "libmessenger.so.0 => $dest$prefix/lib" && ok ||
        bad "the shared build does not use the installed libmessenger.so.0"
else bad "building against the installed headers and .so failed:"; cat "$tmp/cc.log"; fi
# shellcheck disable=SC2086
if $CC -std=c11 -Wall -Wextra -Werror -static $cflags tests/package/hello.c -o "$tmp/hello-static" \
        $slibs 2>"$tmp/cc.log"; then
    if "$tmp/hello-static" >"$tmp/run.log" 2>&1; then ok
    else bad "the static build does not run:"; cat "$tmp/run.log"; fi
else bad "building statically through pkg-config --static failed:"; cat "$tmp/cc.log"; fi
"$dest$prefix/bin/msgr" ls >/dev/null 2>&1 && ok || bad "the installed msgr does not run"

# Exported symbols: exactly the functions declared MSGR_API in the installed headers.
nm -D --defined-only "$dest$prefix/lib/libmessenger.so" | awk '$2 ~ /^[TW]$/ {print $3}' |
    sort -u >"$tmp/exported"
cat "$dest$prefix"/include/msgr/*.h | sed -n 's/^MSGR_API [^(]*[ *]\(msgr_[a-z0-9_]*\)(.*/\1/p' |
    sort -u >"$tmp/declared"
if cmp -s "$tmp/exported" "$tmp/declared"; then ok; else
    bad "exported symbols differ from the MSGR_API declarations (< exported only, > declared only):"
    diff "$tmp/exported" "$tmp/declared" | grep '^[<>]' | head -20
fi

make --no-print-directory -s BUILD="$build" uninstall PREFIX=$prefix DESTDIR="$dest" \
    >"$tmp/uninstall.log" 2>&1 || bad "make uninstall failed"
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] && ok || { bad "make uninstall left:"; echo "$left" | head; }
echo "[====] package: Tested: $((pass + fail)) | Passing: $pass | Failing: $fail"
[ $fail -eq 0 ]
