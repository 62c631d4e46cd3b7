"""/docs (Swagger UI) and /redoc (ReDoc) are sent with a Content-Security-Policy that allows this origin
only (keeper/api/docs.py); their inline scripts carry the answer's own nonce, and so do Swagger UI's
styles (ReDoc's inline styles are allowed, and only styles).

tests/browser/test_pages.py renders both pages in Chromium under this policy."""

import re

import pytest

PAGES = ["/docs", "/redoc"]
# Besides a nonce: this origin, the data: and blob: URLs a page makes itself, and nothing.
OWN_SOURCES = {"'self'", "data:", "blob:", "'none'"}
INLINE_STYLES = {"/docs": False, "/redoc": True}


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in header.split(";"))}


def nonce_of(response) -> str:
    (nonce,) = {source[len("'nonce-") : -1] for source in directives(response)["script-src"] if "nonce-" in source}
    return nonce


@pytest.mark.parametrize("path", PAGES)
def test_a_documentation_page_may_load_only_from_this_origin(db, api, path):
    response = api.get(path)

    assert response.status_code == 200
    policy = directives(response)
    nonce = nonce_of(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'" if INLINE_STYLES[path] else f"'nonce-{nonce}'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'self'"]
    others = {source for name, sources in policy.items() for source in sources if name != "style-src"}
    assert others - {f"'nonce-{nonce}'"} <= OWN_SOURCES, f"{path} allows {sorted(others - OWN_SOURCES)}"


@pytest.mark.parametrize("path", PAGES)
def test_every_inline_script_carries_the_answers_nonce(db, api, path):
    response = api.get(path)

    page = response.content.decode()
    nonce = nonce_of(response)
    inline = re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page)
    if not INLINE_STYLES[path]:
        inline += re.findall(r"<style[^>]*>", page)
    assert inline, f"{path} has no inline script or style"
    assert all(f'nonce="{nonce}"' in tag for tag in inline), inline
    # No script in an attribute (onload=...) either: the policy would refuse it.
    assert not re.search(r"<[^>]+\son[a-z]+=", page)


def test_the_documentation_pages_are_not_operations_of_the_api(db, api):
    paths = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()["paths"]

    assert "/openapi.json" not in paths
    assert not set(PAGES) & set(paths)


@pytest.mark.parametrize("path", PAGES)
def test_each_answer_has_a_nonce_of_its_own(db, api, path):
    first, second = nonce_of(api.get(path)), nonce_of(api.get(path))

    assert first != second
    assert len(first) >= 22  # at least 128 random bits


def test_redoc_loads_its_bundle_from_this_origin_with_no_address_of_another_host(db, api):
    page = api.get("/redoc").content.decode()
    (bundle_url,) = re.findall(r'<script src="([^"]+)"', page)

    bundle = api.get(bundle_url)

    assert bundle_url.startswith("/")
    assert bundle.status_code == 200
    assert bundle["Content-Type"].startswith("text/javascript")
    body = bundle.content.decode()
    assert "Redoc" in body
    # The Redocly logo, the one picture the bundle names on another host, is inline instead.
    assert "cdn.redoc.ly" not in body
    assert "data:image/svg+xml," in body
