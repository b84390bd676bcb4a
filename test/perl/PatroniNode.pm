# A PostgreSQL node run by a real Patroni (Debian's patroni 3.0) from the
# project's template integrations/patroni/patroni.yml.in, and the etcd it
# uses (one member on loopback, started by the test).
#
# The node is a PostgreSQL::Test::Cluster object (node()) whose data
# directory, socket directory and port are the ones Patroni runs PostgreSQL
# with, so the usual psql helpers work; Patroni, not the test, starts and
# stops PostgreSQL. Everything listens on 127.0.0.1 only.
package PatroniNode;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SafekeeperNode;
use WalproposerCluster;

my $etcd;    # the one etcd of the test: { h, client_port, data_dir, log }
my @nodes;   # every PatroniNode made, for the cleanup at exit

# Starts etcd on loopback (once per test) and waits until it answers.
# Returns "127.0.0.1:PORT" of its client API.
sub start_etcd {
    return "127.0.0.1:$etcd->{client_port}" if $etcd;
    my $client = PostgreSQL::Test::Cluster::get_free_port();
    my $peer = PostgreSQL::Test::Cluster::get_free_port();
    my $dir = "$PostgreSQL::Test::Utils::tmp_check/etcd";
    my $log = "$PostgreSQL::Test::Utils::log_path/etcd.log";
    system('rm', '-rf', $dir);
    my @cmd = ('etcd', '--name', 'test', '--data-dir', $dir,
        '--listen-client-urls', "http://127.0.0.1:$client", '--advertise-client-urls', "http://127.0.0.1:$client",
        '--listen-peer-urls', "http://127.0.0.1:$peer", '--initial-advertise-peer-urls', "http://127.0.0.1:$peer",
        '--initial-cluster', "test=http://127.0.0.1:$peer", '--initial-cluster-state', 'new');
    my $h = IPC::Run::start(\@cmd, '<', \undef, '>>', $log, '2>>', $log);
    $etcd = { h => $h, client_port => $client };
    my $http = HTTP::Tiny->new(timeout => 2);
    SafekeeperNode::poll_until(sub {
        my $r = $http->get("http://127.0.0.1:$client/health");
        return $r->{success} && $r->{content} =~ /"health":\s*"true"/;
    }, 60) or croak "etcd did not become healthy (log: $log)";
    return "127.0.0.1:$client";
}

sub stop_etcd {
    return unless $etcd;
    $etcd->{h}->kill_kill(grace => 5);
    $etcd = undef;
}

# The walproposer programs Patroni calls: the built tools and the
# integration script, in one directory.
sub wp_bin_dir {
    my $dir = "$PostgreSQL::Test::Utils::tmp_check/wp_bin";
    return $dir if -d $dir;
    mkdir $dir or croak "mkdir $dir: $!";
    my $source = dirname(__FILE__) . '/../../integrations/patroni/walproposer-patroni';
    -x $source or croak "no executable $source";
    symlink(Cwd::abs_path($source), "$dir/walproposer-patroni") or croak "symlink: $!";
    for my $tool (qw(pg_walproposer_sync pg_walproposer_restore)) {
        my $path = WalproposerCluster::tool($tool);
        $path = `command -v $tool` unless $path =~ m{/};
        chomp $path;
        -x $path or croak "$tool not found";
        symlink(Cwd::abs_path($path), "$dir/$tool") or croak "symlink: $!";
    }
    return $dir;
}

our %PASSWORD = (superuser => 'su-' . int(rand(1e9)), replication => 'repl-' . int(rand(1e9)));

# PatroniNode->new($name, sks => \@sks, scope => 'wp', ttl => 10): renders
# the template for node $name. Not started.
sub new {
    my ($class, $name, %params) = @_;
    require Cwd;
    my $node = PostgreSQL::Test::Cluster->new($name);
    my $auth = SafekeeperNode::auth_setup();
    my $bindir = `pg_config --bindir`;
    chomp $bindir;
    my $self = bless {
        name => $name, node => $node,
        api_port => PostgreSQL::Test::Cluster::get_free_port(),
        config => "$PostgreSQL::Test::Utils::tmp_check/patroni_$name.yml",
        log => "$PostgreSQL::Test::Utils::log_path/patroni_$name.log",
    }, $class;
    push @nodes, $self;
    my $template = dirname(__FILE__) . '/../../integrations/patroni/patroni.yml.in';
    my $text = PostgreSQL::Test::Utils::slurp_file($template);
    my $os_user = getpwuid($<);
    my %values = (
        SCOPE => $params{scope} // 'walproposer',
        NODE_NAME => $name,
        ETCD_HOSTS => start_etcd(),
        RESTAPI_ADDRESS => "127.0.0.1:$self->{api_port}",
        PG_ADDRESS => '127.0.0.1:' . $node->port,
        PG_PORT => $node->port,
        DATA_DIR => $node->data_dir,
        SOCKET_DIR => $node->host,
        BIN_DIR => $bindir,
        WP_BIN_DIR => wp_bin_dir(),
        SUPERUSER => $os_user,
        SUPERUSER_PASSWORD => $PASSWORD{superuser},
        REPLICATION_PASSWORD => $PASSWORD{replication},
        SAFEKEEPERS => WalproposerCluster::safekeeper_list($params{sks}),
        SK_TLS => SafekeeperNode::tls_conninfo(),
        SK_PASSFILE => "$auth/pgpass",
    );
    $text =~ s/@([A-Z_]+)@/exists $values{$1} ? $values{$1} : croak "no value for \@$1\@"/ge;
    # The test's own settings: the failure detection time, and the server
    # log where the other tests keep theirs.
    my $ttl = $params{ttl} // 10;
    $text =~ s/^    ttl: \d+$/    ttl: $ttl/m or croak 'no ttl in the template';
    my $pglog = $node->logfile;
    $text =~ s{^(    unix_socket_directories: .*)$}{$1
    logging_collector: "on"
    log_directory: "@{[ dirname($pglog) ]}"
    log_filename: "@{[ (split m{/}, $pglog)[-1] ]}"
    log_file_mode: "0640"
    log_line_prefix: "%m [%p] "}m or croak 'no unix_socket_directories in the template';
    open my $fh, '>', $self->{config} or croak "cannot write $self->{config}: $!";
    print $fh $text;
    close $fh;
    return $self;
}

