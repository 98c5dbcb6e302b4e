#!/usr/bin/env bash
# gRPC-Web check: connect-es (npm), a client no one here wrote, asks
# `eligibility-server --demo` the 2021 questions over gRPC-Web on a free
# loopback port. Needs node and npm (the npm registry); builds the server
# if needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
(cd "$here" && npm ci --no-audit --no-fund --silent)
(cd "$root" && cargo build --quiet --bin eligibility-server)
server="$root/target/debug/eligibility-server"
data="$(mktemp -d)"
"$server" descriptor-set "$data/eligibility.binpb"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
"$server" --demo --listen "127.0.0.1:$port" --data-dir "$data/store" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
# Wait (bounded) until the server answers a read: the port is bound while
# the registry still loads, and every call then answers UNAVAILABLE.
for _ in $(seq 1 100); do
  if node -e "fetch('http://127.0.0.1:$port/v1/lists').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then break; fi
  sleep 0.1
done
node "$here/check.mjs" "http://127.0.0.1:$port" "$data/eligibility.binpb"
