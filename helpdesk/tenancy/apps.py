from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "helpdesk.tenancy"
    label = "tenancy"
    verbose_name = "Tenants, users and WhatsApp numbers"
    default_auto_field = "django.db.models.BigAutoField"
