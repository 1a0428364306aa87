#!/usr/bin/env bash
# Build peer-bench and run what docs/BENCHMARKS.md reports: the storage-core suite, the aedb
# page-size comparison (W3, W4, W5, W12), the aedb O_DIRECT comparison (W5), and the durable
# workloads (W1, W2, W8, W9) against SQLite, redb, LMDB, fjall, RocksDB and the original aedb 0.1.9.
# Markdown is printed and kept in $OUT (default /tmp/aedb-bench-results); data goes under $DATA
# (default /tmp/aedb-bench). About 9 minutes on 2 cores for the storage core, about 10 more for
# the durable workloads, and about 10 more for the API level: W11 and W13 against the original aedb, W7
# (YCSB) against SQLite.
# ONLY=core, ONLY=durable or ONLY=api runs one part.
# The first build compiles RocksDB's C++ (librocksdb-sys: over an hour on 2 cores) and needs
# libclang for bindgen; as root on Debian, libclang-dev is installed when missing. For the
# storage-core workloads alone, `cargo build --release --no-default-features` skips RocksDB.
set -euo pipefail
cd "$(dirname "$0")"
if ! compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null \
  && ! compgen -G '/usr/lib/*/libclang-[0-9]*.so*' >/dev/null \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y libclang-dev >/dev/null
fi
OUT=${OUT:-/tmp/aedb-bench-results}
DATA=${DATA:-/tmp/aedb-bench}
ONLY=${ONLY:-all}
mkdir -p "$OUT"
cargo build --release
BIN=./target/release/peer-bench
if [ "$ONLY" = all ] || [ "$ONLY" = core ]; then
  "$BIN" --dir "$DATA" | tee "$OUT/suite.md"
  for workload in W3 W4 W5 W12; do
    "$BIN" --dir "$DATA" --workload "$workload" --engines aedb --page-size 4096,8192,16384 \
      | tee "$OUT/page-size-$workload.md"
  done
  "$BIN" --dir "$DATA" --workload W5 --engines aedb --direct-io false,true | tee "$OUT/direct-io-W5.md"
fi
if [ "$ONLY" = all ] || [ "$ONLY" = durable ]; then
  "$BIN" --dir "$DATA" --workload durable | tee "$OUT/durable.md"
fi
if [ "$ONLY" = all ] || [ "$ONLY" = api ]; then
  "$BIN" --dir "$DATA" --workload W11 --rounds 5 | tee "$OUT/api-W11.md"
  "$BIN" --dir "$DATA" --workload W7 | tee "$OUT/ycsb-W7.md"
  "$BIN" --dir "$DATA" --workload W13 --rounds 3 | tee "$OUT/api-W13.md"
fi
