#!/usr/bin/env bash
# Create the compose stack's secrets (`make secrets`; `make up` runs it first). No password of the
# stack is written in the repository or has a default: each is random, made once, and kept.
#
# In SCALEBENCH_SECRETS_DIR (default .secrets/ at the repository root, gitignored, mode 0700):
#   grafana-admin-password       Grafana's `admin` password (GF_SECURITY_ADMIN_PASSWORD__FILE)
#   prometheus-password          the password of user `scalebench` on Prometheus whenever it
#                                listens beyond loopback (remote write from Minikube, for one)
#   prometheus-web-BIND.yml      Prometheus' --web.config.file for PROMETHEUS_BIND=BIND: no
#                                users for 127.0.0.1 (only this machine reaches it), basic auth
#                                with the bcrypt hash of prometheus-password for any other BIND
#   grafana-datasources.yml      grafana/provisioning/datasources/datasources.yml plus the basic
#                                auth Grafana sends to Prometheus (ignored while none is required)
# docker-compose.yml mounts prometheus-web-${PROMETHEUS_BIND:-127.0.0.1}.yml: a bind this script
# has not prepared has no web config, and Prometheus refuses to start (fails closed).
#
# Files are 0644 inside the 0700 directory: the containers' users (Grafana 472, Prometheus
# 65534) read them through bind mounts, other users of this machine cannot reach them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SCALEBENCH_SECRETS_DIR:-$ROOT/.secrets}"
BIND="${PROMETHEUS_BIND:-127.0.0.1}"
# The user loadgen --remote-write-user and deploy/scripts/run-loadgen.sh send.
PROMETHEUS_USER=scalebench

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
case "${1:-}" in
  -h | --help) echo "Usage: scripts/compose-secrets.sh   (env: SCALEBENCH_SECRETS_DIR, PROMETHEUS_BIND)"; usage; exit 0 ;;
  "") ;;
  *) echo "error: unknown argument: $1" >&2; exit 2 ;;
esac
[[ "$BIND" =~ ^[0-9A-Za-z.:_-]+$ ]] || { echo "error: PROMETHEUS_BIND '$BIND' is not an address" >&2; exit 2; }

log() { printf '[secrets] %s\n' "$*" >&2; }

# 192 random bits as 48 hex digits: URL-safe, so it fits a user:password@host URL unquoted.
random_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# keep_or_make FILE: a random password in FILE unless one is already there.
keep_or_make() {
  if [[ -s $1 ]]; then
    log "keeping $1"
  else
    (umask 022 && random_password >"$1.tmp") && mv "$1.tmp" "$1"
    log "created $1"
  fi
}

# bcrypt FILE: the bcrypt hash ($2y$/$2b$) of the password in FILE, which Prometheus' web config
# wants. The password goes through stdin, never a command line.
bcrypt() {
  if command -v htpasswd >/dev/null 2>&1; then
    htpasswd -niBC 10 "$PROMETHEUS_USER" <"$1" | cut -d: -f2-
  elif python3 -c 'import bcrypt' 2>/dev/null; then
    python3 -c 'import bcrypt, sys; print(bcrypt.hashpw(sys.stdin.read().strip().encode(), bcrypt.gensalt(10)).decode())' <"$1"
  elif python3 -W ignore -c 'import crypt' 2>/dev/null; then
    # Python < 3.13 with libxcrypt (Debian, Ubuntu): bcrypt through crypt(3).
    python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.stdin.read().strip(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))' <"$1"
  else
    echo "error: no bcrypt: install apache2-utils (htpasswd) or python3-bcrypt" >&2
    return 1
  fi
}

install -d -m 0700 "$DIR"
keep_or_make "$DIR/grafana-admin-password"
keep_or_make "$DIR/prometheus-password"

web="$DIR/prometheus-web-$BIND.yml"
# A failed `up` before this script ran leaves a directory where Docker wanted the file.
[[ -d $web ]] && rmdir "$web"
if [[ $BIND == 127.0.0.1 ]]; then
  printf '# Prometheus published on 127.0.0.1 only: no authentication (scripts/compose-secrets.sh)\n{}\n' >"$web.tmp"
else
  hash="$(bcrypt "$DIR/prometheus-password")"
  [[ $hash == \$2* ]] || { echo "error: bcrypt produced no hash" >&2; exit 1; }
  printf '# Prometheus published on %s: every request needs basic auth (scripts/compose-secrets.sh)\nbasic_auth_users:\n  %s: %s\n' \
    "$BIND" "$PROMETHEUS_USER" "$hash" >"$web.tmp"
fi
chmod 0644 "$web.tmp" && mv "$web.tmp" "$web"
log "wrote $web"

# Grafana's datasources with the credentials added to the Prometheus one (uid `prometheus`),
# read from the password file mounted into the Grafana container.
sources="$ROOT/grafana/provisioning/datasources/datasources.yml"
out="$DIR/grafana-datasources.yml"
awk -v user="$PROMETHEUS_USER" '
  { print }
  /^    url: http:\/\/prometheus:9090$/ {
    print "    basicAuth: true"
    print "    basicAuthUser: " user
    print "    secureJsonData:"
    print "      basicAuthPassword: $__file{/run/secrets/prometheus_password}"
    added = 1
  }
  END { if (!added) exit 1 }' "$sources" >"$out.tmp" ||
  { rm -f "$out.tmp"; echo "error: no 'url: http://prometheus:9090' line in $sources" >&2; exit 1; }
chmod 0644 "$out.tmp" && mv "$out.tmp" "$out"
log "wrote $out"
log "Grafana: user admin, password in $DIR/grafana-admin-password"
