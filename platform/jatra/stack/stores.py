"""The data servers: PostgreSQL, PgBouncer, Redis, RabbitMQ (with its own epmd)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from jatra.stack import pgbackrest, sockets
from jatra.stack.base import Server, StackContext
from jatra.stack.procs import as_user, chown_tree, find_binary, port_open

PG_BIN = "/usr/lib/postgresql/*/bin/"


def pg_binary(tool: str) -> str:
    """A PostgreSQL program (postgres, initdb, pg_isready, psql) of the newest installed version."""
    return find_binary([PG_BIN + tool, tool], "postgresql")


class Postgres(Server):
    """The database, with WAL archiving through pgBackRest (see :mod:`jatra.stack.pgbackrest`)."""

    name = "postgres"
    user = pgbackrest.PG_USER
    stop_signal = signal.SIGINT  # "fast" shutdown
    #: at shutdown the archiver makes a last attempt (three tries of up to 11 s each when S3 is down)
    stop_timeout = 45.0

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.postgres

    def _bin(self, tool: str) -> str:
        return pg_binary(tool)

    def prepare(self, ctx: StackContext) -> None:
        # the archive command's lock, spool and log directories, usable by the user Postgres runs as
        pgbackrest.prepare_dirs(ctx)
        data = ctx.data(self.name)
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        chown_tree(data, self.user)
        subprocess.run(
            as_user(
                self.user,
                [self._bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
            ),
            check=True,
            capture_output=True,
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# jatra local stack\nmax_connections = 200\nshared_buffers = 256MB\n"
                "jit = off\nlog_min_duration_statement = 500\n"
            )

    def argv(self, ctx: StackContext) -> list[str]:
        data = ctx.data(self.name)
        return as_user(
            self.user,
            [
                self._bin("postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port(ctx)),
                "-k",
                str(data),
                *pgbackrest.postgres_options(ctx),
                *TUNING,
            ],
        )

    def ready(self, ctx: StackContext) -> bool:
        # as the role that exists: pg_isready's default, the OS user (root), made the server log
        # 'FATAL: role "root" does not exist' at every check (`jatra status`, the rush's CPU meter)
        probe = ["-q", "-h", "127.0.0.1", "-p", str(self.port(ctx)), "-U", "postgres", "-d", "postgres"]
        result = subprocess.run([self._bin("pg_isready"), *probe], check=False)
        return result.returncode == 0

    def extra_pids(self, ctx: StackContext) -> list[int]:
        # runuser does not forward signals: the postmaster's own PID is the one to stop
        return _pidfile(ctx.data(self.name) / "postmaster.pid")

    def after_start(self, ctx: StackContext) -> None:
        psql = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port(ctx)), "-U", "postgres", "-qtAc"]
        exists = subprocess.run(
            [*psql, "SELECT 1 FROM pg_roles WHERE rolname='jatra'"],
            capture_output=True,
            text=True,
            check=False,
        )
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, "CREATE ROLE jatra LOGIN CREATEDB"], check=True, capture_output=True)
            subprocess.run([*psql, "CREATE DATABASE jatra OWNER jatra"], check=True, capture_output=True)
        # the restore drill marks its target in the WAL and closes the segment, as the application role
        grant = "GRANT EXECUTE ON FUNCTION pg_create_restore_point(text), pg_switch_wal() TO jatra"
        subprocess.run([*psql, grant, "jatra"], check=True, capture_output=True)
        statements = "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
        subprocess.run([*psql, statements, "jatra"], check=True, capture_output=True)


#: on the command line, so a data directory made before them gets them too
TUNING = [
    # which statements cost what (and what reaches the server that no client sent)
    "-c", "shared_preload_libraries=pg_stat_statements",
    # the data is in memory and on SSD: an index scan is not 4x a sequential page (a train's seats, 891
    # rows: 11.5 ms by a sequential scan of all 54,854 at 4, 1.3 ms by the index at 1.1)
    "-c", "random_page_cost=1.1",
]  # fmt: skip


def _pidfile(path: Path) -> list[int]:
    try:
        return [int(path.read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []


class PgBouncer(Server):
    name = "pgbouncer"
    user = "postgres"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.pgbouncer

    def prepare(self, ctx: StackContext) -> None:
        conf = ctx.conf(self.name)
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "userlist.txt").write_text('"jatra" ""\n"postgres" ""\n')
        # by Unix socket where the paths allow (jatra.stack.sockets): to Postgres's, and one of its own
        postgres = sockets.postgres_dir(ctx.state_dir)
        usable = sockets.usable(sockets.pg_socket(postgres, ctx.ports.postgres))
        postgres_host = postgres if usable else "127.0.0.1"
        own = sockets.pgbouncer_dir(ctx.state_dir)
        socket_dir = own if sockets.usable(sockets.pg_socket(own, self.port(ctx))) else ""
        (conf / "pgbouncer.ini").write_text(
            f"""[databases]
