import type { EventStore, Position } from '../../eventstore/port.js';
import { exportAudit, type AuditExportArgs, type AuditExportResult, type AuditProgress } from '../audit/export.js';
import { verifyAudit, type AuditVerifyArgs, type AuditVerifyResult } from '../audit/verify.js';
import type { KeyUse } from '../auth/keyring.js';
import { changePassword, createTenant, registerUser } from '../commands/identity.js';
import { replayInvestigation, verifyInvestigation, type ReplayResult, type VerifyResult } from '../investigations/runner.js';
import { normalizeEmail } from '../domain/user.js';
import type { ProjectionStatus, RebuildProgress } from '../projections/daemon.js';
import type { Runtime } from '../runtime.js';

export interface ProjectionReport extends ProjectionStatus {
  /** Events after the checkpoint that this projection will apply; `capped` when it stopped counting. */
  lag: { events: number; capped: boolean } | null;
}

export type NamedProgress = RebuildProgress & { name: string };

/**
 * What the CLI can ask of a runtime, by name. Run in the CLI's own process when it may open
 * the store, or in the server through its control socket when the server owns the embedded
 * data directory: the same functions either way.
 */
export interface OperationMap {
  'projections.status': { args: Record<string, never>; result: ProjectionReport[]; progress: never };
  'projections.rebuild': { args: { names: string[] }; result: NamedProgress[]; progress: NamedProgress };
  'tenants.create': { args: { id: string; name: string }; result: { id: string }; progress: never };
  'users.create': {
    args: { tenant: string; email: string; role: string; name: string | null; password: string };
    result: { id: string; email: string; tenant: string; role: string };
    progress: never;
  };
  'users.set_password': { args: { email: string; password: string }; result: { email: string }; progress: never };
  'keys.rotate': { args: { use: KeyUse }; result: { kid: string; use: KeyUse }; progress: never };
  'audit.export': { args: AuditExportArgs; result: AuditExportResult; progress: AuditProgress };
  'audit.verify': { args: AuditVerifyArgs; result: AuditVerifyResult; progress: AuditProgress };
  'investigations.replay': { args: { id: string }; result: ReplayResult; progress: never };
  'investigations.verify': { args: { id: string }; result: VerifyResult; progress: never };
}

export type OperationName = keyof OperationMap;

export type RunOperation = <K extends OperationName>(
  name: K,
  args: OperationMap[K]['args'],
  onProgress?: (progress: OperationMap[K]['progress']) => void,
) => Promise<OperationMap[K]['result']>;

type Handlers = {
  [K in OperationName]: (args: OperationMap[K]['args'], onProgress: (p: OperationMap[K]['progress']) => void) => Promise<OperationMap[K]['result']>;
};

const LAG_COUNT_CAP = 100_000;

async function countAfter(store: EventStore, after: Position | undefined, filter: Parameters<EventStore['readAll']>[0]): Promise<{ events: number; capped: boolean }> {
  let events = 0;
  let position = after;
  while (events < LAG_COUNT_CAP) {
    const page = await store.readAll({ ...filter, after: position, maxCount: 1000 });
    events += page.events.length;
    position = page.checkpoint;
    if (page.isEnd) return { events, capped: false };
  }
  return { events, capped: true };
}

function handlers(rt: Runtime): Handlers {
  return {
    async 'projections.status'() {
      const statuses = await rt.daemon.status();
      return Promise.all(
        statuses.map(async (status) => ({
          ...status,
          lag:
            status.status === 'retired'
              ? null
              : await countAfter(rt.store, (status.position ?? undefined) as Position | undefined, {
                  filter: rt.daemon.projection(status.name).filter,
                }),
        })),
      );
    },
    async 'projections.rebuild'({ names }, onProgress) {
      for (const name of names) rt.daemon.projection(name);
      const results: NamedProgress[] = [];
      for (const name of names) {
        const done = await rt.daemon.rebuild(name, (progress) => onProgress({ ...progress, name }));
        results.push({ ...done, name });
      }
      return results;
    },
    async 'tenants.create'({ id, name }) {
      await createTenant(rt.identity, id, name);
      return { id };
    },
    async 'users.create'({ tenant, email, role, name, password }) {
      const { userId } = await registerUser(rt.identity, { tenantId: tenant, email, role, password, displayName: name ?? undefined });
      return { id: userId, email: normalizeEmail(email), tenant, role };
    },
    async 'users.set_password'({ email, password }) {
      await changePassword(rt.identity, { email, password });
      return { email: normalizeEmail(email) };
    },
    async 'keys.rotate'({ use }) {
      return { kid: await rt.identity.keyring.rotate(use), use };
    },
    'audit.export': (args, onProgress) => exportAudit({ store: rt.store, keyring: rt.identity.keyring }, args, onProgress),
    'audit.verify': (args, onProgress) => verifyAudit({ keyring: rt.identity.keyring }, args, onProgress),
    'investigations.replay': ({ id }) => replayInvestigation(rt.store, rt.commands.registry, id, null),
    'investigations.verify': ({ id }) => verifyInvestigation(rt.store, rt.commands.registry, id, null),
  };
}

export function localOperations(rt: Runtime): RunOperation {
  const table = handlers(rt) as Record<string, (args: unknown, onProgress: (p: unknown) => void) => Promise<unknown>>;
  return ((name: string, args: unknown, onProgress?: (p: unknown) => void) => {
    const handler = table[name];
    if (!handler) return Promise.reject(new Error(`Unknown operation ${name}`));
    return handler(args, onProgress ?? (() => undefined));
  }) as RunOperation;
}
