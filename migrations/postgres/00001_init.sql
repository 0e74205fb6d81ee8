-- tailscope schema for PostgreSQL.
--
-- Times are Unix nanoseconds in bigint columns everywhere, so values round-trip
-- exactly (timestamptz keeps only microseconds) and both dialects share one
-- representation.
--
-- Span attributes, resource, events and links are json, not jsonb: parsing
-- into jsonb was the largest single cost of ingest (~20 us of server CPU per
-- span against ~11 us for json, measured with COPY of realistic spans), the
-- store never indexes inside them, and json hands back the encoded bytes
-- unchanged. json still validates on input, and ->> extracts values for
-- attribute search.
--
-- service and name, the text keys of the span index, use the C collation:
-- bytewise comparison is what SQLite does, and a locale collation made
-- strcoll a visible share of insert time.

-- +goose Up

-- One row per span (DESIGN.md "Span row"). The table is partitioned by day on
-- start_ns; the store creates the day partitions (spans_pYYYYMMDD) ahead of
-- time and on demand, and retention drops whole partitions. The primary key
-- includes start_ns because a unique key on a partitioned table must contain
-- the partition key; it also makes writes idempotent (ON CONFLICT DO NOTHING)
-- and serves lookups by trace id.
CREATE TABLE spans (
    trace_id       bytea    NOT NULL,
    span_id        bytea    NOT NULL,
    parent_span_id bytea,                 -- NULL for root spans
    service        text     COLLATE "C" NOT NULL,
    name           text     COLLATE "C" NOT NULL,
    kind           smallint NOT NULL,
    start_ns       bigint   NOT NULL,
    duration_ns    bigint   NOT NULL,
    status_code    smallint NOT NULL,
    status_message text     NOT NULL DEFAULT '',
    attributes     json,
    resource       json,
    events         json,
    links          json,
    tenant         text     NOT NULL DEFAULT '',
    version        text     NOT NULL DEFAULT '',
    dependency     text     NOT NULL DEFAULT '',
    payload_bytes  bigint   NOT NULL DEFAULT 0,
    host           text     NOT NULL DEFAULT '',
    PRIMARY KEY (trace_id, span_id, start_ns)
) PARTITION BY RANGE (start_ns);

-- One covering index serves trace search by service and endpoint and the
-- bulk read of entry spans (Store.Samples, ~100k rows per window): it holds
-- every column a Sample needs plus what decides whether a span is an entry
-- span, so both are index-only scans. One index rather than a narrow search
-- index plus a partial entry-span index: one insertion per span instead of
-- up to two, which is what the write rate is bound by.
CREATE INDEX spans_service_name_start ON spans (service, name, start_ns)
    INCLUDE (duration_ns, kind, parent_span_id, status_code, tenant, version, host, payload_bytes, trace_id, span_id);

-- Searches bounded only by time. Spans arrive nearly in time order, so a
-- BRIN index narrows a day partition to the blocks of a time range at almost
-- no write cost (a btree on start_ns cost ~15% of write throughput).
CREATE INDEX spans_start ON spans USING brin (start_ns);

CREATE TABLE deploys (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service text   NOT NULL,
    version text   NOT NULL,
    at_ns   bigint NOT NULL,
    note    text   NOT NULL DEFAULT '',
    source  text   NOT NULL CHECK (source IN ('auto', 'api'))
);
-- An automatic marker is recorded once per (service, version).
CREATE UNIQUE INDEX deploys_auto ON deploys (service, version) WHERE source = 'auto';
CREATE INDEX deploys_at ON deploys (at_ns);
CREATE INDEX deploys_service_at ON deploys (service, at_ns);

CREATE TABLE budgets (
    id           bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text             NOT NULL,
    service      text             NOT NULL,
    endpoint     text             NOT NULL,
    threshold_ns bigint           NOT NULL,
    target       double precision NOT NULL,
    period_ns    bigint           NOT NULL,
    hops         jsonb            NOT NULL DEFAULT '[]',
    created_ns   bigint           NOT NULL,
    updated_ns   bigint           NOT NULL
);
CREATE INDEX budgets_service_endpoint ON budgets (service, endpoint, id);

CREATE TABLE incidents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title         text   NOT NULL,
    from_ns       bigint NOT NULL,
    to_ns         bigint NOT NULL,
    services      jsonb  NOT NULL DEFAULT '[]',
    notes         text   NOT NULL DEFAULT '',
    pinned_traces jsonb  NOT NULL DEFAULT '[]',  -- trace ids as hex strings
    created_ns    bigint NOT NULL,
    updated_ns    bigint NOT NULL
);
CREATE INDEX incidents_range ON incidents (from_ns DESC, to_ns DESC, id DESC);

-- +goose Down
DROP TABLE incidents;
DROP TABLE budgets;
DROP TABLE deploys;
DROP TABLE spans;
