from django.apps import AppConfig


class ImportersConfig(AppConfig):
    name = "importers"
    verbose_name = "Importers: legacy bots and freqtrade databases into the unified schema"
