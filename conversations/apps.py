from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class ConversationsConfig(AppConfig):
    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations import webhooks
        from helpdesk.tenancy.models import WhatsAppNumber

        for signal in (post_save, post_delete):
            signal.connect(
                webhooks.forget_signers, sender=WhatsAppNumber, dispatch_uid=f"forget-signers-{signal}"
            )
