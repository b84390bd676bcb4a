# walproposer-cluster, the local cluster tool: init, start, status, stop, replace-safekeeper,
# destroy as a user
# runs them, the standby streaming from the safekeepers, and nothing left
# running afterwards.
use strict;
use warnings;

use File::Path ();

use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use SafekeeperNode;

my $tool = "$ENV{WP_TEST_ROOT}/scripts/walproposer-cluster";
my $dir = PostgreSQL::Test::Utils::tempdir() . '/cluster';
my @args = ('--dir', $dir);
# The safekeeper under test, not whichever one is installed.
$ENV{WP_CLUSTER_SAFEKEEPER} = "$ENV{WP_BIN_DIR}/safekeeper" if $ENV{WP_BIN_DIR};

sub cluster_tool {
    my ($stdout, $stderr);
    my $ok = IPC::Run::run([ $tool, @_ ], '>', \$stdout, '2>', \$stderr);
    return ($ok, $stdout // '', $stderr // '');
}

# Command lines of running processes that mention $dir.
sub processes_of {
    my ($path) = @_;
    my @found;
    for my $cmdline (glob '/proc/[0-9]*/cmdline') {
        open(my $fh, '<', $cmdline) or next;
        local $/;
        my $args = <$fh> // '';
        close $fh;
        $args =~ s/\0/ /g;
        push @found, "$cmdline: $args" if index($args, $path) >= 0;
    }
    return join("\n", @found);
}

# Bad input gets a clear error and changes nothing.
my ($ok, $out, $err) = cluster_tool('init', '--safekeepers', '0', @args);
ok(!$ok && $err =~ /--safekeepers must be a number from 1 to 9/, 'init refuses 0 safekeepers');
ok(!-e $dir, '... and creates nothing');
($ok, $out, $err) = cluster_tool('status', @args);
ok(!$ok && $err =~ /no cluster in \Q$dir\E/, 'status of a missing cluster says so');
($ok, $out, $err) = cluster_tool('frobnicate');
ok(!$ok && $err =~ /unknown command 'frobnicate'/, 'unknown command is refused');

($ok, $out, $err) = cluster_tool('init', '--safekeepers', '3', @args);
ok($ok, 'init') or diag($err);
($ok, $out, $err) = cluster_tool('init', @args);
ok(!$ok && $err =~ /already holds a cluster/, 'a second init refuses to overwrite');

($ok, $out, $err) = cluster_tool('start', @args);
ok($ok, 'start: safekeepers, primary, standby') or diag("$out\n$err");

my %conf = map { /^(\w+)=(.*)$/ ? ($1 => $2) : () } split /\n/, slurp_file("$dir/cluster.conf");
my @psql = ('psql', '-XAtq', '-h', "$dir/run", '-U', 'postgres', '-d', 'postgres');
# pg1 is the first primary, pg2 the standby (DIR/cluster.state).
sub primary_sql { my $r = `@psql -p $conf{PG_PORT_pg1} -c "$_[0]"`; chomp $r; return $r; }
sub standby_sql { my $r = `@psql -p $conf{PG_PORT_pg2} -c "$_[0]"`; chomp $r; return $r; }

primary_sql('CREATE TABLE demo AS SELECT g FROM generate_series(1, 1000) g');
my $lsn = primary_sql('SELECT pg_current_wal_flush_lsn()');
ok(SafekeeperNode::poll_until(sub { standby_sql("SELECT pg_last_wal_replay_lsn() >= '$lsn'") eq 't' }, 60),
    'the standby replays what the primary committed');
is(standby_sql('SELECT count(*) FROM demo'), '1000', 'the standby has the rows');

# status: three safekeepers up with the same commit LSN, a streaming standby.
my $status;
ok( SafekeeperNode::poll_until(
        sub {
            ($ok, $status) = cluster_tool('status', @args);
            my @commits = map { (split ' ')[5] } grep { /^\s+\d+\s+127\.0\.0\.1:\d+\s+up\s/ } split /\n/, $status;
            my %distinct = map { $_ => 1 } @commits;
            return @commits == 3 && keys(%distinct) == 1;
        },
        30),
    'status shows 3 safekeepers up with equal commit LSN')
  or diag($status);
like($status, qr/^primary .*running\s+walproposer: elected/m, 'status shows the elected primary');
like($status, qr/^standby .*running\s+streaming from 127\.0\.0\.1:\d+/m, 'status shows the standby streaming from a safekeeper');

# The cluster runs with authentication and TLS on, and its clients verify
# the certificate (the primary was elected and the standby streams, above).
my $sk1_log = slurp_file("$dir/logs/sk1.log");
like($sk1_log, qr/clients authenticate with SCRAM-SHA-256: 3 roles/, 'safekeepers authenticate with SCRAM');
like($sk1_log, qr/TLS on both ports .*clients must use it/, 'and require TLS');
like(primary_sql('SHOW walproposer.safekeeper_conninfo'), qr/user=walproposer passfile=\S+ sslmode=verify-full sslrootcert=/,
    'the primary verifies the safekeepers\' certificate');
like(standby_sql('SELECT conninfo FROM pg_stat_wal_receiver'), qr/user=replica .*sslmode=verify-full/,
    'so does the standby');
my $probe = HTTP::Tiny->new(timeout => 10, verify_SSL => 1, SSL_options => { SSL_ca_file => "$dir/auth/ca.crt" })
  ->get("https://127.0.0.1:$conf{SK_HTTP_PORT_1}/v1/status");
is($probe->{status}, 401, 'the HTTP API (HTTPS) refuses a request without credentials');

($ok, $out, $err) = cluster_tool('stop', @args);
ok($ok, 'stop') or diag($err);
is(processes_of($dir), '', 'nothing of the cluster is left running');
($ok, $out, $err) = cluster_tool('start', @args);
ok($ok, 'start again after stop') or diag("$out\n$err");
# replace-safekeeper: safekeeper 2 is killed and its directory deleted; it is
# replaced by a new one (id 4, new ports), which then counts for the quorum.
like(primary_sql('SELECT generation FROM walproposer_status'), qr/^1$/,
    'walproposer-cluster runs a membership configuration (generation 1)');
my $sk2_pid = slurp_file("$dir/run/sk2.pid");
chomp $sk2_pid;
kill 'KILL', $sk2_pid;
File::Path::rmtree("$dir/sk2");
($ok, $out, $err) = cluster_tool('replace-safekeeper', '2', @args);
ok($ok, 'replace-safekeeper 2') or diag("$out\n$err");
like($out, qr/safekeeper 2 replaced by safekeeper 4 .* configuration generation 3/, 'it says what it did');
is(primary_sql('SELECT members FROM walproposer_status'),
    '{' . join(',', map { my $i = $_; "$i=127.0.0.1:" . (map { /^SK_PG_PORT_$i=(\d+)$/ ? $1 : () } split /\n/, slurp_file("$dir/cluster.conf"))[-1] } 1, 3, 4) . '}',
    'the primary runs {1, 3, 4}');
($ok, $status) = cluster_tool('status', @args);
like($status, qr/^\s+4\s+127\.0\.0\.1:\d+\s+up\s/m, 'status lists safekeeper 4 up');
unlike($status, qr/^\s+2\s+127\.0\.0\.1/m, 'and no longer safekeeper 2');
my $sk1_pid = slurp_file("$dir/run/sk1.pid");
chomp $sk1_pid;
kill 'TERM', $sk1_pid;
ok(SafekeeperNode::poll_until(sub { !kill(0, $sk1_pid) }, 30), 'safekeeper 1 stopped');
is(primary_sql("INSERT INTO demo VALUES (1001) RETURNING g"), '1001',
    'a COMMIT returns with safekeepers 3 and 4 (the new one counts)');
($ok, $out, $err) = cluster_tool('replace-safekeeper', '2', @args);
ok(!$ok && $err =~ /safekeeper 2 is not one of this cluster's safekeepers/, 'a retired safekeeper cannot be replaced again');
($ok, $out, $err) = cluster_tool('start', @args);
ok($ok, 'start brings safekeeper 1 back') or diag("$out\n$err");

($ok, $out, $err) = cluster_tool('destroy', @args);
ok($ok, 'destroy') or diag($err);
ok(!-e $dir, 'destroy removed the directory');
is(processes_of($dir), '', 'nothing is left running after destroy');

done_testing();
