"""The content check of message templates (conversations/template_check.py) and POST /api/v1/templates/check/."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.template_check import check_template, is_blocking
from tests.conftest import ACME, GLOBEX, PASSWORD, issue_token, tenant_client

CLEAN = "Halo {{1}}, pesanan {{2}} sudah dikirim dan tiba dalam 2 hari kerja."


def draft(
    text: str = CLEAN,
    examples: list[str] | None = None,
    category: str = "UTILITY",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "BODY", "text": text}
    if examples is None:
        examples = ["Budi", "#A123"][: text.count("{{")]
    if examples:
        body["example"] = {"body_text": [examples]}
    components = [body, *extra.pop("components", [])]
    return {
        "name": "order_shipped",
        "language": "id",
        "category": category,
        "components": components,
        **extra,
    }


def codes(template: Any) -> set[tuple[str, str]]:
    return {(finding.code, finding.severity) for finding in check_template(template)}


def test_a_clean_utility_template_has_no_findings():
    assert check_template(draft()) == []


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Menangkan jackpot judi online hari ini, daftar di situs kami sekarang juga ya.", "gambling"),
        ("Our casino bonus for {{1}} is waiting in your account this week.", "gambling"),
        ("Tersedia sabu dan ganja untuk {{1}}, hubungi kami sekarang juga ya.", "drug"),
        ("Jual senjata api untuk {{1}} dengan harga terbaik di kota ini.", "weapons"),
        ("Fake passport for {{1}} delivered within three working days anywhere.", "counterfeit"),
    ],
)
def test_prohibited_content_in_english_and_indonesian_blocks_submission(text, topic):
    findings = check_template(draft(text, ["Budi"] if "{{1}}" in text else [], "MARKETING"))
    prohibited = [finding for finding in findings if finding.code == "prohibited_content"]
    assert prohibited
    assert prohibited[0].severity == "error"
    assert topic in prohibited[0].message
    assert is_blocking(findings)


def test_prohibited_words_match_whole_words_only():
    # "slot" and "sabuk" (a belt) are not gambling or drugs; "judi" inside "judicial" is not a match
    assert (
        codes(draft("Halo {{1}}, slot kunjungan dan sabuk pesanan anda sudah siap hari ini.", ["Budi"]))
        == set()
    )
    assert codes(draft("Halo {{1}}, the judicial review of your claim is done today.", ["Budi"])) == set()


@pytest.mark.parametrize(
    ("text", "examples", "code"),
    [
        ("{{1}} pesanan anda sudah dikirim hari ini.", ["Budi"], "variable_at_start"),
        ("Pesanan anda sudah dikirim hari ini untuk {{1}}.", ["Budi"], "variable_at_end"),
        ("Halo {{1}} {{2}}, pesanan anda sudah dikirim hari ini.", ["Budi", "Santoso"], "adjacent_variables"),
        (
            "Halo {{1}}, pesanan {{3}} sudah dikirim hari ini ke alamat anda.",
            ["Budi", "x", "y"],
            "variables_not_sequential",
        ),
        ("Halo {{1}}, pesanan {{order_id}} sudah dikirim hari ini.", ["Budi"], "mixed_variables"),
        (
            "Halo {{1}}, pesanan {{2}} sudah dikirim hari ini ke alamat anda.",
            ["Budi"],
            "variable_without_example",
        ),
        ("Halo {{1}}, pesanan anda sudah dikirim hari ini.", [], "variable_without_example"),
    ],
)
def test_variable_rules_block_submission(text, examples, code):
    assert (code, "error") in codes(draft(text, examples))


def test_named_variables_take_their_examples_by_name():
    body = {
        "type": "BODY",
        "text": "Halo {{name}}, pesanan {{order_id}} sudah dikirim hari ini ke alamat anda.",
        "example": {
            "body_text_named_params": [
                {"param_name": "name", "example": "Budi"},
                {"param_name": "order_id", "example": "#A123"},
            ]
        },
    }
    template = {"name": "shipped", "language": "id", "category": "UTILITY", "components": [body]}
    assert check_template(template) == []
    body["example"]["body_text_named_params"].pop()  # type: ignore[index]
    assert ("variable_without_example", "error") in codes(template)


def test_too_many_variables_for_the_words_is_a_warning():
    text = "Halo {{1}} {{2}}x {{3}} ok {{4}} ya {{5}} deh."
    findings = codes(draft(text, ["a", "b", "c", "d", "e"]))
    assert ("too_many_variables", "warning") in findings


def test_link_shorteners_are_refused_in_text_and_in_url_buttons():
    assert ("url_shortener", "error") in codes(
        draft("Halo {{1}}, lacak pesanan di bit.ly/lacak123 hari ini.", ["Budi"])
    )
    assert ("url_shortener", "error") in codes(
        draft("Halo {{1}}, cek di https://s.id/abc sekarang ya.", ["Budi"])
    )
    button = {
        "type": "BUTTONS",
        "buttons": [{"type": "URL", "text": "Lacak", "url": "https://tinyurl.com/x1"}],
    }
    assert ("url_shortener", "error") in codes(draft(components=[button]))
    # a real domain is fine
    assert (
        codes(draft("Halo {{1}}, lacak pesanan di https://toko.example.co.id/lacak hari ini.", ["Budi"]))
        == set()
    )


def test_promotional_wording_warns_in_a_utility_template_only():
    text = "Halo {{1}}, dapatkan diskon 50% dan gratis ongkir untuk pesanan berikutnya. Balas STOP untuk berhenti."
    assert ("promotional_in_utility", "warning") in codes(draft(text, ["Budi"], "UTILITY"))
    assert ("promotional_in_utility", "warning") not in codes(draft(text, ["Budi"], "MARKETING"))
    assert not is_blocking(check_template(draft(text, ["Budi"], "UTILITY")))


def test_a_marketing_template_without_an_opt_out_hint_gets_a_warning():
    text = "Halo {{1}}, koleksi baru kami sudah tersedia di toko hari ini."
    assert ("no_opt_out", "warning") in codes(draft(text, ["Budi"], "MARKETING"))
    footer = {"type": "FOOTER", "text": "Balas STOP untuk berhenti"}
    assert ("no_opt_out", "warning") not in codes(draft(text, ["Budi"], "MARKETING", components=[footer]))
    button = {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Berhenti berlangganan"}]}
    assert ("no_opt_out", "warning") not in codes(draft(text, ["Budi"], "MARKETING", components=[button]))


def test_lengths_names_categories_and_languages_are_checked():
    assert ("too_long", "error") in codes(draft("Halo {{1}}, " + "kata " * 250 + "selesai.", ["Budi"]))
    header = {"type": "HEADER", "format": "TEXT", "text": "x" * 61}
    assert ("too_long", "error") in codes(draft(components=[header]))
    assert ("invalid_name", "error") in codes({**draft(), "name": "Order Shipped!"})
    assert ("invalid_category", "error") in codes({**draft(), "category": "PROMO"})
    assert ("invalid_language", "error") in codes({**draft(), "language": "Bahasa Indonesia"})
    buttons = {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "x" * 26}]}
    assert ("invalid_button", "error") in codes(draft(components=[buttons]))


@pytest.mark.parametrize(
    "odd",
    [
        None,
        [],
        "text",
        5,
        {},
        {"components": "BODY"},
        {"components": [1, 2]},
        {"components": [{"type": "BODY"}]},
    ],
)
def test_odd_shapes_are_findings_not_crashes(odd):
    findings = check_template(odd)
    assert is_blocking(findings)
    assert all(finding.message for finding in findings)


# ------------------------------------------------------------------ the API


def check(client: Any, body: Any, **headers: Any) -> Any:
    return client.post("/api/v1/templates/check/", body, content_type="application/json", **headers)


def test_an_admin_checks_a_draft_without_submitting_it(db, ada):
    client = tenant_client(ACME, issue_token(ada))
    bad = draft("Menangkan jackpot judi online slot gacor hari ini! Daftar sekarang.", [], "MARKETING")

    response = check(client, bad)

    assert response.status_code == 200
    answer = response.json()
    assert answer["blocking"] is True
    assert {"severity", "code", "message", "component"} == set(answer["findings"][0])
    assert answer["findings"][0]["severity"] == "error"
    assert {f["code"] for f in answer["findings"]} >= {"prohibited_content", "no_opt_out"}
    clean = check(client, draft()).json()
    assert clean == {"blocking": False, "findings": []}


def test_findings_speak_indonesian_when_asked(db, ada):
    client = tenant_client(ACME, issue_token(ada))
    answer = check(
        client, draft("{{1}} pesanan anda sudah dikirim hari ini.", ["Budi"]), HTTP_ACCEPT_LANGUAGE="id"
    ).json()
    assert "Teks tidak boleh diawali variabel." in [f["message"] for f in answer["findings"]]


def test_agents_supervisors_other_tenants_and_deactivated_users_cannot_check(db, alice, sam, ada, globex):
    from helpdesk.tenancy.actions import do_add_member

    outsider = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    for user in (alice, sam, outsider):
        assert check(tenant_client(ACME, issue_token(user)), draft()).status_code == 403, user.email
    assert check(tenant_client(ACME), draft()).status_code in (401, 403)
    token = issue_token(ada)
    ada.is_active = False
    ada.save()
    assert check(tenant_client(ACME, token), draft()).status_code in (401, 403)


def test_a_body_that_is_not_json_is_a_400_in_the_error_shape(db, ada):
    response = tenant_client(ACME, issue_token(ada)).post(
        "/api/v1/templates/check/", b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "code"}


# ------------------------------------------------------------------ the tenant's own word lists


def words(client: Any, method: str = "get", body: Any = None) -> Any:
    if method == "get":
        return client.get("/api/v1/templates/words/")
    return client.put("/api/v1/templates/words/", body, content_type="application/json")


def test_a_tenants_own_prohibited_phrase_blocks_its_templates_and_no_one_elses(db, ada, globex):
    from helpdesk.tenancy.actions import do_add_member

    client = tenant_client(ACME, issue_token(ada))
    text = "Halo {{1}}, promo arisan berantai minggu ini sudah dibuka untuk anda."
    assert not is_blocking(check_template(draft(text, ["Budi"])))

    answer = words(client, "put", {"prohibited": ["  Arisan   Berantai ", "arisan berantai"]})

    assert answer.status_code == 200, answer.content
    assert answer.json()["prohibited"]["own"] == ["arisan berantai"]
    assert "judi" in answer.json()["prohibited"]["built_in"]
    result = check(client, draft(text, ["Budi"])).json()
    assert result["blocking"] is True
    assert [f["message"] for f in result["findings"] if f["code"] == "prohibited_content"] == [
        "“arisan berantai” is on your helpdesk's own list of prohibited words."
    ]
    gina = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    other = tenant_client(GLOBEX, issue_token(gina)).post(
        "/api/v1/templates/check/", draft(text, ["Budi"]), content_type="application/json"
    )
    assert other.json()["blocking"] is False  # another tenant's list is its own


def test_own_shorteners_and_opt_out_hints_count_too(db, ada):
    client = tenant_client(ACME, issue_token(ada))
    words(client, "put", {"url_shorteners": ["link.id"], "opt_out": ["ketik berhenti"]})

    shortened = check(
        client, draft("Halo {{1}}, lacak pesanan anda di link.id/abc hari ini ya.", ["Budi"])
    ).json()
    marketing = check(
        client,
        draft(
            "Halo {{1}}, diskon minggu ini sudah dimulai. Ketik berhenti jika tidak mau.",
            ["Budi"],
            "MARKETING",
        ),
    ).json()

    assert "url_shortener" in {f["code"] for f in shortened["findings"]}
    assert "no_opt_out" not in {f["code"] for f in marketing["findings"]}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"swear_words": ["x"]},
        {"prohibited": "judi"},
        {"prohibited": [1]},
        {"prohibited": ["x" * 101]},
        {"prohibited": [f"w{i}" for i in range(501)]},
    ],
    ids=["list", "empty", "unknown-list", "not-a-list", "not-text", "too-long", "too-many"],
)
def test_a_bad_word_list_is_refused_and_nothing_is_stored(db, ada, body):
    client = tenant_client(ACME, issue_token(ada))
    words(client, "put", {"promotional": ["kept"]})

    answer = words(client, "put", body)

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    lists = words(client).json()
    assert lists["promotional"]["own"] == ["kept"]
    assert lists["prohibited"]["own"] == []


def test_only_admins_of_the_tenant_read_or_change_the_word_lists(db, alice, sam, globex):
    from helpdesk.tenancy.actions import do_add_member

    gina = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    for user in (alice, sam, gina):
        client = tenant_client(ACME, issue_token(user))
        assert words(client).status_code == 403
        assert words(client, "put", {"prohibited": ["x"]}).status_code == 403
    assert words(tenant_client(ACME)).status_code in (401, 403)


def test_a_deactivated_admin_cannot_read_or_change_the_word_lists(db, ada):
    token = issue_token(ada)
    ada.is_active = False
    ada.save()
    client = tenant_client(ACME, token)
    assert words(client).status_code in (401, 403)
    assert words(client, "put", {"prohibited": ["x"]}).status_code in (401, 403)
