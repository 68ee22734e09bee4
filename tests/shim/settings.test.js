// @ts-check
'use strict';
// Settings from the environment and the manifest, and the instance's limits from its
// cgroup (v2 and v1 files, in the process's own cgroup or at the mount's root).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {test} = require('node:test');

const {MAX_QUEUE, MAX_THREADS, MAX_WORKERS, NODE_MEMORY, WORKER_MEMORY, defaultWorkers, instanceLimits,
  platformLimits, readSettings, settingsLine} = require('../../pyfn_action/shim/shim/settings');

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const FN = {entry_point: 'hello', signature: 'http'};
const BIG = {cpus: 4, memory: 16 * GiB};

/**
 * A fake cgroup mount: `files` by path under it, and the process's own cgroup file.
 * @param {Record<string, string>} files
 * @param {string} [self]  /proc/self/cgroup's text
 */
function cgroup(files, self = '') {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pyfn-cgroup-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), {recursive: true});
    fs.writeFileSync(path.join(root, name), text);
  }
  const selfFile = path.join(root, 'self-cgroup');
  fs.writeFileSync(selfFile, self);
  return {env: {PYFN_CGROUP_ROOT: root}, selfFile, root};
}

/**
 * @param {Record<string, string>} files
 * @param {string} [self]
 */
function limitsOf(files, self) {
  const fake = cgroup(files, self);
  try {
    return instanceLimits(8, 32 * GiB, fake.env, fake.selfFile);
  } finally {
    fs.rmSync(fake.root, {recursive: true, force: true});
  }
}

test('defaults: a worker per CPU the memory carries, 4 threads a CPU, a queue of 4 × both', () => {
  const settings = readSettings({}, FN, BIG);
  assert.deepEqual(settings, {workers: 4, threads: 16, queue: 256, timeout: 60, loadTimeout: 300,
    maxBody: 32 * MiB, problems: [], limits: BIG});
});

test('the memory decides the workers: one at least, never more than the CPUs', () => {
  assert.equal(defaultWorkers({cpus: 4, memory: 256 * MiB}), 1);
  assert.equal(defaultWorkers({cpus: 4, memory: NODE_MEMORY + 2 * WORKER_MEMORY}), 2);
  assert.equal(defaultWorkers({cpus: 1, memory: 64 * GiB}), 1);
  assert.equal(defaultWorkers({cpus: 512, memory: 1024 * GiB}), MAX_WORKERS);
});

test('valid settings from the environment are used as given', () => {
  const env = {PYFN_WORKERS: '3', PYFN_THREADS: ' 5 ', PYFN_QUEUE: '70', PYFN_TIMEOUT: '120',
    PYFN_LOAD_TIMEOUT: '30', PYFN_MAX_BODY: '1024'};
  const settings = readSettings(env, FN, BIG);
  assert.deepEqual([settings.workers, settings.threads, settings.queue, settings.timeout, settings.loadTimeout,
    settings.maxBody, settings.problems], [3, 5, 70, 120, 30, 1024, []]);
});

test('an invalid value is replaced by the default, and said so', () => {
  const env = {PYFN_WORKERS: 'two', PYFN_THREADS: '0', PYFN_QUEUE: '-5', PYFN_TIMEOUT: '1.5', PYFN_MAX_BODY: '1e6'};
  const settings = readSettings(env, FN, BIG);
  assert.equal(settings.workers, 4);
  assert.equal(settings.threads, 16);
  assert.equal(settings.queue, 256);
  assert.equal(settings.timeout, 60);
  assert.equal(settings.maxBody, 32 * MiB);
  assert.deepEqual(settings.problems, [
    'PYFN_WORKERS="two" is not an integer >= 1: used 4',
    'PYFN_TIMEOUT="1.5" is not an integer >= 1: used 60',
    `PYFN_MAX_BODY="1e6" is not an integer >= 1: used ${32 * MiB}`,
    'PYFN_THREADS="0" is not an integer >= 1: used 16',
    'PYFN_QUEUE="-5" is not an integer >= 1: used 256',
  ]);
});

