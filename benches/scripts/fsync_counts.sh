#!/usr/bin/env bash
# Syscalls per durable commit, per engine: runs W1 (one writer, single-row durable commits) for
# each engine on its own under `strace -f -c`, twice, with N1 and N2 measured commits (--quick
# sizes otherwise), and prints (calls at N2 - calls at N1) / (N2 - N1) for each traced syscall.
# The difference cancels everything that is not a measured commit: open, the 10,000-key preload,
# the raw flush probe, close.
#
# aedb writes and fdatasyncs its log with plain syscalls on the committing thread; creating a
# log segment and the data-file writes (checkpoints) may go through io_uring, whose operations
# strace does not see by name: io_uring_enter is counted too, and aedb runs a second time with
# AEDB_DISABLE_IO_URING=1. --seccomp-bpf stops only the traced syscalls, so the
# commit p50 printed beside the counts stays near the untraced figure.
#
# Usage: benches/scripts/fsync_counts.sh            (after `cd benches && cargo build --release`)
#   ENGINES="aedb rocksdb"  engines to run (default: every durable engine)
#   N1=100 N2=400           measured commits of the two runs
#   DATA=/tmp/aedb-fsync    where the engines' directories go (a disk, not tmpfs)
#   BIN=path/to/peer-bench  default: $CARGO_TARGET_DIR or benches/target, release build
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINES=${ENGINES:-"aedb sqlite redb lmdb fjall rocksdb seed"}
N1=${N1:-100}
N2=${N2:-400}
DATA=${DATA:-/tmp/aedb-fsync}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/peer-bench}
SYSCALLS=(fsync fdatasync sync_file_range msync io_uring_enter pwrite64 pwritev pwritev2 write writev)
TRACE="fsync,fdatasync,sync_file_range,pwrite64,pwritev,pwritev2,io_uring_enter,msync,write,writev"

if ! command -v strace >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y strace >/dev/null
  else
    echo "strace is missing (apt-get install strace)" >&2
    exit 1
  fi
fi
[ -x "$BIN" ] || { echo "no $BIN: cd benches && cargo build --release" >&2; exit 1; }
[ "$N2" -gt "$N1" ] || { echo "N2 must be larger than N1" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$DATA"

# run LABEL ENGINE COMMITS [VAR=value ...]: W1 under strace; the summary goes to $OUT/LABEL-COMMITS.
run() {
  local label=$1 engine=$2 commits=$3
  shift 3
  env "$@" strace -f --seccomp-bpf -c -U name,calls -e trace="$TRACE" -o "$OUT/$label-$commits" \
    "$BIN" --quick --workload W1 --rounds 1 --engines "$engine" --w1-commits "$commits" \
    --dir "$DATA" >"$OUT/$label-$commits.md" 2>"$OUT/$label-$commits.log" \
    || { echo "$label: W1 failed, see below" >&2; cat "$OUT/$label-$commits.log" >&2; exit 1; }
}

# calls FILE SYSCALL: the count strace -c gave for SYSCALL (0 when it never ran).
calls() {
  awk -v name="$2" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }' "$1"
}

# p50 FILE: W1's commit p50 from the markdown (under strace, so only a rough figure).
p50() {
  awk -F'|' '/^\| commit p50 \|/ { gsub(/ /, "", $3); print $3 }' "$1"
}

header="| engine | sync calls per commit |"
rule="|---|---:|"
for syscall in "${SYSCALLS[@]}"; do
  header+=" $syscall |"
  rule+="---:|"
done
header+=" W1 commit p50 under strace ($N2 commits) |"
rule+="---:|"

rows=()
for engine in $ENGINES; do
  variants=("$engine")
  [ "$engine" = aedb ] && variants+=("aedb-no-io_uring")
  for label in "${variants[@]}"; do
    env=()
    [ "$label" = aedb-no-io_uring ] && env=(AEDB_DISABLE_IO_URING=1)
    echo "[fsync_counts] $label: $N1 and $N2 commits under strace" >&2
    run "$label" "$engine" "$N1" "${env[@]}"
    run "$label" "$engine" "$N2" "${env[@]}"
    row="| $label |"
    cells=""
    syncs=0
    for syscall in "${SYSCALLS[@]}"; do
      a=$(calls "$OUT/$label-$N1" "$syscall")
      b=$(calls "$OUT/$label-$N2" "$syscall")
      per=$(awk -v a="$a" -v b="$b" -v n=$((N2 - N1)) 'BEGIN { printf "%.2f", (b - a) / n }')
      cells+=" $per |"
      case $syscall in
        fsync | fdatasync | sync_file_range | msync)
          syncs=$(awk -v s="$syncs" -v p="$per" 'BEGIN { printf "%.2f", s + p }')
          ;;
      esac
    done
    rows+=("$row $syncs |$cells $(p50 "$OUT/$label-$N2.md") |")
  done
done

echo
echo "### Syscalls per durable commit (W1, one writer, strace -f -c)"
echo
echo "$header"
echo "$rule"
printf '%s\n' "${rows[@]}"
echo
echo "- (calls with $N2 measured commits - calls with $N1) / $((N2 - N1)), all threads (strace -f),"
echo "  --quick sizes (10,000 keys preloaded); \"sync calls\" = fsync + fdatasync + sync_file_range + msync."
echo "- io_uring_enter: one call can submit or reap several operations (aedb's WAL fsync may be one of"
echo "  them); aedb-no-io_uring is aedb with AEDB_DISABLE_IO_URING=1 (plain pwrite/fdatasync)."
echo "- A pwrite64 to a descriptor opened with O_DSYNC (LMDB's meta page) is a device flush too,"
echo "  though not a sync call."
echo "- write/writev include the harness's own progress lines (the same in both runs, so they cancel)."
