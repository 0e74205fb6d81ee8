-- Spans keyed by time first. The unique index spans_trace (trace_id,
-- span_id, start_ns) put every span on a random page of a B-tree as large as
-- the table, so a commit dirtied up to one index page per span, each written
-- to the WAL and again by the checkpoint (WAL writes were 14% of ingest
-- CPU). The same uniqueness ordered (start_ns, trace_id, span_id) appends,
-- and doubles as the time index spans_start was. Ingest
-- (BenchmarkIngestE2E) went from 33,000-40,000 to 40,000-48,000 spans/s.
--
-- A trace is then found through trace_buckets: one row per trace and
-- ~1.07 s bucket (start_ns >> 30) in which it has spans, holding the first
-- and last start times of its spans there; one random insert per trace
-- instead of per span. Reading a trace scans the index between those times
-- (sqlcommon.SQLiteTraceSpans), the bucket bounding how far that can be.

-- +goose Up
CREATE TABLE trace_buckets (
    trace_id BLOB    NOT NULL,
    bucket   INTEGER NOT NULL,
    min_ns   INTEGER NOT NULL,
    max_ns   INTEGER NOT NULL,
    PRIMARY KEY (trace_id, bucket)
) WITHOUT ROWID, STRICT;
-- Retention deletes buckets by age.
CREATE INDEX trace_buckets_bucket ON trace_buckets (bucket);
INSERT INTO trace_buckets (trace_id, bucket, min_ns, max_ns)
    SELECT trace_id, start_ns >> 30, min(start_ns), max(start_ns) FROM spans GROUP BY 1, 2;
CREATE UNIQUE INDEX spans_start_trace ON spans (start_ns, trace_id, span_id);
DROP INDEX spans_trace;
DROP INDEX spans_start;

-- +goose Down
CREATE UNIQUE INDEX spans_trace ON spans (trace_id, span_id, start_ns);
CREATE INDEX spans_start ON spans (start_ns);
DROP INDEX spans_start_trace;
DROP TABLE trace_buckets;
