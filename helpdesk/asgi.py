"""ASGI entry point (`helpdesk.asgi:application`): HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from conversations.consumers import InboxConsumer  # noqa: E402
from helpdesk.asgi_middleware import SameOriginMiddleware, TenantMiddleware, TokenAuthMiddleware  # noqa: E402

websocket_routes = URLRouter([path("ws/inbox/", InboxConsumer.as_asgi())])

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            SameOriginMiddleware(TenantMiddleware(AuthMiddlewareStack(TokenAuthMiddleware(websocket_routes))))
        ),
    }
)
