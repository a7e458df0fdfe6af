-- +goose NO TRANSACTION
-- +goose Up
-- Compact storage (see the README's "What is stored"). The domains table is
-- rebuilt, which SQLite allows only with foreign keys off (dropping the old
-- table would otherwise delete every row that references it), so this
-- migration runs its own transaction on the one writer connection.
--
-- domains: a small integer key (seq, the rowid) by which the records refer to
-- their domain, rather than repeating the 24-character id in each; one unique
-- index (name, project_id) both keeps a name once per project and finds a name
-- across projects (it replaces domains_name).
--
-- domain_records: keyed by (domain_seq, key); created_at is kept as the
-- milliseconds after the domain's creation and updated_at as those after the
-- record's (0 for a record made with its domain and never changed); a DKIM key
-- record of the form 'v=DKIM1; k=rsa; p=<base64>' (no padding) is kept as the
-- key's bytes, a BLOB (see sqlstore's storedValue); the status 'unchecked' of
-- a record not yet checked is kept as ''.
--
-- dkim_rotations: keyed by domain_seq, as the records (WITHOUT ROWID, so that
-- a NULL seq, of no domain, fails rather than takes a rowid); no project_id
-- (it is the domain's); current_value NULL while it is the value
-- of the domain's dkim record, as it is in txt mode between rotations.
--
-- events: the payload less what the row holds, packed (at the end).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE domains_new (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    project_id          INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    ownership_verified  INTEGER NOT NULL DEFAULT 0,
    dkim_enabled        INTEGER NOT NULL DEFAULT 0,
    mail_from_enabled   INTEGER NOT NULL DEFAULT 0,
    dmarc_enabled       INTEGER NOT NULL DEFAULT 0,
    dkim_private_key    BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    last_checked_at     INTEGER NOT NULL,
    verified_at         INTEGER NOT NULL DEFAULT 0,
    inbound_enabled_at  INTEGER NOT NULL DEFAULT 0,
    inbound_verified_at INTEGER NOT NULL DEFAULT 0,
    next_check_at       INTEGER NOT NULL DEFAULT 0,
    check_attempt       INTEGER NOT NULL DEFAULT 0,
    window_started_at   INTEGER NOT NULL DEFAULT 0,
    failed_at           INTEGER NOT NULL DEFAULT 0,
    check_owner         TEXT    NOT NULL DEFAULT '',
    check_until         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, project_id)
);
-- In the order of creation, so the records below are written in key order.
INSERT INTO domains_new (id, project_id, name, region, status, ownership_verified, dkim_enabled,
    mail_from_enabled, dmarc_enabled, dkim_private_key, created_at, last_checked_at, verified_at,
    inbound_enabled_at, inbound_verified_at, next_check_at, check_attempt, window_started_at, failed_at,
    check_owner, check_until)
SELECT id, project_id, name, region, status, ownership_verified, dkim_enabled,
    mail_from_enabled, dmarc_enabled, dkim_private_key, created_at, last_checked_at, verified_at,
    inbound_enabled_at, inbound_verified_at, next_check_at, check_attempt, window_started_at, failed_at,
    check_owner, check_until
FROM domains ORDER BY rowid;

CREATE TABLE domain_records_new (
    domain_seq INTEGER NOT NULL REFERENCES domains (seq) ON DELETE CASCADE,
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
    created_at INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (domain_seq, key)
) WITHOUT ROWID;
INSERT INTO domain_records_new
SELECT d.seq, r.key, r.position, r.name, r.type, r.value, r.priority, r.verified,
       CASE WHEN r.status = 'unchecked' THEN '' ELSE r.status END, r.state,
       r.failures, r.checked_at, r.created_at - d.created_at, r.updated_at - r.created_at
