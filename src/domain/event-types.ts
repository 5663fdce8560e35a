import { z } from 'zod';
import type { DomainEvent } from './decider.js';

/**
 * Event schemas: a stable type name, the current schema version, and upcasters that lift data
 * written by older versions. Stored events carry `schema_version` in their metadata.
 */
export interface EventType<Type extends string, Schema extends z.ZodType> {
  type: Type;
  version: number;
  schema: Schema;
  /** upcasters[v] turns version v data into version v + 1 data. */
  upcasters: Record<number, (data: Record<string, unknown>) => Record<string, unknown>>;
  /** Builds the event; `data` is checked against the schema. */
  (data: z.input<Schema>): DomainEvent<Type, z.output<Schema>>;
}

export function defineEvent<Type extends string, Schema extends z.ZodType>(
  type: Type,
  schema: Schema,
  options: { version?: number; upcasters?: EventType<Type, Schema>['upcasters'] } = {},
): EventType<Type, Schema> {
  const create = (data: z.input<Schema>) => ({ type, data: schema.parse(data) });
  return Object.assign(create, { type, version: options.version ?? 1, schema, upcasters: options.upcasters ?? {} });
}

export type EventOf<T> = T extends EventType<infer Type, infer Schema> ? DomainEvent<Type, z.output<Schema>> : never;

/** Rejects a type name that does not follow `<aggregate>.<past_tense_verb>`. */
export const EVENT_TYPE_NAME = /^[a-z][a-z_]*\.[a-z][a-z_]*$/;
