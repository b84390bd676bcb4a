# Chaos schedules on the real cluster: 3 safekeepers (the power-loss test
# build of the daemon), a primary, a stock standby streaming from the
# safekeepers, bank-style clients recording every acknowledged transaction,
# and a nemesis that injects faults at random times from a seed.
#
# Run through `scripts/run-tests chaos` (it prepares nft with CAP_NET_ADMIN
# and a small file system for the full-disk fault) or bench/chaos.sh.
#   WP_CHAOS_SCHEDULES  number of schedules (default 3)
#   WP_CHAOS_SECONDS    fault time per schedule (default 25)
#   WP_CHAOS_SEED       first seed (default: from the clock; printed)
#   WP_CHAOS_KINDS      only these fault kinds (comma-separated; default all)
# A schedule's faults come from its seed; a failure prints the seed and the
# fault log, and WP_CHAOS_SEED=<seed> WP_CHAOS_SCHEDULES=1 replays it (the
# timing of the processes themselves is not replayed).
#
# After each schedule the faults heal and the checker verifies: every
# acknowledged transaction is on the primary and on the standby; the sum of
# the balances never changed; no two primaries confirmed commits on one
# PostgreSQL timeline; every safekeeper's WAL equals the primary's byte for
# byte over what it holds; a safekeeper never recovers less WAL after a power
# loss than it reported durable before. Two fault kinds change the primary:
# a failover (the old primary killed, or left running and fenced; sync,
# promotion of the standby, a new standby) and a switchover (clean stop,
# sync, promotion, the old primary rewound as the standby): the acknowledged
# transactions of the old primary must all be on the new one.
use strict;
use warnings;

use File::Path qw(make_path);
use List::Util qw(shuffle sum0);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use SafekeeperNode;
use WalproposerCluster;
use Chaos;

my $schedules = $ENV{WP_CHAOS_SCHEDULES} // 3;
my $seconds = $ENV{WP_CHAOS_SECONDS} // 25;
my $seed0 = $ENV{WP_CHAOS_SEED} // (int(time * 1000) % 1_000_000);
my $nft = $ENV{WP_CHAOS_NFT}
  or die "WP_CHAOS_NFT is not set: run this through scripts/run-tests chaos\n";
my $disk = $ENV{WP_CHAOS_DISK}
  or die "WP_CHAOS_DISK is not set: run this through scripts/run-tests chaos\n";
