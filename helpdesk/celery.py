"""The Celery app: `celery -A helpdesk worker` and `celery -A helpdesk beat`. Tasks take the tenant's schema
name as an argument and open it themselves (conversations/tasks.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
