-- Rollups written at ingest (store.RollupStore, docs/DESIGN.md "Rollups"):
-- per (service, endpoint, version) and minute or hour, the entry spans'
-- count, errors, roots, earliest start, exact min/max/sum of durations and
-- their DDSketch bins (bins: sqlcommon.EncodeBins). Writers only append
-- (folded = 0), one row per key and bucket per commit; CompactRollups folds
-- a bucket's rows into one (folded = 1) with DELETE ... RETURNING. No
-- unique key: a bucket may hold several rows.
--
-- rollup_backfill records how far the rollups of spans stored before this
-- migration have been built (sqlcommon.BackfillRollups).

-- +goose Up
CREATE TABLE rollups (
    step_s     INTEGER NOT NULL,
    bucket_ns  INTEGER NOT NULL,
    service    TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    errors     INTEGER NOT NULL,
    roots      INTEGER NOT NULL,
    first_ns   INTEGER NOT NULL,
    min_ns     INTEGER NOT NULL,
    max_ns     INTEGER NOT NULL,
    sum_ns     INTEGER NOT NULL,
    zero_count INTEGER NOT NULL,
    bins       BLOB    NOT NULL,
    folded     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX rollups_bucket ON rollups (step_s, bucket_ns);
CREATE INDEX rollups_key ON rollups (step_s, service, endpoint, bucket_ns);
CREATE INDEX rollups_unfolded ON rollups (step_s, bucket_ns) WHERE folded = 0;

CREATE TABLE rollup_backfill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    cursor_ns INTEGER,
    high_ns   INTEGER,
    done      INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO rollup_backfill (id) VALUES (1);

-- +goose Down
DROP TABLE rollup_backfill;
DROP TABLE rollups;
