import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * PGlite has no lock of its own: one process owns an embedded data directory. The owner
 * writes its pid and control socket to `aisoc.lock`; a lock whose pid is gone (a crash, a
 * SIGKILL) is taken over at once rather than after a stale timeout.
 */
export interface LockOwner {
  pid: number;
  socket: string | null;
}

export class DataDirLockedError extends Error {
  constructor(readonly dataDir: string, readonly owner: LockOwner) {
    super(`The data directory ${dataDir} is in use by process ${owner.pid}`);
  }
}

const lockPath = (dataDir: string) => join(dataDir, 'aisoc.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live owner of the directory, if any. */
export async function lockOwner(dataDir: string): Promise<LockOwner | null> {
  try {
    const owner = JSON.parse(await readFile(lockPath(dataDir), 'utf8')) as LockOwner;
    return owner.pid !== process.pid && alive(owner.pid) ? owner : null;
  } catch {
    return null;
  }
}

export async function lockDataDir(dataDir: string, socket: string | null): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const path = lockPath(dataDir);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify({ pid: process.pid, socket } satisfies LockOwner));
      await handle.close();
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await lockOwner(dataDir);
      if (owner) throw new DataDirLockedError(dataDir, owner);
      await unlink(path).catch(() => undefined);
    }
  }
  throw new Error(`Could not lock ${dataDir}`);
}
