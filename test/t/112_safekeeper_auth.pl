# Authentication and TLS on both safekeeper ports (docs/security.md):
# SCRAM-SHA-256 against a roles file on the PostgreSQL-protocol port, HTTP
# Basic with the same roles on the API, TLS on both (required on the
# PostgreSQL port; the proposer and the standby verify the certificate with
# sslmode=verify-full).
#
# The real proposer (the walproposer worker, role walproposer: push) and a
# stock standby (role replica: read) authenticate with ordinary libpq
# settings (PGPASSFILE; user= in primary_conninfo) and work. A client without
# credentials, with a wrong password, or with a role that may only read
# cannot push WAL or change a term: pg_walproposer_sync, a real proposer that
# raises the term when it is let in, is run as each of them and the term on
# every safekeeper is unchanged afterwards (and, as the control at the end,
# the same tool with the push role does raise it). A reader of another tenant
# cannot read this one. The HTTP API refuses an unauthenticated DELETE (401)
# and a reader's (403); the timeline is still there. SIGHUP re-reads the
# roles file; a broken file keeps the old roles.
use strict;
use warnings;

use IPC::Run ();
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

my $auth = SafekeeperNode::auth_setup();
my $roles_file = "$PostgreSQL::Test::Utils::tmp_check/roles_112";
my $other_tenant = 'fedcba9876543210fedcba9876543210';
my $other_password = 'other-reader-password';
my $base_roles = PostgreSQL::Test::Utils::slurp_file("$auth/roles");
PostgreSQL::Test::Utils::append_to_file($roles_file,
        $base_roles
      . "other_reader read $other_tenant "
      . SafekeeperNode::hash_password($other_password) . "\n");

my @sks = map { SafekeeperNode->new("sk$_", id => $_, roles_file => $roles_file)->start } 1 .. 3;
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected'",
    'the worker authenticates as walproposer (password from PGPASSFILE) and is elected');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO t SELECT generate_series(1, 1000)');
pass('COMMITs return through the authenticated quorum');

# A stock standby, role replica (read), streams from the safekeepers.
$primary->backup('b');
my $standby = WalproposerCluster::make_sk_standby($primary, 'b', 'standby', \@sks);
$standby->start;
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
WalproposerCluster::wait_for_status($primary, "commit_lsn >= '$lsn'", 'committed');
ok(WalproposerCluster::wait_replayed($standby, $lsn),
    'a standby with user=replica in primary_conninfo streams from the safekeepers');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM t'), '1000', 'and has every row');
my ($t, $l) = (WalproposerCluster::tenant_id($primary), WalproposerCluster::timeline_id($primary));

# A second standby configured only from walproposer_standby_conninfo()
# (password from PGPASSFILE, as any libpq client).
my $generated = $primary->safe_psql('postgres', "SELECT walproposer_standby_conninfo('replica')");
like($generated, qr/^host=127\.0\.0\.1,127\.0\.0\.1,127\.0\.0\.1 port=\d+,\d+,\d+ user=replica sslmode=verify-full sslrootcert=\S+ options='-c tenant_id=$t -c timeline_id=$l'$/,
    "walproposer_standby_conninfo('replica'): $generated");
my $standby2 = WalproposerCluster::make_sk_standby($primary, 'b', 'standby2', \@sks, conninfo => $generated);
$standby2->start;
ok(WalproposerCluster::wait_replayed($standby2, $lsn), '  and a standby configured only with it streams from the safekeepers');
$standby2->stop('fast');
$primary->safe_psql('postgres', 'CREATE ROLE wp_nobody');
my (undef, undef, $fn_err) =
  $primary->psql('postgres', 'SET ROLE wp_nobody; SELECT walproposer_standby_conninfo()');
