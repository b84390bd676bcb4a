# The walproposer worker is restarted by the postmaster after
# pg_terminate_backend: COMMITs (which wait for it through
# synchronous_standby_names) return again without restarting the server,
# and a fast shutdown afterwards still completes promptly.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SafekeeperNode;
use WalproposerCluster;

# Bounds of every wait below (seconds): a hang fails the test instead of
# hanging it.
my $restart_timeout = 30;
my $commit_timeout = 60;
my $stop_timeout = 30;

my @sks = WalproposerCluster::start_safekeepers(3);
my $primary = WalproposerCluster::start_primary('primary', \@sks);
WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'first election');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int)');

# A COMMIT that must return within $commit_timeout. statement_timeout
# cannot bound it: PostgreSQL disables the statement timer before the
# commit, so the wait for the synchronous standby is not covered. The client
# gives up instead, and a backend still waiting is then cancelled (its
# transaction stays committed locally, with a WARNING).
sub commit_returns {
    my ($id) = @_;
    my ($out, $err, $timed_out) = ('', '', 0);
    my $rc = $primary->psql('postgres', "INSERT INTO t VALUES ($id)",
        stdout => \$out, stderr => \$err,
        timeout => $commit_timeout, timed_out => \$timed_out);
    if ($timed_out) {
        diag("INSERT $id did not return within ${commit_timeout}s");
        $primary->safe_psql('postgres',
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
        return 0;
    }
    diag("INSERT $id: rc $rc, stderr: $err") if $rc != 0 || $err ne '';
    return $rc == 0 && $err eq '';
}

# The worker's pid: a background worker shows its bgw_type as backend_type.
sub worker_pid {
    return $primary->safe_psql('postgres',
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walproposer'");
}

ok(commit_returns(1), 'a COMMIT returns while the worker runs');

my $old_pid = worker_pid();
like($old_pid, qr/^\d+$/, "the worker runs (pid $old_pid)");
is($primary->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)"),
    't', 'pg_terminate_backend of the worker');

my $new_pid = '';
ok( SafekeeperNode::poll_until(sub {
            $new_pid = worker_pid();
            return $new_pid =~ /^\d+$/ && $new_pid != $old_pid;
        }, $restart_timeout),
    "the postmaster restarted the worker within ${restart_timeout}s (new pid '$new_pid')");
ok($primary->log_contains("walproposer: worker terminated by a signal from process"),
    'the worker logs why it exits');
ok($primary->log_contains('the postmaster restarts it'), 'and that it will be restarted');

ok(commit_returns(2), 'a COMMIT returns again after the restart, without a server restart');
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND pid = $new_pid",
    'the new worker is elected') if $new_pid =~ /^\d+$/;
is($primary->safe_psql('postgres', 'SELECT count(*) FROM t'), '2', 'both rows are there');

# The slot keeps one verification window (8192 bytes) below truncate_lsn.
ok( SafekeeperNode::poll_until(sub {
            $primary->safe_psql('postgres',
                "SELECT truncate_lsn IS NOT NULL AND (SELECT restart_lsn FROM pg_replication_slots "
                  . "WHERE slot_name = 'walproposer') = truncate_lsn - 8192 FROM walproposer_status")
              eq 't';
        }, $commit_timeout),
    "the slot's restart_lsn is truncate_lsn - 8192")
  or diag($primary->safe_psql('postgres',
        "SELECT s.restart_lsn, w.truncate_lsn FROM pg_replication_slots s, walproposer_status w "
          . "WHERE s.slot_name = 'walproposer'"));

# A fast shutdown completes promptly: the postmaster does not restart the
# worker once the shutdown began.
{
    local $ENV{PGCTLTIMEOUT} = $stop_timeout;
    my $started = time;
    my $stopped = $primary->stop('fast', fail_ok => 1);
    my $elapsed = time - $started;
    ok($stopped && $elapsed < $stop_timeout,
        sprintf('pg_ctl stop -m fast completed in %.1fs', $elapsed));
}
ok(!-f $primary->data_dir . '/postmaster.pid', 'the server is down');
unless (-f $primary->data_dir . '/postmaster.pid') {
    ok($primary->log_contains('walproposer: the server is shutting down'),
        'the worker saw the shutdown as a shutdown, not a termination');
}

$_->stop for @sks;
done_testing();
