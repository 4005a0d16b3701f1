"""`seed_demo`: the demo tenant on demo.localhost with three users, a simulated number and a few
conversations. Safe to run again: what exists is kept."""

import time
from typing import Any

from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from conversations import actions, simulator
from conversations.models import MessageTemplate, TemplateStatus
from helpdesk.tenancy.actions import do_add_member, do_add_number, do_create_tenant
from helpdesk.tenancy.models import Tenant, User

DEMO_PASSWORD = "demo-pass-123"
DEMO_USERS = (
    ("agent@demo.test", "agent", "Dewi"),
    ("supervisor@demo.test", "supervisor", "Sari"),
    ("admin@demo.test", "admin", "Adi"),
)
DEMO_CONVERSATIONS = (
    (
        "6281234500001",
        "Budi Santoso",
        ["Halo, pesanan saya #1042 belum sampai.", "Sudah 5 hari, mohon dicek ya"],
    ),
    ("6281234500002", "Siti Rahma", ["Apakah ukuran M masih tersedia?"]),
    ("6281234500003", "Andreas Wijaya", ["Hi, can I change my delivery address?"]),
)
# A customer who wrote more than a day ago: the 24-hour window is closed, only a template can answer.
CLOSED_WINDOW = ("6281234500004", "Rina Kusuma", "Kapan ukuran L restock lagi?", 30 * 3600)
# An approved template to answer with (the simulator approves the ones an admin submits, too).
DEMO_TEMPLATE: dict[str, Any] = {
    "name": "stok_tersedia",
    "language": "id",
    "category": "UTILITY",
    "components": [
        {
            "type": "BODY",
            "text": "Halo {{1}}, produk {{2}} yang anda tanyakan sudah tersedia lagi. Balas pesan ini untuk memesan.",
            "example": {"body_text": [["Rina", "Kaos Polos L"]]},
        },
        {"type": "FOOTER", "text": "Toko Demo"},
    ],
}


class Command(BaseCommand):
    help = "Create the demo tenant (demo.localhost) with users, a simulated number and a few conversations."

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(schema_name="demo").first() or do_create_tenant(
            "demo", "Toko Demo", "demo.localhost"
        )
        for email, role, name in DEMO_USERS:
            # An existing user keeps their password (setting it again would sign them out everywhere).
            new = not User.objects.filter(email=email).exists()
            do_add_member(tenant, email, role, DEMO_PASSWORD if new else None, name)
        number = do_add_number(
            tenant,
            phone_number_id="100000000000001",
            waba_id="100000000000002",
            display_number="6281100000000",
            access_token="simulator-token",
            app_secret="simulator-app-secret",
            verify_token="demo-verify-token",
            simulator=True,
        )
        with schema_context(tenant.schema_name):
            now = int(time.time())
            for index, (wa_id, name, texts) in enumerate(DEMO_CONVERSATIONS):
                for offset, text in enumerate(texts):
                    payload = simulator.inbound_payload(
                        number,
                        wa_id,
                        name,
                        text,
                        timestamp=now - 3600 * (3 - index) + 60 * offset,
                        wamid=f"wamid.DEMO{index}{offset}",
                    )
                    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
                    actions.do_receive_inbound(
                        number, message, payload["entry"][0]["changes"][0]["value"]["contacts"]
                    )
            wa_id, name, text, age = CLOSED_WINDOW
            payload = simulator.inbound_payload(
                number, wa_id, name, text, timestamp=now - age, wamid="wamid.DEMO40"
            )
            value = payload["entry"][0]["changes"][0]["value"]
            actions.do_receive_inbound(number, value["messages"][0], value["contacts"])
            MessageTemplate.objects.get_or_create(
                waba_id=number.waba_id,
                name=DEMO_TEMPLATE["name"],
                language=DEMO_TEMPLATE["language"],
                defaults={
                    "number": number,
                    "meta_id": "100000000000100",
                    "category": DEMO_TEMPLATE["category"],
                    "components": DEMO_TEMPLATE["components"],
                    "status": TemplateStatus.APPROVED,
                    "quality": "green",
                },
            )
        self.stdout.write(self.style.SUCCESS("Demo tenant ready on demo.localhost"))
