-- +goose Up
-- The automatic re-check schedule lives in the database, so any replica can claim
-- due checks and a crashed one loses nothing.
ALTER TABLE domains ADD COLUMN next_check_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN check_attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN window_started_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN failed_at BIGINT NOT NULL DEFAULT 0;
-- Only scheduled domains are in the index, so claiming costs the same however many
-- domains are not due.
CREATE INDEX domains_due ON domains (next_check_at) WHERE next_check_at > 0;

-- seq orders a domain's events newest first; ids are random.
CREATE TABLE events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   COLLATE "C" NOT NULL UNIQUE,
    project_id BIGINT NOT NULL,
    domain_id  TEXT   COLLATE "C" NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    type       TEXT   NOT NULL,
    -- TEXT, not JSONB: webhooks sign these exact bytes, which JSONB would rewrite.
    payload    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_domain ON events (domain_id, seq);

CREATE TABLE webhooks (
    id            TEXT   COLLATE "C" PRIMARY KEY,
    project_id    BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url           TEXT   NOT NULL,
    events        TEXT   NOT NULL,
    sealed_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id, created_at);

-- The outbox: a delivery is written in the same transaction as its event.
CREATE TABLE webhook_deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT   COLLATE "C" NOT NULL UNIQUE,
    webhook_id      TEXT   COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT   COLLATE "C" NOT NULL,
    event_type      TEXT   NOT NULL,
    project_id      BIGINT NOT NULL,
    payload         TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON webhook_deliveries (webhook_id, seq);

-- seq breaks ties between attempts in the same millisecond, as SQLite's rowid does.
CREATE TABLE webhook_attempts (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id TEXT    COLLATE "C" NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at          BIGINT  NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    duration_ms BIGINT  NOT NULL
);
CREATE INDEX attempts_delivery ON webhook_attempts (delivery_id, at, seq);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE events;
DROP INDEX domains_due;
ALTER TABLE domains DROP COLUMN failed_at;
ALTER TABLE domains DROP COLUMN window_started_at;
ALTER TABLE domains DROP COLUMN check_attempt;
ALTER TABLE domains DROP COLUMN next_check_at;
