-- +goose Up
-- A domain keeps its newest store.MaxDomainEvents events and a webhook its
-- newest store.MaxWebhookDeliveries ended deliveries: a tenant whose name
-- server answers differently on every query, asking for a verify every few
-- seconds, cannot grow either without bound.
--
-- How many events a domain holds, kept up to date as they are added and
-- pruned; counted here for the events already stored.
ALTER TABLE domains ADD COLUMN event_rows INTEGER NOT NULL DEFAULT 0;
UPDATE domains SET event_rows = c.n
FROM (SELECT domain_id, count(*) AS n FROM events GROUP BY domain_id) AS c
WHERE domains.id = c.domain_id;
-- A webhook's ended deliveries, newest last, for the prune to find the oldest
-- without reading the pending ones.
CREATE INDEX deliveries_ended ON webhook_deliveries (webhook_id, seq) WHERE status <> 'pending';

-- +goose Down
DROP INDEX deliveries_ended;
ALTER TABLE domains DROP COLUMN event_rows;
