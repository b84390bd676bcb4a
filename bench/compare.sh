#!/usr/bin/env bash
# The whole comparison with PostgreSQL's own quorum commit in one command:
# runs the benchmarks below one after the other on this machine and prints
# one table of every ratio with its target (docs/benchmarks.md):
#   pgbench_quorum.sh --clients 8    TPS c/b, c/a; replication CPU c/b
#   pgbench_quorum.sh --clients 1    TPS c/b; replication CPU c/b
#   (both with --rounds 3: each setup's median of three interleaved rounds)
#   bulk_wal.sh                      MB/s c/b, c/(disk limit for 4 copies)
#   safekeeper_ingest.sh --scale 10  safekeeper / raw pwrite+fdatasync
#   safekeeper_ingest.sh --scale 30  same, more WAL
# Each benchmark's own output goes to DIR/NAME.log (DIR: --dir, default a new
# directory under /tmp); the table at the end is built from their "result:"
# lines.
#
#   bench/compare.sh [--smoke] [--dir DIR]
#
# --smoke: every benchmark in its smoke mode (seconds; the numbers mean
# nothing). A full run takes about 20 minutes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SMOKE=0
DIR=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) SMOKE=1 ;;
    --dir) DIR=$2; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--smoke] [--dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $DIR ]] || DIR=$(mktemp -d /tmp/wp-compare.XXXXXX)
mkdir -p "$DIR"
chmod 755 "$DIR"

# run NAME COMMAND...: runs one benchmark, its output in DIR/NAME.log.
run() {
  local name=$1
  shift
  echo "compare: $name: $*" >&2
  if ! "$@" >"$DIR/$name.log" 2>&1; then
    echo "compare: $name failed; its output:" >&2
    tail -n 30 "$DIR/$name.log" >&2
    exit 1
  fi
}

# result NAME KEY [FIELD]: a value from NAME's "result: KEY v1 v2 ..." line.
result() {
  local v
  v=$(awk -v k="$2" -v f="${3:-1}" '$1 == "result:" && $2 == k {print $(2 + f)}' "$DIR/$1.log" | tail -1)
  [[ -n $v ]] || { echo "compare: no result $2 in $DIR/$1.log" >&2; exit 1; }
  echo "$v"
}

if ((SMOKE)); then
  run pgbench8 "$HERE/pgbench_quorum.sh" --smoke --clients 8
  run pgbench1 "$HERE/pgbench_quorum.sh" --smoke --clients 1 --rounds 2
  run bulk "$HERE/bulk_wal.sh" --smoke
  run ingest10 "$HERE/safekeeper_ingest.sh" --smoke
  cp "$DIR/ingest10.log" "$DIR/ingest30.log"
else
  run pgbench8 "$HERE/pgbench_quorum.sh" --clients 8 --duration 30 --rounds 3
  run pgbench1 "$HERE/pgbench_quorum.sh" --clients 1 --duration 20 --rounds 3
  run bulk "$HERE/bulk_wal.sh" --mb 1000
  run ingest10 "$HERE/safekeeper_ingest.sh" --scale 10
  run ingest30 "$HERE/safekeeper_ingest.sh" --scale 30
fi

# row LABEL VALUE OP TARGET: one line of the table with its verdict.
row() {
  local verdict
  verdict=$(awk -v v="$2" -v op="$3" -v t="$4" 'BEGIN {
    if (v == "n/a") { print "n/a"; exit }
    ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0)
    print ok ? "met" : "MISSED" }')
  printf '%-58s %8s %4s %-6s %s\n' "$1" "$2" "$3" "$4" "$verdict"
}

echo
echo "walproposer (c) against PostgreSQL's quorum commit (b) and local fsync (a), one run:"
bench_line=$(grep -m1 '^machine:' "$DIR/pgbench8.log" || true)
[[ -n $bench_line ]] && echo "$bench_line"
printf '%-58s %8s %4s %-6s %s\n' measure value "" target verdict
row "pgbench -N, 8 clients: TPS c/b" "$(result pgbench8 tps_c_b)" ">=" 1.20
row "pgbench -N, 8 clients: TPS c/a" "$(result pgbench8 tps_c_a)" ">=" 0.75
row "pgbench -N, 1 client: TPS c/b" "$(result pgbench1 tps_c_b)" ">=" 1.20
row "replication CPU per transaction c/b, 8 clients" "$(result pgbench8 cpu_c_b)" "<=" 0.70
row "replication CPU per transaction c/b, 1 client" "$(result pgbench1 cpu_c_b)" "<=" 0.70
row "bulk WAL (COPY): MB/s c/b" "$(result bulk bulk_c_b)" ">=" 1.20
row "bulk WAL: c / disk limit for 4 copies" "$(result bulk bulk_c_disk)" ">=" 0.80
row "safekeeper ingest / pwrite+fdatasync, scale 10" "$(result ingest10 ingest_ratio)" ">=" 0.80
row "safekeeper ingest / pwrite+fdatasync, scale 30" "$(result ingest30 ingest_ratio)" ">=" 0.80
printf '%-58s %8s\n' "bulk WAL: MB/s c/a (reported)" "$(result bulk bulk_c_a)"
printf '%-58s %8s\n' "bulk WAL: replication CPU per GB c/b (reported)" "$(result bulk bulk_cpu_c_b)"
printf '%-58s %8s\n' "p50 ms a/b/c, 8 clients" "$(result pgbench8 p50_ms 1)/$(result pgbench8 p50_ms 2)/$(result pgbench8 p50_ms 3)"
printf '%-58s %8s\n' "p99 ms a/b/c, 8 clients" "$(result pgbench8 p99_ms 1)/$(result pgbench8 p99_ms 2)/$(result pgbench8 p99_ms 3)"
printf '%-58s %8s\n' "p50 ms a/b/c, 1 client" "$(result pgbench1 p50_ms 1)/$(result pgbench1 p50_ms 2)/$(result pgbench1 p50_ms 3)"
printf '%-58s %8s\n' "p99 ms a/b/c, 1 client" "$(result pgbench1 p99_ms 1)/$(result pgbench1 p99_ms 2)/$(result pgbench1 p99_ms 3)"
echo "(each benchmark's full table: $DIR/*.log)"
((SMOKE)) && echo "(smoke mode: numbers are not meaningful)"
exit 0
