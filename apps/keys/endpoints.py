"""Endpoint patterns of API keys: what they may look like, what they match, and which covers which.

A pattern is a path with `*` wildcards (`/servers`, `/server/*`); `*` matches any characters,
slashes included. Patterns are matched against every path that serves the same resource as the
request, not only the path as sent: `/v2/server/aws/m5.large` is the same view with the same
arguments as `/server/aws/m5.large`, so a key blocked from `/server/*` is blocked from both.
"""

import re
from fnmatch import fnmatchcase
from functools import lru_cache

from django.urls import NoReverseMatch, Resolver404, URLResolver, get_resolver, resolve, reverse

# No `?` or `[...]`: with `*` as the only wildcard, "pattern A covers pattern B" is decidable
# by matching B's text against A (see covers()), which key delegation relies on.
PATTERN = re.compile(r"^/[A-Za-z0-9._~/<>:-]*(\*[A-Za-z0-9._~/<>:*-]*)*$")
MAX_PATTERN_LENGTH = 200


def pattern_problem(value: object) -> str | None:
    """Why `value` is not a valid endpoint pattern, or None."""
    if not isinstance(value, str) or not value.startswith("/"):
        return f"{value!r} is not a path pattern starting with / (e.g. /server/*)."
    if len(value) > MAX_PATTERN_LENGTH:
        return f"A path pattern has at most {MAX_PATTERN_LENGTH} characters."
    if not PATTERN.match(value):
        return f"{value!r}: a path pattern may hold letters, digits, / . _ ~ - : < > and * as its only wildcard."
    return None


def covers(broad: str, narrow: str) -> bool:
    """Every path `narrow` matches is matched by `broad` too.

    Sound because `*` is the only wildcard: each `*` of `narrow`, read as text, is consumed
    by a `*` of `broad`, which can consume whatever that `*` stands for instead.
    """
    return fnmatchcase(narrow, broad)


def _view_identity(callback) -> tuple:
    view_class = getattr(callback, "view_class", None)
    if view_class is None:
        return (callback,)
    return (view_class, repr(sorted(getattr(callback, "view_initkwargs", {}).items())))


@lru_cache(maxsize=1)
def _names_by_view() -> dict[tuple, tuple[str, ...]]:
    """URL names grouped by the view they serve (the same class with the same arguments)."""
    grouped: dict[tuple, list[str]] = {}

    def walk(patterns, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif pattern.name:
                grouped.setdefault(_view_identity(pattern.callback), []).append(namespace + pattern.name)

    walk(get_resolver().url_patterns, "")
    return {identity: tuple(names) for identity, names in grouped.items()}


def equivalent_paths(path: str) -> list[str]:
    """`path` and every other path of the same view with the same arguments."""
    try:
        match = resolve(path)
    except Resolver404:
        return [path]
    paths = [path]
    for name in _names_by_view().get(_view_identity(match.func), ()):
        try:
            other = reverse(name, args=match.args, kwargs=match.kwargs)
        except NoReverseMatch:
            continue
        if other not in paths:
            paths.append(other)
    return paths


def allows(path: str, allowed: list[str], blocked: list[str]) -> bool:
    """Blocked wins; an empty allow list allows everything not blocked."""
    if not allowed and not blocked:
        return True
    paths = equivalent_paths(path)
    if any(fnmatchcase(p, pattern) for p in paths for pattern in blocked):
        return False
    return not allowed or any(fnmatchcase(p, pattern) for p in paths for pattern in allowed)
