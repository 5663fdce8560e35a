import { createInterface } from 'node:readline';

/**
 * A password for a CLI command: from AISOC_USER_PASSWORD when set (scripts), else asked on the
 * terminal without echo, else the first line of standard input (pipes).
 */
export async function readPassword(question: string): Promise<string> {
  const fromEnv = process.env.AISOC_USER_PASSWORD;
  if (fromEnv) return fromEnv;
  const input = process.stdin;
  if (!input.isTTY) {
    const lines = createInterface({ input });
    for await (const line of lines) {
      lines.close();
      return line;
    }
    throw new Error('No password: set AISOC_USER_PASSWORD or give it on standard input');
  }
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let password = '';
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') {
          finish();
          resolve(password);
          return;
        }
        if (char === '\u0003') {
          finish();
          reject(new Error('Cancelled'));
          return;
        }
        password = char === '\u007f' ? password.slice(0, -1) : password + char;
      }
    };
    const finish = () => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
    };
    input.on('data', onData);
  });
}
