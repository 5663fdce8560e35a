import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { AppError } from '../domain/errors.js';
import type { Logger } from '../lib/logger.js';
import { groupSize, handleTogether, MAX_ITEMS_TOGETHER, type IngestBatch, type IngestQueue } from './batch.js';

export const INGEST_CONSUMER = 'fusion';
export const ingestStreamName = (namespace: string) => `${namespace.toUpperCase()}_INGEST`;
const NANOS_PER_MS = 1_000_000;

const token = (value: string) => value.replace(/[^A-Za-z0-9_-]/g, '_') || '_';

/**
 * The ingest queue on JetStream: a work-queue stream on file storage, one durable pull
 * consumer shared by every fusion worker of every process. A batch is queued once JetStream
 * has acknowledged it; it leaves the stream when a worker acknowledges having fused it, and
 * is delivered again if the worker dies first.
 */
export class JetStreamIngestQueue implements IngestQueue {
  readonly kind = 'jetstream' as const;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly logger: Logger,
    /** Messages delivered ahead of being taken. */
    private readonly buffered: number,
    private readonly stream: string,
    private readonly subjectPrefix: string,
  ) {}

  static async open(nc: NatsConnection, logger: Logger, options: { namespace: string }): Promise<JetStreamIngestQueue> {
    const jsm = await jetstreamManager(nc);
    const stream = ingestStreamName(options.namespace);
    const subjectPrefix = `${options.namespace}.ingest`;
    await jsm.streams.info(stream).catch(() =>
      jsm.streams.add({
        name: stream,
        subjects: [`${subjectPrefix}.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: 120_000 * NANOS_PER_MS,
      }),
    );
    await jsm.consumers.info(stream, INGEST_CONSUMER).catch(() =>
      jsm.consumers.add(stream, {
        durable_name: INGEST_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: 60_000 * NANOS_PER_MS,
        max_ack_pending: 1000,
      }),
    );
    return new JetStreamIngestQueue(nc, jetstream(nc), logger, 2 * (MAX_ITEMS_TOGETHER / 100), stream, subjectPrefix);
  }

  async enqueue(batch: IngestBatch): Promise<void> {
    try {
      await this.js.publish(`${this.subjectPrefix}.${token(batch.tenant_id)}`, JSON.stringify(batch), { msgID: batch.batch_id, timeout: 5000 });
    } catch (error) {
      this.logger.warn({ err: error, batch: batch.batch_id }, 'ingest queue: JetStream did not take the batch');
      throw new AppError('unavailable', 'The ingest queue (NATS JetStream) is not reachable; nothing was accepted, retry later', {
        retryAfterSeconds: 5,
      });
    }
  }

  async depth(): Promise<number> {
    const jsm = await jetstreamManager(this.nc);
    return (await jsm.streams.info(this.stream)).state.messages;
  }

  consume(handle: (batches: IngestBatch[]) => Promise<void>): { stop(): Promise<void> } {
    let stopped = false;
    let current: { stop(): void } | undefined;
    // Delivered and not yet taken: what arrives while a group is being fused waits here, and
    // goes into the next group together.
    const waiting: { message: JsMsg; batch: IngestBatch }[] = [];
    let wake: (() => void) | undefined;
    // The pump stops taking deliveries while `buffered` wait: unacknowledged, they would
    // otherwise pile up in memory up to the consumer's max_ack_pending, and outlive ack_wait.
    let room: (() => void) | undefined;
    const pump = async () => {
      while (!stopped) {
        try {
          const consumer = await this.js.consumers.get(this.stream, INGEST_CONSUMER);
          const messages = await consumer.consume({ max_messages: this.buffered });
          current = messages;
          for await (const message of messages) {
            try {
              waiting.push({ message, batch: message.json<IngestBatch>() });
            } catch (error) {
              this.logger.error({ err: error }, 'ingest queue: a message that is not a batch was dropped');
              message.term();
            }
            wake?.();
            while (waiting.length >= this.buffered && !stopped) await new Promise<void>((resolve) => (room = resolve));
            if (stopped) break;
          }
        } catch (error) {
          if (stopped) break;
          this.logger.warn({ err: error }, 'ingest queue: consuming from JetStream failed; trying again');
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
      wake?.();
    };
    // One group at a time per process, so the batches fused together never race each other.
    const work = async () => {
      while (!stopped) {
        if (waiting.length === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        const taken = waiting.splice(0, groupSize(waiting.map(({ batch }) => batch.items.length)));
        room?.();
        const keepAlive = setInterval(() => [...taken, ...waiting].forEach(({ message }) => message.working()), 20_000);
        try {
          const outcomes = await handleTogether(
            taken.map(({ batch }) => batch),
            handle,
          );
          for (const [i, { message }] of taken.entries()) {
            if (outcomes[i] === undefined) {
              message.ack();
              continue;
            }
            this.logger.error({ err: outcomes[i], redelivered: message.info.deliveryCount }, 'ingest batch failed; it will be redelivered');
            message.nak(Math.min(1000 * 2 ** message.info.deliveryCount, 60_000));
          }
        } finally {
          clearInterval(keepAlive);
        }
      }
      // Not taken before the stop: back to the stream at once, for another worker.
      for (const { message } of waiting.splice(0)) message.nak();
    };
    const pumping = pump();
    const working = work();
    return {
      async stop() {
        stopped = true;
        current?.stop();
        wake?.();
        room?.();
        await Promise.all([pumping, working]);
      },
    };
  }

  async close(): Promise<void> {}
}
