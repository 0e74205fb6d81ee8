-- Resources stored once. Every span carried its resource's JSON (~300
-- bytes of the ~1,000 a span took with its indexes), though a process sends
-- the same resource with every span it exports. New spans refer to a row of
-- resources by resource_id and leave resource NULL; rows written before
-- keep their inline resource, which readers prefer when present, so the
-- migration rewrites nothing. Together with 32-row INSERTs (the same
-- change), ingest (BenchmarkIngestE2E) went from 45,000-48,600 to
-- 56,900-60,000 spans/s; see docs/PERFORMANCE.md.
--
-- last_ns is at least the start of the newest span referring to the row,
-- less the writer's slack (store/sqlite: resourceTouchSlack), so retention
-- can delete resources no kept span refers to. AUTOINCREMENT never hands a
-- deleted id to another resource: should a span ever outlive its resource,
-- it reads as having none rather than someone else's.

-- +goose Up
CREATE TABLE resources (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    body    TEXT    NOT NULL UNIQUE,
    last_ns INTEGER NOT NULL
) STRICT;
CREATE INDEX resources_last ON resources (last_ns);
ALTER TABLE spans ADD COLUMN resource_id INTEGER;

-- +goose Down
UPDATE spans SET resource = (SELECT body FROM resources WHERE id = spans.resource_id)
    WHERE resource_id IS NOT NULL;
ALTER TABLE spans DROP COLUMN resource_id;
DROP TABLE resources;
