"""On PostgreSQL a request waits for a lock no longer than KEEPER_DATABASE_LOCK_WAIT_SECONDS either (issue 15, item 1).

Another session holds a key's row (SELECT ... FOR UPDATE, as a long transaction would) far longer than any
request may wait: the key still authenticates (200, its last_used_at written behind the request once the row
is free), a change to it is a quick JSON 503 with Retry-After, and no worker is killed for waiting.
"""

import subprocess

from tests.faults.conftest import Stack
from tests.live import wait_until

# Far beyond any bound a request may wait; the test ends the session as soon as the requests are answered.
HOLD_SECONDS = 60


def test_a_held_key_row_makes_a_change_a_quick_503_while_the_key_keeps_working(keeper: Stack):
    server, admin = keeper.keeper, {"X-API-Key": keeper.admin_key}
    created = server.request("POST", "/keys", headers=admin, body={"name": "row-locked"})
    assert created.status == 201, created.body
    key, key_id = created.json()["key"], created.json()["id"]
    pk = keeper.postgres.query(f"SELECT id FROM keys_apikey WHERE key_id = '{key_id}'")
    workers = server.workers()

    psql = [str(keeper.postgres.bin / "psql"), "-h", "127.0.0.1", "-p", str(keeper.postgres.port)]
    holder = subprocess.Popen(
        [*psql, "-U", "postgres", "-d", "keeper", "-X", "-A", "-t", "-q"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        holder.stdin.write(f"BEGIN;\nSELECT 'locked' FROM keys_apikey WHERE id = {pk} FOR UPDATE;\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        uses = [server.get("/regions", headers={"X-API-Key": key}, timeout=HOLD_SECONDS).status for _ in range(5)]
        change = server.request(
            "PATCH", f"/keys/{key_id}", headers=admin, body={"description": "during"}, timeout=HOLD_SECONDS
        )
        # Both came while the row was still held.
        assert holder.poll() is None
    finally:
        if holder.poll() is None:
            holder.stdin.write("ROLLBACK;\n")
            holder.stdin.close()
        holder.wait(timeout=HOLD_SECONDS)

    assert uses == [200] * 5
    assert change.status == 503 and change.json()["code"] == "database_unavailable"
    assert int(change.headers["retry-after"]) >= 1
    assert server.workers() == workers, server.log_tail()
    wait_until(
        lambda: keeper.postgres.query(f"SELECT last_used_at IS NOT NULL FROM keys_apikey WHERE id = {pk}") == "t",
        timeout=30,
        what="last_used_at written once the row was free",
    )
    assert keeper.postgres.query(f"SELECT description FROM keys_apikey WHERE id = {pk}") == ""
