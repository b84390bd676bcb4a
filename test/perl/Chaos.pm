# Chaos: a Jepsen-style fault harness for the real cluster (test/chaos/).
#
#   my $net = Chaos::Network->new(nft => $path);      # nftables table of our own
#   $net->drop_port($port, 'both'|'requests'|'replies');
#   $net->lose_packets($port, $percent);
#   $net->heal; $net->destroy;
#   my $proxy = Chaos::Proxy->new($target_port);      # chaos-relay: one link = one port
#   $proxy->set_delay($ms);
#   my $load = Chaos::Workload->new($primary, clients => 3);
#   $load->pump; $load->acked_ids; $load->stop;
#
# Faults act on real processes (SIGKILL, SIGSTOP, the daemon's power-loss
# test build) and on real packets: nftables rules drop the TCP segments of a
# link, so the kernel does not ACK them (unlike SIGSTOP, which leaves the
# peer's kernel answering). Each link from the primary to a safekeeper goes
# through its own relay port, so a rule on that port cuts exactly that link
# while the standby still reaches the safekeeper.
#
# Privileges: nft needs CAP_NET_ADMIN. scripts/run-tests (chaos layer, as
# root) gives a private copy of nft that capability and passes its path in
# WP_CHAOS_NFT; nothing here runs as root.
package Chaos;

use strict;
use warnings;

use Carp;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep time);

# ------------------------------------------------------------------ network
package Chaos::Network;

use Carp;

sub new {
    my ($class, %params) = @_;
    my $self = bless {
        nft   => $params{nft} // croak('Chaos::Network needs nft => path'),
        # WP_CHAOS_TABLE: a name given by the runner, which removes that
        # table (and only that one) if the test dies.
        table => $ENV{WP_CHAOS_TABLE} // "wpchaos$$",
        rules => [],
    }, $class;
    $self->_nft("add table inet $self->{table}\n"
          . "add chain inet $self->{table} out { type filter hook output priority 0; policy accept; }\n");
    return $self;
}

sub _nft {
    my ($self, $script) = @_;
    my ($out, $err) = ('', '');
    IPC::Run::run([ $self->{nft}, '-f', '-' ], '<', \$script, '>', \$out, '2>', \$err,
        IPC::Run::timeout(30))
      or croak "nft failed: $err (script: $script)";
}

# Drops the TCP segments of connections to 127.0.0.1:$port: 'requests'
# (towards the port), 'replies' (from it) or 'both'.
sub drop_port {
    my ($self, $port, $direction) = @_;
    my @rules;
    push @rules, "tcp dport $port drop" if $direction ne 'replies';
    push @rules, "tcp sport $port drop" if $direction ne 'requests';
    $self->_nft(join('', map { "add rule inet $self->{table} out $_\n" } @rules));
    push @{ $self->{rules} }, @rules;
}

# Drops $percent % of the segments in both directions of $port.
sub lose_packets {
    my ($self, $port, $percent) = @_;
    my @rules = ("tcp dport $port numgen random mod 100 < $percent drop",
        "tcp sport $port numgen random mod 100 < $percent drop");
    $self->_nft(join('', map { "add rule inet $self->{table} out $_\n" } @rules));
    push @{ $self->{rules} }, @rules;
}

sub heal {
    my ($self) = @_;
    $self->_nft("flush chain inet $self->{table} out\n");
    $self->{rules} = [];
}

sub destroy {
    my ($self) = @_;
    return if $self->{destroyed}++;
    eval { $self->_nft("delete table inet $self->{table}\n") };
}
# A test that dies still removes its rules.
sub DESTROY { my ($self) = @_; local ($@, $?); $self->destroy; }

# -------------------------------------------------------------------- proxy
package Chaos::Proxy;

use Carp;
use IO::Socket::INET;
use Time::HiRes qw(usleep);

# A TCP relay 127.0.0.1:<own port> -> 127.0.0.1:$target_port: the test
# build's chaos-relay (test/chaos/chaos_relay.cpp), which can also delay
# what it carries (this kernel has no netem).
sub new {
    my ($class, $target_port) = @_;
    my $bin = ($ENV{WP_BIN_DIR} // 'build') . '/chaos-relay';
    -x $bin or croak "$bin is missing (make builds it)";
    my $port = PostgreSQL::Test::Cluster::get_free_port();
    my $control = PostgreSQL::Test::Utils::tempdir('relay') . '/delay';
    my $h = IPC::Run::start(
        [ $bin, '--listen', $port, '--target', $target_port, '--control', $control ],
        '>', '/dev/null', '2>', '/dev/null');
    my $self = bless { port => $port, target => $target_port, h => $h, control => $control,
        pid => $h->{KIDS}[0]{PID} }, $class;
    # Wait until it listens.
    for (1 .. 200) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
        if ($s) { close $s; return $self; }
        usleep(20_000);
    }
    croak "chaos-relay on port $port did not start";
}

