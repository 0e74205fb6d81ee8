-- Continuous profiles for SQLite: the same tables and semantics as the
-- PostgreSQL migration 00002_profiles.sql (see the comments there).

-- +goose Up

CREATE TABLE profiles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint INTEGER NOT NULL UNIQUE,
    service     TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    unit        TEXT    NOT NULL,
    start_ns    INTEGER NOT NULL,
    end_ns      INTEGER NOT NULL,
    labels      TEXT,
    total       INTEGER NOT NULL
) STRICT;
CREATE INDEX profiles_service_type_start ON profiles (service, type, unit, start_ns);
CREATE INDEX profiles_start ON profiles (start_ns);

-- The stack hash is the rowid: one B-tree, no separate key index.
CREATE TABLE profile_stacks (
    id     INTEGER PRIMARY KEY,
    frames TEXT    NOT NULL
) STRICT;

-- A rowid table: the samples of one profile are inserted together, so they
-- sit next to each other and the profile_id index reads them in order.
CREATE TABLE profile_samples (
    profile_id INTEGER NOT NULL,
    stack_id   INTEGER NOT NULL,
    span_id    BLOB,                  -- NULL outside a traced span
    span_name  TEXT    NOT NULL DEFAULT '',
    value      INTEGER NOT NULL
) STRICT;
CREATE INDEX profile_samples_profile ON profile_samples (profile_id, stack_id, value);
CREATE INDEX profile_samples_span ON profile_samples (span_id) WHERE span_id IS NOT NULL;

-- +goose Down
DROP TABLE profile_samples;
DROP TABLE profile_stacks;
DROP TABLE profiles;
