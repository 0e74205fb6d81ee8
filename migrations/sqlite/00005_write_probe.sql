-- A table the readiness probe writes to. While SQLite's disk is full every
-- commit fails but reads still work, so /readyz answers 503 once a commit
-- has failed for lack of space or an I/O error; to notice that space came
-- back without waiting for traffic (a load balancer sends none to a server
-- that is not ready), it then commits a row of zeros here and deletes it
-- (store/sqlite: WriteHealth). Nothing else reads it.

-- +goose Up
CREATE TABLE write_probe (
    id   INTEGER PRIMARY KEY,
    body BLOB    NOT NULL
);

-- +goose Down
DROP TABLE write_probe;
