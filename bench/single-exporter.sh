#!/usr/bin/env bash
# single-exporter.sh drives tailscope — and, given a Jaeger v2 binary, Jaeger
# in memory side by side — with telemetrygen in the shape most clients send:
# one OpenTelemetry SDK exporter, one request in flight, 100-span batches, at
# several offered rates, and counts what each stored.
#
#   bench/single-exporter.sh [RATES...]        (default: 20000 50000 100000)
#
# Environment:
#   TELEMETRYGEN  telemetrygen binary (default: telemetrygen on PATH or ~/go/bin;
#                 go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest)
#   POSTGRES_URL  postgres://… of a server where databases can be created; when
#                 set, PostgreSQL runs too (a fresh database per run)
#   JAEGER        path to a Jaeger v2 binary (go build ./cmd/jaeger in its
#                 repository); when set, Jaeger with in-memory storage runs in
#                 the same loop, on loopback ports JAEGER_PORT..JAEGER_PORT+4
#                 (default 24318), and a summary compares every setup with it
#   DURATION      seconds of load per run (default 10)
#   REPEAT        rounds over all rates and setups (default 1); each round
#                 rotates the order of the setups so none always runs first
#   VARIANTS      which setups to run (default: "sqlite sqlite-direct" plus
#                 "postgres postgres-wal" with POSTGRES_URL, "jaeger" first
#                 with JAEGER)
#   RAW           file the per-run rows are appended to (default: none)
#   SERVER_ARGS   more flags for every tailscope server (word-split), e.g.
#                 "--wal-load-delay 200ms"
#   PPROF_DIR     when set, a CPU profile of tailscope over the load of each
#                 of its runs is saved there (/debug/pprof/profile), as
#                 SETUP-RATE-ROUND.pprof; profiling costs a little CPU
#
# Per run it prints: setup, offered spans/s, spans telemetrygen generated, spans
# acknowledged (tailscope: 2xx, durable; Jaeger: accepted by its OTLP
# receiver) and stored, stored over offered and over generated (telemetrygen
# falls short of high rates on a busy machine: what it did not generate was
# never offered), stored/s — stored over the time from the start until the
# last span is stored (the SDK's queue is raised so that a server falling
# behind shows as a longer drain, not as drops) — and CPU per stored span
# (user+system µs) of the server process, of its database (PostgreSQL: the
# backends serving the run's database, read from /proc; the server's shared
# background processes — WAL writer, checkpointer — are not counted) and both,
# and tailscope's mean write-ahead log fsync (what each request waits for).
#
# What counts as stored: tailscope — rows in the spans table once its log is
# applied; Jaeger — otelcol_exporter_sent_spans of its jaeger_storage_exporter,
# spans the in-memory store accepted (its receiver's accepted count minus
# what is still in the batch processor; the script waits until both agree).
set -Eeuo pipefail
# A failing command ends the script (set -e); say which, or a long run just stops.
trap 'echo "single-exporter.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

cd "$(dirname "$0")/.."
RATES=("${@:-20000 50000 100000}")
read -r -a RATES <<<"${RATES[*]}"
DURATION=${DURATION:-10}
REPEAT=${REPEAT:-1}
TG=${TELEMETRYGEN:-$(command -v telemetrygen || echo "$HOME/go/bin/telemetrygen")}
[ -x "$TG" ] || { echo "telemetrygen not found (set TELEMETRYGEN)" >&2; exit 2; }
JAEGER=${JAEGER:-}
[ -z "$JAEGER" ] || [ -x "$JAEGER" ] || { echo "JAEGER=$JAEGER is not an executable" >&2; exit 2; }
JAEGER_PORT=${JAEGER_PORT:-24318}
VARIANTS=${VARIANTS:-"${JAEGER:+jaeger }sqlite sqlite-direct${POSTGRES_URL:+ postgres postgres-wal}"}
read -r -a VARIANTS <<<"$VARIANTS"
HZ=$(getconf CLK_TCK)
# shellcheck source=bench/lib.sh
. bench/lib.sh

work=$(mktemp -d)
trap 'kill "${srv_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tailscope" ./cmd/tailscope

ticks() { # ticks PID… → user+system clock ticks of the live processes among PIDs
	local t=0 p s
	for p in "$@"; do
		s=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && t=$((t + s))
	done
	echo "$t"
}
pg_backends() { # pg_backends DB → pids of the PostgreSQL backends connected to database DB
	psql -qtA "$POSTGRES_URL" -c "select pid from pg_stat_activity where datname = '$1'"
}

