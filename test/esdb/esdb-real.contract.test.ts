import { describe } from 'vitest';
import { EventStoreDBEventStore } from '../../eventstore/esdb/store.js';
import { describeEventStoreContract } from '../eventstore/contract.js';

/** e.g. `ESDB_URL=esdb://127.0.0.1:2113?tls=false npm run test:esdb` (docker compose up kurrentdb). */
const url = process.env.ESDB_URL;

describe.skipIf(!url)('EventStoreDB at ESDB_URL', () => {
  describeEventStoreContract('EventStoreDB adapter on a real server', async () => {
    const store = new EventStoreDBEventStore(url!);
    return { store, atomicMultiStreamAppend: false, teardown: () => store.close() };
  });
});
