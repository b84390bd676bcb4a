# Slow and stalled clients on a safekeeper's PostgreSQL-protocol port
# (docs/safekeeper.md, "Connections"): 200 connections that send half a
# startup packet and stall, plus one that stops inside a query, do not stop
# the primary's COMMITs, and each is closed after its time limit with the
# reason in the safekeeper's log.
use strict;
use warnings;

use IO::Socket::INET;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use SafekeeperNode;
use WalproposerCluster;

my @sks = map {
    # The raw clients below speak plain protocol without a password: trust,
    # TLS offered but not required (the primary still uses it).
    SafekeeperNode->new("sk$_", id => $_, auth => 'trust', require_tls => 0,
        extra => [ '--startup-timeout-ms=3000', '--message-timeout-ms=3000' ])->start
} 111 .. 113;
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int)');

# 200 stalled clients on each safekeeper: half a startup packet each.
my @stalled;
for my $sk (@sks) {
    for (1 .. 200) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sk->pg_port, Proto => 'tcp')
          or die "connect: $!";
        syswrite($s, pack('N', 40));
        push @stalled, $s;
    }
}
# One that completed its startup and then sends part of a query.
my $partial = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sks[0]->pg_port, Proto => 'tcp')
  or die "connect: $!";
my $params = "user\0postgres\0\0";
syswrite($partial, pack('NN', 8 + length($params), 196608) . $params);
my $buf = '';
while ($buf !~ /Z\0\0\0\x05I/) {
    my $n = sysread($partial, my $chunk, 4096);
    last unless $n;
    $buf .= $chunk;
}
like($buf, qr/Z\0\0\0\x05I/, 'the partial client completed its startup');
syswrite($partial, "Q\0\0\0\x64SEL");
my $began = Time::HiRes::time();

# COMMITs go on meanwhile.
my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'pgbench', '-i', '-s', '1', '-q', '-h', $primary->host, '-p', $primary->port, 'postgres' ],
        '>', \$out, '2>', \$err, WalproposerCluster::timer('pgbench -i')), 'pgbench -i') or diag($err);
ok(IPC::Run::run([ 'pgbench', '-n', '-N', '-c', '2', '-T', '3', '-h', $primary->host, '-p', $primary->port,
            'postgres' ], '>', \$out, '2>', \$err, WalproposerCluster::timer('pgbench')),
    'pgbench runs while 600 clients stall on the safekeepers') or diag($err);
my ($tps) = $out =~ /number of transactions actually processed: (\d+)/;
cmp_ok($tps // 0, '>', 50, 'and commits (' . ($tps // 0) . ' transactions in 3 s)');

# Every stalled client is closed after the limit (3 s): its read sees EOF.
my $closed = 0;
for my $s (@stalled) {
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    my $left = 30 - (Time::HiRes::time() - $began);
    next if $left <= 0;
    next unless select(my $rout = $rin, undef, undef, $left);
    my $n = sysread($s, my $chunk, 4096);
    # An ErrorResponse first, then EOF; or EOF at once.
    $n = sysread($s, $chunk, 4096) while $n;
    ++$closed;
}
is($closed, 600, 'all 600 stalled clients were closed');
my $rin = '';
vec($rin, fileno($partial), 1) = 1;
my $reply = '';
if (select(my $rout = $rin, undef, undef, 30)) {
    sysread($partial, $reply, 4096);
}
like($reply, qr/^E.*time limit/s, 'the partial query gets an error naming the time limit');
cmp_ok(Time::HiRes::time() - $began, '<', 30, 'within the limit and some slack');
like(slurp_file($sks[0]->log_file), qr/did not complete its startup packet within the time limit/,
    'the safekeeper logs why it closed them');
ok((grep { $_->is_running } @sks) == 3, 'every safekeeper still runs');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
pass('a COMMIT returns afterwards');

$_->close for @stalled, $partial;
$primary->stop;
$_->stop for @sks;
done_testing();
