-- +goose Up
-- A domain's events are kept in groups: one row holds the events one write
-- adds to one domain, oldest first, as a packed text of their ids, types,
-- times and payloads (see sqlstore's eventGroups, whose text of one event the
-- store registers as domaind_event_group). A check that verifies a
-- domain raises six events, and one row costs it one packing and one insert
-- where six cost six. events counts the events of the group. Each event
-- stored so far becomes a group of its own, in its order.
CREATE TABLE event_groups (
    seq        INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    domain_id  TEXT    NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    events     INTEGER NOT NULL,
    body       BLOB    NOT NULL
);
INSERT INTO event_groups (seq, project_id, domain_id, events, body)
SELECT seq, project_id, domain_id, 1, domaind_pack_payload(domaind_event_group(id, type, created_at,
       CASE WHEN typeof(payload) = 'blob' THEN domaind_unpack_payload(payload) ELSE payload END))
FROM events ORDER BY seq;
DROP TABLE events;
CREATE INDEX event_groups_domain ON event_groups (domain_id, seq);

-- +goose Down
-- Each event of each group becomes a row again, in the groups' order and
-- each group's, its payload packed as migration 00011 keeps it.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    project_id INTEGER NOT NULL,
    domain_id  TEXT    NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    type       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO events (id, project_id, domain_id, type, payload, created_at)
SELECT json_extract(e.value, '$[0]'), g.project_id, g.domain_id, json_extract(e.value, '$[1]'),
       domaind_pack_payload(json_extract(e.value, '$[3]')), json_extract(e.value, '$[2]')
FROM event_groups g, json_each(domaind_event_group_json(domaind_unpack_payload(g.body))) AS e
ORDER BY g.seq, e.key;
CREATE INDEX events_domain ON events (domain_id, seq);
DROP TABLE event_groups;
