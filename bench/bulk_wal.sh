#!/usr/bin/env bash
# Bulk WAL benchmark: one COPY of about 1 GB into a fresh table, in one
# transaction whose COMMIT waits (synchronous_commit = on), against three
# setups in one run:
#   (a) local    local fsync only
#   (b) pgsync   PostgreSQL's quorum commit ANY 2 (r1,r2,r3) to three
#                `pg_receivewal --synchronous --slot`
#   (c) wp       walproposer with 3 safekeepers
# Prints the WAL the COPY generated, the time until its COMMIT returned, the
# confirmed-WAL throughput in MB/s, and each ratio to (a) and to (b)
# (targets, docs/benchmarks.md: c/b >= 1.2). Since all four copies of the WAL
# share one disk here, it also measures the disk's limit for four copies in
# the same run: four concurrent writers each doing N MB of 128 kB writes
# with O_DSYNC (`dd oflag=dsync`, as pwrite+fdatasync); target: c >= 0.8 x
# their per-stream MB/s. And the CPU seconds per GB of WAL of every kind of
# process during the COPY (/proc; lib.sh, "CPU accounting"), with the ratio
# of what replication costs in c (worker + safekeepers) to b (walsenders +
# pg_receivewals). The last lines, "result: KEY VALUE", are for
# bench/compare.sh.
#
#   bench/bulk_wal.sh [--smoke] [--mb N] [--dir DIR]
#
# --smoke: 20 MB (used by the test run). Default: 1000 MB. DIR (default: a
# new directory under /tmp) must be on the disk to measure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
bench_reexec_unprivileged "$0" "$@"

