#!/usr/bin/env bash
# The OpenAPI document: validated by openapi-spec-validator, then the live
# server fuzzed against it by schemathesis (PyPI): no server error (503 only
# where documented), every answer conforms to the document. Quick by
# default; OPENAPI_EXAMPLES=N for more cases per operation.
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
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
url="http://127.0.0.1:$port/v1/openapi.json"
"$venv/bin/python" -c "import urllib.request; open('$data/openapi.json','wb').write(urllib.request.urlopen('$url').read())"
"$venv/bin/openapi-spec-validator" "$data/openapi.json"
cd "$here"
"$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$url" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "${OPENAPI_EXAMPLES:-20}" --seed 2026 --no-color 2>&1 | tail -n 25