sub name   { $_[0]->{name} }
sub node   { $_[0]->{node} }
sub config { $_[0]->{config} }
sub log_file { $_[0]->{log} }
sub api    { 'http://127.0.0.1:' . $_[0]->{api_port} }

sub start {
    my ($self) = @_;
    croak "$self->{name}: Patroni already runs" if $self->{h};
    open my $fh, '>>', $self->{log} or croak "cannot open $self->{log}: $!";
    print $fh '--- started ' . localtime() . "\n";
    close $fh;
    $self->{h} = IPC::Run::start([ 'patroni', $self->{config} ], '<', \undef,
        '>>', $self->{log}, '2>>', $self->{log});
    return $self;
}

# SIGKILL to Patroni and to every process of its PostgreSQL, as a machine
# that died would do.
sub kill9 {
    my ($self) = @_;
    if ($self->{h}) {
        $self->{h}->signal('KILL');
        eval { $self->{h}->finish };
        $self->{h} = undef;
    }
    WalproposerCluster::kill9_postgres($self->{node}) if $self->postmaster_alive;
}

# True when postmaster.pid names a running postgres (a file left by a crash
# may name a pid that now belongs to something else).
sub postmaster_alive {
    my ($self) = @_;
    open my $fh, '<', $self->{node}->data_dir . '/postmaster.pid' or return 0;
    my $pid = <$fh> // '';
    close $fh;
    chomp $pid;
    return 0 unless $pid =~ /^\d+$/;
    open my $cf, '<', "/proc/$pid/cmdline" or return 0;
    my $cmd = <$cf> // '';
    close $cf;
    return $cmd =~ /postgres/;
}

# A clean stop: Patroni stops PostgreSQL and leaves.
sub stop {
    my ($self) = @_;
    return unless $self->{h};
    $self->{h}->signal('TERM');
    SafekeeperNode::poll_until(sub { $self->{h}->pump_nb if $self->{h}->pumpable; !$self->{h}->pumpable }, 120)
      or $self->{h}->kill_kill;
    eval { $self->{h}->finish };
    $self->{h} = undef;
}

# GET on the REST API: (status, decoded JSON body or undef).
sub api_get {
    my ($self, $path) = @_;
    my $r = HTTP::Tiny->new(timeout => 3)->get($self->api . $path);
    my $body = eval { JSON::PP::decode_json($r->{content}) };
    return ($r->{status}, $body);
}

# True while Patroni says this node is the leader with a running primary.
sub is_leader {
    my ($self) = @_;
    my ($status) = $self->api_get('/primary');
    return 0 unless $status == 200;
    # Patroni answers 200 as soon as it holds the lock, before pre_promote
    # and pg_ctl promote have run.
    my ($out, $err) = ('', '');
    my $rc = $self->{node}->psql('postgres', 'SELECT pg_is_in_recovery()', stdout => \$out,
        stderr => \$err, on_error_die => 0);
    return $rc == 0 && $out eq 'f';
}

# True while Patroni says this node is a running replica.
sub is_replica {
    my ($self) = @_;
    my ($status) = $self->api_get('/replica');
    return $status == 200;
}

# Lines of the Patroni log (PostgreSQL's own log is node()->logfile).
sub log_contains {
    my ($self, $re) = @_;
    my $text = -f $self->{log} ? PostgreSQL::Test::Utils::slurp_file($self->{log}) : '';
    return scalar(() = $text =~ /$re/g);
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $?);
    $self->stop if $self->{h};
    eval { WalproposerCluster::kill9_postgres($self->{node}) if $self->postmaster_alive };
}

# However the test ends (a failed wait, a die), nothing it started may
# outlive it: a leftover Patroni would restart PostgreSQL forever.
END {
    local ($@, $?);
    for my $self (@nodes) {
        if ($self->{h}) {
            eval { $self->{h}->kill_kill(grace => 5) };
            $self->{h} = undef;
        }
        eval { WalproposerCluster::kill9_postgres($self->{node}) if $self->postmaster_alive };
    }
    stop_etcd();
}

1;
