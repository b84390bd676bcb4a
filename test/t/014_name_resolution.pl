# A safekeeper whose host name resolves slowly, or never, does not stall the
# walproposer worker: its name is resolved off the worker's loop, so the
# election and every COMMIT go on with the other safekeepers, a name that
# resolves late is connected to by its address (with the name kept for TLS),
# a name that never answers costs one resolver thread however often the
# worker retries, and the status view says why that safekeeper is not
# streaming. pg_walproposer_sync, which shares the connection code, is not
# held up either.
#
# The names are answered by test/preload/slow_getaddrinfo.cpp, preloaded
# into the primary and the sync tool: "slow<MS>-ok.wp-test" resolves to
# 127.0.0.1 after MS ms, "slow<MS>-fail.wp-test" fails after MS ms.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SafekeeperNode;
use WalproposerCluster;

my $shim = ($ENV{WP_BIN_DIR} // 'build') . '/libwp-slow-getaddrinfo.so';
ok(-r $shim, "the resolver shim is built ($shim)") or BAIL_OUT('no resolver shim');

my @sks = WalproposerCluster::start_safekeepers(3, 141);
my @ports = map { $_->{pg_port} } @sks;
my $late = "slow1500-ok.wp-test:$ports[1]";        # resolves after 1.5 s
my $never = "slow600000-fail.wp-test:$ports[2]";   # answers after 10 minutes
my $list = "127.0.0.1:$ports[0],$late,$never";
# verify-ca: the test certificate names 127.0.0.1 and localhost, not the
# made-up names (verify-full is checked against the name below).
my $ca_conninfo = 'sslmode=verify-ca sslrootcert=' . SafekeeperNode::ca_file();

my $t0 = time;
my $primary;
{
    local $ENV{LD_PRELOAD} = $shim;
    $primary = WalproposerCluster::start_primary('primary', \@sks, extra_conf => <<"EOC");
walproposer.safekeepers = '$list'
walproposer.safekeeper_conninfo = '$ca_conninfo'
EOC
}
ok(WalproposerCluster::status_within($primary, "state = 'elected' AND commit_lsn IS NOT NULL", 20),
    sprintf('elected with the name that never resolves in the list (%.1f s after start)', time - $t0));

my %row = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/,
    $primary->safe_psql('postgres', 'SELECT address, state, last_error FROM walproposer_safekeepers');
is($row{$late}[1], 'streaming', 'the safekeeper whose name resolved late streams');

# COMMITs stay fast while the worker retries the name that never answers
# (connect_timeout 2 s, then a new attempt 200 ms later): a loop blocked in
# getaddrinfo would hold every COMMIT for as long as the lookup lasts.
$primary->safe_psql('postgres', 'CREATE TABLE t (id int)');
my ($max, $commits) = (0, 0);
my $until = time + 6;
while (time < $until) {
    my $start = time;
    $primary->safe_psql('postgres', "INSERT INTO t VALUES ($commits)");
    my $took = time - $start;
    $max = $took if $took > $max;
    $commits++;
}
ok($max < 1.0, sprintf('%d COMMITs over 6 s, the slowest took %.3f s', $commits, $max));
is($primary->safe_psql('postgres', 'SELECT count(*) FROM t'), $commits, 'every COMMIT is there');

%row = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/,
    $primary->safe_psql('postgres', 'SELECT address, state, last_error FROM walproposer_safekeepers');
like($row{$never}[2] // '', qr/connection timed out after 2000 ms resolving its host name/,
    'the status view says the never-resolving safekeeper timed out resolving its name');
like(slurp_file($primary->logfile),
    qr/walproposer: safekeeper \Q$never\E: connection timed out after 2000 ms resolving its host name/,
    '... and so does the log');

# Retried attempts join the lookup in flight: one resolver thread, not one
# per attempt (six seconds of retries are at least two attempts).
my $pid = $primary->safe_psql('postgres',
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walproposer'");
my ($threads) = slurp_file("/proc/$pid/status") =~ /^Threads:\s+(\d+)/m;
is($threads, 2, 'the worker runs one resolver thread for the name that never answers');
$primary->stop;

# A name that fails at once gets libpq's kind of message.
{
    local $ENV{LD_PRELOAD} = $shim;
    my $node = $primary;
    my $quick_fail = "slow0-fail.wp-test:$ports[2]";
    my @cmd = (WalproposerCluster::sync_tool(), '--safekeepers', "127.0.0.1:$ports[0],$late,$never",
        '--tenant-id', WalproposerCluster::tenant_id($node), '--timeline-id',
        WalproposerCluster::timeline_id($node), '--timeout', 30, '--json', '--verbose',
        '--conninfo', $ca_conninfo);
    my ($out, $err) = ('', '');
    my $start = time;
    IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(90));
    my $rc = $? >> 8;
    my $took = time - $start;
    is($rc, 0, sprintf('pg_walproposer_sync succeeds with the never-resolving name listed (%.1f s)', $took))
        or diag($err);
    ok($took < 15, '... without waiting for the lookup');

    # verify-full checks the certificate against the name, not the address.
    @cmd = (WalproposerCluster::sync_tool(), '--safekeepers', "$late,$quick_fail",
        '--tenant-id', WalproposerCluster::tenant_id($node), '--timeline-id',
        WalproposerCluster::timeline_id($node), '--timeout', 5, '--verbose',
        '--conninfo', SafekeeperNode::tls_conninfo());
    ($out, $err) = ('', '');
    IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
    isnt($? >> 8, 0, 'a sync that reaches no safekeeper fails');
    like($err, qr/\Q$late\E: .*does not match host name "slow1500-ok\.wp-test"/,
        'verify-full checks the certificate against the safekeeper\'s name');
    like($err, qr/\Q$quick_fail\E: cannot connect: could not translate host name "slow0-fail\.wp-test" to address/,
        'a name that does not resolve is reported as such');
}

$_->stop for @sks;
done_testing();
