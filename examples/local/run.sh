#!/bin/sh
# Runs the built entrypoint on the example, as a Dockerfile's ENTRYPOINT
# would: the variables below are what an image's ENV would hold. The mock
# answers the vault: and awssm: references; ./secrets stands in for
# /run/secrets. As root, the app runs as the user nobody.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The folder for as=file values: the example's own, made anew each run.
files="${TMPDIR:-/tmp}/secret-entrypoint-example"
rm -rf "$files"

if [ "$(id -u)" = 0 ]; then
  set -- --user nobody
else
  set --
fi

exec env \
  DB_USER='vault:secret/app#db_user' \
  DB_PASSWORD='vault:secret/app#db_password' \
  DATABASE_URL='postgres://${vault:secret/app#db_user}:${vault:secret/app#db_password}@db:5432/app' \
  JWT_SECRET='awssm:prod/app/jwt' \
  API_PORT='vault:secret/app#api_port' \
  TLS_KEY_FILE='vault:pki/issue/app?as=file#private_key' \
  REDIS_PASSWORD_FILE="$here/secrets/redis_password" \
  VAULT_TOKEN='dev-only-token-never-passed-on' \
  SECRET_ENTRYPOINT_MOCK="$here/mock.yaml" \
  SECRET_ENTRYPOINT_FILE_ROOTS="$here/secrets" \
  SECRET_ENTRYPOINT_FILE_VARS=REDIS_PASSWORD \
  SECRET_ENTRYPOINT_FILES_DIR="$files" \
  SECRET_ENTRYPOINT_LOG_FORMAT=pretty \
  node "$root/dist/secret-entrypoint.cjs" "$@" -- "$here/app.sh"
