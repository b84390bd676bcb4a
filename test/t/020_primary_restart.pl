# Crash of the primary under load: every COMMIT that returned before the
# crash is in a majority of the safekeepers' WAL; after the restart a new
# term is elected, streaming continues where the quorum is, and the
# safekeepers' WAL is still byte-identical to the primary's.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use SafekeeperNode;
use WalproposerCluster;

my @sks = WalproposerCluster::start_safekeepers(3);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'first election');
my $first_term = $primary->safe_psql('postgres', 'SELECT term FROM walproposer_status');
$primary->safe_psql('postgres', 'CREATE TABLE acked (id int, xid bigint, pad text)');

# A client that commits one row per statement and prints each xid once its
# COMMIT returned, while pgbench adds load.
my $script = join('', map {
    "INSERT INTO acked VALUES ($_, txid_current(), repeat('x', 2000)) RETURNING xid;\n"
} 1 .. 100000);
my $script_file = PostgreSQL::Test::Utils::tempdir() . '/inserts.sql';
PostgreSQL::Test::Utils::append_to_file($script_file, $script);
my ($client_out, $client_err) = ('', '');
my $client = IPC::Run::start(
    [ 'psql', '-XAtq', '-h', $primary->host, '-p', $primary->port, '-d', 'postgres', '-f',
        $script_file ],
    '>', \$client_out, '2>', \$client_err, WalproposerCluster::timer('the insert client'));
$primary->command_ok([ 'pgbench', '-i', '-s', '1', '-q', '-h', $primary->host, '-p',
        $primary->port, 'postgres' ], 'pgbench -i');
my $load = IPC::Run::start(
    [ 'pgbench', '-T', '30', '-c', '2', '-N', '-h', $primary->host, '-p', $primary->port,
        'postgres' ], '>', \my $load_out, '2>', \my $load_err, WalproposerCluster::timer('pgbench'));
$client->pump_nb;
my $acked_before_load = () = $client_out =~ /\n/g;
SafekeeperNode::poll_until(sub {
    $client->pump_nb;
    my $lines = () = $client_out =~ /\n/g;
    return $lines >= $acked_before_load + 300;
});
$primary->stop('immediate');
$client->finish;
$load->finish;
$client->pump_nb if $client->pumpable;

my @acked = grep { /^\d+$/ } split /\n/, $client_out;
ok(@acked >= 300, scalar(@acked) . ' commits returned before the crash');

# Every acknowledged commit is on a majority of safekeepers.
my @on_sk = map { WalproposerCluster::committed_xids_on_sk($_, $primary) } @sks;
my @missing;
for my $xid (@acked) {
    my $copies = grep { $_->{$xid} } @on_sk;
    push @missing, $xid if $copies < 2;
}
is(scalar(@missing), 0, 'every acknowledged commit is in the WAL of at least 2 of 3 safekeepers')
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

# Restart: a new term, and commits flow again.
$primary->start;
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND term > $first_term",
    'election after the restart');
pass('a new term is elected after the crash restart');
my $rows = $primary->safe_psql('postgres', 'SELECT count(*) FROM acked');
ok($rows >= scalar(@acked), "the restarted primary has all $rows acknowledged rows");
$primary->safe_psql('postgres', "INSERT INTO acked VALUES (-1, 0, 'after restart')");
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
for my $sk (@sks) {
    ok(WalproposerCluster::wait_for_sk_flush($sk, $primary, $end),
        $sk->name . ' streams again after the restart');
    my ($bytes, @mismatches) = WalproposerCluster::compare_wal_with_primary($sk, $primary);
    ok(!@mismatches, $sk->name . " still holds the primary's WAL byte for byte")
      or diag(join("\n", @mismatches));
}

# A clean shutdown and start: the shutdown checkpoint reaches the quorum at
# the next start.
my $before_stop = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
$primary->stop('fast');
$primary->start;
my $checkpoint_end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
WalproposerCluster::wait_for_status($primary, "commit_lsn >= '$checkpoint_end'",
    'the shutdown checkpoint is confirmed after the restart');
pass('WAL written at shutdown is streamed after the next start');

