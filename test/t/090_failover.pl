# Failover with the production commands (docs/failover.md): the primary is
# killed with SIGKILL while writers commit continuously, then
# pg_walproposer_sync, a bounded wait until a standby replayed up to the
# sync LSN, pg_ctl promote. Every acknowledged row is on the new primary,
# its COMMITs return, and the old primary, started again, never confirms a
# COMMIT (fenced). Then a second failover to the other standby, which
# followed the first one through the safekeepers, with one safekeeper down;
# and pg_walproposer_sync with only 1 of 3 safekeepers reachable fails
# within its --timeout.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SafekeeperNode;
use WalproposerCluster;

my $lsn = \&WalproposerCluster::lsn_to_int;

# Own safekeeper names: their directories under tmp_check are shared by
# every test file of a run.
my @sks = WalproposerCluster::start_safekeepers(3, 91);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE acked (id bigint PRIMARY KEY, writer int, pad text)');
$primary->backup('bkp');

# Two standbys that stream from the safekeepers.
my $standby_a = WalproposerCluster::make_sk_standby($primary, 'bkp', 'standby_a', \@sks);
my $standby_b = WalproposerCluster::make_sk_standby($primary, 'bkp', 'standby_b', \@sks);
$_->start for $standby_a, $standby_b;
for my $s ($standby_a, $standby_b) {
    ok($s->poll_query_until('postgres', "SELECT status = 'streaming' FROM pg_stat_wal_receiver"),
        $s->name . ' streams from the safekeepers');
}

# ---------------------------------------------------------------------------
# 1. Writers commit continuously; one more session commits, and the primary
#    is killed the moment that COMMIT returned: the last acknowledged commits
#    are made just before the kill.
my $writers = WalproposerCluster::start_writers($primary, 'acked', 3);
ok( SafekeeperNode::poll_until(sub {
            # psql buffers its output: count the rows in the table.
            $_->{h}->pump_nb for @$writers;
            return $primary->safe_psql('postgres', 'SELECT count(*) FROM acked') >= 600;
        }),
    'the writers committed 600 rows');
my $last = $primary->background_psql('postgres');
my @last_acked;
for my $i (1 .. 20) {
    push @last_acked, $last->query_safe("INSERT INTO acked VALUES ($i, 0, 'last') RETURNING id");
}
# No delay between the last acknowledgement and the kill.
my $killed = WalproposerCluster::kill9_postgres($primary);
note("killed $killed processes of the primary");
eval { $last->quit };
my @acked = (WalproposerCluster::acked_ids($writers), @last_acked);
ok(@acked >= 600, scalar(@acked) . ' COMMITs were acknowledged before the kill');

