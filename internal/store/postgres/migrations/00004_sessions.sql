-- +goose Up
-- Dashboard sign-ins; the token itself is never stored, only its SHA-256.
CREATE TABLE sessions (
    hash       BYTEA  PRIMARY KEY,
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
