import { ALERT_EVENTS } from './alert.js';
import { CASE_EVENTS } from './case.js';
import { EventRegistry } from './registry.js';

/** Every event type the product writes. */
export const eventRegistry = new EventRegistry([...ALERT_EVENTS, ...CASE_EVENTS]);
