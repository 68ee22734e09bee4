'use strict';
// pyfn shim: serves a Python function on the bundle's PyPy from Cloud Functions'
// Node.js runtime.
//
// Framework mode (default): persistent PyPy workers (pyfn/worker.py) run the
// Python Functions Framework app in-process; every request is forwarded to a
// free worker over a framed protocol on pipes (fd 3 requests, fd 4 responses;
// the worker moves them out of its user code's reach before loading it):
//   u32 header length | u32 body length | header JSON | body bytes
// Nothing is spawned per request. The shim answers every request itself, from the
// raw HTTP request, as the native Python runtime's server does: the Node framework's
// server gets the shim's listener instead of its express app (see directListener).
// Script mode: one process per request, fed JSON on stdin, its stdout the response
// body, through the framework's express app.
//
// Settings (environment), each an integer >= 1, checked once at load and reported
// in one log line ("pyfn settings: ..."); an invalid value is replaced, and said so:
//   PYFN_WORKERS       workers (default: one per CPU; at most 64)
//   PYFN_TIMEOUT       request timeout in seconds, counted from the request's arrival
//                      (default: the function's timeout that `pyfn deploy` records in
//                      the manifest, else 60; at most the platform's maximum: 3600 s,
//                      540 s for 1st gen)
//   PYFN_LOAD_TIMEOUT  seconds a worker may take to load the function (default 300)
//   PYFN_MAX_BODY      bytes a request's body may have, as sent and once decoded
//                      (default and maximum: the platform's request limit, 32 MiB on
//                      2nd gen, 10 MiB on 1st gen); above it, 413
// Logs are one JSON object per line with `severity`.
//
// Whatever a worker does costs that worker only: a frame that breaks the protocol
// (not JSON, the wrong shape, lengths above the limits, an answer to a request it
// was not given) gets it killed and replaced and its request answered 500. Nothing
// a worker sends may throw out of an event handler: the Node framework ends the
// instance on an uncaught exception.

const {spawn} = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

const ROOT = __dirname;
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'pyfn', 'manifest.json'), 'utf8'));
const FUNCTION = manifest.function;
const PYPY = path.join(ROOT, manifest.runtime.executable);
const WORKER = path.join(ROOT, 'pyfn', 'worker.py');
const HEADER_BYTES = 8;
const SMALL_BODY = 64 * 1024;
const MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024;
// A response frame's limits (worker.py answers 500 itself above them), so Node never
// holds more than this for a worker, whatever length a frame announces.
const MAX_FRAME_HEADER = 1024 * 1024;
const MAX_RESPONSE_BODY = 64 * 1024 * 1024;
const MAX_LOG_LINE = 64 * 1024; // characters per log entry: well within Cloud Logging's 256 KB
const MAX_WORKERS = 64;
// Resident memory the default number of workers is sized by (bytes): Node with the
// framework, and one PyPy worker serving at full load, each with headroom. Measured by
// benchmarks/vs_native.py.
const NODE_MEMORY = 96 * 1024 * 1024;
const WORKER_MEMORY = 192 * 1024 * 1024;
const MAX_THREADS = 1000; // per worker: Cloud Functions sends at most 1,000 requests at once
const MAX_QUEUE = 100000;
const DEFAULT_LOAD_TIMEOUT = 300;
const PLATFORM_MAX_TIMEOUT = Number(FUNCTION.gen) === 1 ? 540 : 3600; // seconds, HTTP functions
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);
// Request bodies: the platform's request limit (an HTTP request of 32 MiB on 2nd gen,
// 10 MiB on 1st gen), which the shim holds to the decoded body too, and the encodings
// the Node framework's body parsers decode.
const PLATFORM_MAX_BODY = (Number(FUNCTION.gen) === 1 ? 10 : 32) * 1024 * 1024;
const DECODERS = {gzip: zlib.createGunzip, deflate: zlib.createInflate, br: zlib.createBrotliDecompress};
const INTERNAL_ERROR = 'Internal Server Error\n';
const TEXT = 'text/plain; charset=utf-8';

function log(severity, message, extra) {
  process.stdout.write(JSON.stringify(Object.assign({severity, message}, extra || {})) + '\n');
}

// Test-only: PYFN_TEST_EVENTS names a file to which each request's way through the pool is
// appended, one JSON line an event ({"event": "queued" | "sent" | "client_gone" |
// "withdrawn" | "answered", "id", "url", ...}), so the tests wait on the event instead of
// the clock. Unset, as deployed and served, nothing is written.
const TEST_EVENTS = process.env.PYFN_TEST_EVENTS || '';

function testEvent(event, job, extra) {
  if (!TEST_EVENTS) return;
  const entry = Object.assign({event, id: job.id, url: job.header.url}, extra || {});
  fs.appendFileSync(TEST_EVENTS, JSON.stringify(entry) + '\n');
}

