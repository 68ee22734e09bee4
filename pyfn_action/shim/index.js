// @ts-check
'use strict';
// pyfn shim: serves a Python function on the bundle's PyPy from Cloud Functions'
// Node.js runtime. This file only wires the modules in ./shim:
//   settings.js   the manifest, and the settings from the environment and the cgroup
//   frames.js     the framed protocol with the workers
//   child.js      one persistent PyPy worker (pyfn/worker.py)
//   pool.js       the workers, the bounded queue, restarts
//   job.js        one request on its way through the pool; the shim's own answers
//   direct.js     requests from Node's HTTP server (or the framework's app) to the pool
//   script.js     script mode: one process per request
//   framework.js  the shim in the Node.js Functions Framework
//   processes.js  the environment of the PyPy processes, and killing their groups
//   log.js        JSON log lines
//
// Framework mode (default): persistent PyPy workers run the Python Functions Framework
// app in-process; every request is forwarded to a free worker over a framed protocol
// on pipes. Nothing is spawned per request. Script mode: one process per request, fed
// JSON on stdin, its stdout the response body, through the framework's express app.

const path = require('path');

const {requestHandlers} = require('./shim/direct');
const {register, takeServer} = require('./shim/framework');
const {log} = require('./shim/log');
const {Pool} = require('./shim/pool');
const {childEnv} = require('./shim/processes');
const {scriptHandler} = require('./shim/script');
const {readManifest, readSettings, settingsLine} = require('./shim/settings');
const {Worker} = require('./shim/child');

const ROOT = __dirname;
const manifest = readManifest(ROOT);
const FUNCTION = manifest.function;
const PYPY = path.join(ROOT, manifest.runtime.executable);
const SCRIPT = FUNCTION.signature === 'script';

const SETTINGS = readSettings(process.env, FUNCTION);
const TIMEOUT_MS = SETTINGS.timeout * 1000;
const env = () => childEnv(process.env, ROOT, SETTINGS.threads);

const pool = new Pool({
  size: SETTINGS.workers,
  queueLimit: SETTINGS.queue,
  spawn: owner => new Worker(owner, {
    root: ROOT,
    pypy: PYPY,
    script: path.join(ROOT, 'pyfn', 'worker.py'),
    env,
    threads: SETTINGS.threads,
    loadTimeoutMs: SETTINGS.loadTimeout * 1000,
  }),
});
const requests = requestHandlers(pool, {maxBody: SETTINGS.maxBody, timeoutMs: TIMEOUT_MS});
takeServer(FUNCTION.signature, requests.direct);

const scripts = scriptHandler({root: ROOT, pypy: PYPY, fn: FUNCTION, env, maxBody: SETTINGS.maxBody,
  timeoutMs: TIMEOUT_MS});
const handler = SCRIPT ? scripts.handle : requests.framework;

{
  const line = settingsLine(SETTINGS, SCRIPT);
  log(line.severity, line.message, line.fields);
}

if (!SCRIPT) {
  pool.start(); // warm the workers while the instance starts, not on the first request
  process.on('exit', () => pool.stop());
} else {
  process.on('exit', scripts.stopAll);
}

/** @type {Record<string, unknown>} */ (exports)[FUNCTION.entry_point] = handler;
register(FUNCTION.entry_point, handler);
