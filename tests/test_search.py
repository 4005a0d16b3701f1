"""The inbox search (GET /api/v1/search/): a word of a message in Indonesian or English (and its other forms),
part of a contact's name or number, newest first, with the places to highlight; filters; tenants kept apart; and
the indexes it relies on actually used."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from conversations import search
from conversations.models import Conversation, Label
from tests.conftest import ACME, GLOBEX, fresh_wa_id, issue_token, receive_text, tenant_client


def hits(user: Any, query: str, spec: dict[str, str] = ACME, **params: Any) -> Any:
    response = tenant_client(spec, issue_token(user)).get("/api/v1/search/", {"q": query, **params})
    assert response.status_code == 200, response.content
    return response.json()


def say(number: Any, text: str, name: str = "Rina", wa_id: str | None = None, ago: int = 0) -> Any:
    return receive_text(number, wa_id or fresh_wa_id(), text, int(time.time()) - ago, name=name)


def test_a_word_finds_its_messages_newest_first_with_the_places_to_highlight(db, alice, acme_number):
    older = say(acme_number, "Nomor resi JNE saya belum update", ago=600)
    newer = say(acme_number, "Resi sudah saya kirim kemarin", ago=60)
    say(acme_number, "Terima kasih banyak")

    answer = hits(alice, "resi")

    assert answer["count"] == 2
    assert [(h["match"], h["message"]["id"], h["conversation"]["id"]) for h in answer["results"]] == [
        ("message", newer.pk, newer.conversation_id),
        ("message", older.pk, older.conversation_id),
    ]
    text = answer["results"][1]["message"]["text"]
    assert [text[start:end] for start, end in answer["results"][1]["highlights"]] == ["resi"]


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Paket sudah dikirim kemarin", "kirim"),  # Indonesian: the stem finds "dikirim"
        ("My orders were delivered late", "order"),  # English: "orders"
        ("I am still waiting for the parcel", "waited"),
    ],
)
def test_other_forms_of_a_word_are_found_in_indonesian_and_english(db, alice, acme_number, text, query):
    message = say(acme_number, text)

    assert message.pk in [h["message"]["id"] for h in hits(alice, query)["results"] if h["message"]]


def test_a_contact_is_found_by_part_of_its_name_or_number(db, alice, acme_number):
    message = say(acme_number, "halo", name="Rina Kusuma", wa_id="6281234567890")

    by_name = hits(alice, "kusum")["results"]
    by_number = hits(alice, "4567")["results"]

    assert [(h["match"], h["conversation"]["id"], h["message"]) for h in by_name] == [
        ("contact", message.conversation_id, None)
    ]
    assert by_name[0]["highlights"] == [[5, 11]]  # "Kusuma" in "Rina Kusuma"
    assert [h["conversation"]["id"] for h in by_number] == [message.conversation_id]


def test_filters_combine_with_the_search(db, alice, acme_number):
    with schema_context("acme"):
        vip = Label.objects.create(name="VIP")
    labelled = say(acme_number, "refund belum masuk")
    plain = say(acme_number, "refund sudah masuk")
    with schema_context("acme"):
        Conversation.objects.filter(pk=labelled.conversation_id).update(labels=[vip.pk])
        Conversation.objects.filter(pk=plain.conversation_id).update(status="resolved")

    assert [h["message"]["id"] for h in hits(alice, "refund", label=vip.pk)["results"]] == [labelled.pk]
    assert [h["message"]["id"] for h in hits(alice, "refund", status="resolved")["results"]] == [plain.pk]
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    assert hits(alice, "refund", **{"from": tomorrow})["results"] == []


def test_search_never_crosses_tenants_nor_shows_deleted_messages(db, alice, bob, acme_number):
    word = "rahasia" + fresh_wa_id()[-4:]
    message = say(acme_number, f"kode {word} jangan dibagi")

    assert hits(bob, word, spec=GLOBEX)["results"] == []
    with schema_context("acme"):
        message.__class__.objects.filter(pk=message.pk).update(deleted_at=message.created_at)
    assert hits(alice, word)["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"label": "x"}, "label"),
        ({"from": "yesterday"}, "from"),
        ({"page": 26}, "page"),
    ],
)
def test_a_bad_filter_is_a_400(db, alice, params, field):
    response = tenant_client(ACME, issue_token(alice)).get("/api/v1/search/", {"q": "x", **params})

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_an_empty_query_finds_nothing_and_strangers_are_refused(db, alice, acme_number):
    say(acme_number, "halo")

    assert hits(alice, "   ") == {
        "count": 0,
        "count_capped": False,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert tenant_client(ACME).get("/api/v1/search/", {"q": "halo"}).status_code in (401, 403)


def test_pages_follow_on(db, alice, acme_number):
    for n in range(5):
        say(acme_number, f"ongkir ke kota {n}", ago=100 - n)
    client = tenant_client(ACME, issue_token(alice))

    first = client.get("/api/v1/search/", {"q": "ongkir", "page_size": 2}).json()
    second = client.get(first["next"].removeprefix("http://acme.localhost")).json()

    assert first["count"] == 5
    assert [h["message"]["text"][-1] for h in first["results"] + second["results"]] == ["4", "3", "2", "1"]
    assert second["previous"]


@pytest.mark.parametrize(
    ("query", "filters", "indexes"),
    [
        ("resi", {}, ["message_text_id", "message_text_en", "contact_name_trgm", "contact_username_trgm"]),
        ("kusuma 4567", {}, ["contact_name_trgm", "contact_username_trgm", "contact_wa_id_trgm"]),
    ],
)
def test_the_products_own_statements_use_their_indexes(db, query, filters, indexes):
    """EXPLAIN of the very querysets the search runs, with plain scans off (the tables are tiny here): a condition
    that an index cannot serve would still have to scan, or walk the primary key and filter."""
    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        messages, contacts = search.queries(query, search.Filters(**filters))
        plan = messages.explain() + "\n" + contacts.explain()
    for index in indexes:
        assert index in plan, plan
    assert "Seq Scan on conversations_contact" not in plan, plan
    assert "Seq Scan on conversations_message" not in plan, plan


def test_the_count_stops_at_its_bound(db, alice, acme_number, monkeypatch):
    monkeypatch.setattr(search, "COUNT_LIMIT", 3)
    for n in range(5):
        say(acme_number, f"retur barang {n}", ago=100 - n)

    page = (
        tenant_client(ACME, issue_token(alice)).get("/api/v1/search/", {"q": "retur", "page_size": 2}).json()
    )

    assert (page["count"], page["count_capped"], len(page["results"])) == (3, True, 2)
