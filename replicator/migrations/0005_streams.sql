-- 0005: positions per apply stream.
--
-- The replicator applies a batch on several connections at once (streams):
-- each event, with its bookings, waitlist rows, payments and notifications,
-- belongs to one stream (a hash of its id). Each stream's transaction moves
-- its own element of `streams` (1-based) with its rows; applied_lsn is
-- their minimum, what every stream has. After a crash between the streams'
-- commits, each stream skips the records it has. A row from before this
-- migration (streams NULL) is at applied_lsn on every stream.
ALTER TABLE bookd.replication_state ADD COLUMN IF NOT EXISTS streams bigint[]
  CHECK (cardinality(streams) BETWEEN 1 AND 64 AND 0 <= ALL (streams));
