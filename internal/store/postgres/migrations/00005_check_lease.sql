-- +goose Up
-- The lease of a running check: one check per domain at a time across replicas.
ALTER TABLE domains ADD COLUMN check_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN check_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE domains DROP COLUMN check_until;
ALTER TABLE domains DROP COLUMN check_owner;
