from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.keys.signing import (
    ACTIVATION_DELAY_SECONDS,
    SUPERSEDED_KEY_PUBLISHED_SECONDS,
    key_set,
    signing_key_rotate,
)


class Command(BaseCommand):
    help = (
        "Add a new capability token signing key. It is published at once and signs from a minute later; "
        "the previous key stays published until the tokens it signed have expired, then is dropped "
        "(by the next rotation or the hourly prune task). --compromised: the new key signs at once and "
        "every other key is dropped now (their tokens fail)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--compromised",
            action="store_true",
            help="The current keys may be known to others: sign with the new key now and drop the others.",
        )

    def handle(self, *args, compromised: bool = False, **options) -> None:
        rotation = signing_key_rotate(compromised=compromised)
        key = rotation.key
        if key.activates_at <= timezone.now():
            self.stdout.write(f"New signing key {key.kid} signs from now.")
        else:
            self.stdout.write(
                f"New signing key {key.kid} is published now and signs from {key.activates_at:%Y-%m-%d %H:%M:%S} UTC "
                f"(in {ACTIVATION_DELAY_SECONDS} s). The previous key stays published for "
                f"{SUPERSEDED_KEY_PUBLISHED_SECONDS} s after that."
            )
        for kid in rotation.dropped:
            self.stdout.write(f"Dropped {kid} (no valid token needs it).")
        published = [public.kid for public in key_set.published()]
        self.stdout.write(self.style.SUCCESS(f"Published keys: {', '.join(published)}"))
