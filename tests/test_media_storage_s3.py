"""Message files in an S3-compatible bucket (MEDIA_S3_BUCKET, django-storages), against moto's standalone S3 server
in its own process, reached over HTTP like MinIO or R2 would be; the Graph API is faked as in test_media.py.

The storage configuration is the one helpdesk/settings.py builds from the environment (run again with the
variables set), so these tests check the settings and the product's paths together: a customer's photo downloaded
by the media task lands in the bucket (under the prefix, private, its bytes and sha256 right), the media view
serves it from there to members only, and an agent's file is stored there and read back for the upload to Meta.
"""

from __future__ import annotations

import hashlib
import runpy
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from conversations.media import MAX_DOWNLOAD_ATTEMPTS
from conversations.models import Message
from tests.conftest import (
    ACME,
    GLOBEX,
    GRAPH_URL,
    deliver_webhook,
    fresh_wa_id,
    issue_token,
    payload,
    receive_text,
    retarget,
    tenant_client,
)

SETTINGS_FILE = Path(__file__).resolve().parents[1] / "helpdesk" / "settings.py"
MEDIA_S3_VARIABLES = (
    "MEDIA_S3_BUCKET",
    "MEDIA_S3_ENDPOINT_URL",
    "MEDIA_S3_REGION",
    "MEDIA_S3_ACCESS_KEY_ID",
    "MEDIA_S3_SECRET_ACCESS_KEY",
    "MEDIA_S3_PREFIX",
)
KEY_ID, SECRET = "moto-test-key", "moto-test-secret"  # moto accepts any
REGION = "us-east-1"
PREFIX = "helpdesk-files"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64
DOWNLOAD_URL = "https://lookaside.test/whatsapp_business/attachments/?mid=s3"


def storages_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """STORAGES as helpdesk/settings.py builds it with these MEDIA_S3_* variables (and no others) set."""
    for name in MEDIA_S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgres://unused@localhost/unused")  # parsed only, never connected
    monkeypatch.setenv("REDIS_URL", "redis://localhost/0")
    return runpy.run_path(str(SETTINGS_FILE))["STORAGES"]


# ------------------------------------------------------------------ the settings


def test_without_a_bucket_files_stay_on_the_filesystem_and_static_files_are_untouched(monkeypatch):
    from django.conf import global_settings

    assert storages_from_env(monkeypatch) == global_settings.STORAGES  # Django's defaults, as before


