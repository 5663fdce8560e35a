import { verifyPassword } from '../auth/passwords.js';
import { AppError } from '../domain/errors.js';
import type { Logger } from '../lib/logger.js';
import { createTenant, registerUser, type IdentityDeps } from './identity.js';

export const DEFAULT_TENANT = 'default';
export const DEFAULT_ADMIN_EMAIL = 'admin@aisoc.local';
export const DEFAULT_ADMIN_PASSWORD = 'changeme';

export class InsecureDefaultsError extends Error {}

/**
 * A store nobody can sign into (no user at all) gets tenant `default` and `admin@aisoc.local` /
 * `changeme`, so a fresh install can be used at once. While that password is unchanged the server says so on
 * every start, and refuses to start with NODE_ENV=production.
 */
export async function seedAndCheckDefaults(deps: IdentityDeps, logger: Logger, production: boolean): Promise<void> {
  const anyUser = await deps.db.selectFrom('users').select('id').limit(1).executeTakeFirst();
  if (!anyUser) {
    // Several servers may start at once on an empty database: whoever seeds first wins.
    const alreadyDone = (error: unknown) => {
      if (!(error instanceof AppError && error.kind === 'conflict')) throw error;
    };
    await createTenant(deps, DEFAULT_TENANT, 'Default tenant').catch(alreadyDone);
    await registerUser(deps, { tenantId: DEFAULT_TENANT, email: DEFAULT_ADMIN_EMAIL, displayName: 'Administrator', role: 'admin', password: DEFAULT_ADMIN_PASSWORD }).catch(
      alreadyDone,
    );
    logger.warn({ tenant: DEFAULT_TENANT, email: DEFAULT_ADMIN_EMAIL }, 'created tenant "default" and its admin user');
  }
  const admin = await deps.db.selectFrom('users').select('password_hash').where('email', '=', DEFAULT_ADMIN_EMAIL).where('disabled', '=', false).executeTakeFirst();
  if (admin && (await verifyPassword(DEFAULT_ADMIN_PASSWORD, admin.password_hash))) {
    const message = `${DEFAULT_ADMIN_EMAIL} still has the default password "${DEFAULT_ADMIN_PASSWORD}"; change it with: npx aisoc users set-password ${DEFAULT_ADMIN_EMAIL}`;
    if (production) throw new InsecureDefaultsError(`Refusing to start with NODE_ENV=production: ${message}`);
    logger.warn(message);
  }
}
