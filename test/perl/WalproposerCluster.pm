# WalproposerCluster: building blocks for TAP tests of a primary with the
# walproposer extension and a set of safekeepers.
#
#   my @sks = WalproposerCluster::start_safekeepers(3);
#   my $primary = WalproposerCluster::start_primary('primary', \@sks);
#   WalproposerCluster::wait_for_status($primary, "state = 'elected'");
#   my $tl = WalproposerCluster::sk_timeline($sks[0], $primary);
#   WalproposerCluster::compare_wal_with_primary($sks[0], $primary);
package WalproposerCluster;

use strict;
use warnings;

use Carp;
use IPC::Run ();
use File::Copy ();
use Test::More;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SafekeeperNode;

# Every psql call of a test (safe_psql included) gets a time limit, so a
# COMMIT that blocks on the quorum fails the test with "psql timed out"
# after $PostgreSQL::Test::Utils::timeout_default seconds instead of hanging
# until the whole layer is killed. A caller's own timeout still wins.
{
    no warnings 'redefine';
    my $psql = \&PostgreSQL::Test::Cluster::psql;
    *PostgreSQL::Test::Cluster::psql = sub {
        my ($self, $dbname, $sql, %params) = @_;
        $params{timeout} //= $PostgreSQL::Test::Utils::timeout_default;
        return $psql->($self, $dbname, $sql, %params);
    };
}

# A timer for IPC::Run::start: pump and finish die with `what` once it
# expires (every background client a test starts must have one).
sub timer {
    my ($what) = @_;
    return IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default, name => $what);
}

