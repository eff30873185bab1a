#!/usr/bin/env bash
# End-to-end benchmark for issue 7: requests/s of a two-leg aggregate route (/profile/1 fans out
# to /user/1 and /orders on one nginx) against a client making the same two calls one after the
# other through ringway's prefix route. Loopback only; bounded (ROUNDS x 2 wrk runs of DURATION);
# every process it starts is killed on exit.
#
# Usage: bench/agg_e2e/run.sh            (env: RINGWAY=path ROUNDS=3 DURATION=8 CONNS=16)
set -euo pipefail

RINGWAY=${RINGWAY:-/work/main/build-me/src/ringway}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-16}
RW_CPU=${RW_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

for tool in nginx wrk taskset curl python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -x "$RINGWAY" ] || { echo "no ringway binary at $RINGWAY" >&2; exit 1; }

TMP=$(mktemp -d /tmp/agg_e2e.XXXXXX)
NGINX_PID=""
RW_PID=""
cleanup() {
  [ -n "$RW_PID" ] && kill "$RW_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  [ -n "$RW_PID" ] && wait "$RW_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && wait "$NGINX_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- two ~10 KiB JSON documents ---------------------------------------------------------------
mkdir -p "$TMP/www/user" "$TMP/nginx"
python3 - "$TMP/www" <<'EOF'
import json, sys
root = sys.argv[1]
user = {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "verified": True,
        "address": {"street": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH"},
        "preferences": {"lang": "en-GB", "currency": "GBP", "newsletter": False},
        "tags": [f"tag-{i}" for i in range(20)],
        "history": [{"ts": 1700000000 + i * 3600, "event": "login", "ip": f"10.0.{i % 250}.{i}",
                     "agent": "Mozilla/5.0 (X11; Linux x86_64)"} for i in range(120)]}
orders = {"orders": [{"id": 9000000000 + i, "sku": f"SKU-{i:05d}", "qty": i % 5 + 1,
                      "price": round(9.99 + i * 1.25, 2), "currency": "GBP",
                      "status": "shipped" if i % 3 else "pending",
                      "note": "caf\u00e9 \"fragile\""} for i in range(100)]}
for name, doc in (("user/1", user), ("orders", orders)):
    data = json.dumps(doc, ensure_ascii=False).encode()
    while len(data) > 10240 and name == "user/1":
        doc["history"].pop(); data = json.dumps(doc, ensure_ascii=False).encode()
    while len(data) > 10240 and name == "orders":
        doc["orders"].pop(); data = json.dumps(doc, ensure_ascii=False).encode()
    open(f"{root}/{name}", "wb").write(data)
EOF
USER_BYTES=$(stat -c %s "$TMP/www/user/1")
ORDERS_BYTES=$(stat -c %s "$TMP/www/orders")

# --- nginx upstream (one worker process, CPU LOAD_CPU) ----------------------------------------
NPORT=$(free_port)
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  types { }
  default_type application/json;
  server {
    listen 127.0.0.1:$NPORT;
    root $TMP/www;
  }
}
EOF
taskset -c "$LOAD_CPU" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
NGINX_PID=$!

# --- ringway (one worker thread, CPU RW_CPU) --------------------------------------------------
RPORT=$(free_port)
cat >"$TMP/ringway.json" <<EOF
{"routes": [{"prefix": "/", "upstreams": ["http://127.0.0.1:$NPORT"]}],
 "aggregates": [{"endpoint": "/profile/{id}", "backends": [
   {"name": "user", "upstream": "http://127.0.0.1:$NPORT", "path": "/user/{id}", "group": "user"},
   {"name": "orders", "upstream": "http://127.0.0.1:$NPORT", "path": "/orders", "group": "orders"}]}]}
EOF
"$RINGWAY" -t --config "$TMP/ringway.json" >/dev/null
taskset -c "$RW_CPU" "$RINGWAY" --threads 1 --access-log off --listen "127.0.0.1:$RPORT" \
  --config "$TMP/ringway.json" 2>"$TMP/ringway.stderr" &
RW_PID=$!

for _ in $(seq 50); do
  curl -fs -o /dev/null "http://127.0.0.1:$NPORT/orders" &&
    curl -fs -o /dev/null "http://127.0.0.1:$RPORT/orders" && break
  sleep 0.1
done

# --- correctness check: the merged body holds both documents, unchanged ------------------------
curl -fsS -D "$TMP/agg.head" -o "$TMP/agg.json" "http://127.0.0.1:$RPORT/profile/1"
python3 - "$TMP" <<'EOF'
import json, sys
t = sys.argv[1]
merged = json.load(open(f"{t}/agg.json"))
assert merged == {"user": json.load(open(f"{t}/www/user/1")),
                  "orders": json.load(open(f"{t}/www/orders"))}, "merged body differs"
head = open(f"{t}/agg.head").read().lower()
assert "x-gateway-completed: true" in head, head
EOF
AGG_BYTES=$(stat -c %s "$TMP/agg.json")
echo "check ok: /user/1 $USER_BYTES B, /orders $ORDERS_BYTES B, /profile/1 merged $AGG_BYTES B"

# --- wrk scripts: both go through request() so wrk does the same Lua work per request ----------
cat >"$TMP/agg.lua" <<'EOF'
local req
function init(args) req = wrk.format("GET", "/profile/1") end
function request() return req end
EOF
# Alternates /user/1 and /orders. wrk keeps one request in flight per connection, so each call
# waits for the previous response on its connection, as a client calling one then the other.
# wrk's Lua API has no connection identity, so the toggle is per thread: the mix is exactly 50/50
# but a given connection's two consecutive calls are not guaranteed to be one of each.
cat >"$TMP/seq.lua" <<'EOF'
local reqs, i
function init(args)
  reqs = { wrk.format("GET", "/user/1"), wrk.format("GET", "/orders") }
  i = 0
end
function request()
  i = i + 1
  return reqs[(i % 2) + 1]
end
EOF

cpu_ticks() {  # utime+stime of every thread of pid $1, in clock ticks
  cat /proc/"$1"/task/*/stat | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t }'
}

run_wrk() {  # $1 = label, $2 = lua script, $3 = path; prints "rps ringway_ticks nginx_ticks ok"
  local out="$TMP/wrk.$1" r0 r1 n0 n1
  r0=$(cpu_ticks "$RW_PID"); n0=$(cpu_ticks "$NGINX_PID")
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$2" "http://127.0.0.1:$RPORT$3" >"$out"
  r1=$(cpu_ticks "$RW_PID"); n1=$(cpu_ticks "$NGINX_PID")
  local reqs secs ok=ok
  reqs=$(awk '/requests in/ { print $1 }' "$out")
  secs=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' "$out")
  grep -q 'Socket errors' "$out" && ok="INVALID(socket-errors)"
  grep -q 'Non-2xx' "$out" && ok="INVALID(non-2xx)"
  awk -v n="$reqs" -v s="$secs" -v r=$((r1 - r0)) -v g=$((n1 - n0)) -v ok="$ok" \
    'BEGIN { printf "%.1f %d %d %s\n", n / s, r, g, ok }'
  cp "$out" "$TMP/last.$1"
}

HZ=$(getconf CLK_TCK)
# short warm-up of both paths (pools filled, caches warm); not reported
DURATION_SAVE=$DURATION; DURATION=2
run_wrk warm "$TMP/agg.lua" /profile/1 >/dev/null
run_wrk warm "$TMP/seq.lua" / >/dev/null
DURATION=$DURATION_SAVE

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-6s %10s %10s %11s %11s %7s  %s\n' round mode "req/s" "units/s" "rw_us/unit" "ngx_us/unit" "rw_cpu%" status
: >"$TMP/results"
for round in $(seq "$ROUNDS"); do
  for mode in agg seq; do
    if [ "$mode" = agg ]; then
      read -r rps rt nt ok < <(run_wrk agg "$TMP/agg.lua" /profile/1); div=1
    else
      read -r rps rt nt ok < <(run_wrk seq "$TMP/seq.lua" /); div=2
    fi
    # a unit is one aggregate request, or one pair of sequential requests
    line=$(awk -v rps="$rps" -v d="$div" -v rt="$rt" -v nt="$nt" -v hz="$HZ" -v dur="$DURATION" \
      'BEGIN { u = rps / d; n = u * dur;
               printf "%.1f %.1f %.2f %.2f %.0f", rps, u, rt * 1e6 / hz / n, nt * 1e6 / hz / n,
                      100 * rt / hz / dur }')
    read -r rps units rwus ngus rwpct <<<"$line"
    printf '%-5s %-6s %10s %10s %11s %11s %7s  %s\n' "$round" "$mode" "$rps" "$units" "$rwus" "$ngus" "$rwpct" "$ok"
    echo "$mode $units $rwus $ngus $ok" >>"$TMP/results"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$TMP/results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(mode, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == mode)
bad = [r for r in rows if r[4] != "ok"]
a, s = med("agg", 1), med("seq", 1)
print(f"median aggregate req/s {a:.0f}  sequential pairs/s {s:.0f}  ratio {a / s:.2f}x")
print(f"median ringway CPU: {med('agg', 2):.1f} us/aggregate request vs {med('seq', 2):.1f} us/pair"
      f" ({med('agg', 2) / med('seq', 2):.2f}x)")
print(f"median nginx CPU:   {med('agg', 3):.1f} us/aggregate request vs {med('seq', 3):.1f} us/pair")
if bad:
    print(f"INVALID runs: {len(bad)} (socket errors or non-2xx; see status column)")
EOF
