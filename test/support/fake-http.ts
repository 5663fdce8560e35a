/**
 * TEST DOUBLE: the scriptable HTTP machinery under the fake model APIs (fake-openai.ts,
 * fake-anthropic.ts). A real node:http server on 127.0.0.1, port 0, that records every request
 * and answers each from a queue of scripted replies or from a function of the request. A reply
 * can be JSON, raw bytes (malformed bodies), delayed (timeouts), stalled after the headers, or a
 * dropped connection.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  raw: string;
}

/** An answer: JSON or raw bytes, possibly late or stalled half-way. */
export interface HttpReply {
  status?: number;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (wins over `json`): for malformed answers. */
  body?: string;
  /** Wait this long before answering at all. */
  delayMs?: number;
  /** Send the headers and half of the body, then wait this long before the rest. */
  stallBodyMs?: number;
}

/** An answer, or closing the connection without one. */
export type FakeReply = HttpReply | { drop: true };

export type FakeHandler = (request: RecordedRequest) => FakeReply | Promise<FakeReply>;

export class FakeHttpServer {
  readonly requests: RecordedRequest[] = [];
  private readonly queue: (FakeReply | FakeHandler)[] = [];
  private handler: FakeHandler | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private port = 0;

  /**
   * @param guard answers a request before any script when it returns a reply (authentication,
   *   validation of the request the way the real API would refuse it).
   * @param fallback answers when nothing is scripted.
   */
  constructor(
    private readonly guard: (request: RecordedRequest) => FakeReply | undefined,
    private readonly fallback: FakeHandler,
  ) {}

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch {
          json = undefined;
        }
        const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, json, raw };
        this.requests.push(recorded);
        void this.answer(recorded, res);
      });
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Queues replies, answered one per request in order (before any handler). */
  enqueue(...replies: (FakeReply | FakeHandler)[]): void {
    this.queue.push(...replies);
  }

  /** Answers every request that finds the queue empty. */
  setHandler(handler: FakeHandler | undefined): void {
    this.handler = handler;
  }

  get last(): RecordedRequest {
    const last = this.requests.at(-1);
    if (!last) throw new Error('the fake server has received no request');
    return last;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private async answer(request: RecordedRequest, res: ServerResponse): Promise<void> {
    let reply: FakeReply;
    try {
      const guarded = this.guard(request);
      if (guarded) reply = guarded;
      else {
        const next = this.queue.shift() ?? this.handler ?? this.fallback;
        reply = typeof next === 'function' ? await next(request) : next;
      }
    } catch (error) {
      reply = { status: 599, body: `fake server script failed: ${error instanceof Error ? error.message : String(error)}` };
    }
    if ('drop' in reply) {
      res.socket?.destroy();
      return;
    }
    if (reply.delayMs) await this.sleep(reply.delayMs);
    if (res.destroyed || res.socket?.destroyed) return;
    const body = reply.body ?? (reply.json === undefined ? '' : JSON.stringify(reply.json));
    const isJson = reply.body === undefined && reply.json !== undefined;
    res.writeHead(reply.status ?? 200, {
      ...(isJson ? { 'content-type': 'application/json' } : { 'content-type': 'text/plain' }),
      'content-length': Buffer.byteLength(body),
      ...reply.headers,
    });
    if (reply.stallBodyMs) {
      const half = Math.floor(body.length / 2);
      res.write(body.slice(0, half));
      await this.sleep(reply.stallBodyMs);
      if (res.destroyed || res.socket?.destroyed) return;
      res.end(body.slice(half));
      return;
    }
    res.end(body);
  }
}
