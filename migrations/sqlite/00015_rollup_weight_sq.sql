-- weight_sq (docs/DESIGN.md "Rollups", issue 18, sampled streams): the sum
-- of the squared count weights of a rollup row's spans. With count (their
-- sum) it gives the row's effective sample size, count² / weight_sq
-- (Kish): the number of spans a test may treat as independent draws. A
-- stream sampled 1 in 10 counts 10 per kept span, and a test that took
-- the count for its sample size would be √10 times too sure. Unsampled
-- spans add 1 to both, so weight_sq = count.
--
-- Rows written before this migration hold 0 and are read as
-- weight_sq = count (each counted span its own draw): exact for spans
-- without a weight, too sure for sampled spans stored between the span
-- weight migration and this one. SQLite adds the column without rewriting rows.

-- +goose Up
ALTER TABLE rollups ADD COLUMN weight_sq INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE rollups DROP COLUMN weight_sq;
