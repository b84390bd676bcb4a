# A primary with walproposer and three safekeepers: pgbench commits through
# the quorum, the safekeepers hold exactly the primary's WAL, and a COMMIT
# waits while no majority is up.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(time);
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(3);
my $primary = WalproposerCluster::start_primary('primary', \@sks);

WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
is($primary->safe_psql('postgres',
        "SELECT application_name || ' ' || sync_state FROM pg_stat_replication"),
    'walproposer sync', 'the worker is the synchronous standby in pg_stat_replication');

# 1. pgbench through the quorum.
$primary->command_ok([ 'pgbench', '-i', '-s', '1', '-q', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench -i');
# While it runs, every safekeeper gets SIGHUP (systemctl reload, log
# rotation): they keep running and the COMMITs go on.
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
    [ 'pgbench', '-T', '4', '-c', '4', '-N', '-h', $primary->host, '-p', $primary->port,
        'postgres' ],
    '>', \$bench_out, '2>', \$bench_err, IPC::Run::timeout(120));
sleep 1;
kill 'HUP', $_->pid for @sks;
ok($bench->finish, 'pgbench -T 4 -c 4 -N with synchronous_commit = on, SIGHUP to every safekeeper')
  or diag($bench_err);
like($bench_out, qr/number of transactions actually processed: [1-9]/, 'it committed transactions');
# The proposer's row has its lags, as a walsender's row has them: the time
# from the local flush until the quorum confirmed it (cleared to NULL after
# 5 s caught up, so read right after the run).
my $lags = $primary->safe_psql('postgres',
    "SELECT write_lag IS NOT NULL AND flush_lag = write_lag AND replay_lag = write_lag, "
      . "extract(epoch FROM flush_lag) FROM pg_stat_replication WHERE application_name = 'walproposer'");
my ($lags_set, $lag_secs) = split /\|/, $lags;
is($lags_set, 't', "write_lag, flush_lag and replay_lag of the proposer's row are filled");
ok(defined $lag_secs && $lag_secs ne '' && $lag_secs < 1, "... with a flush_lag under a second (@{[ $lag_secs // 'NULL' ]} s)");
ok((grep { $_->is_running } @sks) == 3, 'every safekeeper is still running after SIGHUP');
like(slurp_file($sks[0]->log_file), qr/received SIGHUP: reloaded \d+ roles from/, "the SIGHUP is logged: the roles file was re-read");
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
for my $sk (@sks) {
    ok(WalproposerCluster::wait_for_sk_flush($sk, $primary, $end),
        $sk->name . " flushed up to $end");
}
WalproposerCluster::wait_for_status($primary, "commit_lsn >= '$end'", 'commit catches up');
for my $sk (@sks) {
    my ($bytes, @mismatches) = WalproposerCluster::compare_wal_with_primary($sk, $primary);
    ok($bytes > 1_000_000 && !@mismatches,
        $sk->name . " holds the primary's WAL byte for byte ($bytes bytes compared)")
      or diag(join("\n", @mismatches));
}
is($primary->safe_psql('postgres',
        "SELECT count(*) FROM walproposer_safekeepers WHERE state = 'streaming' AND lag_bytes = 0"),
    '3', 'all three safekeepers stream with no lag');

# 2. With two of three safekeepers down, a COMMIT waits; with one back it returns.
$primary->safe_psql('postgres', 'CREATE TABLE waits (id int)');
$sks[1]->stop;
$sks[2]->stop;
my ($waiting, undef, $psql_err) =
    WalproposerCluster::start_psql($primary, 'INSERT INTO waits VALUES (1)', 'the waiting INSERT');
ok(!WalproposerCluster::finishes_within($waiting, 5),
    'a COMMIT does not return within 5 s while only 1 of 3 safekeepers is up');

my $local_t0 = time;
$primary->safe_psql('postgres',
    "SET synchronous_commit = local; INSERT INTO waits VALUES (2)");
ok(time - $local_t0 < 3, 'a synchronous_commit = local COMMIT returns at once meanwhile');

$sks[1]->start;
ok(SafekeeperNode::poll_until(sub { $waiting->pump_nb if $waiting->pumpable; !$waiting->pumpable }),
    'the waiting COMMIT returns once a second safekeeper is back');
ok($waiting->finish, 'and it succeeded') or diag($$psql_err);
is($primary->safe_psql('postgres', 'SELECT count(*) FROM waits'), '2', 'both rows committed');
$sks[2]->start;

# 3. SIGKILL one safekeeper during pgbench; it restarts and catches up.
my $pgbench = IPC::Run::start(
    [ 'pgbench', '-T', '5', '-c', '4', '-N', '-h', $primary->host, '-p', $primary->port,
        'postgres' ],
    '>', \my $pgbench_out, '2>', \my $pgbench_err, WalproposerCluster::timer('pgbench'));
sleep 1;
$sks[0]->kill9;
sleep 1;
$sks[0]->start;
ok($pgbench->finish, 'pgbench completes while a safekeeper is killed and restarted')
  or diag($pgbench_err);
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($sks[0], $primary, $end),
    'the killed safekeeper catches up after its restart');
my ($bytes, @mismatches) = WalproposerCluster::compare_wal_with_primary($sks[0], $primary);
ok(!@mismatches, "its WAL still matches the primary's") or diag(join("\n", @mismatches));

# 5. A black-holed safekeeper (SIGSTOP) does not stall commits.
$sks[2]->pause;
my $stopped_t0 = time;
$primary->safe_psql('postgres', 'INSERT INTO waits SELECT generate_series(1, 100)') for 1 .. 20;
ok(time - $stopped_t0 < 10, 'commits continue while one safekeeper is stopped (SIGSTOP)');
$sks[2]->resume;
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($sks[2], $primary, $end),
    'the resumed safekeeper catches up');

$primary->stop;
$_->stop for @sks;
done_testing();
