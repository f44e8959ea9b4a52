// Next.js config for the sidewire example app (the ticket desk).
//
// node_modules lives at the repository root (two levels up), not next to this
// app, so Turbopack's root (and the output file tracing root, which Next wants
// to be the same directory) must point there; otherwise `next`, `react` and
// `react-dom` resolve outside the root and the build fails.
//
// `import { getServer } from 'sidewire'` in route handlers resolves to
// examples/ticketing/node_modules/sidewire (committed: a two-file package that
// re-exports the repository root's js/index.js; its index.js says why it is not
// a symlink). `serverExternalPackages` keeps it out of the bundle, so route code
// and server.mjs share one module instance, one engine and one Socket.IO server.
// better-sqlite3 is on Next's built-in list of server external packages.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** @type {import('next').NextConfig} */
const nextConfig = {
  turbopack: {
    root: repoRoot,
    // Externals tracing reads js/native.js and warns that it cannot follow the addon's
    // require() by a computed path. At runtime Node loads it (build/sidewire.node): not an issue.
    ignoreIssue: [{ path: '**/js/native.js', title: /Module not found/ }],
  },
  outputFileTracingRoot: repoRoot,
  // The native addon must never be bundled: load it with Node's require at runtime.
  serverExternalPackages: ['sidewire'],
};

export default nextConfig;