my $sync = WalproposerCluster::run_sync(\@sks, $primary);
is($sync->{rc}, 0, 'pg_walproposer_sync exits 0') or diag("stdout: $sync->{out}\nstderr: $sync->{err}");
my $j = $sync->{json} // {};
like($j->{sync_lsn} // '', qr{^[0-9A-F]+/[0-9A-F]+$}, "--json prints the sync LSN $j->{sync_lsn}");
is($j->{fence_pg_timeline}, 2, 'the fence is PostgreSQL timeline 2');
ok(($j->{synced} // 0) >= 2 && ($j->{safekeepers} // 0) == 3, "a quorum synced ($j->{synced} of 3)");
is($j->{system_id}, WalproposerCluster::system_id($primary), 'the system id is the primary\'s');
# A quorum has the sync LSN committed (the third may learn it later).
my @committed = grep {
    my $tl = WalproposerCluster::sk_timeline($_, $primary);
    $tl && $lsn->($tl->{commit_lsn}) >= $lsn->($j->{sync_lsn});
} @sks;
ok(@committed >= 2, scalar(@committed) . ' safekeepers have commit_lsn at the sync LSN');

ok(WalproposerCluster::wait_replayed($standby_a, $j->{sync_lsn}),
    "standby_a replayed up to the sync LSN $j->{sync_lsn}");
my $t_promote = time;
$standby_a->promote;
ok(WalproposerCluster::status_within($standby_a, "state = 'elected'", 60),
    'the promoted standby_a is elected')
  or diag($standby_a->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
my ($returned) = WalproposerCluster::commit_returns_within($standby_a,
    "INSERT INTO acked VALUES (-1, -1, 'new primary')", 30);
ok($returned, 'a COMMIT on the new primary returns');
note(sprintf('promotion to first confirmed COMMIT: %.2f s', time - $t_promote));
is($standby_a->safe_psql('postgres', 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'),
    '00000002', 'the new primary writes PostgreSQL timeline 2');
my @missing = WalproposerCluster::missing_ids($standby_a, 'acked', \@acked);
is(scalar(@missing), 0, 'every acknowledged row is on the new primary')
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
ok(!(WalproposerCluster::missing_ids($standby_a, 'acked', \@last_acked)),
    'including the 20 acknowledged just before the kill');

# The old primary, started again, never confirms a COMMIT.
$primary->start;
ok(WalproposerCluster::status_within($primary, "state = 'superseded' AND message LIKE '%fenced%'", 30),
    'the old primary is superseded and says it is fenced')
  or diag($primary->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
($returned) = WalproposerCluster::commit_returns_within($primary,
    "INSERT INTO acked VALUES (-2, -2, 'old primary')", 5);
ok(!$returned, 'a COMMIT on the old primary does not return within 5 s');
is($primary->safe_psql('postgres', 'SELECT commit_lsn IS NULL FROM walproposer_status'), 't',
    'the old primary has no commit LSN');
$primary->stop('immediate');

# ---------------------------------------------------------------------------
# 2. standby_b followed the first failover through the safekeepers (onto
#    timeline 2). Now the second failover, with safekeeper 3 down.
my $end = $standby_a->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_replayed($standby_b, $end),
    'standby_b follows the new primary through the safekeepers');
is($standby_b->safe_psql('postgres', 'SELECT received_tli FROM pg_stat_wal_receiver'), '2',
    'standby_b receives PostgreSQL timeline 2');
$sks[2]->stop;
my $before = $standby_a->safe_psql('postgres', 'SELECT count(*) FROM acked');
$writers = WalproposerCluster::start_writers($standby_a, 'acked', 2, 4);
ok( SafekeeperNode::poll_until(sub {
            $_->{h}->pump_nb for @$writers;
            $standby_a->safe_psql('postgres', 'SELECT count(*) FROM acked') >= $before + 300;
        }),
    'the writers commit 300 rows on the new primary with 2 of 3 safekeepers');
WalproposerCluster::kill9_postgres($standby_a);
my @acked2 = WalproposerCluster::acked_ids($writers);
ok(@acked2 > 0, scalar(@acked2) . ' more COMMITs acknowledged before the second kill');

$sync = WalproposerCluster::run_sync(\@sks, $primary, timeout => 20);
is($sync->{rc}, 0, 'pg_walproposer_sync succeeds with 2 of 3 safekeepers')
  or diag("stdout: $sync->{out}\nstderr: $sync->{err}");
$j = $sync->{json} // {};
is($j->{synced}, 2, 'two safekeepers synced');
is($j->{fence_pg_timeline}, 3, 'the fence is now PostgreSQL timeline 3');
ok(WalproposerCluster::wait_replayed($standby_b, $j->{sync_lsn}),
    "standby_b replayed up to the sync LSN $j->{sync_lsn}");
$standby_b->promote;
ok(WalproposerCluster::status_within($standby_b, "state = 'elected'", 60),
    'standby_b is elected with 2 of 3 safekeepers')
  or diag($standby_b->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
($returned) = WalproposerCluster::commit_returns_within($standby_b,
    "INSERT INTO acked VALUES (-3, -3, 'third primary')", 30);
ok($returned, 'a COMMIT on standby_b returns');
@missing = WalproposerCluster::missing_ids($standby_b, 'acked', [ @acked, @acked2 ]);
is(scalar(@missing), 0, 'every row acknowledged by either old primary is on standby_b')
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

# The safekeeper that was down catches up with the third primary.
$sks[2]->start;
$end = $standby_b->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
$standby_b->safe_psql('postgres', "INSERT INTO acked VALUES (-4, -4, 'after sk3')");
$end = $standby_b->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($sks[2], $standby_b, $end),
    'safekeeper 3 catches up with the new primary');

# standby_a, the second primary, is fenced too.
$standby_a->start;
ok(WalproposerCluster::status_within($standby_a, "state = 'superseded' AND message LIKE '%fenced%'", 30),
    'the second old primary is fenced as well')
  or diag($standby_a->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
$standby_a->stop('immediate');

# ---------------------------------------------------------------------------
# 3. Only 1 of 3 safekeepers reachable: the sync fails clearly within its
#    --timeout.
$standby_b->stop('fast');
$sks[0]->stop;
$sks[1]->stop;
$sync = WalproposerCluster::run_sync(\@sks, $primary, timeout => 3);
is($sync->{rc}, 1, 'pg_walproposer_sync with 1 of 3 safekeepers exits 1');
like($sync->{err}, qr/quorum/i, "its message says why: $sync->{err}");
like($sync->{err}, qr/1 of 3 answered, 2 needed/, 'and how many safekeepers answered');
ok($sync->{seconds} < 3 + 5, sprintf('it gave up within its --timeout (%.1f s)', $sync->{seconds}));
ok(!$sync->{json} || !$sync->{json}{ok} && !$sync->{json}{sync_lsn},
    'and no sync LSN on stdout (--json says ok false)') or diag($sync->{out});
$sks[0]->start;
$sks[1]->start;
$standby_b->start;
ok(WalproposerCluster::status_within($standby_b, "state = 'elected'", 60),
    'the primary is elected again once the safekeepers are back');
($returned) = WalproposerCluster::commit_returns_within($standby_b,
    "INSERT INTO acked VALUES (-5, -5, 'after failed sync')", 30);
ok($returned, 'and its COMMITs return');

# Usage errors exit 2.
my ($out, $err) = ('', '');
IPC::Run::run([ WalproposerCluster::sync_tool(), '--safekeepers', '127.0.0.1:1' ], '>', \$out,
    '2>', \$err);
is($? >> 8, 2, 'pg_walproposer_sync without the ids is a usage error (exit 2)');

$standby_b->stop;
$_->stop for @sks;
done_testing();
