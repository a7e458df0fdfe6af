-- +goose Up
-- What each DNS server said of a record at its last check (domain.Sighting, JSON).
ALTER TABLE domain_records ADD COLUMN propagation TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE domain_records DROP COLUMN propagation;
