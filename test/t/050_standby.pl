# Stock PostgreSQL 15 standbys streaming from the safekeepers instead of the
# primary: replay of a pgbench run, failover between safekeepers listed in
# primary_conninfo, no WAL beyond the serving safekeeper's commit_lsn,
# hot-standby feedback holding back the primary's slot xmin, and bad input
# on the replication port.
use strict;
use warnings;

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;
use WalproposerCluster;

# Own names (sk51..): safekeeper directories under tmp_check are shared by
# every test file of a run, and standby2 relies on a single timeline.
my @sks = WalproposerCluster::start_safekeepers(3, 51);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
my $id = WalproposerCluster::default_id($primary);
my $lsn = \&WalproposerCluster::lsn_to_int;

$primary->command_ok([ 'pgbench', '-i', '-s', '2', '-q', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench -i');
$primary->backup('bkp');

# A standby from pg_basebackup whose primary_conninfo is one safekeeper.
sub make_standby {
    my ($name, $conninfo) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init_from_backup($primary, 'bkp', has_streaming => 0);
    $node->append_conf('postgresql.conf', <<"EOC");
primary_conninfo = '$conninfo application_name=$name'
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1
wal_retrieve_retry_interval = 200ms
EOC
    $node->set_standby_mode;
    $node->start;
    return $node;
}

sub receiver {
    my ($node) = @_;
    return $node->safe_psql('postgres',
        "SELECT status || ' ' || sender_port || ' ' || flushed_lsn FROM pg_stat_wal_receiver");
}

sub wait_replayed {
    my ($node, $target) = @_;
    return $node->poll_query_until('postgres',
        "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn");
}

my $tables_sql = join(' UNION ALL ',
    map { "SELECT '$_', count(*), sum(hashtext(t::text)::bigint) FROM $_ t" }
      qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history));

# 1. One safekeeper, chosen with tenant/timeline options.
my $sk1_port = $sks[0]->pg_port;
my $standby1 = make_standby('standby1',
    "host=127.0.0.1 port=$sk1_port options=''-c tenant_id=$id -c timeline_id=$id''");
ok($standby1->poll_query_until('postgres',
        "SELECT status = 'streaming' AND sender_port = $sk1_port FROM pg_stat_wal_receiver"),
    'standby1 streams from safekeeper 1')
  or diag(receiver($standby1));
$primary->command_ok([ 'pgbench', '-T', '4', '-c', '4', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench run on the primary');
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(wait_replayed($standby1, $end), "standby1 replayed up to the primary's $end");
is($standby1->safe_psql('postgres', $tables_sql), $primary->safe_psql('postgres', $tables_sql),
    "standby1's pgbench tables equal the primary's");
like(receiver($standby1), qr/^streaming $sk1_port /, 'pg_stat_wal_receiver shows streaming');

sub consumer {
    my ($sk, $name) = @_;
    my $t = WalproposerCluster::sk_timeline($sk, $primary) or return undef;
    my ($c) = grep { $_->{application_name} eq $name } @{ $t->{consumers} };
    return $c;
}
ok(SafekeeperNode::poll_until(sub {
            my $c = consumer($sks[0], 'standby1');
            $c && $c->{write_lsn} && $c->{flush_lsn} && $c->{apply_lsn}
              && $lsn->($c->{apply_lsn}) >= $lsn->($end);
        }),
    'the timeline status lists standby1 with its write/flush/apply positions')
  or diag(explain(WalproposerCluster::sk_timeline($sks[0], $primary)->{consumers}));
like($sks[0]->http('GET', '/metrics')->{content},
    qr/safekeeper_consumer_flush_lsn\{[^}]*application_name="standby1"\} [1-9]/,
    '/metrics exports the consumer positions');

# 2. All three safekeepers in primary_conninfo (no options: a safekeeper with
# exactly one timeline serves that one); kill the one in use.
my $hosts = join(',', ('127.0.0.1') x 3);
my $ports = join(',', map { $_->pg_port } @sks);
my $standby2 = make_standby('standby2', "host=$hosts port=$ports");
ok($standby2->poll_query_until('postgres',
        "SELECT status = 'streaming' FROM pg_stat_wal_receiver"),
    'standby2 streams from one of the listed safekeepers');
my $used_port = $standby2->safe_psql('postgres', 'SELECT sender_port FROM pg_stat_wal_receiver');
my ($used) = grep { $_->pg_port == $used_port } @sks;
ok($used, "standby2 uses safekeeper on port $used_port");
$used->kill9;
ok($standby2->poll_query_until('postgres',
        "SELECT status = 'streaming' AND sender_port <> $used_port FROM pg_stat_wal_receiver"),
    'standby2 reconnected to another safekeeper')
  or diag(receiver($standby2));
$primary->command_ok([ 'pgbench', '-T', '2', '-c', '2', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench with one safekeeper killed');
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(wait_replayed($standby2, $end), "standby2 keeps up: replayed up to $end");
is($standby2->safe_psql('postgres', $tables_sql), $primary->safe_psql('postgres', $tables_sql),
    "standby2's tables equal the primary's");
$used->start;
ok(WalproposerCluster::wait_for_sk_flush($used, $primary, $end), 'the killed safekeeper caught up');
ok(wait_replayed($standby1, $end), 'standby1 replayed it too');

# 3. Never beyond commit_lsn: with 2 of 3 safekeepers down a COMMIT waits;
# safekeeper 1 holds its WAL but must not send it to standby1.
$primary->safe_psql('postgres', 'CREATE TABLE uncommitted (id int)');
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(wait_replayed($standby1, $end), 'standby1 has the table');
$sks[1]->stop;
$sks[2]->stop;
my $waiting = IPC::Run::start(
    [ 'psql', '-XAt', '-h', $primary->host, '-p', $primary->port, '-d', 'postgres', '-c',
        'INSERT INTO uncommitted SELECT generate_series(1, 1000)' ],
    '>', \my $w_out, '2>', \my $w_err, WalproposerCluster::timer('the waiting INSERT'));
ok(SafekeeperNode::poll_until(sub {
            my $t = WalproposerCluster::sk_timeline($sks[0], $primary);
            $lsn->($t->{flush_lsn}) > $lsn->($t->{commit_lsn});
        }),
    "safekeeper 1 holds WAL beyond its commit_lsn");
my $sk_tl = WalproposerCluster::sk_timeline($sks[0], $primary);
my $commit = $lsn->($sk_tl->{commit_lsn});
# The standby catches up to commit_lsn, and for the next 3 seconds never
# holds more (checked every 50 ms).
ok(SafekeeperNode::poll_until(sub {
            $lsn->($standby1->safe_psql('postgres',
                    'SELECT written_lsn FROM pg_stat_wal_receiver')) >= $commit;
        }),
    'standby1 received everything up to commit_lsn');
my ($violations, $checks, $max_seen) = (0, 0, 0);
my $t0 = Time::HiRes::time();
while (Time::HiRes::time() - $t0 < 3) {
    my $got = $lsn->($standby1->safe_psql('postgres',
            'SELECT written_lsn FROM pg_stat_wal_receiver'));
    my $sk_commit = $lsn->(WalproposerCluster::sk_timeline($sks[0], $primary)->{commit_lsn});
    $max_seen = $got if $got > $max_seen;
    $violations++ if $got > $sk_commit;
    $checks++;
    Time::HiRes::usleep(50_000);
}
is($violations, 0,
    "standby1's received LSN never exceeded safekeeper 1's commit_lsn ($checks checks, "
      . "max received $max_seen, flush "
      . $lsn->($sk_tl->{flush_lsn}) . ')');
is($standby1->safe_psql('postgres', 'SELECT count(*) FROM uncommitted'), '0',
    'the uncommitted rows are not on the standby');
$sks[1]->start;
ok(SafekeeperNode::poll_until(sub { $waiting->pump_nb if $waiting->pumpable; !$waiting->pumpable }),
    'the COMMIT returns once a majority is back');
$waiting->finish;
$sks[2]->start;
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(wait_replayed($standby1, $end), 'standby1 replays the now committed rows');
is($standby1->safe_psql('postgres', 'SELECT count(*) FROM uncommitted'), '1000',
    'and sees them');

# 4. Hot-standby feedback: a REPEATABLE READ transaction on standby1 holds
# back the xmin of the primary's walproposer slot.
my $slot_xmin_sql = "SELECT coalesce(xmin::text, '') FROM pg_replication_slots "
  . "WHERE slot_name = 'walproposer'";
ok($primary->poll_query_until('postgres', "SELECT ($slot_xmin_sql) <> ''"),
    'the slot has an xmin from hot-standby feedback');
my $bg = $standby1->background_psql('postgres');
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$bg->query_safe('SELECT count(*) FROM pgbench_accounts');
my $snap_xmin = $bg->query_safe('SELECT txid_snapshot_xmin(txid_current_snapshot())');
$primary->command_ok([ 'pgbench', '-T', '2', '-c', '2', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench while the standby transaction is open');
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(wait_replayed($standby1, $end), 'standby1 replays meanwhile');
# Give the feedback a chance to move (status interval 1 s): it must not.
ok(SafekeeperNode::poll_until(sub {
            my $s1 = consumer($sks[0], 'standby1');
            $s1 && $s1->{hs_xmin} && $lsn->($s1->{apply_lsn}) >= $lsn->($end);
        }),
    'standby1 reported feedback after replaying the new WAL');
my $held = $primary->safe_psql('postgres', $slot_xmin_sql);
my $next_xid = $primary->safe_psql('postgres', 'SELECT txid_current() % 4294967296');
ok($held ne '' && $held <= $snap_xmin % 2**32,
    "the slot xmin ($held) is held at or below the standby snapshot's xmin ($snap_xmin) "
      . "while the primary is at xid $next_xid");
$bg->query_safe('COMMIT');
$bg->quit;
ok($primary->poll_query_until('postgres',
        "SELECT xmin::text::bigint > $held FROM pg_replication_slots WHERE slot_name = 'walproposer'"),
    'the slot xmin moves on once the standby transaction ends');

# 5. Bad input on the replication port; the safekeeper keeps serving.
my $sk1_conn = "host=127.0.0.1 port=$sk1_port replication=true";
my ($out, $err) = run_psql($sk1_conn, 'FOO BAR');
like($err, qr/command not supported by safekeeper/, 'unknown command gets an error');
($out, $err) = run_psql($sk1_conn, 'START_REPLICATION 0/');
like($err, qr/syntax error/, 'malformed START_REPLICATION gets a syntax error');
($out, $err) = run_psql($sk1_conn, 'START_REPLICATION FF/0 TIMELINE 1');
like($err, qr/ahead of the commit position/, 'START_REPLICATION past commit_lsn gets an error');
my $first = $lsn->(WalproposerCluster::sk_timeline($sks[0], $primary)->{timeline_start_lsn}) - 8192;
($out, $err) = run_psql($sk1_conn,
    sprintf('START_REPLICATION %X/%X TIMELINE 1', int($first / 2**32), $first % 2**32));
like($err, qr/before the first WAL/, 'START_REPLICATION before the first WAL gets an error');
($out, $err) = run_psql($sk1_conn, 'TIMELINE_HISTORY 2');
like($err, qr/00000002\.history/, 'TIMELINE_HISTORY of an unknown timeline gets an error');
($out, $err) = run_psql($sk1_conn, 'IDENTIFY_SYSTEM');
like($out, qr/^\d+\|1\|[0-9A-F]+\/[0-9A-F]+\|$/, 'IDENTIFY_SYSTEM answers on the same safekeeper');

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sk1_port, Proto => 'tcp')
  or die "connect: $!";
print $sock "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
my $reply = '';
while (sysread($sock, my $chunk, 4096)) { $reply .= $chunk; }
close $sock;
like($reply, qr/^E.*08P01.*invalid startup packet/s, 'a garbage startup packet gets an ErrorResponse');
ok($sks[0]->is_running, 'safekeeper 1 is still running');
$primary->safe_psql('postgres', 'INSERT INTO uncommitted VALUES (0)');
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(wait_replayed($standby1, $end), 'standby1 still streams from safekeeper 1');
like(receiver($standby1), qr/^streaming $sk1_port /, 'on the same connection');

sub run_psql {
    my ($conninfo, $sql) = @_;
    my ($o, $e) = ('', '');
    IPC::Run::run([ 'psql', '-XAt', '-d', $conninfo, '-c', $sql ], '>', \$o, '2>', \$e,
        IPC::Run::timeout(60));
    chomp $o;
    return ($o, $e);
}

$standby2->stop;
$standby1->stop;
$primary->stop;
$_->stop for @sks;
done_testing();
