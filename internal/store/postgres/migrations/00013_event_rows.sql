-- +goose Up
-- How many events a domain holds, counted as they are added (from this
-- migration on: older events are not counted until the domain's first prune,
-- which counts them too). Past store.MaxDomainEvents and a slack, the oldest
-- are deleted: a tenant whose DNS answers differently on every query, and who
-- asks for a verify every few seconds, cannot grow the table without bound.
ALTER TABLE domains ADD COLUMN event_rows BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE domains DROP COLUMN event_rows;
