# Invariant 6 (docs/design.md): a primary whose WAL does not match what the quorum holds is
# never elected and never gets a commit confirmed; it says "superseded" with
# the term and LSN in its log and its status.
#
# The stale primary is a copy of the data directory taken while the real
# primary was stopped: the real primary then commits more through the
# quorum, so the quorum holds WAL the copy never had.
use strict;
use warnings;

use File::Copy ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(3);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)');
$primary->stop('fast');

# The clone: same system, same timeline, same history file, older WAL.
my $clone = PostgreSQL::Test::Cluster->new('clone');
PostgreSQL::Test::RecursiveCopy::copypath($primary->data_dir, $clone->data_dir);
chmod 0700, $clone->data_dir;
$clone->append_conf('postgresql.conf', 'port = ' . $clone->port);
$clone->{_wp_system_id} = WalproposerCluster::system_id($primary);

$primary->start;
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'primary elected again');
$primary->safe_psql('postgres', 'INSERT INTO t SELECT generate_series(2, 10000)');
my $quorum_end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
WalproposerCluster::wait_for_status($primary, "commit_lsn >= '$quorum_end'", 'commit');
my $primary_term = $primary->safe_psql('postgres', 'SELECT term FROM walproposer_status');
$primary->stop('fast');

$clone->start;
WalproposerCluster::wait_for_status($clone, "state = 'superseded'", 'the clone sees it is stale');
my ($message) = $clone->safe_psql('postgres', 'SELECT message FROM walproposer_status');
like($message, qr/superseded by term \d+ at [0-9A-F]+\/[0-9A-F]+/,
    "the stale primary's status says superseded with the term and LSN: $message");
ok($clone->wait_for_log(qr/superseded \(term \d+ at [0-9A-F]+\/[0-9A-F]+\)/),
    'and so does its log');

# A COMMIT on the stale primary never returns.
my ($commit) = WalproposerCluster::start_psql($clone, 'INSERT INTO t VALUES (-1)', 'the stale COMMIT');
ok(!WalproposerCluster::finishes_within($commit, 5), 'a COMMIT on the stale primary does not return');
is($clone->safe_psql('postgres', 'SELECT commit_lsn IS NULL FROM walproposer_status'), 't',
    'the stale primary never got a commit LSN');
$clone->stop('immediate');
$commit->kill_kill;

# The safekeepers still follow the real primary's term, unchanged.
for my $sk (@sks) {
    my $tl = WalproposerCluster::sk_timeline($sk, $primary);
    is($tl->{term}, $primary_term, $sk->name . ' still holds the real primary\'s term');
}
$primary->start;
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'the real primary goes on');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (10001)');
pass('the real primary commits again after the stale one gave up');

$primary->stop;
$_->stop for @sks;
done_testing();
