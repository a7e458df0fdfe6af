-- +goose Up
-- Times are Unix milliseconds (UTC); 0 means "not set". The PostgreSQL schema uses
-- the same numbers so both stores share one set of row mappings.
CREATE TABLE projects (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    prefix     TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

CREATE TABLE domains (
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
    UNIQUE (project_id, name)
);
-- Lists are per project, oldest first.
CREATE INDEX domains_project_created ON domains (project_id, created_at, id);

CREATE TABLE domain_records (
    domain_id  TEXT    NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    priority   INTEGER NOT NULL DEFAULT 0,
    purpose    TEXT    NOT NULL,
    verified   INTEGER NOT NULL DEFAULT 0,
    status     TEXT    NOT NULL,
    found      TEXT    NOT NULL DEFAULT '[]',
    problems   TEXT    NOT NULL DEFAULT '[]',
    failures   INTEGER NOT NULL DEFAULT 0,
    checked_at INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (domain_id, key)
);

-- +goose Down
DROP TABLE domain_records;
DROP TABLE domains;
DROP TABLE api_keys;
DROP TABLE projects;
