"""Identity-provider subjects as local user names (the caller of a request is keeper.api.callers.Caller)."""

import hashlib

# Django's user name column holds 150 characters: "idp:" and a subject of at most 146.
USERNAME_MAX_LENGTH = 150
IDP_PREFIX = "idp:"
# Long subjects are named by their SHA-256 under a prefix of its own: "idp:" + any subject is reachable
# by a short subject, so a hash under "idp:" could be claimed by a subject spelling it out.
IDP_HASHED_PREFIX = "idph:"


def idp_username(subject: str) -> str:
    """The local user name of an identity-provider subject: a namespace of its own, so a subject
    can never be a local account (or draw from its credit pool).

    Never a truncation: two subjects sharing their first 146 characters would share a user, its
    keys and its pool. A subject too long for the column is named by its SHA-256 instead.
    """
    name = f"{IDP_PREFIX}{subject}"
    if len(name) <= USERNAME_MAX_LENGTH:
        return name
    return f"{IDP_HASHED_PREFIX}{hashlib.sha256(subject.encode('utf-8', 'surrogatepass')).hexdigest()}"


def idp_label(subject: str) -> str:
    """The subject as logs and the audit name it: itself, or its hashed user name when too long to store."""
    name = idp_username(subject)
    return name if name.startswith(IDP_HASHED_PREFIX) else subject
