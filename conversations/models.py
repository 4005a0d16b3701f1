"""A tenant's conversations (tenant schema): contacts with consent, one conversation per contact and number,
every message (inbound and outbound) a row with its own state, and the event log the live inbox resumes from."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from helpdesk.tenancy.models import WhatsAppNumber

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
# Ids from WhatsApp (wamids, phone numbers, BSUIDs: at most 256 characters per the reference); anything longer
# is not an id we can key on, and is skipped with a logged reason.
MAX_ID_LENGTH = 256


class MarketingPreference(models.TextChoices):
    STOP = "stop", "Stopped marketing messages"
    RESUME = "resume", "Resumed marketing messages"


class Contact(models.Model):
    """A WhatsApp user as one number of ours knows them: by phone (`wa_id`) and/or business-scoped id."""

    number = models.ForeignKey(WhatsAppNumber, on_delete=models.PROTECT, related_name="+")
    wa_id = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    user_id = models.CharField(
        max_length=MAX_ID_LENGTH, blank=True, default="", help_text="Business-scoped user id (BSUID)"
    )
    # Text columns: a profile name is kept whole, however long (a column limit once lost whole messages).
    username = models.TextField(blank=True, default="")
    name = models.TextField(blank=True, default="")
    # Consent: when and how the contact opted in to business-initiated messages, and any opt-out.
    opted_in_at = models.DateTimeField(null=True, blank=True)
    opt_in_source = models.CharField(max_length=64, blank=True, default="")
    opt_in_proof = models.TextField(
        blank=True, default="", help_text="What shows the consent (a form, a file)"
    )
    opted_out_at = models.DateTimeField(null=True, blank=True)
    # How the opt-out came (keyword, meta: WhatsApp's own stop, error_131050, agent) and its words.
    opt_out_route = models.CharField(max_length=32, blank=True, default="")
    opt_out_reason = models.TextField(blank=True, default="")
    # Meta's `user_preferences` webhook: the customer stopped or resumed marketing messages in WhatsApp.
    marketing = models.CharField(max_length=8, choices=MarketingPreference.choices, blank=True, default="")
    marketing_changed_at = models.DateTimeField(null=True, blank=True)
    # Free key/value facts an agent keeps about the customer ({"city": "Surabaya", "customer_id": "C-1042"}).
    attributes = models.JSONField(default=dict, blank=True)
    # Label ids (conversations.Label): an array, so that a list row carries them and a filter is one index.
    labels = ArrayField(models.BigIntegerField(), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [GinIndex(fields=["labels"], name="contact_labels")]
        constraints = [
            models.UniqueConstraint(
                fields=["number", "wa_id"], condition=~models.Q(wa_id=""), name="contact_unique_wa_id"
            ),
            models.UniqueConstraint(
                fields=["number", "user_id"], condition=~models.Q(user_id=""), name="contact_unique_user_id"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.wa_id or self.username or self.user_id

    @property
    def address(self) -> str:
        """Where a reply goes: the phone number when we have it, else the business-scoped user id."""
        return self.wa_id or self.user_id


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    RESOLVED = "resolved", "Resolved"


class Conversation(models.Model):
    number = models.ForeignKey(WhatsAppNumber, on_delete=models.PROTECT, related_name="+")
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="conversation")
    # The inbox tab: a copy of the current ticket's status, kept in step by tickets.actions (docs/architecture.md).
    status = models.CharField(
        max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True, default="")
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    window_expires_at = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    current_ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    labels = ArrayField(models.BigIntegerField(), default=list, blank=True)  # conversations.Label ids
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            GinIndex(fields=["labels"], name="conversation_labels"),
            models.Index(fields=["-last_message_at", "-id"], name="conversation_recent"),
            models.Index(fields=["status", "-last_message_at"], name="conversation_status_recent"),
            models.Index(fields=["window_expires_at"], name="conversation_window"),
        ]

    def __str__(self) -> str:
        return f"Conversation with {self.contact}"

    def window_is_open(self, at: datetime | None = None) -> bool:
        return self.window_expires_at is not None and (at or timezone.now()) < self.window_expires_at


class Direction(models.TextChoices):
    IN = "in", "Inbound"
    OUT = "out", "Outbound"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


class SenderKind(models.TextChoices):
    """Who wrote an outbound message; only human agent replies end a customer's wait (reports)."""

    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    PHONE_APP = "phone_app", "WhatsApp Business app"  # an echo: the business answered from its phone
    SYSTEM = "system", "WhatsApp"  # a system notice (the customer changed number, ...)
    BOT = "bot", "Bot"
    AUTOMATION = "automation", "Automation"
    BROADCAST = "broadcast", "Broadcast"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    type = models.CharField(max_length=64, default="text")
    text = models.TextField(
        blank=True, default="", help_text="Body, caption, or a readable summary of the content"
    )
    content = models.JSONField(
        default=dict, blank=True, help_text="The WhatsApp type object as received or sent"
    )
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    wamid = models.CharField(max_length=MAX_ID_LENGTH, null=True, blank=True, unique=True)
    reply_to_wamid = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    sender_kind = models.CharField(max_length=16, choices=SenderKind.choices)
    sender_user_id = models.BigIntegerField(null=True, blank=True, help_text="tenancy.User id of the agent")
    sender_name = models.TextField(blank=True, default="")
    # Imported from the WhatsApp Business app's history (coexistence): shown, never counted or ticketed.
    is_history = models.BooleanField(default=False)
    # The customer (or the business, from its phone) edited or deleted the message. A deleted message keeps
    # its text for the audit; the API hides it from agents.
    edited_at = models.DateTimeField(null=True, blank=True)
    edit_wamid = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    original_text = models.TextField(blank=True, default="", help_text="The text before its first edit")
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Reactions on this message, by who reacted: {"customer": {"emoji": "👍", "at": iso}, "business": {...}}.
    reactions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(
        default=timezone.now, help_text="WhatsApp timestamp for inbound messages"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=512, blank=True, default="")
    error_details = models.TextField(blank=True, default="")
    # Outbound delivery bookkeeping: attempts made and the claim a sending worker holds.
    send_attempts = models.PositiveSmallIntegerField(default=0)
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    send_retry_at = models.DateTimeField(null=True, blank=True)
    # The `pricing` object of Meta's status webhooks: whether this message is charged, and in which category.
    billable = models.BooleanField(null=True, blank=True)
    pricing_model = models.CharField(max_length=16, blank=True, default="")
    pricing_category = models.CharField(max_length=32, blank=True, default="")
    # A photo, voice note, video, document or sticker (conversations/media.py): null, or {"status": "pending" |
    # "ready" | "failed", "media_id" (Meta's), "mime_type", "sha256", "filename", "caption", "size", "path" (in
    # Django's storage), "error", "attempts"}.
    media = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_thread"),
            models.Index(fields=["conversation", "id"], name="message_after"),
            models.Index(fields=["status"], condition=models.Q(status="queued"), name="message_queued"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} {self.wamid or self.pk}"


