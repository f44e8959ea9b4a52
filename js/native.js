'use strict';
// Loads the compiled addon, first found wins:
//   1. SIDEWIRE_ADDON, a path (a Debug or sanitizer build, say);
//   2. build/sidewire.node, a source build (the repository's own, or `npx sidewire build`);
//   3. prebuilds/<platform>-<arch>/sidewire.napi.<libc>.node, the binary the package ships
//      (node-gyp-build's layout and tags). It is a Node-API addon: one file for every Node
//      version from 20 on.
// A prebuilt binary needs no install script, so npm's script approval never comes into it.
const fs = require('node:fs');
const { distroPackages, libc, prebuiltPath, sourceBuildPath } = require('./platform.js');

// A bundler (Next.js's Turbopack or webpack) that pulled this file into a server bundle cannot
// follow the require of a computed path below: the package must stay a Node module.
// Turbopack gives a bundled module __turbopack_context__ and a numeric module.id (Node's is its
// path) and roots __dirname at /ROOT/; webpack leaves Node's require as __non_webpack_require__.
function bundled(err) {
  return (
    typeof __non_webpack_require__ === 'function' || // eslint-disable-line no-undef
    typeof __turbopack_context__ !== 'undefined' || // eslint-disable-line no-undef
    typeof module.id !== 'string' ||
    /expression is too dynamic|webpackMissingModule/.test(String(err && err.message))
  );
}

function load() {
  if (bundled()) throw loadError([], true);
  const candidates = [process.env.SIDEWIRE_ADDON, sourceBuildPath, prebuiltPath()].filter(Boolean);
  const failures = [];
  for (const file of candidates) {
    // A missing candidate is the normal case (no source build); anything else is reported.
    if (file !== process.env.SIDEWIRE_ADDON && !fs.existsSync(file)) continue;
    try {
      return require(file);
    } catch (err) {
      failures.push({ file, err });
      if (bundled(err)) break;
    }
  }
  throw loadError(failures, failures.some((f) => bundled(f.err)));
}

function loadError(failures, inBundle) {
  const first = failures[0] && failures[0].err;
  let message;
  if (inBundle) {
    message =
      "sidewire: this copy of sidewire was bundled by Next.js, and its native addon can only be loaded by Node. " +
      "Add 'sidewire' to serverExternalPackages in next.config (`npx sidewire init` does it): " +
      "serverExternalPackages: ['sidewire'].";
  } else if (failures.length) {
    message =
      `sidewire: the native addon failed to load (${failures.map((f) => `${f.file}: ${f.err.message}`).join('; ')}). ` +
      'A source build for this machine: `npx sidewire build`.';
  } else {
    message =
      `sidewire: no prebuilt binary for ${process.platform}-${process.arch}${libc() ? ` (${libc()})` : ''} ` +
      '(the package ships linux-x64 for glibc 2.36 or newer). Build it from source with `npx sidewire build`; ' +
      `it needs a C++20 compiler, CMake 3.20+, Boost 1.81+ headers, nlohmann-json, spdlog, fmt, OpenSSL 3 and zlib:\n  ${distroPackages.join('\n  ')}`;
  }
  const err = new Error(message);
  err.code = 'SIDEWIRE_NO_ADDON';
  if (first) err.cause = first;
  return err;
}

module.exports = load();
