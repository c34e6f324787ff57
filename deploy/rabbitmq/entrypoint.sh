#!/bin/sh
# The rabbitmq service's entrypoint: writes the definitions (vhost, topology, and the service
# account from RABBITMQ_USER and RABBITMQ_PASS) where rabbitmq.conf's load_definitions reads
# them, readable by the broker only and never on a volume, then starts RabbitMQ as the image
# would. RabbitMQ loads them at every boot: a new RABBITMQ_PASS takes effect at the next start.
#
# RENDER_ONLY=1 writes the file and stops (to inspect it, or to import it into a broker you run
# yourself: RENDER_ONLY=1 DEFINITIONS_OUT=defs.json sh entrypoint.sh; rabbitmqctl import_definitions defs.json).
set -eu

template=${DEFINITIONS_TEMPLATE:-/etc/rabbitmq/sensory/definitions.template.json}
out=${DEFINITIONS_OUT:-/tmp/sensory-definitions.json}
: "${RABBITMQ_USER:?set RABBITMQ_USER: the account Sensory connects with}"
: "${RABBITMQ_PASS:?set RABBITMQ_PASS: that account's password}"

case "$RABBITMQ_USER$RABBITMQ_PASS" in
  *"
"*) echo "RABBITMQ_USER and RABBITMQ_PASS must be one line each" >&2; exit 2 ;;
esac

# A JSON string's content, then a sed replacement's: backslash and quote for JSON; backslash,
# & and the | delimiter for sed.
literal() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | sed -e 's/[\\&|]/\\&/g'
}
user=$(literal "$RABBITMQ_USER")
pass=$(literal "$RABBITMQ_PASS")

umask 077
sed -e "s|@RABBITMQ_USER@|$user|g" -e "s|@RABBITMQ_PASS@|$pass|g" "$template" > "$out.partial"
mv "$out.partial" "$out"
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then chown rabbitmq "$out"; fi

if [ "${RENDER_ONLY:-}" = 1 ]; then exit 0; fi
exec docker-entrypoint.sh "$@"
