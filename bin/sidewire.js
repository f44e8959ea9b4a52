#!/usr/bin/env node
'use strict';
// The sidewire command.
//
//   npx sidewire init [--force]   in a Next.js app: writes server.mjs (startServer from
//                                 sidewire/next), adds 'sidewire' to serverExternalPackages in
//                                 next.config.*, points the dev/start scripts at server.mjs
//   npx sidewire build            builds the native addon from source (scripts/build.mjs --install),
//                                 for a platform without a prebuilt binary
//   npx sidewire --help | --version
//
// init is idempotent: run again, it changes nothing. It never overwrites a server.mjs of the
// app's own without --force, and when it cannot edit next.config safely it says what line to
// add and exits 1.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const README_URL = 'https://github.com/sidewire/sidewire#readme';
const TEMPLATE = path.join(__dirname, 'templates', 'server.mjs');

// The order Next.js looks for its config in (next/dist/shared/lib/constants.js CONFIG_FILES),
// then .cjs.
const CONFIG_FILES = ['next.config.js', 'next.config.mjs', 'next.config.ts', 'next.config.mts', 'next.config.cjs'];

const SCRIPTS = {
  // exec: npm signals the shell it runs a script in; the server must be that process, or a
  // SIGTERM to `npm start` leaves node running without its shell.
  dev: 'exec node server.mjs',
  start: 'NODE_ENV=production exec node server.mjs',
};

const NEW_CONFIG = `/** @type {import('next').NextConfig} */
const nextConfig = {
  // sidewire is a native addon: route handlers load it with Node's require, the same module
  // instance server.mjs loaded (its engine and its Socket.IO server), never a bundled copy.
  serverExternalPackages: ['sidewire'],
};

export default nextConfig;
`;

function usage() {
  return `Usage: sidewire <command>

Commands:
  init [--force]   set up sidewire in the Next.js app in this directory: writes server.mjs,
                   adds 'sidewire' to serverExternalPackages in next.config, sets the
                   dev and start scripts (--force: replace an existing server.mjs)
  build            build the native addon from source (for a platform without a prebuilt binary)

Options:
  -h, --help       this help
  -v, --version    sidewire's version

${README_URL}
`;
}

function version() {
  return JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
}

// ------------------------------------------------------------------------------ next.config

const LINE = "serverExternalPackages: ['sidewire'],";

