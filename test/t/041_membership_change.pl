# walproposer.safekeepers in the member form (id=host:port): a membership
# configuration with generations. A reload from {1,2,3} to {2,3,4} goes through
# the joint configuration while COMMITs go on; in the joint configuration a
# COMMIT needs a majority of the old set and of the new set; afterwards only
# the new set counts. The configuration is persisted on the primary (it comes back after a
# restart) and on the safekeepers (their HTTP status shows it); a bad value is
# refused and changes nothing; going back to the plain list is refused.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(4, 41);
my $members = sub { join(',', map { $_->id . '=' . $_->address } @_) };
my $old = $members->(@sks[ 0 .. 2 ]);
my $new = $members->(@sks[ 1 .. 3 ]);
my $primary = WalproposerCluster::start_primary('primary', [ @sks[ 0 .. 2 ] ],
    extra_conf => "walproposer.safekeepers = '$old'\n");
WalproposerCluster::wait_for_status($primary,
    "state = 'elected' AND commit_lsn IS NOT NULL AND generation = 1", 'elected in generation 1');
is($primary->safe_psql('postgres', 'SELECT members FROM walproposer_status'), "{$old}",
    'walproposer_status shows the members');
is($primary->safe_psql('postgres', 'SELECT string_agg(node_id::text, \',\' ORDER BY node_id) FROM walproposer_safekeepers'),
    '41,42,43', 'walproposer_safekeepers shows the node ids');
ok(-e $primary->data_dir . '/walproposer.configuration', 'the primary persisted its configuration');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int)');

# A bad value is refused at ALTER SYSTEM, and changes nothing.
my ($rc, $out, $err) = $primary->psql('postgres',
    "ALTER SYSTEM SET walproposer.safekeepers = '41=$sks[0]{pg_port},x'");
isnt($rc, 0, 'a malformed member list is refused');
like($err, qr/invalid value for parameter "walproposer.safekeepers"/, 'with PostgreSQL\'s error');
($rc, $out, $err) = $primary->psql('postgres',
    "ALTER SYSTEM SET walproposer.safekeepers = '41=" . $sks[0]->address . "," . $sks[1]->address . "'");
like($err, qr/mixes the two forms/, 'mixing the forms is refused and says so');

# Writers commit all along the change.
$primary->safe_psql('postgres', 'CREATE TABLE w (id bigint PRIMARY KEY, writer int, pad text)');
my $writers = WalproposerCluster::start_writers($primary, 'w', 2);
ok(SafekeeperNode::poll_until(sub { $primary->safe_psql('postgres', 'SELECT count(*) FROM w') > 50 }),
    'writers commit');

# The change to {42,43,44}, with sk42 and sk44 down at first: the old set has
# its majority (41, 43), the new set only 43, so the joint configuration is
# reached but no COMMIT can return under it.
$sks[1]->stop;
$sks[3]->stop;
$primary->safe_psql('postgres', "ALTER SYSTEM SET walproposer.safekeepers = '$new'");
$primary->reload;
WalproposerCluster::wait_for_status($primary, "generation = 2 AND new_members = '{$new}'",
    'the joint configuration');
pass('the reload installed the joint configuration (generation 2)');
my ($joint_wait) = WalproposerCluster::start_psql($primary, 'INSERT INTO t VALUES (100)', 'joint INSERT');
ok(!WalproposerCluster::finishes_within($joint_wait, 5),
    'in the joint configuration a COMMIT waits without a majority of the new set');
$sks[3]->start;
ok(SafekeeperNode::poll_until(sub { $joint_wait->pump_nb if $joint_wait->pumpable; !$joint_wait->pumpable }),
    'it returns once the new set has its majority too (43, 44)');
$sks[1]->start;
WalproposerCluster::wait_for_status($primary,
    "state = 'elected' AND generation = 3 AND new_members IS NULL AND members = '{$new}'",
    'the new configuration is in force');
pass('the reload changed the membership: generation 1 -> joint 2 -> 3');
ok($primary->log_contains('joint configuration generation 2'), 'the joint configuration is logged');
ok($primary->log_contains('membership change requested'), 'the request is logged');
for my $sk (@sks[ 1 .. 3 ]) {
    ok(SafekeeperNode::poll_until(sub {
                my $tl = WalproposerCluster::sk_timeline($sk, $primary);
                $tl && $tl->{configuration} && $tl->{configuration}{generation} == 3;
            }),
        $sk->name . ' holds generation 3');
}
my $rows = sub { $primary->safe_psql('postgres', 'SELECT count(*) FROM w') };
my $rows_before = $rows->();
ok(SafekeeperNode::poll_until(sub { $rows->() > $rows_before + 20 }),
    'the writers kept committing through the change');
$_->{h}->kill_kill for @$writers;

# Only the new set counts now: with sk41 and sk42 down, sk43 and sk44 form
# the quorum.
$sks[0]->stop;
$sks[1]->stop;
my ($done, undef, $commit_err) =
  WalproposerCluster::commit_returns_within($primary, 'INSERT INTO t VALUES (1)', 30);
ok($done && $commit_err eq '', 'a COMMIT returns with two of the new set (the removed member down)');
# ... and the new set's majority is needed: with sk44 down too, it waits.
$sks[3]->stop;
my ($waiting) = WalproposerCluster::start_psql($primary, 'INSERT INTO t VALUES (2)', 'waiting INSERT');
ok(!WalproposerCluster::finishes_within($waiting, 5), 'with one of the new set up, a COMMIT waits');
$sks[1]->start;
ok(SafekeeperNode::poll_until(sub { $waiting->pump_nb if $waiting->pumpable; !$waiting->pumpable }),
    'it returns once a second member of the new set is back');
$sks[3]->start;

# The configuration survives a restart of the primary.
$primary->restart;
WalproposerCluster::wait_for_status($primary,
    "state = 'elected' AND generation = 3 AND members = '{$new}'",
    'elected again in generation 3 after a restart');
pass('after a restart the primary runs the persisted configuration');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (3)');

# Going back to the plain list is refused: the configuration stays.
$primary->safe_psql('postgres',
    "ALTER SYSTEM SET walproposer.safekeepers = '" . join(',', map { $_->address } @sks[ 1 .. 3 ]) . "'");
$primary->reload;
ok(SafekeeperNode::poll_until(sub { $primary->log_contains('this primary runs a membership configuration; keeping it') }),
    'a plain list after the member form is refused with a warning');
is($primary->safe_psql('postgres', 'SELECT generation FROM walproposer_status'), '3',
    'and the configuration is unchanged');

$primary->stop;
$_->stop for @sks;
done_testing();
