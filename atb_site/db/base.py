from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base, introspection


class DatabaseIntrospection(introspection.DatabaseIntrospection):
    def get_table_list(self, cursor: Any) -> Any:
        tables = list(super().get_table_list(cursor))
        cursor.execute(
            """
            SELECT n.nspname || '"."' || c.relname,
                   CASE WHEN c.relispartition THEN 'p'
                        WHEN c.relkind IN ('m', 'v') THEN 'v'
                        ELSE 't' END,
                   obj_description(c.oid, 'pg_class')
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') AND n.nspname = ANY(%s)
            """,
            [list(settings.DATABASE_APP_SCHEMAS)],
        )
        return tables + [introspection.TableInfo(*row) for row in cursor.fetchall()]


class DatabaseWrapper(base.DatabaseWrapper):
    introspection_class = DatabaseIntrospection
