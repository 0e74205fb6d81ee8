# Helpers shared by the benchmark scripts in bench/ (sourced, not run).

metric() { # metric URL NAME → summed value of every series of NAME (or NAME_total) on URL
	curl -fsS "$1" | awk -v m="$2" '
		{ n = $1; sub(/\{.*/, "", n); sub(/_total$/, "", n) }
		n == m || n"_total" == m { s += $2 } END { printf "%.0f\n", s }'
}

# jaeger_config FILE PORT writes Jaeger's all-in-one configuration (cmd/jaeger/internal/
# all-in-one.yaml) reduced to the OTLP receiver, the batch processor and the
# in-memory store, on loopback ports that do not collide with other
# collectors; max_traces is raised from 100,000 so that no run evicts.
jaeger_config() { # jaeger_config FILE PORT
	local JAEGER_PORT=$2
	cat >"$1" <<EOF
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $((JAEGER_PORT + 4))
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$((JAEGER_PORT + 2))
    grpc:
      endpoint: 127.0.0.1:$((JAEGER_PORT + 3))
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 1000000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$JAEGER_PORT
      grpc:
        endpoint: 127.0.0.1:$((JAEGER_PORT + 1))
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
}

