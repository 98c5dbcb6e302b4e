#!/usr/bin/env bash
# The OpenAPI document: validated by openapi-spec-validator, then the live
# server fuzzed against it by schemathesis (PyPI) with all its checks: no
# server error (503 only where documented), every answer conforms to the
# document, every request the document calls valid is accepted and every
# request it calls invalid is refused. Quick by default; OPENAPI_EXAMPLES=N
# for more cases per operation. The seed changes per run and is printed;
# OPENAPI_SEED=N replays a run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/openapi-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'openapi-spec-validator==0.*' 'schemathesis==4.*'
fi
(cd "$root" && cargo build --quiet --bin eligibility-server)
data="$(mktemp -d)"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Short waits: a read of a far-away min_revision answers 503 quickly.
"$root/target/debug/eligibility-server" --demo --listen "127.0.0.1:$port" --data-dir "$data" --log-level error \
  --max-wait-ms 20 --progress-interval-ms 200 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
# Ready when it answers a read: the port is bound while the registry
# still loads, and every request then answers 503.
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/lists', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.1
done
url="http://127.0.0.1:$port/v1/openapi.json"
"$venv/bin/python" -c "import urllib.request; open('$data/openapi.json','wb').write(urllib.request.urlopen('$url').read())"
"$venv/bin/openapi-spec-validator" "$data/openapi.json"
cd "$here"
seed="${OPENAPI_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
echo "schemathesis seed $seed (replay: OPENAPI_SEED=$seed $0)"
status=0
# hooks.py: positive_data_acceptance, except for the answers the document
# says depend on the data (a revision past the head, a stale If-Match).
SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$here" \
  "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$url" \
  --checks all --exclude-checks positive_data_acceptance --max-examples "${OPENAPI_EXAMPLES:-20}" --seed "$seed" --no-color \
  >"$data/schemathesis.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$data/schemathesis.log"
  echo "schemathesis failed with seed $seed (replay: OPENAPI_SEED=$seed $0)"
  exit "$status"
fi
tail -n 25 "$data/schemathesis.log"
