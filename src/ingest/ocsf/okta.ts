import { AUTHENTICATION, type OktaEvent } from './schema.js';

/** Okta System Log event types that are sign-ins (or their end), and so map to OCSF Authentication. */
export const OKTA_SIGN_IN_TYPES = ['user.session.start', 'user.session.end', 'user.authentication.*'] as const;

export const isOktaSignIn = (eventType: string) =>
  eventType === 'user.session.start' || eventType === 'user.session.end' || eventType.startsWith('user.authentication.');

// OCSF Authentication activity_id.
const LOGON = 1;
const LOGOFF = 2;

/** Okta's outcome.result to OCSF status_id: only an allow is a success, only a deny a failure. */
function statusId(result: string): number {
  switch (result.toUpperCase()) {
    case 'SUCCESS':
    case 'ALLOW':
      return 1;
    case 'FAILURE':
    case 'DENY':
      return 2;
    default:
      // CHALLENGE, SKIPPED, UNKNOWN: the sign-in neither succeeded nor failed (yet).
      return 99;
  }
}

const SEVERITY_ID = { DEBUG: 1, INFO: 1, WARN: 3, ERROR: 4 } as const;

/**
 * An Okta sign-in as an OCSF Authentication event (class 3002). The result is plain JSON and
 * goes through the same OCSF schema as any event submitted as OCSF.
 */
export function oktaToOcsf(event: OktaEvent): Record<string, unknown> {
  const geo = event.client?.geographicalContext;
  const location = geo
    ? Object.fromEntries(
        Object.entries({ lat: geo.geolocation?.lat, long: geo.geolocation?.lon, city: geo.city, country: geo.country }).filter(([, v]) => v !== null && v !== undefined),
      )
    : undefined;
  const activityId = event.eventType === 'user.session.end' ? LOGOFF : LOGON;
  const userName = event.actor.alternateId ?? event.actor.displayName ?? event.actor.id;
  return {
    class_uid: AUTHENTICATION,
    category_uid: 3,
    activity_id: activityId,
    type_uid: AUTHENTICATION * 100 + activityId,
    time: Date.parse(event.published),
    severity_id: SEVERITY_ID[event.severity ?? 'INFO'],
    status_id: statusId(event.outcome.result),
    status: event.outcome.result,
    ...(event.outcome.reason ? { status_detail: event.outcome.reason } : {}),
    ...(event.displayMessage ? { message: event.displayMessage } : {}),
    user: { name: userName, uid: event.actor.id, ...(userName.includes('@') ? { email_addr: userName } : {}) },
    ...(event.client?.ipAddress || (location && Object.keys(location).length > 0)
      ? {
          src_endpoint: {
            ...(event.client?.ipAddress ? { ip: event.client.ipAddress } : {}),
            ...(location && Object.keys(location).length > 0 ? { location } : {}),
          },
        }
      : {}),
    is_mfa: event.eventType.includes('mfa'),
    metadata: {
      product: { name: 'Okta', vendor_name: 'Okta' },
      version: '1.1.0',
      ...(event.uuid ? { uid: event.uuid } : {}),
      original_time: event.published,
      event_code: event.eventType,
    },
    ...(event.client?.userAgent?.rawUserAgent ? { http_request: { user_agent: event.client.userAgent.rawUserAgent } } : {}),
  };
}
