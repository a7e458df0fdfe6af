-- +goose Up
-- What checks found of a domain's records moves from the records' rows to one
-- column of the domain's row, checks (see sqlstore's checks.go): a check then
-- writes one row where it wrote six. The column is a JSON array with an entry
-- for each record a check judged, named by the record's fingerprint (the first
-- 16 hexadecimal digits of the MD5 of its stored name, type and value, each
-- ended by a line feed), or '' when no check judged any. A record's
-- updated_at stays its own.
--
-- An old replica that saves a check during a rolling upgrade waits, then
-- fails on the dropped columns, rather than writing state the copy has already
-- passed. The locks are taken in the order every save takes them, domains
-- before domain_records (the ALTER locks all of domains), so that a save that
-- has its domain row waits for nothing the migration holds.
ALTER TABLE domains ADD COLUMN checks TEXT NOT NULL DEFAULT '';
LOCK TABLE domain_records IN SHARE ROW EXCLUSIVE MODE;
UPDATE domains d SET checks = c.checks
FROM (SELECT r.domain_seq, json_agg(json_build_object(
            'h', substr(md5(r.name || E'\n' || r.type || E'\n' || r.value || E'\n'), 1, 16), 'k', r.key,
            'v', r.verified, 's', r.status, 'st', CASE WHEN r.state <> '' THEN r.state::json END,
            'f', r.failures, 'c', r.checked_at) ORDER BY r.position)::text AS checks
      FROM domain_records r
      WHERE r.verified OR r.status <> '' OR r.state <> '' OR r.failures <> 0 OR r.checked_at <> 0
      GROUP BY r.domain_seq) AS c
WHERE d.seq = c.domain_seq;
ALTER TABLE domain_records DROP COLUMN verified, DROP COLUMN status, DROP COLUMN state,
    DROP COLUMN failures, DROP COLUMN checked_at;

-- +goose Down
-- Each record takes back what the entry of its fingerprint holds; a check's
-- flip of its verified flag since is its updated_at.
ALTER TABLE domain_records ADD COLUMN verified BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN status TEXT NOT NULL DEFAULT '', ADD COLUMN state TEXT NOT NULL DEFAULT '',
    ADD COLUMN failures INTEGER NOT NULL DEFAULT 0, ADD COLUMN checked_at BIGINT NOT NULL DEFAULT 0;
UPDATE domain_records r SET verified = coalesce((e.v ->> 'v')::boolean, FALSE),
    status = coalesce(e.v ->> 's', ''),
    state = CASE WHEN json_typeof(e.v -> 'st') = 'object' THEN (e.v -> 'st')::text ELSE '' END,
    failures = coalesce((e.v ->> 'f')::integer, 0), checked_at = coalesce((e.v ->> 'c')::bigint, 0),
    updated_at = greatest(r.updated_at, coalesce((e.v ->> 'u')::bigint, 0) - r.created_at - d.created_at)
FROM domains d, json_array_elements(nullif(d.checks, '')::json) AS e (v)
WHERE d.seq = r.domain_seq
    AND e.v ->> 'h' = substr(md5(r.name || E'\n' || r.type || E'\n' || r.value || E'\n'), 1, 16);
ALTER TABLE domains DROP COLUMN checks;
