-- +goose Up
-- Compact records (what is kept per record; see the README's "What is stored"):
-- the table is keyed by (domain_id, key) itself (WITHOUT ROWID), so the key is not
-- kept twice, in the table and in its primary-key index; the purpose is not
-- stored (it follows from the key, domain.RecordKey.Purpose); a name under the
-- domain is kept less the domain's name ("_dmarc." for "_dmarc.example.com", "."
-- for the domain itself); and the found values, problems and propagation are one
-- column, state: '' when there is nothing, else JSON in which a value equal to
-- the record's expected value is null and a server's value equal to a found value
-- is that value's index (see sqlstore's encodeRecordState).
CREATE TABLE domain_records_compact (
    domain_id  TEXT    NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    priority   INTEGER NOT NULL DEFAULT 0,
    verified   INTEGER NOT NULL DEFAULT 0,
    status     TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT '',
    failures   INTEGER NOT NULL DEFAULT 0,
    checked_at INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (domain_id, key)
) WITHOUT ROWID;
INSERT INTO domain_records_compact
SELECT r.domain_id, r.key, r.position,
       CASE WHEN r.name = d.name THEN '.'
            WHEN substr(r.name, -length(d.name) - 1) = '.' || d.name THEN substr(r.name, 1, length(r.name) - length(d.name))
            ELSE r.name END,
       r.type, r.value, r.priority, r.verified, r.status,
       CASE WHEN r.found = '[]' AND r.problems = '[]' AND r.propagation = '[]' THEN ''
            ELSE json_object('f', json(r.found), 'p', json(r.problems), 'g', json(r.propagation)) END,
       r.failures, r.checked_at, r.created_at, r.updated_at
FROM domain_records r JOIN domains d ON d.id = r.domain_id;
DROP TABLE domain_records;
ALTER TABLE domain_records_compact RENAME TO domain_records;

-- +goose Down
-- The purposes come back as the key gives them. Found values and propagation
-- come back empty, as of a record not yet checked (the next check fills them):
-- the state keeps them as references the code before this migration cannot
-- read.
CREATE TABLE domain_records_wide (
    domain_id   TEXT    NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    purpose     TEXT    NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL,
    found       TEXT    NOT NULL DEFAULT '[]',
    problems    TEXT    NOT NULL DEFAULT '[]',
    failures    INTEGER NOT NULL DEFAULT 0,
    checked_at  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    propagation TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (domain_id, key)
);
INSERT INTO domain_records_wide
SELECT r.domain_id, r.key, r.position,
       CASE WHEN r.name = '.' THEN d.name WHEN substr(r.name, -1) = '.' THEN r.name || d.name ELSE r.name END,
       r.type, r.value, r.priority,
       CASE r.key WHEN 'ownership' THEN 'Proves that you own the domain.'
                  WHEN 'dkim' THEN 'DKIM public key that receivers use to check the signature on your mail.'
                  WHEN 'mailfrom_mx' THEN 'Custom MAIL FROM domain: receives bounces and complaints.'
                  WHEN 'mailfrom_spf' THEN 'SPF for the MAIL FROM domain: authorizes the platform''s servers to send.'
                  WHEN 'dmarc' THEN 'DMARC policy: tells receivers what to do with mail that fails SPF and DKIM.'
                  ELSE 'Inbound MX: routes mail for the domain to the platform.' END,
       r.verified, r.status,
       '[]', CASE WHEN r.state = '' THEN '[]' ELSE coalesce(json_extract(r.state, '$.p'), '[]') END,
       r.failures, r.checked_at, r.created_at, r.updated_at,
       '[]' 
FROM domain_records r JOIN domains d ON d.id = r.domain_id;
DROP TABLE domain_records;
ALTER TABLE domain_records_wide RENAME TO domain_records;
