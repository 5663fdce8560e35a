import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id, Timestamp } from './values.js';

export const apiKeyStream = (keyId: string) => `apikey-${keyId}`;

export const ApiKeyCreated = defineEvent(
  'apikey.created',
  z.object({
    key_id: Id,
    name: z.string().trim().min(1).max(200),
    secret_hash: z.string().regex(/^[0-9a-f]{64}$/),
    permissions: z.array(z.string()).min(1),
    expires_at: Timestamp.nullable(),
    owner_id: Id,
  }),
);
export const ApiKeyRevoked = defineEvent('apikey.revoked', z.object({}));

export const API_KEY_EVENTS = [ApiKeyCreated, ApiKeyRevoked] as const;
export type ApiKeyEvent = EventOf<(typeof API_KEY_EVENTS)[number]>;

export type ApiKeyCommand =
  | { type: 'CreateApiKey'; key: z.input<typeof ApiKeyCreated.schema> }
  | { type: 'RevokeApiKey'; by: string; mayRevokeOthers: boolean };

export interface ApiKeyState {
  exists: boolean;
  revoked: boolean;
  ownerId: string;
}

export const apiKeyDecider: Decider<ApiKeyCommand, ApiKeyEvent, ApiKeyState> = {
  initialState: () => ({ exists: false, revoked: false, ownerId: '' }),
  evolve(state, event) {
    return event.type === 'apikey.created' ? { ...state, exists: true, ownerId: event.data.owner_id } : { ...state, revoked: true };
  },
  decide(command, state) {
    if (command.type === 'CreateApiKey') {
      if (state.exists) throw new AppError('conflict', 'This API key already exists');
      return [ApiKeyCreated(command.key)];
    }
    // Someone else's key is not theirs to see, unless they administer access.
    if (!state.exists || (state.ownerId !== command.by && !command.mayRevokeOthers)) throw notFound('API key');
    return state.revoked ? [] : [ApiKeyRevoked({})];
  },
};