# Every byte read from either side from now on is held $ms milliseconds
# before it is passed on (0: none).
sub set_delay {
    my ($self, $ms) = @_;
    open my $fh, '>', "$self->{control}.new" or croak "write $self->{control}: $!";
    print $fh "$ms\n";
    close $fh;
    rename "$self->{control}.new", $self->{control} or croak "rename: $!";
    kill 'HUP', $self->{pid} or croak "chaos-relay $self->{pid} is gone";
}

sub port    { $_[0]->{port} }
sub address { '127.0.0.1:' . $_[0]->{port} }
sub stop    { my ($self) = @_; $self->{h}->kill_kill if $self->{h}; $self->{h} = undef; }
# A test that dies still ends its relays.
sub DESTROY { my ($self) = @_; local ($@, $?); $self->stop; }

# ----------------------------------------------------------------- workload
package Chaos::Workload;

use Carp;

# Bank accounts and acknowledged ids; every transaction moves 1 between two
# accounts (the sum never changes) and inserts a unique id, printed by psql
# only once its COMMIT returned, with the PostgreSQL timeline the
# transaction was written on. The workload remembers which node acknowledged
# each id, so a checker can tell whether two primaries ever confirmed
# commits on one timeline.
our $ACCOUNTS = 10;
our $BALANCE = 1000;

sub create_schema {
    my ($node) = @_;
    $node->safe_psql('postgres', <<"SQL");
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO accounts SELECT g, $BALANCE FROM generate_series(1, $ACCOUNTS) g;
CREATE TABLE acked (id bigint PRIMARY KEY);
SQL
}

sub new {
    my ($class, $node, %params) = @_;
    my $self = bless {
        node    => $node,
        clients => $params{clients} // 3,
        rng     => $params{rng},    # sub returning a float in [0, 1)
        dir     => PostgreSQL::Test::Utils::tempdir('workload'),
        runs    => [],
        acked   => {},
        block   => $params{first_block} // 0,
    }, $class;
    $self->_start_client($_) for 0 .. $self->{clients} - 1;
    return $self;
}

# Each (re)start of a client gets a fresh block of ids, so a statement that
# was in flight when its connection died is never re-run under the same id.
sub _start_client {
    my ($self, $client) = @_;
    my $block = $self->{block}++;
    my $base = ($block * 100 + $client) * 1_000_000;
    my $file = "$self->{dir}/client${client}_$block.sql";
    open my $fh, '>', $file or croak "write $file: $!";
    for my $k (1 .. 20_000) {
        my $from = 1 + int($self->{rng}->() * $ACCOUNTS);
        my $to = 1 + ($from + int($self->{rng}->() * ($ACCOUNTS - 1))) % $ACCOUNTS;
        my $id = $base + $k;
        print $fh "WITH a AS (UPDATE accounts SET balance = balance - 1 WHERE id = $from "
          . "RETURNING 1), b AS (UPDATE accounts SET balance = balance + 1 WHERE id = $to "
          . "RETURNING 1) INSERT INTO acked SELECT $id FROM a, b "
          . "RETURNING id, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8);\n";
    }
    close $fh;
    my $run = { client => $client, out => '', err => '', node => $self->{node}->name };
    $run->{h} = IPC::Run::start(
        [ 'stdbuf', '-oL', 'psql', '-XAtq', '-h', $self->{node}->host, '-p', $self->{node}->port, '-d',
            'postgres', '-v', 'ON_ERROR_STOP=0', '-f', $file ],
        '>', \$run->{out}, '2>', \$run->{err});
    $self->{runs}[$client] = $run;
}

# Collects acknowledged ids; restarts clients whose psql ended (their server
# went away) when $restart is true.
sub pump {
    my ($self, $restart) = @_;
    for my $client (0 .. $self->{clients} - 1) {
        my $run = $self->{runs}[$client] or next;
        $run->{h}->pump_nb if $run->{h}->pumpable;
        $self->_harvest($run);
        if (!$run->{h}->pumpable) {
            eval { $run->{h}->finish };
            $self->_harvest($run);
            $self->{runs}[$client] = undef;
            $self->_start_client($client) if $restart;
        }
    }
}

sub _harvest {
    my ($self, $run) = @_;
    while ($run->{out} =~ s/^(\d+)\|([0-9A-F]{8})\n//) {
        $self->{acked}{$1} = 1;
        $self->{by_timeline}{ hex($2) }{ $run->{node} }++;
    }
}

# Ends every client (what a client printed before this counts).
sub stop {
    my ($self) = @_;
    $self->pump(0);
    for my $run (grep { defined } @{ $self->{runs} }) {
        $run->{h}->kill_kill;
        $self->_harvest($run);
    }
    $self->{runs} = [];
}

sub acked_ids { return [ sort { $a <=> $b } keys %{ $_[0]->{acked} } ]; }
# { PostgreSQL timeline => { node name => acknowledged transactions } }
sub acks_by_timeline { return $_[0]->{by_timeline} // {}; }
sub next_block { $_[0]->{block} }

1;
