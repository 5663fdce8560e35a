/**
 * Every committed event reaches JetStream on `aisoc.events.<tenant>.<category>`, in log order,
 * with the event id as message id: re-publishing after a lost checkpoint adds nothing.
 */
import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand, type CommandContext } from '../../src/commands/handler.js';
import { alertDecider, alertStream } from '../../src/domain/alert.js';
import { caseDecider, caseStream } from '../../src/domain/case.js';
import { uuidV7Ids } from '../../src/lib/clock.js';
import { eventsStreamName } from '../../src/projections/nats-forwarder.js';
import type { Runtime } from '../../src/runtime.js';
import { hasNats, natsUrl } from '../support/databases.js';
import { testRuntime, type TestRuntime } from '../support/runtime.js';

interface Forwarded {
  subject: string;
  msgId: string | undefined;
  body: { id: string; type: string; stream_id: string; metadata: { tenant_id: string } };
}

describe.skipIf(!hasNats)('forwarding committed events to NATS JetStream', () => {
  let fixture: TestRuntime;
  let rt: Runtime;
  let nc: NatsConnection;
  const tenant = `tenant_${randomUUID().slice(0, 8)}`;
  let namespace: string;
  let EVENTS_STREAM: string;
  const context: CommandContext = { tenantId: tenant, actor: { type: 'user', id: 'ana' } };

  beforeAll(async () => {
    fixture = await testRuntime('embedded', { NATS_URL: natsUrl });
    rt = fixture.runtime;
    namespace = fixture.env.AISOC_NATS_NAMESPACE!;
    EVENTS_STREAM = eventsStreamName(namespace);
    nc = await connect({ servers: natsUrl });
  });
  afterAll(async () => {
    await nc?.close();
    await fixture?.cleanup();
  });

  /** Reads what the tenant's subjects hold, from the start of the stream. */
  async function forwarded(expected: number): Promise<Forwarded[]> {
    const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, { filter_subjects: `${namespace}.events.${tenant}.>` });
    const messages = await consumer.consume();
    const received: Forwarded[] = [];
    const deadline = setTimeout(() => messages.stop(), 10_000);
    for await (const m of messages) {
      received.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), body: m.json() });
      if (received.length >= expected) break;
    }
    clearTimeout(deadline);
    await messages.close();
    return received;
  }

  /** How many messages the tenant's subjects hold. */
  async function countForwarded(): Promise<number> {
    const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, { filter_subjects: `${namespace}.events.${tenant}.>` });
    return (await consumer.info()).num_pending;
  }

  async function waitForwarded(position: string | undefined): Promise<void> {
    await rt.daemon.waitFor(position as never, ['nats_forwarder'], 15_000);
  }

  it('publishes each event once, in log order, on its tenant and category subject', async () => {
    const alertId = uuidV7Ids.newId();
    const caseId = uuidV7Ids.newId();
    await handleCommand(rt.commands, alertDecider, alertStream(alertId), {
      type: 'IngestAlert',
      alert: { alert_id: alertId, source: 'edr', source_ref: 'r1', title: 'Mimikatz', severity: 'critical', occurred_at: new Date().toISOString() },
    }, context);
    await handleCommand(rt.commands, caseDecider, caseStream(caseId), { type: 'OpenCase', case: { case_id: caseId, title: 'Credential theft', severity: 'critical', alert_ids: [alertId] } }, context);
    const last = await handleCommand(rt.commands, alertDecider, alertStream(alertId), { type: 'ChangeAlertStatus', status: 'in_progress' }, context);
    await waitForwarded(last.position);

    const events = [...(await rt.store.readStream(alertStream(alertId))), ...(await rt.store.readStream(caseStream(caseId)))].sort((a, b) =>
      a.position < b.position ? -1 : 1,
    );
    const received = await forwarded(3);
    expect(received.map((m) => m.body.id)).toEqual(events.map((e) => e.id));
    expect(received.map((m) => m.msgId)).toEqual(events.map((e) => e.id));
    expect(received.map((m) => m.subject)).toEqual([`${namespace}.events.${tenant}.alert`, `${namespace}.events.${tenant}.case`, `${namespace}.events.${tenant}.alert`]);
    expect(received[0]!.body).toMatchObject({ type: 'alert.ingested', stream_id: alertStream(alertId), metadata: { tenant_id: tenant } });
  });

  it('publishing again after a lost checkpoint adds no duplicate', async () => {
    expect(await countForwarded()).toBe(3);
    const forwarder = async () => (await rt.daemon.status()).find((s) => s.name === 'nats_forwarder')!.events_applied;
    const publishedBefore = await forwarder();
    // As if the process died after publishing and before checkpointing: start over from the beginning.
    await rt.close();
    const reopened = await fixture.reopen();
    await reopened.database.db.updateTable('projections').set({ position: null }).where('name', '=', 'nats_forwarder').execute();
    await reopened.close();
    rt = await fixture.reopen();
    await waitForwarded(await rt.store.headPosition());
    expect(await forwarder()).toBeGreaterThanOrEqual(publishedBefore + 3);
    expect(await countForwarded()).toBe(3);
  });
});
