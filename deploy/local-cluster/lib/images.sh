# shellcheck shell=bash
# Images in the cluster's containerd, never pulled: the pause image is packed here from the
# binary built from deploy/local-cluster/pause (an OCI image layout written by hand, so `up` needs
# no Docker), and the project's images are copied from the local Docker by `load-images`.

lc_ctr() { ctr --address "$CONTAINERD_SOCK" --namespace "$LC_CONTAINERD_NAMESPACE" "$@"; }

# blob DIR FILE: FILE moved into DIR's blob store; prints its digest and size.
blob() {
  local dir="$1" file="$2" digest size
  digest="$(sha256sum "$file" | cut -d' ' -f1)"
  size="$(stat -c %s "$file")"
  mv "$file" "$dir/blobs/sha256/$digest"
  printf 'sha256:%s %s\n' "$digest" "$size"
}

# pack_single_binary_image BINARY REF OUT USER: an OCI archive of one static binary, FROM scratch,
# as the entrypoint /<its file name>, run as the numeric USER (Kubernetes checks runAsNonRoot
# against a number only).
pack_single_binary_image() {
  local binary="$1" ref="$2" out="$3" user="$4" name dir layer_digest layer_size config_digest config_size manifest_digest manifest_size
  name="$(basename "$binary")"
  dir="$(mktemp -d)"
  mkdir -p "$dir/blobs/sha256" "$dir/rootfs"
  install -m 0755 "$binary" "$dir/rootfs/$name"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$dir/rootfs" -cf "$dir/layer.tar" "$name"
  read -r layer_digest layer_size < <(blob "$dir" "$dir/layer.tar")
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/%s"],"User":"%s"},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$name" "$user" "$layer_digest" >"$dir/config.json"
  read -r config_digest config_size < <(blob "$dir" "$dir/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$dir/manifest.json"
  read -r manifest_digest manifest_size < <(blob "$dir" "$dir/manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$ref" "${ref##*:}" >"$dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf "$out" oci-layout index.json blobs
  rm -rf "$dir"
}

# import_binary_image BINARY REF USER: BINARY packed as image REF into the cluster's containerd,
# unless REF is there already (its tag names the version, the binary's cache its sources).
import_binary_image() {
  local binary="$1" ref="$2" user="$3" archive
  if lc_ctr images ls -q | grep -qxF "$ref"; then
    return 0
  fi
  archive="$(mktemp --suffix=.tar)"
  pack_single_binary_image "$binary" "$ref" "$archive" "$user"
  import_archive "$archive" "$ref" || {
    rm -f "$archive"
    lc_die "$binary did not import as $ref"
  }
  rm -f "$archive"
  lc_log "imported $ref"
}

# The sandbox image runs as 65535, like upstream's pause.
import_pause_image() { import_binary_image "$(bin pause pause)" "$LC_PAUSE_IMAGE" 65535:65535; }

# docker_ref_in_containerd REF: REF as containerd names it (it spells out the registry of a short
# name: scalebench/x:1 is docker.io/scalebench/x:1).
docker_ref_in_containerd() {
  local ref="$1" first="${1%%/*}"
  if [[ "$ref" != */* ]]; then
    printf 'docker.io/library/%s\n' "$ref"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
    printf 'docker.io/%s\n' "$ref"
  else
    printf '%s\n' "$ref"
  fi
}

# load_docker_images REF...: each image from the local Docker into the cluster's containerd,
# under the name the manifests use. The archive goes through a file, not a pipe, so a failed or
# empty `docker save` is told apart from an import that named nothing (see import_archive).
load_docker_images() {
  local ref full archive
  command -v docker >/dev/null || lc_die "docker is not installed: load-images copies images from the local Docker"
  archive="$(mktemp --suffix=.tar)"
  # Removed on return and on lc_die's exit alike; the RETURN trap clears itself, so it does not
  # fire again when a later function returns.
  # shellcheck disable=SC2064  # the path is fixed now
  trap "rm -f '$archive'" EXIT
  # shellcheck disable=SC2064
  trap "rm -f '$archive'; trap - RETURN" RETURN
  for ref in "$@"; do
    docker image inspect "$ref" >/dev/null 2>&1 ||
      lc_die "no image $ref in the local Docker: build it first (deploy/scripts/build-load.sh builds both)"
    lc_log "loading $ref"
    docker save -o "$archive" "$ref" || lc_die "docker save $ref failed"
    [[ -s "$archive" ]] || lc_die "docker save $ref wrote nothing"
    full="$(docker_ref_in_containerd "$ref")"
    import_archive "$archive" "$full" || lc_die "$ref did not import as $full"
  done
}

# import_archive ARCHIVE REF: an image archive into the cluster's containerd, checked by the name
# it must have there; fails (after saying why) when REF is not listed. Tried three times, a
# second apart: CI twice saw an import right after containerd started exit 0, print nothing and
# name nothing (never reproduced by hand: 15 of 15 fresh containerds imported at once), so each
# attempt says what ctr printed, and the last adds what containerd holds and its log's end.
import_archive() {
  local archive="$1" ref="$2" attempt out
  for attempt in 1 2 3; do
    out="$(lc_ctr images import "$archive" 2>&1)" || {
      lc_log "importing $ref into containerd failed: $out"
      return 1
    }
    lc_ctr images ls -q | grep -qxF "$ref" && return 0
    lc_log "import $attempt of $ref named no $ref (ctr printed: ${out:-nothing})"
    sleep 1
  done
  lc_log "containerd has: $(lc_ctr images ls -q | tr '\n' ' ')"
  lc_log "containerd's log ends: $(tail -n 20 "$LC_LOGS/containerd.log" 2>/dev/null)"
  return 1
}
