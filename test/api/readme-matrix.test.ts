/**
 * The README's permission matrix is the code's: a role or permission added, removed or
 * changed without the README following fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BUILTIN_PERMISSIONS, BUILTIN_ROLES } from '../../src/domain/rbac.js';

describe('the README', () => {
  it('documents the permission matrix of the built-in roles exactly', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const header = readme.split('\n').find((line) => line.startsWith('| permission |'));
    expect(header, 'the matrix header').toBeDefined();
    const roles = header!.split('|').map((c) => c.trim()).filter(Boolean).slice(1);
    expect(roles).toEqual(Object.keys(BUILTIN_ROLES));
    const rows = readme.split('\n').filter((line) => /^\| `[a-z_]+:[a-z_]+` \|/.test(line));
    expect(rows.map((row) => row.split('`')[1])).toEqual(Object.keys(BUILTIN_PERMISSIONS));
    for (const row of rows) {
      const [, permission, ...cells] = row.split('|').map((c) => c.trim());
      const name = permission!.replaceAll('`', '');
      const granted = roles.filter((_, i) => cells[i] === '✓');
      expect(granted, name).toEqual(roles.filter((role) => BUILTIN_ROLES[role]!.permissions.includes(name)));
    }
  });
});
