"""A live Keeper for the browser checks, as it runs in production (tests/live.py: gunicorn, keeper/gunicorn.conf.py).

A throwaway SQLite database with the test suite's small catalog, a superuser, an API key with some
usage, all in a temporary folder; the server listens on a free 127.0.0.1 port. Nothing from the
caller's environment reaches the server (no Redis, identity provider, Sentry or AI provider).
"""

import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests import live

PROJECT = live.PROJECT

# Today's usage of the key, from real requests at start-up: the path and the status it must get.
KEY_REQUESTS = {"/servers?limit=3": 200, "/regions": 200, "/stats": 200, "/servers?vcpus_min=x": 400}


@dataclass(frozen=True)
class LiveKeeper:
    """What the browser checks know of the server (tests/live.py's LiveKeeper) they run against."""

    url: str
    username: str
    password: str
    key_pk: int
    # The UTC days (ISO) with seeded usage of the key, before today.
    key_past_usage_days: list[str]
    log_path: Path


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _status_with_key(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@contextmanager
def live_keeper(work: Path) -> Iterator[LiveKeeper]:
    server = live.LiveKeeper(
        work,
        log=work / "server.log",
        # tests.browser.seed migrates and syncs, with the rest of what the pages show.
        prepare=False,
        # The scheduler gunicorn starts syncs again from the catalog file (unchanged: skipped), never the network.
        SC_DATA_NO_UPDATE="1",
        # Each request's usage is written at once, so the chart shows today's requests.
        KEEPER_KEY_USAGE_FLUSH_SECONDS="0",
    )
    username, password = "browser-admin", secrets.token_urlsafe(16)
    credentials = {"BROWSER_ADMIN_USERNAME": username, "BROWSER_ADMIN_PASSWORD": password}
    output = _run([sys.executable, "-m", "tests.browser.seed"], {**server.env, **credentials})
    seeded = json.loads(output.strip().splitlines()[-1])
    with server:
        statuses = {path: _status_with_key(f"{server.url}{path}", seeded["key"]) for path in KEY_REQUESTS}
        if statuses != KEY_REQUESTS:
            raise RuntimeError(f"Requests with the key answered {statuses}, expected {KEY_REQUESTS}")
        yield LiveKeeper(server.url, username, password, seeded["key_pk"], seeded["past_usage_days"], server.log)
