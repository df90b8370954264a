from django.apps import AppConfig


class BotconfigConfig(AppConfig):
    name = "botconfig"
    verbose_name = "Bot registry and configurations"
