# Safekeeper durability and isolation with real primaries:
#  * two primaries (same tenant, different walproposer.timeline_id) stream
#    to the same three safekeepers at once; each safekeeper holds both
#    timelines, byte-identical to each primary's WAL;
#  * SIGKILL of a safekeeper while both stream under pgbench, restart: the
#    recovered flush LSN of each timeline is >= every flush LSN the daemon
#    reported (HTTP samples taken before the kill), and it catches up;
#  * a corrupt control file on one timeline (daemon stopped, one byte
#    flipped, daemon started): that timeline refuses service with a clear
#    log line and HTTP status, the file is not overwritten, while the other
#    timeline on the same daemon keeps streaming and both primaries keep
#    committing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my $tenant = 'aa' x 16;
my %tlid = (a => '0a' x 16, b => '0b' x 16);

# Own names (tmp_check is shared by the test files of a run): sk111..sk113.
my @sks = WalproposerCluster::start_safekeepers(3, 111);
my %pg;
for my $name (qw(a b)) {
    $pg{$name} = WalproposerCluster::start_primary("primary_$name", \@sks,
        tenant_id => $tenant, timeline_id => $tlid{$name});
    WalproposerCluster::wait_for_status($pg{$name}, "state = 'elected'", "primary $name elected");
    $pg{$name}->command_ok([ 'pgbench', '-i', '-s', '1', '-q', '-h', $pg{$name}->host, '-p',
            $pg{$name}->port, 'postgres' ], "pgbench -i on primary $name");
}

# ---------------------------------------------------- two timelines at once
for my $sk (@sks) {
    my $st = $sk->http_json('GET', '/v1/status');
    is($st->{timelines}, 2, $sk->name . ' holds two timelines');
    for my $name (qw(a b)) {
        ok(-f $sk->data_dir . "/$tenant/$tlid{$name}/safekeeper.control",
            $sk->name . ": DIR/<tenant>/<timeline $name>/ has a control file");
    }
}

sub flush_of {
    my ($sk, $name) = @_;
    my $tl = WalproposerCluster::sk_timeline($sk, $pg{$name});
    return $tl ? WalproposerCluster::lsn_to_int($tl->{flush_lsn}) : 0;
}

# ------------------------------------------------ SIGKILL during the stream
my %load;
for my $name (qw(a b)) {
    my ($out, $err) = ('', '');
    $load{$name} = IPC::Run::start(
        [ 'pgbench', '-T', '20', '-c', '2', '-N', '-h', $pg{$name}->host, '-p', $pg{$name}->port,
            'postgres' ],
        '>', \$out, '2>', \$err, WalproposerCluster::timer("pgbench on $name"));
}
my $victim = $sks[0];
# Sample the victim's reported flush LSNs until each timeline has advanced
# at least 20 times under the load (bounded by the default timeout).
my %max_seen = (a => 0, b => 0);
my %advances = (a => 0, b => 0);
my $streaming = SafekeeperNode::poll_until(sub {
    for my $name (qw(a b)) {
        my $f = flush_of($victim, $name);
        if ($f > $max_seen{$name}) {
            $advances{$name}++;
            $max_seen{$name} = $f;
        }
    }
    return $advances{a} >= 20 && $advances{b} >= 20;
});
ok($streaming, "both timelines stream to " . $victim->name
      . " under pgbench ($advances{a} and $advances{b} flush advances seen)");
# One more sample right before the kill: the kill lands mid-stream.
for my $name (qw(a b)) {
    my $f = flush_of($victim, $name);
    $max_seen{$name} = $f if $f > $max_seen{$name};
}
$victim->kill9;
pass('SIGKILL of ' . $victim->name . ' during the stream');
$victim->start;
for my $name (qw(a b)) {
    my $recovered = flush_of($victim, $name);
    ok($recovered >= $max_seen{$name},
        sprintf('timeline %s: recovered flush LSN %X/%X >= highest reported before the kill %X/%X',
            $name, $recovered >> 32, $recovered & 0xffffffff, $max_seen{$name} >> 32,
            $max_seen{$name} & 0xffffffff));
}
like(slurp_file($victim->log_file), qr/timeline $tenant\/$tlid{a}: loaded, flush_lsn/,
    'the start-up scan is logged per timeline');
$load{$_}->finish for qw(a b);
for my $name (qw(a b)) {
    my $end = $pg{$name}->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
    for my $sk (@sks) {
        ok(WalproposerCluster::wait_for_sk_flush($sk, $pg{$name}, $end),
            $sk->name . " has timeline $name up to $end");
        my ($bytes, @mismatches) = WalproposerCluster::compare_wal_with_primary($sk, $pg{$name});
        ok($bytes > 0 && !@mismatches,
            $sk->name . " holds primary $name\'s WAL byte for byte ($bytes bytes compared)")
          or diag(join("\n", @mismatches));
    }
}

# ------------------------------------- corrupt control file on one timeline
$victim->stop;
my $control = $victim->data_dir . "/$tenant/$tlid{b}/safekeeper.control";
my $original = slurp_file($control);
my $corrupt = $original;
substr($corrupt, 30, 1) = chr(ord(substr($corrupt, 30, 1)) ^ 0xff);
{
    open my $fh, '>:raw', $control or die "open $control: $!";
    print $fh $corrupt;
    close $fh or die "close: $!";
}
my $log_offset = -s $victim->log_file;
$victim->start;

my $tl_b = $victim->http_json('GET', "/v1/tenant/$tenant/timeline/$tlid{b}");
is($tl_b->{state}, 'broken', 'the corrupt timeline is reported broken over HTTP');
like($tl_b->{last_error} // '', qr/control file CRC mismatch/, 'its last_error names the CRC mismatch');
my $log = substr(slurp_file($victim->log_file), $log_offset);
like($log, qr/timeline $tenant\/$tlid{b}: refusing service: .*safekeeper\.control.*CRC mismatch/,
    'the log says which timeline refuses service and why');
like($victim->http('GET', '/metrics')->{content},
    qr/safekeeper_timeline_broken\{tenant_id="$tenant",timeline_id="$tlid{b}"\} 1/,
    '/metrics flags the broken timeline');

# Both primaries commit; timeline a still streams to the victim, and
# primary b's proposer is refused there (each attempt logged).
for my $name (qw(a b)) {
    $pg{$name}->safe_psql('postgres',
        'CREATE TABLE after_corruption AS SELECT g FROM generate_series(1, 1000) g');
}
pass('both primaries commit with one timeline broken on one safekeeper');
my $end_a = $pg{a}->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($victim, $pg{a}, $end_a),
    'the healthy timeline on the same daemon keeps streaming');
ok(SafekeeperNode::poll_until(sub {
        my $l = substr(slurp_file($victim->log_file), $log_offset);
        my $n = () = $l =~ /timeline $tenant\/$tlid{b}: refused proposer/g;
        return $n >= 2;
    }),
    'the broken timeline refuses the proposer of primary b, and says so in the log');
is(slurp_file($control), $corrupt, 'the corrupt control file is not overwritten');
is($victim->http_json('GET', "/v1/tenant/$tenant/timeline/$tlid{b}")->{state},
    'broken', 'the timeline stays broken');
my $end_b = $pg{b}->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
for my $sk (@sks[1, 2]) {
    ok(WalproposerCluster::wait_for_sk_flush($sk, $pg{b}, $end_b),
        $sk->name . ' keeps streaming timeline b');
}

$pg{$_}->stop for qw(a b);
is($_->stop, 0, $_->name . ' exits 0 on SIGTERM') for @sks;
done_testing();
