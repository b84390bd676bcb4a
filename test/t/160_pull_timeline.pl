# pull_timeline: a new, empty safekeeper copies the timeline from a healthy
# one while commits go on, after the primary recycled the timeline's early
# WAL; the copy is byte-identical to the source over the copied range, a
# standby streams from it alone, and once the primary's walproposer.safekeepers
# lists it the copy receives new WAL from its snapshot flush and counts for
# the quorum. Also: a pull into a safekeeper that has the timeline is
# refused, and a source that goes away mid-copy leaves nothing behind.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(3, 161);
my $sk4 = SafekeeperNode->new('sk164', id => 164)->start;
my $primary = WalproposerCluster::start_primary('primary', \@sks, extra_conf => <<'EOC');
wal_keep_size = 0
min_wal_size = 32MB
max_wal_size = 64MB
EOC
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
my ($tenant, $timeline) =
  (WalproposerCluster::tenant_id($primary), WalproposerCluster::timeline_id($primary));
$primary->backup('early');    # a standby from it needs the timeline's early WAL

# WAL, and the primary recycles the timeline's first segments.
my ($recycled, $first_seg, $start) = WalproposerCluster::recycle_first_segment($primary, $sks[0]);
ok($recycled, "the primary recycled $first_seg, where the timeline starts ($start)");

# Commits go on during the pull.
$primary->safe_psql('postgres', 'CREATE TABLE t (id bigint PRIMARY KEY, writer int, pad text)');
my $writers = WalproposerCluster::start_writers($primary, 't', 2);
my $rows = sub { $primary->safe_psql('postgres', 'SELECT count(*) FROM t') };
ok(SafekeeperNode::poll_until(sub { $rows->() > 200 }), 'writers commit');

sub pull_command {
    my ($from, $to, @extra) = @_;
    return (SafekeeperNode::binary(), 'pull-timeline', '--from', $from->http_url, '--to', $to->http_url,
        '--tenant', $tenant, '--timeline', $timeline, SafekeeperNode::admin_args(), @extra);
}

my $before = $rows->();
my ($out, $err) = ('', '');
# Limited to 8 MB/s, so that the copy lasts a few seconds while commits go on.
my $ok = IPC::Run::run([ pull_command($sks[0], $sk4, '--max-rate', 8_000_000) ],
    '>', \$out, '2>', \$err, WalproposerCluster::timer('pull-timeline'));
ok($ok, 'safekeeper pull-timeline exits 0') or diag($err);
like($out, qr/^pulled timeline $tenant\/$timeline from .* flush_lsn (\S+),/, 'it says what it pulled');
my ($snap_flush) = $out =~ /flush_lsn ([0-9A-F]+\/[0-9A-F]+),/;
note "pulled: $out";
ok($rows->() > $before, 'commits went on during the pull (' . ($rows->() - $before) . ' rows)');

my $copy = WalproposerCluster::sk_timeline($sk4, $primary);
my $src = WalproposerCluster::sk_timeline($sks[0], $primary);
is($copy->{state}, 'active', 'the copy is an active timeline');
is($copy->{flush_lsn}, $snap_flush, 'its flush_lsn is the snapshot flush');
ok(WalproposerCluster::lsn_to_int($src->{flush_lsn}) > WalproposerCluster::lsn_to_int($snap_flush),
    'the source went on past it');
for my $f (qw(term timeline_start_lsn wal_segment_size system_id pg_version pg_timeline
    min_pg_timeline))
{
    is($copy->{$f}, $src->{$f}, "its $f is the source's");
}
is_deeply($copy->{term_history}, $src->{term_history}, "its term history is the source's");
ok(WalproposerCluster::lsn_to_int($copy->{commit_lsn}) <= WalproposerCluster::lsn_to_int($snap_flush)
      && WalproposerCluster::lsn_to_int($copy->{commit_lsn}) > WalproposerCluster::lsn_to_int($start),
    "its commit_lsn $copy->{commit_lsn} is within the copied WAL");

# Byte-identical to the source over [timeline start, snapshot flush), and to
# the primary's pg_wal where the primary still has it.
my $segsize = $copy->{wal_segment_size};
my ($from, $to) =
  (WalproposerCluster::lsn_to_int($start), WalproposerCluster::lsn_to_int($snap_flush));
my $dir4 = WalproposerCluster::sk_timeline_dir($sk4, $primary);
my $dir1 = WalproposerCluster::sk_timeline_dir($sks[0], $primary);
my ($compared, @diff) = (0);
for (my $seg = int($from / $segsize); $seg * $segsize < $to; $seg++) {
    my $name = sprintf('%08X%08X%08X', 1, int($seg * $segsize / 2**32),
        ($seg * $segsize % 2**32) / $segsize);
    my ($f4) = grep { -f } ("$dir4/$name", "$dir4/$name.partial");
    my ($f1) = grep { -f } ("$dir1/$name", "$dir1/$name.partial");
    my $lo = $from > $seg * $segsize ? $from - $seg * $segsize : 0;
    my $hi = $to < ($seg + 1) * $segsize ? $to - $seg * $segsize : $segsize;
    my $a = $f4 && WalproposerCluster::read_range($f4, $lo, $hi - $lo);
    my $b = $f1 && WalproposerCluster::read_range($f1, $lo, $hi - $lo);
    if (!defined $a || !defined $b) { push @diff, "$name: missing or short"; next; }
    if ($a ne $b) { push @diff, "$name: differs"; next; }
    $compared += $hi - $lo;
}
is_deeply(\@diff, [], "the copy's WAL is byte-identical to the source's ($compared bytes)");
is($compared, $to - $from, 'over the whole copied range');
my ($vs_primary, @mismatch) = WalproposerCluster::compare_wal_with_primary($sk4, $primary);
is_deeply(\@mismatch, [], "and to the primary's pg_wal where it still has it ($vs_primary bytes)");

