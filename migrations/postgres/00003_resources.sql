-- Resources stored once, as SQLite has since its migration 00004. A process
-- sends the same resource (~300 bytes of JSON) with every span; inline, it
-- was ~40% of a span row, and PostgreSQL validated and logged it for every
-- span. New spans refer to a row of resources by resource_id and leave
-- resource NULL; rows written before keep their inline resource, which
-- readers prefer when present (sqlcommon.ResourceExpr), so the migration
-- rewrites nothing. Measured with BenchmarkWriteSpansParallel: 17.4-17.6 us
-- of server CPU per span inline, 14.6-15.3 us without; see
-- docs/PERFORMANCE.md.
--
-- A resource is found by the SHA-256 of its body: json has no equality
-- operator, and a unique index on the body itself would refuse bodies over
-- a btree page's third (~2.7 kB).
--
-- last_ns is at least the start of the newest span referring to the row,
-- less the writer's slack (store/postgres: resourceTouchSlack), so
-- retention can delete resources no kept span refers to. Identity values
-- are never handed out twice: should a span ever outlive its resource, it
-- reads as having none rather than someone else's.

-- +goose Up
CREATE TABLE resources (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest  bytea  NOT NULL UNIQUE,
    body    json   NOT NULL,
    last_ns bigint NOT NULL
);
CREATE INDEX resources_last ON resources (last_ns);
ALTER TABLE spans ADD COLUMN resource_id bigint;

-- +goose Down
UPDATE spans SET resource = r.body FROM resources r
    WHERE r.id = spans.resource_id AND spans.resource IS NULL;
ALTER TABLE spans DROP COLUMN resource_id;
DROP TABLE resources;
