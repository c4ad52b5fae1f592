#!/bin/sh
# The example application: it shows which of its variables hold secrets,
# each value masked down to its length, and which user it runs as.
set -eu

mask() {
  printf '******** (%d characters)' "${#1}"
}

echo "example app: pid $$, uid $(id -u), gid $(id -g), HOME=${HOME:-}"
for name in DB_PASSWORD DB_USER DATABASE_URL JWT_SECRET API_PORT TLS_KEY_FILE REDIS_PASSWORD; do
  eval "value=\${$name-}"
  if [ -z "$value" ]; then
    echo "  $name is not set"
  elif [ "$name" = TLS_KEY_FILE ]; then
    echo "  $name = $value (a file of $(wc -c < "$value") bytes)"
  else
    echo "  $name = $(mask "$value")"
  fi
done
leftover=$(env | grep -E '^(SECRET_ENTRYPOINT_|VAULT_)' | cut -d= -f1 | tr '\n' ' ')
echo "  entrypoint settings and Vault credentials passed on: ${leftover:-none}"