MB=1000
DIR=""
SMOKE=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) SMOKE=1 MB=20 ;;
    --mb) MB=$2; shift ;;
    --dir) DIR=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--smoke] [--mb N] [--dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
[[ $MB =~ ^[1-9][0-9]*$ ]] || { echo "bench: --mb must be a positive number" >&2; exit 2; }
bench_check_installed
[[ -n $DIR ]] || DIR=$(mktemp -d /tmp/wp-bulk.XXXXXX)
mkdir -p "$DIR"
declare -A WALMB SECS RATE CPU
CPU_GROUPS=(walsender pg_receivewal proposer safekeeper backends postgres machine)
trap 'bench_cleanup; rm -f "$DIR/input.copy"; [[ -n ${WP_BENCH_COPY:-} ]] && rm -rf "$WP_BENCH_COPY"' EXIT

# About 110 bytes of WAL per row.
ROWS=$((MB * 1000000 / 110))

now_ns() { date +%s%N; }

# run_setup MODE: sets WALMB[MODE], SECS[MODE], RATE[MODE]
run_setup() {
  local mode=$1 dir=$DIR/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  bench_start_primary "$dir" "$mode" || { echo "bench: setup $mode failed (logs in $dir)" >&2; return 1; }
  if [[ ! -f $DIR/input.copy ]]; then
    sql "COPY (SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) FROM generate_series(1, $ROWS) g) TO '$DIR/input.copy'" >/dev/null
  fi
  sql "CREATE TABLE bulk (id int, payload text)" >/dev/null
  sql "CHECKPOINT" >/dev/null
  local start_lsn end_lsn t0 t1
  start_lsn=$(sql "SELECT pg_current_wal_insert_lsn()")
  bench_cpu_sample "$dir/data" >"$dir/cpu.before"
  t0=$(now_ns)
  sql "COPY bulk FROM '$DIR/input.copy'" >/dev/null
  t1=$(now_ns)
  bench_wait_clients_gone "$dir/data"
  bench_cpu_sample "$dir/data" >"$dir/cpu.after"
  end_lsn=$(sql "SELECT pg_current_wal_insert_lsn()")
  bench_cleanup
  # The logs stay; the data directories (gigabytes) go.
  rm -rf "$dir/data" "$dir"/sk[0-9] "$dir"/r[0-9]
  local bytes=$(($(lsn_to_int "$end_lsn") - $(lsn_to_int "$start_lsn")))
  WALMB[$mode]=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1e6}')
  SECS[$mode]=$(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.2f", n / 1e9}')
  RATE[$mode]=$(awk -v b="$bytes" -v n=$((t1 - t0)) 'BEGIN {printf "%.1f", b / 1e6 / (n / 1e9)}')
  local g
  for g in "${CPU_GROUPS[@]}"; do
    CPU[$mode,$g]=$(awk -v s="$(bench_cpu_seconds "$dir/cpu.before" "$dir/cpu.after" "$g")" -v b="$bytes" \
      'BEGIN {printf "%.2f", s / (b / 1e9)}')
  done
}

# per_gb MODE GROUP...: CPU seconds per GB of WAL of the groups.
per_gb() { bench_cpu_sum CPU "$1" "%.2f" "${@:2}"; }

# four_writers_mb_s: per-stream MB/s of four concurrent O_DSYNC writers of
# $MB MB each, in 128 kB writes, on DIR's disk.
four_writers_mb_s() {
  local i t0 t1 pids=()
  t0=$(now_ns)
  for i in 1 2 3 4; do
    dd if=/dev/zero of="$DIR/writer$i" bs=128k count=$((MB * 8)) oflag=dsync status=none &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || return 1; done
  t1=$(now_ns)
  rm -f "$DIR"/writer[1-4]
  awk -v b=$((MB * 1048576)) -v n=$((t1 - t0)) 'BEGIN {printf "%.1f", b / 1e6 / (n / 1e9)}'
}

echo "bulk WAL: COPY of $ROWS rows (about $MB MB) in one transaction, synchronous_commit = on"
bench_describe_machine "$DIR"
SETUPS=${WP_BENCH_SETUPS:-local pgsync wp}
for mode in $SETUPS; do
  run_setup "$mode" || exit 1
done
if [[ $SETUPS != "local pgsync wp" ]]; then
  for mode in $SETUPS; do
    echo "$mode: ${WALMB[$mode]} MB in ${SECS[$mode]} s, ${RATE[$mode]} MB/s; CPU s/GB:" \
      "$(for g in "${CPU_GROUPS[@]}"; do printf '%s %s ' "$g" "${CPU[$mode,$g]}"; done)"
  done
  exit 0
fi
DISK4=$(four_writers_mb_s) || { echo "bench: the four-writer disk measurement failed" >&2; exit 1; }

printf '\n%-44s %10s %10s %12s %8s\n' setup "WAL MB" seconds "MB/s" "vs (a)"
for mode in local pgsync wp; do
  label=$(bench_label "$mode")
  ratio=$(awk -v x="${RATE[$mode]}" -v a="${RATE[local]}" 'BEGIN {printf "%.2f", x / a}')
  printf '%-44s %10s %10s %12s %8s\n' "$label" "${WALMB[$mode]}" "${SECS[$mode]}" "${RATE[$mode]}" "$ratio"
done
printf '%-44s %10s %10s %12s\n' "disk limit: 4 concurrent O_DSYNC writers" "" "" "$DISK4"

echo
echo "CPU seconds per GB of WAL (/proc, during the COPY):"
printf '%-44s %9s %9s %9s %9s %9s %9s %9s %9s\n' setup walsender receivewal proposer safekeeper \
  replication backends "other pg" machine
for mode in local pgsync wp; do
  label=$(bench_label "$mode")
  printf "%-44s %9s %9s %9s %9s %9s %9s %9s %9s\n" "$label" "${CPU[$mode,walsender]}" \
    "${CPU[$mode,pg_receivewal]}" "${CPU[$mode,proposer]}" "${CPU[$mode,safekeeper]}" \
    "$(per_gb "$mode" walsender pg_receivewal proposer safekeeper)" "${CPU[$mode,backends]}" \
    "${CPU[$mode,postgres]}" "${CPU[$mode,machine]}"
done
echo "(replication = walsender + receivewal + proposer + safekeeper; machine = all CPUs busy)"
cb=$(awk -v c="${RATE[wp]}" -v b="${RATE[pgsync]}" 'BEGIN {printf "%.2f", c / b}')
ca=$(awk -v c="${RATE[wp]}" -v a="${RATE[local]}" 'BEGIN {printf "%.2f", c / a}')
cpu_cb=$(awk -v c="$(per_gb wp walsender pg_receivewal proposer safekeeper)" \
  -v b="$(per_gb pgsync walsender pg_receivewal proposer safekeeper)" \
  'BEGIN {if (b > 0) printf "%.2f", c / b; else print "n/a"}')
cdisk=$(awk -v c="${RATE[wp]}" -v d="$DISK4" 'BEGIN {printf "%.2f", c / d}')
echo
echo "ratio c/b (walproposer / PostgreSQL quorum commit) confirmed WAL MB/s: $cb (target >= 1.20)"
echo "ratio c/disk (walproposer / per-stream MB/s of 4 writers):           $cdisk (target >= 0.80)"
echo "ratio c/a (walproposer / local only):                                $ca (reported)"
echo "ratio c/b replication CPU per GB of WAL:                             $cpu_cb (reported)"
((SMOKE)) && echo "(smoke mode: numbers are not meaningful)"
echo "result: bulk_c_b $cb"
echo "result: bulk_c_disk $cdisk"
echo "result: bulk_c_a $ca"
echo "result: bulk_cpu_c_b $cpu_cb"
exit 0
