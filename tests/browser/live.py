"""A live Keeper for the browser checks, as it runs in production (gunicorn with keeper/gunicorn.conf.py).

A throwaway SQLite database with the test suite's small catalog, a superuser, an API key with some
usage, all in a temporary folder; the server listens on a free 127.0.0.1 port. Nothing from the
caller's environment reaches the server (no Redis, identity provider, Sentry or AI provider).
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.catalog.upstream import sample_catalog

PROJECT = Path(__file__).resolve().parents[2]
# Settings read from the environment (keeper/settings.py, sparecores-data): none may leak in.
ENV_PREFIXES = (
    "KEEPER_", "DATABASE_URL", "REDIS_URL", "AUTH_", "OIDC_", "SENTRY_", "RATE_LIMIT_", "OPENAI_", "SC_DATA_",
)  # fmt: skip
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10


# Today's usage of the key, from real requests at start-up: the path and the status it must get.
KEY_REQUESTS = {"/servers?limit=3": 200, "/regions": 200, "/stats": 200, "/servers?vcpus_min=x": 400}


@dataclass(frozen=True)
class LiveKeeper:
    url: str
    username: str
    password: str
    key_pk: int
    # The UTC days (ISO) with seeded usage of the key, before today.
    key_past_usage_days: list[str]
    log_path: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_env(work: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIXES)}
    catalog = sample_catalog().save(work / "catalog.db")
    env.update(
        DJANGO_SETTINGS_MODULE="keeper.settings",
        DATABASE_URL=f"sqlite:///{work / 'keeper.sqlite3'}",
        KEEPER_SECRET_KEY=secrets.token_urlsafe(50),
        # The scheduler gunicorn starts syncs again from this file (unchanged: skipped), never the network.
        KEEPER_CATALOG_SOURCE=str(catalog),
        SC_DATA_NO_UPDATE="1",
        # Each request's usage is written at once, so the chart shows today's requests.
        KEEPER_KEY_USAGE_FLUSH_SECONDS="0",
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _wait_until_healthy(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            # A client that gives up early is logged as a 500 by gunicorn: wait for the worker's warm-up.
            with urllib.request.urlopen(f"{url}/healthcheck", timeout=START_TIMEOUT_SECONDS) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Keeper did not answer /healthcheck at {url}; its log:\n{log_path.read_text(errors='replace')}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the master (it stops its workers and scheduler), then its whole group if it lingers."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    try:
        # The server was started in a session of its own: this group holds only its processes.
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.wait()


def _status_with_key(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@contextmanager
def live_keeper(work: Path) -> Iterator[LiveKeeper]:
    env = _server_env(work)
    python = sys.executable
    username, password = "browser-admin", secrets.token_urlsafe(16)
    credentials = {"BROWSER_ADMIN_USERNAME": username, "BROWSER_ADMIN_PASSWORD": password}
    output = _run([python, "-m", "tests.browser.seed"], {**env, **credentials})
    seeded = json.loads(output.strip().splitlines()[-1])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "-c", "keeper/gunicorn.conf.py", "keeper.wsgi", "--bind", f"127.0.0.1:{port}"],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(url, server, log_path)
        statuses = {path: _status_with_key(f"{url}{path}", seeded["key"]) for path in KEY_REQUESTS}
        if statuses != KEY_REQUESTS:
            raise RuntimeError(f"Requests with the key answered {statuses}, expected {KEY_REQUESTS}")
        yield LiveKeeper(url, username, password, seeded["key_pk"], seeded["past_usage_days"], log_path)
    finally:
        _stop(server)