like($fn_err, qr/permission denied for function walproposer_standby_conninfo/, '  only for superusers');
# Its hot-standby feedback (which holds back the primary's xmin) is shown
# with the role that sent it.
ok(SafekeeperNode::poll_until(sub {
            grep {
                my $tl = WalproposerCluster::sk_timeline($_, $primary);
                grep { ($_->{role} // '') eq 'replica' && defined $_->{hs_xmin} } @{ $tl->{consumers} };
            } @sks;
        }),
    "the safekeeper's status shows the standby's hot-standby feedback and its role");

my %term_before = map { $_->name => WalproposerCluster::sk_timeline($_, $primary)->{term} } @sks;

# psql against a safekeeper: returns (rc, stdout, stderr).
sub sk_psql {
    my ($sk, $user, $sql, %env) = @_;
    my $tls = delete $env{tls} // SafekeeperNode::tls_conninfo();
    my $conninfo = "host=127.0.0.1 port=" . $sk->pg_port . " user=$user dbname=x $tls "
      . "options='-c tenant_id=" . ($env{tenant} // $t) . " -c timeline_id=$l'";
    delete $env{tenant};
    local %ENV = (%ENV, %env);
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'psql', '-XAt', '-d', $conninfo, '-c', $sql ], '<', \undef, '>', \$out,
        '2>', \$err, WalproposerCluster::timer('psql to a safekeeper'));
    chomp $out;
    return ($? >> 8, $out, $err);
}

# 1. The PostgreSQL-protocol port.
# TLS: required, and the certificate verifies (sslmode=verify-full above);
# one of another CA does not.
my ($rc, $out, $err) = sk_psql($sks[0], 'replica', 'SHOW safekeeper_node_id', tls => 'sslmode=disable');
like($err, qr/FATAL:  this safekeeper accepts only TLS connections/, 'a client without TLS is refused');
my $other_ca = "$PostgreSQL::Test::Utils::tmp_check/other_ca";
mkdir $other_ca;
SafekeeperNode::make_certificates($other_ca);
($rc, $out, $err) = sk_psql($sks[0], 'replica', 'SHOW safekeeper_node_id',
    tls => "sslmode=verify-full sslrootcert=$other_ca/ca.crt");
like($err, qr/certificate verify failed/, 'verify-full against another CA fails');
($rc, $out, $err) = sk_psql($sks[0], 'replica', 'SHOW safekeeper_node_id');
is($out, '1', 'verify-full against the safekeepers\' CA works') or diag($err);
like($standby->safe_psql('postgres', 'SELECT conninfo FROM pg_stat_wal_receiver'), qr/sslmode=verify-full/,
    'the standby streams with sslmode=verify-full');
($rc, $out, $err) = sk_psql($sks[0], 'replica', 'SHOW safekeeper_node_id', PGPASSFILE => '/dev/null');
isnt($rc, 0, 'no password: refused');
like($err, qr/no password supplied|password authentication failed/, "  ($err)");
($rc, $out, $err) = sk_psql($sks[0], 'replica', 'SHOW safekeeper_node_id', PGPASSWORD => 'wrong');
like($err, qr/FATAL:  password authentication failed for user "replica"/,
    'a wrong password: FATAL password authentication failed');
($rc, $out, $err) = sk_psql($sks[0], 'mallory', 'SHOW safekeeper_node_id', PGPASSWORD => 'x');
like($err, qr/FATAL:  password authentication failed for user "mallory"/,
    'an unknown role looks the same to the client');
ok($sks[0]->{log_file} && PostgreSQL::Test::Utils::slurp_file($sks[0]->log_file)
      =~ /password authentication failed for user "mallory": role "mallory" does not exist/,
    'the safekeeper log says why');
($rc, $out, $err) = sk_psql($sks[0], 'replica', 'START_WAL_PUSH');
like($err, qr/permission denied: role "replica" may not push WAL/,
    'a read-only role cannot START_WAL_PUSH');
($rc, $out, $err) = sk_psql($sks[0], 'walproposer', 'IDENTIFY_SYSTEM');
like($err, qr/permission denied: role "walproposer" may not read WAL/,
    'the push role cannot read WAL');
($rc, $out, $err) = sk_psql($sks[0], 'replica', 'IDENTIFY_SYSTEM');
is($rc, 0, 'the read role runs IDENTIFY_SYSTEM') or diag($err);
($rc, $out, $err) = sk_psql($sks[0], 'other_reader', 'IDENTIFY_SYSTEM', PGPASSWORD => $other_password);
like($err, qr/FATAL:  role "other_reader" may not access tenant $t/,
    'a reader of another tenant cannot read this one');
($rc, $out, $err) = sk_psql($sks[0], 'other_reader', 'SHOW safekeeper_node_id',
    PGPASSWORD => $other_password, tenant => $other_tenant);
is($out, '1', 'but connects for its own tenant') or diag($err);

# pg_receivewal as the reader of another tenant gets nothing.
my $recv_dir = "$PostgreSQL::Test::Utils::tmp_check/recv_other";
mkdir $recv_dir;
{
    local $ENV{PGPASSWORD} = $other_password;
    my $conn = "host=127.0.0.1 port=" . $sks[1]->pg_port
      . " user=other_reader options='-c tenant_id=$t -c timeline_id=$l'";
    my ($o, $e) = ('', '');
    IPC::Run::run([ 'pg_receivewal', '-D', $recv_dir, '-d', $conn, '--no-loop' ], '>', \$o,
        '2>', \$e, WalproposerCluster::timer('pg_receivewal'));
    isnt($? >> 8, 0, 'pg_receivewal as a reader of another tenant fails');
    like($e, qr/may not access tenant/, "  ($e)");
    opendir(my $d, $recv_dir);
    is(scalar(grep { !/^\./ } readdir $d), 0, '  and received no WAL');
}

# A real proposer as each of the refused clients: pg_walproposer_sync would
# raise the term on every safekeeper it is let into.
for my $case ([ 'no password', PGPASSFILE => '/dev/null' ],
    [ 'a wrong password', PGPASSWORD => 'wrong', PGPASSFILE => '/dev/null' ])
{
    my ($what, %env) = @$case;
    local %ENV = (%ENV, %env);
    my $r = WalproposerCluster::run_sync(\@sks, $primary, timeout => 3);
    isnt($r->{rc}, 0, "pg_walproposer_sync with $what fails");
    like($r->{err}, qr/password/, "  and says why");
}
{
    my $r = WalproposerCluster::run_sync(\@sks, $primary, timeout => 3,
        conninfo => 'user=replica ' . SafekeeperNode::tls_conninfo());
    isnt($r->{rc}, 0, 'pg_walproposer_sync as the read-only role fails');
    like($r->{err}, qr/may not push WAL/, '  and says why');
}
for my $sk (@sks) {
    is(WalproposerCluster::sk_timeline($sk, $primary)->{term}, $term_before{ $sk->name },
        $sk->name . ': the term is unchanged after the refused proposers');
}
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1001)');
pass('the primary still commits');

