-- Waiting for a person. `resolution` says how a ticket ended when it was not an
-- agent's resolve or release: `withdrawn` (the customer took the request back before
-- any agent took it; such a ticket counts neither as SLA met nor missed). `comment`
-- is the remark a customer adds right after an NPS score.
ALTER TABLE tickets ADD COLUMN resolution TEXT;
ALTER TABLE nps ADD COLUMN comment TEXT;
