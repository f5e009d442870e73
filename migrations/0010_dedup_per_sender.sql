-- A message id identifies a message per sender: two customers of the `api` channel
-- may both send id "m-1" (and platforms number messages per conversation too). The
-- inbound message's sender (its channel user id) joins the deduplication key.
ALTER TABLE messages ADD COLUMN sender TEXT;
UPDATE messages SET sender = (SELECT c.channel_user_id FROM conversations c
                              WHERE c.id = messages.conversation_id)
 WHERE direction = 'in';
DROP INDEX messages_inbound_once;
CREATE UNIQUE INDEX messages_inbound_once_per_sender
    ON messages (channel, sender, channel_message_id)
    WHERE direction = 'in' AND channel_message_id IS NOT NULL;
