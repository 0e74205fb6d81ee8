-- The trace index (issue 18, part 2): one row per trace, merged at ingest
-- from every batch that carries spans of the trace, whatever their order
-- (sqlcommon/traceindex.go says how each column merges). Trace search walks
-- it in the order it sorts by and reads spans only for the candidates it
-- keeps; search results are summarised from it instead of from a scan of
-- the traces' spans.
--
-- Not partitioned: a trace can span midnight, and the table is ~10x smaller
-- than spans (one row per trace). Retention deletes rows whose spans are all
-- gone and recomputes those that straddle the cut (DeleteBefore).
-- services is jsonb (service -> its longest span) so searches read one key.

-- +goose Up
CREATE TABLE trace_index (
    trace_id         bytea  PRIMARY KEY,
    first_start_ns   bigint NOT NULL,
    last_start_ns    bigint NOT NULL,
    end_ns           bigint NOT NULL,
    max_duration_ns  bigint NOT NULL,
    span_count       bigint NOT NULL,
    error_count      bigint NOT NULL,
    root_rank        bigint NOT NULL,  -- 0: a root span; 1: the earliest span, no root yet
    root_start_ns    bigint NOT NULL,
    root_duration_ns bigint NOT NULL,
    root_span_id     bytea  NOT NULL,
    root_service     text   COLLATE "C" NOT NULL,
    root_name        text   COLLATE "C" NOT NULL,
    root_tenant      text   NOT NULL,
    root_version     text   NOT NULL,
    services         jsonb  NOT NULL
);
-- The walks of the search orders: newest, oldest (and retention), slowest.
CREATE INDEX trace_index_last_start ON trace_index (last_start_ns);
CREATE INDEX trace_index_first_start ON trace_index (first_start_ns);
CREATE INDEX trace_index_max_duration ON trace_index (max_duration_ns);

-- Backfill from the spans stored before this migration.
INSERT INTO trace_index (trace_id, first_start_ns, last_start_ns, end_ns, max_duration_ns, span_count, error_count,
    root_rank, root_start_ns, root_duration_ns, root_span_id, root_service, root_name, root_tenant, root_version, services)
SELECT a.trace_id, a.first_start, a.last_start, a.end_ns, a.max_dur, a.n, a.errs,
    r.rank, r.start_ns, r.duration_ns, r.span_id, r.service, r.name, r.tenant, r.version, sv.services
FROM (SELECT trace_id, min(start_ns) AS first_start, max(start_ns) AS last_start, max(start_ns + duration_ns) AS end_ns,
        max(duration_ns) AS max_dur, count(*) AS n, count(*) FILTER (WHERE status_code = 2) AS errs
      FROM spans GROUP BY trace_id) a
JOIN (SELECT DISTINCT ON (trace_id) trace_id, CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END AS rank,
        start_ns, duration_ns, span_id, service, name, tenant, version
      FROM spans ORDER BY trace_id, CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END, start_ns, span_id) r USING (trace_id)
JOIN (SELECT trace_id, jsonb_object_agg(service, d) AS services
      FROM (SELECT trace_id, service, max(duration_ns) AS d FROM spans GROUP BY trace_id, service) x
      GROUP BY trace_id) sv USING (trace_id);

-- +goose Down
DROP TABLE trace_index;
