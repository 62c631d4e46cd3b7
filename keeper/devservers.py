"""Private PostgreSQL and Redis servers on 127.0.0.1: the one way CI, the tests and bin/keeper-stack start them.

    python -m keeper.devservers install                                # apt-get postgresql redis-server if missing
    python -m keeper.devservers start-postgres --dir DIR --port PORT [--throwaway] [--database keeper]
    python -m keeper.devservers stop-postgres --dir DIR [--immediate]
    python -m keeper.devservers start-redis --dir DIR --port PORT
    python -m keeper.devservers stop-redis --dir DIR

PostgreSQL and Redis are Debian's packages (/usr/lib/postgresql/*/bin, redis-server). PostgreSQL
refuses to run as root, so as root its programs run as the postgres user, which must be able to
reach the data folder: its parent is opened for traversal (o+x), and a farther parent that is
closed is reported. Redis keeps nothing on disk (no RDB, no AOF): a restarted Redis is empty.

Standard library only, and nothing of Django or the apps: .ci/run calls it before anything is set up.
"""

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# As root, PostgreSQL's programs run as this user (PostgreSQL refuses to run as root).
POSTGRES_USER = "postgres"


class ServerError(Exception):
    """A server could not be started or stopped; the message says why, with the end of its log."""


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian's layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    return found[-1].parent if found else None


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def install_missing(log: Callable[[str], None] = print) -> None:
    """Debian's postgresql and redis-server, installed with apt-get (as root, or through sudo) when missing."""
    if postgres_bin() is not None and redis_binary() is not None:
        return
    log("installing postgresql and redis-server (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(_as_root(["apt-get", "update", "-qq"]), check=True, env=env)
    install = ["apt-get", "install", "-y", "-qq", "postgresql", "redis-server"]
    subprocess.run(_as_root(install), check=True, env=env, stdout=subprocess.DEVNULL)
    if postgres_bin() is None or redis_binary() is None:
        raise ServerError("postgresql and redis-server are not installed and could not be installed")


def _as_root(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return command
    if shutil.which("sudo"):
        return ["sudo", *command]
    raise ServerError(f"needs root to run: {shlex.join(command)}")


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None:
        return "(no log)"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    log: Path | None = None,
) -> None:
    """Poll `check` until it holds; fail at once if the process behind it exits."""
    deadline = time.monotonic() + timeout
    while not check():
        if not alive():
            raise ServerError(f"{what}: the process exited. The end of its log ({log}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise ServerError(f"{what}: not ready within {timeout:.0f} s. The end of its log ({log}):\n{_tail(log)}")
        time.sleep(0.1)


class PostgresServer:
    """A PostgreSQL cluster in `data` (initdb at the first start), listening on 127.0.0.1:`port` only,
    with trust authentication for the user postgres: a private, local server.

    throwaway: no fsync, for data that dies with the run (CI, tests); otherwise only synchronous_commit is
    off, which loses at most the last few commits on a crash, never consistency.
    """

    def __init__(self, data: Path, port: int, *, log: Path | None = None, throwaway: bool = False):
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise ServerError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql")
        self.bin = bin_dir
        self.data = Path(data).resolve()
        self.port = port
        self.log = Path(log).resolve() if log else self.data.with_name(f"{self.data.name}.log")
        self.throwaway = throwaway
        self.user = POSTGRES_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The URL of the database `keeper` (create_database() makes it)."""
        return self.database_url("keeper")

    def database_url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 90, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(self.bin / program), *args],
            user=self.user,
            cwd="/",  # any folder the postgres user may enter
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise ServerError(f"{program} {shlex.join(args)} failed: {done.stdout}{done.stderr}\n{_tail(self.log)}")
        return done

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb, unless the folder holds a cluster already."""
        if self.initialized:
            return
        self.data.mkdir(parents=True, exist_ok=True)
        self._make_reachable()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _make_reachable(self) -> None:
        """As root: the data folder and the log belong to the postgres user, who can get to them."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self.user is None:
            return
        shutil.chown(self.data, self.user)
        shutil.chown(self.log, self.user)
        for folder in {self.data.parent, self.log.parent}:
            if folder.stat().st_uid == os.geteuid():
                folder.chmod(folder.stat().st_mode | 0o711)
        reachable = subprocess.run(["test", "-w", str(self.data), "-a", "-w", str(self.log)], user=self.user, cwd="/")
        if reachable.returncode != 0:
            raise ServerError(
                f"the postgres user cannot write {self.data} and {self.log}: PostgreSQL refuses to run as root, so "
                "it runs as postgres, which needs every parent folder to be searchable. Use a folder it can "
                "reach, e.g. under /tmp"
            )

    @property
    def running(self) -> bool:
        if not self.initialized:
            return False
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False, timeout=30).returncode == 0

    @property
    def accepting(self) -> bool:
        """Whether it accepts connections (pg_isready)."""
        ready = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"]
        return subprocess.run(ready, timeout=30).returncode == 0

    def start(self, timeout: float = 60) -> None:
        """Start (initdb first if needed) and wait until it accepts connections."""
        if port_in_use(self.port):
            raise ServerError(f"port {self.port} is taken: PostgreSQL needs another port")
        self.init()
        self._make_reachable()
        options = [f"-p {self.port}", f"-k {shlex.quote(str(self.data))}", "-c listen_addresses=127.0.0.1"]
        options.append("-c synchronous_commit=off")
        if self.throwaway:
            options.append("-c fsync=off")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)),
            "-o", " ".join(options), "start",
            timeout=timeout + 30,
        )  # fmt: skip

    def stop(self, *, immediate: bool = False) -> None:
        """Stop it if it runs. fast: clients disconnected, transactions rolled back, a clean shutdown;
        immediate (or if fast hangs): a crash-like stop; finally SIGKILL to the postmaster."""
        if not self.running:
            return
        for mode in ("immediate",) if immediate else ("fast", "immediate"):
            stopped = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)
            if stopped.returncode == 0:
                return
        # Backends notice the postmaster's death and exit on their own.
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)

    def destroy(self) -> None:
        """Stop at once and remove the cluster and its log."""
        self.stop(immediate=True)
        shutil.rmtree(self.data, ignore_errors=True)
        self.log.unlink(missing_ok=True)

    def query(self, sql: str, database: str = "keeper") -> str:
        """The rows of `sql` as psql prints them unaligned (one row a line, `|` between columns)."""
        done = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
            + ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise ServerError(f"psql on port {self.port} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str = "keeper") -> None:
        """The database `name`, unless it exists."""
        if not self.query(f"SELECT 1 FROM pg_database WHERE datname = '{name}'", database="postgres"):
            self.query(f'CREATE DATABASE "{name}"', database="postgres")


class RedisServer:
    """redis-server on 127.0.0.1:`port` without persistence.

    Started by this object, stop() ends it and start() brings it back on the same port. In `directory`
    it keeps its pid file, so a later process (`stop-redis`) can stop it too.
    """

    def __init__(self, port: int, directory: Path | None = None, *, log: Path | None = None):
        self.port = port
        self.dir = Path(directory).resolve() if directory else None
        self.log = Path(log) if log else (self.dir / "redis.log" if self.dir else None)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path | None:
        return self.dir / "redis.pid" if self.dir else None

    def command(self) -> list[str]:
        binary = redis_binary()
        if binary is None:
            raise ServerError("redis-server is not installed: apt-get install redis-server")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.dir:
            command += ["--dir", str(self.dir), "--pidfile", str(self.pid_file)]
        return command + ["--daemonize", "no"]

    def start(self, *, detach: bool = False, timeout: float = 30) -> subprocess.Popen:
        """Start and wait until it answers PING. detach: in a session of its own, to outlive this process."""
        if port_in_use(self.port):
            raise ServerError(f"port {self.port} is taken: Redis needs another port")
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)
        output = self.log.open("ab") if self.log else None
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        finally:
            if output:
                output.close()
        process = self.process
        _wait(
            self.ping,
            timeout=timeout,
            what=f"redis-server on port {self.port}",
            alive=lambda: process.poll() is None,
            log=self.log,
        )
        return process

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (Redis exits at once: it has nothing to save), then SIGKILL if it lingers."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=timeout)
            self.process = None
            return
        try:
            pid = int(self.pid_file.read_text().split()[0]) if self.pid_file else None
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is None or not _is_redis(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_redis(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_redis(pid):
            os.kill(pid, signal.SIGKILL)


def _is_redis(pid: int) -> bool:
    """Whether `pid` is a live redis-server (a pid file may outlive its process, and the number be reused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z" and b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keeper.devservers", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="apt-get install postgresql redis-server, if either is missing")
    for name in ("start-postgres", "stop-postgres", "start-redis", "stop-redis"):
        command = commands.add_parser(name)
        command.add_argument("--dir", type=Path, required=True, help="the server's folder (data, pid file, log)")
        if name.startswith("start"):
            command.add_argument("--port", type=int, required=True)
    commands.choices["start-postgres"].add_argument("--throwaway", action="store_true", help="fsync off")
    commands.choices["start-postgres"].add_argument("--database", default="keeper", help="created if missing")
    commands.choices["stop-postgres"].add_argument("--immediate", action="store_true", help="no clean shutdown")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install_missing()
        elif args.command == "start-postgres":
            postgres = PostgresServer(args.dir, args.port, throwaway=args.throwaway)
            postgres.start()
            postgres.create_database(args.database)
            print(postgres.database_url(args.database))
        elif args.command == "stop-postgres":
            PostgresServer(args.dir, 0).stop(immediate=args.immediate)
        elif args.command == "start-redis":
            redis = RedisServer(args.port, args.dir)
            redis.start(detach=True)
            print(redis.url)
        elif args.command == "stop-redis":
            RedisServer(0, args.dir).stop()
    except ServerError as exc:
        print(f"keeper.devservers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
