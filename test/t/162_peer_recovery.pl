# Peer recovery and bounded disks, with a membership configuration
# (walproposer.safekeepers = 'id=host:port,...'):
#  * one safekeeper stays down while pgbench writes more than 2 GB of WAL;
#    each live safekeeper's timeline directory and the primary's pg_wal stay
#    below 512 MB all along (safekeepers: --max-wal-retention=256MB; primary:
#    max_wal_size = 256MB; the walproposer slot does not wait for a member
#    that is not streaming);
#  * the down one comes back: its WAL is long gone everywhere, so it rebuilds
#    its copy from a peer and catches up with the others (peer recovery), and
#    its WAL is byte-identical to theirs;
#  * a member stopped for a short while (its WAL still on its peers) catches up
#    from its peers while the primary waits for it.
use strict;
use warnings;

use File::Compare ();
use File::Find ();
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my $bound = 512 * 1024 * 1024;
my @sks = map {
    SafekeeperNode->new("sk$_", id => $_,
        extra => [ '--max-wal-retention=256MB', '--wal-keep-size=32MB',
            '--peer-recovery-interval-ms=200' ])->start
} 171 .. 173;
my $members = join(',', map { $_->id . '=' . $_->address } @sks);
my $primary = WalproposerCluster::start_primary('primary', \@sks, extra_conf => <<"EOC");
walproposer.safekeepers = '$members'
max_wal_size = 256MB
min_wal_size = 64MB
wal_keep_size = 0
checkpoint_timeout = 30s
EOC
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE big (pad text)');
my $flush = sub { $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()') };
ok(WalproposerCluster::wait_for_sk_flush($_, $primary, $flush->()), $_->name . ' is streaming')
  for @sks;
my $config = WalproposerCluster::sk_timeline($sks[2], $primary)->{configuration};
ok($config && $config->{generation} >= 1,
    'the safekeepers hold the configuration (generation ' . ($config ? $config->{generation} : 'none') . ')');

sub dir_bytes {
    my ($dir) = @_;
    my $total = 0;
    File::Find::find(sub { $total += -s $_ if -f $_ }, $dir) if -d $dir;
    return $total;
}

# 1. sk173 stays down while more than 2 GB of WAL is written.
my $down = $sks[2];
$down->stop;
my $down_flush = WalproposerCluster::lsn_to_int($flush->());
my $start_lsn = $flush->();
my $script = PostgreSQL::Test::Utils::tempdir() . '/insert.sql';
open my $fh, '>', $script or die $!;
# About 1 MB of WAL per transaction.
print $fh "INSERT INTO big SELECT repeat(md5(random()::text), 30) FROM generate_series(1, 1000);\n";
close $fh;
my %max = (sk171 => 0, sk172 => 0, pg_wal => 0);
my $sample = sub {
    $max{ $_->name } = List::Util::max($max{ $_->name },
        dir_bytes(WalproposerCluster::sk_timeline_dir($_, $primary)))
      for @sks[ 0, 1 ];
    $max{pg_wal} = List::Util::max($max{pg_wal}, dir_bytes($primary->data_dir . '/pg_wal'));
};
require List::Util;
my $written = 0;
my $rounds = 0;
my $deadline = time + 600;
while ($written < 2 * 1024 * 1024 * 1024 && time < $deadline) {
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start(
        [ 'pgbench', '-n', '-f', $script, '-c', '2', '-t', '150', '-h', $primary->host, '-p',
            $primary->port, 'postgres' ],
        '>', \$out, '2>', \$err, IPC::Run::timeout(300));
    while ($h->pumpable) {
        $h->pump_nb;
        $sample->();
        select(undef, undef, undef, 0.3);
    }
    $h->finish or diag("pgbench: $err");
    $primary->safe_psql('postgres', 'TRUNCATE big');
    $sample->();
    ++$rounds;
    $written = $primary->safe_psql('postgres',
        "SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '$start_lsn')::bigint");
}
diag(sprintf('%.0f MB of WAL written in %d pgbench rounds with sk173 down', $written / 1048576,
        $rounds));
ok($written >= 2 * 1024 * 1024 * 1024, 'more than 2 GB of WAL written with one safekeeper down');
for my $what (sort keys %max) {
    diag(sprintf('largest %s: %.0f MB', $what, $max{$what} / 1048576));
    ok($max{$what} < $bound, "$what stayed below 512 MB");
}
like(slurp_file($sks[0]->log_file) . slurp_file($sks[1]->log_file), qr/lagging member.*cut off|cut off.*member/,
    'the live safekeepers cut the down member off at the cap (logged)');

# 2. It comes back: its WAL is gone from every peer, so it rebuilds from one,
# then catches up and streams again.
my $target = $flush->();
$down->start;
ok(WalproposerCluster::wait_for_sk_flush($down, $primary, $target),
    "the member that was down reaches the primary's flush LSN $target");
my $tl = WalproposerCluster::sk_timeline($down, $primary);
my $rec = $tl->{peer_recovery};
ok($rec->{bootstraps} >= 1, 'it rebuilt its copy from a peer (bootstraps ' . $rec->{bootstraps} . ')');
cmp_ok($rec->{recovered_bytes}, '>', 0, "it took $rec->{recovered_bytes} bytes of WAL from peers");
ok(WalproposerCluster::lsn_to_int($tl->{timeline_start_lsn}) > $down_flush,
    'its timeline now starts above where it stopped (the gap was never copied)');
$primary->safe_psql('postgres', 'INSERT INTO big VALUES (1)');
my $end = $flush->();
ok(WalproposerCluster::wait_for_sk_flush($_, $primary, $end), $_->name . " reaches $end") for @sks;

# Byte for byte: every complete segment the rebuilt member holds equals the
# peers' copy of it.
my $dir_down = WalproposerCluster::sk_timeline_dir($down, $primary);
my $dir_peer = WalproposerCluster::sk_timeline_dir($sks[0], $primary);
my @common = grep { -e "$dir_peer/$_" } WalproposerCluster::complete_segments($dir_down);
ok(@common >= 1, scalar(@common) . ' complete segments held by it and sk171');
my @differ = grep { File::Compare::compare("$dir_down/$_", "$dir_peer/$_") != 0 } @common;
is("@differ", '', 'they are byte-identical');

# 3. A short outage: sk172 stops, WAL is written, it comes back and takes the
# missing WAL from its peers (not rebuilt: they still hold it).
my $short = $sks[1];
my $before = WalproposerCluster::sk_timeline($short, $primary)->{peer_recovery};
$short->stop;
$primary->safe_psql('postgres',
    "INSERT INTO big SELECT repeat('y', 1000) FROM generate_series(1, 20000)");
my $short_end = $flush->();
$short->start;
ok(WalproposerCluster::wait_for_sk_flush($short, $primary, $short_end),
    "sk172 catches up to $short_end after a short outage");
my $after = WalproposerCluster::sk_timeline($short, $primary)->{peer_recovery};
is($after->{bootstraps}, 0, 'without a rebuild');
ok(WalproposerCluster::sk_metric($short, 'safekeeper_peer_recovered_bytes_total') >= 0,
    'the recovery metrics are served');

# Commits need the quorum of the configuration, and all three count again:
# with sk171 stopped, the other two confirm a COMMIT.
$sks[0]->stop;
my ($done, undef, $commit_err) =
  WalproposerCluster::commit_returns_within($primary, 'INSERT INTO big VALUES (2)', 30);
ok($done && $commit_err eq '', 'a COMMIT returns with the recovered members forming the quorum')
  or diag("error: $commit_err; " . $primary->safe_psql('postgres', 'SELECT * FROM walproposer_safekeepers'));
$sks[0]->start;

$primary->stop;
$_->stop for @sks;
done_testing();
