-- Operation rollups (store.OperationReader.OperationRollups, docs/DESIGN.md
-- "Rollups"): the rollups table also holds, per (service, span name, kind)
-- and minute or hour, every span's count, errors and duration sketch — not
-- only entry spans'. kind is the span kind of such a row; -1 marks the
-- entry rollups of migration 00009 (per endpoint and version), which every
-- existing row is. An operation row's endpoint is the span name and its
-- version is ''.
--
-- rollups_kind serves both families' window reads (kind = -1, and each
-- span kind): neither reads the other's rows.
--
-- operation_rollup_backfill records how far the operation rollups of spans
-- stored before this migration have been built (sqlcommon.BackfillRollups).

-- +goose Up
ALTER TABLE rollups ADD COLUMN kind INTEGER NOT NULL DEFAULT -1;
CREATE INDEX rollups_kind ON rollups (step_s, kind, bucket_ns);

CREATE TABLE operation_rollup_backfill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    cursor_ns INTEGER,
    high_ns   INTEGER,
    done      INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO operation_rollup_backfill (id) VALUES (1);

-- +goose Down
DROP TABLE operation_rollup_backfill;
DROP INDEX rollups_kind;
DELETE FROM rollups WHERE kind >= 0;
ALTER TABLE rollups DROP COLUMN kind;
