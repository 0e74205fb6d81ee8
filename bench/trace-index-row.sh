#!/usr/bin/env bash
# trace-index-row.sh measures what each part of a trace_index row costs
# PostgreSQL: it inserts ROWS rows of random trace ids into a fresh table of
# trace_index's shape (migrations/postgres/00008 and 00014) per variant, each
# variant once per round, and prints per variant the median time a row and
# the median of each round's ratio to the full row. Variants: the row as
# stored (full); services an empty object (emptyjson); services as json, not
# jsonb (json); without the first-start B-tree (no-first); primary key only
# (pk-only); the three B-trees without the primary key (no-pk).
#
#   POSTGRES_URL=postgres://… bench/trace-index-row.sh [ROUNDS] [ROWS]   (default 9, 200000)
#
# It works in a database of its own, created on POSTGRES_URL's server and
# dropped at the end.
set -Eeuo pipefail
trap 'echo "trace-index-row.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
: "${POSTGRES_URL:?set POSTGRES_URL to a server where databases can be created}"
ROUNDS=${1:-9} ROWS=${2:-200000}
db=tailscope_ti_row_$$
psql -qtA "$POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -qtA "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
url=$(sed -E "s#(postgres(ql)?://[^/]*/)[^?]*#\1$db#" <<<"$POSTGRES_URL")

psql -qtA "$url" >/dev/null <<SQL
CREATE UNLOGGED TABLE ti_src AS
SELECT decode(md5(g::text || 'a') || md5(g::text || 'b'), 'hex') AS trace_id,
       1700000000000000000 + g::bigint * 1000000 AS first_start_ns,
       1700000000000000000 + g::bigint * 1000000 + 50000000 AS last_start_ns,
       1700000000000000000 + g::bigint * 1000000 + 90000000 AS end_ns,
       (random() * 1e9)::bigint AS max_duration_ns,
       10::bigint AS span_count, 0::bigint AS error_count, 0::bigint AS root_rank,
       1700000000000000000 + g::bigint * 1000000 AS root_start_ns, 90000000::bigint AS root_duration_ns,
       decode(substr(md5(g::text || 'c'), 1, 16), 'hex') AS root_span_id,
       'feed-api'::text AS root_service, 'GET /v1/feed'::text AS root_name, 'acme'::text AS root_tenant,
       'v2'::text AS root_version,
       '{"feed-api": 90000000, "candidate-svc": 20000000, "feature-svc": 15000000, "profile-svc": 12000000}'::text AS services
FROM generate_series(1, $ROWS) g;
SQL

run() { # run VARIANT → milliseconds to insert the rows
	local v=$1 pk="trace_id bytea PRIMARY KEY" styp=jsonb svc="services::jsonb"
	local idx="CREATE INDEX ON ti (last_start_ns); CREATE INDEX ON ti (first_start_ns); CREATE INDEX ON ti (max_duration_ns);"
	case $v in
	emptyjson) svc="'{}'::jsonb" ;;
	json) styp=json svc="services::json" ;;
	no-first) idx="CREATE INDEX ON ti (last_start_ns); CREATE INDEX ON ti (max_duration_ns);" ;;
	pk-only) idx="" ;;
	no-pk) pk="trace_id bytea" ;;
	esac
	psql -qtA "$url" >/dev/null <<SQL
SET client_min_messages TO warning;
DROP TABLE IF EXISTS ti;
CREATE TABLE ti ($pk, first_start_ns bigint NOT NULL, last_start_ns bigint NOT NULL, end_ns bigint NOT NULL,
 max_duration_ns bigint NOT NULL, span_count bigint NOT NULL, error_count bigint NOT NULL, root_rank bigint NOT NULL,
 root_start_ns bigint NOT NULL, root_duration_ns bigint NOT NULL, root_span_id bytea NOT NULL,
 root_service text COLLATE "C" NOT NULL, root_name text COLLATE "C" NOT NULL, root_tenant text NOT NULL,
 root_version text NOT NULL, services $styp NOT NULL, rebuilt boolean NOT NULL DEFAULT false);
$idx
CHECKPOINT;
SQL
	psql -qtA "$url" <<SQL | sed -n 's/^Time: \([0-9.]*\).*/\1/p'
\timing on
INSERT INTO ti (trace_id, first_start_ns, last_start_ns, end_ns, max_duration_ns, span_count, error_count, root_rank,
  root_start_ns, root_duration_ns, root_span_id, root_service, root_name, root_tenant, root_version, services)
SELECT trace_id, first_start_ns, last_start_ns, end_ns, max_duration_ns, span_count, error_count, root_rank,
  root_start_ns, root_duration_ns, root_span_id, root_service, root_name, root_tenant, root_version, $svc FROM ti_src;
SQL
}

for ((r = 1; r <= ROUNDS; r++)); do
	for v in full emptyjson json no-first pk-only no-pk; do
		echo "$r $v $(run "$v")"
	done
done | awk -v rows="$ROWS" '
	{ t[$1, $2] = $3; vs[$2] = 1; if ($1 > n) n = $1 }
	function median(a, k,   i, j, x) {
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { x = a[j]; a[j] = a[j - 1]; a[j - 1] = x }
		return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		split("full emptyjson json no-first pk-only no-pk", order)
		for (o = 1; o <= 6; o++) {
			v = order[o]; k = 0
			for (r = 1; r <= n; r++) { ms[++k] = t[r, v]; q[k] = t[r, v] / t[r, "full"] }
			printf "%-10s %6.2f us a row, %.2f of the full row (%d rounds)\n", v, median(ms, k) * 1000 / rows, median(q, k), k
		}
	}'
