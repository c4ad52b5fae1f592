#!/bin/sh
# The example application: says which secrets it received and how long they
# are, never what they are. NAME_FILE names a file that holds NAME's value,
# as rendered by a sidecar.
set -eu

echo "show-secrets: pid $$, uid $(id -u), gid $(id -g)"
for name in API_KEY DB_PASSWORD DATABASE_URL SIGNING_KEY_PATH; do
  eval "value=\${$name-} file=\${${name}_FILE-}"
  if [ -n "$value" ]; then
    echo "  $name: set, ${#value} characters"
  elif [ -n "$file" ]; then
    echo "  $name: in $file, $(wc -c <"$file") bytes"
  else
    echo "  $name: not set"
  fi
done
if [ -n "${SIGNING_KEY_PATH-}" ]; then
  echo "  $SIGNING_KEY_PATH: $(wc -c <"$SIGNING_KEY_PATH") bytes"
fi