# start VARIANT RATE ROUND starts the server of one run and sets srv_pid, otlp
# (host:port of its OTLP/HTTP receiver), metrics (URL), db and dbname. Every
# run gets its own database and log directory (under $work/run, removed
# after the run): a reused log would be replayed into the next run.
start() {
	local v=$1 rate=$2 round=$3 args=()
	db= dbname=
	rm -rf "$work/run" && mkdir "$work/run"
	case $v in
	jaeger)
		jaeger_config "$work/jaeger.yaml" "$JAEGER_PORT"
		"$JAEGER" --config "$work/jaeger.yaml" >"$work/out" 2>"$work/log" &
		srv_pid=$!
		otlp=127.0.0.1:$JAEGER_PORT metrics=http://127.0.0.1:$((JAEGER_PORT + 4))/metrics
		until curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{}' "http://$otlp/v1/traces" 2>/dev/null; do
			kill -0 "$srv_pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
			sleep 0.1
		done
		return
		;;
	sqlite) db="sqlite:$work/run/$v.db" ;;
	sqlite-direct) db="sqlite:$work/run/$v.db" args=(--wal-dir off) ;;
	postgres | postgres-wal)
		dbname="bench_${v//-/_}_${rate}_${round}_$$"
		psql -q "$POSTGRES_URL" -c "create database $dbname" >/dev/null
		db=$(sed -E "s#/[^/?]*(\?|$)#/$dbname\1#" <<<"${POSTGRES_URL%/}")
		[ "$v" = postgres-wal ] && args=(--wal-dir "$work/run/wal")
		;;
	*) echo "unknown variant $v" >&2; exit 2 ;;
	esac
	"$work/tailscope" serve --http 127.0.0.1:0 --otlp-http 127.0.0.1:0 --otlp-grpc 127.0.0.1:0 \
		--database-url "$db" "${args[@]}" ${SERVER_ARGS:-} >"$work/out" 2>"$work/log" &
	srv_pid=$!
	until grep -q 'OTLP http' "$work/out" 2>/dev/null; do sleep 0.1; done
	metrics=$(grep -o 'open http://[^ ]*' "$work/out" | cut -d' ' -f2)/metrics
	otlp=$(grep -o 'OTLP http [^,]*' "$work/out" | cut -d' ' -f3)
}

# drained VARIANT → exit 0 once everything acknowledged is stored.
drained() {
	case $1 in
	jaeger)
		local a s
		a=$(metric "$metrics" otelcol_receiver_accepted_spans)
		s=$(metric "$metrics" otelcol_exporter_sent_spans)
		[ "$a" = "$s" ] && [ "$a" = "$(metric "$metrics" otelcol_receiver_accepted_spans)" ]
		;;
	*) [ "$(metric "$metrics" tailscope_ingest_wal_unapplied_bytes)" = 0 ] ;;
	esac
}

# counts VARIANT → "acknowledged stored"
counts() {
	case $1 in
	jaeger)
		echo "$(metric "$metrics" otelcol_receiver_accepted_spans) $(metric "$metrics" otelcol_exporter_sent_spans)"
		;;
	sqlite*) echo "$(metric "$metrics" tailscope_ingest_spans_accepted_total) $(sqlite3 "${db#sqlite:}" 'select count(*) from spans')" ;;
	*) echo "$(metric "$metrics" tailscope_ingest_spans_accepted_total) $(psql -qtA "$db" -c 'select count(*) from spans')" ;;
	esac
}

