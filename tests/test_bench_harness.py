"""The benchmark harness's pure logic: percentiles, recovery, tables, the scratch database's name, the load's
payloads and signatures, the reference's parser. No timing is asserted here: `make bench-quick` runs it."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from bench.figures import Figure
from bench.load import Mix, sign
from bench.reference import parse
from bench.run import scratch_url
from bench.stats import (
    fmt,
    markdown_tables,
    percentile,
    rate,
    recovery_seconds,
    short_of_target,
    text_table,
)


def test_percentile_interpolates_between_closest_ranks_like_numpy():
    values = [15.0, 20.0, 35.0, 40.0, 50.0]

    assert percentile(values, 0) == 15.0
    assert percentile(values, 50) == 35.0
    assert percentile(values, 40) == 29.0  # position 1.6: 20 + 0.6 * 15
    assert percentile(values, 100) == 50.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_rate_is_zero_without_items_or_time():
    assert rate(100, 2.0) == 50.0
    assert rate(0, 2.0) == 0.0
    assert rate(10, 0.0) == 0.0


def test_recovery_is_the_end_of_the_last_bucket_over_the_threshold():
    since = 100.0
    samples = [(100.2, 500.0), (101.5, 400.0), (102.1, 30.0), (103.9, 20.0), (104.5, 10.0)]

    assert recovery_seconds(samples, since, threshold=50.0) == 2.0  # buckets 0 and 1 were over


def test_recovery_is_zero_when_never_over_and_none_when_still_over():
    assert recovery_seconds([(100.5, 10.0), (101.5, 12.0)], 100.0, threshold=50.0) == 0.0
    assert recovery_seconds([(100.5, 10.0), (101.5, 90.0)], 100.0, threshold=50.0) is None
    assert recovery_seconds([(99.0, 900.0)], 100.0, threshold=50.0) is None  # nothing after `since`


def test_figure_ratio_and_tables_show_product_reference_ratio_and_target():
    figures = [
        Figure("ingest", "end to end", 350.0, 500.0, "msg/s", "≥ 0.7x reference", True, "saturation"),
        Figure("ingest", "lost", 0, 0, "", "0", True),
        Figure("reports", "summary | median", 30.0, 1200.0, "ms", "≤ 0.05x", False),
    ]

    text = text_table(figures)
    markdown = markdown_tables(figures)

    assert figures[0].ratio == pytest.approx(0.7)
    assert figures[1].ratio is None
    assert "== ingest" in text
    assert "== reports" in text
    assert "350 msg/s" in text
    assert "0.70x" in text
    assert "| end to end | 350 msg/s | 500 msg/s | 0.70x | ≥ 0.7x reference | yes |" in markdown
    assert "summary \\| median" in markdown  # a pipe in a measure does not break the table
    assert "- *end to end*: saturation" in markdown
    assert short_of_target(figures) == [
        "reports: summary | median: product 30 ms, reference 1,200 ms (target ≤ 0.05x)"
    ]


def test_fmt_keeps_a_few_significant_digits():
    assert fmt(1234.56, "msg/s") == "1,235 msg/s"
    assert fmt(12.345, "ms") == "12.3 ms"
    assert fmt(1.2345) == "1.23"
    assert fmt(0) == "0"
    assert fmt(None) == "-"


def test_scratch_database_is_named_after_database_url():
    url, name, maintenance = scratch_url("postgres://postgres@127.0.0.1:5432/helpdesk_ci")

    assert url == "postgres://postgres@127.0.0.1:5432/helpdesk_ci_bench"
    assert name == "helpdesk_ci_bench"
    assert maintenance == "postgres://postgres@127.0.0.1:5432/postgres"


def test_scratch_database_of_a_unix_socket_url_keeps_the_socket():
    url, name, _ = scratch_url("postgresql://postgres@/helpdesk?host=/work/var/pg")

    assert url == "postgresql://postgres@/helpdesk_bench?host=/work/var/pg"
    assert name == "helpdesk_bench"
    assert scratch_url(url)[1] == "helpdesk_bench_bench"  # never the database DATABASE_URL names


def _config() -> dict[str, object]:
    return {
        "tag": "t0001",
        "seed": 3,
        "display_number": "6281300000001",
        "phone_number_id": "200000000000001",
        "waba_id": "200000000000002",
        "mix": {"new": 0.3, "status": 0.25, "returning": 10},
    }


def test_batched_body_has_one_change_per_item_and_lists_its_customer_messages():
    body, wamids = Mix(_config()).body(20)

    payload = json.loads(body)
    changes = payload["entry"][0]["changes"]
    messages = [m for c in changes for m in c["value"].get("messages", [])]
    statuses = [s for c in changes for s in c["value"].get("statuses", [])]
    assert payload["entry"][0]["id"] == "200000000000002"
    assert len(changes) == 20
    assert len(messages) + len(statuses) == 20
    assert [m["id"] for m in messages] == wamids
    assert all(c["value"]["metadata"]["phone_number_id"] == "200000000000001" for c in changes)
    assert len(set(wamids)) == len(wamids)


def test_warm_up_body_comes_from_the_returning_customer_asked_for():
    body, wamids = Mix(_config()).body(1, [7])

    message = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["from"] == "6281000000007"
    assert wamids == [message["id"]]


def test_signature_is_the_hmac_of_the_raw_body_with_the_app_secret():
    body = b'{"entry": []}'

    assert sign("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_reference_parser_reads_messages_and_statuses_of_stored_bodies():
    mix = Mix(_config())
    bodies = [mix.body(12)[0].decode() for _ in range(3)] + ["not json"]

    messages, statuses = parse(bodies)

    assert len(messages) + len(statuses) == 36
    assert all(m[0].startswith("wamid.BENCH.t0001.") for m in messages)
    assert {s[1] for s in statuses} <= {"sent", "delivered", "read"}
