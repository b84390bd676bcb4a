# Replacing a lost safekeeper online (docs/operations.md): with pgbench and
# writers committing and the primary's early WAL already recycled, one safekeeper is
# killed and its data directory deleted; a new, empty safekeeper on another
# port (a new id) copies the timeline from a live one (pull-timeline) and
# replaces it through a membership change (a reload of
# walproposer.safekeepers). COMMITs go on throughout (the longest stall is
# printed), the new member counts for the quorum, and its WAL is
# byte-identical to the others' over the range it holds.
use strict;
use warnings;

use File::Compare ();
use File::Path ();
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use List::Util ();
use Time::HiRes ();
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(3, 61);
my $members = sub { join(',', map { $_->id . '=' . $_->address } @_) };
my $primary = WalproposerCluster::start_primary('primary', \@sks, extra_conf => "walproposer.safekeepers = '"
      . $members->(@sks) . "'\nwal_keep_size = 0\nmin_wal_size = 32MB\nmax_wal_size = 64MB\n");
WalproposerCluster::wait_for_status($primary,
    "state = 'elected' AND commit_lsn IS NOT NULL AND generation = 1", 'first election');
my ($tenant, $timeline) =
  (WalproposerCluster::tenant_id($primary), WalproposerCluster::timeline_id($primary));

# WAL, and the primary recycles the timeline's first segment.
my ($recycled, $first_seg) = WalproposerCluster::recycle_first_segment($primary, $sks[0]);
ok($recycled, "the primary recycled $first_seg, where the timeline starts");

# Writers: each prints the time of every INSERT whose COMMIT returned.
$primary->safe_psql('postgres', 'CREATE TABLE t (id bigserial PRIMARY KEY, writer int, pad text)');
my @writers;
for my $w (1 .. 2) {
    my $file = PostgreSQL::Test::Utils::tempdir() . "/writer$w.sql";
    PostgreSQL::Test::Utils::append_to_file($file, join('', map {
        "INSERT INTO t (writer, pad) VALUES ($w, repeat('x', 500)) RETURNING extract(epoch FROM clock_timestamp());\n"
    } 1 .. 400_000));
    my %wr = (out => "$file.out", err => "$file.err");
    $wr{h} = IPC::Run::start(
        [ 'psql', '-XAtq', '-h', $primary->host, '-p', $primary->port, '-d', 'postgres', '-f', $file ],
        '>', $wr{out}, '2>', $wr{err});
    push @writers, \%wr;
}
my $rows = sub { $primary->safe_psql('postgres', 'SELECT count(*) FROM t') };
ok(SafekeeperNode::poll_until(sub { $rows->() > 200 }), 'writers commit');
# And pgbench, for the whole replacement.
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
    [ 'pgbench', '-n', '-N', '-c', '2', '-T', '15', '-h', $primary->host, '-p', $primary->port,
        'postgres' ],
    '>', \$bench_out, '2>', \$bench_err, WalproposerCluster::timer('pgbench'));

# sk62 is lost: killed, its data directory deleted.
my $lost = $sks[1];
$lost->kill9;
File::Path::rmtree($lost->data_dir);
ok(!-e $lost->data_dir, 'sk62 is killed and its data directory is gone');
my $t_lost = Time::HiRes::time();

# The replacement: a new, empty safekeeper with a new id on another port.
my $new = SafekeeperNode->new('sk64', id => 64)->start;
my ($out, $err) = ('', '');
ok(IPC::Run::run([ SafekeeperNode::binary(), 'pull-timeline', '--from',
            $sks[0]->http_url, '--to', $new->http_url,
            '--tenant', $tenant, '--timeline', $timeline, SafekeeperNode::admin_args() ],
        '>', \$out, '2>', \$err, WalproposerCluster::timer('pull-timeline')),
    'pull-timeline copied the timeline from sk61 into sk64') or diag("$out\n$err");
diag($out);
my $target = $members->($sks[0], $sks[2], $new);
$primary->safe_psql('postgres', "ALTER SYSTEM SET walproposer.safekeepers = '$target'");
$primary->reload;
WalproposerCluster::wait_for_status($primary,
    "generation = 3 AND new_members IS NULL AND members = '{$target}'", 'the new set in force');
pass('the membership change to {61, 63, 64} is in force');
diag(sprintf('replacement done %.1f s after the loss', Time::HiRes::time() - $t_lost));
my $after = $rows->();
ok(SafekeeperNode::poll_until(sub { $rows->() > $after + 200 }), 'COMMITs go on after the change');

ok($bench->finish, 'pgbench ran through the replacement') or diag($bench_err);
my ($tps) = $bench_out =~ /number of transactions actually processed: (\d+)/;
diag('pgbench: ' . ($tps // 0) . ' transactions in 15 s during the replacement');
cmp_ok($tps // 0, '>', 100, 'pgbench committed transactions');

# The longest stall between consecutive COMMITs of either writer.
$_->{h}->kill_kill for @writers;
my @times = sort { $a <=> $b } map { grep { /^\d+(\.\d+)?$/ } split /\n/, slurp_file($_->{out}) } @writers;
cmp_ok(scalar(@times), '>', 400, 'the writers recorded their COMMITs');
my $stall = 0;
$stall = List::Util::max($stall, $times[$_] - $times[ $_ - 1 ]) for 1 .. $#times;
diag(sprintf('%d COMMITs; longest commit stall: %.0f ms', scalar(@times), $stall * 1000));
cmp_ok($stall, '<', 10, 'no COMMIT waited 10 s or more while a safekeeper was lost and replaced');

# The new member counts: with sk61 down, sk63 and sk64 form the quorum.
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($new, $primary, $end), "sk64 reaches the primary's flush $end");
$sks[0]->stop;
my ($done, undef, $commit_err) =
  WalproposerCluster::commit_returns_within($primary, 'INSERT INTO t (writer) VALUES (0)', 30);
ok($done && $commit_err eq '', 'a COMMIT returns with sk63 and sk64 only');
$sks[0]->start;
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($_, $primary, $end), $_->name . " reaches $end")
  for ($sks[0], $sks[2], $new);

# Byte for byte over the range the new member holds.
my $dir_new = WalproposerCluster::sk_timeline_dir($new, $primary);
for my $peer ($sks[0], $sks[2]) {
    my $dir_peer = WalproposerCluster::sk_timeline_dir($peer, $primary);
    my @common = grep { -e "$dir_peer/$_" } WalproposerCluster::complete_segments($dir_new);
    ok(@common >= 2, scalar(@common) . ' complete segments held by sk64 and ' . $peer->name);
    my @differ = grep { File::Compare::compare("$dir_new/$_", "$dir_peer/$_") != 0 } @common;
    is("@differ", '', 'byte-identical to ' . $peer->name);
}
my ($bytes, @mismatches) = WalproposerCluster::compare_wal_with_primary($new, $primary);
ok(!@mismatches, "sk64's WAL equals the primary's where pg_wal still has it ($bytes bytes compared)")
  or diag(join("\n", @mismatches));

$primary->stop;
$_->stop for ($sks[0], $sks[2], $new);
done_testing();
