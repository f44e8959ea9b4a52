// What bench/jwt.mjs and bench/limits.mjs share: `--name=value` arguments, a benchmark server of
// bench/servers/ in a child process of its own (it prints READY <port>), and medians.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** The value of `--name=value` on the command line, or `fallback`. */
export function arg(name, fallback) {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
}

/**
 * Starts bench/servers/<script> with `env` (and PORT 0); resolves { child, port } once it prints
 * READY <port>. Its other output is dropped: a server's log lines are part of its cost, not of
 * the report.
 */
export function startServer(script, env, label = env.KIND) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(benchDir, 'servers', script)], {
      env: { ...process.env, ...env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const timer = setTimeout(() => reject(new Error(`${label}: no READY in 15 s`)), 15000);
    child.stdout.on('data', (d) => {
      const m = /READY (\d+)/.exec(String(d));
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`${label} exited with ${code}`)));
  });
}

export async function stopServer({ child }) {
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
