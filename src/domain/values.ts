import { z } from 'zod';

export const Severity = z.enum(['informational', 'low', 'medium', 'high', 'critical']);
export type Severity = z.infer<typeof Severity>;
export const SEVERITY_RANK: Record<Severity, number> = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };

export const EntityType = z.enum(['user', 'host', 'ip', 'domain', 'url', 'file', 'hash', 'process', 'email', 'account']);
export const Entity = z.object({ type: EntityType, value: z.string().min(1).max(1024) });
export type Entity = z.infer<typeof Entity>;

/** MITRE ATT&CK technique or sub-technique id. */
export const Technique = z.string().regex(/^T\d{4}(\.\d{3})?$/);

export const Timestamp = z.iso.datetime({ offset: true });
export const Id = z.string().min(1).max(128);
export const Tags = z.array(z.string().min(1).max(64)).max(50);

export const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x) => b.includes(x));
