import type { Request } from 'express';
import { v5 as uuidV5 } from 'uuid';
import { AppError } from '../domain/errors.js';
import type { IdGenerator } from '../commands/handler.js';
import { principalOf } from './authenticate.js';

/** UUIDv5 namespace of resources created under an Idempotency-Key. */
const KEYED_RESOURCES = '6f1d3a2e-0c4b-4e8a-b7d5-93a1c2e4f608';
const KEY = /^[\x21-\x7e]{1,255}$/;

export interface CreationId {
  id: string;
  /** Whether the id came from an Idempotency-Key (a repeat then finds the resource). */
  keyed: boolean;
}

/**
 * The id a creating POST gives its resource. Under an `Idempotency-Key` the id is derived from
 * the tenant, the caller, the kind of resource and the key, so the stream itself remembers the
 * first call: a repeat finds the resource there (200, nothing written). No side table.
 */
export function creationId(req: Request, kind: string, ids: IdGenerator): CreationId {
  const key = req.get('Idempotency-Key');
  if (key === undefined) return { id: ids.newId(), keyed: false };
  if (!KEY.test(key)) {
    throw new AppError('invalid', 'Idempotency-Key must be 1-255 visible ASCII characters', {
      errors: [{ path: '/headers/idempotency-key', message: 'invalid' }],
    });
  }
  const principal = principalOf(req);
  return { id: uuidV5(`${principal.tenantId}\u0000${principal.id}\u0000${kind}\u0000${key}`, KEYED_RESOURCES), keyed: true };
}

/** A repeat under the same key must ask for the same thing. */
export function sameRequestOrRefuse(same: boolean): void {
  if (!same) {
    throw new AppError('unprocessable', 'This Idempotency-Key was already used for a different request', {
      errors: [{ path: '/headers/idempotency-key', message: 'reused with a different body' }],
    });
  }
}
