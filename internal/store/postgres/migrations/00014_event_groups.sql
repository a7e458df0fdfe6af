-- +goose Up
-- A domain's events are kept in groups: one row holds the events one write
-- adds to one domain, oldest first, as a text of their ids, types, times and
-- payloads (see sqlstore's eventGroups): the events of a group separated by
-- chr(30), an event's four fields by chr(31), which JSON never holds
-- unescaped. A check that verifies a domain raises six events, and one row
-- costs it one insert where six cost six. events counts the events of the
-- group. Each event stored so far becomes a group of its own, in its order.
-- The lock makes a replica of the version before, still saving events during
-- a rolling upgrade, wait for the copy and then fail on the dropped table,
-- rather than commit an event after the copy has read the table.
LOCK TABLE events IN EXCLUSIVE MODE;
CREATE TABLE event_groups (
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id BIGINT  NOT NULL,
    domain_id  TEXT    COLLATE "C" NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    events     INTEGER NOT NULL,
    body       TEXT    NOT NULL
);
INSERT INTO event_groups (seq, project_id, domain_id, events, body) OVERRIDING SYSTEM VALUE
SELECT seq, project_id, domain_id, 1, id || chr(31) || type || chr(31) || created_at || chr(31) || payload
FROM events ORDER BY seq;
SELECT setval(pg_get_serial_sequence('event_groups', 'seq'), coalesce(max(seq), 0) + 1, false) FROM event_groups;
DROP TABLE events;
CREATE INDEX event_groups_domain ON event_groups (domain_id, seq);

-- +goose Down
-- Each event of each group becomes a row again, in the groups' order and
-- each group's.
CREATE TABLE events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   COLLATE "C" NOT NULL UNIQUE,
    project_id BIGINT NOT NULL,
    domain_id  TEXT   COLLATE "C" NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    type       TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO events (id, project_id, domain_id, type, payload, created_at)
SELECT split_part(e.x, chr(31), 1), g.project_id, g.domain_id, split_part(e.x, chr(31), 2),
       split_part(e.x, chr(31), 4), CAST(split_part(e.x, chr(31), 3) AS BIGINT)
FROM event_groups g, regexp_split_to_table(g.body, chr(30)) WITH ORDINALITY AS e(x, i)
ORDER BY g.seq, e.i;
CREATE INDEX events_domain ON events (domain_id, seq);
DROP TABLE event_groups;
