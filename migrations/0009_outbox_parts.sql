-- A reply longer than a platform's message limit goes out in several parts; the
-- parts already delivered are not sent again when a later part is retried.
ALTER TABLE outbox ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
