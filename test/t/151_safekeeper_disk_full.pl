# A safekeeper whose data directory is on a small file system fills it up:
#  * commits continue on the other two safekeepers;
#  * its status (/v1/status, the timeline, /metrics) says disk full, and its
#    log says so once, not once per retry of the proposer;
#  * nothing it acknowledged is lost or changed (its WAL still matches the
#    primary's byte for byte);
#  * once space is freed it catches up by itself, without a restart.
# The small file system: $WP_TAP_SMALL_DISK (scripts/run-tests mounts a
# 256 MB tmpfs there when run as root), or, when the test itself runs as
# root, a tmpfs it mounts under its temporary directory.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafekeeperNode;
use WalproposerCluster;

my $disk = $ENV{WP_TAP_SMALL_DISK};
my $mounted_here;
if (!$disk) {
    BAIL_OUT('this test needs a small file system: run scripts/run-tests as root (it mounts a '
          . 'tmpfs and sets WP_TAP_SMALL_DISK), or run the test as root')
      unless $> == 0;
    $disk = PostgreSQL::Test::Utils::tempdir('small_disk');
    system('mount', '-t', 'tmpfs', '-o', 'size=256m', 'wpsmall', $disk) == 0
      or BAIL_OUT("cannot mount a tmpfs on $disk");
    $mounted_here = $disk;
}
END { system('umount', '-l', $mounted_here) if $mounted_here; }

my $ballast = "$disk/ballast";
unlink $ballast, "$ballast.2";

my @sks = WalproposerCluster::start_safekeepers(2, 161);
my $small = SafekeeperNode->new('sk163', id => 163, data_dir => "$disk/sk163");
$small->start;
push @sks, $small;
my $primary = WalproposerCluster::start_primary('primary', \@sks,
    extra_conf => "wal_keep_size = 1GB\n");
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (x int, pad text)');
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($small, $primary, $lsn), 'the small safekeeper streams');

sub fill_disk {
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'df', '--output=avail', '-B1', $disk ], '>', \$out, '2>', \$err);
    my ($avail) = $out =~ /(\d+)\s*$/;
    die "df $disk: $err" unless $avail;
    IPC::Run::run([ 'fallocate', '-l', $avail, $ballast ], '2>', \$err);
    # fallocate may leave a little room; a write fills the rest.
    IPC::Run::run([ 'dd', 'if=/dev/zero', "of=$ballast.2", 'bs=64k' ], '>', '/dev/null', '2>',
        '/dev/null');
}

sub disk_full_lines {
    my $log = PostgreSQL::Test::Utils::slurp_file($small->log_file);
    return scalar(() = $log =~ /\] timeline \S+: disk full: /g);
}

fill_disk();
note 'the file system is full';

# 40 MB of WAL: more than the segment the safekeeper has allocated.
for (1 .. 8) {
    $primary->safe_psql('postgres',
        "INSERT INTO t SELECT g, repeat('x', 400) FROM generate_series(1, 10000) g");
}
pass('commits continue on the other two safekeepers');
$lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($sks[0], $primary, $lsn)
      && WalproposerCluster::wait_for_sk_flush($sks[1], $primary, $lsn),
    "the other two acknowledged $lsn");

ok(SafekeeperNode::poll_until(sub { $small->http_json('GET', '/v1/status')->{disk_full} }),
    '/v1/status says disk full');
my $tl = WalproposerCluster::sk_timeline($small, $primary);
ok($tl->{disk_full}, 'the timeline says disk full');
is($tl->{state}, 'active', 'the timeline is not broken');
like($tl->{disk_full_error} // '', qr/No space left on device/, 'and names the error');
is(WalproposerCluster::sk_metric($small, 'safekeeper_disk_full'), 1, 'safekeeper_disk_full is 1');
my $stuck = $tl->{flush_lsn};
cmp_ok(WalproposerCluster::lsn_to_int($stuck), '<', WalproposerCluster::lsn_to_int($lsn),
    "it acknowledges nothing beyond $stuck");

# The proposer keeps retrying (it reconnects after 200 ms); the log says it
# once.
sub connects {
    my $log = PostgreSQL::Test::Utils::slurp_file($small->log_file);
    return scalar(() = $log =~ /: proposer \S+ connected /g);
}
my $before = connects();
ok(SafekeeperNode::poll_until(sub { connects() >= $before + 3 }),
    'the proposer retries while the disk is full');
is(disk_full_lines(), 1, 'the log says "disk full" once, not once per retry');
my $warnings = () = PostgreSQL::Test::Utils::slurp_file($small->log_file) =~ /\[warning\]/g;
cmp_ok($warnings, '<=', 1, 'and no warning per retry either');
is(WalproposerCluster::sk_timeline($small, $primary)->{flush_lsn}, $stuck,
    'the flush LSN stays put while the disk is full');

# Everything it acknowledged is intact.
my ($compared, @mismatch) = WalproposerCluster::compare_wal_with_primary($small, $primary);
ok($compared > 0 && !@mismatch, "its $compared bytes of WAL match the primary's")
  or diag(join("\n", @mismatch));

# Space returns: it catches up by itself.
unlink $ballast, "$ballast.2";
note 'space freed';
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1, NULL)');
$lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($small, $primary, $lsn), "it catches up to $lsn");
# The flag clears once the control file has been written again (the next
# persisted commit_lsn, at most a second or a heartbeat later).
ok(SafekeeperNode::poll_until(sub { !WalproposerCluster::sk_timeline($small, $primary)->{disk_full} }),
    'disk_full is cleared');
is(WalproposerCluster::sk_metric($small, 'safekeeper_disk_full'), 0, 'safekeeper_disk_full is 0');
cmp_ok(WalproposerCluster::sk_metric($small, 'safekeeper_disk_full_events_total'), '>=', 1,
    'safekeeper_disk_full_events_total counted it');
like(PostgreSQL::Test::Utils::slurp_file($small->log_file), qr/disk space available again/,
    'the log says it resumed');
($compared, @mismatch) = WalproposerCluster::compare_wal_with_primary($small, $primary);
ok($compared > 0 && !@mismatch, "all its $compared bytes of WAL match the primary's")
  or diag(join("\n", @mismatch));
ok($small->is_running, 'the safekeeper was never restarted');

$primary->stop;
$_->stop for @sks;
done_testing();
