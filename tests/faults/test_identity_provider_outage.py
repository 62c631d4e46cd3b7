"""The identity provider down, against live gunicorn: tokens Keeper has verified keep working from its caches,
tokens it has not seen get a JSON 503 with Retry-After (README "Who is calling")."""

from tests.faults.conftest import Stack


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_cached_tokens_keep_working_and_unknown_ones_get_a_503_while_the_provider_is_down(keeper: Stack):
    server, idp = keeper.keeper, keeper.idp
    token = idp.issue("tok-faults-alice", sub="faults-alice")
    first = server.get("/me", headers=bearer(token))
    assert first.status == 200, first.body
    assert idp.introspected.count(token) == 1

    idp.stop()
    # While its L1 cache holds the verdict, the worker that introspected answers from memory.
    from_either_worker = [server.get("/me", headers=bearer(token)) for _ in range(4)]
    # Workers started after the provider went down have empty L1 caches: only Redis (L2) knows the token.
    old_workers = server.kill_workers()
    server.wait_for_workers()
    assert not set(old_workers) & set(server.workers())
    from_redis = [server.get("/me", headers=bearer(token)) for _ in range(4)]
    unknown = server.get("/me", headers=bearer("tok-never-introspected"))

    for answer in from_either_worker + from_redis:
        assert answer.status == 200, answer.body
        assert answer.json()["user_id"] == "faults-alice"
    assert unknown.status == 503
    assert int(unknown.headers["retry-after"]) > 0
    assert unknown.headers["content-type"] == "application/json"
    assert unknown.json() == {
        "detail": "The identity provider is unavailable; try again later.",
        "code": "identity_provider_unavailable",
    }
    assert idp.introspected.count(token) == 1
