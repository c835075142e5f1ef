#!/bin/sh
# make bridge-demo: a nats-server with JetStream on a free port of 127.0.0.1 and a temporary
# store, two_machines through it, the server stopped however the run ends.
#   sh examples/two_machines/demo.sh BUILD_DIR
B=${1:-build}
dir=$(mktemp -d /tmp/msgr-bridge-demo.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 14222)
nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/js" > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
i=0
until grep -q "Server is ready" "$dir/server.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 500 ] && { echo "bridge-demo: nats-server did not start"; exit 1; }
    sleep 0.01
done
"$B/bin/two_machines" --url "nats://127.0.0.1:$port" --dir "$dir/buses" --orders 10000