// Each setting is an integer in [1, max]; anything else is replaced and reported.
function readSettings(env) {
  const problems = [];
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
  const host = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const limits = instanceLimits(host, os.totalmem());
  const workers = integer('PYFN_WORKERS', env.PYFN_WORKERS, defaultWorkers(limits), MAX_WORKERS);
  const recorded = integer('the manifest\'s function.timeout', FUNCTION.timeout, 60, PLATFORM_MAX_TIMEOUT);
  const timeout = integer('PYFN_TIMEOUT', env.PYFN_TIMEOUT, recorded, PLATFORM_MAX_TIMEOUT);
  const loadTimeout = integer('PYFN_LOAD_TIMEOUT', env.PYFN_LOAD_TIMEOUT, DEFAULT_LOAD_TIMEOUT, PLATFORM_MAX_TIMEOUT);
  const maxBody = integer('PYFN_MAX_BODY', env.PYFN_MAX_BODY, PLATFORM_MAX_BODY, PLATFORM_MAX_BODY);
  // Threads per worker: the native Python runtime's rule (gunicorn's threads = 4 × the
  // instance's CPUs), but no more than the instance is sent at once (the concurrency
  // pyfn deploy recorded) needs across the workers.
  const concurrency = integer('the manifest\'s function.concurrency', FUNCTION.concurrency, 0, MAX_THREADS);
  let fallbackThreads = Math.min(MAX_THREADS, 4 * limits.cpus);
  if (concurrency > 0) fallbackThreads = Math.min(fallbackThreads, Math.ceil(concurrency / workers));
  const threads = integer('PYFN_THREADS', env.PYFN_THREADS, Math.max(1, fallbackThreads), MAX_THREADS);
  const queue = integer('PYFN_QUEUE', env.PYFN_QUEUE, Math.max(64, 4 * workers * threads), MAX_QUEUE);
  return {workers, threads, queue, timeout, loadTimeout, maxBody, problems, limits};
}

// One worker per CPU the instance may use, as many as its memory carries: Node's share
// and each worker's, busy, fit below the limit with room to spare. At least one.
function defaultWorkers(limits) {
  const carried = Math.floor((limits.memory - NODE_MEMORY) / WORKER_MEMORY);
  return Math.max(1, Math.min(limits.cpus, carried, MAX_WORKERS));
}

// What this instance may use, from its cgroup (v2, else v1): CPUs from the quota
// (cpu.max, or v1's cpu.cfs_quota_us / cpu.cfs_period_us), rounded up; memory from
// memory.max (or v1's memory.limit_in_bytes). Each only when below the host's; else
// the host's. The files are read in this process's own cgroup (/proc/self/cgroup),
// else at the root of the mount (a container's view). PYFN_CGROUP_ROOT names another
// mount point (tests use fake files).
function instanceLimits(hostCpus, hostMemory) {
  const read = file => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch (e) {
      return '';
    }
  };
  const root = process.env.PYFN_CGROUP_ROOT || '/sys/fs/cgroup';
  const own = {};
  for (const line of read('/proc/self/cgroup').split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const where = line.slice(second + 1);
    for (const controller of line.slice(first + 1, second).split(',')) own[controller || 'v2'] = where;
  }
  // The first of `name` found in the process's own cgroup of `controller`, then the root.
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

const SETTINGS = readSettings(process.env);
const WORKERS = SETTINGS.workers;
const THREADS = SETTINGS.threads;
const QUEUE_LIMIT = SETTINGS.queue;
const TIMEOUT_MS = SETTINGS.timeout * 1000;
const LOAD_TIMEOUT_MS = SETTINGS.loadTimeout * 1000;
const MAX_BODY = SETTINGS.maxBody;

// Lines from a worker's stdout/stderr become log entries; JSON lines with a
// severity (the worker's own logging) pass through as they are. Linear in what
// arrives; a line longer than MAX_LOG_LINE is logged in pieces of that size.
function pipeLog(stream, severity, pid) {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  const emit = line => {
    if (!line) return;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line);
        if (entry && typeof entry === 'object' && !Array.isArray(entry) && entry.severity) {
          entry.worker = pid;
          process.stdout.write(JSON.stringify(entry) + '\n');
          return;
        }
      } catch (e) {
        // not JSON, or too deep to write again: logged as text below
      }
    }
    log(severity, line, {worker: pid});
  };
  const emitLong = text => {
    for (let i = 0; i < text.length; i += MAX_LOG_LINE) emit(text.slice(i, i + MAX_LOG_LINE));
  };
  stream.on('data', chunk => {
    let start = 0;
    let newline;
    while ((newline = chunk.indexOf('\n', start)) >= 0) {
      emitLong(pending + chunk.slice(start, newline));
      pending = '';
      start = newline + 1;
    }
    pending += chunk.slice(start);
    if (pending.length >= MAX_LOG_LINE) {
      const whole = pending.length - (pending.length % MAX_LOG_LINE);
      emitLong(pending.slice(0, whole));
      pending = pending.slice(whole);
    }
  });
  stream.on('end', () => emitLong(pending));
  stream.on('error', () => {}); // the worker's exit is handled on 'exit'
}

