-- Copies of the traces a finalized incident report cites (store.KeptTrace),
-- so its exemplars outlive span retention. Deleting the incident deletes
-- its copies.

-- +goose Up
CREATE TABLE kept_traces (
    incident_id INTEGER NOT NULL,
    trace_id    BLOB    NOT NULL,
    kept_ns     INTEGER NOT NULL,
    span_count  INTEGER NOT NULL,
    spans       TEXT    NOT NULL,
    PRIMARY KEY (trace_id, incident_id)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE kept_traces;
