"""URLs of the public domain (PUBLIC_DOMAIN): Meta's webhook and the health check."""

from django.urls import path

from conversations.webhook_views import healthz, whatsapp_webhook

urlpatterns = [
    path("webhooks/whatsapp/", whatsapp_webhook, name="whatsapp-webhook"),
    path("healthz", healthz, name="healthz"),
]
