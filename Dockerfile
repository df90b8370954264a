# The image of every Railway service of this repository (web, worker, beat, and pgbouncer, which
# runs `python -m atb_site.db.pgbouncer`: README, "Behind PgBouncer"): railway.json builds with
# it. Start commands are the Procfile's lines, set per service; the default is web's.
#
# PG_MAJOR: the major version of the PostgreSQL client tools (pg_dump, pg_restore, psql) put on
# the image, from the PostgreSQL project's apt repository. Set it to the database server's major
# version: a Railway service variable PG_MAJOR overrides this default at build time (set it on
# every service). Newer tools than the server also work (restores leave out what an older server
# does not know); older ones are refused. `python manage.py setup_railway --verify` reports the
# tools found and whether they fit the server.
ARG PG_MAJOR=18

FROM python:3.12-slim-bookworm
ARG PG_MAJOR
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" pgbouncer; \
    apt-get purge -y --auto-remove curl; \
    rm -rf /var/lib/apt/lists/*; \
    "${PG_BIN_DIR}/pg_dump" --version; \
    "${PG_BIN_DIR}/pg_restore" --version; \
    "${PG_BIN_DIR}/psql" --version; \
    pgbouncer --version

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# Settings need a key and a database URL to load; collectstatic uses neither.
RUN DJANGO_SECRET_KEY=collectstatic-only DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput

CMD ["gunicorn", "atb_site.wsgi"]
