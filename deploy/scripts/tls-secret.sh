#!/usr/bin/env bash
# A self-signed certificate for the Ingress host, turned into the TLS Secret the Ingress names.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TLS_HOST=scalebench.local
TLS_SECRET=workload-tls

usage() {
  cat <<USAGE
Usage: deploy/scripts/tls-secret.sh [--host NAME] [--out-dir DIR] [--days N] [--print]

Makes a self-signed server certificate (RSA 2048, SHA-256, subjectAltName DNS:NAME) in
DIR/tls.crt and DIR/tls.key, unless both exist already, and applies it as Secret $TLS_SECRET (type
kubernetes.io/tls) in namespace $NAMESPACE, which the Ingress of
deploy/overlays/minikube-hpa-tls serves. Clients trust it as its own issuer: give DIR/tls.crt to
them (loadgen --cacert, curl --cacert). For compose (compose.tls.yml) use --host workload
--out-dir .secrets/tls-compose --print, as "make tls-compose-cert" does.

  --host NAME     the Ingress host (default $TLS_HOST)
  --out-dir DIR   where the key and certificate are kept (default \$SCALEBENCH_SECRETS_DIR/tls,
                  i.e. .secrets/tls, gitignored)
  --days N        validity (default 30)
  --print         print the Secret's YAML instead of applying it (no cluster needed)
  -h, --help      this help
USAGE
}

host=$TLS_HOST
out_dir="$SECRETS_DIR/tls"
days=30
print=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --host) host="${2:?--host needs a value}"; shift 2 ;;
    --out-dir) out_dir="${2:?--out-dir needs a value}"; shift 2 ;;
    --days) days="${2:?--days needs a value}"; shift 2 ;;
    --print) print=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo "error: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ $host =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || { echo "error: --host $host is not a DNS name" >&2; exit 2; }
[[ $days =~ ^[1-9][0-9]*$ ]] || { echo "error: --days $days is not a positive number" >&2; exit 2; }
need openssl
[[ $print == 1 ]] || need kubectl

mkdir -p "$out_dir"
chmod 0700 "$out_dir"
crt="$out_dir/tls.crt"
key="$out_dir/tls.key"
# A server certificate, not a CA: webpki-based clients refuse a certificate marked CA:TRUE as the
# server's own (CaUsedAsEndEntity) unless, as the loadgen, curl and Go do, they trust that very
# certificate; CA:FALSE suits every client. Older versions of this script made CA:TRUE
# certificates; those are replaced.
extensions() {
  printf '[req]\ndistinguished_name = dn\nx509_extensions = server\nprompt = no\n'
  printf '[dn]\nCN = %s\n' "$host"
  printf '[server]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n'
  printf 'extendedKeyUsage = serverAuth\nsubjectAltName = DNS:%s\nsubjectKeyIdentifier = hash\n' "$host"
}
if [[ -s $crt && -s $key ]] && ! openssl x509 -in "$crt" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE'; then
  log "keeping the existing $crt (delete it for a new one)"
else
  [[ ! -s $crt ]] || log "replacing $crt: it is marked CA:TRUE, which webpki-based clients refuse from a server"
  log "self-signed certificate for $host, valid $days days: $crt"
  (umask 077 && openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days "$days" \
    -config <(extensions) -keyout "$key" -out "$crt" 2>/dev/null)
fi

secret() {
  kubectl create secret tls "$TLS_SECRET" --namespace "$NAMESPACE" --cert "$crt" --key "$key" \
    --dry-run=client -o yaml
}
if [[ $print == 1 ]]; then
  secret
else
  kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$NAMESPACE" >/dev/null
  secret | kubectl apply --server-side --field-manager "$FIELD_MANAGER" -f -
  log "Secret $TLS_SECRET applied; clients trust $crt"
fi