test('a value above its maximum is the maximum, and said so; a long value is shown cut', () => {
  const env = {PYFN_WORKERS: '65', PYFN_THREADS: '1001', PYFN_QUEUE: String(MAX_QUEUE + 1), PYFN_TIMEOUT: '3601',
    PYFN_MAX_BODY: String(64 * MiB), PYFN_LOAD_TIMEOUT: 'x'.repeat(100)};
  const settings = readSettings(env, FN, BIG);
  assert.deepEqual([settings.workers, settings.threads, settings.queue, settings.timeout, settings.maxBody],
    [MAX_WORKERS, MAX_THREADS, MAX_QUEUE, 3600, 32 * MiB]);
  assert.equal(settings.problems.length, 6);
  assert.ok(settings.problems.includes('PYFN_WORKERS="65" is above the maximum: used 64'));
  assert.ok(settings.problems.includes(`PYFN_LOAD_TIMEOUT="${'x'.repeat(40)}" is not an integer >= 1: used 300`));
});

test('1st gen: a 540 s timeout at most and 10 MiB bodies', () => {
  const fn = {...FN, gen: 1};
  assert.deepEqual(platformLimits(fn), {maxTimeout: 540, maxBody: 10 * MiB});
  const settings = readSettings({PYFN_TIMEOUT: '600'}, fn, BIG);
  assert.equal(settings.timeout, 540);
  assert.equal(settings.maxBody, 10 * MiB);
  assert.deepEqual(platformLimits({...FN, gen: '2'}), {maxTimeout: 3600, maxBody: 32 * MiB});
});

test('the manifest\'s timeout is the default; PYFN_TIMEOUT overrides it', () => {
  const fn = {...FN, timeout: 300};
  assert.equal(readSettings({}, fn, BIG).timeout, 300);
  assert.equal(readSettings({PYFN_TIMEOUT: '10'}, fn, BIG).timeout, 10);
  const bad = readSettings({}, {...FN, timeout: 'soon'}, BIG);
  assert.equal(bad.timeout, 60);
  assert.deepEqual(bad.problems, ['the manifest\'s function.timeout="soon" is not an integer >= 1: used 60']);
});

test('the recorded concurrency caps the threads across the workers', () => {
  const fn = {...FN, concurrency: 10};
  const settings = readSettings({PYFN_WORKERS: '4'}, fn, BIG);
  assert.equal(settings.threads, 3); // ceil(10 / 4), below 4 × 4 CPUs
  assert.equal(settings.queue, 64); // at least 64
  assert.equal(readSettings({}, {...FN, concurrency: 1}, {cpus: 1, memory: GiB}).threads, 1);
});

test('the settings line says what is used, and warns of what was replaced', () => {
  const ok = settingsLine(readSettings({}, FN, {cpus: 1, memory: GiB}), false);
  assert.equal(ok.severity, 'INFO');
  assert.equal(ok.message, 'pyfn settings: 1 worker × 4 threads, queue 64, request timeout 60 s, load timeout 300 s, ' +
    `bodies up to ${32 * MiB} bytes (instance: 1 CPU, 1024 MiB)`);
  assert.deepEqual(ok.fields, {workers: 1, threads: 4, queue: 64, timeout: 60, load_timeout: 300,
    max_body: 32 * MiB, cpus: 1, memory_mib: 1024});
  const warned = settingsLine(readSettings({PYFN_TIMEOUT: 'x'}, FN, BIG), true);
  assert.equal(warned.severity, 'WARNING');
  assert.equal(warned.message, `pyfn settings: script mode, request timeout 60 s, bodies up to ${32 * MiB} bytes; ` +
    'PYFN_TIMEOUT="x" is not an integer >= 1: used 60');
});