class Note(models.Model):
    """A private note agents leave on a conversation; never sent to the customer, never ends a wait."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author_id = models.BigIntegerField(null=True, blank=True)
    author_name = models.CharField(max_length=200, blank=True, default="")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Note on {self.conversation_id}"


class InboxEvent(models.Model):
    """The ordered log of everything the live inbox shows; ids increase in commit order (see events.py)."""

    type = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"

    def frame(self) -> dict[str, object]:
        return {"type": self.type, "id": self.pk, **self.payload}


class PendingKind(models.TextChoices):
    STATUS = "status", "Delivery status"
    EDIT = "edit", "Edit"
    REVOKE = "revoke", "Deletion"
    REACTION = "reaction", "Reaction"


class PendingStatus(models.Model):
    """An update for a wamid we do not know yet: Meta's status can overtake the Graph API's answer to our
    send, and an edit, deletion or reaction can overtake the message it is about. Applied when that wamid is
    stored (actions.do_mark_sent, do_receive_inbound); swept after a week. `status` holds the raw object."""

    wamid = models.CharField(max_length=MAX_ID_LENGTH, db_index=True)
    kind = models.CharField(max_length=16, choices=PendingKind.choices, default=PendingKind.STATUS)
    status = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} for {self.wamid}"


class AccountEvent(models.Model):
    """Account-level webhooks (template status, quality, account updates, system errors): the health history
    of a tenant's numbers, kept for the admin features that read it."""

    number = models.ForeignKey(WhatsAppNumber, null=True, on_delete=models.SET_NULL, related_name="+")
    waba_id = models.TextField()
    field = models.TextField()
    event = models.TextField(blank=True, default="")
    value = models.JSONField()
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    # A digest of what Meta sent (field, account, number, time, value): a redelivery adds no second row.
    digest = models.CharField(max_length=64, unique=True, null=True)

    class Meta:
        indexes = [models.Index(fields=["field", "-occurred_at"], name="account_event_recent")]

    def __str__(self) -> str:
        return f"{self.field} {self.event}"


