"""The 403, 404 and 500 pages: styled like the app (its stylesheet and card), in the visitor's language, and
never a technical page or the failure's details (DEBUG is off in the tests, as in production)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings
from django.utils import translation
from django.views.defaults import server_error

from tests.conftest import ACME, issue_token, tenant_client

TECHNICAL = ("Traceback", "Request Method", "Using the URLconf", "Django", "WSGIRequest", "secret detail")


def client_in(language: str | None, **kwargs: Any) -> Client:
    client = Client(HTTP_HOST=ACME["domain"], **kwargs)
    if language:
        client.cookies["django_language"] = language
    return client


def assert_styled(response: Any, status: int, *texts: str) -> str:
    page = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert 'data-testid="error-page"' in page
    assert "/static/inbox/app.css" in page
    assert f'data-testid="error-code">{status}<' in page
    for text in texts:
        assert text in page, text
    for leak in TECHNICAL:
        assert leak not in page, leak
    return page


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("en", ['<html lang="en">', "Page not found", "There is nothing at this address."]),
        ("id", ['<html lang="id">', "Halaman tidak ditemukan", "Tidak ada apa pun di alamat ini."]),
    ],
)
def test_an_unknown_address_on_a_tenant_gets_the_styled_404(db, alice, language, texts):
    client = client_in(language)
    client.force_login(alice)

    response = client.get("/no/such/page/")

    assert_styled(response, 404, *texts)


@pytest.mark.parametrize(("language", "text"), [("id", "Halaman tidak ditemukan"), ("en", "Page not found")])
def test_an_unknown_host_gets_the_styled_404_in_the_visitors_language(db, language, text):
    response = Client(HTTP_HOST="nobody.localhost", HTTP_ACCEPT_LANGUAGE=language).get("/inbox/")

    assert_styled(response, 404, f'<html lang="{language}">', text)


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("en", ["You cannot open this page", "You are not a member of this helpdesk."]),
        ("id", ["Anda tidak dapat membuka halaman ini", "Anda bukan anggota helpdesk ini."]),
    ],
)
def test_a_member_of_another_tenant_gets_the_styled_403(db, bob, language, texts):
    client = client_in(language)
    client.force_login(bob)

    response = client.get("/inbox/")

    assert_styled(response, 403, *texts)


@pytest.mark.parametrize("path", ["/reports/", "/settings/", "/broadcasts/"])
def test_an_agent_gets_the_styled_403_on_supervisor_pages(db, alice, path):
    client = client_in("id")
    client.force_login(alice)

    response = client.get(path)

    assert_styled(response, 403, "Halaman ini untuk supervisor dan admin.")


@override_settings(ROOT_URLCONF="tests.urls_failing")
@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("en", ['<html lang="en">', "Something went wrong"]),
        ("id", ['<html lang="id">', "Terjadi kesalahan"]),
    ],
)
def test_a_failing_view_gets_the_styled_500_without_its_details(db, alice, language, texts):
    client = client_in(language, raise_request_exception=False)
    client.force_login(alice)

    response = client.get("/fail/")

    assert_styled(response, 500, *texts)


def test_the_500_page_renders_without_a_request_context_or_the_database(db, django_assert_max_num_queries):
    # Django renders 500.html with an empty context; it must not need the database either (it may be down)
    request = RequestFactory().get("/", HTTP_HOST=ACME["domain"])
    with translation.override("id"), django_assert_max_num_queries(0):
        response = server_error(request)

    assert_styled(response, 500, '<html lang="id">', "Terjadi kesalahan")


def test_the_api_keeps_answering_json_errors(db, alice):
    # the styled pages are for browsers; the API's refusals keep their JSON shape
    client = tenant_client(ACME, issue_token(alice))

    response = client.get("/api/v1/conversations/999999999/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No Conversation matches the given query.", "code": "not_found"}
