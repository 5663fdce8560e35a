import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Keyring } from './keyring.js';

export const JWT_ISSUER = 'aisoc';
export const JWT_AUDIENCE = 'aisoc-api';
export const JWT_ALGORITHM = 'ES256';

export interface AccessClaims {
  sub: string;
  tid: string;
  sid: string;
}

export const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

export async function issueAccessToken(keyring: Keyring, claims: AccessClaims, ttlSeconds: number): Promise<string> {
  const key = await keyring.signingKey('jwt');
  return jwt.sign({ tid: claims.tid, sid: claims.sid }, key.privateKey, {
    algorithm: JWT_ALGORITHM,
    keyid: key.kid,
    subject: claims.sub,
    issuer: JWT_ISSUER,
    audience: JWT_AUDIENCE,
    expiresIn: ttlSeconds,
    jwtid: randomBytes(12).toString('base64url'),
  });
}

/** `<session id>.<secret>`: the session it belongs to, and 256 random bits stored only hashed. */
export function newRefreshToken(sessionId: string): { token: string; hash: string } {
  const token = `${sessionId}.${randomBytes(32).toString('base64url')}`;
  return { token, hash: sha256(token) };
}

export function parseRefreshToken(token: string): { sessionId: string; hash: string } | null {
  const match = /^([0-9a-f-]{36})\.[A-Za-z0-9_-]{43}$/.exec(token);
  return match ? { sessionId: match[1]!, hash: sha256(token) } : null;
}

/** `aisoc_<key id>_<secret>`: shown once; only the secret's hash is kept. */
export function newApiKey(keyId: string): { key: string; secretHash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { key: `aisoc_${keyId.replaceAll('-', '')}_${secret}`, secretHash: sha256(secret) };
}

export function parseApiKey(key: string): { keyId: string; secretHash: string } | null {
  const match = /^aisoc_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/.exec(key);
  if (!match) return null;
  const hex = match[1]!;
  const keyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { keyId, secretHash: sha256(match[2]!) };
}
