-- Continuous profiles (pprof uploads from pyroscope-go clients), linked to
-- spans through the span_id pprof label.
--
-- Compact by construction: a stack's frames are stored once, in
-- profile_stacks, under a 64-bit hash of the frames (store.StackID); a
-- profile keeps only (stack, span, value) rows, already summed per (stack,
-- span) at ingest. Times are Unix nanoseconds, as for spans.

-- +goose Up

-- One row per profile: one sample type of one upload (a heap upload is four
-- rows). fingerprint (store.Profile.Fingerprint) makes writes idempotent.
-- total is the sum of the sample values, so listing series never reads
-- samples. end_ns - start_ns is at most one hour (store.MaxProfileWindow),
-- which lets range queries bound start_ns from both sides.
CREATE TABLE profiles (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint bigint NOT NULL UNIQUE,
    service     text   COLLATE "C" NOT NULL,
    type        text   COLLATE "C" NOT NULL,
    unit        text   COLLATE "C" NOT NULL,
    start_ns    bigint NOT NULL,
    end_ns      bigint NOT NULL,
    labels      json,
    total       bigint NOT NULL
);
-- Flame graphs of a service over a time range.
CREATE INDEX profiles_service_type_start ON profiles (service, type, unit, start_ns);
-- Series listing and retention.
CREATE INDEX profiles_start ON profiles (start_ns);

-- Frames as a JSON array of function names, root first.
CREATE TABLE profile_stacks (
    id     bigint PRIMARY KEY,
    frames text   NOT NULL
);

-- No foreign keys: checking them per row would cost on the write path, and
-- retention deletes samples and profiles together in one transaction.
CREATE TABLE profile_samples (
    profile_id bigint NOT NULL,
    stack_id   bigint NOT NULL,
    span_id    bytea,                 -- NULL outside a traced span
    span_name  text   NOT NULL DEFAULT '',
    value      bigint NOT NULL
);
-- The samples of the profiles a flame graph merges, index-only.
CREATE INDEX profile_samples_profile ON profile_samples (profile_id) INCLUDE (stack_id, value);
-- Which spans have samples, and flame graphs of a set of spans. Most CPU
-- samples of an idle process carry no span: they stay out of the index.
CREATE INDEX profile_samples_span ON profile_samples (span_id) WHERE span_id IS NOT NULL;

-- +goose Down
DROP TABLE profile_samples;
DROP TABLE profile_stacks;
DROP TABLE profiles;
