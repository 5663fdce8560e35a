import { ACTION_REQUEST_EVENTS } from './action-request.js';
import { ALERT_EVENTS } from './alert.js';
import { API_KEY_EVENTS } from './api-key.js';
import { APPROVAL_EVENTS } from './approval.js';
import { CASE_EVENTS } from './case.js';
import { CORRELATION_EVENTS } from './correlation.js';
import { INVESTIGATION_EVENTS } from './investigation.js';
import { PLAYBOOK_EVENTS } from './playbook.js';
import { PLAYBOOK_RUN_EVENTS } from './playbook-run.js';
import { EventRegistry } from './registry.js';
import { RBAC_EVENTS } from './role.js';
import { SESSION_EVENTS } from './session.js';
import { SLA_EVENTS } from './sla.js';
import { TENANT_EVENTS } from './tenant.js';
import { USER_EVENTS } from './user.js';

/** Every event type the product writes. */
export const eventRegistry = new EventRegistry([
  ...ALERT_EVENTS,
  ...CASE_EVENTS,
  ...CORRELATION_EVENTS,
  ...TENANT_EVENTS,
  ...USER_EVENTS,
  ...SESSION_EVENTS,
  ...API_KEY_EVENTS,
  ...RBAC_EVENTS,
  ...PLAYBOOK_EVENTS,
  ...PLAYBOOK_RUN_EVENTS,
  ...APPROVAL_EVENTS,
  ...ACTION_REQUEST_EVENTS,
  ...SLA_EVENTS,
  ...INVESTIGATION_EVENTS,
]);