// `pyfn deploy` and `pyfn serve` set NODE_OPTIONS so that Node loads this file before the
// framework (the workers start while it loads). The processes it starts do not inherit
// that: a `node` the function runs elsewhere would not find ./index.js.
const PRELOAD_OPTION = '--require ./index.js';

// PyPy sizes its GC nursery from the CPU's last-level cache (half of it) when
// PYPY_GC_NURSERY is unset: on a host whose L3 cache is hundreds of MB, each worker
// then holds a nursery of that size, and a 256 MiB instance cannot keep one worker.
// Its own fallback, 4 MB, unless the function sets another.
const GC_NURSERY = '4MB';

function workerEnv() {
  const env = Object.assign({}, process.env);
  if (!env.PYPY_GC_NURSERY) env.PYPY_GC_NURSERY = GC_NURSERY;
  if (env.NODE_OPTIONS !== undefined) {
    const rest = env.NODE_OPTIONS.split(PRELOAD_OPTION).join(' ').trim();
    if (rest) env.NODE_OPTIONS = rest;
    else delete env.NODE_OPTIONS;
  }
  const lib = path.join(ROOT, 'pypy', 'lib');
  env.LD_LIBRARY_PATH = env.LD_LIBRARY_PATH ? `${lib}:${env.LD_LIBRARY_PATH}` : lib;
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONDONTWRITEBYTECODE = '1';
  env.PYTHONNOUSERSITE = '1';
  env.PYFN_THREADS = String(THREADS);
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  return env;
}

// One buffer (one write) for a frame with a small body; a large body is not copied.
function frame(header, body) {
  const json = JSON.stringify(header);
  const headLen = Buffer.byteLength(json, 'utf8');
  const small = body.length <= SMALL_BODY;
  const out = Buffer.allocUnsafe(HEADER_BYTES + headLen + (small ? body.length : 0));
  out.writeUInt32BE(headLen, 0);
  out.writeUInt32BE(body.length, 4);
  out.write(json, HEADER_BYTES, 'utf8');
  if (!small) return [out, body];
  body.copy(out, HEADER_BYTES + headLen);
  return [out];
}

// Frames from a worker's response pipe. A frame that arrives whole in one chunk is
// taken as it is; any other is copied, as its bytes arrive, into one buffer of its
// final size, made once its length prefix is in: every byte is copied at most once.
// Lengths above the limits and headers that are not JSON objects are errors: the
// reader stops and calls onError once.
class FrameReader {
  constructor(onFrame, onError) {
    this.onFrame = onFrame;
    this.onError = onError;
    this.prefix = Buffer.alloc(HEADER_BYTES); // a length prefix that came in pieces
    this.prefixSize = 0;
    this.headLen = 0;
    this.frame = null; // the frame being filled (header and body), once its prefix is in
    this.filled = 0;
    this.failed = false;
  }

  fail(why) {
    this.failed = true;
    this.frame = null;
    this.onError(why);
  }

  push(chunk) {
    let at = 0;
    while (!this.failed && at < chunk.length) {
      at = this.frame === null ? this.startFrame(chunk, at) : this.fill(chunk, at);
    }
  }

  // The length prefix at `at` (or its rest), then the frame: taken from the chunk if
  // all of it is there, else the buffer it will be copied into. Returns where it stopped.
  startFrame(chunk, at) {
    let prefix = chunk;
    let start = at;
    if (this.prefixSize > 0 || chunk.length - at < HEADER_BYTES) {
      const copied = chunk.copy(this.prefix, this.prefixSize, at, at + HEADER_BYTES - this.prefixSize);
      this.prefixSize += copied;
      if (this.prefixSize < HEADER_BYTES) return chunk.length;
      at += copied;
      prefix = this.prefix;
      start = 0;
      this.prefixSize = 0;
    } else {
      at += HEADER_BYTES;
    }
    const headLen = prefix.readUInt32BE(start);
    const bodyLen = prefix.readUInt32BE(start + 4);
    if (headLen < 2 || headLen > MAX_FRAME_HEADER || bodyLen > MAX_RESPONSE_BODY) {
      this.fail(`a frame announcing ${headLen} + ${bodyLen} bytes`);
      return chunk.length;
    }
    this.headLen = headLen;
    const size = headLen + bodyLen;
    if (chunk.length - at >= size) {
      this.deliver(chunk.subarray(at, at + size));
      return at + size;
    }
    this.frame = Buffer.allocUnsafe(size);
    this.filled = 0;
    return at;
  }

  // The chunk's bytes from `at` into the frame being filled, as many as it still needs.
  fill(chunk, at) {
    const copied = chunk.copy(this.frame, this.filled, at);
    // Garbage is told at its first byte, not once as many bytes as it announced came.
    if (this.filled === 0 && this.frame[0] !== 0x7b) {
      this.fail('a frame header that is not a JSON object');
      return chunk.length;
    }
    this.filled += copied;
    if (this.filled === this.frame.length) {
      const frame = this.frame;
      this.frame = null;
      this.deliver(frame);
    }
    return at + copied;
  }

