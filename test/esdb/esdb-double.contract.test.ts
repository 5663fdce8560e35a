import { EventStoreDBEventStore } from '../../eventstore/esdb/store.js';
import { describeEventStoreContract } from '../eventstore/contract.js';
import { startEsdbWireDouble } from './wire-double.js';

// EventStoreDB cannot run on this machine: the adapter and the real client talk gRPC to an
// in-memory test double of the server (see wire-double.ts); `npm run test:esdb` runs the same
// suite against a real server.
describeEventStoreContract('EventStoreDB adapter over gRPC to the wire-protocol test double', async () => {
  const server = await startEsdbWireDouble();
  const store = new EventStoreDBEventStore(server.connectionString);
  return {
    store,
    atomicMultiStreamAppend: false,
    async teardown() {
      await store.close();
      await server.stop();
    },
  };
});
