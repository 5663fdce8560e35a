import { describe } from 'vitest';
import { PostgresEventStore } from '../../eventstore/postgres/store.js';
import { hasPostgres, serverDatabase } from '../support/databases.js';
import { describeEventStoreContract } from './contract.js';

describe.skipIf(!hasPostgres)('PostgreSQL server', () => {
  describeEventStoreContract('PostgreSQL adapter on a Postgres server', async () => {
    const db = await serverDatabase('es');
    const store = await PostgresEventStore.open(db.pool);
    return {
      store,
      async teardown() {
        await store.close();
        await db.drop();
      },
    };
  });
});