  // A whole frame: its header must be a JSON object (what starts with `{` and parses is one).
  deliver(frame) {
    if (frame[0] !== 0x7b) {
      this.fail('a frame header that is not a JSON object');
      return;
    }
    let header;
    try {
      header = JSON.parse(frame.toString('utf8', 0, this.headLen));
    } catch (e) {
      this.fail('a frame header that is not JSON');
      return;
    }
    this.onFrame(header, frame.subarray(this.headLen));
  }
}

// A response's header list as worker.py writes it: [[name, value], ...], strings.
function headerPairs(headers) {
  if (!Array.isArray(headers)) return false;
  for (const pair of headers) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return false;
    }
  }
  return true;
}

class Worker {
  constructor(pool) {
    this.pool = pool;
    this.ready = false;
    this.jobs = new Map(); // id → the requests it runs (answered or not: its threads are busy)
    this.stuck = 0; // of those, answered 504 already: their threads are still running
    this.dead = false;
    this.closing = false;
    this.started = Date.now();
    // JIT off while the worker loads the function: worker.py switches it on to serve.
    // Its own process group: a `kill 0` in the function's code (or a script it runs)
    // stays in there, and killing the worker kills what it started. worker.py asks to
    // die with Node (PR_SET_PDEATHSIG), so it never outlives the instance.
    const env = workerEnv();
    env.PYFN_NODE_PID = String(process.pid); // how worker.py tells it has been orphaned
    this.child = spawn(PYPY, ['-s', '--jit', 'off', WORKER], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.pid = this.child.pid;
    this.child.on('error', err => this.onExit(null, null, err));
    this.child.on('exit', (code, signal) => this.onExit(code, signal));
    const stdio = this.child.stdio || [];
    pipeLog(stdio[1], 'INFO', this.pid);
    pipeLog(stdio[2], 'ERROR', this.pid);
    this.requests = stdio[3];
    this.loadTimer = setTimeout(() => this.loadTimedOut(), LOAD_TIMEOUT_MS);
    this.loadTimer.unref();
    if (!this.requests || !stdio[4]) {
      this.kill(); // could not be started: 'error' says why
      return;
    }
    this.requests.on('error', () => {}); // a dead worker is handled on 'exit'
    const reader = new FrameReader(
      (header, body) => this.onFrame(header, body),
      why => this.protocolError(why),
    );
    stdio[4].on('data', chunk => reader.push(chunk));
    stdio[4].on('error', () => {});
  }

  loadTimedOut() {
    if (this.ready || this.dead || this.closing) return;
    log('ERROR', `pyfn worker ${this.pid} did not load the function within ${LOAD_TIMEOUT_MS / 1000} s ` +
      '(PYFN_LOAD_TIMEOUT); killing it');
    this.kill();
  }

  onFrame(header, body) {
    if (this.closing || this.dead) return; // on its way out: nothing it says counts
    if (!this.ready) {
      if (header.type === 'ready') {
        this.ready = true;
        clearTimeout(this.loadTimer);
        log('DEBUG', `pyfn worker ${this.pid} ready in ${Number(header.load_ms)} ms`);
        this.pool.dispatch();
        this.pool.start();
      } else if (header.type === 'fatal') {
        this.pool.loadFailed = true; // its exit follows
      } else {
        this.protocolError('a frame before it was ready');
      }
      return;
    }
    const job = header.type === undefined ? this.jobs.get(header.id) : undefined;
    if (!job) {
      this.protocolError('a frame for a request it was not given');
      return;
    }
    if (!Number.isInteger(header.status) || !headerPairs(header.headers)) {
      this.protocolError('a response of the wrong shape');
      return;
    }
    this.jobs.delete(header.id);
    if (job.done) this.stuck -= 1; // answered 504 already: its thread is free again
    job.worker = null;
    this.pool.dispatch(); // the next request first: the worker runs it while this one is answered
    job.finish(header.status, header.headers, body);
  }

  // Whether it can take one more request now.
  free() {
    return this.ready && !this.dead && !this.closing && this.jobs.size < THREADS;
  }

  // A request that ran past its timeout was answered 504. Its thread cannot be stopped
  // from outside, so it is left to finish (its answer is dropped), unless every thread
  // of the worker is now stuck that way: then the worker is restarted.
  abandon(job) {
    this.stuck += 1;
    if (this.stuck >= THREADS) {
      const all = THREADS === 1 ? 'its one thread is' : `all ${THREADS} of its threads are`;
      log('ERROR', `pyfn worker ${this.pid}: ${all} stuck past the request timeout; restarting it`);
      this.kill();
      this.failAll();
    }
  }

  // Every request it still runs that is not answered yet: 500 (it is gone or going).
  failAll() {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    this.stuck = 0;
    for (const job of jobs) {
      job.worker = null;
      job.fail(500, INTERNAL_ERROR);
    }
  }

  // The worker broke the protocol: whatever it sends next cannot be trusted.
  protocolError(why) {
    if (this.closing || this.dead) return;
    log('ERROR', `pyfn worker ${this.pid} broke the shim's protocol (${why}); killing it`);
    this.kill();
    this.failAll();
  }

  send(job) {
    this.jobs.set(job.id, job);
    job.worker = this;
    testEvent('sent', job, {worker: this.pid});
    const parts = frame(job.header, job.body);
    if (parts.length === 1) {
      this.requests.write(parts[0]);
    } else {
      this.requests.cork(); // one writev for a large body's frame
      for (const part of parts) this.requests.write(part);
      this.requests.uncork();
    }
  }

  kill() {
    this.closing = true; // no new request is sent to a worker on its way out
    if (!this.dead) this.killGroup();
  }

  // The worker and every process it started that is still in its group.
  killGroup() {
    try {
      if (!this.pid) throw new Error('not started');
      process.kill(-this.pid, 'SIGKILL');
    } catch (e) {
      try {
        this.child.kill('SIGKILL');
      } catch (e2) {
        // already gone
      }
    }
  }

  onExit(code, signal, err) {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.loadTimer);
    if (!err && this.pid) this.killGroup(); // what it started does not outlive it
    const running = [...this.jobs.values()].filter(job => !job.done);
    this.failAll();
    if (running.length) {
      const what = running.slice(0, 3).map(job => `${job.header.method} ${job.header.url}`).join(', ');
      const more = running.length > 3 ? ` and ${running.length - 3} more` : '';
      log('ERROR', `pyfn worker ${this.pid} died (${signal || code}) during ${what}${more}`);
    } else if (err) {
      log('ERROR', `pyfn: cannot start ${PYPY}: ${err.message}`);
    } else if (!this.ready) {
      log('ERROR', `pyfn worker ${this.pid} exited while loading the function (${signal || code})`);
    }
    this.pool.replace(this);
  }
}

