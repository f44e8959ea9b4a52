'use strict';
// What a prebuilt addon may need at run time: shared libraries from glibc only, and undefined
// symbols that are glibc's (versioned) or Node-API's (napi_*, resolved from the node process).
// Used by scripts/prebuild.mjs before it ships a binary and by tests/js/prebuilt.test.js.
const { execFileSync } = require('node:child_process');

const ALLOWED_LIBS = /^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|\/lib64\/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2)$/;

/** The NEEDED entries of an ELF file (readelf -d). */
function needed(file) {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** Undefined dynamic symbols with their version (nm -D --undefined-only); weak ones are optional. */
function undefinedSymbols(file, { weak = false } = {}) {
  const out = execFileSync('nm', ['-D', '--undefined-only', file], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 2 && (weak || f[0] === 'U'))
    .map((f) => f[1]);
}

/** Highest GLIBC_x.y version the file asks for. */
function glibcFloor(symbols) {
  let best = [0, 0];
  for (const s of symbols) {
    const m = /@GLIBC_(\d+)\.(\d+)/.exec(s);
    if (m && (+m[1] > best[0] || (+m[1] === best[0] && +m[2] > best[1]))) best = [+m[1], +m[2]];
  }
  return best.join('.');
}

/** A list of problems; empty when the addon is self-contained. */
function checkAddon(file) {
  const problems = [];
  for (const lib of needed(file)) if (!ALLOWED_LIBS.test(lib)) problems.push(`needs ${lib}`);
  for (const sym of undefinedSymbols(file)) {
    if (/@GLIBC_/.test(sym) || /^napi_|^node_api_/.test(sym)) continue;
    problems.push(`undefined symbol ${sym}`);
  }
  return problems;
}

module.exports = { checkAddon, needed, undefinedSymbols, glibcFloor };