# Starts `psql -c $sql` on $node in the background (with a timer).
# Returns the harness and refs to its stdout and stderr.
sub start_psql {
    my ($node, $sql, $what) = @_;
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start(
        [ 'psql', '-XAt', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c', $sql ],
        '>', \$out, '2>', \$err, timer($what // $sql));
    return ($h, \$out, \$err);
}

# True when the background command $h ends within $seconds.
sub finishes_within {
    my ($h, $seconds) = @_;
    my $t0 = time;
    while (time - $t0 < $seconds) {
        $h->pump_nb if $h->pumpable;
        return 1 if !$h->pumpable;
        usleep(100_000);
    }
    return 0;
}

# Starts $n safekeepers with ids 1..$n (or from $first_id).
sub start_safekeepers {
    my ($n, $first_id) = @_;
    $first_id //= 1;
    my @sks;
    for my $id ($first_id .. $first_id + $n - 1) {
        my $sk = SafekeeperNode->new("sk$id", id => $id);
        $sk->start;
        push @sks, $sk;
    }
    return @sks;
}

sub safekeeper_list {
    my ($sks) = @_;
    return join(',', map { $_->address } @$sks);
}

# A primary with the library preloaded, commits waiting for the quorum of
# @$sks, and the extension created in database postgres.
sub start_primary {
    my ($name, $sks, %params) = @_;
    SafekeeperNode::auth_setup();    # PGPASSFILE, before the postmaster starts
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init(allows_streaming => 1);
    my $list = safekeeper_list($sks);
    # Explicit ids (tenant_id => HEX, timeline_id => HEX) replace the
    # defaults derived from the system identifier.
    for my $key (qw(tenant_id timeline_id)) {
        next unless $params{$key};
        $node->{"_wp_$key"} = $params{$key};
        $node->append_conf('postgresql.conf', "walproposer.$key = '$params{$key}'\n");
    }
    $node->append_conf('postgresql.conf', <<"EOC");
shared_preload_libraries = 'walproposer'
synchronous_standby_names = 'walproposer'
walproposer.safekeepers = '$list'
walproposer.reconnect_timeout = '200ms'
walproposer.safekeeper_conninfo = '@{[ SafekeeperNode::tls_conninfo() ]}'
walproposer.connect_timeout = '2s'
log_statement = none
EOC
    $node->append_conf('postgresql.conf', $params{extra_conf}) if $params{extra_conf};
    $node->start;
    $node->safe_psql('postgres', 'CREATE EXTENSION walproposer');
    system_id($node);
    return $node;
}

# The node's system identifier (read once, so it works while the node is down).
sub system_id {
    my ($node) = @_;
    $node->{_wp_system_id} //=
      $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
    return $node->{_wp_system_id};
}

# The default tenant/timeline id: the system identifier as 32 hex digits.
sub default_id {
    my ($node) = @_;
    return sprintf('%016x%016x', 0, system_id($node));
}

sub lsn_to_int {
    my ($lsn) = @_;
    return 0 unless defined $lsn && $lsn =~ m{^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$};
    return hex($1) * 2**32 + hex($2);
}

# The tenant and timeline ids the primary streams under.
sub tenant_id   { my ($node) = @_; return $node->{_wp_tenant_id}   // default_id($node); }
sub timeline_id { my ($node) = @_; return $node->{_wp_timeline_id} // default_id($node); }

# The safekeeper's JSON status of the primary's timeline (undef if absent).
sub sk_timeline {
    my ($sk, $node) = @_;
    my ($t, $l) = (tenant_id($node), timeline_id($node));
    my $resp = $sk->http('GET', "/v1/tenant/$t/timeline/$l");
    return undef unless $resp->{success};
    return JSON::PP::decode_json($resp->{content});
}

sub sk_timeline_dir {
    my ($sk, $node) = @_;
    return $sk->data_dir . '/' . tenant_id($node) . '/' . timeline_id($node);
}

# Waits (bounded) until the row of walproposer_status satisfies $condition.
sub wait_for_status {
    my ($node, $condition, $what) = @_;
    return $node->poll_query_until('postgres',
        "SELECT ($condition) FROM walproposer_status")
      || croak "timed out waiting for walproposer_status: $condition ("
      . ($what // '') . '): '
      . $node->safe_psql('postgres', 'SELECT * FROM walproposer_status');
}

# Value of a safekeeper metric (the first series of `name`), or undef.
sub sk_metric {
    my ($sk, $name) = @_;
    my $resp = $sk->http('GET', '/metrics');
    return undef unless $resp->{success};
    my ($v) = $resp->{content} =~ /^\Q$name\E(?:\{[^}]*\})? (\d+)$/m;
    return $v;
}

# Names of the complete WAL segment files in $dir (no .partial), sorted.
sub complete_segments {
    my ($dir) = @_;
    opendir my $dh, $dir or return ();
    my @s = sort grep { /^[0-9A-F]{24}$/ } readdir $dh;
    closedir $dh;
    return @s;
}

# Waits until safekeeper $sk reports flush_lsn >= $lsn for the timeline.
sub wait_for_sk_flush {
    my ($sk, $node, $lsn) = @_;
    my $want = lsn_to_int($lsn);
    return SafekeeperNode::poll_until(sub {
        my $tl = sk_timeline($sk, $node);
        return $tl && lsn_to_int($tl->{flush_lsn}) >= $want;
    });
}

sub read_range {
    my ($path, $offset, $length) = @_;
    open my $fh, '<:raw', $path or return undef;
    sysseek($fh, $offset, 0) or return undef;
    my $buf = '';
    my $got = sysread($fh, $buf, $length);
    close $fh;
    return defined $got && $got == $length ? $buf : undef;
}

# Compares every WAL byte the safekeeper holds (from its timeline start up to
# its flush LSN) with the primary's pg_wal (each segment on the primary's
# newest timeline that has it), over the segments both still have; with
# $from_lsn, only the bytes from there on. Returns (bytes compared, list of mismatch descriptions).
sub compare_wal_with_primary {
    my ($sk, $node, $from_lsn) = @_;
    my $tl = sk_timeline($sk, $node) or return (0, 'no timeline on ' . $sk->name);
    my $segsize = $tl->{wal_segment_size};
    my $start = lsn_to_int($tl->{timeline_start_lsn});
    # Optionally only from $from_lsn on (a caller that checked below it before).
    $start = lsn_to_int($from_lsn) if defined $from_lsn && lsn_to_int($from_lsn) > $start;
    my $flush = lsn_to_int($tl->{flush_lsn});
    my $dir = sk_timeline_dir($sk, $node);
    my $pg_wal = $node->data_dir . '/pg_wal';
    my ($compared, @mismatches) = (0);
    opendir my $dh, $dir or return (0, "cannot open $dir");
    for my $file (sort readdir $dh) {
        next unless $file =~ /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;
        my $segno = hex($2) * (2**32 / $segsize) + hex($3);
        my $seg_start = $segno * $segsize;
        my $from = $start > $seg_start ? $start - $seg_start : 0;
        my $to = $flush < $seg_start + $segsize ? $flush - $seg_start : $segsize;
        next if $to <= $from;
        # The primary's copy of this segment on its newest timeline: after a
        # promotion the switch segment exists on both, and only the newer
        # file holds the new timeline's bytes (the safekeeper names a
        # segment by the timeline that created it).
        my ($name) = reverse sort grep { -f "$pg_wal/$_" }
          map { sprintf('%08X%s%s', $_, $2, $3) } 1 .. hex($1) + 16;
        next unless defined $name;
        my $a = read_range("$dir/$file", $from, $to - $from);
        my $b = read_range("$pg_wal/$name", $from, $to - $from);
        if (!defined $a && !-e "$dir/$file") {
            next;    # removed by WAL retention since the listing
        } elsif (!defined $a || !defined $b) {
            push @mismatches, "$file: cannot read [$from, $to)";
        } elsif ($a ne $b) {
            my $i = 0;
            $i++ while $i < length($a) && substr($a, $i, 1) eq substr($b, $i, 1);
            push @mismatches, sprintf('%s: first difference at offset %d', $file, $from + $i);
        } else {
            $compared += $to - $from;
        }
    }
    closedir $dh;
    return ($compared, @mismatches);
}

1;

package WalproposerCluster;

# Transaction ids with a COMMIT record in the WAL the safekeeper holds (its
# segments, read with pg_waldump from a scratch copy: pg_waldump does not
# read ".partial" files).
sub committed_xids_on_sk {
    my ($sk, $node) = @_;
    my $tl = sk_timeline($sk, $node) or return {};
    my $dir = sk_timeline_dir($sk, $node);
    my $copy = PostgreSQL::Test::Utils::tempdir('waldump');
    opendir my $dh, $dir or return {};
    for my $file (readdir $dh) {
        next unless $file =~ /^([0-9A-F]{24})(\.partial)?$/;
        File::Copy::copy("$dir/$file", "$copy/$1") or croak "copy $file: $!";
    }
    closedir $dh;
    my ($out, $err) = ('', '');
    IPC::Run::run([ 'pg_waldump', '-p', $copy, '-s', $tl->{timeline_start_lsn}, '-e',
            $tl->{flush_lsn}, '-r', 'Transaction' ], '>', \$out, '2>', \$err);
    my %xids;
    for my $line (split /\n/, $out) {
        $xids{$1} = 1 if $line =~ /tx:\s+(\d+),.*desc: COMMIT/;
    }
    return \%xids;
}

1;

package WalproposerCluster;

# ------------------------------------------------------------ failover helpers

# Kills a PostgreSQL server the hard way, as a machine crash would: SIGKILL
# to the postmaster and every process it started, at once. (Each child of
# the postmaster is its own process group leader, so a group kill would
# miss them; SIGKILL of the postmaster alone leaves the backends and the
# walproposer worker running until they notice.) Waits until all are gone.
# Takes a PostgreSQL::Test::Cluster or a data directory.
sub kill9_postgres {
    my ($node) = @_;
    my $data = ref $node ? $node->data_dir : $node;
    open my $fh, '<', "$data/postmaster.pid" or croak "no postmaster.pid in $data";
    my $pm = <$fh>;
    close $fh;
    chomp $pm;
    my @pids = ($pm);
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $sf, '<', $stat or next;
        my $line = <$sf> // '';
        close $sf;
        # pid (comm) state ppid ...; comm may hold spaces and parentheses.
        next unless $line =~ /^(\d+) \(.*\) \S+ (\d+) /s;
        push @pids, $1 if $2 == $pm;
    }
    kill 'KILL', @pids;
    SafekeeperNode::poll_until(sub { !grep { kill 0, $_ } @pids }, 30)
      or croak "processes of $data survived SIGKILL: @pids";
    # postmaster.pid stays behind, as after a crash (pg_ctl start copes).
    $node->{_pid} = undef if ref $node;
    return scalar @pids;
}

# A standby from backup $backup of $primary that streams from every
# safekeeper of @$sks (primary_conninfo lists them all, with the primary's
# tenant and timeline ids). It keeps the primary's settings, so walproposer
# is preloaded and configured the same way. Not started.
sub make_sk_standby {
    my ($primary, $backup, $name, $sks, %params) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init_from_backup($primary, $backup, has_streaming => 0);
    my $hosts = join(',', ('127.0.0.1') x @$sks);
    my $ports = join(',', map { $_->pg_port } @$sks);
    my ($t, $l) = (tenant_id($primary), timeline_id($primary));
    # conninfo => TEXT: exactly that primary_conninfo (e.g. the output of
    # walproposer_standby_conninfo()).
    my $conninfo = $params{conninfo}
      // "host=$hosts port=$ports user=replica @{[ SafekeeperNode::tls_conninfo() ]} application_name=$name options='-c tenant_id=$t -c timeline_id=$l'";
    $conninfo =~ s/'/''/g;
    $node->append_conf('postgresql.conf', <<"EOC");
primary_conninfo = '$conninfo'
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1
wal_retrieve_retry_interval = 200ms
wal_keep_size = 128MB
EOC
    $node->set_standby_mode;
    $node->{_wp_system_id} = system_id($primary);
    $node->{_wp_tenant_id} = $primary->{_wp_tenant_id} if $primary->{_wp_tenant_id};
    $node->{_wp_timeline_id} = $primary->{_wp_timeline_id} if $primary->{_wp_timeline_id};
    return $node;
}

# A command-line tool of the project: the built one in $WP_BIN_DIR, else the
# installed one on PATH.
sub tool {
    my ($name) = @_;
    my $built = $ENV{WP_BIN_DIR} ? "$ENV{WP_BIN_DIR}/$name" : '';
    return -x $built ? $built : $name;
}

sub sync_tool { return tool('pg_walproposer_sync'); }

# restore_command for a standby of $primary that fetches WAL from @$sks as
# role replica, verifying the safekeepers' certificates.
sub restore_command {
    my ($sks, %params) = @_;
    return tool('pg_walproposer_restore') . ' --safekeepers ' . safekeeper_list($sks)
      . " --conninfo 'user=replica @{[ SafekeeperNode::tls_conninfo() ]}'"
      . ($params{extra} ? " $params{extra}" : '') . ' %f %p';
}

# Runs pg_walproposer_sync --json against @$sks for $node's timeline, as the
# walproposer role verifying the certificates (conninfo => '...' for other
# libpq options).
# Returns a hash: rc, out, err, seconds, and json (the decoded object, or
# undef).
sub run_sync {
    my ($sks, $node, %params) = @_;
    my @cmd = (sync_tool(), '--safekeepers', safekeeper_list($sks), '--tenant-id',
        tenant_id($node), '--timeline-id', timeline_id($node), '--timeout',
        $params{timeout} // 30, '--json', '--conninfo',
        $params{conninfo} // SafekeeperNode::tls_conninfo());
    my ($out, $err) = ('', '');
    my $t0 = time;
    IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
        IPC::Run::timeout(($params{timeout} // 30) + 60));
    my %r = (rc => $? >> 8, out => $out, err => $err, seconds => time - $t0);
    my ($line) = grep { /^\{/ } reverse split /\n/, $out;
    $r{json} = eval { JSON::PP::decode_json($line) } if $line;
    return \%r;
}

# Waits (bounded) until the standby replayed up to $lsn.
sub wait_replayed {
    my ($node, $lsn) = @_;
    return $node->poll_query_until('postgres',
        "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn");
}

# Polls walproposer_status until $condition holds, for at most $secs
# seconds; returns true when it did (never dies: for conditions a test
# expects may fail).
sub status_within {
    my ($node, $condition, $secs) = @_;
    return SafekeeperNode::poll_until(sub {
        my ($ok, $out) = (0, '');
        my $rc = $node->psql('postgres', "SELECT ($condition) FROM walproposer_status",
            stdout => \$out, on_error_die => 0);
        return $rc == 0 && $out eq 't';
    }, $secs);
}

# Runs $sql on $node in autocommit and reports whether the COMMIT returned
# within $secs seconds. A client-side limit: statement_timeout would cancel
# the synchronous-replication wait and return a COMMIT that is only local.
# The client is killed if it did not return.
sub commit_returns_within {
    my ($node, $sql, $secs) = @_;
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start(
        [ 'psql', '-XAt', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c', $sql ],
        '>', \$out, '2>', \$err);
    my $t0 = time;
    while (time - $t0 < $secs) {
        $h->pump_nb if $h->pumpable;
        if (!$h->pumpable) {
            $h->finish;
            return (1, $out, $err);
        }
        usleep(50_000);
    }
    $h->kill_kill;
    return (0, $out, $err);
}

# True when `psql -c $sql` on $node exits 0 within $secs seconds with
# nothing on stderr: a COMMIT the quorum confirmed (a cancelled wait or a
# refused statement prints a WARNING or an ERROR).
sub commit_confirmed {
    my ($node, $sql, $secs) = @_;
    my ($returned, $out, $err) = commit_returns_within($node, $sql, $secs);
    return $returned && ($err // '') eq '' && ($out // '') ne '';
}

# pgbench -i -s 2 on $node, then WAL switches and checkpoints until the
# primary has recycled the segment where the timeline starts on safekeeper
# $sk (bounded: 120 s). Returns (recycled?, that segment's name, the
# timeline's start LSN).
sub recycle_first_segment {
    my ($node, $sk) = @_;
    $node->command_ok([ 'pgbench', '-i', '-s', '2', '-q', '-h', $node->host, '-p', $node->port,
            'postgres' ], 'pgbench -i');
    my $start = sk_timeline($sk, $node)->{timeline_start_lsn};
    my $first_seg = $node->safe_psql('postgres', "SELECT pg_walfile_name('$start')");
    my $pg_wal = $node->data_dir . '/pg_wal';
    my $done = SafekeeperNode::poll_until(sub {
            $node->safe_psql('postgres',
                'SELECT pg_switch_wal(); INSERT INTO pgbench_history VALUES (1, 1, 1, 1, now()); CHECKPOINT');
            !-e "$pg_wal/$first_seg";
        }, 120);
    return ($done, $first_seg, $start);
}

# Writers that commit continuously: each is a psql running one INSERT per
# statement (autocommit) into $table (id bigint, writer int, pad text) and
# printing the id once its COMMIT returned. Writers are numbered from
# $first (default 1); writer $w uses ids $w * 10^9 + 1, 2, ...
sub start_writers {
    my ($node, $table, $count, $first) = @_;
    $first //= 1;
    my @writers;
    for my $w ($first .. $first + $count - 1) {
        my $file = PostgreSQL::Test::Utils::tempdir() . "/writer$w.sql";
        my $base = $w * 1_000_000_000;
        PostgreSQL::Test::Utils::append_to_file($file, join('', map {
            "INSERT INTO $table VALUES ($base + $_, $w, repeat('x', 200)) RETURNING id;\n"
        } 1 .. 200_000));
        my %wr = (out => '', err => '');
        $wr{h} = IPC::Run::start(
            [ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-f',
                $file ], '>', \$wr{out}, '2>', \$wr{err});
        push @writers, \%wr;
    }
    return \@writers;
}

# After the server died: waits for the writers to exit and returns the ids
# whose COMMIT returned.
sub acked_ids {
    my ($writers) = @_;
    my @ids;
    for my $wr (@$writers) {
        SafekeeperNode::poll_until(sub { $wr->{h}->pump_nb if $wr->{h}->pumpable; !$wr->{h}->pumpable }, 60)
          or $wr->{h}->kill_kill;
        eval { $wr->{h}->finish };
        push @ids, grep { /^\d+$/ } split /\n/, $wr->{out};
    }
    return @ids;
}

# Ids of @$ids that are not in $table on $node.
sub missing_ids {
    my ($node, $table, $ids) = @_;
    my %have = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', "SELECT id FROM $table");
    return grep { !$have{$_} } @$ids;
}

1;
