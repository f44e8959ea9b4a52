'use strict';
// The addon as the package ships it: self-contained (glibc only, Node-API from the process),
// loadable with an empty LD_LIBRARY_PATH, and a loader whose errors name the fix.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { checkAddon, needed, undefinedSymbols, glibcFloor } = require('../../scripts/addon-check.cjs');

const root = path.join(__dirname, '..', '..');
const addon = process.env.SIDEWIRE_ADDON || path.join(root, 'build', 'sidewire.node');
// scripts/sanitize.sh runs the suite against its own builds (SIDEWIRE_ADDON), which link the
// sanitizer runtimes and load only under LD_PRELOAD: the checks of the shipped binary are for
// the release build of `npm test`.
const sanitized = Boolean(process.env.SIDEWIRE_ADDON);

// A copy of the package's JavaScript without any addon next to it.
function bareCopy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-bare-'));
  fs.cpSync(path.join(root, 'js'), path.join(dir, 'js'), { recursive: true });
  return dir;
}

function runNode(cwd, code, env = {}) {
  const childEnv = { ...process.env, ...env };
  delete childEnv.SIDEWIRE_ADDON;
  return spawnSync(process.execPath, ['-e', code], { cwd, env: childEnv, encoding: 'utf8', timeout: 30000 });
}

(sanitized ? describe.skip : describe)('the release addon', () => {
  test('needs nothing but glibc and Node-API', () => {
    expect(checkAddon(addon)).toEqual([]);
    expect(needed(addon).sort()).toEqual(expect.arrayContaining(['libc.so.6']));
    for (const lib of needed(addon)) expect(lib).not.toMatch(/ssl|crypto|libz|spdlog|fmt|boost|stdc\+\+|gcc_s/);
    const ldd = execFileSync('ldd', [addon], { encoding: 'utf8' });
    expect(ldd).not.toMatch(/not found|libcrypto|libz\.so|libspdlog|libfmt|libstdc\+\+/);
    // Node-API is the only thing taken from the process.
    const fromNode = undefinedSymbols(addon).filter((s) => !s.includes('@'));
    expect(fromNode.length).toBeGreaterThan(10);
    for (const s of fromNode) expect(s).toMatch(/^(napi_|node_api_)/);
    const [major, minor] = glibcFloor(undefinedSymbols(addon)).split('.').map(Number);
    expect(major).toBe(2);
    expect(minor).toBeLessThanOrEqual(36); // what the README promises
  });

  test('loads and serves with an empty LD_LIBRARY_PATH', () => {
    const r = runNode(root, `
      const { Engine } = require('./js/index.js');
      const e = new Engine({ logLevel: 'off' });
      e.channel('/ws/x');
      e.close().then(() => console.log('ok'));`, { LD_LIBRARY_PATH: '', SIDEWIRE_ADDON: '' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
  });
});

describe('the loader', () => {
  (sanitized ? test.skip : test)('prefers the prebuilt binary of this platform when there is no source build', () => {
    const dir = bareCopy();
    const { prebuiltPath } = require(path.join(dir, 'js', 'platform.js'));
    const target = prebuiltPath();
    expect(path.relative(dir, target)).toBe(path.join('prebuilds', 'linux-x64', 'sidewire.napi.glibc.node'));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(addon, target);
    const r = runNode(dir, "const n = require('./js/native.js'); console.log(typeof n.Engine)");
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.stdout.trim()).toBe('function');
  });

  test('without a binary, says how to build one and which packages that needs', () => {
    const dir = bareCopy();
    const r = runNode(dir, "require('./js/index.js')");
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no prebuilt binary for linux-x64 (glibc)');
    expect(r.stderr).toContain('npx sidewire build');
    for (const pm of ['apt-get install', 'dnf install', 'apk add', 'brew install']) expect(r.stderr).toContain(pm);
  });

  test('a binary that does not load is named with its error', () => {
    const dir = bareCopy();
    fs.mkdirSync(path.join(dir, 'build'));
    fs.writeFileSync(path.join(dir, 'build', 'sidewire.node'), 'not an ELF file');
    const r = runNode(dir, "require('./js/index.js')");
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/the native addon failed to load \(.*build\/sidewire\.node: .*(invalid ELF header|file too short)/);
  });

  // What the bundlers leave in a server bundle: webpack keeps Node's require as
  // __non_webpack_require__, Turbopack hands each module __turbopack_context__ (and a numeric
  // module.id). tests/js/package.test.js sees the real `next build` message.
  test.each([['webpack', '__non_webpack_require__ = require'], ['Turbopack', '__turbopack_context__ = {}']])(
    'inside a %s bundle, names serverExternalPackages',
    (_name, marker) => {
      const dir = bareCopy();
      const r = runNode(dir, `globalThis.${marker}; require('./js/index.js')`);
      fs.rmSync(dir, { recursive: true, force: true });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("Add 'sidewire' to serverExternalPackages in next.config");
    },
  );
});

describe('npx sidewire build (scripts/build.mjs --install)', () => {
  test('without CMake, says what to install and leaves nothing behind', () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-path-'));
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-tmp-'));
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--install'], {
      env: { PATH: bin, TMPDIR: tmp, HOME: os.homedir() },
      encoding: 'utf8',
      timeout: 30000,
    });
    const left = fs.readdirSync(tmp);
    fs.rmSync(bin, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('[sidewire build] 1/3 configuring');
    expect(r.stderr).toContain('cannot run cmake');
    expect(r.stderr).toContain('cmake is not installed');
    for (const pm of ['apt-get install', 'dnf install', 'apk add', 'brew install']) expect(r.stderr).toContain(pm);
    expect(left).toEqual([]); // the temporary build directory is gone
  });
});
