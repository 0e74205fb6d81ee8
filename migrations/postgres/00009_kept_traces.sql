-- Copies of the traces a finalized incident report cites (store.KeptTrace),
-- so its exemplars outlive span retention, which drops whole day
-- partitions. spans is the trace's spans as JSON, as the store encodes
-- them. Deleting the incident deletes its copies.

-- +goose Up
CREATE TABLE kept_traces (
    incident_id bigint NOT NULL,
    trace_id    bytea  NOT NULL,
    kept_ns     bigint NOT NULL,
    span_count  integer NOT NULL,
    spans       text   NOT NULL,
    PRIMARY KEY (trace_id, incident_id)
);

-- +goose Down
DROP TABLE kept_traces;
