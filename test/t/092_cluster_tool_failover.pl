# walproposer-cluster failover, rejoin and switchover on a local cluster: the primary is
# killed with SIGKILL under continuous commits and `walproposer-cluster failover` promotes
# the standby (every acknowledged row survives, the old primary is fenced);
# `walproposer-cluster rejoin` makes the old primary the standby of the new timeline; two
# switchovers under pgbench lose nothing and leave the old primary streaming
# as the standby; stop, start, status, env and destroy follow the roles.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SafekeeperNode;
use WalproposerCluster;

my $tool = "$ENV{WP_TEST_ROOT}/scripts/walproposer-cluster";
my $dir = PostgreSQL::Test::Utils::tempdir() . '/cluster';
my @args = ('--dir', $dir);
# The binaries under test, not whichever ones are installed.
if ($ENV{WP_BIN_DIR}) {
    $ENV{WP_CLUSTER_SAFEKEEPER} = "$ENV{WP_BIN_DIR}/safekeeper";
    $ENV{WP_CLUSTER_SYNC} = "$ENV{WP_BIN_DIR}/pg_walproposer_sync"
      if -x "$ENV{WP_BIN_DIR}/pg_walproposer_sync";
}

sub cluster_tool {
    my ($stdout, $stderr) = ('', '');
    my $ok = IPC::Run::run([ $tool, @_ ], '>', \$stdout, '2>', \$stderr,
        IPC::Run::timeout(300));
    return ($ok, $stdout, $stderr);
}

sub read_vars {
    my ($file) = @_;
    my %v;
    for (split /\n/, slurp_file($file)) {
        next unless /^(\w+)=(.*)$/;
        my ($k, $val) = ($1, $2);
        $val =~ s/^'(.*)'$/$1/;
        $val = '' if $val eq "''";
        $v{$k} = $val;
    }
    return \%v;
}
sub state { return read_vars("$dir/cluster.state"); }

# A node of the walproposer-cluster cluster, with the few methods the helpers use.
package WpctlNode {
    sub new { my ($c, $name, $port, $dir) = @_; bless { name => $name, port => $port, dir => $dir }, $c }
    sub name     { $_[0]{name} }
    sub host     { "$_[0]{dir}/run" }
    sub port     { $_[0]{port} }
    sub data_dir { "$_[0]{dir}/$_[0]{name}" }
    sub psql {
        my ($self, $db, $sql, %p) = @_;
        my ($out, $err) = ('', '');
        IPC::Run::run([ 'psql', '-XAtq', '-h', $self->host, '-p', $self->port, '-d', $db, '-c', $sql ],
            '>', \$out, '2>', \$err, IPC::Run::timeout(60));
        my $rc = $? >> 8;
        chomp $out;
        ${ $p{stdout} } = $out if $p{stdout};
        return $rc;
    }
    sub safe_psql {
        my ($self, $db, $sql) = @_;
        my $out;
        my $rc = $self->psql($db, $sql, stdout => \$out);
        die "psql on $self->{name} failed ($rc): $sql" if $rc;
        return $out;
    }
    sub poll_query_until {
        my ($self, $db, $sql) = @_;
        return SafekeeperNode::poll_until(sub {
            my $out = '';
            $self->psql($db, $sql, stdout => \$out) == 0 && $out eq 't';
        });
    }
}

my ($ok, $out, $err) = cluster_tool('init', @args);
ok($ok, 'init') or diag($err);
like(slurp_file("$dir/pg1/postgresql.conf"), qr/^wal_log_hints = on/m,
    'init sets wal_log_hints = on (pg_rewind needs it)');
($ok, $out, $err) = cluster_tool('start', @args);
ok($ok, 'start') or diag("$out\n$err");
my $conf = read_vars("$dir/cluster.conf");
my %node = map { $_ => WpctlNode->new($_, $conf->{"PG_PORT_$_"}, $dir) } qw(pg1 pg2);
is(state()->{PRIMARY}, 'pg1', 'pg1 is the first primary');
is(state()->{STANDBY}, 'pg2', 'pg2 the standby');

