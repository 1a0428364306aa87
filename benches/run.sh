#!/usr/bin/env bash
# Build peer-bench and run what docs/BENCHMARKS.md reports: the full suite, the aedb page-size
# comparison (W3, W4, W5, W12) and the aedb O_DIRECT comparison (W5). Markdown is printed and kept
# in $OUT (default /tmp/aedb-bench-results); data goes under $DATA (default /tmp/aedb-bench).
# About 9 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/aedb-bench-results}
DATA=${DATA:-/tmp/aedb-bench}
mkdir -p "$OUT"
cargo build --release
BIN=./target/release/peer-bench
"$BIN" --dir "$DATA" | tee "$OUT/suite.md"
for workload in W3 W4 W5 W12; do
  "$BIN" --dir "$DATA" --workload "$workload" --engines aedb --page-size 4096,8192,16384 \
    | tee "$OUT/page-size-$workload.md"
done
"$BIN" --dir "$DATA" --workload W5 --engines aedb --direct-io false,true | tee "$OUT/direct-io-W5.md"
