#!/usr/bin/env bash
# Commit latency benchmark: `pgbench -N` (simple update), synchronous_commit
# = on, the same scale, clients and duration against three setups in one run:
#   (a) local    local fsync only
#   (b) pgsync   PostgreSQL's quorum commit ANY 2 (r1,r2,r3) to three
#                `pg_receivewal --synchronous --slot`
#   (c) wp       walproposer with 3 safekeepers
# Prints TPS, average, p50 and p99 latency per setup, the ratios c/b and
# c/a (targets, docs/benchmarks.md: c/b >= 1.2, c/a >= 0.75), and the CPU
# seconds per 1,000 committed transactions of every process involved (from
# /proc; lib.sh, "CPU accounting"), with the ratio of what replication costs
# in c (worker + safekeepers) to b (walsenders + pg_receivewals), target
# <= 0.70. The last lines, "result: KEY VALUE", are for bench/compare.sh.
#
#   bench/pgbench_quorum.sh [--smoke] [--duration SEC] [--clients N] [--scale N]
#                           [--rounds N] [--dir DIR]
#
# --smoke: 3 s per setup at scale 1 (used by the test run so the script
# cannot rot). Default: 30 s, 8 clients, scale 10, 1 round. --rounds N runs
# the setups N times, interleaved (a b c a b c ...), prints every round's
# TPS and reports, for each setup, its median round (by TPS; that round's
# latencies and CPU too): on a noisy machine one round can be 10-15 % off.
# DIR (default: a new directory under /tmp) must be on the disk to measure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
bench_reexec_unprivileged "$0" "$@"

