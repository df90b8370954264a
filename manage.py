#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atb_site.settings.base")
    from django.core.management import execute_from_command_line

    from atb_site.startup import settings_or_exit

    settings_or_exit("manage.py")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
