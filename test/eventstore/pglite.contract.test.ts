import { PostgresEventStore } from '../../eventstore/postgres/store.js';
import { embeddedDatabase } from '../support/databases.js';
import { describeEventStoreContract } from './contract.js';

describeEventStoreContract('PostgreSQL adapter on PGlite (embedded)', async () => {
  const db = await embeddedDatabase();
  const store = await PostgresEventStore.open(db.pool);
  return {
    store,
    async teardown() {
      await store.close();
      await db.drop();
    },
  };
});
