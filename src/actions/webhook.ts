import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { z } from 'zod';
import { SECRET_NAME } from './settings.js';
import { resolveTarget, type ResolvedTarget } from './ssrf.js';
import type { ActionRuntime, ActionType, Outcome } from './types.js';

export const SIGNATURE_HEADER = 'X-AiSOC-Signature';
export const DELIVERY_HEADER = 'X-AiSOC-Delivery';
const MAX_RESPONSE_BYTES = 64 * 1024;

export const signatureOf = (secret: string, body: Buffer | string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

interface WebhookInputs {
  url: string;
  body?: unknown;
  secret?: string;
  timeout_ms?: number;
}

/**
 * POSTs once to the checked address, never following a redirect (a redirect could lead back
 * inside), and gives up after the timeout whatever stage it is at.
 */
function post(target: ResolvedTarget, body: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<number> {
  const { url } = target;
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request({
      host: target.address,
      family: target.family,
      port: url.port || (secure ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      agent: false,
      // TLS still checks the certificate against the name, not the address connected to.
      ...(secure && !isIP(target.hostname) ? { servername: target.hostname } : {}),
      headers: { ...headers, Host: url.host, 'Content-Length': String(body.length) },
    });
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.on('response', (response) => {
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_RESPONSE_BYTES) response.destroy();
      });
      const done = () => {
        clearTimeout(timer);
        resolve(response.statusCode ?? 0);
      };
      response.on('end', done);
      response.on('close', done);
      response.on('error', done);
    });
    request.end(body);
  });
}

/**
 * `webhook`: POSTs a JSON body, signed with HMAC-SHA256 over the exact bytes sent
 * (`X-AiSOC-Signature: sha256=<hex>`), to an http(s) URL that the SSRF guard lets through.
 * `X-AiSOC-Delivery` is the same for a redelivered step, so a receiver can drop a repeat.
 */
export function webhookAction(rt: ActionRuntime): ActionType<WebhookInputs> {
  const settings = rt.webhook;
  const secretOf = (inputs: WebhookInputs) => (inputs.secret ? settings.secrets.get(inputs.secret) : settings.defaultSecret);
  const inputs = z
    .strictObject({
      url: z
        .string()
        .min(1)
        .max(2048)
        .refine((value) => {
          try {
            return ['http:', 'https:'].includes(new URL(value).protocol);
          } catch {
            return false;
          }
        }, 'must be an http:// or https:// URL'),
      body: z.unknown().optional(),
      secret: z.string().regex(SECRET_NAME, 'must name a secret of AISOC_WEBHOOK_SECRETS').optional(),
      timeout_ms: z.number().int().min(100).max(60_000).optional(),
    })
    .superRefine((value, ctx) => {
      if (value.secret !== undefined && !settings.secrets.has(value.secret)) {
        ctx.addIssue({ code: 'custom', path: ['secret'], message: `no webhook secret named ${value.secret} is configured (AISOC_WEBHOOK_SECRETS)` });
      }
      if (value.secret === undefined && settings.defaultSecret === undefined) {
        ctx.addIssue({ code: 'custom', path: ['secret'], message: 'webhooks are signed: name a secret of AISOC_WEBHOOK_SECRETS, or set AISOC_WEBHOOK_SECRET' });
      }
    });

  return {
    name: 'webhook',
    description:
      'POSTs a JSON body (`body`, or the run and its subject) to an http(s) URL, signed with X-AiSOC-Signature: sha256=<HMAC of the body>; private, loopback and link-local targets are refused unless allow-listed.',
    risk: 'low',
    inputs,
    target: (value) => ({ type: 'url', value: value.url }),
    async preview(value) {
      const resolution = await resolveTarget(value.url, settings.allowList, rt.resolver);
      const signedWith = value.secret ? `secret ${value.secret}` : 'AISOC_WEBHOOK_SECRET';
      if (!resolution.ok) return { effect: `POST a JSON body signed with ${signedWith} to ${value.url}`, refusal: resolution.reason };
      return { effect: `POST a JSON body signed with ${signedWith} to ${value.url} (connecting to ${resolution.target.address})`, refusal: null };
    },
    async execute(value, execution): Promise<Outcome> {
      const resolution = await resolveTarget(value.url, settings.allowList, rt.resolver);
      if (!resolution.ok) return { status: 'failed', reason: `Webhook to ${value.url} ${resolution.reason}` };
      const payload =
        value.body !== undefined
          ? value.body
          : {
              delivery_id: execution.key,
              run_id: execution.run?.id ?? null,
              playbook_id: execution.run?.playbookId ?? null,
              step_id: execution.run?.stepId ?? null,
              subject: execution.subject,
            };
      const body = Buffer.from(JSON.stringify(payload ?? null));
      const secret = secretOf(value);
      if (secret === undefined) return { status: 'failed', reason: 'No signing secret is configured for this webhook' };
      let status: number;
      try {
        status = await post(
          resolution.target,
          body,
          {
            'Content-Type': 'application/json',
            'User-Agent': 'AiSOC-Webhook/1',
            [SIGNATURE_HEADER]: signatureOf(secret, body),
            [DELIVERY_HEADER]: execution.key,
          },
          value.timeout_ms ?? settings.timeoutMs,
        );
      } catch (error) {
        return { status: 'failed', reason: `Webhook to ${value.url} could not be delivered: ${error instanceof Error ? error.message : String(error)}` };
      }
      if (status < 200 || status > 299) return { status: 'failed', reason: `Webhook to ${value.url} answered HTTP ${status}` };
      return { status: 'succeeded', detail: `Webhook to ${value.url} answered HTTP ${status}`, output: { status_code: String(status) } };
    },
  };
}
