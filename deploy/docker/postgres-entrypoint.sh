#!/bin/sh
# First start: initdb, then create POSTGRES_USER (password POSTGRES_PASSWORD) and
# POSTGRES_DB owned by it, in single-user mode. Every start: run the server on
# POSTGRES_LISTEN (default: every address of the container) and POSTGRES_PORT (5432).
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user=${POSTGRES_USER:-gatehouse}
db=${POSTGRES_DB:-gatehouse}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pw"
  initdb -D "$PGDATA" -U postgres --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C >/dev/null
  rm -f "$pw"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pass=$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")
  postgres --single -D "$PGDATA" -c unix_socket_directories=/tmp postgres >/dev/null <<SQL
CREATE ROLE "$user" LOGIN PASSWORD '$pass';
CREATE DATABASE "$db" OWNER "$user";
SQL
  echo "postgres-entrypoint: initialised $PGDATA (database $db, role $user)"
fi
exec postgres -D "$PGDATA" -c "listen_addresses=${POSTGRES_LISTEN:-*}" -p "${POSTGRES_PORT:-5432}" \
  -c unix_socket_directories=/tmp
