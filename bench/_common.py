"""Shared plumbing of the benchmarks: paths, database setup, timing helpers.

Nothing here is imported by the application or the test suite.
"""

import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT.parent / "shared" / "data"
SAMPLE = SHARED_DATA / "sc-data-sample.sql.xz"
LARGE = SHARED_DATA / "sc-data-large.sql.xz"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432"


def setup_django(database_url: str, root: Path = PROJECT) -> None:
    """Point Keeper at `database_url` and set Django up; call it once, before importing apps.

    `root`: the project tree whose code is imported (an export of a commit, see export_tree()); run
    from it too (os.chdir), as Celery's Django fixup puts the working folder first on sys.path.
    """
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import django

    django.setup()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_postgres(url: str) -> bool:
    return urlparse(url).scheme in ("postgres", "postgresql", "pgsql")


def with_database(url: str, name: str) -> str:
    """`url` with its database name replaced by `name`."""
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{name}"))


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def _maintenance(url: str):
    import psycopg

    return psycopg.connect(with_database(url, "postgres"), autocommit=True)


def postgres_create(url: str, *, if_missing: bool = False) -> None:
    """Create the database named in `url` (PostgreSQL); dropped and recreated unless `if_missing`."""
    from psycopg import sql

    name = database_name(url)
    with _maintenance(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and if_missing:
            return
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def postgres_drop(url: str) -> None:
    from psycopg import sql

    with _maintenance(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(url))))


def backend_marker(url: str) -> str:
    """What the command line of a PostgreSQL backend serving `url` contains ("" for SQLite)."""
    return f" {database_name(url)} " if is_postgres(url) else ""


def database_size(url: str) -> int | None:
    """Bytes used by the database (file size on SQLite, pg_database_size on PostgreSQL)."""
    if is_postgres(url):
        import psycopg

        with psycopg.connect(url) as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    path = Path(urlparse(url).path)
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) or None


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid`; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _processes() -> dict[int, tuple[int, float, str]]:
    """Every process: pid -> (parent pid, CPU seconds, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, command)
    return found


def marked(markers: list[str]) -> list[int]:
    """Processes whose command line contains one of `markers` (e.g. PostgreSQL backends of a database)."""
    markers = [m for m in markers if m]
    return [pid for pid, (_, _, command) in _processes().items() if any(m in command for m in markers)]


def children_of(pid: int) -> list[int]:
    return [child for child, (parent, _, _) in _processes().items() if parent == pid]


class CpuMeter:
    """How much CPU other processes took while a benchmark phase ran, to flag noisy figures.

    Ours are this process, its descendants (gunicorn, wrk) and processes whose command
    line contains one of `markers` (a PostgreSQL backend shows its database name there).
    Processes that start and end within the phase are not seen.
    """

    def __init__(self, markers: list[str] | None = None) -> None:
        self.markers = [m for m in (markers or []) if m]
        self.start()

    def _foreign(self) -> dict[int, float]:
        processes = _processes()
        me = os.getpid()

        def ours(pid: int) -> bool:
            seen = set()
            while pid and pid not in seen:
                if pid == me:
                    return True
                seen.add(pid)
                parent, _, command = processes.get(pid, (0, 0.0, ""))
                if any(marker in command for marker in self.markers):
                    return True
                pid = parent
            return False

        return {pid: cpu for pid, (_, cpu, _) in processes.items() if not ours(pid)}

    def start(self) -> None:
        self.wall, self.before = time.perf_counter(), self._foreign()

    def others(self) -> float:
        """Cores used on average by other processes since start() (0.0 to the number of cores)."""
        wall = time.perf_counter() - self.wall
        if wall <= 0:
            return 0.0
        after = self._foreign()
        used = sum(cpu - self.before.get(pid, 0.0) for pid, cpu in after.items())
        return max(used, 0.0) / wall


def wait_for_quiet(max_wait: float, threshold: float = 0.25, markers: list[str] | None = None) -> float:
    """Wait (at most `max_wait` s) until other processes use under `threshold` cores for a second.

    The machine is shared (test suites, other servers); figures taken while they
    run are not comparable. Returns the cores other processes used in the last second.
    """
    deadline = time.monotonic() + max_wait
    while True:
        meter = CpuMeter(markers)
        time.sleep(1.0)
        others = meter.others()
        if others < threshold or time.monotonic() >= deadline:
            return others


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list], aligns: str | None = None) -> str:
    """A Markdown table (also readable as plain text)."""
    aligns = aligns or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = [v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, aligns)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, aligns)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


# --- a clean tree, processes on a port ------------------------------------


def export_tree(rev: str) -> tuple[Path, str]:
    """`git archive` of `rev` unpacked under /tmp (reused when there): (folder, short commit).

    The work tree is edited by others while a benchmark runs; an export measures one commit.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=PROJECT, capture_output=True, text=True, env=env
    )
    if commit.returncode:
        raise SystemExit(f"not a commit: {rev}")
    sha = commit.stdout.strip()
    target = Path("/tmp") / f"keeper-bench-tree-{sha[:12]}"
    if not (target / ".exported").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "archive", "--format=tar", sha], cwd=PROJECT, stdout=subprocess.PIPE, env=env
        )
        subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
        if archive.wait():
            raise SystemExit(f"git archive {sha} failed")
        (target / ".exported").write_text(sha + "\n")
    venv = target / ".venv"
    if not venv.exists():
        venv.symlink_to(PROJECT / ".venv")  # bin/keeper-stack runs the tree's .venv/bin/python
    return target, sha[:9]


def listening_pids(port: int) -> list[int]:
    """Processes holding a listening TCP socket on `port` (a gunicorn master and its workers)."""
    inodes = set()
    for table_file in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table_file).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
