#!/usr/bin/env bash
# listings.sh stores the same spans in tailscope and, given a Jaeger v2
# binary, in Jaeger in memory, then times the listings both answer, in one
# run: the services list and a search by service and minimum duration
# (20 results), each REPEAT times after one untimed warm-up, tailscope with
# no analysis cache.
#
#   bench/listings.sh
#
# Environment:
#   TELEMETRYGEN  telemetrygen binary (as bench/single-exporter.sh)
#   POSTGRES_URL  postgres://… where a database can be created: tailscope
#                 stores into a fresh one; without it, SQLite
#   JAEGER        path to a Jaeger v2 binary; without it only tailscope runs
#   JAEGER_PORT   first of Jaeger's five loopback ports (default 24318)
#   SPANS         spans to store (default 1000000), in traces of 10
#   RATE          spans/s offered while loading (default 60000)
#   REPEAT        timed requests per listing (default 20)
#
# Needs curl, jq and (with POSTGRES_URL) psql.
#
# The spans are telemetrygen's (one service, one operation, 10 spans a
# trace, durations 2 ms): the shape of the listing, not of an application.
# Per listing it prints the server, the median, fastest and slowest time of
# a request (curl's time_total, loopback) and what it returned.
set -Eeuo pipefail
trap 'echo "listings.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

cd "$(dirname "$0")/.."
SPANS=${SPANS:-1000000}
RATE=${RATE:-60000}
REPEAT=${REPEAT:-20}
TG=${TELEMETRYGEN:-$(command -v telemetrygen || echo "$HOME/go/bin/telemetrygen")}
[ -x "$TG" ] || { echo "telemetrygen not found (set TELEMETRYGEN)" >&2; exit 2; }
JAEGER=${JAEGER:-}
[ -z "$JAEGER" ] || [ -x "$JAEGER" ] || { echo "JAEGER=$JAEGER is not an executable" >&2; exit 2; }
JAEGER_PORT=${JAEGER_PORT:-24318}
# shellcheck source=bench/lib.sh
. bench/lib.sh

work=$(mktemp -d)
pids=()
dbname=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$dbname" ] || psql -q "$POSTGRES_URL" -c "drop database if exists $dbname" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/tailscope" ./cmd/tailscope

if [ -n "${POSTGRES_URL:-}" ]; then
	dbname="bench_listings_$$"
	psql -q "$POSTGRES_URL" -c "create database $dbname" >/dev/null
	db=$(sed -E "s#/[^/?]*(\?|$)#/$dbname\1#" <<<"${POSTGRES_URL%/}")
	store=postgres
else
	db="sqlite:$work/tailscope.db"
	store=sqlite
fi
# --cache-ttl 1ns: every request computes its answer (no analysis cache).
"$work/tailscope" serve --http 127.0.0.1:0 --otlp-http 127.0.0.1:0 --otlp-grpc 127.0.0.1:0 \
	--wal-dir "$work/wal" --database-url "$db" --cache-ttl 1ns >"$work/out" 2>"$work/log" &
pids+=($!)
until grep -q 'OTLP http' "$work/out" 2>/dev/null; do sleep 0.1; done
ts_ui=$(grep -o 'open http://[^ ]*' "$work/out" | cut -d' ' -f2)
ts_otlp=$(grep -o 'OTLP http [^,]*' "$work/out" | cut -d' ' -f3)

if [ -n "$JAEGER" ]; then
	jaeger_config "$work/jaeger.yaml" "$JAEGER_PORT"
	"$JAEGER" --config "$work/jaeger.yaml" >"$work/jout" 2>"$work/jlog" &
	pids+=($!)
	j_otlp=127.0.0.1:$JAEGER_PORT j_ui=http://127.0.0.1:$((JAEGER_PORT + 2)) j_metrics=http://127.0.0.1:$((JAEGER_PORT + 4))/metrics
	until curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{}' "http://$j_otlp/v1/traces" 2>/dev/null; do sleep 0.1; done
fi

load() { # load HOST:PORT → SPANS spans through one exporter, as single-exporter.sh
	local workers=$(((RATE + 499) / 500))
	OTEL_BSP_MAX_QUEUE_SIZE=10000000 "$TG" traces --otlp-http --otlp-insecure --otlp-endpoint "$1" \
		--workers "$workers" --rate "$((RATE / workers))" --child-spans 9 --span-duration 2ms --batch-size 100 \
		--traces "$((SPANS / 10 / workers))" >"$work/tg.log" 2>&1
}
t0=$(date +%s)
load "$ts_otlp"
until [ "$(metric "$ts_ui/metrics" tailscope_ingest_wal_unapplied_bytes)" = 0 ]; do sleep 0.2; done
rss() { awk '/^VmRSS/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$1/status"; }
echo "tailscope ($store): $(metric "$ts_ui/metrics" tailscope_ingest_spans_accepted_total) spans stored in $(($(date +%s) - t0)) s, resident $(rss "${pids[0]}")"
if [ -n "$JAEGER" ]; then
	t0=$(date +%s)
	load "$j_otlp"
	until a=$(metric "$j_metrics" otelcol_receiver_accepted_spans) && [ "$a" = "$(metric "$j_metrics" otelcol_exporter_sent_spans)" ]; do sleep 0.2; done
	echo "jaeger (memory): $a spans stored in $(($(date +%s) - t0)) s, resident $(rss "${pids[1]}")"
fi

# timed NAME URL COUNT_EXPR: one warm-up, then REPEAT timed requests;
# COUNT_EXPR is a jq expression for what the answer holds.
timed() {
	local name=$1 url=$2 expr=$3 t n
	n=$(curl -fsS "$url" | jq "$expr")
	for ((i = 0; i < REPEAT; i++)); do
		curl -fsS -o /dev/null -w '%{time_total}\n' "$url"
	done | sort -n | awk -v name="$name" -v n="$n" '
		{ t[NR] = $1 * 1000 }
		END { printf "%-44s median %8.2f ms   fastest %8.2f   slowest %8.2f   (%s)\n", name, t[int((NR + 1) / 2)], t[1], t[NR], n }'
}
echo
echo "$REPEAT requests each, after one warm-up:"
timed "tailscope: services (/api/v1/services)" "$ts_ui/api/v1/services?from=now-1h" '.services | length | "\(.) services"'
timed "tailscope: search service, ≥ 1 ms, 20" "$ts_ui/api/v1/traces?service=telemetrygen&min_ms=1&limit=20&from=now-1h" '.traces | length | "\(.) traces"'
if [ -n "$JAEGER" ]; then
	timed "jaeger: services (/api/services)" "$j_ui/api/services" '.data | length | "\(.) services"'
	timed "jaeger: search service, ≥ 1 ms, 20" "$j_ui/api/traces?service=telemetrygen&minDuration=1ms&limit=20&lookback=1h" '.data | length | "\(.) traces"'
fi
