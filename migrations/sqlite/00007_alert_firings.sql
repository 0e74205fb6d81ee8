-- Burn-rate alert firings (store.AlertFiring): the history on a budget's
-- page, and the outbox of notifications (fire_sent_ns / resolve_sent_ns
-- stay NULL until every webhook accepted the event, so a restart resends
-- what was not delivered). At most one open firing per budget and rule:
-- two tailscope processes evaluating the same budget cannot both open one.

-- +goose Up
CREATE TABLE alert_firings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    budget_id       INTEGER           NOT NULL,
    rule            TEXT             NOT NULL,
    severity        TEXT             NOT NULL,
    factor          REAL NOT NULL,
    long_ns         INTEGER           NOT NULL,
    short_ns        INTEGER           NOT NULL,
    started_ns      INTEGER           NOT NULL,
    resolved_ns     INTEGER,
    long_burn       REAL NOT NULL,
    short_burn      REAL NOT NULL,
    cause           TEXT             NOT NULL DEFAULT '',
    cause_share     REAL NOT NULL DEFAULT 0,
    fixed_p99_ms    REAL NOT NULL DEFAULT 0,
    fire_sent_ns    INTEGER,
    resolve_sent_ns INTEGER
) STRICT;
CREATE INDEX alert_firings_budget ON alert_firings (budget_id, started_ns DESC);
CREATE UNIQUE INDEX alert_firings_open ON alert_firings (budget_id, rule) WHERE resolved_ns IS NULL;

-- +goose Down
DROP TABLE alert_firings;
