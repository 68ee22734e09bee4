// @ts-check
'use strict';
// What the shim's PyPy processes (its workers, and script mode's scripts) start with,
// and how they end: each runs in a process group of its own (a `kill 0` in the
// function's code stays in there), killed with whatever it started.

const path = require('path');

// `pyfn deploy` and `pyfn serve` set NODE_OPTIONS so that Node loads index.js before the
// framework (the workers start while it loads). The processes it starts do not inherit
// that: a `node` the function runs elsewhere would not find ./index.js.
const PRELOAD_OPTION = '--require ./index.js';

// PyPy sizes its GC nursery from the CPU's last-level cache (half of it) when
// PYPY_GC_NURSERY is unset: on a host whose L3 cache is hundreds of MB, each worker
// then holds a nursery of that size, and a 256 MiB instance cannot keep one worker.
// Its own fallback, 4 MB, unless the function sets another.
const GC_NURSERY = '4MB';

/**
 * The environment of a PyPy process the shim starts: Node's, less what would mislead
 * Python or a `node` it runs, with the bundle's shared libraries.
 * @param {NodeJS.ProcessEnv} parent  Node's environment
 * @param {string} root  the bundle's root
 * @param {number} threads  PYFN_THREADS, as judged by the settings
 * @returns {NodeJS.ProcessEnv}
 */
function childEnv(parent, root, threads) {
  const env = Object.assign({}, parent);
  if (!env.PYPY_GC_NURSERY) env.PYPY_GC_NURSERY = GC_NURSERY;
  if (env.NODE_OPTIONS !== undefined) {
    const rest = env.NODE_OPTIONS.split(PRELOAD_OPTION).join(' ').trim();
    if (rest) env.NODE_OPTIONS = rest;
    else delete env.NODE_OPTIONS;
  }
  const lib = path.join(root, 'pypy', 'lib');
  env.LD_LIBRARY_PATH = env.LD_LIBRARY_PATH ? `${lib}:${env.LD_LIBRARY_PATH}` : lib;
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONDONTWRITEBYTECODE = '1';
  env.PYTHONNOUSERSITE = '1';
  env.PYFN_THREADS = String(threads);
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  return env;
}

/**
 * A process started `detached` (its own group), and every process it started that is
 * still in its group; the process alone where the group cannot be signalled.
 * @param {import('child_process').ChildProcess} child
 */
function killGroup(child) {
  try {
    if (!child.pid) throw new Error('not started');
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

module.exports = {GC_NURSERY, PRELOAD_OPTION, childEnv, killGroup};
