#!/bin/sh
# The msgr tool as a user runs it: arguments that would wrap are refused, a log's stat counts
# records behind a dead producer's claim, and msgr ls / msgr rm tell live shared memory from
# stale and refuse to remove a live object without --force.
#   sh tests/cli_test.sh BUILD_DIR
B=${1:-build}
M=$B/bin/msgr
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "[FAIL] $*"; }
tmp=/tmp/msgr-cli-test-$$
trap 'rm -f $tmp.log $tmp.err; $M rm msgr-cli-test-$$ --force >/dev/null 2>&1' EXIT

$M create $tmp.log --capacity 65536 || bad "create"
$M pub $tmp.log --start 18446744073709551614 --count 3 2>$tmp.err
rc=$?
if [ $rc -eq 2 ] && grep -q "would wrap" $tmp.err; then ok; else bad "pub --start that wraps: exit $rc"; fi
$M pub $tmp.log --start 18446744073709551613 --count 3 && ok || bad "pub up to 2^64 - 1"
$M sub $tmp.log --idle-ms 100 > $tmp.err
[ "$(tail -1 $tmp.err)" = "18446744073709551615" ] && ok || bad "sub got the last number"

# A live object is listed live and kept; once its user is gone it is stale and removable.
name=msgr-cli-test-$$
$B/tests/ring_peer $name hold >/dev/null 2>&1 &
holder=$!
i=0
while ! $M ls | grep -q "^$name .* live$"; do
    i=$((i + 1)); [ $i -gt 500 ] && break; sleep 0.01
done
$M ls | grep -q "^$name .* 1 live$" && ok || bad "ls shows $name live with one user"
$M rm $name 2>$tmp.err
rc=$?
if [ $rc -eq 1 ] && grep -q "live process" $tmp.err; then ok; else bad "rm of a live object: exit $rc"; fi
kill -9 $holder; wait $holder 2>/dev/null
$M ls | grep -q "^$name .* 0 stale$" && ok || bad "ls shows $name stale after its user was killed"
$M rm $name && ok || bad "rm of a stale object"
$M ls | grep -q "^$name " && bad "still listed after rm" || ok
$M rm $name 2>/dev/null && bad "rm of a missing object succeeded" || ok
# --json: stat and ls print one JSON object each; a registered bus is listed with its processes.
if command -v python3 >/dev/null; then
    $M stat $tmp.log > $tmp.err
    $M stat $tmp.log --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
text = dict(l.split(": ", 1) for l in open(sys.argv[1]).read().splitlines())
for k in ("version", "capacity", "start_seq", "end_seq", "records", "pending", "producers"):
    assert str(s[k]) == text[k], (k, s[k], text[k])
assert s["sync"] == text["sync"], s
g = [g for g in s["groups"] if g["name"] == "default"]
assert g and g[0]["acked_seq"] == s["end_seq"] and g[0]["lag"] == 0, s["groups"]
' $tmp.err && ok || bad "stat --json"
    export MSGR_REGISTRY=/tmp/msgr-cli-registry-$$
    mkdir -m 700 $MSGR_REGISTRY
    $B/bin/registry --counter cli-demo-$$ >/dev/null &
    counter=$!
    i=0
    while ! $M ls | grep -q "^registered cli-demo-$$ "; do
        i=$((i + 1)); [ $i -gt 500 ] && break; sleep 0.01
    done
    $M ls | grep -q "^registered cli-demo-$$ shm msgr-registry-demo-$counter registry_demo live $counter$" \
        && ok || bad "ls shows the registered bus: $($M ls | grep registered)"
    $M ls --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = [e for e in d["registered"] if e["name"] == "cli-demo-'$$'"]
assert len(r) == 1, d
e = r[0]
assert e["kind"] == "shm" and e["app"] == "registry_demo" and e["state"] == "live", e
assert e["procs"] == [{"pid": '$counter', "alive": True}], e["procs"]
assert any(o["name"] == e["location"] and o["state"] == "live" for o in d["shm"]), d["shm"]
' && ok || bad "ls --json lists the registered bus and its shared memory"
    $M stat cli-demo-$$ --json | python3 -c '
import json, sys
b = json.load(sys.stdin)
assert b["kind"] == "shm" and b["app"] == "registry_demo", b
assert [w["name"] for w in b["workers"]] == ["counter", "producer", "reporter"], b
c = b["workers"][0]
assert c["alive"] and c["pid"] == '$counter' and c["queued"] == 0, c
assert not b["workers"][1]["alive"], b
' && ok || bad "stat --json of a registered bus"
    $M stat cli-demo-$$ | grep -q "^worker.counter.pid: $counter$" && ok || bad "stat of a registered bus"
    $M top cli-demo-$$ --count 2 --interval-ms 50 | grep -c "^counter  *$counter  *yes " | grep -q "^2$" \
        && ok || bad "top redraws twice with the counter alive"
    $B/bin/registry --producer cli-demo-$$ --count 10 >/dev/null &&
        $B/bin/registry --reporter cli-demo-$$ --count 10 >/dev/null && ok || bad "the demo by name"
    wait $counter && ok || bad "the counter"
    $M ls | grep -q "^registered cli-demo-$$ " && bad "the name outlived its programs" || ok
    rm -rf $MSGR_REGISTRY
    if [ -x $B/bin/ui_loop ]; then
        $B/bin/ui_loop --count 300 --dir $tmp.ui >/dev/null || bad "ui_loop"
        $M stat $tmp.ui/app.bus --json | python3 -c '
import json, sys
b = json.load(sys.stdin)
assert b["kind"] == "file" and b["app"] == "uidemo", b
w = {x["name"]: x for x in b["workers"]}
assert w["fetcher"]["sent"] == 300, w
assert w["ui"]["received"] >= 300 and w["ui"]["queued_bytes"] == 0 and not w["ui"]["alive"], w
' && ok || bad "stat --json of a file bus"
        rm -rf $tmp.ui
    fi
else
    echo "cli: --json checks skipped (no python3)"
fi
echo "[====] cli: Tested: $((pass + fail)) | Passing: $pass | Failing: $fail"
[ $fail -eq 0 ]
