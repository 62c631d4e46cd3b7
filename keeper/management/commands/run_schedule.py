from django.conf import settings
from django.core.management.base import BaseCommand

from keeper.schedule import run_forever


class Command(BaseCommand):
    help = (
        "Run Celery beat's schedule (catalog sync, key expiry warnings) in this process, for setups "
        "without Redis and Celery. With REDIS_URL set it exits at once: Celery beat does the work."
    )

    def handle(self, *args, **options) -> None:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write("REDIS_URL is set: Celery beat runs the schedule; nothing to do.")
            return
        names = ", ".join(
            f"{name} every {int(entry['schedule'])} s" for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        )
        self.stdout.write(f"Running the schedule in-process: {names}.")
        run_forever()
