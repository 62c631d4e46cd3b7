"""Helper of run_all.py: mean seconds of requests through Django's WSGIHandler in this process.

    _inprocess_overhead.py open|guarded KEY PATH...   (settings from the environment)

Prints one JSON object {path: mean seconds}. "guarded" sends KEY in X-API-Key.
"""

import sys

sys.dont_write_bytecode = True

import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")

import django  # noqa: E402

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

CALLS, BUDGET = 2000, 4.0


def environ(path: str, key: str | None) -> dict:
    route, _, query = path.partition("?")
    env = {
        "REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "SERVER_PROTOCOL": "HTTP/1.1",
    }  # fmt: skip
    if key:
        env["HTTP_X_API_KEY"] = key
    return env


def mean_seconds(handler: WSGIHandler, path: str, key: str | None) -> float:
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info=None) -> None:
        statuses.append(status)

    for _ in range(20):  # warm-up: caches, the key's per-process state
        b"".join(handler(environ(path, key), start_response))
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"{path}: {statuses[-1]}")
    calls, started = 0, time.perf_counter()
    while calls < CALLS and time.perf_counter() - started < BUDGET:
        b"".join(handler(environ(path, key), start_response))
        calls += 1
    return (time.perf_counter() - started) / calls


def main() -> None:
    mode, key, *paths = sys.argv[1:]
    handler = WSGIHandler()
    print(json.dumps({path: mean_seconds(handler, path, key if mode == "guarded" else None) for path in paths}))


if __name__ == "__main__":
    main()
