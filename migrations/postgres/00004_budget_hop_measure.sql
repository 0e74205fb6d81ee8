-- What a budget's call hops measure (store.HopMeasure). Before this column
-- a call hop counted only the client span's own critical-path time; new
-- budgets count the whole call as the caller waits for it. Budgets stored
-- before keep the meaning they were defined and measured with ('own_time'),
-- so a number in an exported incident report still means what it meant;
-- their page says which measure they use and an edit can switch it. The
-- application always writes the column.

-- +goose Up
ALTER TABLE budgets ADD COLUMN hop_measure text NOT NULL DEFAULT 'own_time'
    CHECK (hop_measure IN ('whole_call', 'own_time'));

-- +goose Down
ALTER TABLE budgets DROP COLUMN hop_measure;