class Pool {
  constructor(size) {
    this.size = size;
    this.workers = [];
    this.queue = [];
    this.nextId = 1;
    this.loadFailed = false;
    this.restarts = 0;
    this.lastShed = 0;
  }

  // Workers start one after another: the first is ready sooner when they do not
  // compete for the CPU, and it is all the first request needs.
  start() {
    if (this.stopped || this.workers.length >= this.size) return;
    if (this.workers.some(w => !w.ready && !w.dead)) return;
    try {
      this.workers.push(new Worker(this));
    } catch (err) {
      log('ERROR', `pyfn: cannot start a worker: ${err.message}`);
      this.retry();
    }
  }

  retry() {
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.restarts++, 5));
    log('INFO', `pyfn: a worker failed to start or load the function; starting one again in ${delay} ms`,
      {retry_ms: delay});
    setTimeout(() => this.start(), delay).unref();
  }

  replace(worker) {
    this.workers = this.workers.filter(w => w !== worker);
    if (this.stopped) return;
    if (!worker.ready) {
      // It died while loading the function: retry with a pause. What waits is left
      // to the workers that serve, or answered now if none does.
      if (!this.workers.some(w => w.ready && !w.closing && !w.dead)) {
        for (const job of this.queue.splice(0)) job.fail(500, 'Internal Server Error: the function failed to load\n');
      }
      this.retry();
      return;
    }
    this.restarts = 0;
    this.start();
    this.dispatch();
  }

  submit(job) {
    job.id = this.nextId++;
    job.header.id = job.id;
    if (this.queue.length >= QUEUE_LIMIT) {
      // Beyond what the workers run and the queue holds: shed load, never buffer without
      // bound. The client (or the platform) retries.
      const now = Date.now();
      if (now - this.lastShed > 10000) {
        this.lastShed = now;
        log('WARNING', `pyfn: ${this.queue.length} requests already wait (PYFN_QUEUE); answering 503`);
      }
      job.finish(503, [['Content-Type', TEXT], ['Retry-After', '1']],
        Buffer.from('Service Unavailable: too many requests at once, retry shortly\n'));
      return;
    }
    this.queue.push(job);
    testEvent('queued', job, {waiting: this.queue.length});
    if (this.workers.length === 0) this.start();
    this.dispatch();
  }

  // A queued job that timed out or whose client went away.
  withdraw(job) {
    const at = this.queue.indexOf(job);
    if (at >= 0) this.queue.splice(at, 1);
    testEvent('withdrawn', job, {was_queued: at >= 0});
  }

  // The least busy worker takes the next request, the oldest first among equals: light
  // traffic keeps going to the same worker, whose JIT has compiled the function's hot
  // paths, and concurrent requests spread over the workers before they share threads.
  dispatch() {
    while (this.queue.length > 0) {
      let best = null;
      for (const worker of this.workers) {
        if (worker.free() && (best === null || worker.jobs.size < best.jobs.size)) best = worker;
      }
      if (best === null) return;
      best.send(this.queue.shift());
    }
  }

  stop() {
    this.stopped = true;
    for (const worker of this.workers) worker.kill();
  }
}

