/**
 * Signing in, tokens and sessions, through real HTTP: what an attacker tries is refused, and
 * what a user does (refresh, logout, rotate keys) behaves as promised.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD } from '../../src/commands/seed.js';
import { startTestApi, type TestApi } from '../support/api.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('authentication', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi('embedded', { AISOC_LOGIN_MAX_FAILURES: '3', AISOC_LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' });
  });
  afterAll(async () => api?.close());

  const me = (token: string) => api.request('GET', '/api/v1/users/me', { token });

  it('signs the seeded admin in and shows the caller who they are', async () => {
    const tokens = await api.login(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD);
    expect(tokens).toMatchObject({ token_type: 'bearer', expires_in: 900 });
    const response = await me(tokens.access_token);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ email: DEFAULT_ADMIN_EMAIL, tenant_id: 'default', role: 'admin', authenticated_by: 'user' });
    expect(response.body.permissions).toContain('rbac:admin');
  });

  it('answers an unknown account exactly as a wrong password', async () => {
    const user = await api.user('analyst');
    const wrong = await api.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: 'not-the-password' } });
    const unknown = await api.request('POST', '/api/v1/auth/login', { body: { email: 'nobody@nowhere.test', password: 'not-the-password' } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const comparable = ({ request_id: _r, ...rest }: Record<string, unknown>) => rest;
    expect(comparable(unknown.body)).toEqual(comparable(wrong.body));
  });

  it('throttles an account after repeated failures, even for the right password, with Retry-After', async () => {
    const user = await api.user('viewer');
    for (let i = 0; i < 3; i += 1) {
      expect((await api.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: 'wrong-password' } })).status).toBe(401);
    }
    const throttled = await api.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: user.password } });
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    // Unknown accounts are throttled the same way: the answer does not reveal which exist.
    for (let i = 0; i < 3; i += 1) await api.request('POST', '/api/v1/auth/login', { body: { email: 'ghost@nowhere.test', password: 'x' } });
    expect((await api.request('POST', '/api/v1/auth/login', { body: { email: 'ghost@nowhere.test', password: 'x' } })).status).toBe(429);
  });

  describe('access tokens', () => {
    let token: string;
    beforeAll(async () => {
      token = (await api.user('analyst')).token;
    });
    it('a valid token is accepted', async () => {
      expect((await me(token)).status).toBe(200);
    });

    it('refuses alg "none"', async () => {
      const claims = jwt.decode(token) as Record<string, unknown>;
      const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      expect((await me(unsigned)).status).toBe(401);
    });

    it('refuses HS256 signed with our public key as the secret (algorithm confusion)', async () => {
      const decoded = jwt.decode(token, { complete: true })!;
      const kid = (decoded.header as { kid: string }).kid;
      const row = await api.runtime.database.db.selectFrom('signing_keys').select('public_jwk').where('kid', '=', kid).executeTakeFirstOrThrow();
      const body = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${b64(decoded.payload as object)}`;
      const forged = `${body}.${createHmac('sha256', JSON.stringify(row.public_jwk)).update(body).digest('base64url')}`;
      expect((await me(forged)).status).toBe(401);
    });

    it('refuses a tampered payload and a tampered signature', async () => {
      const [h, p, s] = token.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      expect((await me(`${h}.${b64({ ...claims, tid: 'someone-else' })}.${s}`)).status).toBe(401);
      const flipped = `${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
      expect((await me(`${h}.${p}.${flipped}`)).status).toBe(401);
    });

    it('refuses a token signed by a key that is not ours, even with a known key id', async () => {
      const decoded = jwt.decode(token, { complete: true })!;
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = jwt.sign(decoded.payload as object, privateKey, { algorithm: 'ES256', keyid: (decoded.header as { kid: string }).kid });
      expect((await me(forged)).status).toBe(401);
      const unknownKid = jwt.sign(decoded.payload as object, privateKey, { algorithm: 'ES256', keyid: 'not-a-key' });
      expect((await me(unknownKid)).status).toBe(401);
    });

    it('refuses an expired token', async () => {
      const decoded = jwt.decode(token, { complete: true })!;
      const key = await api.runtime.identity.keyring.signingKey('jwt');
      const { exp: _exp, iat: _iat, ...claims } = decoded.payload as Record<string, unknown>;
      const expired = jwt.sign({ ...claims, iat: Math.floor(Date.now() / 1000) - 3600, exp: Math.floor(Date.now() / 1000) - 60 }, key.privateKey, {
        algorithm: 'ES256',
        keyid: key.kid,
      });
      const response = await me(expired);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
    });

    it('refuses a token it accepted before, once that token has expired', async () => {
      const decoded = jwt.decode(token, { complete: true })!;
      const key = await api.runtime.identity.keyring.signingKey('jwt');
      const { exp: _exp, iat: _iat, ...claims } = decoded.payload as Record<string, unknown>;
      const expiresAt = Math.floor(Date.now() / 1000) + 2;
      const shortLived = jwt.sign({ ...claims, exp: expiresAt }, key.privateKey, { algorithm: 'ES256', keyid: key.kid });
      expect((await me(shortLived)).status).toBe(200);
      expect((await me(shortLived)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 - Date.now() + 50));
      expect((await me(shortLived)).status).toBe(401);
    });
  });

  it('rotating the signing key logs nobody out; new tokens carry the new key id', async () => {
    const user = await api.user('analyst');
    const oldKid = (jwt.decode(user.token, { complete: true })!.header as { kid: string }).kid;
    const newKid = await api.runtime.identity.keyring.rotate('jwt');
    expect((await me(user.token)).status).toBe(200);
    const fresh = await api.login(user.email, user.password);
    expect((jwt.decode(fresh.access_token, { complete: true })!.header as { kid: string }).kid).toBe(newKid);
    expect(newKid).not.toBe(oldKid);
    expect((await me(fresh.access_token)).status).toBe(200);
  });

  describe('sessions', () => {
    it('refresh rotates the refresh token; presenting a spent one ends the whole session', async () => {
      const user = await api.user('analyst');
      const first = await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: user.tokens.refresh_token } });
      expect(first.status).toBe(200);
      expect(first.body.refresh_token).not.toBe(user.tokens.refresh_token);
      expect((await me(first.body.access_token)).status).toBe(200);

      const replay = await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: user.tokens.refresh_token } });
      expect(replay.status).toBe(401);
      // The legitimate holder is signed out too: both of its tokens stopped working.
      expect((await me(first.body.access_token)).status).toBe(401);
      expect((await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: first.body.refresh_token } })).status).toBe(401);
    });

    it('a garbage or unknown refresh token is 401', async () => {
      expect((await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: 'garbage' } })).status).toBe(401);
      const unknown = `${crypto.randomUUID()}.${'A'.repeat(43)}`;
      expect((await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: unknown } })).status).toBe(401);
    });

    it('logout ends the session: the access token and the refresh token stop working', async () => {
      const user = await api.user('viewer');
      const out = await api.request('POST', '/api/v1/auth/logout', { token: user.token });
      expect(out.status).toBe(204);
      expect((await me(user.token)).status).toBe(401);
      expect((await api.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: user.tokens.refresh_token } })).status).toBe(401);
    });

    it('changing the password ends every session of the user', async () => {
      const { changePassword } = await import('../../src/commands/identity.js');
      const user = await api.user('analyst');
      await changePassword(api.runtime.identity, { email: user.email, password: 'a-brand-new-password' });
      expect((await me(user.token)).status).toBe(401);
      expect((await api.request('POST', '/api/v1/auth/login', { body: { email: user.email, password: user.password } })).status).toBe(401);
      expect((await api.login(user.email, 'a-brand-new-password')).access_token).toBeTruthy();
    });
  });
});