# A stock standby streams the committed WAL from the copy alone, from the
# early backup (WAL the primary no longer has).
my $standby = WalproposerCluster::make_sk_standby($primary, 'early', 'standby', [$sk4]);
$standby->start;
ok(WalproposerCluster::wait_replayed($standby, $copy->{commit_lsn}),
    "a standby streaming only from the copy replays up to its commit_lsn $copy->{commit_lsn}");

# A second pull into the same safekeeper is refused; nothing changes.
($out, $err) = ('', '');
IPC::Run::run([ pull_command($sks[1], $sk4) ], '>', \$out, '2>', \$err,
    WalproposerCluster::timer('pull-timeline'));
is($? >> 8, 1, 'a pull into a safekeeper that has the timeline exits 1');
like($err, qr/HTTP 409: timeline \S+ already exists on this safekeeper/, 'with a clear error')
  or diag($err);
is(WalproposerCluster::sk_timeline($sk4, $primary)->{term}, $copy->{term}, 'the copy is untouched');

# The primary now uses {sk1, sk2, sk4}: sk4 receives new WAL from its
# snapshot flush on, and counts for the quorum.
my $list = WalproposerCluster::safekeeper_list([ $sks[0], $sks[1], $sk4 ]);
$primary->safe_psql('postgres', "ALTER SYSTEM SET walproposer.safekeepers = '$list'");
$primary->reload;
WalproposerCluster::wait_for_status($primary,
    "state = 'elected' AND (SELECT string_agg(address, ',') FROM walproposer_safekeepers) = '$list'",
    'elected on {sk1, sk2, sk4}');
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($sk4, $primary, $end), "sk4 receives new WAL up to $end");
my ($new_bytes, @bad) = WalproposerCluster::compare_wal_with_primary($sk4, $primary, $snap_flush);
is_deeply(\@bad, [], "sk4's WAL after the snapshot flush is the primary's ($new_bytes bytes)");
ok(!$primary->log_contains('already been removed'), 'the primary never needed recycled WAL');
$sks[1]->stop;
my ($returned) = WalproposerCluster::commit_returns_within($primary, 'INSERT INTO t VALUES (1, 0, NULL)', 30);
ok($returned, 'with sk2 down, commits return on the quorum {sk1, sk4}');
ok(WalproposerCluster::wait_replayed($standby,
        $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()')),
    'the standby on sk4 follows the new WAL');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 1'), '1',
    'and has the row committed through sk4');
$sks[1]->start;

# A source that goes away mid-copy: sk3 (no longer streamed to, still a
# complete copy) is killed while sk5 pulls from it at 2 MB/s.
my $sk5 = SafekeeperNode->new('sk165', id => 165)->start;
my $staging = $sk5->data_dir . "/$tenant/.pull-$timeline";
($out, $err) = ('', '');
my $h = IPC::Run::start([ pull_command($sks[2], $sk5, '--max-rate', 2_000_000) ],
    '>', \$out, '2>', \$err, WalproposerCluster::timer('pull-timeline'));
ok(SafekeeperNode::poll_until(sub { opendir(my $d, $staging) or return 0; grep { /^[0-9A-F]{24}/ } readdir $d }),
    'sk5 stages the copy');
$h->pump_nb;
ok($h->pumpable, 'the pull is still running');
$sks[2]->kill9;
ok(SafekeeperNode::poll_until(sub { $h->pump_nb if $h->pumpable; !$h->pumpable }), 'the pull ends');
$h->finish;
is($? >> 8, 1, 'pull-timeline exits 1');
like($err, qr/HTTP 502: pull from https?:\/\/127\.0\.0\.1:\d+ failed: .*segment/, 'the error names the source')
  or diag($err);
ok(!-e $staging, 'the staging directory is gone');
ok(!-e WalproposerCluster::sk_timeline_dir($sk5, $primary), 'no timeline directory');
is($sk5->http('GET', "/v1/tenant/$tenant/timeline/$timeline")->{status}, 404, 'no timeline');
ok(-s $sk5->log_file && do { local $/; open my $fh, '<', $sk5->log_file; <$fh> =~ /pull \S+ from \S+: failed \(source\)/ },
    'the failure is logged');

$standby->stop;
$primary->stop;
WalproposerCluster::acked_ids($writers);
$_->stop for @sks, $sk4, $sk5;
done_testing();
