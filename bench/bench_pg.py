"""PostgreSQL against SQLite, in process and uncached: every catalog request, side by side (issue 16, item 8).

    .venv/bin/python bench/bench_pg.py                         # sqlite-sample, pg-large, pg-sample; ~10 min
    .venv/bin/python bench/bench_pg.py --commit HEAD           # a clean export of HEAD (others edit the tree)
    .venv/bin/python bench/bench_pg.py --set issue --only '/servers?limit=25'
    .venv/bin/python bench/bench_pg.py --targets sqlite-sample,pg-large,sqlite-large   # + SQLite on the large
    .venv/bin/python bench/bench_pg.py --profile               # + a profile of each request over 2x

What it does:
1. Starts its own PostgreSQL 15 (/usr/lib/postgresql/*/bin, through keeper/devservers.py) on
   127.0.0.1:--pg-port (5446), data in --pg-dir (kept between runs, so a loaded catalog is reused),
   and stops it at the end (one already running there is used and left running). Each
   target is a database: SQLite files under /tmp, PostgreSQL databases keeper_bench_large and
   keeper_bench_sample; each is migrated and loaded with its catalog (`manage.py sync_catalog`)
   unless it holds that catalog already and no migration was applied since its last sync.
2. One worker process per target (this script with --worker): Keeper set up as a gunicorn worker
   would be (urls resolved, heap frozen), KEEPER_CATALOG_RESPONSE_CACHE_SECONDS=0, requests sent
   through Django's WSGIHandler (connection handling as in production: CONN_MAX_AGE=0 on SQLite,
   kept on PostgreSQL). The "SQL" column is the time inside cursor.execute (timed with
   connection.execute_wrapper) plus inside the fetches of Django's cursor wrapper (fetchone,
   fetchmany, fetchall, wrapped in the worker process): on SQLite execute() stops at the first
   row and the rest of the query runs while the rows are fetched; psycopg's client-side cursors
   receive every row in execute(). It includes the connection health check (CONN_HEALTH_CHECKS:
   on PostgreSQL a SELECT 1 round trip at each request's first query). Converting the values
   (from_db_value) is not SQL. A connection Keeper opens itself (the /table/server_prices
   stream) is not seen.
3. Interleaved: each request is timed on every target in turn (one untimed call first, then up
   to --calls calls or --budget seconds), in --rounds rounds (every other one in reverse order);
   a target's figure is the lowest of its per-round medians. Before each request the script
   waits up to --wait-quiet s for the machine to go idle (bench/_common.py); `others` is the
   cores other processes used meanwhile.
4. One Markdown table, worst PostgreSQL/SQLite ratio first; rows over --within (2x) flagged.
   --profile: a pyinstrument profile (cProfile when pyinstrument is not importable) of each
   flagged request on the PostgreSQL target (pyinstrument is no dependency of
   the project: `pip install --target DIR pyinstrument` and PYTHONPATH=DIR).

Writes only under /tmp. Only 127.0.0.1 is contacted.
"""

import sys

sys.dont_write_bytecode = True  # nothing written outside /tmp: no __pycache__ in the project

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _catalog_requests import PG_WITHIN, SETS  # noqa: E402
from _catalog_requests import select as select_requests  # noqa: E402
from _common import (  # noqa: E402
    LARGE,
    PROJECT,
    SAMPLE,
    CpuMeter,
    export_tree,
    file_sha256,
    load_average,
    machine,
    now,
    postgres_create,
    table,
    wait_for_quiet,
)

TMP = Path("/tmp")
SCRUBBED = ("KEEPER_", "RATE_LIMIT_", "REDIS_", "DATABASE_", "OPENAI_", "AUTH_", "OIDC_", "SENTRY_", "CELERY_")


@dataclass
class Target:
    name: str
    label: str
    source: Path
    url: str = ""

    @property
    def postgres(self) -> bool:
        return self.url.startswith("postgres")


