# A standby promoted before it replayed up to the sync LSN is refused: its
# walproposer_status says superseded, "promoted before catching up", with
# both LSNs, it never confirms a COMMIT, and nothing on the safekeepers
# changes (term, term history, flush and commit LSN), so the caught-up
# standby can still take over, which it then does.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SafekeeperNode;
use WalproposerCluster;

my $lsn = \&WalproposerCluster::lsn_to_int;

my @sks = WalproposerCluster::start_safekeepers(3, 94);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE acked (id bigint PRIMARY KEY, writer int, pad text)');
$primary->backup('bkp');

my $good = WalproposerCluster::make_sk_standby($primary, 'bkp', 'caught_up', \@sks);
my $lagging = WalproposerCluster::make_sk_standby($primary, 'bkp', 'lagging', \@sks);
$_->start for $good, $lagging;
$primary->safe_psql('postgres', "INSERT INTO acked VALUES (1, 0, 'seen by both')");
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_replayed($_, $end), $_->name . ' replayed the first row')
  for $good, $lagging;

# The lagging standby stops; the primary commits much more; it dies.
$lagging->stop('fast');
my $writers = WalproposerCluster::start_writers($primary, 'acked', 2);
ok(SafekeeperNode::poll_until(sub {
            $_->{h}->pump_nb for @$writers;
            $primary->safe_psql('postgres', 'SELECT count(*) FROM acked') >= 500;
        }),
    'the primary committed 500 more rows');
WalproposerCluster::kill9_postgres($primary);
my @acked = WalproposerCluster::acked_ids($writers);

my $sync = WalproposerCluster::run_sync(\@sks, $primary);
is($sync->{rc}, 0, 'pg_walproposer_sync exits 0') or diag("stdout: $sync->{out}\nstderr: $sync->{err}");
my $sync_lsn = ($sync->{json} // {})->{sync_lsn} // '0/0';

# The safekeepers' state after the sync: nothing below may change.
sub sk_state {
    return join("\n", map {
        my $tl = WalproposerCluster::sk_timeline($_, $primary) // {};
        my $hist = join(',', map { "$_->{term}\@$_->{lsn}" } @{ $tl->{term_history} // [] });
        sprintf('%s term=%s history=%s flush=%s commit=%s', $_->name, $tl->{term} // '?', $hist,
            $tl->{flush_lsn} // '?', $tl->{commit_lsn} // '?');
    } @sks);
}
my $state_after_sync = sk_state();
note("after the sync:\n$state_after_sync");

# The lagging standby starts without a connection to the safekeepers, so it
# cannot catch up, and is promoted at once.
$lagging->append_conf('postgresql.conf', "primary_conninfo = ''\n");
$lagging->start;
my $replayed = $lagging->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()');
ok($lsn->($replayed) < $lsn->($sync_lsn),
    "the lagging standby replayed $replayed, below the sync LSN $sync_lsn");
$lagging->promote;
ok(WalproposerCluster::status_within($lagging,
        "state = 'superseded' AND message LIKE '%promoted before catching up%'", 60),
    'the early promoted standby is superseded: promoted before catching up')
  or diag($lagging->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
my $message = $lagging->safe_psql('postgres', 'SELECT message FROM walproposer_status');
my @lsns = $message =~ m{([0-9A-F]+/[0-9A-F]+)}g;
ok(@lsns >= 2, "its reason names both LSNs: $message");
my ($returned) = WalproposerCluster::commit_returns_within($lagging,
    "INSERT INTO acked VALUES (-1, -1, 'early')", 5);
ok(!$returned, 'a COMMIT on the early promoted standby does not return within 5 s');
is(sk_state(), $state_after_sync,
    'the safekeepers are unchanged: same term, term history, flush and commit LSN');
$lagging->stop('immediate');

# The standby that did catch up takes over.
ok(WalproposerCluster::wait_replayed($good, $sync_lsn),
    "the caught-up standby replayed up to $sync_lsn");
$good->promote;
ok(WalproposerCluster::status_within($good, "state = 'elected'", 60),
    'the caught-up standby is elected')
  or diag($good->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
($returned) = WalproposerCluster::commit_returns_within($good,
    "INSERT INTO acked VALUES (-2, -2, 'new primary')", 30);
ok($returned, 'and its COMMITs return');
my @missing = WalproposerCluster::missing_ids($good, 'acked', \@acked);
is(scalar(@missing), 0, 'every one of the ' . scalar(@acked) . ' acknowledged rows is on it')
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

# The refused standby stays refused once the right one is elected.
$lagging->start;
ok(WalproposerCluster::status_within($lagging, "state = 'superseded'", 30),
    'the early promoted standby, restarted, is still superseded')
  or diag($lagging->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
($returned) = WalproposerCluster::commit_returns_within($lagging,
    "INSERT INTO acked VALUES (-3, -3, 'early again')", 5);
ok(!$returned, 'and never confirms a COMMIT');
$lagging->stop('immediate');

$good->stop;
$_->stop for @sks;
done_testing();
