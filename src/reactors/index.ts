import type { Kysely } from 'kysely';
import type { CommandDeps } from '../commands/handler.js';
import type { Config } from '../config.js';
import type { Logger } from '../lib/logger.js';
import type { ProjectionDaemon } from '../projections/daemon.js';
import type { Projection } from '../projections/projection.js';
import type { Tables } from '../projections/tables.js';
import { slaSchedule } from '../sla/schedule.js';
import { investigationReactions } from './investigations.js';
import { playbookReactions } from './playbook-runs.js';
import type { Schedule } from './scheduler.js';

export interface ReactorDeps {
  commands: CommandDeps;
  db: Kysely<Tables>;
  daemon: ProjectionDaemon;
  config: Config;
  logger: Logger;
}

/**
 * The process managers: projections with side effects (reactors) and the schedules that fire
 * what is due. Each feature adds its own here; the runtime runs them in every server process.
 */
export interface Reactions {
  reactors: Projection[];
  schedules: Schedule[];
}

export function reactions(deps: ReactorDeps): Reactions {
  const playbooks = playbookReactions(deps);
  const investigations = investigationReactions(deps);
  return { reactors: [...playbooks.reactors, ...investigations.reactors], schedules: [slaSchedule(deps), ...playbooks.schedules, ...investigations.schedules] };
}