TARGETS = {
    "sqlite-sample": ("SQLite (sample)", SAMPLE),
    "pg-large": ("PostgreSQL (large)", LARGE),
    "pg-sample": ("PostgreSQL (sample)", SAMPLE),
    "sqlite-large": ("SQLite (large)", LARGE),
}
SHORT = {
    "sqlite-sample": "SQLite sample",
    "pg-large": "PG large",
    "pg-sample": "PG sample",
    "sqlite-large": "SQLite large",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED) and k != "DJANGO_SETTINGS_MODULE"}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def keeper_env(target: Target) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=target.url,
        KEEPER_CATALOG_SOURCE=str(target.source),
        KEEPER_CATALOG_RESPONSE_CACHE_SECONDS="0",
        # Set, so that settings never writes the project's .keeper-secret-key file.
        KEEPER_SECRET_KEY="bench-pg-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    )


# --- catalogs -------------------------------------------------------------------


def loaded_catalog(url: str) -> tuple[str | None, bool]:
    """The data_hash of the database's last loaded catalog (None: none), and whether a migration
    was applied after that sync (a migration may add a table only a sync fills: then sync again)."""
    queries = (
        "SELECT data_hash, started_at FROM catalog_syncrun WHERE status = 'SUCCEEDED'"
        " ORDER BY started_at DESC, id DESC LIMIT 1",
        "SELECT COUNT(*) FROM catalog_server",
        "SELECT MAX(applied) FROM django_migrations",
    )
    try:
        if url.startswith("postgres"):
            import psycopg

            with psycopg.connect(url) as conn:
                answers = [conn.execute(q).fetchone() for q in queries]
        else:
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                return None, False
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                answers = [conn.execute(q).fetchone() for q in queries]
            finally:
                conn.close()
    except Exception:  # no such table, no such database: nothing loaded
        return None, False
    row, servers, migrated = answers
    if not row or not servers[0]:
        return None, False
    return row[0], bool(migrated[0] and migrated[0] > row[1])


