# High availability with a real Patroni and etcd (docs/patroni.md): three
# safekeepers, two PostgreSQL nodes run by Patroni from the project's
# template (integrations/patroni/patroni.yml.in), everything on loopback.
#
# 1. Failover: writers commit continuously on the leader; the leader's
#    Patroni and postmaster are killed with SIGKILL. Patroni promotes the
#    other node through the pre_promote hook (sync and fence, catch-up from
#    the safekeepers); every acknowledged row is there and COMMITs return.
#    The old node's Patroni, restarted, rejoins it as a replica of the new
#    timeline; it never confirms a COMMIT as a primary.
# 2. patronictl switchover with pgbench and writers running, in both
#    directions: nothing acknowledged is lost.
# 3. No quorum of safekeepers: the hook refuses, Patroni does not promote;
#    once the safekeepers are back, the promotion goes through.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SafekeeperNode;
use WalproposerCluster;
use PatroniNode;

my $ttl = 10;
my @sks = WalproposerCluster::start_safekeepers(3, 181);
my $p1 = PatroniNode->new('node1', sks => \@sks, ttl => $ttl);
my $p2 = PatroniNode->new('node2', sks => \@sks, ttl => $ttl);
my %by_name = (node1 => $p1, node2 => $p2);
my $wait = 120;

sub wait_for {
    my ($what, $cond, $secs) = @_;
    my $ok = SafekeeperNode::poll_until($cond, $secs // $wait);
    ok($ok, $what);
    return $ok;
}

sub psql_ok {
    my ($p, $sql) = @_;
    my ($out, $err) = ('', '');
    my $rc = $p->node->psql('postgres', $sql, stdout => \$out, stderr => \$err, on_error_die => 0);
    return $rc == 0 ? $out : undef;
}

sub patronictl {
    my (@args) = @_;
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'patronictl', '-c', $p1->config, @args ], '<', \undef, '>', \$out, '2>', \$err,
        IPC::Run::timeout(120));
    return ($? >> 8, $out . $err);
}

# ---------------------------------------------------------------------------
# Bootstrap: node1 initializes the cluster and leads, node2 is its replica.
$p1->start;
wait_for('node1 is the leader with a running primary', sub { $p1->is_leader }, 180)
  or BAIL_OUT('no leader: ' . PostgreSQL::Test::Utils::slurp_file($p1->log_file));
