-- The trace index (issue 18, part 2): one row per trace, merged at ingest
-- from every batch that carries spans of the trace, whatever their order
-- (sqlcommon/traceindex.go says how each column merges). Trace search walks
-- it in the order it sorts by and reads spans only for the candidates it
-- keeps; search results are summarised from it instead of from the traces'
-- spans. services is a JSON object: service -> its longest span.
-- A rowid table with a unique index on trace_id rather than WITHOUT ROWID:
-- new rows append to the table and only the narrow index takes a random
-- page per trace (a table keyed by random trace ids dirtied a page of
-- ~20 rows per trace, each written to the WAL).

-- +goose Up
CREATE TABLE trace_index (
    trace_id         BLOB    NOT NULL,
    first_start_ns   INTEGER NOT NULL,
    last_start_ns    INTEGER NOT NULL,
    end_ns           INTEGER NOT NULL,
    max_duration_ns  INTEGER NOT NULL,
    span_count       INTEGER NOT NULL,
    error_count      INTEGER NOT NULL,
    root_rank        INTEGER NOT NULL, -- 0: a root span; 1: the earliest span, no root yet
    root_start_ns    INTEGER NOT NULL,
    root_duration_ns INTEGER NOT NULL,
    root_span_id     BLOB    NOT NULL,
    root_service     TEXT    NOT NULL,
    root_name        TEXT    NOT NULL,
    root_tenant      TEXT    NOT NULL,
    root_version     TEXT    NOT NULL,
    services         TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX trace_index_trace ON trace_index (trace_id);
-- The walks of the search orders: newest, oldest (and retention), slowest.
CREATE INDEX trace_index_last_start ON trace_index (last_start_ns);
CREATE INDEX trace_index_first_start ON trace_index (first_start_ns);
CREATE INDEX trace_index_max_duration ON trace_index (max_duration_ns);

-- Backfill from the spans stored before this migration.
WITH agg AS (
    SELECT trace_id, min(start_ns) AS first_start, max(start_ns) AS last_start, max(start_ns + duration_ns) AS end_ns,
        max(duration_ns) AS max_dur, count(*) AS n, sum(status_code = 2) AS errs
    FROM spans GROUP BY trace_id
), root AS (
    SELECT * FROM (SELECT trace_id, (parent_span_id IS NOT NULL) AS rank, start_ns, duration_ns, span_id, service, name,
            tenant, version,
            row_number() OVER (PARTITION BY trace_id ORDER BY parent_span_id IS NOT NULL, start_ns, span_id) AS rn
        FROM spans) WHERE rn = 1
), sv AS (
    SELECT trace_id, json_group_object(service, d) AS services
    FROM (SELECT trace_id, service, max(duration_ns) AS d FROM spans GROUP BY trace_id, service) GROUP BY trace_id
)
INSERT INTO trace_index (trace_id, first_start_ns, last_start_ns, end_ns, max_duration_ns, span_count, error_count,
    root_rank, root_start_ns, root_duration_ns, root_span_id, root_service, root_name, root_tenant, root_version, services)
SELECT agg.trace_id, first_start, last_start, end_ns, max_dur, n, errs, rank, start_ns, duration_ns, span_id, service, name,
    tenant, version, services
FROM agg JOIN root ON root.trace_id = agg.trace_id JOIN sv ON sv.trace_id = agg.trace_id;

-- +goose Down
DROP TABLE trace_index;
