#!/usr/bin/env bash
# alternate.sh compares two Go test binaries of one package on a noisy
# machine: it runs them back to back for ROUNDS rounds, the order
# alternating, and prints per benchmark the median over rounds of new ÷ old
# for one reported metric, its quartiles, how many rounds new was higher, and
# each binary's best round. A ratio within a round cancels most of what the
# machine's neighbours do to both; benchstat over all runs does not.
#
#   bench/alternate.sh OLD.test NEW.test ROUNDS BENCH [BENCHTIME] [METRIC]
#
# e.g. (go test -c -o /tmp/old.test ./ingest/otlpconv at the parent commit):
#   bench/alternate.sh /tmp/old.test /tmp/new.test 20 'Decode/protobuf-direct' 0.5s spans/cpu-s
#
# Benchmarks run with -test.cpu 1. For a metric where lower is better
# (ns/op, cpu-us/span) read the ratio the other way round.
set -Eeuo pipefail
[ $# -ge 4 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
old=$1 new=$2 rounds=$3 bench=$4 benchtime=${5:-1s} metric=${6:-ns/op}

run() { # run BINARY ROUND SIDE → "SIDE ROUND NAME VALUE" per benchmark
	"$1" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime" -test.cpu 1 |
		awk -v m="$metric" -v r="$2" -v side="$3" '
			/^Benchmark/ { for (i = 3; i <= NF; i++) if ($i == m) print side, r, $1, $(i - 1) }'
}

for ((r = 0; r < rounds; r++)); do
	if ((r % 2 == 0)); then
		run "$old" "$r" old
		run "$new" "$r" new
	else
		run "$new" "$r" new
		run "$old" "$r" old
	fi
done | awk -v metric="$metric" '
	{ v[$1, $2, $3] = $4; names[$3] = 1; if ($2 + 1 > n) n = $2 + 1 }
	function sort(a, k,   i, j, t) { for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t } }
	END {
		for (name in names) {
			k = 0; wins = 0; bo = 0; bn = 0
			for (r = 0; r < n; r++) {
				if (!(("old", r, name) in v) || !(("new", r, name) in v)) continue
				o = v["old", r, name]; w = v["new", r, name]
				q[++k] = w / o
				if (w > o) wins++
				if (o > bo) bo = o
				if (w > bn) bn = w
			}
			if (k == 0) continue
			sort(q, k)
			med = (k % 2) ? q[(k + 1) / 2] : (q[k / 2] + q[k / 2 + 1]) / 2
			printf "%s %s: new/old median %.3f (quartiles %.3f-%.3f, %d rounds), new higher in %d; best round old %.0f, new %.0f\n",
				name, metric, med, q[int((k + 3) / 4)], q[int((3 * k + 3) / 4)], k, wins, bo, bn
		}
	}'
