# The safekeeper's command line: --help and --version, a clear message and a
# non-zero exit for bad flags, an unusable data directory, a directory
# already in use and a port already in use; SIGTERM and SIGINT shut a
# running daemon down cleanly (exit 0), with a proposer connected too.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my $bin = SafekeeperNode::binary();
my $tmp = PostgreSQL::Test::Utils::tempdir('sk_cli');

# Runs the binary with @args (bounded by a timeout: a command that should
# fail must not start serving); returns (exit code, stdout, stderr).
# Authentication is off (--auth trust) unless the arguments name a roles
# file or an --auth of their own.
sub run_sk {
    my @args = @_;
    push @args, '--auth', 'trust'
      if (grep { $_ eq '-D' } @args) && !(grep { /^--(auth|roles-file)/ } @args);
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start([ $bin, @args ], '>', \$out, '2>', \$err,
        IPC::Run::timeout(30));
    eval { $h->finish; };
    if ($@) {
        $h->kill_kill;
        return (-1, $out, "timed out: $@ $err");
    }
    return ($h->result(0), $out, $err);
}

sub free_addr { '127.0.0.1:' . PostgreSQL::Test::Cluster::get_free_port() }

# --help / --version
my ($rc, $out, $err) = run_sk('--help');
is($rc, 0, '--help exits 0');
like($out, qr/--listen-pg.*--listen-http/s, '--help lists the listen flags');
like($out, qr/127\.0\.0\.1:5454/, '--help shows the default PostgreSQL-protocol address');
($rc, $out) = run_sk('--version');
is($rc, 0, '--version exits 0');
like($out, qr/^safekeeper \(walproposer\) \d+\.\d+\.\d+$/m, '--version prints the version');

# Bad flags: exit 2 with a message naming the problem.
my @bad = (
    [ [ '-D', "$tmp/x", '--id', '1', '--no-such-flag' ], qr/--no-such-flag/, 'an unknown flag' ],
    [ [ '--id', '1' ], qr/--datadir is required/, 'a missing -D' ],
    [ [ '-D', "$tmp/x" ], qr/--id is required/, 'a missing --id' ],
    [ [ '-D', "$tmp/x", '--id', '0' ], qr/--id.*not in range/, '--id 0' ],
    [ [ '-D', "$tmp/x", '--id', 'abc' ], qr/--id/, 'a non-numeric --id' ],
    [ [ '-D', "$tmp/x", '--id', '1', '--listen-pg', 'nohost' ], qr/--listen-pg: expected HOST:PORT/,
        'a --listen-pg without a port' ],
    [ [ '-D', "$tmp/x", '--id', '1', '--listen-http', '127.0.0.1:99999' ],
        qr/--listen-http: port out of range/, 'a --listen-http port out of range' ],
    [ [ '-D', "$tmp/x", '--id', '1', '--log-level', 'loud' ], qr/--log-level/, 'an unknown log level' ],
);
# Authentication settings.
PostgreSQL::Test::Utils::append_to_file("$tmp/bad_roles",
    "# comment\nops admin * " . SafekeeperNode::hash_password('pw') . "\nbob write * x\n");
push @bad,
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'scram' ],
    qr/--roles-file is required with --auth scram/, 'scram without a roles file' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--roles-file', "$tmp/none" ],
    qr/cannot read roles file .*none: No such file/, 'a missing roles file' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--roles-file', "$tmp/bad_roles" ],
    qr/bad_roles:3: unknown permission "write"/, 'a roles file with a bad line' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'none' ], qr/--auth/, 'an unknown --auth' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'trust', '--peer-user', 'r' ],
    qr/--peer-user needs --peer-password-file/, '--peer-user without a password file' ];
# TLS settings: pairs, files that are not PEM, a key of another certificate.
mkdir "$tmp/tls_a";
mkdir "$tmp/tls_b";
SafekeeperNode::make_certificates("$tmp/tls_a");
SafekeeperNode::make_certificates("$tmp/tls_b");
push @bad,
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'trust', '--tls-cert', "$tmp/tls_a/server.crt" ],
    qr/--tls-cert and --tls-key go together/, '--tls-cert without --tls-key' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'trust', '--require-tls' ],
    qr/--require-tls needs --tls-cert and --tls-key/, '--require-tls without a certificate' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'trust', '--tls-cert', "$tmp/bad_roles",
        '--tls-key', "$tmp/tls_a/server.key" ],
    qr/holds no PEM certificate/, 'a certificate file that is not PEM' ],
  [ [ '-D', "$tmp/x", '--id', '1', '--auth', 'trust', '--tls-cert', "$tmp/tls_a/server.crt",
        '--tls-key', "$tmp/tls_b/server.key" ],
    qr/does not belong to the certificate/, 'a key of another certificate' ];
for my $case (@bad) {
    my ($args, $re, $what) = @$case;
    ($rc, $out, $err) = run_sk(@$args);
    is($rc, 2, "$what: exit 2");
    like($err, $re, "$what: the message says why");
}

