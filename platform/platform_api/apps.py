"""Django app config for the platform service."""
from django.apps import AppConfig


class PlatformApiConfig(AppConfig):
    """The platform's one Django app."""

    name = "platform_api"
    default_auto_field = "django.db.models.BigAutoField"
