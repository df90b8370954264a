"""Admin for the bot registry and its versioned configurations.

Every change goes through ``botconfig.services``, which writes the audit record in the same
transaction; nothing here saves a bot or a configuration itself.
"""

from botconfig.admin import configurations, registry, schemas

__all__ = ["configurations", "registry", "schemas"]
