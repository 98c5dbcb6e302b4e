#!/usr/bin/env bash
# Interop check: a Python gRPC client generated only from proto/ runs the
# 2021 scenario against `eligibility-server --demo` on a free loopback port.
# Needs python3 (with venv) and PyPI; builds the server if needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/interop-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'grpcio==1.*' 'grpcio-tools==1.*'
fi
cargo build --quiet --bin eligibility-server
data="$(mktemp -d)"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$root/target/debug/eligibility-server" --demo --listen "127.0.0.1:$port" --data-dir "$data" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
# Wait (bounded) until the server answers a read: the port is bound while
# the registry still loads, and every call then answers UNAVAILABLE.
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/lists', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.1
done
"$venv/bin/python" "$root/tests/interop/scenario_2021.py" "127.0.0.1:$port" | tail -n 3
