#!/bin/sh
# The JSON-RPC example end to end: jsonrpc_server answers jsonrpc_client (every rule of the
# specification, several connections at once) and a client written in another language
# (Python's own socket and json modules, when python3 is installed); an over-long --listen path
# exits non-zero naming the limit.
#   sh tests/jsonrpc_test.sh BUILD_DIR
set -eu
B=${1:-build}
dir=$(mktemp -d /tmp/msgr-jsonrpc.XXXXXX)
sock=$dir/rpc.sock
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

long=$dir/$(printf '%0150d' 0).sock
if "$B/bin/jsonrpc_server" --listen "$long" 2>"$dir/err"; then
    echo "jsonrpc_test: an over-long path was accepted"; exit 1
fi
grep -q '107' "$dir/err" || { echo "jsonrpc_test: the error does not name the limit:"; cat "$dir/err"; exit 1; }

have_python=$(command -v python3 >/dev/null 2>&1 && echo 1 || echo 0)
clients=$((1 + 4 + have_python))   # the conformance connection, 4 counting ones, python
"$B/bin/jsonrpc_server" --listen "$sock" --max-clients "$clients" >"$dir/server.out" &
server_pid=$!
"$B/bin/jsonrpc_client" "$sock" --clients 4

if [ "$have_python" = 1 ]; then
python3 - "$sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rw", newline="\n")
def call(obj):
    f.write(json.dumps(obj) + "\n"); f.flush()
    return json.loads(f.readline())
r = call({"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 10, "subtrahend": 4}, "id": "py"})
assert r == {"jsonrpc": "2.0", "result": 6, "id": "py"}, r
r = call({"jsonrpc": "2.0", "method": "sort", "params": {"list": [2, 9, 1], "descending": True}, "id": 2})
assert r["result"] == [9, 2, 1], r
r = call({"jsonrpc": "2.0", "method": "divide", "params": {"dividend": 1, "divisor": 0}, "id": 3})
assert r["error"]["code"] == 1 and "result" not in r, r
r = call([{"jsonrpc": "2.0", "method": "echo", "params": ["a"], "id": 4}, {"jsonrpc": "2.0", "method": "count"}])
assert r == [{"jsonrpc": "2.0", "result": "a", "id": 4}], r
print("jsonrpc_test: a Python client got every answer it expected")
PY
else
    echo "jsonrpc_test: python3 not installed: the other-language client is skipped"
fi
wait "$server_pid"
server_pid=
grep -q "served $clients clients" "$dir/server.out" || { cat "$dir/server.out"; exit 1; }
echo "jsonrpc_test: ok"