# ---------------------------------------------------------------------------
# Failover after a SIGKILL of the primary under continuous commits.
$node{pg1}->safe_psql('postgres', 'CREATE TABLE acked (id bigint PRIMARY KEY, writer int, pad text)');
my $writers = WalproposerCluster::start_writers($node{pg1}, 'acked', 3);
ok(SafekeeperNode::poll_until(sub {
            $_->{h}->pump_nb for @$writers;
            $node{pg1}->safe_psql('postgres', 'SELECT count(*) FROM acked') >= 600;
        }),
    'the writers committed 600 rows on pg1');
WalproposerCluster::kill9_postgres($node{pg1}->data_dir);
my @acked = WalproposerCluster::acked_ids($writers);
ok(@acked >= 600, scalar(@acked) . ' COMMITs acknowledged before the kill');

my $t0 = time;
($ok, $out, $err) = cluster_tool('failover', @args);
my $took = time - $t0;
ok($ok, sprintf('walproposer-cluster failover succeeds (%.1f s)', $took)) or diag("$out\n$err");
note($out);
like($out, qr/\[2\/5\] sync and fence.*\n.*done in [0-9.]+ s: sync LSN [0-9A-F]+\/[0-9A-F]+/,
    'it prints the sync step, its time and the sync LSN');
like($out, qr/\[3\/5\] catch-up.*\n.*done in/, 'the catch-up step');
like($out, qr/\[4\/5\] promote pg2.*\n.*done in/, 'the promotion');
like($out, qr/\[5\/5\] first COMMIT.*\n.*done in [0-9.]+ s: elected in term \d+, COMMIT confirmed/,
    'and the first confirmed COMMIT');
like($out, qr/first confirmed COMMIT [0-9.]+ s after the failover began/, 'and the total time');
my $st = state();
is_deeply([ @$st{qw(PRIMARY STANDBY FENCED)} ], [ 'pg2', '', 'pg1' ],
    'cluster.state: primary pg2, no standby, pg1 fenced');
my @missing = WalproposerCluster::missing_ids($node{pg2}, 'acked', \@acked);
is(scalar(@missing), 0, 'every acknowledged row is on pg2')
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
my ($returned) = WalproposerCluster::commit_returns_within($node{pg2},
    "INSERT INTO acked VALUES (-1, -1, 'pg2')", 30);
ok($returned, 'a COMMIT on pg2 returns');

my $status;
($ok, $status) = cluster_tool('status', @args);
like($status, qr/^primary\s+port $node{pg2}{port}\s+running\s+walproposer: elected.*\[node pg2, PG timeline 2\]/m,
    'status: pg2 is the elected primary on PostgreSQL timeline 2') or diag($status);
like($status, qr/^fenced\s+port $node{pg1}{port}\s+down .*\[node pg1, PG timeline 1\]/m,
    'status: pg1 is the fenced old primary') or diag($status);
($ok, $out) = cluster_tool('env', @args);
like($out, qr/PGPORT=$node{pg2}{port} /, 'env points at the new primary');

# The old primary started again by hand never confirms a COMMIT.
IPC::Run::run([ 'pg_ctl', '-D', $node{pg1}->data_dir, '-l', "$dir/logs/pg1.log", '-w', 'start' ],
    '>', \my $o, '2>', \my $e);
ok(WalproposerCluster::status_within($node{pg1}, "state = 'superseded' AND message LIKE '%fenced:%'", 30),
    'the restarted old primary is superseded: fenced')
  or diag($node{pg1}->safe_psql('postgres', 'SELECT * FROM walproposer_status'));
($returned) = WalproposerCluster::commit_returns_within($node{pg1},
    "INSERT INTO acked VALUES (-2, -2, 'old primary')", 5);
ok(!$returned, 'a COMMIT on the old primary does not return within 5 s');
($ok, $status) = cluster_tool('status', @args);
like($status, qr/^fenced\s+port $node{pg1}{port}\s+running\s+walproposer: /m,
    'status shows the running fenced node');

# rejoin: pg1 becomes the standby of pg2's timeline.
($ok, $out, $err) = cluster_tool('rejoin', @args);
ok($ok, 'walproposer-cluster rejoin') or diag("$out\n$err");
is_deeply([ @{ state() }{qw(PRIMARY STANDBY FENCED)} ], [ 'pg2', 'pg1', '' ],
    'cluster.state: pg1 is the standby');
my $end = $node{pg2}->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(WalproposerCluster::wait_replayed($node{pg1}, $end), 'pg1 replays pg2\'s WAL from the safekeepers');
is($node{pg1}->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE id > 0'),
    $node{pg2}->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE id > 0'),
    'pg1 has the same rows as pg2 (the old primary\'s unconfirmed row is gone)');
