"""URLs of a tenant's domain: the browser inbox, the REST API and its schema. (Websockets: helpdesk/asgi.py.)"""

from csp.decorators import csp_update
from django.contrib.auth.views import LogoutView
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from conversations import account_api, admin_web, api, broadcasts_api, contacts_api, web
from conversations.webhook_views import healthz
from helpdesk.tenancy.views import (
    ApiLogoutAllView,
    ApiLogoutView,
    ObtainTokenView,
    TenantLoginView,
    sign_out_everywhere,
)
from tickets import api as tickets_api
from tickets import web as tickets_web

handler404 = "helpdesk.api_errors.not_found"  # JSON {detail, code} under /api/, the HTML page elsewhere
handler500 = "helpdesk.api_errors.server_error"

router = DefaultRouter()
router.register("conversations", api.ConversationViewSet, basename="conversation")
router.register("tickets", tickets_api.TicketViewSet, basename="ticket")
router.register("numbers", account_api.NumberViewSet, basename="number")
router.register("broadcasts", broadcasts_api.BroadcastViewSet, basename="broadcast")
router.register("templates", account_api.TemplateViewSet, basename="template")
router.register("alerts", account_api.AlertViewSet, basename="alert")
router.register("contacts", contacts_api.ContactViewSet, basename="contact")
router.register("labels", contacts_api.LabelViewSet, basename="label")
router.register("canned-responses", contacts_api.CannedResponseViewSet, basename="canned-response")
conversation_messages = api.ConversationMessagesViewSet.as_view({"get": "list", "post": "create"})
conversation_notes = api.ConversationNotesViewSet.as_view({"get": "list", "post": "create"})

api_v1: list[URLPattern | URLResolver] = [
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("auth/logout/", ApiLogoutView.as_view(), name="api-logout"),
    path("auth/logout-all/", ApiLogoutAllView.as_view(), name="api-logout-all"),
    path(
        "conversations/<int:conversation_pk>/messages/", conversation_messages, name="conversation-messages"
    ),
    path("conversations/<int:conversation_pk>/notes/", conversation_notes, name="conversation-notes"),
    path("messages/<int:message_pk>/media/", api.MessageMediaView.as_view(), name="message-media"),
    path("reports/summary/", tickets_api.SummaryReportView.as_view(), name="report-summary"),
    path("reports/timeseries/", tickets_api.TimeseriesReportView.as_view(), name="report-timeseries"),
    path("reports/agents/", tickets_api.AgentsReportView.as_view(), name="report-agents"),
    path("me/", tickets_api.AvailabilityView.as_view(), name="me"),
    path("members/", tickets_api.MembersView.as_view(), name="members"),
    path("settings/support/", tickets_api.SupportSettingsView.as_view(), name="support-settings"),
    path("settings/guardrails/", account_api.GuardrailsView.as_view(), name="guardrails"),
    path("templates/check/", account_api.TemplateCheckView.as_view(), name="template-check"),
    path("templates/words/", account_api.TemplateWordsView.as_view(), name="template-words"),
    path("search/", contacts_api.SearchView.as_view(), name="search"),
    path("mentions/", contacts_api.MentionsView.as_view(), name="mentions"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/inbox/", permanent=False)),
    path("login/", TenantLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("logout-all/", sign_out_everywhere, name="logout-all"),
    path("inbox/", web.inbox, name="inbox"),
    path("inbox/simulate/", web.simulate_customer_message, name="inbox-simulate"),
    path("reports/", tickets_web.reports_page, name="reports"),
    path("settings/", tickets_web.settings_page, name="settings"),
    path("numbers/", admin_web.numbers_page, name="numbers"),
    path("templates/", admin_web.templates_page, name="templates"),
    path("broadcasts/", admin_web.broadcasts_page, name="broadcasts"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # its script is a file of its own (CSP: no inline script); Swagger UI's page has an inline <style>
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path("healthz", healthz),
    path("i18n/", include("django.conf.urls.i18n")),
]
