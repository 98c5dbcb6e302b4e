#!/usr/bin/env bash
# Server-side instructions per call (callgrind counts user-space
# instructions: repeatable whatever else the machine is doing, unlike
# timings): the release server under valgrind, N calls of grpc.health.v1
# Check, then N eligibility Checks (FR, MX, CN in turn), each in a fresh
# server, counted from the moment it is SERVING (calls.py turns callgrind's
# instrumentation on then); a run with no calls is subtracted. Needs
# valgrind (with callgrind_control) and the Python
# venv that tests/interop/run.sh makes (grpcio).
#
#   cargo build --release --bin eligibility-server && bench/callgrind/run.sh [N]
#
# SERVER_BIN=path counts another build of the server (A/B comparisons).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
n="${1:-2000}"
venv="$root/target/interop-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'grpcio==1.*' 'grpcio-tools==1.*'
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
instructions() { # kind calls -> total instructions of that server run
  local kind=$1 calls=$2 data port pid
  data="$(mktemp -d -p "$out")"
  port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/$kind.cg" \
    "${SERVER_BIN:-$root/target/release/eligibility-server}" --demo --listen "127.0.0.1:$port" --data-dir "$data" --log-level error \
    2> "$out/$kind.err" &
  pid=$!
  "$venv/bin/python" "$root/bench/callgrind/calls.py" "127.0.0.1:$port" "$pid" "$kind" "$calls" > /dev/null
  kill -INT "$pid"
  wait "$pid" || true
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$kind.err"
}
base=$(instructions none 0)
health=$(instructions health "$n")
check=$(instructions check "$n")
cn=$(instructions check-cn "$n")
mx=$(instructions check-mx "$n")
web=$(instructions http-check "$n")
awk -v b="$base" -v h="$health" -v c="$check" -v cn="$cn" -v mx="$mx" -v web="$web" -v n="$n" 'BEGIN {
  hp = (h - b) / n; cp = (c - b) / n; cnp = (cn - b) / n; mxp = (mx - b) / n
  printf "server instructions per call (%d calls each): health %.0f, Check %.0f (FR, MX, CN in turn); Health/Check %.3f\n", n, hp, cp, hp / cp
  printf "  Check CN (never listed) %.0f, Health/CheckCN %.3f; Check MX (with its deciding change) %.0f, Health/CheckMX %.3f\n", cnp, hp / cnp, mxp, hp / mxp
  printf "  HTTP GET /v1/lists/cyber/check/MX (HTTP/1.1, kept alive) %.0f\n", (web - b) / n
}'