wait_for('its walproposer is elected',
    sub { (psql_ok($p1, "SELECT state FROM walproposer_status") // '') eq 'elected' });
is(psql_ok($p1, 'SHOW synchronous_standby_names'), 'walproposer',
    'synchronous_standby_names stays walproposer under Patroni');
$p1->node->safe_psql('postgres', 'CREATE TABLE acked (id bigint PRIMARY KEY, writer int, pad text)');
$p2->start;
wait_for('node2 is a streaming replica', sub {
    $p2->is_replica && (psql_ok($p2, "SELECT status FROM pg_stat_wal_receiver") // '') eq 'streaming';
}, 180);
my ($rc, $list) = patronictl('list');
like($list, qr/node1.*Leader.*running/s, 'patronictl list shows node1 as the leader');
like($list, qr/node2.*Replica.*streaming|node2.*Replica.*running/s, '... and node2 as a replica');

# Acknowledged ids of writers on $p's node until it dies or they are stopped.
sub run_writers_until_death {
    my ($leader, $first, $on_the_way) = @_;
    my $writers = WalproposerCluster::start_writers($leader->node, 'acked', 3, $first);
    wait_for('the writers committed 300 rows on ' . $leader->name, sub {
        $_->{h}->pump_nb for @$writers;
        ($leader->node->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE writer >= ' . $first) // 0) >= 300;
    });
    $on_the_way->();
    return [ WalproposerCluster::acked_ids($writers) ];
}

# ---------------------------------------------------------------------------
# 1. Failover: SIGKILL of node1's Patroni and postmaster.
my $t_kill;
my $acked = run_writers_until_death($p1, 1, sub {
    $t_kill = time;
    $p1->kill9;
});
note(scalar(@$acked) . ' COMMITs acknowledged before the kill');
wait_for('Patroni promotes node2', sub { $p2->is_leader }, 3 * $ttl + 60);
my $t_leader = time;
ok(WalproposerCluster::commit_confirmed($p2->node, "INSERT INTO acked VALUES (-1, 0, 'after failover')", 60),
    'a COMMIT on the new leader is confirmed');
my $t_commit = time;
note(sprintf('leader killed -> node2 leader %.1f s, first confirmed COMMIT %.1f s', $t_leader - $t_kill,
        $t_commit - $t_kill));
is(scalar(WalproposerCluster::missing_ids($p2->node, 'acked', $acked)), 0,
    'every acknowledged row is on the new leader (' . scalar(@$acked) . ')');
ok($p2->log_contains(qr/walproposer-patroni: step 3\/3: replayed/),
    'the pre_promote hook synced, fenced and caught up before the promotion');
is(psql_ok($p2, 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), '00000002',
    'node2 writes PostgreSQL timeline 2');

# The old leader comes back: a replica of the new timeline, never a primary.
$p1->start;
wait_for('the restarted node1 rejoins as a streaming replica', sub {
    $p1->is_replica && (psql_ok($p1, "SELECT status FROM pg_stat_wal_receiver") // '') eq 'streaming';
}, 180);
is(psql_ok($p1, 'SELECT received_tli FROM pg_stat_wal_receiver'), 2, 'node1 follows timeline 2');
is(psql_ok($p1, 'SELECT pg_is_in_recovery()'), 't', 'node1 is in recovery');
my ($ok, undef, $err) = WalproposerCluster::commit_returns_within($p1->node,
    "INSERT INTO acked VALUES (-2, 0, 'on the old leader')", 10);
unlike($err // '', qr/^INSERT/m, 'node1 confirms no COMMIT (it is read-only)');
like($err // '', qr/read-only transaction/, '... the INSERT is refused as read-only');
is($p1->log_contains(qr/promoted self to leader|pre_promote script/), 0,
    'node1 was never promoted after its restart');
wait_for('node1 replayed the COMMIT made on node2', sub {
    (psql_ok($p1, 'SELECT count(*) FROM acked WHERE id = -1') // '') eq '1';
});

# ---------------------------------------------------------------------------
# 2. Switchover, both directions, with pgbench and writers running.
$p2->node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', '-h', $p2->node->host, '-p', $p2->node->port,
    'postgres' ], 'pgbench -i on the leader');
my $first_writer = 10;
for my $direction ([ $p2, $p1 ], [ $p1, $p2 ]) {
    my ($from, $to) = @$direction;
    wait_for($to->name . ' is a streaming replica', sub {
        $to->is_replica && (psql_ok($to, "SELECT status FROM pg_stat_wal_receiver") // '') eq 'streaming';
    }, 180);
    my ($bench_out, $bench_err) = ('', '');
    my $bench = IPC::Run::start([ 'pgbench', '-n', '-c', '2', '-T', '60', '-h', $from->node->host, '-p',
            $from->node->port, 'postgres' ], '<', \undef, '>', \$bench_out, '2>', \$bench_err);
    my $t0;
    my $ids = run_writers_until_death($from, $first_writer, sub {
        $t0 = time;
        my ($src, $out) = patronictl('switchover', '--leader', $from->name, '--candidate', $to->name, '--force');
        is($src, 0, 'patronictl switchover ' . $from->name . ' -> ' . $to->name) or diag($out);
    });
    $first_writer += 3;
    wait_for($to->name . ' is the leader', sub { $to->is_leader }, 120);
    ok( WalproposerCluster::commit_confirmed($to->node,
            "INSERT INTO acked VALUES (-$first_writer, 0, 'after switchover')", 60),
        'a COMMIT on ' . $to->name . ' is confirmed ' . sprintf('%.1f s after the switchover began', time - $t0));
    SafekeeperNode::poll_until(sub { $bench->pump_nb if $bench->pumpable; !$bench->pumpable }, 120)
      or $bench->kill_kill;
    eval { $bench->finish };
    my ($processed) = $bench_out =~ /number of transactions actually processed: (\d+)/;
    ok(defined $processed && $processed > 0, 'pgbench committed ' . ($processed // '?') . ' transactions')
      or diag($bench_out . $bench_err);
    my $history = psql_ok($to, 'SELECT count(*) FROM pgbench_history') // 0;
    ok($history >= ($processed // 0), "all of them are on the new leader ($history history rows)");
    is(scalar(WalproposerCluster::missing_ids($to->node, 'acked', $ids)), 0,
        'every acknowledged writer row is on ' . $to->name . ' (' . scalar(@$ids) . ')');
    wait_for($from->name . ' rejoins as a streaming replica', sub {
        $from->is_replica && (psql_ok($from, "SELECT status FROM pg_stat_wal_receiver") // '') eq 'streaming';
    }, 180);
}

# ---------------------------------------------------------------------------
# 3. No quorum: the hook refuses, Patroni does not promote.
my $leader = $p2->is_leader ? $p2 : $p1;
my $replica = $leader == $p1 ? $p2 : $p1;
$_->stop for @sks[ 1, 2 ];
my $refusals_before = $replica->log_contains(qr/refusing the promotion/);
$leader->kill9;
wait_for('the replica\'s pre_promote refuses without a quorum of safekeepers', sub {
    $replica->log_contains(qr/refusing the promotion: pg_walproposer_sync exited/) > $refusals_before;
}, 3 * $ttl + 90);
wait_for('Patroni cancels the promotion and releases the lock',
    sub { $replica->log_contains(qr/Releasing the leader key voluntarily because the pre-promote script failed/) }, 30);
is(psql_ok($replica, 'SELECT pg_is_in_recovery()'), 't', 'the replica stays in recovery');
ok(!$replica->is_leader, '... and is not the leader');
$_->start for @sks[ 1, 2 ];
wait_for('with the safekeepers back, Patroni promotes it', sub { $replica->is_leader }, 3 * $ttl + 90);
ok(WalproposerCluster::commit_confirmed($replica->node, "INSERT INTO acked VALUES (-100, 0, 'after the outage')", 60),
    'its COMMITs are confirmed');

$_->stop for $p1, $p2;
$_->stop for @sks;
done_testing();
