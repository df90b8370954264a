"""The admin app, its site the project's (atb_site.admin_tools.AdminSite)."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "atb_site.admin_tools.AdminSite"
