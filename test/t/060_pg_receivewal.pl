# pg_receivewal pointed at a safekeeper (with and without --slot) writes
# segments byte-identical to the primary's pg_wal segments.
use strict;
use warnings;

use File::Compare ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

# Own names (sk61..): safekeeper directories under tmp_check are shared by
# every test file of a run, and receiver 1 relies on a single timeline.
my @sks = WalproposerCluster::start_safekeepers(3, 61);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
my $id = WalproposerCluster::default_id($primary);

# Two receivers: safekeeper 1 without a slot and without options (the only
# timeline is served); safekeeper 2 with a slot and explicit ids.
my $dir1 = PostgreSQL::Test::Utils::tempdir('recv1');
my $dir2 = PostgreSQL::Test::Utils::tempdir('recv2');
my @receivers;
for my $r ([ $dir1, 'host=127.0.0.1 port=' . $sks[0]->pg_port ],
    [ $dir2,
        'host=127.0.0.1 port=' . $sks[1]->pg_port
          . " options='-c tenant_id=$id -c timeline_id=$id'", '--slot=archiver' ])
{
    my ($dir, $conn, @extra) = @$r;
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start([ 'pg_receivewal', '-D', $dir, '-d', $conn, '--no-loop',
            '--status-interval=1', '-v', @extra ],
        '>', \$out, '2>', \$err, WalproposerCluster::timer('pg_receivewal'));
    push @receivers, { h => $h, dir => $dir, err => \$err };
}
ok(SafekeeperNode::poll_until(sub {
            my $t = WalproposerCluster::sk_timeline($sks[1], $primary);
            grep { defined $_->{slot_name} && $_->{slot_name} eq 'archiver' } @{ $t->{consumers} };
        }),
    'pg_receivewal --slot=archiver streams from safekeeper 2');

# WAL: several complete segments.
$primary->command_ok([ 'pgbench', '-i', '-s', '2', '-q', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench -i');
for (1 .. 3) {
    $primary->safe_psql('postgres',
        'INSERT INTO pgbench_history SELECT 1, 1, 1, 1, now() FROM generate_series(1, 5000)');
    $primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
}
$primary->safe_psql('postgres', 'INSERT INTO pgbench_history VALUES (1, 1, 1, 1, now())');
my $end = $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_flush_lsn())');
note "primary is in segment $end";

my $pg_wal = $primary->data_dir . '/pg_wal';
for my $i (0 .. 1) {
    my $r = $receivers[$i];
    my $label = $i == 0 ? 'pg_receivewal' : 'pg_receivewal --slot';
    # Every segment before the primary's current one is complete.
    ok(SafekeeperNode::poll_until(sub {
                my @s = WalproposerCluster::complete_segments($r->{dir});
                @s && $s[-1] ge sprintf('%s%08X', substr($end, 0, 16), hex(substr($end, 16)) - 1);
            }),
        "$label completed the segments before $end")
      or diag(${ $r->{err} });
    my @segs = WalproposerCluster::complete_segments($r->{dir});
    ok(@segs >= 3, "$label wrote " . scalar(@segs) . ' complete segments');
    my @diff = grep { File::Compare::compare("$r->{dir}/$_", "$pg_wal/$_") != 0 } @segs;
    is_deeply(\@diff, [], "$label: every complete segment is byte-identical to the primary's");
}

# READ_REPLICATION_SLOT reports what the slot's consumer flushed.
my ($out, $err) = ('', '');
IPC::Run::run([ 'psql', '-XAt', '-d',
        'host=127.0.0.1 port=' . $sks[1]->pg_port . ' replication=true',
        '-c', 'READ_REPLICATION_SLOT archiver' ],
    '>', \$out, '2>', \$err);
like($out, qr{^physical\|[0-9A-F]+/[0-9A-F]+\|1$}m, 'READ_REPLICATION_SLOT shows the slot position')
  or diag($err);

for my $r (@receivers) {
    $r->{h}->signal('INT');
    $r->{h}->finish;
}
$primary->stop;
$_->stop for @sks;
done_testing();
