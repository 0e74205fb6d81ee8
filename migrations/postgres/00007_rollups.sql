-- Rollups written at ingest (store.RollupStore, docs/DESIGN.md "Rollups"):
-- per (service, endpoint, version) and minute or hour, the entry spans'
-- count, errors, roots, earliest start, exact min/max/sum of durations and
-- their DDSketch bins (bins: sqlcommon.EncodeBins). Writers only append
-- (folded = 0), one row per key and bucket per commit, so concurrent
-- commits never wait on one hot row; CompactRollups folds a bucket's rows
-- into one (folded = 1) with DELETE ... RETURNING, which hands each row to
-- exactly one compactor. No unique key: a bucket may hold several rows.
--
-- rollup_backfill records how far the rollups of spans stored before this
-- migration have been built (sqlcommon.BackfillRollups): cursor_ns is the
-- start of the next hour to build, NULL before the first run; done once
-- every hour up to high_ns (the newest span when it began) is built.

-- +goose Up
CREATE TABLE rollups (
    step_s     integer  NOT NULL,
    bucket_ns  bigint   NOT NULL,
    service    text     NOT NULL,
    endpoint   text     NOT NULL,
    version    text     NOT NULL,
    count      bigint   NOT NULL,
    errors     bigint   NOT NULL,
    roots      bigint   NOT NULL,
    first_ns   bigint   NOT NULL,
    min_ns     bigint   NOT NULL,
    max_ns     bigint   NOT NULL,
    sum_ns     bigint   NOT NULL,
    zero_count bigint   NOT NULL,
    bins       bytea    NOT NULL,
    folded     smallint NOT NULL DEFAULT 0
);
CREATE INDEX rollups_bucket ON rollups (step_s, bucket_ns);
CREATE INDEX rollups_key ON rollups (step_s, service, endpoint, bucket_ns);
CREATE INDEX rollups_unfolded ON rollups (step_s, bucket_ns) WHERE folded = 0;

CREATE TABLE rollup_backfill (
    id        integer PRIMARY KEY CHECK (id = 1),
    cursor_ns bigint,
    high_ns   bigint,
    done      smallint NOT NULL DEFAULT 0
);
INSERT INTO rollup_backfill (id) VALUES (1);

-- +goose Down
DROP TABLE rollup_backfill;
DROP TABLE rollups;
