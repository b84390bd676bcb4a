# walproposer.safekeepers is reloadable: after a reload the worker streams to
# the new set and commits wait for its quorum.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my @old = WalproposerCluster::start_safekeepers(3, 1);
my @new = WalproposerCluster::start_safekeepers(3, 4);
my $primary = WalproposerCluster::start_primary('primary', \@old);
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)');

my $list = WalproposerCluster::safekeeper_list(\@new);
$primary->safe_psql('postgres', "ALTER SYSTEM SET walproposer.safekeepers = '$list'");
$primary->reload;
WalproposerCluster::wait_for_status($primary,
    "state = 'elected' AND (SELECT string_agg(address, ',') FROM walproposer_safekeepers) = '$list'",
    'elected on the new set');
pass('after a reload the worker is elected on the new safekeepers');
ok($primary->log_contains('safekeepers changed'), 'the change is logged');

$primary->safe_psql('postgres', 'INSERT INTO t SELECT generate_series(2, 1000)');
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
for my $sk (@new) {
    ok(WalproposerCluster::wait_for_sk_flush($sk, $primary, $end), $sk->name . ' receives WAL');
}
my $old_flush = WalproposerCluster::sk_timeline($old[0], $primary)->{flush_lsn};
ok(WalproposerCluster::lsn_to_int($old_flush) < WalproposerCluster::lsn_to_int($end),
    'the old set no longer receives WAL');

# Commits wait for the new set's quorum: with two of the new set down (and
# all of the old set up), a COMMIT does not return; with one back, it does.
$new[1]->stop;
$new[2]->stop;
my ($waiting, undef, $err) =
    WalproposerCluster::start_psql($primary, 'INSERT INTO t VALUES (2000)', 'the waiting INSERT');
ok(!WalproposerCluster::finishes_within($waiting, 5),
    'with 1 of the 3 new safekeepers up (and all 3 old ones), a COMMIT waits');
$new[1]->start;
ok(SafekeeperNode::poll_until(sub { $waiting->pump_nb if $waiting->pumpable; !$waiting->pumpable }),
    'it returns once a second safekeeper of the new set is back');
ok($waiting->finish, 'and it succeeded') or diag($$err);
$new[2]->start;

# Commits now depend on the new set's quorum: with the old set gone, they go on.
$_->stop for @old;
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1001)');
pass('commits return with only the new set up');

$primary->stop;
$_->stop for @new;
done_testing();