class TemplateStatus(models.TextChoices):
    """A template's state: Meta's word in lower case (REFERENCE.md §2.6), and `draft` before Meta has it."""

    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled"
    FLAGGED = "flagged", "Flagged"
    IN_APPEAL = "in_appeal", "In appeal"
    LIMIT_EXCEEDED = "limit_exceeded", "Limit exceeded"
    LOCKED = "locked", "Locked"
    ARCHIVED = "archived", "Archived"
    PENDING_DELETION = "pending_deletion", "Pending deletion"
    DELETED = "deleted", "Deleted"


class MessageTemplate(models.Model):
    """A message template of one of the tenant's business accounts, as submitted from here or read from Meta
    (sync), with the live state Meta's template webhooks report."""

    number = models.ForeignKey(WhatsAppNumber, null=True, on_delete=models.SET_NULL, related_name="+")
    waba_id = models.CharField(max_length=64)
    meta_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=32)
    # Named ({{customer}}) or positional ({{1}}) variables.
    parameter_format = models.CharField(max_length=16, default="positional")
    components = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=32, default=TemplateStatus.DRAFT)
    quality = models.CharField(max_length=16, default="unknown")
    # Meta's reason code (REJECTED: INVALID_FORMAT, PROMOTIONAL, ...) and its words, the pause title
    # (FIRST_PAUSE, ...), and an announced re-categorisation.
    reason = models.CharField(max_length=64, blank=True, default="")
    reason_detail = models.TextField(blank=True, default="")
    recommendation = models.TextField(blank=True, default="")
    previous_category = models.CharField(max_length=32, blank=True, default="")
    correct_category = models.CharField(max_length=32, blank=True, default="")
    submitted_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["waba_id", "name", "language"], name="template_unique_name"),
        ]
        indexes = [models.Index(fields=["meta_id"], name="template_meta_id")]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class HealthAlert(models.Model):
    """A warning about a number's standing with Meta (quality drop, restriction, violation, scheduled disable),
    shown as a banner to admins and supervisors until acknowledged; it is raised again when the state worsens."""

    number = models.ForeignKey(WhatsAppNumber, null=True, on_delete=models.CASCADE, related_name="+")
    waba_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    # Higher is worse; an acknowledged alert of a kind comes back only at a higher level.
    level = models.PositiveSmallIntegerField(default=1)
    # What raised it; its plain-words summary (in the reader's language) is the banner's text.
    event = models.ForeignKey(AccountEvent, null=True, on_delete=models.SET_NULL, related_name="+")
    raised_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by_id = models.BigIntegerField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} alert ({self.level})"


class PolicyWords(models.Model):
    """A tenant's own phrases for one word list of the template content check (conversations/template_check.py),
    added to the built-in list: one phrase per item."""

    list_name = models.CharField(max_length=32, unique=True)
    phrases = models.JSONField(default=list)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.list_name


class Label(models.Model):
    """A tenant's label for conversations and contacts (VIP, complaint, ...), with a colour."""

    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#667085")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="label_unique_name")]

    def __str__(self) -> str:
        return self.name