// One request, from its arrival: its timeout runs from then, whether it waits in
// the queue or runs on a worker; a client that goes away while it waits withdraws it.
class Job {
  constructor(pool, res, header, body) {
    this.pool = pool;
    this.res = res;
    this.header = header;
    this.body = body;
    this.done = false;
    this.worker = null;
    this.timer = setTimeout(() => this.timedOut(), TIMEOUT_MS);
    res.on('close', () => this.clientGone());
  }

  timedOut() {
    if (this.done) return;
    const worker = this.worker;
    const where = worker ? `on worker ${worker.pid}` : 'waiting for a worker';
    log('ERROR', `pyfn: ${this.header.method} ${this.header.url} ran past ${TIMEOUT_MS / 1000} s ${where}; answered 504`);
    if (!worker) this.pool.withdraw(this);
    this.fail(504, 'Gateway Timeout: the function ran past its timeout\n');
    if (worker) worker.abandon(this); // after: done, so a late answer is dropped
  }

  clientGone() {
    if (this.done) return; // answered
    testEvent('client_gone', this, {running: this.worker !== null});
    if (this.worker) return; // running: its answer is dropped
    this.done = true;
    clearTimeout(this.timer);
    this.pool.withdraw(this);
    this.body = null;
  }

  finish(status, headers, body) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.body = null;
    const res = this.res;
    testEvent('answered', this, {status});
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      this.refuse(`status ${status}`, []);
      return;
    }
    const set = [];
    try {
      const grouped = new Map();
      for (const [name, value] of headers) {
        const key = name.toLowerCase();
        if (DROPPED_RESPONSE_HEADERS.has(key)) continue;
        if (!grouped.has(key)) grouped.set(key, [name, []]);
        grouped.get(key)[1].push(value);
      }
      for (const [name, values] of grouped.values()) {
        res.setHeader(name, values.length === 1 ? values[0] : values);
        set.push(name);
      }
      res.statusCode = status;
      res.setHeader('Content-Length', body.length);
      res.end(body);
    } catch (err) {
      this.refuse(err.message, set);
    }
  }

  // A 500 of the shim's own: none of the function's headers go with it.
  refuse(why, set) {
    log('ERROR', `pyfn: invalid response from the function: ${why}`);
    const res = this.res;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    try {
      for (const name of set) res.removeHeader(name);
      plainAnswer(res, 500, INTERNAL_ERROR);
    } catch (err) {
      res.destroy();
    }
  }

  fail(status, message) {
    this.finish(status, [['Content-Type', TEXT]], Buffer.from(message));
  }
}

function requestBody(req) {
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  if (Buffer.isBuffer(req.body)) return req.body;
  return Buffer.alloc(0);
}

// Cloud Functions sends every request with a Function-Execution-Id; where it is
// missing (a request to `pyfn serve`), the shim gives it one, so that the function
// sees the header in either mode as it would deployed.
const EXECUTION_ID = 'function-execution-id';

function ensureExecutionId(req) {
  if (req.headers[EXECUTION_ID]) return;
  const id = crypto.randomBytes(9).toString('base64url');
  req.headers[EXECUTION_ID] = id;
  req.rawHeaders.push('Function-Execution-Id', id);
}

// gzip/deflate/br bodies arrive decoded (as the Node framework's body parsers decode
// them): the headers say what the bytes now are.
function requestHeaders(req, body, decoded) {
  const headers = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i].toLowerCase();
    if (key === 'content-length' || key === 'transfer-encoding') continue;
    if (key === 'content-encoding' && decoded) continue;
    headers.push([raw[i], raw[i + 1]]);
  }
  if (body.length || req.headers['content-length'] !== undefined) {
    headers.push(['Content-Length', String(body.length)]);
  }
  return headers;
}

const pool = new Pool(WORKERS);

// Through the framework's express app (only where the framework must route: see
// directListener): its body parsers have read (and decoded) the body, up to their own
// limit; one over MAX_BODY is refused all the same.
function handleFramework(req, res) {
  const body = requestBody(req);
  if (body.length > MAX_BODY) {
    plainAnswer(res, 413, TOO_LARGE);
    return;
  }
  submitRequest(req, res, body, Buffer.isBuffer(req.rawBody), req.originalUrl || req.url,
    req.protocol || 'http');
}

function submitRequest(req, res, body, decoded, url, scheme) {
  ensureExecutionId(req);
  const header = {
    method: req.method,
    url,
    http_version: req.httpVersion,
    headers: requestHeaders(req, body, decoded),
    remote: (req.socket && req.socket.remoteAddress) || '127.0.0.1',
    scheme,
  };
  pool.submit(new Job(pool, res, header, body));
}

// A short text answer of the shim's own (nothing if an answer has begun already).
function plainAnswer(res, status, message) {
  if (res.headersSent || res.destroyed) return;
  res.statusCode = status;
  res.setHeader('Content-Type', TEXT);
  res.setHeader('Content-Length', Buffer.byteLength(message));
  res.end(message);
}

