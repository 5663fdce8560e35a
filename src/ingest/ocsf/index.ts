/**
 * OCSF events to one alert, for `POST /api/v1/alerts/submit`: parsing (OCSF classes and Okta
 * sign-ins), redaction, detection rules and synthesis. Pure: no I/O, no clock, no randomness.
 */
export { parseSubmission, synthesizeAlert, MAX_EVENTS, MAX_EVENT_BYTES, SubmitRequest, type Submission, type Overrides } from './submission.js';
export { parseEvent, SUPPORTED_DESCRIPTION, type SecurityEvent } from './events.js';
export { detect, type Finding } from './rules.js';
export { redactSecrets, eventsDigest, canonicalJson, REDACTED } from './redact.js';
export { oktaToOcsf, isOktaSignIn } from './okta.js';
export { haversineKm, isPrivateIp } from './geo.js';
