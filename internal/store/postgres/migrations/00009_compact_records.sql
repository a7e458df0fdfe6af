-- +goose Up
-- Compact records, as in SQLite's 00009: no stored purpose (it follows from the
-- key), names under the domain kept less the domain's name ("_dmarc." for
-- "_dmarc.example.com", "." for the domain itself), and the found values,
-- problems and propagation in one column, state ('' when there is nothing).
ALTER TABLE domain_records ADD COLUMN state TEXT NOT NULL DEFAULT '';
UPDATE domain_records r SET
    state = CASE WHEN r.found = '[]' AND r.problems = '[]' AND r.propagation = '[]' THEN ''
                 ELSE json_build_object('f', r.found::json, 'p', r.problems::json, 'g', r.propagation::json)::text END,
    name = CASE WHEN r.name = d.name THEN '.'
                WHEN right(r.name, length(d.name) + 1) = '.' || d.name THEN left(r.name, length(r.name) - length(d.name))
                ELSE r.name END
FROM domains d WHERE d.id = r.domain_id;
ALTER TABLE domain_records DROP COLUMN found, DROP COLUMN problems, DROP COLUMN propagation, DROP COLUMN purpose;

-- +goose Down
-- Found values and propagation come back empty, as of a record not yet checked
-- (the next check fills them): the state keeps them as references the code
-- before this migration cannot read. One update for every record: a record
-- with no state ('' cast to json would fail) gets the empty lists through
-- nullif.
ALTER TABLE domain_records ADD COLUMN found TEXT NOT NULL DEFAULT '[]',
    ADD COLUMN problems TEXT NOT NULL DEFAULT '[]', ADD COLUMN propagation TEXT NOT NULL DEFAULT '[]',
    ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
UPDATE domain_records r SET
    problems = coalesce((nullif(r.state, '')::json -> 'p')::text, '[]'),
    purpose = CASE r.key WHEN 'ownership' THEN 'Proves that you own the domain.'
                  WHEN 'dkim' THEN 'DKIM public key that receivers use to check the signature on your mail.'
                  WHEN 'mailfrom_mx' THEN 'Custom MAIL FROM domain: receives bounces and complaints.'
                  WHEN 'mailfrom_spf' THEN 'SPF for the MAIL FROM domain: authorizes the platform''s servers to send.'
                  WHEN 'dmarc' THEN 'DMARC policy: tells receivers what to do with mail that fails SPF and DKIM.'
                  ELSE 'Inbound MX: routes mail for the domain to the platform.' END,
    name = CASE WHEN r.name = '.' THEN d.name WHEN right(r.name, 1) = '.' THEN r.name || d.name ELSE r.name END
FROM domains d WHERE d.id = r.domain_id;
ALTER TABLE domain_records DROP COLUMN state;
