// @ts-check
'use strict';
// Settings (environment), each an integer >= 1, checked once at load and reported
// in one log line ("pyfn settings: ..."); an invalid value is replaced, and said so:
//   PYFN_WORKERS       workers (default: one per CPU the instance may use, as many as
//                      its memory carries; at most 64)
//   PYFN_THREADS       threads per worker (default: 4 per CPU, no more than the
//                      recorded concurrency needs; at most 1,000)
//   PYFN_QUEUE         requests that may wait for a worker (default: 4 × workers ×
//                      threads, at least 64); above it, 503
//   PYFN_TIMEOUT       request timeout in seconds, counted from the request's arrival
//                      (default: the function's timeout that `pyfn deploy` records in
//                      the manifest, else 60; at most the platform's maximum: 3600 s,
//                      540 s for 1st gen)
//   PYFN_LOAD_TIMEOUT  seconds a worker may take to load the function (default 300)
//   PYFN_MAX_BODY      bytes a request's body may have, as sent and once decoded
//                      (default and maximum: the platform's request limit, 32 MiB on
//                      2nd gen, 10 MiB on 1st gen); above it, 413
// The instance's CPUs and memory come from its cgroup (instanceLimits).

const fs = require('fs');
const os = require('os');
const path = require('path');

const MAX_WORKERS = 64;
// Resident memory the default number of workers is sized by (bytes): Node with the
// framework, and one PyPy worker serving at full load, each with headroom. Measured by
// benchmarks/vs_native.py.
const NODE_MEMORY = 96 * 1024 * 1024;
const WORKER_MEMORY = 192 * 1024 * 1024;
const MAX_THREADS = 1000; // per worker: Cloud Functions sends at most 1,000 requests at once
const MAX_QUEUE = 100000;
const DEFAULT_LOAD_TIMEOUT = 300;

/**
 * The manifest's `function` table, as `pyfn build` (and `pyfn deploy`) record it.
 * @typedef {object} FunctionInfo
 * @property {string} entry_point
 * @property {string} signature  http, cloudevent, event or script
 * @property {number | string} [gen]
 * @property {number | string} [timeout]  seconds
 * @property {number | string} [concurrency]
 * @property {string} [script]  script mode: the file run per request
 * @property {string} [stdin]  script mode: what the script reads (body, request, ...)
 */

/**
 * @typedef {object} Manifest
 * @property {FunctionInfo} function
 * @property {{executable: string}} runtime
 */

/** @typedef {{cpus: number, memory: number}} Limits */

/**
 * @typedef {object} Settings
 * @property {number} workers
 * @property {number} threads
 * @property {number} queue
 * @property {number} timeout  seconds
 * @property {number} loadTimeout  seconds
 * @property {number} maxBody  bytes
 * @property {string[]} problems  the values replaced, and why
 * @property {Limits} limits  the instance's
 */

/**
 * The bundle's manifest (pyfn/manifest.json under the bundle's root).
 * @param {string} root
 * @returns {Manifest}
 */
function readManifest(root) {
  return JSON.parse(fs.readFileSync(path.join(root, 'pyfn', 'manifest.json'), 'utf8'));
}

/**
 * The platform's limits for HTTP functions of the function's generation: the longest
 * timeout in seconds, and the request limit in bytes (the shim holds it to the decoded
 * body too).
 * @param {FunctionInfo} fn
 */
function platformLimits(fn) {
  const first = Number(fn.gen) === 1;
  return {maxTimeout: first ? 540 : 3600, maxBody: (first ? 10 : 32) * 1024 * 1024};
}

/** The host's CPUs, as Node counts those it may run on. */
function hostCpuCount() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Each setting is an integer in [1, max]; anything else is replaced and reported.
 * @param {NodeJS.ProcessEnv} env
 * @param {FunctionInfo} fn
 * @param {Limits} [limits]  the instance's (default: read from its cgroup)
 * @returns {Settings}
 */
function readSettings(env, fn, limits = instanceLimits(hostCpuCount(), os.totalmem(), env)) {
  /** @type {string[]} */
  const problems = [];
  /**
   * @param {string} name
   * @param {unknown} raw
   * @param {number} fallback
   * @param {number} max
   */
  const integer = (name, raw, fallback, max) => {
    if (raw === undefined || raw === null || raw === '') return fallback;
    const text = String(raw).trim();
    const shown = JSON.stringify(String(raw).slice(0, 40));
    if (!/^[0-9]+$/.test(text) || Number(text) < 1) {
      problems.push(`${name}=${shown} is not an integer >= 1: used ${fallback}`);
      return fallback;
    }
    if (Number(text) > max) {
      problems.push(`${name}=${shown} is above the maximum: used ${max}`);
      return max;
    }
    return Number(text);
  };
  const {maxTimeout, maxBody: platformBody} = platformLimits(fn);
  const workers = integer('PYFN_WORKERS', env.PYFN_WORKERS, defaultWorkers(limits), MAX_WORKERS);
  const recorded = integer('the manifest\'s function.timeout', fn.timeout, 60, maxTimeout);
  const timeout = integer('PYFN_TIMEOUT', env.PYFN_TIMEOUT, recorded, maxTimeout);
  const loadTimeout = integer('PYFN_LOAD_TIMEOUT', env.PYFN_LOAD_TIMEOUT, DEFAULT_LOAD_TIMEOUT, maxTimeout);
  const maxBody = integer('PYFN_MAX_BODY', env.PYFN_MAX_BODY, platformBody, platformBody);
  // Threads per worker: the native Python runtime's rule (gunicorn's threads = 4 × the
  // instance's CPUs), but no more than the instance is sent at once (the concurrency
  // pyfn deploy recorded) needs across the workers.
  const concurrency = integer('the manifest\'s function.concurrency', fn.concurrency, 0, MAX_THREADS);
  let fallbackThreads = Math.min(MAX_THREADS, 4 * limits.cpus);
  if (concurrency > 0) fallbackThreads = Math.min(fallbackThreads, Math.ceil(concurrency / workers));
  const threads = integer('PYFN_THREADS', env.PYFN_THREADS, Math.max(1, fallbackThreads), MAX_THREADS);
  const queue = integer('PYFN_QUEUE', env.PYFN_QUEUE, Math.max(64, 4 * workers * threads), MAX_QUEUE);
  return {workers, threads, queue, timeout, loadTimeout, maxBody, problems, limits};
}

