import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id } from './values.js';

export const userStream = (userId: string) => `user-${userId}`;
export const normalizeEmail = (email: string) => email.trim().toLowerCase();
/** One stream per e-mail address: claiming it with `no_stream` keeps addresses unique. */
export const emailClaimStream = (email: string) => `useremail-${createHash('sha256').update(normalizeEmail(email)).digest('hex')}`;

export const Email = z.email().max(320);
const RoleName = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/);

export const UserEmailClaimed = defineEvent('useremail.claimed', z.object({ user_id: Id }));
export const UserRegistered = defineEvent(
  'user.registered',
  z.object({
    user_id: Id,
    email: Email,
    display_name: z.string().trim().min(1).max(200),
    role: RoleName,
    password_hash: z.string().min(1),
  }),
);
export const UserPasswordChanged = defineEvent('user.password_changed', z.object({ password_hash: z.string().min(1) }));
export const UserRoleChanged = defineEvent('user.role_changed', z.object({ from: RoleName, to: RoleName }));
export const UserDisabled = defineEvent('user.disabled', z.object({ reason: z.string().max(500).default('') }));
export const UserLoginFailed = defineEvent('user.login_failed', z.object({ source_ip: z.string().max(64).nullable() }));

export const USER_EVENTS = [UserEmailClaimed, UserRegistered, UserPasswordChanged, UserRoleChanged, UserDisabled, UserLoginFailed] as const;
export type UserEvent = EventOf<(typeof USER_EVENTS)[number]>;

export type UserCommand =
  | { type: 'RegisterUser'; userId: string; email: string; displayName: string; role: string; passwordHash: string }
  | { type: 'ChangePassword'; passwordHash: string }
  | { type: 'ChangeRole'; role: string }
  | { type: 'DisableUser'; reason?: string }
  | { type: 'RecordLoginFailure'; sourceIp: string | null };

export interface UserState {
  exists: boolean;
  disabled: boolean;
  role: string;
}

export const userDecider: Decider<UserCommand, UserEvent, UserState> = {
  initialState: () => ({ exists: false, disabled: false, role: '' }),
  evolve(state, event) {
    switch (event.type) {
      case 'user.registered':
        return { ...state, exists: true, role: event.data.role };
      case 'user.role_changed':
        return { ...state, role: event.data.to };
      case 'user.disabled':
        return { ...state, disabled: true };
      default:
        return state;
    }
  },
  decide(command, state) {
    if (command.type === 'RegisterUser') {
      if (state.exists) throw new AppError('conflict', 'This user already exists');
      return [
        UserRegistered({
          user_id: command.userId,
          email: normalizeEmail(command.email),
          display_name: command.displayName,
          role: command.role,
          password_hash: command.passwordHash,
        }),
      ];
    }
    if (!state.exists) throw notFound('User');
    switch (command.type) {
      case 'ChangePassword':
        return [UserPasswordChanged({ password_hash: command.passwordHash })];
      case 'ChangeRole':
        return command.role === state.role ? [] : [UserRoleChanged({ from: state.role, to: command.role })];
      case 'DisableUser':
        return state.disabled ? [] : [UserDisabled({ reason: command.reason ?? '' })];
      case 'RecordLoginFailure':
        return [UserLoginFailed({ source_ip: command.sourceIp })];
    }
  },
};

export type EmailClaimCommand = { type: 'ClaimEmail'; userId: string };
export const emailClaimDecider: Decider<EmailClaimCommand, EventOf<typeof UserEmailClaimed>, { claimedBy: string | null }> = {
  initialState: () => ({ claimedBy: null }),
  evolve: (_state, event) => ({ claimedBy: event.data.user_id }),
  decide(command, state) {
    if (state.claimedBy !== null && state.claimedBy !== command.userId) throw new AppError('conflict', 'A user with this e-mail address already exists');
    return state.claimedBy === command.userId ? [] : [UserEmailClaimed({ user_id: command.userId })];
  },
};