run() { # run ROUND VARIANT RATE → one row
	local round=$1 v=$2 rate=$3 workers t0 elapsed sent acked stored
	start "$v" "$rate" "$round"
	local -A pg0=()
	local p srv0 srv1 db_ticks=0 prof=
	if [ -n "$dbname" ]; then
		for p in $(pg_backends "$dbname"); do pg0[$p]=$(ticks "$p"); done
	fi
	srv0=$(ticks "$srv_pid")
	# telemetrygen's workers are generator goroutines sharing one SDK
	# BatchSpanProcessor, so one exporter with one request in flight
	# whatever their number. Its rate limiter (burst 1, per span) falls
	# short on a busy machine below ~2 ms between spans, hence 500
	# spans/s per worker. 10 spans per trace, 100 per batch.
	workers=$(((rate + 499) / 500))
	t0=$(date +%s.%N)
	if [ -n "${PPROF_DIR:-}" ] && [ "$v" != jaeger ]; then
		curl -fsS -o "$PPROF_DIR/$v-$rate-$round.pprof" "${metrics%/metrics}/debug/pprof/profile?seconds=$DURATION" &
		prof=$!
	fi
	OTEL_BSP_MAX_QUEUE_SIZE=10000000 "$TG" traces --otlp-http --otlp-insecure --otlp-endpoint "$otlp" \
		--workers "$workers" --rate "$((rate / workers))" --child-spans 9 --span-duration 0s --batch-size 100 \
		--duration "${DURATION}s" --allow-export-failures >"$work/tg.log" 2>&1 || true
	until drained "$v"; do sleep 0.1; done
	elapsed=$(echo "$(date +%s.%N) - $t0" | bc -l)
	srv1=$(ticks "$srv_pid")
	[ -z "$prof" ] || wait "$prof" || true
	if [ -n "$dbname" ]; then
		# Backends that connected during the run count whole; one that
		# disconnected before the end is missed (the pool keeps them).
		for p in $(pg_backends "$dbname"); do
			db_ticks=$((db_ticks + $(ticks "$p") - ${pg0[$p]:-0}))
		done
	fi
	# A telemetrygen that logged no progress (it failed) counts 0, not an
	# exit of the whole script under pipefail; its log is shown instead.
	sent=$(awk '{ while (match($0, /"traces": [0-9]+/)) { s += substr($0, RSTART + 10, RLENGTH - 10) * 10; $0 = substr($0, RSTART + RLENGTH) } } END { print s + 0 }' "$work/tg.log")
	[ "$sent" != 0 ] || tail -n 5 "$work/tg.log" >&2
	read -r acked stored <<<"$(counts "$v")"
	local fsync_ms=-
	if [ "$v" != jaeger ]; then
		fsync_ms=$(curl -fsS "$metrics" | awk '
			$1 == "tailscope_ingest_wal_fsync_seconds_sum" { s = $2 }
			$1 == "tailscope_ingest_wal_fsync_seconds_count" { n = $2 }
			END { if (n > 0) printf "%.2f", s * 1000 / n; else print "-" }')
	fi
	kill "$srv_pid"; wait "$srv_pid" 2>/dev/null || true; srv_pid=
	[ -z "$dbname" ] || psql -q "$POSTGRES_URL" -c "drop database $dbname" >/dev/null
	rm -rf "$work/run"
	local srv_us=$(((srv1 - srv0) * 1000000 / HZ)) db_us=$((db_ticks * 1000000 / HZ))
	printf '%5d %-14s %9d %9d %9d %9d %8.2f %8.2f %9.0f %8.1f %8.1f %8.1f %8s\n' "$round" "$v" "$rate" "$sent" "$acked" "$stored" \
		"$(echo "$stored / ($rate * $DURATION)" | bc -l)" "$(echo "$stored / ($sent + 1)" | bc -l)" \
		"$(echo "$stored / $elapsed" | bc -l)" \
		"$(echo "$srv_us / ($stored + 1)" | bc -l)" "$(echo "$db_us / ($stored + 1)" | bc -l)" \
		"$(echo "($srv_us + $db_us) / ($stored + 1)" | bc -l)" "$fsync_ms"
}

# summary reads the rows and compares every setup with Jaeger run in the same
# round at the same rate: the median over rounds of stored/s(setup) /
# stored/s(Jaeger) and of CPU per span (server + database) over Jaeger's.
summary() {
	echo
	echo "against Jaeger in memory, pairwise (same round and rate), median over rounds:"
	printf '%9s %-14s %6s %12s %12s %12s %12s\n' offered setup rounds stored/s jaeger/s ratio cpu-ratio
	awk '
		NR == FNR { if ($2 == "jaeger") { js[$1" "$3] = $9; jc[$1" "$3] = $12 }; next }
		$2 != "jaeger" && ($1" "$3) in js { k = $1" "$3; print $3, $2, $9, js[k], $9 / js[k], $12 / jc[k] }
	' "$1" "$1" | sort -k1,1n -k2,2 | awk '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		}
		function flush() {
			if (n) printf "%9d %-14s %6d %12.0f %12.0f %12.2f %12.2f\n", rate, setup, n, median(s, n), median(j, n), median(r, n), median(c, n)
			n = 0; delete s; delete j; delete r; delete c
		}
		$1 != rate || $2 != setup { flush(); rate = $1; setup = $2 }
		{ n++; s[n] = $3; j[n] = $4; r[n] = $5; c[n] = $6 }
		END { flush() }
	'
}

rows=$work/rows
printf '%5s %-14s %9s %9s %9s %9s %8s %8s %9s %8s %8s %8s %8s\n' round setup offered sent acked stored /offered /sent stored/s srv-us db-us cpu-us fsync-ms
for ((round = 1; round <= REPEAT; round++)); do
	for rate in "${RATES[@]}"; do
		n=${#VARIANTS[@]}
		for ((i = 0; i < n; i++)); do
			v=${VARIANTS[(i + round - 1) % n]}
			run "$round" "$v" "$rate" >"$work/row"
			cat "$work/row" >>"$rows"
			[ -z "${RAW:-}" ] || cat "$work/row" >>"$RAW"
			cat "$work/row"
		done
	done
done
[ -z "$JAEGER" ] || summary "$rows"
