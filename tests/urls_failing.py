"""A tenant URLconf with one view that fails, for the 500 page test (tests/test_error_pages.py)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from helpdesk.urls_tenant import urlpatterns as tenant_urlpatterns


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail of the failure")


urlpatterns = [path("fail/", fail), *tenant_urlpatterns]
