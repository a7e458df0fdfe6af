-- +goose Up
-- DKIM key rotation, one row per domain (see the README's state machine). The
-- next key is sealed with the master key for its domain, as the current one is
-- (domains.dkim_private_key); at the switch it replaces the current one in the
-- same transaction that moves the records. Times are Unix milliseconds, 0 unset.
CREATE TABLE dkim_rotations (
    domain_id          TEXT    PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    project_id         INTEGER NOT NULL,
    mode               TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    current_selector   TEXT    NOT NULL,
    current_value      TEXT    NOT NULL,
    current_since      INTEGER NOT NULL,
    -- cname mode: when the current key's TXT was seen on every server of the
    -- operator's zone; the domain signs only after it.
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
    -- When the rotation worker next looks at the row; 0: never (idle with no
    -- automatic rotation).
    step_at            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dkim_rotations_due ON dkim_rotations (step_at) WHERE step_at > 0;

-- +goose Down
DROP INDEX dkim_rotations_due;
DROP TABLE dkim_rotations;