# A crash in the middle of a large multi-page record. Only flushed WAL is
# streamed, so the safekeepers hold the record's first pages. Crash recovery
# ends before the torn record and PostgreSQL writes an
# XLOG_OVERWRITE_CONTRECORD at the first missing page; the WAL before that
# page is unchanged, so the safekeepers' WAL must stay a byte-exact prefix of
# the restarted primary's WAL and streaming must continue past it.
my $torn_start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
my $big = IPC::Run::start(
    [ 'psql', '-XAtq', '-h', $primary->host, '-p', $primary->port, '-d', 'postgres', '-c',
        "SELECT pg_logical_emit_message(false, 'wp-torn', repeat('x', 512 * 1024 * 1024))" ],
    '>', \my $big_out, '2>', \my $big_err, WalproposerCluster::timer('the 512 MB record'));
my $big_pid;
ok( SafekeeperNode::poll_until(sub {
        $big_pid = $primary->safe_psql('postgres',
            "SELECT pid FROM pg_stat_activity WHERE query LIKE '%wp-torn%' AND pid <> pg_backend_pid()");
        return 0 unless $big_pid;
        kill 'STOP', $big_pid;    # at once: it builds its 512 MB string first
        return 1;
    }, 120),
    'the backend that inserts a 512 MB record is found and frozen');
# Let it run in short slices until the record's first 32 MB are flushed (and
# streamed). Racing a running backend instead lost on a quiet machine: it
# inserted all 512 MB before the test could stop it, and nothing was torn.
# A slice is 20 ms while the WAL moves; while it does not (the backend is
# still building its 512 MB string, or a loaded machine gives it little CPU)
# the slice doubles, up to 100 ms, far less than the time 480 MB of WAL take.
my $slice_us = 20_000;
my $seen_flush = WalproposerCluster::lsn_to_int($torn_start);
ok( SafekeeperNode::poll_until(sub {
        my $flush = WalproposerCluster::lsn_to_int(
            $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()'));
        return 1 if $flush > WalproposerCluster::lsn_to_int($torn_start) + 32 * 1024 * 1024;
        $slice_us = $flush > $seen_flush ? 20_000 : ($slice_us * 2 > 100_000 ? 100_000 : $slice_us * 2);
        $seen_flush = $flush;
        kill 'CONT', $big_pid;
        usleep($slice_us);
        kill 'STOP', $big_pid;
        return 0;
    }, 300),
    'the first 32 MB of the record are flushed and the backend is frozen mid-record');
# The backend stays frozen, so the record cannot complete; then crash the
# server (SIGKILL of a backend makes the postmaster reinitialize: crash
# recovery, as after a power loss for everything not written).
my $flushed_part = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
kill 'KILL', $big_pid;
$big->kill_kill;
# The test cluster runs with restart_after_crash = off: the postmaster stops
# after the crash; start it again (crash recovery).
ok(SafekeeperNode::poll_until(sub { !-f $primary->data_dir . '/postmaster.pid' }, 60),
    'the server went down after the backend crash');
$primary->_update_pid(0);
$primary->start;
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'election after the torn record');
my $after_lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
my ($dump_ok, $dump_out, $dump_err) = ('', '', '');
IPC::Run::run([ 'pg_waldump', '-p', $primary->data_dir . '/pg_wal', '-s', $flushed_part, '-e', $after_lsn,
        '-r', 'XLOG' ], '>', \$dump_out, '2>', \$dump_err);
like($dump_out, qr/OVERWRITE_CONTRECORD/,
    'recovery wrote an OVERWRITE_CONTRECORD after the torn record');
$primary->safe_psql('postgres', "INSERT INTO acked VALUES (-2, 0, 'after torn record')");
$end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
for my $sk (@sks) {
    ok(WalproposerCluster::wait_for_sk_flush($sk, $primary, $end),
        $sk->name . ' streams past the overwritten record');
    my ($bytes, @mismatches) = WalproposerCluster::compare_wal_with_primary($sk, $primary);
    ok(!@mismatches, $sk->name . "'s WAL is a byte-exact prefix across the torn record")
      or diag(join("\n", @mismatches));
}

$primary->stop;
$_->stop for @sks;
done_testing();
