"""URLs of the public domain (PUBLIC_DOMAIN): Meta's webhook, the health check, the operator's pages."""

from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.views.generic import RedirectView

from conversations.webhook_views import healthz, parked_webhooks, whatsapp_webhook
from helpdesk.tenancy.views import sign_out_everywhere
from tickets.operator_views import OperatorLoginView, tenant_reports

handler500 = "helpdesk.api_errors.server_error"  # 503 + Retry-After when the database pool is exhausted

urlpatterns = [
    path("webhooks/whatsapp/", whatsapp_webhook, name="whatsapp-webhook"),
    path("healthz", healthz, name="healthz"),
    # The platform operator (superusers): the same report for every tenant.
    path("", RedirectView.as_view(url="/operator/reports/", permanent=False)),
    path("login/", OperatorLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("logout-all/", sign_out_everywhere, name="logout-all"),
    path("operator/reports/", tenant_reports, name="operator-reports"),
    path("operator/webhooks/", parked_webhooks, name="operator-webhooks"),
    path("i18n/", include("django.conf.urls.i18n")),
]
