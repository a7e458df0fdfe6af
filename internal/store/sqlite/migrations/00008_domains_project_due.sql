-- +goose Up
-- The claim of due checks takes each project's most overdue domains through this
-- index, so one project's backlog of due domains costs it one probe, not a read
-- of every due domain (see ClaimChecks).
CREATE INDEX domains_project_due ON domains (project_id, next_check_at) WHERE next_check_at > 0;

-- +goose Down
DROP INDEX domains_project_due;
