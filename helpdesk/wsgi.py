"""WSGI entry point (for a WSGI server in front of the webhook; websockets need helpdesk.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
application = get_wsgi_application()
