"""Django's PostgreSQL backend, aware that our tables live in PostgreSQL schemas.

Models name their tables ``trading"."trades`` (trading.db.schema_table). Django's introspection
lists only tables on the search_path, so ``flush`` (used between transactional tests) and
anything else that asks "which of my tables exist?" would miss every table in our schemas.
This backend also lists the tables of settings.DATABASE_APP_SCHEMAS, spelled as the models
spell them. Everything else is Django's own backend.
"""