# --config: flags from a file; a misspelt name is refused; SIGHUP applies
# its log-level again.
PostgreSQL::Test::Utils::append_to_file("$tmp/typo.conf", "log-levle = \"debug\"\n");
($rc, $out, $err) = run_sk('-D', "$tmp/x", '--id', '1', '--config', "$tmp/typo.conf");
is($rc, 2, 'a --config file with an unknown name: exit 2');
like($err, qr/log-levle/, '  naming it');
{
    my $conf = "$tmp/sk.conf";
    my $write = sub {
        open my $fh, '>', $conf or die "write $conf: $!";
        print $fh @_;
        close $fh;
    };
    $write->("log-level = \"info\"\nauth = \"trust\"\n");
    my $log = '';
    my $h = IPC::Run::start([ $bin, '-D', "$tmp/configured", '--id', '1', '--config', $conf,
            '--listen-pg', free_addr(), '--listen-http', free_addr() ],
        '>', \$log, '2>&1', IPC::Run::timeout(60));
    ok(SafekeeperNode::poll_until(sub { $h->pump_nb; $log =~ /authentication is off/ }, 30),
        'a safekeeper configured by --config starts (auth = "trust" from the file)');
    $write->("log-level = \"debug\"\nauth = \"trust\"\n");
    $h->signal('HUP');
    ok(SafekeeperNode::poll_until(sub { $h->pump_nb; $log =~ /received SIGHUP: log level debug \(from / }, 30),
        'SIGHUP applies the new log-level');
    $write->("log-level = \"loud\"\n");
    $h->signal('HUP');
    ok(SafekeeperNode::poll_until(sub { $h->pump_nb; $log =~ /not re-read: .*loud not in/ }, 30),
        'a bad log-level is refused, logged');
    $h->signal('TERM');
    $h->finish;
    is($h->result(0), 0, 'the daemon kept running and stops cleanly');
}

# Unusable data directories: exit 1 with the reason, nothing started.
PostgreSQL::Test::Utils::append_to_file("$tmp/a_file", "not a directory\n");
($rc, $out, $err) = run_sk('-D', "$tmp/a_file", '--id', '1', '--listen-pg', free_addr(),
    '--listen-http', free_addr());
is($rc, 1, 'a data directory that is a file: exit 1');
like("$out$err", qr/data directory .*a_file is not a directory/, 'a file as -D: clear message');

($rc, $out, $err) = run_sk('-D', "$tmp/a_file/sub", '--id', '1', '--listen-pg', free_addr(),
    '--listen-http', free_addr());
is($rc, 1, 'a data directory that cannot be created: exit 1');
like("$out$err", qr/cannot create data directory .*Not a directory/,
    'an uncreatable -D: clear message');

SKIP: {
    # root can write anywhere; the runner runs TAP tests as an ordinary user.
    skip 'running as root: permissions are not enforced', 2 if $> == 0;
    mkdir "$tmp/readonly" or die "mkdir: $!";
    chmod 0500, "$tmp/readonly";
    ($rc, $out, $err) = run_sk('-D', "$tmp/readonly", '--id', '1', '--listen-pg', free_addr(),
        '--listen-http', free_addr());
    is($rc, 1, 'a read-only data directory: exit 1');
    like("$out$err", qr/data directory .*readonly is not writable/, 'a read-only -D: clear message');
}

# A running daemon: its directory and its ports are in use.
my $sk = SafekeeperNode->new('cli', id => 1);
$sk->start;
($rc, $out, $err) = run_sk('-D', $sk->data_dir, '--id', '2', '--listen-pg', free_addr(),
    '--listen-http', free_addr());
is($rc, 1, 'a data directory in use by another daemon: exit 1');
like("$out$err", qr/is in use by another safekeeper/, 'directory in use: clear message');

($rc, $out, $err) = run_sk('-D', "$tmp/other1", '--id', '2', '--listen-pg', $sk->address,
    '--listen-http', free_addr());
is($rc, 1, 'a PostgreSQL-protocol port in use: exit 1');
like("$out$err", qr/--listen-pg .*Address already in use/, 'PostgreSQL port in use: clear message');

($rc, $out, $err) = run_sk('-D', "$tmp/other2", '--id', '2', '--listen-pg', free_addr(),
    '--listen-http', '127.0.0.1:' . $sk->http_port);
is($rc, 1, 'an HTTP port in use: exit 1');
like("$out$err", qr/--listen-http .*address in use/, 'HTTP port in use: clear message');
ok($sk->is_running, 'the running daemon is unaffected');

# SIGTERM of an idle daemon: exit 0, logged.
my $status = $sk->stop;
is($status, 0, 'SIGTERM: exit status 0');
like(slurp_file($sk->log_file), qr/received SIGTERM, shutting down.*shutdown complete/s,
    'SIGTERM: shutdown is logged');

# SIGINT with a primary streaming to it (one safekeeper, quorum 1): exit 0,
# and a restart comes back with at least the flush LSN seen before.
$sk->start;
my $primary = WalproposerCluster::start_primary('primary', [$sk]);
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'elected with one safekeeper');
$primary->safe_psql('postgres', 'CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g');
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_for_sk_flush($sk, $primary, $lsn), 'the safekeeper has the WAL');
my $flush_before = WalproposerCluster::sk_timeline($sk, $primary)->{flush_lsn};
kill 'INT', $sk->pid;
$status = $sk->_reap;
is($status, 0, 'SIGINT with a connected proposer: exit status 0');
like(slurp_file($sk->log_file), qr/received SIGINT, shutting down.*shutdown complete/s,
    'SIGINT: shutdown is logged');
$sk->start;
my $tl = WalproposerCluster::sk_timeline($sk, $primary);
ok(WalproposerCluster::lsn_to_int($tl->{flush_lsn}) >= WalproposerCluster::lsn_to_int($flush_before),
    "after the restart flush_lsn $tl->{flush_lsn} >= $flush_before");
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (0)');
pass('the primary commits again after the safekeeper restart');

$primary->stop;
is($sk->stop, 0, 'final SIGTERM: exit 0');
done_testing();
