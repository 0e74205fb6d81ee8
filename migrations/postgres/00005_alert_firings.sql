-- Burn-rate alert firings (store.AlertFiring): the history on a budget's
-- page, and the outbox of notifications (fire_sent_ns / resolve_sent_ns
-- stay NULL until every webhook accepted the event, so a restart resends
-- what was not delivered). At most one open firing per budget and rule:
-- two tailscope processes evaluating the same budget cannot both open one.

-- +goose Up
CREATE TABLE alert_firings (
    id              bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    budget_id       bigint           NOT NULL,
    rule            text             NOT NULL,
    severity        text             NOT NULL,
    factor          double precision NOT NULL,
    long_ns         bigint           NOT NULL,
    short_ns        bigint           NOT NULL,
    started_ns      bigint           NOT NULL,
    resolved_ns     bigint,
    long_burn       double precision NOT NULL,
    short_burn      double precision NOT NULL,
    cause           text             NOT NULL DEFAULT '',
    cause_share     double precision NOT NULL DEFAULT 0,
    fixed_p99_ms    double precision NOT NULL DEFAULT 0,
    fire_sent_ns    bigint,
    resolve_sent_ns bigint
);
CREATE INDEX alert_firings_budget ON alert_firings (budget_id, started_ns DESC);
CREATE UNIQUE INDEX alert_firings_open ON alert_firings (budget_id, rule) WHERE resolved_ns IS NULL;

-- +goose Down
DROP TABLE alert_firings;