// A request straight from Node's HTTP server. The framework's express app would parse
// every body (JSON, text, forms) and run its middleware first, about a quarter of a
// millisecond a request, more than the whole trip to a warm worker, for work the
// Python framework does again; the Python framework also answers the routes the Node
// one filters (/favicon.ico, /robots.txt). So the shim reads the raw body itself,
// decoded as the framework's body parsers decode it (gzip, deflate, br; another
// encoding is 415), up to MAX_BODY (413 above it), and takes the scheme from
// X-Forwarded-Proto as the framework's app does (it trusts the proxy).
function handleDirect(req, res) {
  const encoding = String(req.headers['content-encoding'] || 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && !DECODERS[encoding]) {
    req.resume();
    plainAnswer(res, 415, `Unsupported Media Type: content encoding "${encoding.slice(0, 40)}" is not supported\n`);
    return;
  }
  if (Number(req.headers['content-length']) > MAX_BODY) {
    req.resume(); // drained, not kept
    plainAnswer(res, 413, TOO_LARGE);
    return;
  }
  readBody(req, encoding,
    body => submitRequest(req, res, body, encoding !== 'identity', req.url, requestScheme(req)),
    (status, message) => plainAnswer(res, status, message));
}

const TOO_LARGE = `Payload Too Large: a request body may have at most ${MAX_BODY} bytes\n`;

function requestScheme(req) {
  const forwarded = req.headers['x-forwarded-proto'];
  if (forwarded) return String(forwarded).split(',')[0].trim();
  return req.socket && req.socket.encrypted ? 'https' : 'http';
}

// A request's body, decoded as it streams in and counted as it is decoded: once it is
// over MAX_BODY (as sent or decoded), the decoder is destroyed at once, nothing more is
// kept or decoded, and the rest of the request is drained. An encoded request that sent
// no body has an empty one, as in the framework's own app: there was nothing to decode.
// Calls done(body) or refused(status, message), once.
function readBody(req, encoding, done, refused) {
  const decoder = encoding === 'identity' ? null : DECODERS[encoding]();
  let chunks = [];
  let size = 0;
  let raw = 0;
  let settled = false;
  const stop = (status, message) => {
    if (settled) return;
    settled = true;
    chunks = [];
    if (decoder !== null) {
      req.unpipe(decoder);
      decoder.destroy();
    }
    req.resume(); // drained, not kept
    refused(status, message);
  };
  const take = chunk => {
    if (settled) return;
    size += chunk.length;
    if (size > MAX_BODY) stop(413, TOO_LARGE);
    else chunks.push(chunk);
  };
  const finish = () => {
    if (settled) return;
    settled = true;
    done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)); // the one copy
  };
  if (decoder === null) {
    req.on('data', take);
    req.on('end', finish);
    return;
  }
  req.on('data', chunk => {
    raw += chunk.length;
    if (raw > MAX_BODY) stop(413, TOO_LARGE);
  });
  decoder.on('data', take);
  decoder.on('end', finish);
  decoder.on('error', () => (raw === 0 ? finish() : stop(400, 'Bad Request: the body could not be decoded\n')));
  req.pipe(decoder);
}

// The framework creates one HTTP server, for its express app: in framework mode it gets
// handleDirect instead, unless the framework was told to filter routes (IGNORED_ROUTES
// or --ignored-routes), which only its app does.
function directListener() {
  if (FUNCTION.signature === 'script') return null;
  if (process.env.IGNORED_ROUTES !== undefined) return null;
  if (process.argv.some(arg => arg === '--ignored-routes' || arg.startsWith('--ignored-routes='))) return null;
  return handleDirect;
}

// The framework's start-up banner (printed unless NODE_ENV is production: under pyfn serve)
// names the signature type it was given by the registration below: http, whatever the
// function is. The banner names the function's own type instead: cloudevent or event.
function bannerSignature() {
  if (process.env.NODE_ENV === 'production') return;
  if (FUNCTION.signature !== 'cloudevent' && FUNCTION.signature !== 'event') return;
  const consoleLog = console.log;
  console.log = function (...args) {
    if (args.length === 1 && args[0] === 'Signature type: http') {
      console.log = consoleLog; // that one line only
      args[0] = `Signature type: ${FUNCTION.signature}`;
    }
    return consoleLog.apply(this, args);
  };
}

{
  const createServer = http.createServer;
  http.createServer = function (...args) {
    http.createServer = createServer; // the framework's one server only
    bannerSignature(); // the framework prints it once this server listens
    const direct = directListener();
    const at = args.findIndex(arg => typeof arg === 'function');
    if (direct && at >= 0) {
      args[at] = direct;
      log('DEBUG', 'pyfn: requests go straight to the workers, not through the framework\'s express app');
    }
    return createServer.apply(this, args);
  };
}

function scriptInput(req) {
  const body = requestBody(req);
  const isJson = /json/i.test(req.headers['content-type'] || '');
  let parsedBody = body.toString('utf8');
  if (isJson && req.body !== undefined && !Buffer.isBuffer(req.body)) parsedBody = req.body;
  const request = {
    method: req.method,
    path: req.path,
    query: req.query,
    headers: req.headers,
    body: parsedBody,
  };
  const kind = FUNCTION.stdin || 'body';
  return JSON.stringify(kind === 'request' ? request : request[kind]) + '\n';
}

