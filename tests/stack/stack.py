"""What the stack tests need to talk to a running bin/keeper-stack: its state folder, HTTP, and which
gunicorn worker served a request.

The stack is found through its state folder (KEEPER_STACK_DIR, default var/stack/), whose stack.json
says where everything is. Nothing here starts or stops it: bin/ci-stack does.
"""

import http.client
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    served_by: int | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Stack:
    """A running stack, as its state folder describes it."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.config: dict = json.loads((directory / "stack.json").read_text())
        self.port: int = self.config["web_port"]

    @classmethod
    def locate(cls) -> "Stack | None":
        configured = os.environ.get("KEEPER_STACK_DIR", "").strip()
        directory = Path(configured).resolve() if configured else ROOT / "var" / "stack"
        return cls(directory) if (directory / "stack.json").exists() else None

    @property
    def admin_key(self) -> str:
        return Path(self.config["admin_key_file"]).read_text().strip()

    def pid(self, service: str) -> int | None:
        try:
            return int(Path(self.config["pid_files"][service]).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log(self, service: str) -> str:
        return Path(self.config["logs"][service]).read_text(errors="replace")

    def events(self, event: str | None = None) -> list[dict]:
        lines = Path(self.config["events"]).read_text().splitlines()
        entries = [json.loads(line) for line in lines]
        for entry in entries:
            entry["at"] = datetime.fromisoformat(entry["at"])
        return [entry for entry in entries if event is None or entry["event"] == event]

    def keeper_env(self) -> dict[str, str]:
        """The environment a Keeper process of this stack runs with (no bootstrap keys: those are gunicorn's)."""
        env = {key: value for key, value in os.environ.items() if key != "KEEPER_API_KEYS"}
        env.update(
            DATABASE_URL=self.config["database_url"],
            REDIS_URL=self.config["redis_url"],
            KEEPER_SECRET_KEY=Path(self.config["secret_key_file"]).read_text().strip(),
            RATE_LIMIT_ENABLED="1",
            RATE_LIMIT_BACKEND="redis",
            DJANGO_SETTINGS_MODULE="keeper.settings",
        )
        return env

    def web_workers(self) -> set[int]:
        """The gunicorn workers now serving: the master's children other than its run_schedule child."""
        master = self.pid("web")
        workers = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == master and fields[0] != "Z" and b"gunicorn" in cmdline:
                workers.add(int(entry.name))
        return workers

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        connection: http.client.HTTPConnection | None = None,
        identify_worker: bool = False,
    ) -> Answer:
        """One request on `connection`, else on a new connection (closed after it).

        identify_worker: find the gunicorn worker holding the server side of the connection while
        it is still open (kept alive for 2 s after the answer).
        """
        own = connection is None
        connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"X-Request-ID": uuid.uuid4().hex}
        if key:
            headers["X-API-Key"] = key
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            served_by = serving_worker(connection, self.port, self.web_workers()) if identify_worker else None
        finally:
            if own:
                connection.close()
        content_type = response.getheader("Content-Type", "")
        parsed = json.loads(raw) if raw and "json" in content_type else raw
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed, served_by)

    def create_key(self, **fields: Any) -> dict:
        """A key made through the API by the stack's admin key; the answer holds the key once.

        Names are unique per owner: each gets a suffix, so tests can run again on the same stack.
        """
        fields["name"] = f"{fields['name']} {uuid.uuid4().hex[:8]}"
        answer = self.request("POST", "/keys", key=self.admin_key, body={"scope": "read", **fields})
        assert answer.status == 201, answer
        return answer.body


def _socket_inode(client_port: int, server_port: int) -> str | None:
    """The inode of the server's end of the TCP connection 127.0.0.1:client_port -> 127.0.0.1:server_port."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


def serving_worker(connection: http.client.HTTPConnection, server_port: int, workers: set[int]) -> int | None:
    """Which of `workers` holds the accepted socket of this (still open) connection.

    Nothing in an answer names the process that made it, and the API should not expose it; Linux
    does: the accepted socket is an open file of exactly one worker.
    """
    client_port = connection.sock.getsockname()[1]
    inode = _socket_inode(client_port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{descriptor}") == target:
                    return pid
            except OSError:
                continue
    return None
