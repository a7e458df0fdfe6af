-- +goose Up
-- What checks found of a domain's records moves from the records' rows to one
-- column of the domain's row, checks (see sqlstore's checks.go): a check then
-- writes one row where it wrote six. The column is a JSON array with an entry
-- for each record a check judged, named by the record's fingerprint (its
-- stored name, type and value, as the store registers domaind_fingerprint),
-- packed as the store packs it (domaind_pack_checks), or '' when no check
-- judged any. A record's updated_at stays its own.
ALTER TABLE domains ADD COLUMN checks TEXT NOT NULL DEFAULT '';
UPDATE domains SET checks = domaind_pack_checks((
    SELECT json_group_array(json_object('h', domaind_fingerprint(r.name, r.type, r.value), 'k', r.key,
        'v', json(CASE WHEN r.verified THEN 'true' ELSE 'false' END), 's', r.status,
        'st', CASE WHEN r.state <> '' THEN json(r.state) END, 'f', r.failures, 'c', r.checked_at))
    FROM domain_records r WHERE r.domain_seq = domains.seq
        AND (r.verified OR r.status <> '' OR r.state <> '' OR r.failures <> 0 OR r.checked_at <> 0)))
WHERE EXISTS (SELECT 1 FROM domain_records r WHERE r.domain_seq = domains.seq
    AND (r.verified OR r.status <> '' OR r.state <> '' OR r.failures <> 0 OR r.checked_at <> 0));
ALTER TABLE domain_records DROP COLUMN verified;
ALTER TABLE domain_records DROP COLUMN status;
ALTER TABLE domain_records DROP COLUMN state;
ALTER TABLE domain_records DROP COLUMN failures;
ALTER TABLE domain_records DROP COLUMN checked_at;

-- +goose Down
-- Each record takes back what the entry of its fingerprint holds; a check's
-- flip of its verified flag since is its updated_at.
ALTER TABLE domain_records ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domain_records ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE domain_records ADD COLUMN state TEXT NOT NULL DEFAULT '';
ALTER TABLE domain_records ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domain_records ADD COLUMN checked_at INTEGER NOT NULL DEFAULT 0;
UPDATE domain_records SET (verified, status, state, failures, checked_at, updated_at) = (
    SELECT coalesce(json_extract(e.value, '$.v'), 0), coalesce(json_extract(e.value, '$.s'), ''),
        coalesce(json_extract(e.value, '$.st'), ''), coalesce(json_extract(e.value, '$.f'), 0),
        coalesce(json_extract(e.value, '$.c'), 0),
        max(domain_records.updated_at, coalesce(json_extract(e.value, '$.u'), 0) - domain_records.created_at - d.created_at)
    FROM domains d, json_each(domaind_checks_json(d.checks)) e
    WHERE d.seq = domain_records.domain_seq
        AND json_extract(e.value, '$.h') = domaind_fingerprint(domain_records.name, domain_records.type, domain_records.value))
WHERE EXISTS (SELECT 1 FROM domains d, json_each(domaind_checks_json(d.checks)) e
    WHERE d.seq = domain_records.domain_seq
        AND json_extract(e.value, '$.h') = domaind_fingerprint(domain_records.name, domain_records.type, domain_records.value));
ALTER TABLE domains DROP COLUMN checks;
