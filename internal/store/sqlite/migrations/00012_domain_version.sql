-- +goose Up
-- A domain's version counts the writes that change what a check reads of it (its
-- records, receiving, a check's own save), but not the leases and claims of the
-- checks themselves. A check saves only over the version it read, which spares it
-- reading the domain again after asking DNS: see store.ErrChanged.
ALTER TABLE domains ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE domains DROP COLUMN version;