is($node{pg1}->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE id = -2'), '0',
    'the COMMIT the fenced primary never confirmed is not on the standby');

# ---------------------------------------------------------------------------
# Two switchovers (there and back) under pgbench: nothing acknowledged lost.
my $primary = 'pg2';
IPC::Run::run([ 'pgbench', '-i', '-s', '1', '-q', '-h', "$dir/run", '-p', $node{$primary}->port,
        'postgres' ], '>', \$o, '2>', \$e) or diag($e);
my $acked_tx = 0;
for my $round (1, 2) {
    my $old = $primary;
    my $new = $old eq 'pg1' ? 'pg2' : 'pg1';
    my $history_before = $node{$old}->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
    my ($bout, $berr) = ('', '');
    my $bench = IPC::Run::start([ 'pgbench', '-n', '-c', '2', '-j', '2', '-T', '120', '-h',
            "$dir/run", '-p', $node{$old}->port, 'postgres' ], '>', \$bout, '2>', \$berr);
    ok(SafekeeperNode::poll_until(sub {
                $node{$old}->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history')
                  >= $history_before + 200;
            }),
        "round $round: pgbench commits on $old");
    ($ok, $out, $err) = cluster_tool('switchover', @args);
    ok($ok, "round $round: walproposer-cluster switchover") or diag("$out\n$err");
    note($out);
    ok(SafekeeperNode::poll_until(sub { $bench->pump_nb if $bench->pumpable; !$bench->pumpable }, 60),
        "round $round: pgbench ended when $old stopped");
    eval { $bench->finish };
    my ($n) = $bout =~ /number of transactions actually processed: (\d+)/;
    ok(defined $n, "round $round: pgbench acknowledged " . ($n // '?') . ' transactions')
      or diag("$bout\n$berr");
    $acked_tx += $n // 0;
    is_deeply([ @{ state() }{qw(PRIMARY STANDBY FENCED)} ], [ $new, $old, '' ],
        "round $round: $new is the primary, $old the standby");
    my $history = $node{$new}->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
    ok($history >= $acked_tx,
        "round $round: pgbench_history on $new has $history rows >= $acked_tx acknowledged");
    ok($node{$old}->poll_query_until('postgres',
            "SELECT status = 'streaming' FROM pg_stat_wal_receiver"),
        "round $round: $old streams from the safekeepers as the standby");
    $node{$new}->safe_psql('postgres', "INSERT INTO acked VALUES (-10 - $round, $round, 'switchover')");
    $end = $node{$new}->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
    ok(WalproposerCluster::wait_replayed($node{$old}, $end), "round $round: and replays $new\'s WAL");
    is($node{$old}->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history'), $history,
        "round $round: the standby has the same pgbench_history");
    $primary = $new;
}
is($primary, 'pg2', 'after two switchovers pg2 is the primary again');
@missing = WalproposerCluster::missing_ids($node{$primary}, 'acked', \@acked);
is(scalar(@missing), 0, 'the rows of the failover are all still there');

# stop, start, status, env, destroy follow the roles.
($ok, $out, $err) = cluster_tool('stop', @args);
ok($ok, 'stop') or diag($err);
($ok, $out, $err) = cluster_tool('start', @args);
ok($ok, 'start after the switchovers') or diag("$out\n$err");
($ok, $status) = cluster_tool('status', @args);
like($status, qr/^primary\s+port $node{pg2}{port}\s+running\s+walproposer: elected/m,
    'status: pg2 is the primary after a restart');
like($status, qr/^standby\s+port $node{pg1}{port}\s+running\s+streaming from 127\.0\.0\.1:\d+/m,
    'status: pg1 streams as the standby') or diag($status);
like($status, qr/^roles: primary pg2, standby pg1, fenced none/m, 'status: the roles line');
($ok, $out) = cluster_tool('env', @args);
like($out, qr/PGPORT=$node{pg2}{port} /, 'env points at pg2');
($ok, $out, $err) = cluster_tool('rejoin', @args);
ok($ok && $out =~ /nothing to rejoin/, 'rejoin with nothing fenced does nothing');
($ok, $out, $err) = cluster_tool('destroy', @args);
ok($ok, 'destroy') or diag($err);
ok(!-e $dir, 'the directory is gone');

done_testing();
