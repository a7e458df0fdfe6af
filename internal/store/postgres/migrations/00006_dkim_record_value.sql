-- +goose Up
-- DKIM records were first generated as the bare base64 key, which is not a DKIM key
-- record (RFC 6376 section 3.6.1 requires p=): show the same key as the record
-- receivers accept. The key itself does not change, so a customer who published a
-- valid record has nothing to do.
UPDATE domain_records SET value = 'v=DKIM1; k=rsa; p=' || value
 WHERE key = 'dkim' AND value NOT LIKE 'v=%';
-- The milter and the key export look domains up by name across projects.
CREATE INDEX domains_name ON domains (name);

-- +goose Down
DROP INDEX domains_name;
UPDATE domain_records SET value = substr(value, length('v=DKIM1; k=rsa; p=') + 1)
 WHERE key = 'dkim' AND value LIKE 'v=DKIM1; k=rsa; p=%';
