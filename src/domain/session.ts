import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id, Timestamp } from './values.js';

export const sessionStream = (sessionId: string) => `session-${sessionId}`;

const Hash = z.string().regex(/^[0-9a-f]{64}$/);
export const SessionEndReason = z.enum(['logout', 'refresh_token_reused', 'expired', 'user_disabled', 'password_changed']);

export const SessionStarted = defineEvent(
  'session.started',
  z.object({
    session_id: Id,
    user_id: Id,
    refresh_token_hash: Hash,
    expires_at: Timestamp,
    source_ip: z.string().max(64).nullable(),
    user_agent: z.string().max(512).nullable(),
  }),
);
/** The refresh token was rotated; the one presented is spent. */
export const SessionRefreshed = defineEvent('session.refreshed', z.object({ refresh_token_hash: Hash }));
export const SessionEnded = defineEvent('session.ended', z.object({ reason: SessionEndReason }));

export const SESSION_EVENTS = [SessionStarted, SessionRefreshed, SessionEnded] as const;
export type SessionEvent = EventOf<(typeof SESSION_EVENTS)[number]>;

export type SessionCommand =
  | { type: 'StartSession'; sessionId: string; userId: string; refreshTokenHash: string; expiresAt: Date; sourceIp: string | null; userAgent: string | null }
  | { type: 'RefreshSession'; presentedHash: string; newHash: string }
  | { type: 'EndSession'; reason: z.infer<typeof SessionEndReason> };

export interface SessionState {
  exists: boolean;
  active: boolean;
  userId: string;
  expiresAt: number;
  currentHash: string;
  spentHashes: string[];
}

const invalid = () => new AppError('unauthenticated', 'The refresh token is not valid');

export const sessionDecider: Decider<SessionCommand, SessionEvent, SessionState> = {
  initialState: () => ({ exists: false, active: false, userId: '', expiresAt: 0, currentHash: '', spentHashes: [] }),
  evolve(state, event) {
    switch (event.type) {
      case 'session.started':
        return {
          ...state,
          exists: true,
          active: true,
          userId: event.data.user_id,
          expiresAt: Date.parse(event.data.expires_at),
          currentHash: event.data.refresh_token_hash,
        };
      case 'session.refreshed':
        return { ...state, spentHashes: [...state.spentHashes, state.currentHash], currentHash: event.data.refresh_token_hash };
      case 'session.ended':
        return { ...state, active: false };
    }
  },
  decide(command, state, { now }) {
    if (command.type === 'StartSession') {
      if (state.exists) throw new AppError('conflict', 'This session already exists');
      return [
        SessionStarted({
          session_id: command.sessionId,
          user_id: command.userId,
          refresh_token_hash: command.refreshTokenHash,
          expires_at: command.expiresAt.toISOString(),
          source_ip: command.sourceIp,
          user_agent: command.userAgent,
        }),
      ];
    }
    if (!state.exists) throw invalid();
    switch (command.type) {
      case 'RefreshSession':
        if (!state.active) throw invalid();
        if (now.getTime() >= state.expiresAt) return [SessionEnded({ reason: 'expired' })];
        // A spent token presented again: someone holds a copy. End the whole session.
        if (state.spentHashes.includes(command.presentedHash)) return [SessionEnded({ reason: 'refresh_token_reused' })];
        if (command.presentedHash !== state.currentHash) throw invalid();
        return [SessionRefreshed({ refresh_token_hash: command.newHash })];
      case 'EndSession':
        return state.active ? [SessionEnded({ reason: command.reason })] : [];
    }
  },
};
