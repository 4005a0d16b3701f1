"""ASGI entry point (`helpdesk.asgi:application`): HTTP through Django (Meta's webhook POST in front of it),
websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from conversations.consumers import InboxConsumer  # noqa: E402
from conversations.webhook_asgi import WebhookFastPath  # noqa: E402
from helpdesk.asgi_middleware import HandshakeMiddleware, SameOriginMiddleware  # noqa: E402

websocket_routes = URLRouter([path("ws/inbox/", InboxConsumer.as_asgi())])

application = ProtocolTypeRouter(
    {
        # Meta's webhook skips Django's request stack (conversations/webhook_asgi.py); the rest is Django.
        "http": WebhookFastPath(django_asgi_app),
        # No database here: the consumer admits tenant, credential, user and membership in one statement.
        "websocket": AllowedHostsOriginValidator(SameOriginMiddleware(HandshakeMiddleware(websocket_routes))),
    }
)
