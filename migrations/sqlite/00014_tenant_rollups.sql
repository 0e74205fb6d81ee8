-- Tenant rollups (store.RollupQuery.Tenant / ByTenant, docs/DESIGN.md
-- "Rollups"): the rollups table also holds, per (service, endpoint,
-- tenant) and minute or hour, the entry spans' counts and duration
-- sketches, for the tenants rollup_tenants keeps. Their kind is -2; their
-- version column holds the tenant (as an operation row's endpoint holds
-- its span name).
--
-- rollup_tenants bounds the cardinality: it lists the tenants whose
-- rollups are kept. A tenant is added when an entry span first carries it,
-- while fewer than store.MaxRollupTenants are listed (sqlcommon.
-- TenantRegistry); once the list is full it never changes, so a listed
-- tenant's rollups count every span of it and any other tenant has none
-- (pages read its spans instead).
--
-- tenant_rollup_backfill records how far the tenant rollups of spans
-- stored before this migration have been built (sqlcommon.BackfillRollups).

-- +goose Up
CREATE TABLE rollup_tenants (
    tenant TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;

CREATE TABLE tenant_rollup_backfill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    cursor_ns INTEGER,
    high_ns   INTEGER,
    done      INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO tenant_rollup_backfill (id) VALUES (1);

-- +goose Down
DROP TABLE tenant_rollup_backfill;
DROP TABLE rollup_tenants;
DELETE FROM rollups WHERE kind = -2;
