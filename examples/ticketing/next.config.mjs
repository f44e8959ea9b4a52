// Next.js config for the sidewire example app.
//
// node_modules lives at the repository root (two levels up), not next to this
// app, so Turbopack's root (and the output file tracing root, which Next wants
// to be the same directory) must point there; otherwise `next`, `react` and
// `react-dom` resolve outside the root and the build fails.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** @type {import('next').NextConfig} */
const nextConfig = {
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  // The native addon must never be bundled: load it with Node's require at runtime.
  serverExternalPackages: ['sidewire'],
};

export default nextConfig;
