// Which Redis failures the API answers with 503 (retry) rather than 500: a failover or restart answers READONLY,
// LOADING or MASTERDOWN before the client follows the new master, UNBLOCKED to a WAIT on a master demoted under it.
import t from 'tap';
import { isRedisError } from '../../services/api/errors';

t.test('a failover or restart reply is a Redis outage (503), a programming error is not', async (t) => {
  for (const msg of [
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    // The enqueue's WAIT on a master demoted under it (cluster campaign seed 102).
    'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
    'Command timed out',
    'Connection is closed.',
  ]) {
    t.ok(isRedisError(new Error(msg)), msg);
  }
  for (const msg of ['ERR wrong number of arguments', "Cannot read properties of undefined (reading 'id')", 'a READONLY flag in the middle']) {
    t.notOk(isRedisError(new Error(msg)), msg);
  }
});