test('cgroup v2: CPUs from cpu.max, rounded up; memory from memory.max', () => {
  assert.deepEqual(limitsOf({'cpu.max': '150000 100000\n', 'memory.max': String(512 * MiB)}),
    {cpus: 2, memory: 512 * MiB});
  assert.deepEqual(limitsOf({'cpu.max': '50000 100000', 'memory.max': 'max'}), {cpus: 1, memory: 32 * GiB});
  assert.deepEqual(limitsOf({'cpu.max': 'max 100000'}), {cpus: 8, memory: 32 * GiB});
});

test('cgroup v1: the CFS quota and period, and memory.limit_in_bytes', () => {
  const files = {'cpu/cpu.cfs_quota_us': '200000', 'cpu/cpu.cfs_period_us': '100000',
    'memory/memory.limit_in_bytes': String(256 * MiB)};
  assert.deepEqual(limitsOf(files), {cpus: 2, memory: 256 * MiB});
  // No quota (-1), and v1's "no limit", near 2^63: the host's.
  assert.deepEqual(limitsOf({'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000',
    'memory/memory.limit_in_bytes': '9223372036854771712'}), {cpus: 8, memory: 32 * GiB});
});

test('the process\'s own cgroup is read first, then the mount\'s root', () => {
  const v2 = {'cpu.max': '400000 100000', 'fn/slice/cpu.max': '100000 100000', 'memory.max': String(GiB)};
  assert.deepEqual(limitsOf(v2, '0::/fn/slice\n'), {cpus: 1, memory: GiB});
  const v1 = {'cpu/cpu.cfs_quota_us': '300000', 'cpu/cpu.cfs_period_us': '100000',
    'cpu/kube/pod/cpu.cfs_quota_us': '100000', 'cpu/kube/pod/cpu.cfs_period_us': '100000',
    'memory/kube/pod/memory.limit_in_bytes': String(128 * MiB)};
  const self = '12:memory:/kube/pod\n4:cpu,cpuacct:/kube/pod\n1:name=systemd:/\nnot a line\n';
  assert.deepEqual(limitsOf(v1, self), {cpus: 1, memory: 128 * MiB});
  assert.deepEqual(limitsOf(v1, '4:cpu,cpuacct:/elsewhere\n'), {cpus: 3, memory: 32 * GiB});
});

test('absent or unreadable files, and values that are not numbers, leave the host\'s', () => {
  assert.deepEqual(limitsOf({}), {cpus: 8, memory: 32 * GiB});
  assert.deepEqual(limitsOf({'cpu.max': 'lots', 'memory.max': 'plenty'}), {cpus: 8, memory: 32 * GiB});
  assert.deepEqual(limitsOf({'cpu.max': '100000 0', 'memory.max': '0'}), {cpus: 8, memory: 32 * GiB});
  assert.deepEqual(limitsOf({'cpu.max': '1600000 100000', 'memory.max': String(64 * GiB)}),
    {cpus: 8, memory: 32 * GiB}); // never above the host's
  const missing = instanceLimits(2, GiB, {PYFN_CGROUP_ROOT: path.join(os.tmpdir(), 'pyfn-no-such-dir')},
    path.join(os.tmpdir(), 'pyfn-no-such-file'));
  assert.deepEqual(missing, {cpus: 2, memory: GiB});
});

test('the cgroup mount is the environment given, not the process\'s', () => {
  const fake = cgroup({'cpu.max': '100000 100000', 'memory.max': String(300 * MiB)});
  try {
    assert.equal(process.env.PYFN_CGROUP_ROOT, undefined);
    assert.deepEqual(instanceLimits(8, 32 * GiB, fake.env, fake.selfFile), {cpus: 1, memory: 300 * MiB});
    const settings = readSettings(fake.env, FN);
    assert.deepEqual(settings.limits, {cpus: 1, memory: Math.min(300 * MiB, os.totalmem())});
    assert.equal(settings.workers, 1);
  } finally {
    fs.rmSync(fake.root, {recursive: true, force: true});
  }
});
