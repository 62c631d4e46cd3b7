"""The Celery app. Without REDIS_URL tasks run in-process (CELERY_TASK_ALWAYS_EAGER)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")

app = Celery("keeper")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
