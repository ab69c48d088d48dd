# shellcheck shell=bash
# The cluster's certificates and kubeconfigs, made with openssl at every fresh `up`: a CA for
# clients and servers, a front-proxy CA for the aggregation layer (metrics.k8s.io), and the
# service-account signing key. Identities follow Kubernetes' conventions, so the built-in RBAC
# roles apply (system:kube-controller-manager, system:node:NAME in system:nodes, ...).

# new_ca NAME CN
new_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -keyout "$LC_PKI/$1.key" -out "$LC_PKI/$1.crt" -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# new_cert CA NAME SUBJECT USAGE [SANS]: a leaf signed by CA; USAGE is serverAuth, clientAuth or both.
new_cert() {
  local ca="$1" name="$2" subject="$3" usage="$4" sans="${5:-}" ext
  ext="$(mktemp)"
  {
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
    printf 'extendedKeyUsage=%s\n' "$usage"
    [[ -z "$sans" ]] || printf 'subjectAltName=%s\n' "$sans"
  } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$LC_PKI/$name.key" -out "$LC_PKI/$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -in "$LC_PKI/$name.csr" -CA "$LC_PKI/$ca.crt" -CAkey "$LC_PKI/$ca.key" \
    -CAcreateserial -days 365 -extfile "$ext" -out "$LC_PKI/$name.crt" 2>/dev/null
  rm -f "$ext" "$LC_PKI/$name.csr"
}

# kubeconfig NAME USER SERVER: a kubeconfig for identity NAME (its certificate and key).
kubeconfig() {
  local name="$1" user="$2" server="$3"
  cat >"$LC_PKI/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: scalebench-local
    cluster:
      certificate-authority: $LC_PKI/ca.crt
      server: $server
users:
  - name: $user
    user:
      client-certificate: $LC_PKI/$name.crt
      client-key: $LC_PKI/$name.key
contexts:
  - name: scalebench-local
    context:
      cluster: scalebench-local
      user: $user
      namespace: default
current-context: scalebench-local
EOF
}

make_pki() {
  local inside="https://$LC_NODE_IP:$LC_APISERVER_PORT"
  mkdir -p "$LC_PKI"
  chmod 0700 "$LC_PKI"
  new_ca ca scalebench-local-ca
  new_ca front-proxy-ca scalebench-local-front-proxy-ca
  openssl genrsa -out "$LC_PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$LC_PKI/sa.key" -pubout -out "$LC_PKI/sa.pub" 2>/dev/null

  new_cert ca apiserver /CN=kube-apiserver serverAuth \
    "IP:$LC_NODE_IP,IP:$LC_KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$LC_CLUSTER_DOMAIN"
  new_cert ca apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  new_cert front-proxy-ca front-proxy-client /CN=front-proxy-client clientAuth
  new_cert ca kubelet "/CN=$LC_NODE_NAME" serverAuth "IP:$LC_NODE_IP,DNS:$LC_NODE_NAME"
  new_cert ca metrics-server-serving /CN=metrics-server serverAuth \
    "IP:$LC_NODE_IP,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.$LC_CLUSTER_DOMAIN"

  # Client identities, each with a kubeconfig.
  new_cert ca admin "/O=system:masters/CN=scalebench-admin" clientAuth
  new_cert ca controller-manager /CN=system:kube-controller-manager clientAuth
  new_cert ca scheduler /CN=system:kube-scheduler clientAuth
  new_cert ca kubelet-client "/O=system:nodes/CN=system:node:$LC_NODE_NAME" clientAuth
  new_cert ca kube-proxy /CN=system:kube-proxy clientAuth
  new_cert ca coredns /CN=system:coredns clientAuth
  new_cert ca metrics-server /CN=system:metrics-server clientAuth
  kubeconfig admin scalebench-admin "$inside"
  kubeconfig controller-manager system:kube-controller-manager "$inside"
  kubeconfig scheduler system:kube-scheduler "$inside"
  kubeconfig kubelet-client "system:node:$LC_NODE_NAME" "$inside"
  kubeconfig kube-proxy system:kube-proxy "$inside"
  kubeconfig coredns system:coredns "$inside"
  kubeconfig metrics-server system:metrics-server "$inside"
  cp "$LC_PKI/admin.kubeconfig" "$LC_KUBECONFIG"
  chmod 0600 "$LC_PKI"/*.key "$LC_KUBECONFIG"
}