// Scripts run in process groups of their own (a `kill 0` in one stays in there);
// a script that times out, and any still running when Node exits, are killed with
// what they started.
const scripts = new Set();

function killScript(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (e) {
    try {
      child.kill('SIGKILL');
    } catch (e2) {
      // already gone
    }
  }
}

function handleScript(req, res) {
  if (requestBody(req).length > MAX_BODY) {
    plainAnswer(res, 413, TOO_LARGE); // read by the framework's app: see handleFramework
    return;
  }
  const env = workerEnv();
  env.PYTHONPATH = [path.join(ROOT, 'app'), path.join(ROOT, 'site')].join(':');
  const out = [];
  let outSize = 0;
  let done = false;
  let child = null;
  const answer = (status, body) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    res.status(status).set('Content-Type', TEXT).send(body);
  };
  const timer = setTimeout(() => {
    log('ERROR', `pyfn: script ${FUNCTION.script} ran past ${TIMEOUT_MS / 1000} s`);
    if (child && child.pid) killScript(child);
    answer(504, 'Gateway Timeout: the function ran past its timeout\n');
  }, TIMEOUT_MS);
  try {
    child = spawn(PYPY, ['-s', path.join(ROOT, 'app', FUNCTION.script)], {
      cwd: path.join(ROOT, 'app'),
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
  } catch (err) {
    log('ERROR', `pyfn: cannot start ${PYPY}: ${err.message}`);
    answer(500, INTERNAL_ERROR);
    return;
  }
  child.on('error', err => {
    log('ERROR', `pyfn: cannot start ${PYPY}: ${err.message}`);
    answer(500, INTERNAL_ERROR);
  });
  if (!child.stdout || !child.stdin) return; // not started: 'error' answers
  scripts.add(child);
  child.on('exit', () => scripts.delete(child));
  pipeLog(child.stderr, 'ERROR', child.pid);
  child.stdout.on('data', chunk => {
    outSize += chunk.length;
    if (outSize <= MAX_SCRIPT_OUTPUT) out.push(chunk);
  });
  child.stdout.on('error', () => {});
  child.on('close', (code, signal) => {
    if (code === 0 && outSize <= MAX_SCRIPT_OUTPUT) {
      answer(200, Buffer.concat(out));
    } else {
      const why = outSize > MAX_SCRIPT_OUTPUT ? 'wrote too much output' : `exited with ${signal || code}`;
      log('ERROR', `pyfn: script ${FUNCTION.script} ${why}`);
      answer(500, INTERNAL_ERROR);
    }
  });
  child.stdin.on('error', () => {}); // a script that does not read its input
  ensureExecutionId(req);
  child.stdin.end(scriptInput(req));
}

const handler = FUNCTION.signature === 'script' ? handleScript : handleFramework;

{
  const used = FUNCTION.signature === 'script'
    ? `script mode, request timeout ${SETTINGS.timeout} s, bodies up to ${MAX_BODY} bytes`
    : `${WORKERS} worker${WORKERS === 1 ? '' : 's'} × ${THREADS} thread${THREADS === 1 ? '' : 's'}, ` +
      `queue ${QUEUE_LIMIT}, request timeout ${SETTINGS.timeout} s, load timeout ${SETTINGS.loadTimeout} s, ` +
      `bodies up to ${MAX_BODY} bytes (instance: ${SETTINGS.limits.cpus} CPU${SETTINGS.limits.cpus === 1 ? '' : 's'}, ` +
      `${Math.round(SETTINGS.limits.memory / 1048576)} MiB)`;
  const problems = SETTINGS.problems.length ? `; ${SETTINGS.problems.join('; ')}` : '';
  log(problems ? 'WARNING' : 'INFO', `pyfn settings: ${used}${problems}`,
    {workers: WORKERS, threads: THREADS, queue: QUEUE_LIMIT, timeout: SETTINGS.timeout,
      load_timeout: SETTINGS.loadTimeout, max_body: MAX_BODY, cpus: SETTINGS.limits.cpus,
      memory_mib: Math.round(SETTINGS.limits.memory / 1048576)});
}

if (FUNCTION.signature !== 'script') {
  pool.start(); // warm the workers while the instance starts, not on the first request
  process.on('exit', () => pool.stop());
} else {
  process.on('exit', () => scripts.forEach(killScript));
}

exports[FUNCTION.entry_point] = handler;

// Register declaratively as well, so the Node framework always passes raw HTTP
// requests (CloudEvents included) through, whatever signature type it was given.
for (const load of [() => require.main && require.main.require('@google-cloud/functions-framework'),
  () => require('@google-cloud/functions-framework')]) {
  try {
    const framework = load();
    if (framework && typeof framework.http === 'function') framework.http(FUNCTION.entry_point, handler);
  } catch (e) {
    // not resolvable from here: the plain export above serves
  }
}
