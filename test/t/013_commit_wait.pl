# COMMITs that wait for a quorum that is not there are visible: with 2 of 3
# safekeepers down, the primary's log says within 10 s that COMMITs wait
# and names the two that are not streaming, walproposer_status shows how
# long they have waited, and once a safekeeper is back the log says they
# are confirmed again and the column is NULL.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(3, 131);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int)');
is($primary->safe_psql('postgres', 'SELECT commit_wait_seconds IS NULL FROM walproposer_status'), 't',
    'commit_wait_seconds is NULL while nothing waits');

my $log_offset = -s $primary->logfile;
$sks[$_]->stop for 1, 2;
my $t0 = time;
my ($waiting) = WalproposerCluster::start_psql($primary, 'INSERT INTO t VALUES (1)');
my ($down1, $down2) = map { $sks[$_]->address } 1, 2;
my $line;
ok( SafekeeperNode::poll_until(sub {
            my $log = substr(slurp_file($primary->logfile), $log_offset);
            ($line) = $log =~ /^(.*COMMITs have waited.*)$/m;
            return defined $line;
        }, 10),
    sprintf('within 10 s the log says COMMITs wait (%.1f s)', time - $t0));
note($line // '');
like($line // '', qr/WARNING:  walproposer: COMMITs have waited [\d.]+ s for the safekeepers to confirm/,
    '... as a WARNING of the walproposer');
like($line // '', qr/1 of 3 safekeepers streaming, 2 needed/, '... with how many stream and how many are needed');
like($line // '', qr/not streaming: .*\Q$down1\E.*\Q$down2\E/, '... naming both safekeepers that are down');
unlike($line // '', qr/\Q@{[ $sks[0]->address ]}\E \(/, '... and not the one that streams');
my $secs = $primary->safe_psql('postgres', 'SELECT commit_wait_seconds FROM walproposer_status');
ok($secs ne '' && $secs >= 4, "walproposer_status.commit_wait_seconds shows the wait ($secs s)");

$sks[1]->start;
ok(WalproposerCluster::finishes_within($waiting, 60), 'the COMMIT returns once a quorum is back');
my $lag = $primary->safe_psql('postgres',
    "SELECT extract(epoch FROM flush_lag) FROM pg_stat_replication WHERE application_name = 'walproposer'");
ok($lag ne '' && $lag >= 4, "pg_stat_replication's flush_lag shows the wait ($lag s)");
ok( SafekeeperNode::poll_until(sub {
            $primary->safe_psql('postgres',
                "SELECT flush_lag IS NULL FROM pg_stat_replication WHERE application_name = 'walproposer'") eq 't';
        }, 30),
    '... and is NULL again once the quorum has been caught up for a while');
ok( SafekeeperNode::poll_until(sub {
            substr(slurp_file($primary->logfile), $log_offset) =~ /COMMITs are confirmed again after [\d.]+ s/;
        }, 30),
    'the log says COMMITs are confirmed again');
ok( SafekeeperNode::poll_until(sub {
            $primary->safe_psql('postgres', 'SELECT commit_wait_seconds IS NULL FROM walproposer_status') eq 't';
        }, 30),
    'commit_wait_seconds is NULL again');
my $count = () = substr(slurp_file($primary->logfile), $log_offset) =~ /COMMITs have waited/g;
ok($count >= 1 && $count <= 2, "the wait was logged at a bounded rate ($count lines)");

$primary->stop;
$_->stop for @sks;
done_testing();