def prepare(target: Target, root: Path) -> str:
    env = keeper_env(target)
    log = TMP / f"keeper-bench-pg-{target.name}-load.log"
    started = time.perf_counter()
    if target.postgres:
        postgres_create(target.url, if_missing=True)
    python = str(PROJECT / ".venv" / "bin" / "python")

    def manage(*args: str) -> None:
        with log.open("ab") as out:
            done = subprocess.run([python, "manage.py", *args], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode:
            raise SystemExit(f"{target.name}: manage.py {' '.join(args)} failed; see {log}")

    manage("migrate", "--no-input", "-v0")
    want = file_sha256(target.source)
    loaded, stale = loaded_catalog(target.url)
    if loaded == want and not stale:
        return f"{target.label}: {target.url}: reused ({target.source.name} loaded)"
    force = ["--force"] if loaded == want else []
    manage("sync_catalog", "--source", str(target.source), "--no-progress", *force)
    if loaded_catalog(target.url) != (want, False):
        raise SystemExit(f"{target.name}: sync_catalog did not load {target.source}; see {log}")
    return f"{target.label}: {target.url}: loaded {target.source.name} in {time.perf_counter() - started:.0f} s"


# --- the worker (one per target) ------------------------------------------------


def worker(url: str, root: Path) -> None:
    """Keeper in this process; answers one JSON command per stdin line with one JSON line."""
    import gc

    from _common import setup_django

    setup_django(url, root)
    import logging

    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, connections
    from django.db.backends.utils import CursorWrapper
    from django.test import RequestFactory
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - as keeper/gunicorn.conf.py's post_worker_init
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # no 404 warnings timed
    handler, factory = WSGIHandler(), RequestFactory()
    statuses: list[str] = []
    sql_seconds = [0.0]
    statements = [0]

    def start_response(line: str, headers, exc_info=None) -> None:
        statuses.append(line)

    def timed_execute(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds[0] += time.perf_counter() - started
            statements[0] += 1

    def timed_fetch(name: str):
        def fetch(self, *args):
            started = time.perf_counter()
            try:
                with self.db.wrap_database_errors:
                    return getattr(self.cursor, name)(*args)
            finally:
                sql_seconds[0] += time.perf_counter() - started

        return fetch

    # Rows are fetched outside execute() (SQLite steps most of a query while they are fetched):
    # time Django's cursor wrapper's fetches too, so that "SQL" is the same thing on both engines.
    for name in ("fetchone", "fetchmany", "fetchall"):
        setattr(CursorWrapper, name, timed_fetch(name))

    # With CONN_HEALTH_CHECKS a kept connection is checked (PostgreSQL: SELECT 1, a round trip) at
    # the first query of each request, on the raw connection: no execute_wrapper sees it.
    wrapper_class = type(connections["default"])
    usable = wrapper_class.is_usable

    def timed_is_usable(self) -> bool:
        started = time.perf_counter()
        try:
            return usable(self)
        finally:
            sql_seconds[0] += time.perf_counter() - started

    wrapper_class.is_usable = timed_is_usable

    def get(path: str) -> bytes:
        response = handler(factory.get(path).environ, start_response)
        try:
            return b"".join(response)
        finally:
            response.close()  # request_finished, as a server would fire it

    get("/healthcheck")
    gc.collect()
    gc.freeze()
    out = sys.stdout
    sys.stdout = sys.stderr  # anything Keeper prints must not end up in the answers
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    with connection.execute_wrapper(timed_execute):
        for line in sys.stdin:
            command = json.loads(line)
            path = command["path"]
            if command.get("profile"):
                out.write(json.dumps({"profile": profile(lambda p=path: get(p), command["calls"])}) + "\n")
                out.flush()
                continue
            statuses.clear()
            body = get(path)  # warm: plans, the catalog version, the exchange rates
            answer = {"status": int(statuses[-1].split()[0]), "size": len(body), "times": [], "sql": []}
            started = time.perf_counter()
            while len(answer["times"]) < command["calls"]:
                sql_seconds[0], statements[0] = 0.0, 0
                begin = time.perf_counter()
                get(path)
                answer["times"].append(time.perf_counter() - begin)
                answer["sql"].append(sql_seconds[0])
                spent = time.perf_counter() - started
                if (spent > command["budget"] and len(answer["times"]) >= 3) or spent > 5 * command["budget"]:
                    break
            answer["statements"] = statements[0]
            out.write(json.dumps(answer) + "\n")
            out.flush()


def profile(call, calls: int) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            call()
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(30)
        return text.getvalue()
    # Wall-clock samples: where another process preempts this one is where it spent CPU, so the
    # shares stay right on a shared machine, only noisier (a CPU-time timer is called on every
    # Python call and would weigh call-heavy code several times over).
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(calls):
        call()
    profiler.stop()
    return profiler.output_text(unicode=True, color=False, show_all=False)


class Worker:
    def __init__(self, target: Target, root: Path) -> None:
        self.target = target
        self.log = TMP / f"keeper-bench-pg-{target.name}-worker.log"
        command = [
            str(PROJECT / ".venv" / "bin" / "python"),
            str(Path(__file__).resolve()),
            "--worker",
            target.url,
            "--root",
            str(root),
        ]
        self.process = subprocess.Popen(
            command,
            cwd=root,
            env=keeper_env(target),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("wb"),
            text=True,
        )
        self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.target.name}: the worker ended; see {self.log}")
        return json.loads(line)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- main -----------------------------------------------------------------------


@dataclass
class Cell:
    status: int = 0
    size: int = 0
    statements: int = 0
    medians: list[float] = field(default_factory=list)
    sql_medians: list[float] = field(default_factory=list)
    calls: int = 0

    def best(self) -> tuple[float, float] | None:
        """(seconds, SQL seconds) of the quietest round: the lowest median."""
        if not self.medians:
            return None
        i = min(range(len(self.medians)), key=self.medians.__getitem__)
        return self.medians[i], self.sql_medians[i]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def git(*command: str) -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    done = subprocess.run(["git", *command], cwd=PROJECT, capture_output=True, text=True, env=env)
    return done.stdout.strip() if done.returncode == 0 else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=PROJECT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--targets",
        default="sqlite-sample,pg-large,pg-sample",
        help=f"comma-separated, the first is the baseline; of {', '.join(TARGETS)} (default %(default)s)",
    )
    parser.add_argument("--set", action="append", choices=SETS, help="measure this set (repeatable; default all)")
    parser.add_argument("--only", action="append", help="measure this path (repeatable; adds to --set)")
    parser.add_argument("--commit", help="measure a clean export of this commit (e.g. HEAD) instead of the work tree")
    parser.add_argument("--pg-port", type=int, default=5446, help="the private PostgreSQL's port (default %(default)s)")
    parser.add_argument("--pg-dir", type=Path, default=TMP / "keeper-bench-pg", help="its data (default %(default)s)")
    parser.add_argument("--prepare-only", action="store_true", help="load the catalogs where needed, then stop")
    parser.add_argument("--keep-running", action="store_true", help="leave the PostgreSQL server running")
    parser.add_argument("--sqlite-dir", type=Path, default=TMP, help="where the SQLite files are (default /tmp)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds over the targets (default 4)")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per request, target and round (0.3)")
    parser.add_argument("--calls", type=int, default=200, help="calls at most per request, target and round (200)")
    parser.add_argument("--wait-quiet", type=float, default=3.0, help="wait up to this long for an idle machine")
    parser.add_argument("--within", type=float, default=PG_WITHIN, help="flag ratios over this (default %(default)s)")
    parser.add_argument("--sort", choices=["ratio", "order"], default="ratio", help="default: worst ratio first")
    parser.add_argument("--profile", action="store_true", help="profile the worst flagged requests on PostgreSQL")
    parser.add_argument("--profile-path", action="append", default=[], help="profile this path too (repeatable)")
    parser.add_argument("--profile-top", type=int, default=6, help="profile at most this many (worst first)")
    parser.add_argument("--profile-calls", type=int, default=20, help="calls per profile (default %(default)s)")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.root)
        return

    # Only here, never in a worker: a worker imports Keeper from the measured tree, and a `keeper`
    # package imported from the work tree first would be the one it runs.
    sys.path.insert(0, str(PROJECT))  # keeper.devservers: standard library only
    from keeper.devservers import PostgresServer

    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or len(names) < 2:
        parser.error(f"--targets: at least two of {', '.join(TARGETS)}")
    root, code = PROJECT, ""
    if args.commit:
        root, commit = export_tree(args.commit)
        code = f"commit {commit} (a clean export in {root})"
    else:
        dirty = len([line for line in git("status", "--porcelain").splitlines() if line.strip()])
        code = f"commit {git('rev-parse', '--short', 'HEAD')} (+{dirty} changed files in the work tree)"
    requests = select_requests(args.set, args.only)
    started = time.perf_counter()
    print(f"PostgreSQL vs SQLite in process, uncached, {now()}, {code}")
    print(f"{machine()}; load average before: {load_average()}", flush=True)

    postgres = PostgresServer(args.pg_dir.resolve() / "data", args.pg_port)
    started_here = False
    targets = []
    for name in names:
        label, source = TARGETS[name]
        target = Target(name, label, source)
        if name.startswith("pg-"):
            target.url = postgres.database_url(f"keeper_bench_{name.removeprefix('pg-')}")
        else:
            target.url = f"sqlite:///{(args.sqlite_dir / f'keeper-bench-pg-{name}.sqlite3').resolve()}"
        targets.append(target)
    workers: list[Worker] = []
    cells: dict[tuple[str, str], Cell] = {}
    others: dict[str, float] = {}
    profiles: dict[str, str] = {}
    pg_version = ""
    try:
        if any(t.postgres for t in targets):
            if postgres.running and postgres.accepting:
                how = "already running (left running)"
            else:
                postgres.start()
                started_here, how = True, "started here"
            version = subprocess.run([str(postgres.bin / "postgres"), "--version"], capture_output=True, text=True)
            pg_version = version.stdout.strip()
            print(f"{pg_version} on 127.0.0.1:{postgres.port}, data {postgres.data}: {how}", flush=True)
        for target in targets:
            print(prepare(target, root), flush=True)
        if args.prepare_only:
            return
        workers = [Worker(t, root) for t in targets]
        markers = ["postgres: postgres keeper_bench_"]
        print(f"\n{len(requests)} requests x {len(targets)} targets x {args.rounds} rounds:", flush=True)
        for request in requests:
            wait_for_quiet(args.wait_quiet, markers=markers)
            meter = CpuMeter(markers)
            for round_ in range(args.rounds):
                order = workers if round_ % 2 == 0 else list(reversed(workers))
                for w in order:
                    answer = w.ask(path=request.path, budget=args.budget, calls=args.calls)
                    cell = cells.setdefault((request.path, w.target.name), Cell())
                    cell.status, cell.size, cell.statements = answer["status"], answer["size"], answer["statements"]
                    cell.medians.append(median(answer["times"]))
                    cell.sql_medians.append(median(answer["sql"]))
                    cell.calls += len(answer["times"])
            others[request.path] = meter.others()
            shown = []
            for t in targets:
                cell = cells[(request.path, t.name)]
                seconds, sql = cell.best()
                shown.append(f"{t.name} {cell.status} {ms(seconds)} ms (SQL {ms(sql)}, {cell.statements} q)")
            print(f"  {request.path}: {' | '.join(shown)} (others {others[request.path]:.2f})", flush=True)

        def ratio(path: str, target: Target) -> float | None:
            base, cell = cells[(path, targets[0].name)].best(), cells[(path, target.name)].best()
            return cell[0] / base[0] if base and cell and base[0] else None

        flagged_target = next((t for t in targets[1:] if t.postgres), targets[1])
        to_profile = list(args.profile_path)
        if args.profile:
            over = [r.path for r in requests if (ratio(r.path, flagged_target) or 0) > args.within]
            over.sort(key=lambda path: -(ratio(path, flagged_target) or 0))
            to_profile += over[: args.profile_top]
        for path in dict.fromkeys(to_profile):
            w = next(w for w in workers if w.target is flagged_target)
            profiles[path] = w.ask(path=path, profile=True, calls=args.profile_calls)["profile"]
    finally:
        for w in workers:
            w.stop()
        if started_here and not args.keep_running:
            postgres.stop()

    base = targets[0]
    headers = ["request", f"{base.label} ms", "SQL ms (share)"]
    for t in targets[1:]:
        headers += [
            f"{t.label} ms",
            "SQL ms (share)",
            f"{SHORT[t.name]} / {SHORT[base.name]}",
        ]
    headers += ["queries", "others"]

    def cell_text(cell: Cell) -> list[str]:
        best = cell.best()
        if best is None:
            return ["-", "-"]
        seconds, sql = best
        status = "" if cell.status == 200 else f" ({cell.status})"
        return [f"{ms(seconds)}{status}", f"{ms(sql)} ({sql / seconds:.0%})" if seconds else "-"]

    rows = []
    ordered = requests
    if args.sort == "ratio":
        ordered = sorted(requests, key=lambda r: -(ratio(r.path, flagged_target) or 0))
    over = 0
    for request in ordered:
        line = [f"`{request.path}`", *cell_text(cells[(request.path, base.name)])]
        for t in targets[1:]:
            value = ratio(request.path, t)
            flag = ""
            if value is not None and value > args.within:
                flag = " **over**"
                over += t is flagged_target
            line += [*cell_text(cells[(request.path, t.name)]), "-" if value is None else f"{value:.2f}×{flag}"]
        counts = sorted({cells[(request.path, t.name)].statements for t in targets})
        line += ["/".join(map(str, counts)), f"{others[request.path]:.2f}"]
        rows.append(line)
    print(f"\nPostgreSQL vs SQLite, in process (Django's WSGIHandler), uncached, {now()}, {code}")
    print(
        f"{machine()}; {pg_version}; SQLite {sqlite3.sqlite_version}; "
        f"figure: the lowest of {args.rounds} per-round medians (each up to {args.calls} calls or "
        f"{args.budget:g} s); SQL: time inside cursor.execute (execute_wrapper) and the fetches; "
        f"target: {flagged_target.label} within {args.within:g}× of {base.label}: "
        f"{len(requests) - over} of {len(requests)} met; load average {load_average()}; "
        f"whole run {time.perf_counter() - started:.0f} s"
    )
    print(table(headers, rows))
    print(
        "queries: statements per request on each target (distinct counts); others: cores used by other "
        "processes while the request was measured"
    )
    for path, text in profiles.items():
        print(f"\n### profile on {flagged_target.label}: `{path}` ({args.profile_calls} calls)\n\n```\n{text}\n```")


if __name__ == "__main__":
    main()