FROM domain_records r JOIN domains_new d ON d.id = r.domain_id
ORDER BY d.seq, r.key;
-- The DKIM key records, from base64 to bytes: four characters are three bytes.
UPDATE domain_records_new SET value = unhex((
    WITH RECURSIVE g(i, h) AS (
        SELECT 19, ''
        UNION ALL
        SELECT i + 4, h || printf('%06X',
            (instr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', substr(domain_records_new.value, i, 1)) - 1) * 262144
          + (instr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', substr(domain_records_new.value, i + 1, 1)) - 1) * 4096
          + (instr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', substr(domain_records_new.value, i + 2, 1)) - 1) * 64
          + (instr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', substr(domain_records_new.value, i + 3, 1)) - 1))
        FROM g WHERE i <= length(domain_records_new.value))
    SELECT h FROM g ORDER BY i DESC LIMIT 1))
WHERE typeof(value) = 'text' AND substr(value, 1, 18) = 'v=DKIM1; k=rsa; p=' AND length(value) > 18
  AND (length(value) - 18) % 4 = 0 AND substr(value, 19) NOT GLOB '*[^A-Za-z0-9+/]*';

CREATE TABLE dkim_rotations_new (
    domain_seq         INTEGER NOT NULL PRIMARY KEY REFERENCES domains (seq) ON DELETE CASCADE,
    mode               TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    current_selector   TEXT    NOT NULL,
    current_value      TEXT,
    current_since      INTEGER NOT NULL,
    current_visible_at INTEGER NOT NULL DEFAULT 0,
    next_selector      TEXT    NOT NULL DEFAULT '',
    next_value         TEXT    NOT NULL DEFAULT '',
    next_key           BLOB,
    prev_selector      TEXT    NOT NULL DEFAULT '',
    prev_value         TEXT    NOT NULL DEFAULT '',
    reason             TEXT    NOT NULL DEFAULT '',
    started_at         INTEGER NOT NULL DEFAULT 0,
    published_at       INTEGER NOT NULL DEFAULT 0,
    visible_at         INTEGER NOT NULL DEFAULT 0,
    switched_at        INTEGER NOT NULL DEFAULT 0,
    retire_at          INTEGER NOT NULL DEFAULT 0,
    retired_at         INTEGER NOT NULL DEFAULT 0,
    reminded_at        INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT    NOT NULL DEFAULT '',
    step_at            INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO dkim_rotations_new
SELECT d.seq, k.mode, k.state, k.current_selector,
       CASE WHEN k.current_value = r.value THEN NULL ELSE k.current_value END,
       k.current_since, k.current_visible_at, k.next_selector, k.next_value, k.next_key,
       k.prev_selector, k.prev_value, k.reason, k.started_at, k.published_at, k.visible_at,
       k.switched_at, k.retire_at, k.retired_at, k.reminded_at, k.attempts, k.last_error, k.step_at
FROM dkim_rotations k
JOIN domains_new d ON d.id = k.domain_id
LEFT JOIN domain_records r ON r.domain_id = k.domain_id AND r.key = 'dkim'
ORDER BY d.seq;

DROP TABLE dkim_rotations;
DROP TABLE domain_records;
DROP TABLE domains;
ALTER TABLE domains_new RENAME TO domains;
ALTER TABLE domain_records_new RENAME TO domain_records;
ALTER TABLE dkim_rotations_new RENAME TO dkim_rotations;
CREATE INDEX domains_project_created ON domains (project_id, created_at, id);
CREATE INDEX domains_due ON domains (next_check_at) WHERE next_check_at > 0;
CREATE INDEX domains_project_due ON domains (project_id, next_check_at) WHERE next_check_at > 0;
CREATE INDEX dkim_rotations_due ON dkim_rotations (step_at) WHERE step_at > 0;

-- events: the payload less its start, which the row holds (see sqlstore's
-- storedPayload): a payload starting as the row gives is kept as the rest
-- (unless that starts with '{' or '='), any other whole, marked with '='
-- unless it starts with '{'; and packed (DEFLATE with a preset dictionary, see
-- sqlstore's PayloadCodec, whose Pack the store registers as
-- domaind_pack_payload).
UPDATE events SET payload = domaind_pack_payload(CASE
        WHEN substr(events.payload, 1, length(x.p)) = x.p AND length(events.payload) > length(x.p)
             AND substr(events.payload, length(x.p) + 1, 1) NOT IN ('{', '=')
        THEN substr(events.payload, length(x.p) + 1)
        WHEN substr(events.payload, 1, 1) = '{' THEN events.payload
        ELSE '=' || events.payload END)
FROM (SELECT seq AS s, '{"type":"' || type || '","timestamp":"' || strftime('%Y-%m-%dT%H:%M:%S', created_at / 1000, 'unixepoch')
        || '.' || printf('%03d', created_at % 1000) || 'Z","data":{"eventId":"' || id || '","domainId":"' || domain_id || '",' AS p
      FROM events) AS x
WHERE x.s = events.seq AND typeof(events.payload) = 'text';

COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

UPDATE events SET payload = CASE WHEN substr(x.t, 1, 1) = '{' THEN x.t
        WHEN substr(x.t, 1, 1) = '=' THEN substr(x.t, 2)
        ELSE x.p || x.t END
FROM (SELECT seq AS s, '{"type":"' || type || '","timestamp":"' || strftime('%Y-%m-%dT%H:%M:%S', created_at / 1000, 'unixepoch')
        || '.' || printf('%03d', created_at % 1000) || 'Z","data":{"eventId":"' || id || '","domainId":"' || domain_id || '",' AS p,
             CASE WHEN typeof(payload) = 'blob' THEN domaind_unpack_payload(payload) ELSE payload END AS t
      FROM events) AS x
WHERE x.s = events.seq;


CREATE TABLE domains_old (
    id                  TEXT    PRIMARY KEY,
    project_id          INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    ownership_verified  INTEGER NOT NULL DEFAULT 0,
    dkim_enabled        INTEGER NOT NULL DEFAULT 0,
    mail_from_enabled   INTEGER NOT NULL DEFAULT 0,
    dmarc_enabled       INTEGER NOT NULL DEFAULT 0,
    dkim_private_key    BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    last_checked_at     INTEGER NOT NULL,
    verified_at         INTEGER NOT NULL DEFAULT 0,
    inbound_enabled_at  INTEGER NOT NULL DEFAULT 0,
    inbound_verified_at INTEGER NOT NULL DEFAULT 0,
    next_check_at       INTEGER NOT NULL DEFAULT 0,
    check_attempt       INTEGER NOT NULL DEFAULT 0,
    window_started_at   INTEGER NOT NULL DEFAULT 0,
    failed_at           INTEGER NOT NULL DEFAULT 0,
    check_owner         TEXT    NOT NULL DEFAULT '',
    check_until         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, name)
);
INSERT INTO domains_old
SELECT id, project_id, name, region, status, ownership_verified, dkim_enabled,
    mail_from_enabled, dmarc_enabled, dkim_private_key, created_at, last_checked_at, verified_at,
    inbound_enabled_at, inbound_verified_at, next_check_at, check_attempt, window_started_at, failed_at,
    check_owner, check_until
FROM domains ORDER BY seq;

CREATE TABLE domain_records_old (
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
-- The DKIM key records, from bytes back to base64: three bytes (six hex
-- digits) are four characters.
INSERT INTO domain_records_old
SELECT d.id, r.key, r.position, r.name, r.type,
       CASE WHEN typeof(r.value) = 'blob' THEN 'v=DKIM1; k=rsa; p=' || (
           WITH RECURSIVE g(i, s) AS (
               SELECT 1, ''
               UNION ALL
               SELECT i + 6, s || (SELECT
                     substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (n >> 18) + 1, 1)
                  || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', ((n >> 12) & 63) + 1, 1)
                  || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', ((n >> 6) & 63) + 1, 1)
                  || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (n & 63) + 1, 1)
                 FROM (SELECT (instr('0123456789ABCDEF', substr(hex(r.value), i, 1)) - 1) * 1048576
                     + (instr('0123456789ABCDEF', substr(hex(r.value), i + 1, 1)) - 1) * 65536
                     + (instr('0123456789ABCDEF', substr(hex(r.value), i + 2, 1)) - 1) * 4096
                     + (instr('0123456789ABCDEF', substr(hex(r.value), i + 3, 1)) - 1) * 256
                     + (instr('0123456789ABCDEF', substr(hex(r.value), i + 4, 1)) - 1) * 16
                     + (instr('0123456789ABCDEF', substr(hex(r.value), i + 5, 1)) - 1) AS n))
               FROM g WHERE i < length(hex(r.value)))
           SELECT s FROM g ORDER BY i DESC LIMIT 1)
       ELSE r.value END,
       r.priority, r.verified, CASE WHEN r.status = '' THEN 'unchecked' ELSE r.status END,
       r.state, r.failures, r.checked_at,
       d.created_at + r.created_at, d.created_at + r.created_at + r.updated_at
FROM domain_records r JOIN domains d ON d.seq = r.domain_seq
ORDER BY d.id, r.key;

CREATE TABLE dkim_rotations_old (
    domain_id          TEXT    PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    project_id         INTEGER NOT NULL,
    mode               TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    current_selector   TEXT    NOT NULL,
    current_value      TEXT    NOT NULL,
    current_since      INTEGER NOT NULL,
    current_visible_at INTEGER NOT NULL DEFAULT 0,
    next_selector      TEXT    NOT NULL DEFAULT '',
    next_value         TEXT    NOT NULL DEFAULT '',
    next_key           BLOB,
    prev_selector      TEXT    NOT NULL DEFAULT '',
    prev_value         TEXT    NOT NULL DEFAULT '',
    reason             TEXT    NOT NULL DEFAULT '',
    started_at         INTEGER NOT NULL DEFAULT 0,
    published_at       INTEGER NOT NULL DEFAULT 0,
    visible_at         INTEGER NOT NULL DEFAULT 0,
    switched_at        INTEGER NOT NULL DEFAULT 0,
    retire_at          INTEGER NOT NULL DEFAULT 0,
    retired_at         INTEGER NOT NULL DEFAULT 0,
    reminded_at        INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT    NOT NULL DEFAULT '',
    step_at            INTEGER NOT NULL DEFAULT 0
);
INSERT INTO dkim_rotations_old
SELECT d.id, d.project_id, k.mode, k.state, k.current_selector,
       -- A value of its own (cname mode: the dkim record is a CNAME) may be
       -- kept as bytes, like the records'.
       CASE WHEN k.current_value IS NULL THEN coalesce(r.value, '') ELSE domaind_value_text(k.current_value) END,
       k.current_since, k.current_visible_at, k.next_selector, k.next_value, k.next_key,
       k.prev_selector, k.prev_value, k.reason, k.started_at, k.published_at, k.visible_at,
       k.switched_at, k.retire_at, k.retired_at, k.reminded_at, k.attempts, k.last_error, k.step_at
FROM dkim_rotations k
JOIN domains d ON d.seq = k.domain_seq
LEFT JOIN domain_records_old r ON r.domain_id = d.id AND r.key = 'dkim';

DROP TABLE dkim_rotations;
DROP TABLE domain_records;
DROP TABLE domains;
ALTER TABLE domains_old RENAME TO domains;
ALTER TABLE domain_records_old RENAME TO domain_records;
ALTER TABLE dkim_rotations_old RENAME TO dkim_rotations;
CREATE INDEX domains_project_created ON domains (project_id, created_at, id);
CREATE INDEX domains_due ON domains (next_check_at) WHERE next_check_at > 0;
CREATE INDEX domains_name ON domains (name);
CREATE INDEX domains_project_due ON domains (project_id, next_check_at) WHERE next_check_at > 0;
CREATE INDEX dkim_rotations_due ON dkim_rotations (step_at) WHERE step_at > 0;
COMMIT;
PRAGMA foreign_keys = ON;
