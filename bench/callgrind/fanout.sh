#!/usr/bin/env bash
# Server-side cost of the change stream's fan-out, counted rather than
# timed (repeatable on a noisy machine): each server binary given runs
# under callgrind with a simulated cache, W watchers connect (raw HTTP/2,
# the fan-out benchmark's), and only the R changes that follow are
# counted (the benchmark turns the instrumentation on and off around
# them). Printed per watcher per change: instructions, and misses of a
# last-level cache smaller than the watchers' state (2 MiB: at 100 000
# watchers none of a watcher's state is still cached when the next change
# reaches it, which is what the small cache models at this small scale).
#
#   cargo build --release -p eligibility-server -p eligibility-bench
#   bench/callgrind/fanout.sh [-w WATCHERS] [-r CHANGES] [SERVER_BIN...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
watchers=5000
changes=10
while getopts "w:r:" opt; do
  case $opt in
    w) watchers=$OPTARG ;;
    r) changes=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$root/target/release/eligibility-server"
out="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT
for bin in "$@"; do
  wrapper="$out/server"
  cat > "$wrapper" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes --LL=2097152,16,64 \
  --callgrind-out-file="$out/cg.%p" "$bin" "\$@" 2>/dev/null
WRAP
  chmod +x "$wrapper"
  rm -f "$out"/cg.*
  "$root/target/release/eligibility-bench" --pin fanout --server-bin "$wrapper" --callgrind \
    --watchers "$watchers" --connections 20 --repeats "$changes" > /dev/null
  dump="$(ls "$out"/cg.*.1 2>/dev/null | head -1)"
  [ -n "$dump" ] || { echo "no callgrind dump for $bin" >&2; exit 1; }
  # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
  awk -v w="$watchers" -v r="$changes" -v bin="$bin" '
    /^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1 }
    /^totals:/ { for (i = 2; i <= NF; i++) v[i - 1] = $i }
    END {
      n = w * r
      printf "%s: per watcher per change: %.0f instructions, %.1f data reads, %.2f LL misses (data %.2f, instructions %.2f)\n",
        bin, v[ev["Ir"]] / n, v[ev["Dr"]] / n, (v[ev["ILmr"]] + v[ev["DLmr"]] + v[ev["DLmw"]]) / n,
        (v[ev["DLmr"]] + v[ev["DLmw"]]) / n, v[ev["ILmr"]] / n
    }' "$dump"
done
