#!/usr/bin/env bash
# single-exporter.sh drives tailscope with telemetrygen in the shape most
# clients send: one OpenTelemetry SDK exporter, one request in flight,
# 100-span batches, at several offered rates, and counts what was stored.
#
#   bench/single-exporter.sh [RATES...]        (default: 20000 50000 100000)
#
# Environment:
#   TELEMETRYGEN  telemetrygen binary (default: telemetrygen on PATH or ~/go/bin;
#                 go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest)
#   POSTGRES_URL  postgres://… of a server where databases can be created; when
#                 set, PostgreSQL runs too (a fresh database per run)
#   DURATION      seconds of load per run (default 10)
#   VARIANTS      which setups to run (default: "sqlite sqlite-direct" plus
#                 "postgres postgres-wal" with POSTGRES_URL)
#
# Per run it prints: setup, offered spans/s, spans telemetrygen generated, spans
# acknowledged (2xx: durable) and loaded, stored over offered and over
# generated (telemetrygen falls short of high rates on a busy machine: what
# it did not generate was never offered), stored/s — stored over the time
# from the start until the last span is loaded (the SDK's queue is raised so
# that a server falling behind shows as a longer drain, not as drops) —
# and tailscope's CPU
# per stored span (user+system µs; PostgreSQL's own CPU is not counted).
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=("${@:-20000 50000 100000}")
read -r -a RATES <<<"${RATES[*]}"
DURATION=${DURATION:-10}
TG=${TELEMETRYGEN:-$(command -v telemetrygen || echo "$HOME/go/bin/telemetrygen")}
[ -x "$TG" ] || { echo "telemetrygen not found (set TELEMETRYGEN)" >&2; exit 2; }
VARIANTS=${VARIANTS:-"sqlite sqlite-direct${POSTGRES_URL:+ postgres postgres-wal}"}

work=$(mktemp -d)
trap 'kill "${ts_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tailscope" ./cmd/tailscope

metric() { # metric NAME → summed value of every series of NAME on /metrics
	curl -fsS "$api/metrics" | awk -v m="$1" '$1 == m || index($1, m"{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$ts_pid/stat"; }

printf '%-14s %9s %9s %9s %9s %8s %8s %9s %12s\n' setup offered sent acked stored /offered /sent stored/s cpu-us/span
for rate in "${RATES[@]}"; do
	for v in $VARIANTS; do
		args=()
		case $v in
		sqlite) db="sqlite:$work/$v-$rate.db" ;;
		sqlite-direct) db="sqlite:$work/$v-$rate.db" args=(--wal-dir off) ;;
		postgres | postgres-wal)
			name="bench_${v//-/_}_${rate}_$$"
			psql -q "$POSTGRES_URL" -c "create database $name" >/dev/null
			db=$(sed -E "s#/[^/?]*(\?|$)#/$name\1#" <<<"${POSTGRES_URL%/}")
			[ "$v" = postgres-wal ] && args=(--wal-dir "$work/$v-$rate.wal")
			;;
		*) echo "unknown variant $v" >&2; exit 2 ;;
		esac
		"$work/tailscope" serve --http 127.0.0.1:0 --otlp-http 127.0.0.1:0 --otlp-grpc 127.0.0.1:0 \
			--database-url "$db" "${args[@]}" >"$work/out" 2>"$work/log" &
		ts_pid=$!
		until grep -q 'OTLP http' "$work/out" 2>/dev/null; do sleep 0.1; done
		api=$(grep -o 'open http://[^ ]*' "$work/out" | cut -d' ' -f2)
		otlp=$(grep -o 'OTLP http [^,]*' "$work/out" | cut -d' ' -f3)
		cpu0=$(cpu_ticks)
		# telemetrygen's workers are generator goroutines sharing one SDK
		# BatchSpanProcessor, so one exporter with one request in flight
		# whatever their number. Its rate limiter (burst 1, per span) falls
		# short on a busy machine below ~2 ms between spans, hence 500
		# spans/s per worker. 10 spans per trace, 100 per batch.
		workers=$(( (rate + 499) / 500 ))
		t0=$(date +%s.%N)
		OTEL_BSP_MAX_QUEUE_SIZE=10000000 "$TG" traces --otlp-http --otlp-insecure --otlp-endpoint "$otlp" \
			--workers "$workers" --rate "$((rate / workers))" --child-spans 9 --span-duration 0s --batch-size 100 \
			--duration "${DURATION}s" --allow-export-failures >"$work/tg.log" 2>&1 || true
		while [ "$(metric tailscope_ingest_wal_unapplied_bytes)" != 0 ]; do sleep 0.1; done
		elapsed=$(echo "$(date +%s.%N) - $t0" | bc -l)
		cpu1=$(cpu_ticks)
		sent=$(grep -o '"traces": [0-9]*' "$work/tg.log" | awk '{ s += $2 * 10 } END { print s + 0 }')
		acked=$(metric tailscope_ingest_spans_accepted_total)
		case $v in
		sqlite*) stored=$(sqlite3 "${db#sqlite:}" 'select count(*) from spans') ;;
		*) stored=$(psql -qtA "$db" -c 'select count(*) from spans') ;;
		esac
		hz=$(getconf CLK_TCK)
		cpu_us=$(( (cpu1 - cpu0) * 1000000 / hz ))
		printf '%-14s %9d %9d %9d %9d %8.2f %8.2f %9.0f %12.1f\n' "$v" "$rate" "$sent" "$acked" "$stored" \
			"$(echo "$stored / ($rate * $DURATION)" | bc -l)" "$(echo "$stored / ($sent + 1)" | bc -l)" \
			"$(echo "$stored / $elapsed" | bc -l)" \
			"$(echo "$cpu_us / ($stored + 1)" | bc -l)"
		kill "$ts_pid"; wait "$ts_pid" 2>/dev/null || true; ts_pid=
		case $v in postgres*) psql -q "$POSTGRES_URL" -c "drop database $name" >/dev/null ;; esac
	done
done
