import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { AppError } from '../domain/errors.js';
import type { Logger } from '../lib/logger.js';
import type { IngestBatch, IngestQueue } from './batch.js';

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
    private readonly concurrency: number,
    private readonly stream: string,
    private readonly subjectPrefix: string,
  ) {}

  static async open(nc: NatsConnection, logger: Logger, options: { namespace: string; concurrency?: number }): Promise<JetStreamIngestQueue> {
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
    return new JetStreamIngestQueue(nc, jetstream(nc), logger, options.concurrency ?? 4, stream, subjectPrefix);
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

  consume(handle: (batch: IngestBatch) => Promise<void>): { stop(): Promise<void> } {
    let stopped = false;
    let current: { stop(): void } | undefined;
    const inFlight = new Set<Promise<void>>();
    const run = async () => {
      while (!stopped) {
        try {
          const consumer = await this.js.consumers.get(this.stream, INGEST_CONSUMER);
          const messages = await consumer.consume({ max_messages: this.concurrency * 2 });
          current = messages;
          for await (const message of messages) {
            while (inFlight.size >= this.concurrency) await Promise.race(inFlight);
            const task = (async () => {
              const keepAlive = setInterval(() => message.working(), 20_000);
              try {
                await handle(message.json<IngestBatch>());
                message.ack();
              } catch (error) {
                this.logger.error({ err: error, redelivered: message.info.deliveryCount }, 'ingest batch failed; it will be redelivered');
                message.nak(Math.min(1000 * 2 ** message.info.deliveryCount, 60_000));
              } finally {
                clearInterval(keepAlive);
              }
            })();
            inFlight.add(task);
            void task.finally(() => inFlight.delete(task));
            if (stopped) break;
          }
        } catch (error) {
          if (stopped) break;
          this.logger.warn({ err: error }, 'ingest queue: consuming from JetStream failed; trying again');
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
      await Promise.allSettled(inFlight);
    };
    const running = run();
    return {
      async stop() {
        stopped = true;
        current?.stop();
        await running;
      },
    };
  }

  async close(): Promise<void> {}
}