jatra = host={postgres_host} port={ctx.ports.postgres} dbname=jatra
{sockets.PROVIDER_DATABASE} = host={postgres_host} port={ctx.ports.postgres} dbname=jatra
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port(ctx)}
unix_socket_dir = {socket_dir}
auth_type = trust
auth_file = {conf / "userlist.txt"}
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 40
reserve_pool_size = 10
server_reset_query =
ignore_startup_parameters = extra_float_digits
admin_users = postgres
pidfile = {conf / "pgbouncer.pid"}
stats_users = postgres
"""
        )
        chown_tree(conf, self.user)

    def argv(self, ctx: StackContext) -> list[str]:
        # under a respawner: Debian's 1.18 can exit on a cancel-request race (see jatra.stack.respawn);
        # stopping the respawner stops PgBouncer
        binary = find_binary(["pgbouncer", "/usr/sbin/pgbouncer"], "pgbouncer")
        pgbouncer = as_user(self.user, [binary, str(ctx.conf(self.name) / "pgbouncer.ini")])
        return [sys.executable, "-m", "jatra.stack.respawn", "--", *pgbouncer]

    def ready(self, ctx: StackContext) -> bool:
        return port_open(self.port(ctx))


class Redis(Server):
    name = "redis"

    def _socket(self, ctx: StackContext) -> list[str]:
        """A Unix socket beside the TCP port, for the platform's own processes (jatra.stack.sockets)."""
        socket = sockets.redis_socket(ctx.state_dir, self.port(ctx))
        return ["--unixsocket", str(socket), "--unixsocketperm", "770"] if sockets.usable(socket) else []

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.redis

    def prepare(self, ctx: StackContext) -> None:
        ctx.data(self.name).mkdir(parents=True, exist_ok=True)

    def argv(self, ctx: StackContext) -> list[str]:
        binary = find_binary(["redis-server"], "redis-server")
        return [
            binary, "--port", str(self.port(ctx)), "--bind", "127.0.0.1", "--dir", str(ctx.data(self.name)),
            "--save", "", "--appendonly", "no", "--maxclients", "10000", "--protected-mode", "yes",
            *self._socket(ctx),
            # a bound, and never evict: an evicted hold key would free seats someone holds
            "--maxmemory", "1gb", "--maxmemory-policy", "noeviction",
        ]  # fmt: skip

    def ready(self, ctx: StackContext) -> bool:
        return port_open(self.port(ctx))


class RabbitMQ(Server):
    """The broker, with management and prometheus plugins, and a private epmd we own by PID."""

    name = "rabbitmq"
    ready_timeout = 60.0

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.amqp

    def prepare(self, ctx: StackContext) -> None:
        base = ctx.data(self.name)
        (base / "mnesia").mkdir(parents=True, exist_ok=True)
        (base / "log").mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_prometheus].\n")
        (base / "rabbitmq.conf").write_text(
            f"""listeners.tcp.1 = 127.0.0.1:{ctx.ports.amqp}
management.tcp.ip = 127.0.0.1
management.tcp.port = {ctx.ports.rabbitmq_management}
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = {ctx.ports.rabbitmq_prometheus}
prometheus.return_per_object_metrics = false
loopback_users.guest = true
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 200MB
log.console = true
log.file = false
"""
        )
        (base / "rabbitmq-env.conf").write_text("")

    def env(self, ctx: StackContext) -> dict[str, str]:
        base = ctx.data(self.name)
        return {
            "HOME": str(base),
            "RABBITMQ_NODENAME": f"jatra{ctx.ports.base}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(ctx.ports.amqp),
            "RABBITMQ_DIST_PORT": str(ctx.ports.rabbitmq_dist),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(ctx.ports.epmd),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def argv(self, ctx: StackContext) -> list[str]:
        return [find_binary(["/usr/lib/rabbitmq/bin/rabbitmq-server"], "rabbitmq-server")]

    def ready(self, ctx: StackContext) -> bool:
        return port_open(ctx.ports.amqp) and port_open(ctx.ports.rabbitmq_prometheus)

    def extra_pids(self, ctx: StackContext) -> list[int]:
        return _pidfile(ctx.data(self.name) / "rabbitmq.pid")


class Epmd(Server):
    """Erlang's port mapper, started by us in the foreground so it can be stopped by PID."""

    name = "epmd"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.epmd

    def argv(self, ctx: StackContext) -> list[str]:
        binary = find_binary(["epmd", "/usr/lib/erlang/erts-*/bin/epmd"], "erlang-base")
        return [binary, "-port", str(self.port(ctx)), "-address", "127.0.0.1"]

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"ERL_EPMD_ADDRESS": "127.0.0.1", "HOME": str(ctx.state_dir)}

    def ready(self, ctx: StackContext) -> bool:
        return port_open(self.port(ctx))


class RedisClusterNode(Redis):
    """One master of a three-master Redis Cluster on loopback, for the tests of single-slot scripts."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"redis-cluster-{index}"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.redis_cluster + self.index

    def prepare(self, ctx: StackContext) -> None:
        # A test cluster starts empty: a node that reloads its old nodes.conf refuses `--cluster create`.
        super().prepare(ctx)
        (ctx.data(self.name) / "nodes.conf").unlink(missing_ok=True)

    def _socket(self, ctx: StackContext) -> list[str]:
        return []  # the platform's socket is the standalone Redis's; the cluster is reached by its ports

    def argv(self, ctx: StackContext) -> list[str]:
        return [
            *super().argv(ctx),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(ctx.data(self.name) / "nodes.conf"),
            "--cluster-node-timeout", "2000",
            # the default bus port (port + 10000) lands in the kernel's ephemeral range; keep it in our block
            "--cluster-port", str(ctx.ports.redis_cluster + 3 + self.index),
        ]  # fmt: skip


def create_cluster(ctx: StackContext, nodes: list[RedisClusterNode]) -> None:
    """Join the nodes into one cluster with every slot assigned; a no-op when it already is one."""
    cli = find_binary(["redis-cli"], "redis-server")
    first = nodes[0].port(ctx)
    info = subprocess.run(
        [cli, "-p", str(first), "cluster", "info"], capture_output=True, text=True, check=True
    )
    if "cluster_state:ok" in info.stdout:
        return
    addresses = [f"127.0.0.1:{n.port(ctx)}" for n in nodes]
    subprocess.run(
        [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
