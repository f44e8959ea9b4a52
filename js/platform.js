'use strict';
// Where the addon lives and what a source build needs; shared by js/native.js (the loader),
// scripts/build.mjs (`npx sidewire build`) and scripts/prebuild.mjs (`npm pack`).
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

// The build's system packages per package manager, named in the loader's and the build's errors.
const distroPackages = [
  'Debian/Ubuntu: apt-get install build-essential cmake libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev zlib1g-dev libhiredis-dev',
  'Fedora/RHEL:   dnf install gcc-c++ make cmake boost-devel json-devel spdlog-devel fmt-devel openssl-devel zlib-devel hiredis-devel',
  'Alpine:        apk add build-base cmake boost-dev nlohmann-json spdlog-dev fmt-dev openssl-dev zlib-dev hiredis-dev',
  'macOS:         brew install cmake boost nlohmann-json spdlog fmt openssl@3 hiredis (untested)',
];

/** 'glibc', 'musl' or '' (not Linux), as Node's own report tells. */
function libc() {
  if (process.platform !== 'linux') return '';
  try {
    return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  } catch {
    return fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  }
}

/** prebuilds/<platform>-<arch>/sidewire.napi[.<libc>].node: node-gyp-build's layout and tags. */
function prebuiltPath() {
  const tag = libc();
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, tag ? `sidewire.napi.${tag}.node` : 'sidewire.napi.node');
}

/** A source build's output: the repository's own build, or `npx sidewire build`. */
const sourceBuildPath = path.join(root, 'build', 'sidewire.node');

module.exports = { root, distroPackages, libc, prebuiltPath, sourceBuildPath };
