-- Operation rollups (store.OperationReader.OperationRollups, docs/DESIGN.md
-- "Rollups"): the rollups table also holds, per (service, span name, kind)
-- and minute or hour, every span's count, errors and duration sketch — not
-- only entry spans'. kind is the span kind of such a row; -1 marks the
-- entry rollups of migration 00009 (per endpoint and version), which every
-- existing row is. An operation row's endpoint is the span name and its
-- version is ''.
--
-- rollups_bucket gains kind, so a window read of one family (kind = -1,
-- or the span kinds) skips the other's rows in the index, before reading
-- them, whatever the planner's statistics; compaction and retention still
-- use its (step_s, bucket_ns) prefix.
--
-- operation_rollup_backfill records how far the operation rollups of spans
-- stored before this migration have been built (sqlcommon.BackfillRollups).

-- +goose Up
ALTER TABLE rollups ADD COLUMN kind INTEGER NOT NULL DEFAULT -1;
DROP INDEX rollups_bucket;
CREATE INDEX rollups_bucket ON rollups (step_s, bucket_ns, kind);

CREATE TABLE operation_rollup_backfill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    cursor_ns INTEGER,
    high_ns   INTEGER,
    done      INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO operation_rollup_backfill (id) VALUES (1);

-- +goose Down
DROP TABLE operation_rollup_backfill;
DROP INDEX rollups_bucket;
CREATE INDEX rollups_bucket ON rollups (step_s, bucket_ns);
DELETE FROM rollups WHERE kind >= 0;
ALTER TABLE rollups DROP COLUMN kind;