function quoteOf(text) {
  const doubles = (text.match(/(?:from\s+|require\(\s*|import\(\s*)"/g) || []).length;
  const singles = (text.match(/(?:from\s+|require\(\s*|import\(\s*)'/g) || []).length;
  return doubles > singles ? '"' : "'";
}

function count(text, re) {
  return (text.match(new RegExp(re.source, 'g')) || []).length;
}

/**
 * Adds 'sidewire' to serverExternalPackages in a next.config's text.
 * { status: 'unchanged' | 'edited', text } or { status: 'manual', reason } when a text edit
 * would be a guess.
 */
function addServerExternal(text) {
  const q = quoteOf(text);
  const entry = `${q}sidewire${q}`;
  const mentions = count(text, /\bserverExternalPackages\b/);
  if (mentions > 1) return { status: 'manual', reason: 'serverExternalPackages appears more than once' };
  if (mentions === 1) {
    const m = /\bserverExternalPackages(\s*:\s*)\[([^\]]*)\]/.exec(text);
    if (!m) return { status: 'manual', reason: 'serverExternalPackages is not an array literal' };
    const items = m[2];
    if (/(['"`])sidewire\1/.test(items)) return { status: 'unchanged', text };
    const open = m.index + m[0].indexOf('[') + 1;
    let insert;
    if (items.trim() === '') {
      insert = null;
    } else if (/^[ \t]*\r?\n/.test(items)) {
      const indent = /\n([ \t]*)\S/.exec(items);
      insert = `\n${indent ? indent[1] : '    '}${entry},`;
    } else {
      insert = `${entry}, `;
    }
    const out = insert === null
      ? `${text.slice(0, open)}${entry}${text.slice(open + items.length)}`
      : `${text.slice(0, open)}${insert}${text.slice(open)}`;
    return { status: 'edited', text: out };
  }
  // No serverExternalPackages yet: the first property of the config object.
  const patterns = [
    /\b(?:const|let|var)\s+nextConfig\s*(?::\s*NextConfig\s*)?=\s*\{/,
    /\bmodule\.exports\s*=\s*\{/,
    /\bexport\s+default\s+\{/,
  ];
  const found = [];
  for (const re of patterns) {
    const n = count(text, re);
    if (n > 0) found.push({ re, n });
  }
  if (found.length !== 1 || found[0].n !== 1) {
    return { status: 'manual', reason: 'no single config object literal (const nextConfig = { … }, module.exports = { … }) to add it to' };
  }
  const m = found[0].re.exec(text);
  const at = m.index + m[0].length; // just after the `{`
  const rest = text.slice(at);
  const line = LINE.replace(/'sidewire'/, entry);
  const empty = /^[ \t]*\}/.exec(rest);
  if (empty) {
    return { status: 'edited', text: `${text.slice(0, at)}\n  ${line}\n${text.slice(at + empty[0].length - 1)}` };
  }
  const next = /^[ \t]*\r?\n([ \t]*)/.exec(rest);
  const indent = next && next[1] ? next[1] : '  ';
  const placeholder = /^([ \t]*\r?\n[ \t]*)\/\* config options here \*\//.exec(rest);
  if (placeholder) {
    return { status: 'edited', text: `${text.slice(0, at)}${placeholder[1]}${line}${rest.slice(placeholder[0].length)}` };
  }
  if (next) return { status: 'edited', text: `${text.slice(0, at)}\n${indent}${line}${rest}` };
  return { status: 'edited', text: `${text.slice(0, at)} ${line}${rest}` };
}

// ------------------------------------------------------------------------------------ init

function readJson(file) {
  const text = fs.readFileSync(file, 'utf8');
  return { text, data: JSON.parse(text) };
}

function init(args, cwd, out, err) {
  const force = args.includes('--force');
  const unknown = args.filter((a) => a !== '--force');
  if (unknown.length) {
    err.write(`sidewire init: unknown argument ${unknown[0]}\n\n${usage()}`);
    return 2;
  }
  const pkgFile = path.join(cwd, 'package.json');
  if (!fs.existsSync(pkgFile)) {
    err.write(`sidewire init: no package.json in ${cwd}. Run it in the Next.js app's directory (create one with npx create-next-app@latest).\n`);
    return 1;
  }
  let pkg;
  try {
    pkg = readJson(pkgFile);
  } catch (e) {
    err.write(`sidewire init: cannot read ${pkgFile}: ${e.message}\n`);
    return 1;
  }
  const deps = { ...(pkg.data.dependencies || {}), ...(pkg.data.devDependencies || {}) };
  const template = fs.readFileSync(TEMPLATE, 'utf8');

  // server.mjs first: refusing to overwrite it changes nothing at all.
  const serverFile = path.join(cwd, 'server.mjs');
  let serverAction;
  if (!fs.existsSync(serverFile)) {
    serverAction = 'write';
  } else if (fs.readFileSync(serverFile, 'utf8') === template) {
    serverAction = 'same';
  } else if (force) {
    serverAction = 'replace';
  } else {
    err.write(
      'sidewire init: server.mjs already exists and is not the one sidewire writes; it is left as it is, and nothing was changed.\n' +
        '  Run `npx sidewire init --force` to replace it, or use startServer() from sidewire/next in it yourself:\n\n' +
        template.replace(/^(?=.)/gm, '    ') + '\n',
    );
    return 1;
  }

  const done = [];
  let failed = false;
  out.write(`sidewire init in ${cwd}\n`);
  if (!deps.next) out.write('  warning: package.json does not list next; is this a Next.js app?\n');

  if (serverAction === 'same') {
    out.write('  server.mjs: up to date\n');
  } else {
    fs.writeFileSync(serverFile, template);
    out.write(`  server.mjs: ${serverAction === 'replace' ? 'replaced' : 'written'}\n`);
    done.push('server.mjs');
  }

  // next.config: 'sidewire' in serverExternalPackages.
  const configName = CONFIG_FILES.find((name) => fs.existsSync(path.join(cwd, name)));
  if (!configName) {
    fs.writeFileSync(path.join(cwd, 'next.config.mjs'), NEW_CONFIG);
    out.write("  next.config.mjs: written, with serverExternalPackages: ['sidewire']\n");
    done.push('next.config.mjs');
  } else {
    const configFile = path.join(cwd, configName);
    const r = addServerExternal(fs.readFileSync(configFile, 'utf8'));
    if (r.status === 'unchanged') {
      out.write(`  ${configName}: serverExternalPackages already has 'sidewire'\n`);
    } else if (r.status === 'edited') {
      fs.writeFileSync(configFile, r.text);
      out.write(`  ${configName}: added 'sidewire' to serverExternalPackages\n`);
      done.push(configName);
    } else {
      failed = true;
      err.write(
        `sidewire init: cannot edit ${configName} safely (${r.reason}). Add this line to the object it exports:\n\n` +
          `    ${LINE}\n\n` +
          "  (or add 'sidewire' to the serverExternalPackages array you have), then run `npx sidewire init` again.\n",
      );
    }
  }

  // package.json scripts.
  const scripts = { ...(pkg.data.scripts || {}) };
  const replaced = [];
  const added = [];
  for (const [name, value] of Object.entries(SCRIPTS)) {
    if (scripts[name] === value) continue;
    if (scripts[name] !== undefined) replaced.push(`scripts.${name} ${JSON.stringify(scripts[name])} -> ${JSON.stringify(value)}`);
    else added.push(`scripts.${name} ${JSON.stringify(value)}`);
    scripts[name] = value;
  }
  if (scripts.build === undefined) {
    scripts.build = 'next build';
    added.push('scripts.build "next build"');
  }
  if (replaced.length || added.length) {
    const indent = (/^[{[]\s*\n([ \t]+)/.exec(pkg.text) || [null, '  '])[1];
    let data = { ...pkg.data, scripts };
    if (!pkg.data.scripts) {
      // A new "scripts" block goes before the dependencies, where npm puts it, not at the end.
      data = {};
      for (const [k, v] of Object.entries(pkg.data)) {
        if (!data.scripts && ['dependencies', 'devDependencies', 'peerDependencies'].includes(k)) data.scripts = scripts;
        data[k] = v;
      }
      if (!data.scripts) data.scripts = scripts;
    }
    fs.writeFileSync(pkgFile, `${JSON.stringify(data, null, indent)}${pkg.text.endsWith('\n') ? '\n' : ''}`);
    for (const line of replaced) out.write(`  package.json: replaced ${line}\n`);
    for (const line of added) out.write(`  package.json: added ${line}\n`);
    done.push('package.json');
  } else {
    out.write('  package.json: scripts already set\n');
  }

  if (!done.length && !failed) out.write('Nothing to change: this app is set up.\n');

  const steps = [];
  if (!deps.sidewire) steps.push('npm install sidewire');
  steps.push('npm run dev             Next.js in development with sidewire on the same port (node server.mjs)');
  out.write(`
Next steps:
${steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}
  ${steps.length + 1}. Emit from route handlers after the write is done:
       import { getServer } from 'sidewire';
       getServer().to(room).emit('event', data);
     Route handlers need no segment config: they run on Node, and with cacheComponents
     Next refuses a runtime or dynamic export.
     getServer() answers only in the process server.mjs started: npm run dev, not plain next dev.
  ${steps.length + 2}. Keep 'sidewire' in serverExternalPackages in next.config: route handlers must load
     the package server.mjs loaded, not a bundled copy.
  ${steps.length + 3}. Production: npm run build, then npm start.
  More: ${README_URL}
`);
  return failed ? 1 : 0;
}

// ----------------------------------------------------------------------------------- build

function build(args, out, err) {
  const script = path.join(PACKAGE_ROOT, 'scripts', 'build.mjs');
  if (!fs.existsSync(script)) {
    err.write(`sidewire build: ${script} is missing from this installation of sidewire.\n`);
    return 1;
  }
  const r = spawnSync(process.execPath, [script, '--install', ...args], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
  if (r.error) {
    err.write(`sidewire build: ${r.error.message}\n`);
    return 1;
  }
  return r.status ?? 1;
}

function main(argv, { cwd = process.cwd(), out = process.stdout, err = process.stderr } = {}) {
  const [command, ...args] = argv;
  switch (command) {
    case '-h':
    case '--help':
    case 'help':
      out.write(usage());
      return 0;
    case '-v':
    case '--version':
      out.write(`${version()}\n`);
      return 0;
    case 'init':
      return init(args, cwd, out, err);
    case 'build':
      return build(args, out, err);
    default:
      err.write(`${command === undefined ? 'sidewire: a command is needed' : `sidewire: unknown command ${command}`}\n\n${usage()}`);
      return 2;
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

module.exports = { main, addServerExternal, SCRIPTS, CONFIG_FILES };
