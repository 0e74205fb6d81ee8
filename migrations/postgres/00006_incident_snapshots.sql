-- Finalized incident reports (store.IncidentSnapshot): each revision of an
-- incident's report as the JSON its page and exports render from. body is
-- text, not jsonb, so it is returned byte for byte. Retention never
-- deletes a snapshot; deleting the incident does.

-- +goose Up
CREATE TABLE incident_snapshots (
    incident_id bigint  NOT NULL,
    revision    integer NOT NULL,
    created_ns  bigint  NOT NULL,
    version     text    NOT NULL,
    body        text    NOT NULL,
    PRIMARY KEY (incident_id, revision)
);

-- +goose Down
DROP TABLE incident_snapshots;
