import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProjectionDaemon } from '../projections/daemon.js';

/** The process' Prometheus metrics; one registry per runtime so tests can run several. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'aisoc_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly appendedEvents = new Counter({
    name: 'aisoc_events_appended_total',
    help: 'Events appended to the event store by this process',
    registers: [this.registry],
  });
  readonly appends = new Counter({
    name: 'aisoc_appends_total',
    help: 'Append calls by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'aisoc_process_' });
  }

  /** Projection gauges are read from the daemon's runners at scrape time. */
  watchProjections(daemon: ProjectionDaemon): void {
    const runners = () => daemon.localRunners().filter((r) => !r.isRetired);
    new Gauge({
      name: 'aisoc_projection_events_applied',
      help: 'Events applied by each projection version run in this process since it started',
      labelNames: ['projection', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of runners()) this.set({ projection: r.name, version: String(r.version) }, r.eventsApplied);
      },
    });
    new Gauge({
      name: 'aisoc_projection_catching_up',
      help: '1 while a projection version has not yet reached the head of the log',
      labelNames: ['projection', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of runners()) this.set({ projection: r.name, version: String(r.version) }, r.caughtUp ? 0 : 1);
      },
    });
    new Gauge({
      name: 'aisoc_projection_lag_seconds',
      help: 'Age of the newest event a projection has applied, while it is catching up (0 once at the head)',
      labelNames: ['projection', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of runners()) {
          const lag = r.caughtUp || !r.lastEventAt ? 0 : (Date.now() - r.lastEventAt.getTime()) / 1000;
          this.set({ projection: r.name, version: String(r.version) }, lag);
        }
      },
    });
    new Gauge({
      name: 'aisoc_projection_checkpoint_timestamp_seconds',
      help: 'When the newest event a projection has applied was recorded',
      labelNames: ['projection', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of runners()) {
          if (r.lastEventAt) this.set({ projection: r.name, version: String(r.version) }, r.lastEventAt.getTime() / 1000);
        }
      },
    });
  }
}
