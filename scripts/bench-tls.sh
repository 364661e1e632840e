#!/usr/bin/env bash
# HTTPS side by side: glasshouse (userspace rustls) and nginx (OpenSSL) on
# the same certificate, measured round-robin with wrk so they share the
# machine's noise. Needs a quiet machine: the lead runs it, not CI.
#
# Usage: scripts/bench-tls.sh            (after: cargo build --release --locked)
# Environment: REPS (default 3), DUR (default 10s), WORKERS (both servers,
#              default 2), CONNS (default 64), OUT (default ./bench-out/tls).
# Rows: keep-alive GET of 1 KiB and 100 KiB files, and a new TLS connection
# per request (`Connection: close`: handshakes per second), once with full
# handshakes and once resumed. wrk offers each connection's last session
# again (SSL_clear keeps it), so the full rows run against servers that
# remember none (glasshouse --tls-session-cache 0; nginx with its session
# cache and tickets off) and the resumed row against servers that do
# (glasshouse's default cache; nginx's shared cache). After the table, the
# share of glasshouse's handshakes that resumed, from its /metrics. Prints a
# markdown table: median req/s (min-max) per server, the median ratio
# glasshouse/nginx, and CPU time per request (user + system of the server's
# process tree over the round, divided by the requests wrk completed).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3} DUR=${DUR:-10s} WORKERS=${WORKERS:-2} CONNS=${CONNS:-64}
OUT=${OUT:-$PWD/bench-out/tls}
bin=${GLASSHOUSE_BIN:-target/release/glasshouse}
[ -x "$bin" ] || { echo "build first: cargo build --release --locked" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light; }
mkdir -p "$OUT"
work=$(mktemp -d -t bench-tls.XXXXXX)
gpid="" rpid=""
cleanup() {
  [ -n "$gpid" ] && kill "$gpid" 2>/dev/null || true
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
# CPU ticks (user + system) of a process and its threads and children.
ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat"; }
nginx_ticks() { local t=0; for p in $(pgrep -P "$(cat "$work/nginx.pid")") "$(cat "$work/nginx.pid")"; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

root=$work/www
mkdir -p "$root" "$work/tmp"
chmod 755 "$work" "$root"
head -c 1024 /dev/urandom | base64 -w 64 | head -c 1024 > "$root/1k.txt"
head -c 102400 /dev/urandom > "$root/100k.bin"
# One P-256 certificate for both (the common choice; same handshake cost).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost 2>/dev/null
chmod 644 "$work/key.pem"

np=$(free_port) nrp=$(free_port)
cat > "$work/nginx.conf" <<CONF
daemon on;
worker_processes $WORKERS;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
worker_rlimit_nofile 65535;
events { worker_connections 16384; use epoll; }
http {
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 100000000;
  open_file_cache max=100 inactive=60s;
  default_type application/octet-stream;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
  ssl_session_tickets off;
  server {
    listen 127.0.0.1:$np ssl;
    ssl_session_cache off;
    root $root;
  }
  server {
    listen 127.0.0.1:$nrp ssl;
    ssl_session_cache shared:SSL:10m;
    root $root;
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
wait_port "$np"

gp=$(free_port) grp=$(free_port)
"$bin" --listen "127.0.0.1:$gp" --root "$root" --workers "$WORKERS" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --log-level warn \
  --tls-session-cache 0 > "$OUT/glasshouse.log" 2>&1 &
gpid=$!
"$bin" --listen "127.0.0.1:$grp" --root "$root" --workers "$WORKERS" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --log-level warn \
  > "$OUT/glasshouse-resumed.log" 2>&1 &
rpid=$!
wait_port "$gp"
wait_port "$grp"

# name|path|header|sessions (full: servers that resume nothing).
rows=("ka_1k|/1k.txt||full" "ka_100k|/100k.bin||full"
  "new_conn_1k|/1k.txt|Connection: close|full"
  "new_conn_1k_resumed|/1k.txt|Connection: close|resumed")
# One round: prints "req/s cpu_us_per_req".
round() { # server port path header pid
  local srv=$1 port=$2 path=$3 hdr=$4 pid=$5 t0 t1 out reqs
  if [ "$srv" = nginx ]; then t0=$(nginx_ticks); else t0=$(ticks "$pid"); fi
  if [ -n "$hdr" ]; then
    out=$(wrk -t2 -c"$CONNS" -d"$DUR" -H "$hdr" "https://127.0.0.1:$port$path")
  else
    out=$(wrk -t2 -c"$CONNS" -d"$DUR" "https://127.0.0.1:$port$path")
  fi
  if [ "$srv" = nginx ]; then t1=$(nginx_ticks); else t1=$(ticks "$pid"); fi
  echo "$out" > "$OUT/$srv-$(echo "$path" | tr -d /)-${hdr:+close}-$(date +%s%N).txt"
  if echo "$out" | grep -q "Non-2xx\|Socket errors"; then echo "$out" | grep "Non-2xx\|Socket errors" >&2; fi
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v r="$(echo "$out" | awk '/Requests\/sec/ {print $2}')" -v d=$((t1 - t0)) -v n="$reqs" -v hz="$hz" \
    'BEGIN { printf "%.0f %.1f\n", r, (n > 0 ? d / hz * 1e6 / n : 0) }'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| row | glasshouse req/s | nginx req/s | ratio (median of rounds) | glasshouse CPU µs/req | nginx CPU µs/req |"
echo "|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  IFS='|' read -r name path hdr sessions <<<"$row"
  if [ "$sessions" = resumed ]; then gport=$grp pid=$rpid nport=$nrp; else gport=$gp pid=$gpid nport=$np; fi
  g=() n=() r=() gc=() nc=()
  for _ in $(seq "$REPS"); do
    read -r gr gcpu < <(round glasshouse "$gport" "$path" "$hdr" "$pid")
    read -r nr ncpu < <(round nginx "$nport" "$path" "$hdr" "")
    g+=("$gr") n+=("$nr") gc+=("$gcpu") nc+=("$ncpu")
    r+=("$(awk -v a="$gr" -v b="$nr" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
  done
  mg=$(printf '%s\n' "${g[@]}" | median); mn=$(printf '%s\n' "${n[@]}" | median)
  echo "| $name | $mg ($(printf '%s\n' "${g[@]}" | sort -n | head -1)-$(printf '%s\n' "${g[@]}" | sort -n | tail -1)) | $mn ($(printf '%s\n' "${n[@]}" | sort -n | head -1)-$(printf '%s\n' "${n[@]}" | sort -n | tail -1)) | $(printf '%s\n' "${r[@]}" | median) | $(printf '%s\n' "${gc[@]}" | median) | $(printf '%s\n' "${nc[@]}" | median) |"
done
# What the handshakes were: wrk did offer sessions back, and only the
# resuming glasshouse took them.
for pair in "full:$gp" "resumed:$grp"; do
  metrics=$(curl -sk "https://127.0.0.1:${pair#*:}/metrics")
  all=$(echo "$metrics" | awk '/^glasshouse_tls_handshakes_total / {print $2}')
  res=$(echo "$metrics" | awk '/^glasshouse_tls_handshakes_resumed_total / {print $2}')
  echo "glasshouse (${pair%%:*} handshakes): $res of $all handshakes resumed"
done
