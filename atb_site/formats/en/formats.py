"""English output formats: one timestamp format everywhere a person reads a time (the admin's
lists and pages, as the dashboard and trading/display.py write it): UTC, whole seconds, the
zone written. docs/DESIGN.md, "Numbers a desk can read". Input formats stay Django's."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
