# Physical replication slots persisted on a safekeeper, and WAL retention:
#  * pg_receivewal --create-slot / --drop-slot against a safekeeper; bad
#    slot names get PostgreSQL's error;
#  * segments below the removal horizon are removed (a safekeeper without
#    slots keeps only what its members still need);
#  * a `pg_receivewal -S slot` consumer stopped for a while: its WAL is kept
#    (also across a restart of the safekeeper) and it continues without a
#    gap, every segment byte-identical to the primary's;
#  * with --max-wal-retention, a slot that falls too far behind is cut off:
#    a clear log line, a metric, and its consumer gets "requested WAL
#    segment ... has already been removed".
use strict;
use warnings;

use File::Compare ();
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafekeeperNode;
use WalproposerCluster;

# No --wal-keep-size floor, so that removal follows the horizon exactly.
my @sks = map { SafekeeperNode->new("sk$_", id => $_, extra => [ '--wal-keep-size=0' ])->start }
  151 .. 152;
# The third keeps at most 48 MB of WAL (three segments).
my $capped = SafekeeperNode->new('sk153', id => 153,
    extra => [ '--max-wal-retention=48MB', '--wal-keep-size=0' ]);
$capped->start;
push @sks, $capped;
my $primary = WalproposerCluster::start_primary('primary', \@sks,
    extra_conf => "wal_keep_size = 512MB\n");
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (x int, pad text)');

sub conninfo {
    my ($sk) = @_;
    return 'host=127.0.0.1 port=' . $sk->pg_port;
}

sub run_cmd {
    my (@cmd) = @_;
    my ($out, $err) = ('', '');
    my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, WalproposerCluster::timer("@cmd"));
    return ($ok, $out, $err);
}

sub repl_psql {
    my ($sk, $sql) = @_;
    return run_cmd('psql', '-XAt', '-d', conninfo($sk) . ' replication=true', '-c', $sql);
}

sub slot_of {
    my ($sk, $name) = @_;
    my $tl = WalproposerCluster::sk_timeline($sk, $primary) or return undef;
    my ($s) = grep { $_->{slot_name} eq $name } @{ $tl->{slots} };
    return $s;
}

# n segments of WAL: a little data, then a segment switch, each time.
sub make_segments {
    my ($n) = @_;
    for (1 .. $n) {
        $primary->safe_psql('postgres',
            "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
        $primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
    }
    $primary->safe_psql('postgres', 'INSERT INTO t VALUES (0, NULL)');
    return $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
}

# ---------------------------------------------------------------- slots
my $sk = $sks[0];
my ($ok, $out, $err) = run_cmd('pg_receivewal', '-d', conninfo($sk), '--slot=archiver',
    '--create-slot');
ok($ok, 'pg_receivewal --create-slot on a safekeeper') or diag($err);
ok(slot_of($sk, 'archiver'), 'the slot is listed in the timeline status');
($ok, $out, $err) = run_cmd('pg_receivewal', '-d', conninfo($sk), '--slot=archiver',
    '--create-slot', '--if-not-exists');
ok($ok, '--create-slot --if-not-exists: an existing slot is fine') or diag($err);
($ok, $out, $err) = run_cmd('pg_receivewal', '-d', conninfo($sk), '--slot=archiver',
    '--create-slot');
ok(!$ok && $err =~ /replication slot "archiver" already exists/, 'creating it twice is refused')
  or diag($err);
($ok, $out, $err) = repl_psql($sk, 'CREATE_REPLICATION_SLOT "Bad-Name" PHYSICAL');
like($err, qr/replication slot name "Bad-Name" contains invalid character/,
    'a bad slot name gets PostgreSQL\'s error');
($ok, $out, $err) = run_cmd('pg_receivewal', '-d', conninfo($sk), '--slot=scratch',
    '--create-slot');
($ok, $out, $err) = run_cmd('pg_receivewal', '-d', conninfo($sk), '--slot=scratch',
    '--drop-slot');
ok($ok && !slot_of($sk, 'scratch'), 'pg_receivewal --drop-slot') or diag($err);
($ok, $out, $err) = repl_psql($sk, 'DROP_REPLICATION_SLOT scratch');
like($err, qr/replication slot "scratch" does not exist/, 'dropping an unknown slot is refused');

# ------------------------------------------------ consumer stops; WAL kept
my $dir = PostgreSQL::Test::Utils::tempdir('archive');
sub start_receiver {
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start([ 'pg_receivewal', '-D', $dir, '-d', conninfo($sk), '--slot=archiver',
            '--no-loop', '--status-interval=1', '-v' ],
        '>', \$out, '2>', \$err, WalproposerCluster::timer('pg_receivewal'));
    return ($h, \$err);
}
my ($recv, $recv_err) = start_receiver();
my $lsn = make_segments(2);
# pg_receivewal reports a segment as flushed once it is complete.
my $seg_floor = WalproposerCluster::lsn_to_int($lsn);
$seg_floor -= $seg_floor % (16 * 1024 * 1024);
ok(SafekeeperNode::poll_until(sub {
            my $s = slot_of($sk, 'archiver');
            $s && $s->{restart_lsn} && WalproposerCluster::lsn_to_int($s->{restart_lsn}) >= $seg_floor;
        }),
    "the slot's restart LSN follows the consumer's flush position to the segment of $lsn")
  or diag($$recv_err);
$recv->signal('INT');
$recv->finish;
my $held = slot_of($sk, 'archiver')->{restart_lsn};
note "consumer stopped; the slot holds WAL from $held";

# Six segments later, with every member caught up: the safekeeper without a
# slot removed old segments; the one with the slot kept them.
$lsn = make_segments(6);
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1, NULL)') for 1 .. 5;
my $other = $sks[1];
ok(SafekeeperNode::poll_until(sub {
            my $tl = WalproposerCluster::sk_timeline($other, $primary);
            WalproposerCluster::lsn_to_int($tl->{timeline_start_lsn}) >=
              WalproposerCluster::lsn_to_int($lsn) - 16 * 1024 * 1024;
        }),
    'a safekeeper without slots removes the segments below its horizon')
  or diag(explain(WalproposerCluster::sk_timeline($other, $primary)));
