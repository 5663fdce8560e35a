/**
 * The README stays true: its configuration table names every variable the server reads, and
 * its command-line table every command the CLI has.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The first cell of each row of the table that follows a heading. */
function firstCells(heading: string): string[] {
  const section = readme.split(/^## /m).find((part) => part.startsWith(`${heading}\n`));
  expect(section, `a "## ${heading}" section`).toBeDefined();
  return section!
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.split('|')[1]!.trim());
}

describe('the README', () => {
  it('documents every configuration variable, and no other', () => {
    const documented = firstCells('Configuration').map((cell) => cell.replaceAll('`', ''));
    expect([...documented].sort()).toEqual(CONFIG_VARIABLES.filter((name) => name !== 'NODE_ENV').sort());
  });

  it('documents every command of the CLI', () => {
    const help = execFileSync(process.execPath, ['bin/aisoc.js', '--help'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' });
    const commands = [...help.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((name) => name !== 'help');
    const documented = firstCells('The command line').map((cell) => cell.replaceAll('`', '').split(' ')[0]);
    for (const command of commands) expect(documented, command).toContain(command);
  });
});
