"""The shared (public) schema: tenants, their domains, users with a membership per tenant, the registry of
WhatsApp numbers that routes webhooks to a tenant, and the raw webhook events as received."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

from helpdesk import crypto


class Tenant(TenantMixin):
    """A business. Its schema name is its slug."""

    name = models.CharField(max_length=200)
    timezone_name = models.CharField(max_length=64, default="Asia/Jakarta", help_text="IANA time zone")
    created_at = models.DateTimeField(default=timezone.now)

    auto_create_schema = True

    @property
    def slug(self) -> str:
        return self.schema_name

    def __str__(self) -> str:
        return self.name


class Domain(DomainMixin):
    pass


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        """A user; the password must pass AUTH_PASSWORD_VALIDATORS (ValidationError), so that no path
        (createsuperuser included, even when told to bypass validation) stores a weak one."""
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password is not None:
            validate_password(password, user)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]

    def __str__(self) -> str:
        return self.email


class UserSession(AbstractBaseSession):
    """A browser session (helpdesk.tenancy.sessions), with its user so that all of them can be ended at once."""

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions")

    @classmethod
    def get_session_store_class(cls) -> Any:
        from helpdesk.tenancy.sessions import SessionStore

        return SessionStore


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    """A user's one role in one tenant; every view, API call and websocket checks it."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    # Round-robin assignment: available agents, least recently assigned first.
    is_available = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.tenant}"


DEFAULT_SEND_RATE = 80  # messages per second: Meta's default throughput for a Cloud API number
COEXISTENCE_RATE = 20
MAX_SEND_RATE = 1000


class WhatsAppNumber(models.Model):
    """A Cloud API phone number: the shared registry that maps `phone_number_id` (and WABA id) to a tenant.

    The access token and app secret are encrypted at rest; the verify token is kept only as a keyed digest.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="numbers")
    phone_number_id = models.CharField(max_length=64, unique=True)
    waba_id = models.CharField(max_length=64, db_index=True)
    display_number = models.CharField(max_length=32)
    access_token_encrypted = models.TextField()
    app_secret_encrypted = models.TextField()
    verify_token_digest = models.CharField(max_length=64, db_index=True)
    simulator = models.BooleanField(
        default=False,
        help_text="Replies go to the built-in fake Graph API, which answers with status webhooks.",
    )
    # Kept so that the admin can paste it into Meta's app settings again (the digest above is what is matched).
    verify_token_encrypted = models.TextField(blank=True, default="")
    # The number as the Graph API last described it (conversations.number_health.do_refresh_number) and as
    # account webhooks changed it since.
    verified_name = models.CharField(max_length=200, blank=True, default="")
    name_status = models.CharField(max_length=64, blank=True, default="")
    quality_rating = models.CharField(max_length=16, default="UNKNOWN")
    messaging_limit = models.CharField(max_length=32, blank=True, default="")
    throughput = models.CharField(max_length=32, blank=True, default="")
    # The last "test connection" (by hand or periodic): its outcome, Meta's error if any, and when.
    connection_ok = models.BooleanField(null=True, blank=True)
    connection_error = models.JSONField(null=True, blank=True)
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    # Also used in the WhatsApp Business app on a phone (echoes or history arrived): Meta fixes its pace at 20/s.
    coexistence = models.BooleanField(default=False)
    # Broadcast messages per second at most (an admin's choice, within Meta's throughput); null: the default.
    send_rate_setting = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"+{self.display_number}"

    @property
    def max_send_rate(self) -> int:
        """Meta's throughput: 20 messages per second for coexistence numbers, up to 1,000 for others."""
        return COEXISTENCE_RATE if self.coexistence else MAX_SEND_RATE

    @property
    def send_rate(self) -> int:
        """The pace of broadcasts, messages per second: the admin's setting, else Meta's default."""
        default = COEXISTENCE_RATE if self.coexistence else DEFAULT_SEND_RATE
        return min(self.send_rate_setting or default, self.max_send_rate)

    @property
    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted)

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = crypto.encrypt(value)

    @property
    def app_secret(self) -> str:
        return crypto.decrypt(self.app_secret_encrypted)

    @app_secret.setter
    def app_secret(self, value: str) -> None:
        self.app_secret_encrypted = crypto.encrypt(value)

    @property
    def verify_token(self) -> str:
        return crypto.decrypt(self.verify_token_encrypted) if self.verify_token_encrypted else ""

    def set_verify_token(self, value: str) -> None:
        self.verify_token_digest = crypto.lookup_digest(value)
        self.verify_token_encrypted = crypto.encrypt(value)


class WebhookEvent(models.Model):
    """One POST from Meta exactly as received (after its signature was verified), kept before we answer 200.

    Parsing and the tenant work happen afterwards (conversations.webhooks.process_pending_events). A change
    that cannot be applied is recorded in `failures` and retried with backoff; after the last attempt the event
    is parked until an operator replays it (`manage.py replay_webhook_events`).
    """

    received_at = models.DateTimeField(default=timezone.now)
    body = models.TextField(help_text="The raw request body, byte for byte as signed (UTF-8).")
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # A worker holds the event until this moment; a worker that died loses it then.
    claimed_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    # The changes that failed: [{"key": "0.1", "tenant": slug, "field": ..., "error": ..., "first_seen": iso}].
    failures = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(processed_at__isnull=True, parked_at__isnull=True),
                name="webhook_event_pending",
            ),
            models.Index(
                fields=["parked_at"], condition=models.Q(parked_at__isnull=False), name="webhook_event_parked"
            ),
        ]

    def __str__(self) -> str:
        return f"Webhook event {self.pk}"
