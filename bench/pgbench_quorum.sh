#!/usr/bin/env bash
# Commit latency benchmark: `pgbench -N` (simple update), synchronous_commit
# = on, the same scale, clients and duration against three setups in one run:
#   (a) local    local fsync only
#   (b) pgsync   PostgreSQL's quorum commit ANY 2 (r1,r2,r3) to three
#                `pg_receivewal --synchronous --slot`
#   (c) wp       walproposer with 3 safekeepers
# Prints TPS, average and p99 latency per setup, and the ratios c/b and c/a
# (targets, docs/benchmarks.md: c/b >= 1.2, c/a >= 0.75).
#
#   bench/pgbench_quorum.sh [--smoke] [--duration SEC] [--clients N] [--scale N] [--dir DIR]
#
# --smoke: 3 s per setup at scale 1 (used by the test run so the script
# cannot rot). Default: 30 s, 8 clients, scale 10. DIR (default: a new
# directory under /tmp) must be on the disk to measure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
bench_reexec_unprivileged "$0" "$@"

DURATION=30
CLIENTS=8
SCALE=10
DIR=""
SMOKE=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) SMOKE=1 DURATION=3 SCALE=1 ;;
    --duration) DURATION=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --scale) SCALE=$2; shift ;;
    --dir) DIR=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--smoke] [--duration SEC] [--clients N] [--scale N] [--dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
bench_check_installed
[[ -n $DIR ]] || DIR=$(mktemp -d /tmp/wp-pgbench.XXXXXX)
mkdir -p "$DIR"
declare -A TPS AVG P99
trap 'bench_cleanup; [[ -n ${WP_BENCH_COPY:-} ]] && rm -rf "$WP_BENCH_COPY"' EXIT

# run_setup MODE: sets TPS[MODE], AVG[MODE], P99[MODE]
run_setup() {
  local mode=$1 dir=$DIR/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  bench_start_primary "$dir" "$mode" || { echo "bench: setup $mode failed (logs in $dir)" >&2; return 1; }
  "$BINDIR/pgbench" -h "$SOCKDIR" -p "$PGPORT_PRIMARY" -i -s "$SCALE" -q postgres >"$dir/init.log" 2>&1 ||
    { cat "$dir/init.log" >&2; return 1; }
  sql "CHECKPOINT" >/dev/null
  (cd "$dir" && "$BINDIR/pgbench" -h "$SOCKDIR" -p "$PGPORT_PRIMARY" -N -c "$CLIENTS" -j 2 -T "$DURATION" \
    -l --log-prefix=txn postgres >"$dir/pgbench.log" 2>&1) ||
    { cat "$dir/pgbench.log" >&2; return 1; }
  local tps avg p99
  tps=$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$dir/pgbench.log" | head -1)
  avg=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$dir/pgbench.log")
  # per-transaction log: client_id transaction_no time(us) script_no epoch us
  p99=$(cat "$dir"/txn.* | awk '{print $3}' | sort -n | awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1000}')
  rm -f "$dir"/txn.*
  bench_cleanup
  [[ -n $tps && -n $avg && -n $p99 ]] || { echo "bench: no result from setup $mode (see $dir/pgbench.log)" >&2; return 1; }
  TPS[$mode]=$tps AVG[$mode]=$avg P99[$mode]=$p99
}

echo "pgbench -N: $CLIENTS clients, scale $SCALE, ${DURATION}s per setup, synchronous_commit = on"
bench_describe_machine "$DIR"
for mode in local pgsync wp; do
  run_setup "$mode" || exit 1
done

printf '\n%-44s %10s %10s %10s\n' setup tps "avg ms" "p99 ms"
printf "%-44s %10.1f %10s %10s\n" "(a) local fsync only" "${TPS[local]}" "${AVG[local]}" "${P99[local]}"
printf "%-44s %10.1f %10s %10s\n" "(b) PostgreSQL ANY 2 of 3 pg_receivewal" "${TPS[pgsync]}" "${AVG[pgsync]}" "${P99[pgsync]}"
printf "%-44s %10.1f %10s %10s\n" "(c) walproposer, 3 safekeepers" "${TPS[wp]}" "${AVG[wp]}" "${P99[wp]}"
cb=$(awk -v c="${TPS[wp]}" -v b="${TPS[pgsync]}" 'BEGIN {printf "%.2f", c / b}')
ca=$(awk -v c="${TPS[wp]}" -v a="${TPS[local]}" 'BEGIN {printf "%.2f", c / a}')
echo
echo "ratio c/b (walproposer / PostgreSQL quorum commit) TPS: $cb (target >= 1.20)"
echo "ratio c/a (walproposer / local only) TPS:              $ca (target >= 0.75)"
((SMOKE)) && echo "(smoke mode: numbers are not meaningful)"
exit 0