def test_a_bucket_in_the_environment_selects_a_private_s3_storage(monkeypatch):
    storages = storages_from_env(
        monkeypatch,
        MEDIA_S3_BUCKET="files",
        MEDIA_S3_ENDPOINT_URL="https://account.r2.cloudflarestorage.com",
        MEDIA_S3_REGION="auto",
        MEDIA_S3_ACCESS_KEY_ID="key-id",
        MEDIA_S3_SECRET_ACCESS_KEY="secret",
        MEDIA_S3_PREFIX="/prod/",
    )

    assert storages["staticfiles"] == {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    assert storages["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storages["default"]["OPTIONS"] == {
        "bucket_name": "files",
        "endpoint_url": "https://account.r2.cloudflarestorage.com",
        "region_name": "auto",
        "access_key": "key-id",
        "secret_key": "secret",
        "location": "prod",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
        "max_memory_size": 5 * 1024 * 1024,
    }
    # Only the bucket: AWS itself, credentials from boto3's own chain (AWS_* variables, profile, role).
    options = storages_from_env(monkeypatch, MEDIA_S3_BUCKET="files")["default"]["OPTIONS"]
    unset = ("endpoint_url", "region_name", "access_key", "secret_key", "location")
    assert [options[name] for name in unset] == [None, None, None, None, ""]


# ------------------------------------------------------------------ a real S3-compatible server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a process of its own (nothing of moto is loaded in the test process)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _client(endpoint).list_buckets()
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass
class Bucket:
    client: Any
    name: str

    def keys(self) -> list[str]:
        return [item["Key"] for item in self.client.list_objects_v2(Bucket=self.name).get("Contents", [])]

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def bucket(s3_endpoint: str, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    """A fresh bucket, and Django's default storage pointed at it as the settings would with these variables.
    pytest-django's `settings` restores STORAGES afterwards, and Django's setting_changed handler then forgets
    the cached storages (default_storage too), so other tests get the filesystem back."""
    client = _client(s3_endpoint)
    name = f"helpdesk-{secrets.token_hex(6)}"
    client.create_bucket(Bucket=name)
    storages = storages_from_env(
        monkeypatch,
        MEDIA_S3_BUCKET=name,
        MEDIA_S3_ENDPOINT_URL=s3_endpoint,
        MEDIA_S3_REGION=REGION,
        MEDIA_S3_ACCESS_KEY_ID=KEY_ID,
        MEDIA_S3_SECRET_ACCESS_KEY=SECRET,
        MEDIA_S3_PREFIX=PREFIX,
    )
    settings.MEDIA_ROOT = str(tmp_path)  # must stay empty: nothing may fall back to the filesystem
    settings.STORAGES = storages
    return Bucket(client, name)


def api(user: Any, spec: dict[str, str] = ACME) -> Any:
    return tenant_client(spec, issue_token(user))


def photo_webhook(media_id: str) -> dict[str, Any]:
    p = retarget(payload("inbound_image.json"), wa_id=fresh_wa_id())
    p["entry"][0]["changes"][0]["value"]["messages"][0]["image"].update(
        id=media_id, mime_type="image/png", sha256=hashlib.sha256(PNG).hexdigest()
    )
    return p


def meta_has(graph: Any, media_id: str) -> None:
    graph.get(
        f"{GRAPH_URL}/{media_id}",
        json={
            "url": DOWNLOAD_URL,
            "mime_type": "image/png",
            "sha256": hashlib.sha256(PNG).hexdigest(),
            "id": media_id,
        },
    )
    graph.get(DOWNLOAD_URL, body=PNG, content_type="image/png")


def test_a_customers_photo_lands_in_the_bucket_and_is_served_from_it_to_members_only(
    db, alice, bob, graph, bucket, tmp_path, django_capture_on_commit_callbacks
):
    meta_has(graph, "MEDIA-S3")
    p = photo_webhook("MEDIA-S3")

    deliver_webhook(django_capture_on_commit_callbacks, p)

    with schema_context("acme"):
        message = Message.objects.get(wamid=p["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert message.media["status"] == "ready", message.media
    key = f"{PREFIX}/{message.media['path']}"
    assert key.startswith(f"{PREFIX}/media/acme/")
    assert bucket.keys() == [key]
    kept = bucket.read(key)
    assert kept == PNG
    assert hashlib.sha256(kept).hexdigest() == message.media["sha256"]
    assert bucket.client.head_object(Bucket=bucket.name, Key=key)["ContentType"] == "image/png"
    grantees = [g["Grantee"] for g in bucket.client.get_object_acl(Bucket=bucket.name, Key=key)["Grants"]]
    assert [g for g in grantees if g.get("Type") == "Group"] == []  # no AllUsers / AuthenticatedUsers grant
    assert list(tmp_path.rglob("*")) == []

    url = f"/api/v1/messages/{message.pk}/media/"
    served = api(alice).get(url)
    assert (served.status_code, b"".join(served.streaming_content), served["Content-Type"]) == (
        200,
        PNG,
        "image/png",
    )
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=b"changed in the bucket")
    assert b"".join(api(alice).get(url).streaming_content) == b"changed in the bucket"  # read from the bucket

    refused = [
        tenant_client(ACME).get(url),  # nobody signed in
        tenant_client(ACME, issue_token(bob)).get(url),  # a member of globex, on acme's domain
        api(bob, GLOBEX).get(url),  # on globex's own domain: acme's message does not exist there
    ]
    assert [r.status_code for r in refused] == [401, 403, 404]
    assert [r.streaming or PNG in r.content for r in refused] == [False] * 3  # an error, not the file


@pytest.fixture
def open_conversation(db: None, acme_number: Any) -> Any:
    return receive_text(acme_number, fresh_wa_id(), "kirim invoicenya", int(time.time())).conversation


def test_an_agents_file_is_stored_in_the_bucket_and_read_back_for_the_upload_to_meta(
    db, alice, open_conversation, graph, bucket, tmp_path, django_capture_on_commit_callbacks
):
    pdf = b"%PDF-1.4 invoice " + secrets.token_bytes(32)
    graph.post(f"{GRAPH_URL}/{ACME['pnid']}/media", json={"id": "UPLOAD-S3"})
    graph.post(f"{GRAPH_URL}/{ACME['pnid']}/messages", json={"messages": [{"id": "wamid.S3PDF"}]})

    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post(
            f"/api/v1/conversations/{open_conversation.pk}/messages/",
            {"file": SimpleUploadedFile("invoice 7.pdf", pdf, "application/pdf")},
        )

    assert response.status_code == 201, response.content
    with schema_context("acme"):
        message = Message.objects.get(pk=response.json()["id"])
    assert (message.status, message.media["media_id"]) == ("sent", "UPLOAD-S3")
    key = f"{PREFIX}/{message.media['path']}"
    assert key.startswith(f"{PREFIX}/media/acme/outbound/")
    assert key.endswith("-invoice 7.pdf")
    assert bucket.keys() == [key]
    assert bucket.read(key) == pdf
    assert list(tmp_path.rglob("*")) == []
    uploads = [c for c in graph.calls if c.request.url.endswith("/media")]
    assert len(uploads) == 1
    assert pdf in uploads[0].request.body  # the send task read it back from the bucket
    served = api(alice).get(f"/api/v1/messages/{message.pk}/media/")
    assert (served.status_code, b"".join(served.streaming_content)) == (200, pdf)
    assert served["Content-Disposition"].startswith("attachment")


def test_a_name_already_taken_gets_another_key_and_never_overwrites_a_file(bucket):
    from django.core.files.storage import default_storage

    first = default_storage.save("media/acme/2026/01/7-same.png", ContentFile(b"first message's file"))
    second = default_storage.save("media/acme/2026/01/7-same.png", ContentFile(b"second message's file"))

    assert first == "media/acme/2026/01/7-same.png"
    assert second != first
    assert sorted(bucket.keys()) == sorted([f"{PREFIX}/{first}", f"{PREFIX}/{second}"])
    assert bucket.read(f"{PREFIX}/{first}") == b"first message's file"
    assert bucket.read(f"{PREFIX}/{second}") == b"second message's file"


def test_a_bucket_that_fails_loses_nothing_and_says_why(
    db, alice, open_conversation, graph, bucket, django_capture_on_commit_callbacks
):
    """The bucket is gone (a wrong name, a revoked permission): the customer's photo is tried again (eager tasks
    here: at once) and then marked failed with the reason, the message kept; the agent's file is refused with 503
    and nothing is queued or sent."""
    bucket.client.delete_bucket(Bucket=bucket.name)
    meta_has(graph, "MEDIA-NOBUCKET")
    p = photo_webhook("MEDIA-NOBUCKET")

    deliver_webhook(django_capture_on_commit_callbacks, p)

    with schema_context("acme"):
        photo = Message.objects.get(wamid=p["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
        before = Message.objects.filter(conversation=open_conversation).count()
    assert (photo.media["status"], photo.media["error"], photo.media["attempts"]) == (
        "failed",
        "The file could not be stored.",
        MAX_DOWNLOAD_ATTEMPTS,
    )
    with django_capture_on_commit_callbacks(execute=True):
        refused = api(alice).post(
            f"/api/v1/conversations/{open_conversation.pk}/messages/",
            {"file": SimpleUploadedFile("invoice.pdf", b"%PDF-1.4 x", "application/pdf")},
        )
    assert (refused.status_code, refused.json()["code"]) == (503, "storage_unavailable")
    with schema_context("acme"):
        assert Message.objects.filter(conversation=open_conversation).count() == before
    assert not [c for c in graph.calls if c.request.url.endswith(("/media", "/messages"))]


def test_after_these_tests_the_default_storage_is_the_filesystem_again(settings):
    """Runs last in this module: the bucket fixtures' override must not leak into the tests that follow."""
    from django.core.files.storage import FileSystemStorage, default_storage

    assert settings.STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert isinstance(default_storage, FileSystemStorage)
    assert default_storage.location == str(Path(settings.MEDIA_ROOT).resolve())
