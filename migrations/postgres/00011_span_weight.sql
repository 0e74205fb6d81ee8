-- Span weights (docs/DESIGN.md "Span row", issue 18): weight is the span's
-- adjusted count, how many spans of the unsampled stream it stands for
-- (ingest/otlpconv: the tracestate's sampling threshold, else a
-- SampleRate attribute). Rows written before read as 1, what they were
-- counted as: a constant default is stored in the catalogue, so adding the
-- column rewrites no partition.
--
-- spans_service_name_start gains weight so Samples (latency from spans)
-- stays an index-only scan: with table lookups it cost ~10x. Rebuilding
-- it reads every stored span once, at migration time; new writes pay one
-- more 8-byte column in the index.

-- +goose Up
ALTER TABLE spans ADD COLUMN weight double precision NOT NULL DEFAULT 1;
DROP INDEX spans_service_name_start;
CREATE INDEX spans_service_name_start ON spans (service, name, start_ns)
    INCLUDE (duration_ns, kind, parent_span_id, status_code, tenant, version, host, payload_bytes, trace_id, span_id, weight);

-- +goose Down
DROP INDEX spans_service_name_start;
CREATE INDEX spans_service_name_start ON spans (service, name, start_ns)
    INCLUDE (duration_ns, kind, parent_span_id, status_code, tenant, version, host, payload_bytes, trace_id, span_id);
ALTER TABLE spans DROP COLUMN weight;
