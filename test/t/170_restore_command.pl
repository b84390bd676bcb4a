# pg_walproposer_restore as the restore_command of a stock standby whose
# primary_conninfo points at a primary it cannot reach (the situation of a
# replica managed by an HA tool once its leader is dead): it replays the
# quorum's committed WAL from the safekeepers, the newest segment partial,
# follows as more is committed, and after the primary's death, a
# pg_walproposer_sync and a promotion it is the new primary with every
# acknowledged row. The tool never writes WAL a safekeeper has not
# committed; its failures are clear and never hang.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SafekeeperNode;
use WalproposerCluster;

my $lsn = \&WalproposerCluster::lsn_to_int;
my $restore = WalproposerCluster::tool('pg_walproposer_restore');

my @sks = WalproposerCluster::start_safekeepers(3, 171);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
$primary->safe_psql('postgres', 'CREATE TABLE acked (id bigint PRIMARY KEY, pad text)');
$primary->backup('bkp');

# A standby that cannot reach any primary: only the restore_command brings WAL.
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bkp', has_streaming => 0);
(my $command = WalproposerCluster::restore_command(\@sks)) =~ s/'/''/g;
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();
$standby->append_conf('postgresql.conf', <<"EOC");
primary_conninfo = 'host=127.0.0.1 port=$dead_port connect_timeout=2'
restore_command = '$command'
wal_retrieve_retry_interval = 200ms
hot_standby = on
EOC
$standby->set_standby_mode;
$standby->start;

# Rows committed after the backup, within the first segments.
$primary->safe_psql('postgres', "INSERT INTO acked SELECT g, 'first' FROM generate_series(1, 100) g");
my $committed = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok($standby->poll_query_until('postgres', 'SELECT count(*) = 100 FROM acked'),
    'the standby replayed the committed rows from the safekeepers (partial newest segment)');
ok($standby->poll_query_until('postgres', "SELECT pg_last_wal_replay_lsn() >= '$committed'"),
    "it replayed up to the primary's flush LSN $committed");

# More rows across segment switches: full segments and the next partial one.
for my $i (1 .. 3) {
    $primary->safe_psql('postgres',
        "INSERT INTO acked SELECT g, 'more' FROM generate_series($i * 1000, $i * 1000 + 99) g");
    $primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
}
$primary->safe_psql('postgres', "INSERT INTO acked SELECT g, 'last' FROM generate_series(5000, 5099) g");
ok($standby->poll_query_until('postgres', 'SELECT count(*) = 500 FROM acked'),
    'it follows through segment switches and the next partial segment');

# ---------------------------------------------------------------------------
# The tool never writes WAL a safekeeper has not committed: with 2 of 3
# safekeepers stopped, a COMMIT waits; the remaining one holds the WAL
# (flush) but has not committed it.
# A fresh segment first, so the WAL left uncommitted ends inside the
# segment of the commit LSN.
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->safe_psql('postgres', "INSERT INTO acked VALUES (8999, 'new segment')");
$_->stop for @sks[ 1, 2 ];
my ($waiting) = WalproposerCluster::start_psql($primary,
    "INSERT INTO acked SELECT g, 'unconfirmed' FROM generate_series(9000, 9099) g");
my $sk0 = $sks[0];
ok( SafekeeperNode::poll_until(sub {
            my $tl = WalproposerCluster::sk_timeline($sk0, $primary);
            return $tl && $lsn->($tl->{flush_lsn}) > $lsn->($tl->{commit_lsn});
        }),
    'the remaining safekeeper holds WAL beyond its commit LSN');
my $tl = WalproposerCluster::sk_timeline($sk0, $primary);
my $segname = $primary->safe_psql('postgres', "SELECT pg_walfile_name('$tl->{commit_lsn}')");
my $file = "$PostgreSQL::Test::Utils::tmp_check/restored_$segname";
my ($out, $err) = ('', '');
# A data directory without that segment in pg_wal (see below for one with it).
my $empty_pgdata = "$PostgreSQL::Test::Utils::tmp_check/empty_pgdata";
mkdir $empty_pgdata;
my @ids = ('--tenant-id', WalproposerCluster::tenant_id($primary), '--timeline-id',
    WalproposerCluster::timeline_id($primary));
my @cmd = ($restore, '--safekeepers', $sk0->address, @ids, '--pgdata', $empty_pgdata, '--conninfo',
    'user=replica ' . SafekeeperNode::tls_conninfo(), $segname, $file);
IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
is($? >> 8, 0, "$segname restored from the one safekeeper left") or diag($err);
my $seg_size = 16 * 1024 * 1024;
is(-s $file, $seg_size, 'the file is a whole segment');
my $commit_off = $lsn->($tl->{commit_lsn}) % $seg_size;
open my $fh, '<:raw', $file or die "cannot open $file: $!";
my $content = do { local $/; <$fh> };
close $fh;
my $primary_wal = WalproposerCluster::read_range($primary->data_dir . "/pg_wal/$segname", 0, $commit_off);
ok(defined $primary_wal && substr($content, 0, $commit_off) eq $primary_wal,
    "its bytes below the commit LSN are the primary's WAL");
is(substr($content, $commit_off) =~ tr/\0//c, 0,
    "nothing beyond the commit LSN $tl->{commit_lsn} (the safekeeper's WAL goes on to $tl->{flush_lsn})");
