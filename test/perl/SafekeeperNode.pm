# SafekeeperNode: start, stop, kill and inspect safekeeper daemons in TAP
# tests, on free loopback ports chosen by PostgreSQL::Test::Cluster.
#
#   my $sk = SafekeeperNode->new('sk1', id => 1);
#   $sk->start;                      # waits until GET /v1/status answers
#   my $st = $sk->http_json('GET', '/v1/status');
#   $sk->kill9; $sk->start;          # crash and restart on the same ports
#   $sk->pause; $sk->resume;         # SIGSTOP / SIGCONT (a black hole)
#   $sk->lose_power; $sk->start;     # binary => safekeeper-powerloss only
#   $sk->stop;                       # SIGTERM, waits for the exit
#
# The binary is $ENV{WP_BIN_DIR}/safekeeper when set, else `safekeeper` from
# PATH (PostgreSQL's bin directory, where `make install` puts it). Data and
# logs live under PostgreSQL::Test::Utils::tmp_check, so failed runs keep
# them next to the clusters' logs.
package SafekeeperNode;

use strict;
use warnings;

use Carp;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our $TIMEOUT = $PostgreSQL::Test::Utils::timeout_default // 180;

sub binary {
    return $ENV{WP_BIN_DIR} ? "$ENV{WP_BIN_DIR}/safekeeper" : 'safekeeper';
}

sub new {
    my ($class, $name, %params) = @_;
    my $self = {
        name      => $name,
        id        => $params{id} // 1,
        pg_port   => PostgreSQL::Test::Cluster::get_free_port(),
        http_port => PostgreSQL::Test::Cluster::get_free_port(),
        data_dir  => $params{data_dir} // "$PostgreSQL::Test::Utils::tmp_check/sk_$name",
        binary    => $params{binary},    # default: binary()
        log_file  => "$PostgreSQL::Test::Utils::log_path/sk_$name.log",
        pid       => undef,
        extra     => $params{extra} // [],
    };
    mkdir $self->{data_dir};
    return bless $self, $class;
}

sub name      { $_[0]->{name} }
sub id        { $_[0]->{id} }
sub pg_port   { $_[0]->{pg_port} }
sub http_port { $_[0]->{http_port} }
sub data_dir  { $_[0]->{data_dir} }
sub log_file  { $_[0]->{log_file} }
sub pid       { $_[0]->{pid} }
sub address   { '127.0.0.1:' . $_[0]->{pg_port} }

# Command line of this node, for tests that want to run it themselves.
sub command {
    my ($self) = @_;
    return ($self->{binary} // binary(), '-D', $self->{data_dir}, '--id', $self->{id},
        '--listen-pg', "127.0.0.1:$self->{pg_port}",
        '--listen-http', "127.0.0.1:$self->{http_port}", @{ $self->{extra} });
}

sub start {
    my ($self, %params) = @_;
    croak "$self->{name} is already running" if $self->{pid};
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', $self->{log_file} or die "open log: $!";
        open STDERR, '>&', \*STDOUT or die "dup: $!";
        exec($self->command) or die "exec safekeeper: $!";
    }
    $self->{pid} = $pid;
    return $self if $params{no_wait};
    my $deadline = time + $TIMEOUT;
    while (time < $deadline) {
        my $resp = $self->http('GET', '/v1/status');
        return $self if $resp->{success};
        if (waitpid($pid, POSIX::WNOHANG) == $pid) {
            $self->{pid} = undef;
            croak "safekeeper $self->{name} exited at start-up; see $self->{log_file}";
        }
        usleep(50_000);
    }
    croak "safekeeper $self->{name} did not answer /v1/status in ${TIMEOUT}s";
}

# Waits up to $TIMEOUT for the process to exit; returns its wait status.
sub _reap {
    my ($self) = @_;
    my $deadline = time + $TIMEOUT;
    while (time < $deadline) {
        my $r = waitpid($self->{pid}, POSIX::WNOHANG);
        if ($r == $self->{pid}) {
            my $status = $?;
            $self->{pid} = undef;
            return $status;
        }
        usleep(20_000);
    }
    croak "safekeeper $self->{name} (pid $self->{pid}) did not exit";
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'CONT', $self->{pid};
    kill 'TERM', $self->{pid};
    return $self->_reap;
}

sub kill9 {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'KILL', $self->{pid};
    return $self->_reap;
}

# Power loss: only for a node started with the test build
# (binary => .../safekeeper-powerloss): SIGUSR2 makes it drop every write
# not yet synced and exit with status 99.
sub lose_power {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'CONT', $self->{pid};
    kill 'USR2', $self->{pid};
    my $status = $self->_reap;
    croak "safekeeper $self->{name} did not simulate a power loss (wait status $status)"
      unless ($status >> 8) == 99;
    return $status;
}

sub pause  { my ($self) = @_; kill 'STOP', $self->{pid} if $self->{pid}; }
sub resume { my ($self) = @_; kill 'CONT', $self->{pid} if $self->{pid}; }

sub is_running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    return waitpid($self->{pid}, POSIX::WNOHANG) == 0;
}

# Raw HTTP request to the operator API: returns HTTP::Tiny's response hash.
sub http {
    my ($self, $method, $path) = @_;
    return HTTP::Tiny->new(timeout => 10)
      ->request($method, "http://127.0.0.1:$self->{http_port}$path");
}

# Decoded JSON body of a successful request; croaks otherwise.
sub http_json {
    my ($self, $method, $path) = @_;
    my $resp = $self->http($method, $path);
    croak "$method $path: $resp->{status} $resp->{content}" unless $resp->{success};
    return decode_json($resp->{content});
}

# Polls $check->() every 50 ms until it returns true or $TIMEOUT passes.
sub poll_until {
    my ($check, $timeout) = @_;
    my $deadline = time + ($timeout // $TIMEOUT);
    while (time < $deadline) {
        return 1 if $check->();
        usleep(50_000);
    }
    return 0;
}

sub DESTROY {
    my ($self) = @_;
    if ($self->{pid}) {
        kill 'CONT', $self->{pid};
        kill 'KILL', $self->{pid};
        waitpid($self->{pid}, 0);
    }
}

1;