DURATION=30
CLIENTS=8
SCALE=10
DIR=""
SMOKE=0
ROUNDS=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) SMOKE=1 DURATION=3 SCALE=1 ;;
    --duration) DURATION=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --scale) SCALE=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --dir) DIR=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--smoke] [--duration SEC] [--clients N] [--scale N] [--rounds N] [--dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench: --rounds must be a positive integer, not '$ROUNDS'" >&2; exit 2; }
bench_check_installed
[[ -n $DIR ]] || DIR=$(mktemp -d /tmp/wp-pgbench.XXXXXX)
mkdir -p "$DIR"
declare -A TPS AVG P50 P99 TXNS CPU
CPU_GROUPS=(walsender pg_receivewal proposer safekeeper backends postgres machine)
trap 'bench_cleanup; [[ -n ${WP_BENCH_COPY:-} ]] && rm -rf "$WP_BENCH_COPY"' EXIT

# run_setup MODE KEY: sets TPS, AVG, P50, P99, TXNS [KEY] and CPU[KEY,GROUP]
run_setup() {
  local mode=$1 key=$2 dir=$DIR/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  bench_start_primary "$dir" "$mode" || { echo "bench: setup $mode failed (logs in $dir)" >&2; return 1; }
  "$BINDIR/pgbench" -h "$SOCKDIR" -p "$PGPORT_PRIMARY" -i -s "$SCALE" -q postgres >"$dir/init.log" 2>&1 ||
    { cat "$dir/init.log" >&2; return 1; }
  sql "CHECKPOINT" >/dev/null
  bench_cpu_sample "$dir/data" >"$dir/cpu.before"
  (cd "$dir" && "$BINDIR/pgbench" -h "$SOCKDIR" -p "$PGPORT_PRIMARY" -N -c "$CLIENTS" -j 2 -T "$DURATION" \
    -l --log-prefix=txn postgres >"$dir/pgbench.log" 2>&1) ||
    { cat "$dir/pgbench.log" >&2; return 1; }
  bench_wait_clients_gone "$dir/data"
  bench_cpu_sample "$dir/data" >"$dir/cpu.after"
  local tps avg txns p50 p99 g
  tps=$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$dir/pgbench.log" | head -1)
  avg=$(sed -nE 's/^latency average = ([0-9.]+) ms.*/\1/p' "$dir/pgbench.log")
  txns=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$dir/pgbench.log")
  # per-transaction log: client_id transaction_no time(us) script_no epoch us
  read -r p50 p99 < <(cat "$dir"/txn.* | awk '{print $3}' | sort -n |
    awk '{v[NR] = $1} END {i = int(NR * 0.50); if (i < 1) i = 1; j = int(NR * 0.99); if (j < 1) j = 1;
                           printf "%.2f %.2f\n", v[i] / 1000, v[j] / 1000}')
  rm -f "$dir"/txn.*
  bench_cleanup
  # The logs stay; the data directories (gigabytes) go.
  rm -rf "$dir/data" "$dir"/sk[0-9] "$dir"/r[0-9]
  [[ -n $tps && -n $avg && -n $p99 && -n $txns && $txns -gt 0 ]] ||
    { echo "bench: no result from setup $mode (see $dir/pgbench.log)" >&2; return 1; }
  TPS[$key]=$tps AVG[$key]=$avg P50[$key]=$p50 P99[$key]=$p99 TXNS[$key]=$txns
  for g in "${CPU_GROUPS[@]}"; do
    CPU[$key,$g]=$(awk -v s="$(bench_cpu_seconds "$dir/cpu.before" "$dir/cpu.after" "$g")" -v n="$txns" \
      'BEGIN {printf "%.3f", s * 1000 / n}')
  done
}

# per_1000 MODE GROUP...: CPU seconds per 1,000 transactions of the groups.
per_1000() { bench_cpu_sum CPU "$1" "%.3f" "${@:2}"; }

echo "pgbench -N: $CLIENTS clients, scale $SCALE, ${DURATION}s per setup, $ROUNDS round(s), synchronous_commit = on"
bench_describe_machine "$DIR"
SETUPS=${WP_BENCH_SETUPS:-local pgsync wp}
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in $SETUPS; do
    run_setup "$mode" "$mode,$round" || exit 1
  done
done
# Each setup's median round (by TPS) stands for it; with an even count the
# lower of the two middle ones.
for mode in $SETUPS; do
  median=$(for ((round = 1; round <= ROUNDS; round++)); do echo "${TPS[$mode,$round]} $round"; done |
    sort -n | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) {print $2}')
  k="$mode,$median"
  TPS[$mode]=${TPS[$k]} AVG[$mode]=${AVG[$k]} P50[$mode]=${P50[$k]} P99[$mode]=${P99[$k]} TXNS[$mode]=${TXNS[$k]}
  for g in "${CPU_GROUPS[@]}"; do CPU[$mode,$g]=${CPU[$k,$g]}; done
  if ((ROUNDS > 1)); then
    line=""
    for ((round = 1; round <= ROUNDS; round++)); do line+=$(printf ' %.1f' "${TPS[$mode,$round]}"); done
    echo "rounds $mode TPS:$line (median: round $median)"
  fi
done

printf '\n%-44s %10s %8s %8s %8s %12s\n' setup tps "avg ms" "p50 ms" "p99 ms" transactions
for mode in $SETUPS; do
  printf "%-44s %10.1f %8s %8s %8s %12s\n" "$(bench_label "$mode")" "${TPS[$mode]}" "${AVG[$mode]}" "${P50[$mode]}" \
    "${P99[$mode]}" "${TXNS[$mode]}"
done

echo
echo "CPU seconds per 1,000 committed transactions (/proc, during the pgbench run):"
printf '%-44s %9s %9s %9s %9s %9s %9s %9s %9s\n' setup walsender receivewal proposer safekeeper \
  replication backends "other pg" machine
for mode in $SETUPS; do
  repl=$(per_1000 "$mode" walsender pg_receivewal proposer safekeeper)
  printf "%-44s %9s %9s %9s %9s %9s %9s %9s %9s\n" "$(bench_label "$mode")" "${CPU[$mode,walsender]}" \
    "${CPU[$mode,pg_receivewal]}" "${CPU[$mode,proposer]}" "${CPU[$mode,safekeeper]}" "$repl" \
    "${CPU[$mode,backends]}" "${CPU[$mode,postgres]}" "${CPU[$mode,machine]}"
done
echo "(replication = walsender + receivewal + proposer + safekeeper; machine = all CPUs busy, pgbench included)"

[[ $SETUPS == "local pgsync wp" ]] || exit 0
cb=$(awk -v c="${TPS[wp]}" -v b="${TPS[pgsync]}" 'BEGIN {printf "%.2f", c / b}')
ca=$(awk -v c="${TPS[wp]}" -v a="${TPS[local]}" 'BEGIN {printf "%.2f", c / a}')
cpu_c=$(per_1000 wp walsender pg_receivewal proposer safekeeper)
cpu_b=$(per_1000 pgsync walsender pg_receivewal proposer safekeeper)
cpu_ratio=$(awk -v c="$cpu_c" -v b="$cpu_b" 'BEGIN {if (b > 0) printf "%.2f", c / b; else print "n/a"}')
echo
echo "ratio c/b (walproposer / PostgreSQL quorum commit) TPS: $cb (target >= 1.20)"
echo "ratio c/a (walproposer / local only) TPS:              $ca (target >= 0.75 at 8 clients)"
echo "ratio c/b replication CPU per transaction:             $cpu_ratio (target <= 0.70)"
((SMOKE)) && echo "(smoke mode: numbers are not meaningful)"
echo "result: clients $CLIENTS"
echo "result: tps_c_b $cb"
echo "result: tps_c_a $ca"
echo "result: cpu_c_b $cpu_ratio"
echo "result: p50_ms ${P50[local]} ${P50[pgsync]} ${P50[wp]}"
echo "result: p99_ms ${P99[local]} ${P99[pgsync]} ${P99[wp]}"
exit 0
