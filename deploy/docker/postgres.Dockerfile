# PostgreSQL 15 for the governance store, from the build machine's Debian binaries.
# The data directory is a volume; the first start runs initdb and creates the database
# and role named by POSTGRES_DB / POSTGRES_USER with POSTGRES_PASSWORD (scram-sha-256).
# Built by deploy/docker/images.sh.
ARG BASE=gatehouse/base:latest
FROM ${BASE}
COPY rootfs/ /
COPY --chown=999:999 empty/ /var/lib/postgresql/data/
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/bin PGDATA=/var/lib/postgresql/data
USER 999:999
VOLUME /var/lib/postgresql/data
EXPOSE 5432
HEALTHCHECK --interval=1s --timeout=2s --retries=60 \
  CMD pg_isready -q -h 127.0.0.1 -p "${POSTGRES_PORT:-5432}" || exit 1
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