class CannedResponse(models.Model):
    """A named snippet an agent inserts with `/`: shared with the team (kept by supervisors and admins) or
    personal. Placeholders {{contact.name}}, {{agent.name}}, {{ticket.id}} are filled before sending."""

    name = models.CharField(max_length=80)
    text = models.TextField()
    shared = models.BooleanField(default=True)
    owner_id = models.BigIntegerField(
        null=True, blank=True, help_text="tenancy.User id: a personal one's owner"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Mention(models.Model):
    """A colleague named with @ in a private note: told live, and kept in their notification list until read."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="mentions")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user_id = models.BigIntegerField(help_text="tenancy.User id of the one mentioned")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user_id", "-created_at"], name="mention_recent")]
        constraints = [models.UniqueConstraint(fields=["note", "user_id"], name="mention_once_per_note")]

    def __str__(self) -> str:
        return f"@{self.user_id} in note {self.note_id}"


def _default_opt_out_keywords() -> list[str]:
    return ["STOP", "BERHENTI", "UNSUBSCRIBE"]


def _default_opt_in_keywords() -> list[str]:
    return ["START", "MULAI"]


class Guardrails(models.Model):
    """The tenant's one row of guardrails for business-initiated messages (conversations/consent.py, broadcasts):
    on by default, each changed only by admins."""

    opt_out_keywords = ArrayField(models.CharField(max_length=40), default=_default_opt_out_keywords)
    opt_in_keywords = ArrayField(models.CharField(max_length=40), default=_default_opt_in_keywords)
    # At most one marketing broadcast per contact in this many days (0: no cap); utility too when asked.
    frequency_cap_days = models.PositiveSmallIntegerField(default=14)
    frequency_cap_utility = models.BooleanField(default=False)
    # A running broadcast pauses itself when its failures pass this share of what it sent (after the minimum).
    failure_pause_percent = models.PositiveSmallIntegerField(default=5)
    failure_pause_after = models.PositiveIntegerField(default=50)

    def __str__(self) -> str:
        return "Guardrails"

    @classmethod
    def current(cls) -> Guardrails:
        found = cls.objects.order_by("pk").first()
        return found or cls.objects.create()


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Broadcast(models.Model):
    """One approved template sent to an audience of contacts (conversations/broadcasts.py): every recipient is a
    row before anything is sent, and the send claims the row."""

    name = models.CharField(max_length=200)
    number = models.ForeignKey(WhatsAppNumber, on_delete=models.PROTECT, related_name="+")
    template_name = models.CharField(max_length=512)
    template_language = models.CharField(max_length=16)
    components = models.JSONField(
        default=list, help_text="Meta's parameter format, with {{contact.*}} fields"
    )
    category = models.CharField(
        max_length=32, blank=True, default="", help_text="The template's, when started"
    )
    # {"labels": [ids], "contacts": [ids], "wa_ids": [...]}: any one key is enough.
    audience = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT)
    paused_reason = models.TextField(blank=True, default="")
    paused_code = models.CharField(max_length=32, blank=True, default="")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Started while the number's quality was YELLOW (an admin confirmed it): half the number's pace.
    half_pace = models.BooleanField(default=False)
    # The audience named the same number more than once: one recipient, the rest counted here.
    duplicates = models.PositiveIntegerField(default=0)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "scheduled_at"], name="broadcast_due")]

    def __str__(self) -> str:
        return self.name


class RecipientStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SKIPPED = "skipped", "Skipped"
    SENDING = "sending", "Sending"  # claimed by a worker: its send is under way (or the worker died)
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    REPLIED = "replied", "Replied"


class BroadcastRecipient(models.Model):
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    wa_id = models.CharField(max_length=MAX_ID_LENGTH, help_text="As given, or the contact's")
    status = models.CharField(max_length=16, choices=RecipientStatus.choices, default=RecipientStatus.QUEUED)
    # Why it was skipped: invalid_number, duplicate, opted_out, marketing_stopped, no_opt_in, frequency_cap.
    reason = models.CharField(max_length=32, blank=True, default="")
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="broadcast_recipient"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=512, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "wa_id"], name="recipient_once_per_broadcast")
        ]
        indexes = [
            models.Index(fields=["broadcast", "status", "id"], name="recipient_by_status"),
            models.Index(
                fields=["contact", "sent_at"],
                condition=models.Q(sent_at__isnull=False),
                name="recipient_sent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wa_id} in broadcast {self.broadcast_id}"