# 2. The HTTP API.
my $path = "/v1/tenant/$t/timeline/$l";
my $resp = $sks[2]->http('DELETE', $path, 'none');
is($resp->{status}, 401, 'DELETE without credentials: 401');
like($resp->{headers}{'www-authenticate'} // '', qr/^Basic realm="safekeeper"/, '  with a Basic challenge');
$resp = $sks[2]->http('DELETE', $path, [ 'admin', 'wrong' ]);
is($resp->{status}, 401, 'DELETE with a wrong password: 401');
$resp = $sks[2]->http('DELETE', $path, [ 'replica', $SafekeeperNode::PASSWORD{replica} ]);
is($resp->{status}, 403, 'DELETE by a read-only role: 403');
is($sks[2]->http('GET', '/v1/status', 'none')->{status}, 401, 'GET /v1/status without credentials: 401');
is($sks[2]->http('GET', $path, [ 'other_reader', $other_password ])->{status}, 403,
    "GET of another tenant's timeline: 403");
is($sks[2]->http('GET', $path, [ 'replica', $SafekeeperNode::PASSWORD{replica} ])->{status}, 200,
    'GET by the read role: 200');
ok(defined WalproposerCluster::sk_timeline($sks[2], $primary), 'the timeline is still there');
my $listed = JSON::PP::decode_json(
    $sks[2]->http('GET', '/v1/timelines', [ 'replica', $SafekeeperNode::PASSWORD{replica} ])->{content});
is(scalar(grep { $_->{tenant_id} eq $t && $_->{timeline_id} eq $l } @{ $listed->{timelines} }), 1,
    'GET /v1/timelines lists the timeline to a reader of its tenant');
$listed = JSON::PP::decode_json(
    $sks[2]->http('GET', '/v1/timelines', [ 'other_reader', $other_password ])->{content});
is(scalar(@{ $listed->{timelines} }), 0, '  and nothing to a reader of another tenant');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1002)');
pass('and the primary still commits');