cmp_ok(WalproposerCluster::sk_metric($other, 'safekeeper_wal_removed_bytes_total') // 0, '>=', 5 * 16 * 1024 * 1024,
    'safekeeper_wal_removed_bytes_total counts them');
my @files = WalproposerCluster::complete_segments(WalproposerCluster::sk_timeline_dir($other, $primary));
ok(@files <= 2, "its directory holds only the segments from the horizon on: @files");

my $tl = WalproposerCluster::sk_timeline($sk, $primary);
cmp_ok(WalproposerCluster::lsn_to_int($tl->{timeline_start_lsn}), '<=',
    WalproposerCluster::lsn_to_int($held), "the slot's safekeeper keeps WAL from $held");
is($tl->{removal_horizon_lsn}, $held, 'its removal horizon is the slot\'s restart LSN');

# The slot survives a restart of the safekeeper.
$sk->stop;
$sk->start;
is(slot_of($sk, 'archiver')->{restart_lsn}, $held, 'the slot is persisted across a restart');

# The consumer returns and continues without a gap.
($recv, $recv_err) = start_receiver();
my $end = $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_flush_lsn())');
ok(SafekeeperNode::poll_until(sub {
            my @s = WalproposerCluster::complete_segments($dir);
            @s && $s[-1] ge sprintf('%s%08X', substr($end, 0, 16), hex(substr($end, 16)) - 1);
        }),
    "the returning consumer completed every segment before $end")
  or diag($$recv_err);
$recv->signal('INT');
$recv->finish;
unlike($$recv_err, qr/already been removed/, 'no WAL the consumer needed was removed');
my @segs = WalproposerCluster::complete_segments($dir);
my @gaps;
for my $i (1 .. $#segs) {
    push @gaps, "$segs[$i-1] -> $segs[$i]"
      if hex(substr($segs[$i], 16)) != hex(substr($segs[ $i - 1 ], 16)) + 1;
}
is_deeply(\@gaps, [], 'the archive has no gap (' . scalar(@segs) . ' segments)');
my $pg_wal = $primary->data_dir . '/pg_wal';
my @diff = grep { File::Compare::compare("$dir/$_", "$pg_wal/$_") != 0 } @segs;
is_deeply(\@diff, [], 'every archived segment is byte-identical to the primary\'s');

# ------------------------------------------------------------- cut-off
($ok, $out, $err) = repl_psql($capped, 'CREATE_REPLICATION_SLOT laggard PHYSICAL (RESERVE_WAL)');
ok($ok && $out =~ /^laggard\|0\/0\|\|$/m, 'CREATE_REPLICATION_SLOT ... (RESERVE_WAL) answers as a walsender')
  or diag("$out $err");
my $reserved = slot_of($capped, 'laggard')->{restart_lsn};
ok($reserved, "the slot reserves WAL from $reserved");
make_segments(5);
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (2, NULL)') for 1 .. 5;
ok(SafekeeperNode::poll_until(sub { slot_of($capped, 'laggard')->{invalidated} }),
    'the slot is invalidated once it holds more than --max-wal-retention');
cmp_ok(WalproposerCluster::sk_metric($capped, 'safekeeper_retention_cutoffs_total') // 0, '>=', 1,
    'safekeeper_retention_cutoffs_total counts the cut-off');
is(WalproposerCluster::sk_metric($capped, 'safekeeper_slot_invalidated'), 1, 'safekeeper_slot_invalidated is 1');
my $log = PostgreSQL::Test::Utils::slurp_file($capped->log_file);
like($log, qr/replication slot "laggard" cut off by --max-wal-retention/, 'the cut-off is logged');
my $adir = PostgreSQL::Test::Utils::tempdir('laggard');
($ok, $out, $err) = run_cmd('pg_receivewal', '-D', $adir, '-d', conninfo($capped),
    '--slot=laggard', '--no-loop');
ok(!$ok, 'the cut-off slot\'s consumer fails');
like($err, qr/requested WAL segment [0-9A-F]{24} has already been removed/,
    'with "requested WAL segment ... has already been removed"');
my $held_bytes;
ok( SafekeeperNode::poll_until(sub {
            my $ctl = WalproposerCluster::sk_timeline($capped, $primary);
            $held_bytes = WalproposerCluster::lsn_to_int($ctl->{flush_lsn})
              - WalproposerCluster::lsn_to_int($ctl->{timeline_start_lsn});
            $held_bytes <= 48 * 1024 * 1024 + 16 * 1024 * 1024;
        }),
    'the capped safekeeper holds at most the cap plus a segment')
  or diag("it holds $held_bytes bytes");

$primary->stop;
$_->stop for @sks;
done_testing();