my $powerloss_bin = ($ENV{WP_BIN_DIR} // 'build') . '/safekeeper-powerloss';
-x $powerloss_bin or die "$powerloss_bin is missing (make build/safekeeper-powerloss)\n";
note("chaos: $schedules schedules of ${seconds}s, first seed $seed0");

# ------------------------------------------------------------------ cluster
my @sks;
for my $i (1 .. 3) {
    my %where;
    if ($i == 3) {    # this one lives on the small file system (full-disk fault)
        $where{data_dir} = "$disk/chaos_sk3";
        make_path($where{data_dir});
    }
    my $sk = SafekeeperNode->new("chaos_sk$i", id => $i, binary => $powerloss_bin, %where);
    $sk->start;
    push @sks, $sk;
}
my @proxies = map { Chaos::Proxy->new($_->pg_port) } @sks;
# wal_log_hints: pg_rewind (the switchover) needs it, and the WAL back to
# the last common checkpoint (wal_keep_size).
my $primary = WalproposerCluster::start_primary('chaos_primary', \@proxies,
    extra_conf => "walproposer.connect_timeout = '1s'\nwal_log_hints = on\nwal_keep_size = 128MB\n");
WalproposerCluster::wait_for_status($primary, "state = 'elected' AND commit_lsn IS NOT NULL",
    'first election');
Chaos::Workload::create_schema($primary);
my $id = WalproposerCluster::default_id($primary);

my $hosts = join(',', map { '127.0.0.1' } @sks);
my $ports = join(',', map { $_->pg_port } @sks);
my $standbys = 0;

# The settings of a standby named $name that streams from the safekeepers.
sub standby_conf {
    my ($name) = @_;
    return <<"EOC";
primary_conninfo = 'host=$hosts port=$ports application_name=$name options=''-c tenant_id=$id -c timeline_id=$id'''
hot_standby = on
wal_retrieve_retry_interval = 200ms
EOC
}

# A stock standby of the current primary that streams from the safekeepers.
sub make_standby {
    my $name = 'chaos_standby' . $standbys++;
    $primary->backup("${name}_bkp");
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init_from_backup($primary, "${name}_bkp", has_streaming => 0);
    $node->append_conf('postgresql.conf', standby_conf($name));
    $node->set_standby_mode;
    $node->start;
    return $node;
}
my $standby = make_standby();

my $net = Chaos::Network->new(nft => $nft);

# ------------------------------------------------------------------- faults
# Each fault: start (returns a description) and heal. Network faults heal
# all together and re-apply the ones still active.
my %primary_down;
my @durability_violations;
my $failovers = 0;
my $switchovers = 0;
my $load;    # the current schedule's clients
my @active;    # { kind, heal_at, heal => sub, net => sub (re-apply) }
my @log;

sub logf { my $line = sprintf('%7.2fs %s', time - $main::t0, $_[0]); push @log, $line; }

sub postmaster_children {
    my ($pid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh> // '';
        close $fh;
        push @kids, $p if $stat =~ /^\d+ \(.*\) \S (\d+)/ && $1 == $pid;
    }
    closedir $dh;
    return @kids;
}

sub kill_primary {
    # SIGKILL of the postmaster and of every child: nothing gets to flush.
    my $pid = $primary->{_pid};
    my @kids = postmaster_children($pid);
    kill 'KILL', $pid, @kids;
    for (1 .. 500) { last unless kill 0, $pid, @kids; usleep(20_000); }
    $primary->{_pid} = undef;
    $primary_down{1} = 1;
}

sub worker_pid {
    return undef if $primary_down{1};
    my ($ret, $out) = $primary->psql('postgres', 'SELECT pid FROM walproposer_status');
    return $ret == 0 && $out =~ /^\d+$/ ? $out : undef;
}

sub disk_ballast { "$disk/ballast" }

my %fault = (
    sk_kill => sub {
        my $sk = $sks[ int(rand(3)) ];
        return () unless $sk->is_running;
        $sk->kill9;
        return ("SIGKILL " . $sk->name, sub { $sk->start unless $sk->is_running });
    },
    sk_power_loss => sub {
        my $i = int(rand(3));
        my $sk = $sks[$i];
        return () unless $sk->is_running;
        my $before = eval { WalproposerCluster::sk_timeline($sk, $primary)->{flush_lsn} };
        $sk->lose_power;
        return ("power loss of " . $sk->name, sub {
            return if $sk->is_running;
            # Restart it cut off from the proposer, so the flush LSN it
            # recovered is what the power loss left: it must not be below
            # what it reported durable before.
            $net->drop_port($sk->pg_port, 'both');
            $net->drop_port($proxies[$i]->port, 'both');
            $sk->start;
            my $after = eval { WalproposerCluster::sk_timeline($sk, $primary)->{flush_lsn} };
            $net->heal;
            $_->{net}->() for grep { $_->{net} } @active;
            if (defined $before && (!defined $after
                    || WalproposerCluster::lsn_to_int($after) < WalproposerCluster::lsn_to_int($before))) {
                push @durability_violations,
                  $sk->name . " reported $before durable but recovered " . ($after // 'nothing');
            }
            logf($sk->name . " recovered flush $after after the power loss (reported $before before)")
              if defined $before && defined $after;
        });
    },
    sk_pause => sub {
        my $sk = $sks[ int(rand(3)) ];
        return () unless $sk->is_running;
        $sk->pause;
        return ("SIGSTOP " . $sk->name, sub { $sk->resume });
    },
    proposer_pause => sub {
        my $pid = worker_pid() or return ();
        kill 'STOP', $pid;
        return ("SIGSTOP walproposer worker $pid", sub { kill 'CONT', $pid });
    },
    primary_kill => sub {
        return () if $primary_down{1};
        kill_primary();
        return ('SIGKILL primary', sub { $primary->start; delete $primary_down{1}; });
    },
    partition_sk => sub {
        my $i = int(rand(3));
        my $apply = sub {
            $net->drop_port($sks[$i]->pg_port, 'both');
            $net->drop_port($proxies[$i]->port, 'both');
        };
        return ("partition " . $sks[$i]->name . " from everyone", undef, $apply);
    },
    partition_requests => sub {
        my $i = int(rand(3));
        my $apply = sub { $net->drop_port($proxies[$i]->port, 'requests') };
        return ("drop primary -> " . $sks[$i]->name . " (one way)", undef, $apply);
    },
    partition_replies => sub {
        my $i = int(rand(3));
        my $apply = sub { $net->drop_port($proxies[$i]->port, 'replies') };
        return ("drop " . $sks[$i]->name . " -> primary (one way)", undef, $apply);
    },
    isolate_primary => sub {
        my $apply = sub { $net->drop_port($_->port, 'both') for @proxies };
        return ('partition the primary from every safekeeper', undef, $apply);
    },
    packet_loss => sub {
        my $i = int(rand(3));
        my $pct = 10 + int(rand(40));
        my $apply = sub { $net->lose_packets($proxies[$i]->port, $pct) };
        return ("lose $pct% of packets primary <-> " . $sks[$i]->name, undef, $apply);
    },
    disk_full => sub {
        return () if -e disk_ballast();
        my ($out, $err) = ('', '');
        IPC::Run::run([ 'df', '--output=avail', '-B1', $disk ], '>', \$out, '2>', \$err);
        my ($avail) = $out =~ /(\d+)\s*$/;
        return () unless $avail;
        IPC::Run::run([ 'fallocate', '-l', $avail, disk_ballast() ]);
        # fallocate may leave a little room; fill the rest with a write.
        IPC::Run::run([ 'dd', 'if=/dev/zero', 'of=' . disk_ballast() . '2', 'bs=64k' ],
            '>', '/dev/null', '2>', '/dev/null');
        # A failed write stops the timeline on that safekeeper until it is
        # restarted (it never retries after a failed write or fsync): the
        # operator frees space and restarts it.
        return ('disk full on ' . $sks[2]->name,
            sub {
                unlink disk_ballast(), disk_ballast() . '2';
                $sks[2]->stop if $sks[2]->is_running;
                $sks[2]->start unless $sks[2]->is_running;
            });
    },
);
# Delay: one primary-to-safekeeper link holds every byte 50 to 400 ms (the
# relay does it; this kernel has no netem).
$fault{delay} = sub {
    my $i = int(rand(3));
    my $ms = 50 + int(rand(351));
    $proxies[$i]->set_delay($ms);
    return ("delay primary <-> " . $sks[$i]->name . " by $ms ms",
        sub { $proxies[$i]->set_delay(0) });
};

# The rest of a failover or switchover once the old primary is out of the
# way: pg_walproposer_sync fences the old primary's timeline and brings a
# quorum to the sync LSN, the standby replays up to it and is promoted, and
# the clients move to it. Returns the sync LSN.
sub take_over {
    my $list = join(',', map { $_->address } @sks);
    my ($out, $err) = ('', '');
    my $synced = IPC::Run::run(
        [ 'pg_walproposer_sync', '--safekeepers', $list, '--tenant-id', $id, '--timeline-id', $id,
            '--timeout', '60', '--json' ],
        '>', \$out, '2>', \$err, IPC::Run::timeout(90));
    my ($sync_lsn) = $out =~ /"sync_lsn": "([0-9A-F]+\/[0-9A-F]+)"/;
    die "pg_walproposer_sync failed: $err$out\n" unless $synced && $sync_lsn;
    $standby->poll_query_until('postgres', "SELECT pg_last_wal_replay_lsn() >= '$sync_lsn'")
      or die "the standby did not replay up to the sync LSN $sync_lsn\n";
    $standby->promote;
    WalproposerCluster::wait_for_status($standby, "state = 'elected'", 'promoted standby');
    my $old = $primary;
    $primary = $standby;
    $primary->{_wp_system_id} = $old->{_wp_system_id};
    $standby = undef;
    delete $primary_down{1};
    $load->{node} = $primary if $load;
    return $sync_lsn;
}

# Failover: the primary is cut off from the safekeepers for a moment while
# the clients go on: a primary that acknowledged a commit the quorum never
# got would lose it here. Then either it dies for good, or it stays up with
# its clients going on: it reaches the safekeepers again and campaigns while
# the take-over runs, and once fenced must never confirm a commit (it is
# stopped when the fault heals). Then the take-over, and a new standby made
# from the new primary. Faults active at that moment are healed first (one
# failover at a time, on a quiet cluster).
$fault{failover} = sub {
    return () if $primary_down{1};
    heal_fault($active[-1]) while @active;
    $net->drop_port($_->port, 'both') for @proxies;
    my $cut_until = time + 1 + rand(1);
    while (time < $cut_until) { $load->pump(1) if $load; usleep(50_000); }
    my $old = $primary;
    my $left_running = rand() < 0.5;
    if ($left_running) {
        $primary_down{1} = 1;    # no client restarts on it from now on
    } else {
        kill_primary();
    }
    # The network heals before the take-over: a primary left running
    # reaches the safekeepers again and campaigns while the sync runs.
    $net->heal;
    my $sync_lsn = take_over();
    $standby = make_standby();
    $failovers++;
    my $what = "failover: " . $old->name . ($left_running ? ' left running (fenced)' : ' killed')
      . ", synced to $sync_lsn, " . $primary->name . ' promoted';
    return ($what, sub {
        return unless $left_running;
        my ($rc, $state) = $old->psql('postgres', 'SELECT state FROM walproposer_status');
        logf('the old primary ' . $old->name . " reports state '" . ($state // '?')
              . "' before it is stopped");
        $old->stop('immediate');
    });
};

# Switchover: the primary stops cleanly (its worker hands its WAL to the
# quorum), the take-over, then the old primary is rewound with pg_rewind
# and becomes the standby, streaming from the safekeepers.
$fault{switchover} = sub {
    return () if $primary_down{1};
    heal_fault($active[-1]) while @active;
    my $old = $primary;
    # A checkpoint first, while the worker still streams it: the shutdown
    # checkpoint is written after the worker has exited and never reaches
    # the safekeepers, so pg_rewind needs a common checkpoint before it.
    $old->safe_psql('postgres', 'CHECKPOINT');
    $old->stop('fast');
    $primary_down{1} = 1;
    my $sync_lsn = take_over();
    # A freshly promoted primary's control file names the old timeline until
    # its first checkpoint, and pg_rewind reads it from there.
    $primary->safe_psql('postgres', 'CHECKPOINT');
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'pg_rewind', '--target-pgdata', $old->data_dir, '--source-server',
            $primary->connstr('postgres') ], '>', \$out, '2>', \$err, IPC::Run::timeout(120))
      or die "pg_rewind of " . $old->name . " failed: $err$out\n";
    # pg_rewind copied the new primary's configuration: this node's own port
    # and name again, and the safekeepers as its upstream.
    $old->append_conf('postgresql.conf', 'port = ' . $old->port . "\n" . standby_conf($old->name));
    $old->set_standby_mode;
    $old->start;
    $standby = $old;
    $switchovers++;
    return ("switchover: " . $old->name . " stopped, synced to $sync_lsn, " . $primary->name
          . ' promoted, ' . $old->name . ' rewound as its standby', sub { });
};
my @kinds = sort keys %fault;
if ($ENV{WP_CHAOS_KINDS}) {
    my @wanted = split /,/, $ENV{WP_CHAOS_KINDS};
    my @unknown = grep { !$fault{$_} } @wanted;
    die "WP_CHAOS_KINDS: unknown fault kind(s) @unknown (known: @kinds)\n" if @unknown;
    @kinds = sort @wanted;
}

sub start_fault {
    my ($kind, $duration) = @_;
    my ($what, $heal, $apply) = $fault{$kind}->();
    return 0 unless defined $what;
    $apply->() if $apply;
    push @active, { kind => $kind, what => $what, heal_at => time + $duration, heal => $heal,
        net => $apply };
    logf(sprintf('inject %s: %s for %.1fs', $kind, $what, $duration));
    return 1;
}

sub heal_fault {
    my ($f) = @_;
    if ($f->{net}) {
        $net->heal;
        $_->{net}->() for grep { $_ != $f && $_->{net} } @active;
    } else {
        $f->{heal}->();
    }
    @active = grep { $_ != $f } @active;
    logf("heal $f->{kind}: $f->{what}");
}

# --------------------------------------------------------------- schedules
our $t0;
my %kinds_seen;
my $fault_number = 0;
my %acks_by_timeline;    # PostgreSQL timeline -> node -> acknowledged transactions
my %checked_to;    # safekeeper name -> LSN up to which its WAL was compared
my $next_block = 0;
my @kind_order;
{
    srand($seed0);
    @kind_order = shuffle(@kinds);
}
for my $s (0 .. $schedules - 1) {
    my $seed = $seed0 + $s;
    srand($seed);
    $main::t0 = time;
    @log = ();
    @durability_violations = ();
    $load = Chaos::Workload->new($primary, clients => 3, rng => sub { rand() },
        first_block => $next_block);
    my $end = time + $seconds;
    my $next_fault = time + 1 + rand(2);
    while (time < $end) {
        $load->pump(!$primary_down{1});
        my @due = grep { time >= $_->{heal_at} } @active;
        heal_fault($_) for @due;
        if (time >= $next_fault && @active < 2) {
            # Every kind in turn (in a seeded order), so a few schedules
            # cover them all; targets and durations are random.
            # A kind that cannot be injected right now (its target is down)
            # is tried again at the next fault time.
            my $kind = $kind_order[ $fault_number % @kind_order ];
            if (start_fault($kind, 1 + rand(3))) {
                $fault_number++;
                $kinds_seen{$kind}++;
            }
            $next_fault = time + 1.5 + rand(2.5);
        }
        usleep(100_000);
    }
    heal_fault($active[-1]) while @active;
    $load->pump(!$primary_down{1});

    is(scalar @durability_violations, 0,
        "schedule $s: no safekeeper lost WAL it had reported durable")
      or diag(join("\n", @durability_violations) . "\nfault log:\n" . join("\n", @log));

    # Recovery: the primary is elected again and confirms a commit.
    my $recovered = eval {
        WalproposerCluster::wait_for_status($primary, "state = 'elected'", 'after healing');
        $primary->safe_psql('postgres', 'INSERT INTO acked VALUES (' . (-1 - $s) . ')');
        1;
    };
    ok($recovered, "schedule $s (seed $seed): the primary confirms commits after healing")
      or diag("fault log:\n" . join("\n", @log) . "\n$@");
    # Let clients whose COMMIT was waiting collect their acknowledgement.
    my $settle = time + 2;
    while (time < $settle) { $load->pump(0); usleep(100_000); }
    $load->stop;
    $next_block = $load->next_block;
    my @acked = @{ $load->acked_ids };

    my %on_primary = map { $_ => 1 } split /\n/,
      $primary->safe_psql('postgres', 'SELECT id FROM acked');
    my @missing = grep { !$on_primary{$_} } @acked;
    is(scalar @missing, 0,
        "schedule $s (seed $seed): all " . scalar(@acked) . ' acknowledged transactions are on the primary')
      or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]\nfault log:\n" . join("\n", @log));
    my $total = $Chaos::Workload::ACCOUNTS * $Chaos::Workload::BALANCE;
    is($primary->safe_psql('postgres', 'SELECT sum(balance) FROM accounts'), $total,
        "schedule $s: the bank's total is unchanged on the primary");

    # No two primaries confirmed commits on one PostgreSQL timeline (every
    # acknowledgement carries the timeline its transaction was written on).
    for my $tli (keys %{ $load->acks_by_timeline }) {
        my $nodes = $load->acks_by_timeline->{$tli};
        $acks_by_timeline{$tli}{$_} += $nodes->{$_} for keys %$nodes;
    }
    my @shared = grep { keys %{ $acks_by_timeline{$_} } > 1 } sort { $a <=> $b } keys %acks_by_timeline;
    is("@shared", '', "schedule $s: one primary per PostgreSQL timeline confirmed commits")
      or diag(join("\n", map { my $t = $_; "timeline $t: "
            . join(', ', map { "$_ $acks_by_timeline{$t}{$_}" } sort keys %{ $acks_by_timeline{$t} }) }
            @shared) . "\nfault log:\n" . join("\n", @log));

    my $flush = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
    ok($standby->poll_query_until('postgres', "SELECT pg_last_wal_replay_lsn() >= '$flush'"),
        "schedule $s: the standby replays up to the primary's end of WAL")
      or diag("fault log:\n" . join("\n", @log));
    my %on_standby = map { $_ => 1 } split /\n/, $standby->safe_psql('postgres', 'SELECT id FROM acked');
    my @missing_standby = grep { !$on_standby{$_} } @acked;
    is(scalar @missing_standby, 0, "schedule $s: every acknowledged transaction is on the standby");
    is($standby->safe_psql('postgres', 'SELECT sum(balance) FROM accounts'), $total,
        "schedule $s: the bank's total is unchanged on the standby");

    for my $sk (@sks) {
        ok(WalproposerCluster::wait_for_sk_flush($sk, $primary, $flush),
            "schedule $s: " . $sk->name . ' catches up');
        my ($compared, @mismatch) =
          WalproposerCluster::compare_wal_with_primary($sk, $primary, $checked_to{ $sk->name });
        is(scalar @mismatch, 0, "schedule $s: " . $sk->name . "'s WAL equals the primary's ($compared bytes)")
          or diag(join("\n", @mismatch));
    }
    # The next schedule compares only what is new (the WAL grows; nothing
    # below this point changes once every check above passed).
    $checked_to{ $_->name } = $flush for @sks;
    note("schedule $s (seed $seed): " . scalar(@acked) . " acknowledged, faults:\n" . join("\n", @log));
}

# Every fault kind ran at least once when the run is long enough for it.
if ($schedules * $seconds >= 3 * 20) {
    my @never = grep { !$kinds_seen{$_} } @kinds;
    is("@never", '', 'every fault kind was injected');
}
note('acknowledged per PostgreSQL timeline: ' . join(', ', map { my $t = $_;
            "$t: " . join('+', map { "$_ $acks_by_timeline{$t}{$_}" } sort keys %{ $acks_by_timeline{$t} }) }
        sort { $a <=> $b } keys %acks_by_timeline));
note('fault kinds: ' . join(', ', map { "$_ $kinds_seen{$_}" } sort keys %kinds_seen)
      . "; failovers: $failovers; switchovers: $switchovers");

$net->destroy;
$_->stop for @proxies;
$standby->stop;
$primary->stop;
$_->stop for @sks;
done_testing();