# 3. SIGHUP re-reads the roles file; a broken file keeps the old roles.
PostgreSQL::Test::Utils::append_to_file($roles_file,
    "late read * " . SafekeeperNode::hash_password('late-password') . "\n");
kill 'HUP', $sks[0]->pid;
ok(SafekeeperNode::poll_until(sub { slurp_file($sks[0]->log_file) =~ /reloaded 6 roles/ }),
    'SIGHUP reloads the roles file');
($rc, $out, $err) = sk_psql($sks[0], 'late', 'SHOW safekeeper_node_id', PGPASSWORD => 'late-password');
is($out, '1', 'a role added before the SIGHUP logs in') or diag($err);
PostgreSQL::Test::Utils::append_to_file($roles_file, "broken line\n");
kill 'HUP', $sks[0]->pid;
ok(SafekeeperNode::poll_until(sub { slurp_file($sks[0]->log_file) =~ /roles file not reloaded, the previous roles stay: .*roles_112:\d+: expected 4 fields/ }),
    'a broken roles file is refused on SIGHUP, naming the line');
($rc, $out, $err) = sk_psql($sks[0], 'late', 'SHOW safekeeper_node_id', PGPASSWORD => 'late-password');
is($out, '1', 'the previous roles stay in force') or diag($err);
ok($sks[0]->is_running, 'the safekeeper kept running');

# 4. Start-up: scram without a roles file is refused; trust beyond loopback warns.
my $stray = SafekeeperNode->new('stray', id => 9);
($out, $err) = ('', '');
IPC::Run::run([ SafekeeperNode::binary(), '-D', $stray->data_dir, '--id', '9' ], '>', \$out, '2>', \$err,
    WalproposerCluster::timer('safekeeper without roles'));
is($? >> 8, 2, 'no --roles-file and no --auth trust: exit 2');
like($err, qr/--roles-file is required with --auth scram/, "  ($err)");
my $open_log = '';
my $open = IPC::Run::start(
    [ SafekeeperNode::binary(), '-D', "$PostgreSQL::Test::Utils::tmp_check/sk_open", '--id', '8',
        '--auth', 'trust', '--listen-pg', '127.0.0.1:' . PostgreSQL::Test::Cluster::get_free_port(),
        '--listen-http', '0.0.0.0:' . PostgreSQL::Test::Cluster::get_free_port() ],
    '>', \$open_log, '2>&1', WalproposerCluster::timer('safekeeper with --auth trust'));
ok(SafekeeperNode::poll_until(sub { $open->pump_nb; $open_log =~ /authentication is off/i }), "a safekeeper with --auth trust on 0.0.0.0 starts");
like($open_log, qr/AUTHENTICATION IS OFF \(--auth trust\) and a port listens beyond loopback/,
    '  and logs a loud warning');
$open->signal('TERM');
$open->finish;

# 5. The control: the same tool with the push role is let in and raises the
# term (so the checks above would have seen a change).
my $r = WalproposerCluster::run_sync(\@sks, $primary, timeout => 30);
is($r->{rc}, 0, 'pg_walproposer_sync as walproposer (push) runs') or diag($r->{err});
cmp_ok(WalproposerCluster::sk_timeline($sks[0], $primary)->{term}, '>', $term_before{sk1},
    'and raises the term');

$standby->stop('immediate');
$primary->stop('immediate');
done_testing();