# A node that already holds more of the segment in pg_wal (a standby that
# also streamed from the primary) never gets less than it has: PostgreSQL
# replaces its copy with the restored file.
my $flush_off = $lsn->($tl->{flush_lsn}) % $seg_size;
ok($lsn->($tl->{flush_lsn}) - $lsn->($tl->{commit_lsn}) < $seg_size - $commit_off,
    'the uncommitted WAL ends in the same segment');
{
    @cmd = ($restore, '--safekeepers', $sk0->address, @ids, '--pgdata', $primary->data_dir, '--conninfo',
        'user=replica ' . SafekeeperNode::tls_conninfo(), $segname, "$file.merged");
    IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
    is($? >> 8, 0, "$segname restored into a data directory whose pg_wal has more of it");
    my $merged = PostgreSQL::Test::Utils::slurp_file("$file.merged");
    my $local = WalproposerCluster::read_range($primary->data_dir . "/pg_wal/$segname", 0, $flush_off);
    ok(defined $local && substr($merged, 0, $flush_off) eq $local,
        "the file keeps the local WAL beyond the commit LSN, up to $tl->{flush_lsn}");
}
$_->start for @sks[ 1, 2 ];
ok(WalproposerCluster::finishes_within($waiting, 60), 'the waiting COMMIT returns once the quorum is back');

# ---------------------------------------------------------------------------
# Failover through the restore_command: the primary dies, the sync commits
# what the quorum holds, the standby replays up to the sync LSN from the
# safekeepers alone and is promoted; every acknowledged row is there.
my $acked = $primary->safe_psql('postgres', 'SELECT count(*) FROM acked');
WalproposerCluster::kill9_postgres($primary);
my $sync = WalproposerCluster::run_sync(\@sks, $primary);
is($sync->{rc}, 0, 'pg_walproposer_sync exits 0') or diag($sync->{err});
my $sync_lsn = $sync->{json}{sync_lsn} // '0/0';
ok(WalproposerCluster::wait_replayed($standby, $sync_lsn),
    "the standby replayed up to the sync LSN $sync_lsn through the restore_command");
$standby->promote;
ok(WalproposerCluster::status_within($standby, "state = 'elected'", 60),
    'the promoted standby is elected on the safekeepers');
ok(WalproposerCluster::commit_confirmed($standby, "INSERT INTO acked VALUES (100000, 'after promotion')", 30),
    'a COMMIT on the new primary is confirmed');
is($standby->safe_psql('postgres', "SELECT count(*) FROM acked WHERE id < 100000"), $acked,
    "all $acked acknowledged rows are on the new primary");

# ---------------------------------------------------------------------------
# Failures are clear and bounded.
sub run_restore {
    my (@args) = @_;
    my ($o, $e) = ('', '');
    my $t0 = time;
    IPC::Run::run([ $restore, @args ], '>', \$o, '2>', \$e, IPC::Run::timeout(120));
    return ($? >> 8, $e, time - $t0);
}
my $ids = WalproposerCluster::tenant_id($primary);
my @common = ('--tenant-id', $ids, '--timeline-id', WalproposerCluster::timeline_id($primary),
    '--conninfo', 'user=replica ' . SafekeeperNode::tls_conninfo());
my ($rc, $msg, $secs) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), @common,
    '00000001000000FF000000FE', "$file.x");
is($rc, 1, 'a segment nobody has: exit 1');
is($msg, '', '... silently (standbys probe for files that do not exist yet)');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), @common,
    '00000009.history', "$file.x");
is($rc, 1, 'a history file of a timeline nobody has: exit 1');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), @common,
    '00000002.history', "$file.h");
is($rc, 0, 'the history file of the new timeline is served') or diag($msg);
like(slurp_file("$file.h"), qr/^1\t[0-9A-F]+\/[0-9A-F]+\t/, '... with the switch point of timeline 1');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), @common,
    '000000010000000000000001.partial', "$file.x");
is($rc, 1, 'a .partial name is never served');
my $closed = PostgreSQL::Test::Cluster::get_free_port();
($rc, $msg, $secs) = run_restore('--safekeepers', "127.0.0.1:$closed", @common, $segname, "$file.x");
is($rc, 1, 'no safekeeper reachable: exit 1');
like($msg, qr/127\.0\.0\.1:$closed: cannot connect/, '... naming the safekeeper and why');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), @common,
    '--conninfo', 'user=replica password=wrong sslmode=require', $segname, "$file.x");
is($rc, 1, 'a wrong password: exit 1');
like($msg, qr/password authentication failed|authentication/, '... with the server\'s reason');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), $segname);
is($rc, 2, 'missing PATH: usage error 2');
like($msg, qr/expected two arguments/, '... that says so');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), '--conninfo',
    'host=elsewhere', $segname, "$file.x");
is($rc, 2, '--conninfo with host: usage error 2');
($rc, $msg) = run_restore('--safekeepers', WalproposerCluster::safekeeper_list(\@sks), '--pgdata',
    '/nonexistent', $segname, "$file.x");
is($rc, 1, 'no ids and no data directory: exit 1');
like($msg, qr{cannot open /nonexistent/global/pg_control}, '... naming the file');
ok(!-e "$file.x", 'no failed call left a file behind');

$standby->stop;
$_->stop for @sks;
done_testing();
