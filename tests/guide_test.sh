#!/bin/sh
# docs/guide.md as a reader follows it: every code block marked `<!-- file: NAME -->` is
# appended to NAME in order, the program is compiled with warnings as errors and run in the
# guide's three steps (threads; two processes over shared memory; a file bus whose worker
# process is killed and started again). Usage: guide_test.sh BUILD_DIR
set -u
build=${1:-build}
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "[FAIL] guide: $*"; }

awk -v dir="$tmp" '
    /^<!-- file: .* -->$/ { file = dir "/" $3; next }
    /^```c$/ && file != "" { copying = 1; next }
    /^```$/ && copying { copying = 0; file = ""; next }
    copying { print > file }
' docs/guide.md
[ -s "$tmp/guide.c" ] && [ -s "$tmp/guide.def.h" ] && ok || bad "no guide.c or guide.def.h in the guide"
if $CC -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -Imacros -I"$tmp" "$tmp/guide.c" \
        -o "$tmp/guide" "$build/lib/libmessenger.a" -pthread 2>"$tmp/cc.log"; then ok
else bad "the guide's program does not compile:"; head -20 "$tmp/cc.log"; fi

expect="100000 of 100000 results, 0 wrong"
step() { # step NAME OUTPUT STATUS
    if [ "$3" -eq 0 ] && printf '%s\n' "$2" | grep -qF "$expect"; then ok
    else bad "step $1: status $3, said: $2"; fi
}
out=$("$tmp/guide" 2>&1); step "1 (threads)" "$out" $?

name="msgr-guide-test-$$"
"$tmp/guide" shm "$name" worker >"$tmp/worker.log" 2>&1 &
w=$!
out=$("$tmp/guide" shm "$name" front 2>&1); step "2 (shared memory)" "$out" $?
wait $w && ok || { bad "the shared-memory worker failed:"; cat "$tmp/worker.log"; }
"$build/bin/msgr" rm "$name" >/dev/null 2>&1 && ok || bad "msgr rm $name failed"

bus="$tmp/app.bus"
"$tmp/guide" file "$bus" front >"$tmp/front.log" 2>&1 &
f=$!
"$tmp/guide" file "$bus" worker >/dev/null 2>&1 &
kill -9 $! 2>/dev/null # at whatever instant it has reached
wait $! 2>/dev/null
"$tmp/guide" file "$bus" worker >"$tmp/worker.log" 2>&1 &
w=$!
wait $f; st=$?
step "3 (file bus, worker killed and restarted)" "$(cat "$tmp/front.log")" $st
wait $w && ok || { bad "the restarted file worker failed:"; cat "$tmp/worker.log"; }
echo "[====] guide: Tested: $((pass + fail)) | Passing: $pass | Failing: $fail"
[ $fail -eq 0 ]
