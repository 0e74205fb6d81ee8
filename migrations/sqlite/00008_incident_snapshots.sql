-- Finalized incident reports (store.IncidentSnapshot): each revision of an
-- incident's report as the JSON its page and exports render from.
-- Retention never deletes a snapshot; deleting the incident does.

-- +goose Up
CREATE TABLE incident_snapshots (
    incident_id INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    created_ns  INTEGER NOT NULL,
    version     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (incident_id, revision)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE incident_snapshots;
