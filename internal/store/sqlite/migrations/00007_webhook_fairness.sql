-- +goose Up
-- Fair delivery. Each endpoint's health: its consecutive failed attempts, and the
-- time before which claims leave its deliveries alone (parked, after failures).
ALTER TABLE webhooks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN parked_until INTEGER NOT NULL DEFAULT 0;
-- Finds the parked endpoints, whose deliveries expire without a last attempt.
CREATE INDEX webhooks_parked ON webhooks (parked_until) WHERE parked_until > 0;

-- A delivery is in flight while it is pending and claimed_until (the end of its
-- claim's lease) is in the future; claims count those per endpoint.
ALTER TABLE webhook_deliveries ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_in_flight ON webhook_deliveries (claimed_until, webhook_id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_webhook ON webhook_deliveries (webhook_id, created_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX deliveries_pending_webhook;
DROP INDEX deliveries_in_flight;
ALTER TABLE webhook_deliveries DROP COLUMN claimed_until;
DROP INDEX webhooks_parked;
ALTER TABLE webhooks DROP COLUMN parked_until;
ALTER TABLE webhooks DROP COLUMN failures;
