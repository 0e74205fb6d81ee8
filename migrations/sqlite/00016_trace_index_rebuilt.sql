-- rebuilt (docs/DESIGN.md "Held rows"): set on a trace index row that was
-- recomputed from the trace's stored spans (a replay's rebuild after a
-- crash, a resent batch, retention's recompute of a trace that straddles
-- the cut). Such a row already counts every stored span, including spans
-- whose index rows another process still holds; that process's flush must
-- not add them again, so it recomputes a rebuilt row instead of merging
-- into it.

-- +goose Up
ALTER TABLE trace_index ADD COLUMN rebuilt INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE trace_index DROP COLUMN rebuilt;
