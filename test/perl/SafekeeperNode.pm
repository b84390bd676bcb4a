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
# Authentication and TLS are on, as in production: every node authenticates
# its clients with SCRAM-SHA-256 against the test's roles file (auth_setup:
# roles walproposer = push, replica = read, admin = admin, and the OS user
# = read,admin), serves TLS on both ports with a certificate of the test's
# own CA (for 127.0.0.1 and localhost) and refuses PostgreSQL-protocol
# clients without TLS (--require-tls). Every libpq client of the test (the
# primary's walproposer worker, standbys, pg_receivewal, psql) finds its
# password through PGPASSFILE, set here before any PostgreSQL node starts;
# the primary and the standbys verify the certificate (sslmode=verify-full,
# tls_conninfo()). A node made with auth => 'trust' runs with --auth trust;
# tls => 0 turns TLS off, require_tls => 0 lets plaintext clients in too;
# roles_file => PATH uses that file. http() speaks
# HTTPS (verifying the certificate) with the admin role's credentials.
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
use IPC::Run ();
use JSON::PP;
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our $TIMEOUT = $PostgreSQL::Test::Utils::timeout_default // 180;

sub binary {
    return $ENV{WP_BIN_DIR} ? "$ENV{WP_BIN_DIR}/safekeeper" : 'safekeeper';
}

# role => password of the test's roles file, and where its files are.
our %PASSWORD;
my $auth_dir;

# The SCRAM secret of $password, from `safekeeper hash-password`.
sub hash_password {
    my ($password) = @_;
    my ($in, $out, $err) = ("$password\n", '', '');
    IPC::Run::run([ binary(), 'hash-password' ], '<', \$in, '>', \$out, '2>', \$err,
        IPC::Run::timeout(60))
      or croak "safekeeper hash-password failed: $err";
    chomp $out;
    return $out;
}

# Writes the test's roles file, pgpass and peer password file once, and
# points PGPASSFILE at the pgpass. Returns the directory.
sub auth_setup {
    return $auth_dir if $auth_dir;
    # One per test script (scripts of a run share tmp_check).
    my ($script) = $0 =~ m{([^/]+?)(?:\.pl)?$};
    my $dir = "$PostgreSQL::Test::Utils::tmp_check/sk_auth_$script";
    mkdir $dir;
    my $os_user = getpwuid($<);
    my %permissions = (walproposer => 'push', replica => 'read', admin => 'admin');
    $permissions{$os_user} = 'read,admin' unless $permissions{$os_user};
    my ($roles, $pgpass) = ("# role permissions tenants secret\n", '');
    for my $role (sort keys %permissions) {
        my $password = "pw-$role-" . int(rand(1e9));
        $PASSWORD{$role} = $password;
        $roles .= "$role $permissions{$role} * " . hash_password($password) . "\n";
        $pgpass .= "*:*:*:$role:$password\n";
    }
    my %files = (roles => $roles, pgpass => $pgpass, peer_password => "$PASSWORD{replica}\n",
        admin_password => "$PASSWORD{admin}\n");
    for my $name (keys %files) {
        open my $fh, '>', "$dir/$name" or croak "cannot write $dir/$name: $!";
        print $fh $files{$name};
        close $fh or croak "cannot write $dir/$name: $!";
    }
    chmod 0600, "$dir/pgpass", "$dir/peer_password", "$dir/admin_password", "$dir/roles";
    make_certificates($dir);
    $ENV{PGPASSFILE} = "$dir/pgpass";
    $auth_dir = $dir;
    return $dir;
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
        auth      => $params{auth} // 'scram',
        tls       => $params{tls} // 1,
        require_tls => $params{require_tls} // 1,
        roles_file => $params{roles_file},
    };
    auth_setup();
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

# A CA and a server certificate for 127.0.0.1 and localhost, with openssl.
sub make_certificates {
    my ($dir) = @_;
    my $run = sub {
        my ($out, $err) = ('', '');
        IPC::Run::run([ 'openssl', @_ ], '>', \$out, '2>', \$err, IPC::Run::timeout(60))
          or croak "openssl @_ failed: $err";
    };
    $run->('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/ca.key", '-out',
        "$dir/ca.crt", '-days', '30', '-subj', '/CN=walproposer test CA');
    $run->('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/server.key", '-out',
        "$dir/server.csr", '-subj', '/CN=localhost');
    open my $ext, '>', "$dir/server.ext" or croak "cannot write $dir/server.ext: $!";
    print $ext "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
    close $ext;
    $run->('x509', '-req', '-in', "$dir/server.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
        '-CAcreateserial', '-out', "$dir/server.crt", '-days', '30', '-extfile', "$dir/server.ext");
    chmod 0600, "$dir/server.key", "$dir/ca.key";
}

# The CA file clients verify the safekeepers' certificates with.
sub ca_file { return auth_setup() . '/ca.crt'; }

# libpq options that make a client verify a safekeeper's certificate.
sub tls_conninfo { return 'sslmode=verify-full sslrootcert=' . ca_file(); }

# Options of `safekeeper pull-timeline` to authenticate as the admin role.
sub admin_args {
    my $dir = auth_setup();
    return ('--user', 'admin', '--password-file', "$dir/admin_password", '--sslrootcert',
        "$dir/ca.crt");
}

# The HTTP API's base URL.
sub http_url {
    my ($self) = @_;
    return ($self->{tls} ? 'https' : 'http') . "://127.0.0.1:$self->{http_port}";
}

# Command line of this node, for tests that want to run it themselves.
sub command {
    my ($self) = @_;
    my $dir = auth_setup();
    my @auth = $self->{auth} eq 'trust' ? ('--auth', 'trust') : (
        '--roles-file', $self->{roles_file} // "$dir/roles",
        '--peer-user', 'replica', '--peer-password-file', "$dir/peer_password");
    push @auth, '--tls-cert', "$dir/server.crt", '--tls-key', "$dir/server.key",
      '--peer-sslrootcert', "$dir/ca.crt"
      if $self->{tls};
    push @auth, '--require-tls' if $self->{tls} && $self->{require_tls};
    return ($self->{binary} // binary(), '-D', $self->{data_dir}, '--id', $self->{id},
        '--listen-pg', "127.0.0.1:$self->{pg_port}",
        '--listen-http', "127.0.0.1:$self->{http_port}", @auth, @{ $self->{extra} });
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

# Raw HTTP request to the operator API as the admin role (or as
# $as = [user, password], or with no credentials when $as is 'none'):
# returns HTTP::Tiny's response hash.
sub http {
    my ($self, $method, $path, $as) = @_;
    my %options;
    $as //= [ 'admin', $PASSWORD{admin} ];
    if (ref $as) {
        require MIME::Base64;
        $options{headers} =
          { Authorization => 'Basic ' . MIME::Base64::encode_base64("$as->[0]:$as->[1]", '') };
    }
    my @tls = $self->{tls} ? (verify_SSL => 1, SSL_options => { SSL_ca_file => ca_file() }) : ();
    return HTTP::Tiny->new(timeout => 10, @tls)->request($method, $self->http_url . $path, \%options);
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