/**
 * One worker per CPU the instance may use, as many as its memory carries: Node's share
 * and each worker's, busy, fit below the limit with room to spare. At least one.
 * @param {Limits} limits
 */
function defaultWorkers(limits) {
  const carried = Math.floor((limits.memory - NODE_MEMORY) / WORKER_MEMORY);
  return Math.max(1, Math.min(limits.cpus, carried, MAX_WORKERS));
}

/**
 * What this instance may use, from its cgroup (v2, else v1): CPUs from the quota
 * (cpu.max, or v1's cpu.cfs_quota_us / cpu.cfs_period_us), rounded up; memory from
 * memory.max (or v1's memory.limit_in_bytes). Each only when below the host's; else
 * the host's. The files are read in this process's own cgroup (`selfCgroup`,
 * /proc/self/cgroup), else at the root of the mount (a container's view).
 * PYFN_CGROUP_ROOT names another mount point (tests use fake files).
 * @param {number} hostCpus
 * @param {number} hostMemory
 * @param {NodeJS.ProcessEnv} env
 * @param {string} [selfCgroup]
 * @returns {Limits}
 */
function instanceLimits(hostCpus, hostMemory, env, selfCgroup = '/proc/self/cgroup') {
  /** @param {string} file */
  const read = file => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const root = env.PYFN_CGROUP_ROOT || '/sys/fs/cgroup';
  /** @type {Record<string, string>} */
  const own = {};
  for (const line of read(selfCgroup).split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const where = line.slice(second + 1);
    for (const controller of line.slice(first + 1, second).split(',')) own[controller || 'v2'] = where;
  }
  // The first of `name` found in the process's own cgroup of `controller`, then the root.
  /**
   * @param {string} controller
   * @param {string} name
   */
  const find = (controller, name) => {
    const base = controller === 'v2' ? root : path.join(root, controller);
    const dirs = own[controller] && own[controller] !== '/' ? [path.join(base, own[controller]), base] : [base];
    for (const dir of dirs) {
      const text = read(path.join(dir, name));
      if (text) return text;
    }
    return '';
  };
  let quota = NaN;
  let period = NaN;
  const cpuMax = find('v2', 'cpu.max');
  if (cpuMax) {
    [quota, period] = cpuMax.split(/\s+/).map(Number); // 'max 100000': NaN, no quota
  } else {
    quota = Number(find('cpu', 'cpu.cfs_quota_us'));
    period = Number(find('cpu', 'cpu.cfs_period_us'));
  }
  let cpus = hostCpus;
  if (quota > 0 && period > 0) cpus = Math.max(1, Math.min(hostCpus, Math.ceil(quota / period)));
  let memory = Number(find('v2', 'memory.max') || find('memory', 'memory.limit_in_bytes'));
  if (!(memory > 0) || memory > hostMemory) memory = hostMemory; // 'max' or v1's near-2^63
  return {cpus, memory};
}

/**
 * The one line the shim logs as it loads: what it uses, and what it replaced.
 * @param {Settings} settings
 * @param {boolean} script  script mode: no workers, no queue
 * @returns {{severity: string, message: string, fields: Record<string, number>}}
 */
function settingsLine(settings, script) {
  const {workers, threads, queue, timeout, loadTimeout, maxBody, limits} = settings;
  const mib = Math.round(limits.memory / 1048576);
  const used = script
    ? `script mode, request timeout ${timeout} s, bodies up to ${maxBody} bytes`
    : `${workers} worker${workers === 1 ? '' : 's'} × ${threads} thread${threads === 1 ? '' : 's'}, ` +
      `queue ${queue}, request timeout ${timeout} s, load timeout ${loadTimeout} s, ` +
      `bodies up to ${maxBody} bytes (instance: ${limits.cpus} CPU${limits.cpus === 1 ? '' : 's'}, ` +
      `${mib} MiB)`;
  const problems = settings.problems.length ? `; ${settings.problems.join('; ')}` : '';
  return {
    severity: problems ? 'WARNING' : 'INFO',
    message: `pyfn settings: ${used}${problems}`,
    fields: {workers, threads, queue, timeout, load_timeout: loadTimeout, max_body: maxBody, cpus: limits.cpus,
      memory_mib: mib},
  };
}

module.exports = {
  MAX_QUEUE, MAX_THREADS, MAX_WORKERS, NODE_MEMORY, WORKER_MEMORY,
  defaultWorkers, hostCpuCount, instanceLimits, platformLimits, readManifest, readSettings, settingsLine,
};
