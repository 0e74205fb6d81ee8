-- Rollup names (store.MaxRollupNames, store.Rollup.Other, docs/DESIGN.md
-- "Rollups"): rollup_names lists, per service, the span names whose spans
-- are rolled up under their own name. A name is added when a span of the
-- service first carries it, while the service lists fewer than
-- store.MaxRollupNames (1000; the writers decide under a lock,
-- sqlcommon.NameRegistry); once a service's list is full it never
-- changes. The spans of a name not listed are rolled up together as the
-- service's "other names": endpoint '' and kind -3 (entry rows), -4
-- (tenant rows) or -10 - k (operation rows of span kind k). Span names
-- that carry values the ingest templates miss would otherwise give every
-- request rollup rows of its own.
--
-- Up lists the names the rollups already hold, each service's busiest
-- 1000 by its hour rows: every span of them since the rollups began is in
-- their rows. Names past that keep their existing rows, but new spans of
-- them go to the other names, and pages read their spans.

-- +goose Up
CREATE TABLE rollup_names (
    service TEXT NOT NULL,
    name    TEXT NOT NULL,
    PRIMARY KEY (service, name)
) STRICT, WITHOUT ROWID;
INSERT INTO rollup_names (service, name)
SELECT service, endpoint FROM (
    SELECT service, endpoint, row_number() OVER (PARTITION BY service ORDER BY sum(count) DESC, endpoint) AS n
    FROM rollups WHERE step_s = 3600 AND kind >= -1 GROUP BY service, endpoint
) ranked WHERE n <= 1000;

-- +goose Down
DROP TABLE rollup_names;
DELETE FROM rollups WHERE kind <= -3;
