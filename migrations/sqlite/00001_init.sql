-- tailscope schema for SQLite (the embedded default). Same tables and
-- semantics as the PostgreSQL schema; JSON is kept as TEXT and read with
-- SQLite's JSON functions. Times are Unix nanoseconds.

-- +goose Up

-- A rowid table rather than WITHOUT ROWID: spans arrive roughly in time
-- order, so rows append at the end of the table and only the small indexes
-- take random inserts.
CREATE TABLE spans (
    trace_id       BLOB    NOT NULL,
    span_id        BLOB    NOT NULL,
    parent_span_id BLOB,                  -- NULL for root spans
    service        TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    kind           INTEGER NOT NULL,
    start_ns       INTEGER NOT NULL,
    duration_ns    INTEGER NOT NULL,
    status_code    INTEGER NOT NULL,
    status_message TEXT    NOT NULL DEFAULT '',
    attributes     TEXT,
    resource       TEXT,
    events         TEXT,
    links          TEXT,
    tenant         TEXT    NOT NULL DEFAULT '',
    version        TEXT    NOT NULL DEFAULT '',
    dependency     TEXT    NOT NULL DEFAULT '',
    payload_bytes  INTEGER NOT NULL DEFAULT 0,
    host           TEXT    NOT NULL DEFAULT ''
) STRICT;

-- Idempotent writes (INSERT OR IGNORE) and lookups by trace id.
CREATE UNIQUE INDEX spans_trace ON spans (trace_id, span_id, start_ns);
-- Trace search by service and endpoint, and the bulk read of entry spans
-- (Store.Samples, ~100k rows per window): the index holds every column a
-- Sample needs plus kind and parent_span_id, which decide whether a span is
-- an entry span, so Samples never touches the table (measured: 1.2 s per
-- 100k samples with table lookups).
CREATE INDEX spans_service_name_start ON spans (service, name, start_ns, duration_ns,
    kind, parent_span_id, status_code, tenant, version, host, payload_bytes, trace_id, span_id);
-- Time-bounded searches and retention.
CREATE INDEX spans_start ON spans (start_ns);

CREATE TABLE deploys (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT    NOT NULL,
    version TEXT    NOT NULL,
    at_ns   INTEGER NOT NULL,
    note    TEXT    NOT NULL DEFAULT '',
    source  TEXT    NOT NULL CHECK (source IN ('auto', 'api'))
) STRICT;
CREATE UNIQUE INDEX deploys_auto ON deploys (service, version) WHERE source = 'auto';
CREATE INDEX deploys_at ON deploys (at_ns);
CREATE INDEX deploys_service_at ON deploys (service, at_ns);

-- AUTOINCREMENT so a deleted budget's or incident's id (a permalink) is
-- never handed to a new one.
CREATE TABLE budgets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    service      TEXT    NOT NULL,
    endpoint     TEXT    NOT NULL,
    threshold_ns INTEGER NOT NULL,
    target       REAL    NOT NULL,
    period_ns    INTEGER NOT NULL,
    hops         TEXT    NOT NULL DEFAULT '[]',
    created_ns   INTEGER NOT NULL,
    updated_ns   INTEGER NOT NULL
) STRICT;
CREATE INDEX budgets_service_endpoint ON budgets (service, endpoint, id);

CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT    NOT NULL,
    from_ns       INTEGER NOT NULL,
    to_ns         INTEGER NOT NULL,
    services      TEXT    NOT NULL DEFAULT '[]',
    notes         TEXT    NOT NULL DEFAULT '',
    pinned_traces TEXT    NOT NULL DEFAULT '[]',  -- trace ids as hex strings
    created_ns    INTEGER NOT NULL,
    updated_ns    INTEGER NOT NULL
) STRICT;
CREATE INDEX incidents_range ON incidents (from_ns DESC, to_ns DESC, id DESC);

-- +goose Down
DROP TABLE incidents;
DROP TABLE budgets;
DROP TABLE deploys;
DROP TABLE spans;
