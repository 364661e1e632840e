#!/usr/bin/env bash
# Makes a local CA and a server certificate for the HTTPS bundle
# (docker-compose.tls.yml, deploy/k8s-tls): deploy/tls/ca.pem, cert.pem
# (the leaf, then the CA: a chain as a server sends it) and key.pem.
#
#   bash scripts/dev-cert.sh                     # names: glasshouse, localhost, 127.0.0.1
#   bash scripts/dev-cert.sh example.test 10.0.0.5 ...   # extra DNS names or IPs
#
# For development and tests only: the CA's key is thrown away, the leaf
# lasts 30 days, and key.pem is made readable by all (0644) because compose
# bind-mounts a file secret with the host file's owner and mode, and the
# image runs as uid 65532. For a real deployment, give the server a key
# only uid 65532 can read (chown 65532 key.pem; chmod 0400), or use a
# Kubernetes TLS Secret (docs/deployment.md, HTTPS).
# Existing files are kept unless DEV_CERT_FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEV_CERT_DIR:-deploy/tls}
mkdir -p "$out"
if [ -e "$out/cert.pem" ] && [ "${DEV_CERT_FORCE:-0}" != 1 ]; then
  echo "dev-cert: $out/cert.pem exists (DEV_CERT_FORCE=1 makes new ones)"
  exit 0
fi
command -v openssl >/dev/null || { echo "dev-cert: needs openssl" >&2; exit 2; }
san="DNS:glasshouse,DNS:localhost,IP:127.0.0.1"
for n in "$@"; do
  if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san="$san,IP:$n"; else san="$san,DNS:$n"; fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/ca.key" -out "$work/ca.pem" -days 30 -subj "/CN=glasshouse dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/key.pem" -out "$work/leaf.csr" -subj "/CN=glasshouse" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$san" > "$work/ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 30 -extfile "$work/ext" -out "$work/leaf.pem" 2>/dev/null
cat "$work/leaf.pem" "$work/ca.pem" > "$out/cert.pem"
cp "$work/ca.pem" "$out/ca.pem"
# openssl writes PKCS#8 ("BEGIN PRIVATE KEY"), which glasshouse reads.
install -m 0644 "$work/key.pem" "$out/key.pem"
echo "dev-cert: $out/ca.pem, $out/cert.pem, $out/key.pem for $san"
