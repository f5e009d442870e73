-- Net Promoter Score answers (0-10) to the question operators send.
CREATE TABLE nps (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    customer_id      TEXT NOT NULL,
    channel          TEXT NOT NULL,
    score            INTEGER NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX nps_by_time ON nps (created_at);
