from django.db import models


class Scope(models.TextChoices):
    """Hierarchical: each scope includes the ones before it."""

    READ = "read", "read: query the catalog, see own keys"
    WRITE = "write", "write: also create and change own keys"
    ADMIN = "admin", "admin: everything, everyone's keys, the global rate limit"

    @property
    def rank(self) -> int:
        return SCOPE_RANK[self.value]

    @classmethod
    def covers(cls, granted: str, needed: str) -> bool:
        return SCOPE_RANK[granted] >= SCOPE_RANK[needed]


SCOPE_RANK = {Scope.READ.value: 0, Scope.WRITE.value: 1, Scope.ADMIN.value: 2}


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "active"
    SUSPENDED = "suspended", "suspended"
    EXPIRED = "expired", "expired"
    REVOKED = "revoked", "revoked"


class HashKind(models.TextChoices):
    HMAC = "hmac", "HMAC-SHA256 with the server pepper (generated keys)"
    SCRYPT = "scrypt", "scrypt (imported keys of unknown entropy)"


class KeySource(models.TextChoices):
    GENERATED = "generated", "generated"
    IMPORTED = "imported", "imported (value supplied by the owner)"
    BOOTSTRAP = "bootstrap", "bootstrap (KEEPER_API_KEYS)"


class AuditAction(models.TextChoices):
    CREATE = "create", "created"
    UPDATE = "update", "updated"
    ROTATE = "rotate", "rotated"
    REVOKE = "revoke", "revoked"
    SUSPEND = "suspend", "suspended"
    REACTIVATE = "reactivate", "reactivated"
    DELETE = "delete", "deleted"
    EXPIRE = "expire", "expired"
    EXPIRY_WARNING = "expiry_warning", "expiring soon"
    DENIED = "denied", "use refused"


class Credential(models.TextChoices):
    """What an API request presented (counted per day in TrafficDay)."""

    API_KEY = "api_key", "API key"
    CAPABILITY_TOKEN = "capability_token", "capability token"
    TOKEN = "token", "OAuth token"
    SESSION = "session", "admin session"
    ANONYMOUS = "anonymous", "anonymous"


class Refusal(models.TextChoices):
    """Why a request was refused, as the staff overview counts it (a TrafficDay column each)."""

    UNAUTHORIZED = "unauthorized", "401: no valid credentials"
    FORBIDDEN = "forbidden", "403: not allowed"
    POOL = "pool", "429: credit pool"
    QUOTA = "quota", "429: daily quota"
    GLOBAL = "global_bucket", "429: global bucket"
