'use strict';
// pyfn shim: serves a Python function on the bundle's PyPy from Cloud Functions'
// Node.js runtime.
//
// Framework mode (default): persistent PyPy workers (pyfn/worker.py) run the
// Python Functions Framework app in-process; every request is forwarded to a
// free worker over a framed protocol on pipes (fd 3 requests, fd 4 responses):
//   u32 header length | u32 body length | header JSON | body bytes
// Nothing is spawned per request. Script mode: one process per request, fed
// JSON on stdin, its stdout the response body.
//
// Settings (environment): PYFN_WORKERS (default: one per CPU), PYFN_TIMEOUT
// (seconds; default: the function's request timeout that `pyfn deploy` records in
// the manifest, else 60). Logs are one JSON object per line with `severity`.

const {spawn} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = __dirname;
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'pyfn', 'manifest.json'), 'utf8'));
const FUNCTION = manifest.function;
const PYPY = path.join(ROOT, manifest.runtime.executable);
const WORKER = path.join(ROOT, 'pyfn', 'worker.py');
const HEADER_BYTES = 8;
const SMALL_BODY = 64 * 1024;
const MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024;
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function positive(value, fallback) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
const WORKERS = Math.floor(positive(process.env.PYFN_WORKERS, cpus));
const TIMEOUT_MS = positive(process.env.PYFN_TIMEOUT, positive(FUNCTION.timeout, 60)) * 1000;

function log(severity, message, extra) {
  process.stdout.write(JSON.stringify(Object.assign({severity, message}, extra || {})) + '\n');
}

// Lines from a worker's stdout/stderr become log entries; JSON lines with a
// severity (the worker's own logging) pass through as they are.
function pipeLog(stream, severity, pid) {
  let pending = '';
  stream.setEncoding('utf8');
  const emit = line => {
    if (!line) return;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line);
        if (entry && typeof entry === 'object' && entry.severity) {
          entry.worker = pid;
          process.stdout.write(JSON.stringify(entry) + '\n');
          return;
        }
      } catch (e) {
        // not JSON: logged as text below
      }
    }
    log(severity, line, {worker: pid});
  };
  stream.on('data', chunk => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      emit(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  });
  stream.on('end', () => emit(pending));
}

function workerEnv() {
  const env = Object.assign({}, process.env);
  const lib = path.join(ROOT, 'pypy', 'lib');
  env.LD_LIBRARY_PATH = env.LD_LIBRARY_PATH ? `${lib}:${env.LD_LIBRARY_PATH}` : lib;
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONDONTWRITEBYTECODE = '1';
  env.PYTHONNOUSERSITE = '1';
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

class FrameReader {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.chunks = [];
    this.size = 0;
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size >= HEADER_BYTES) {
      const buffer = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      this.chunks = [buffer];
      const headLen = buffer.readUInt32BE(0);
      const bodyLen = buffer.readUInt32BE(4);
      const total = HEADER_BYTES + headLen + bodyLen;
      if (buffer.length < total) return;
      const header = JSON.parse(buffer.subarray(HEADER_BYTES, HEADER_BYTES + headLen).toString('utf8'));
      const body = buffer.subarray(HEADER_BYTES + headLen, total);
      const rest = buffer.subarray(total);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
      this.onFrame(header, body);
    }
  }
}

class Worker {
  constructor(pool) {
    this.pool = pool;
    this.ready = false;
    this.job = null;
    this.dead = false;
    this.closing = false;
    this.started = Date.now();
    // JIT off while the worker loads the function: worker.py switches it on to serve.
    this.child = spawn(PYPY, ['-s', '--jit', 'off', WORKER], {
      cwd: ROOT,
      env: workerEnv(),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    const pid = this.child.pid;
    pipeLog(this.child.stdout, 'INFO', pid);
    pipeLog(this.child.stderr, 'ERROR', pid);
    this.requests = this.child.stdio[3];
    this.requests.on('error', () => {}); // a dead worker is handled on 'exit'
    const reader = new FrameReader((header, body) => this.onFrame(header, body));
    this.child.stdio[4].on('data', chunk => reader.push(chunk));
    this.child.on('error', err => this.onExit(null, null, err));
    this.child.on('exit', (code, signal) => this.onExit(code, signal));
  }

  onFrame(header, body) {
    if (header.type === 'ready') {
      this.ready = true;
      log('DEBUG', `pyfn worker ${header.pid} ready in ${header.load_ms} ms`);
      this.pool.dispatch();
      this.pool.start();
    } else if (header.type === 'fatal') {
      this.pool.loadFailed = true;
    } else if (this.job && header.id === this.job.id) {
      const job = this.job;
      this.job = null;
      this.pool.dispatch(); // the next request first: the worker runs it while this one is answered
      job.finish(header.status, header.headers, body);
    }
  }

  send(job) {
    this.job = job;
    const parts = frame(job.header, job.body);
    if (parts.length === 1) {
      this.requests.write(parts[0]);
    } else {
      this.requests.cork(); // one writev for a large body's frame
      for (const part of parts) this.requests.write(part);
      this.requests.uncork();
    }
    job.timer = setTimeout(() => {
      if (this.job !== job) return;
      this.job = null;
      log('ERROR', `pyfn: ${job.header.method} ${job.header.url} ran past ${TIMEOUT_MS / 1000} s; restarting its worker`);
      job.fail(504, 'Gateway Timeout: the function ran past its timeout\n');
      this.kill();
    }, TIMEOUT_MS);
  }

  kill() {
    this.closing = true; // no new request is sent to a worker on its way out
    if (!this.dead) {
      try {
        this.child.kill('SIGKILL');
      } catch (e) {
        // already gone
      }
    }
  }

  onExit(code, signal, err) {
    if (this.dead) return;
    this.dead = true;
    const job = this.job;
    this.job = null;
    if (job) {
      log('ERROR', `pyfn worker ${this.child.pid} died (${signal || code}) during ${job.header.method} ${job.header.url}`);
      job.fail(500, 'Internal Server Error\n');
    } else if (err) {
      log('ERROR', `pyfn: cannot start ${PYPY}: ${err.message}`);
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
  }

  // Workers start one after another: the first is ready sooner when they do not
  // compete for the CPU, and it is all the first request needs.
  start() {
    if (this.stopped || this.workers.length >= this.size) return;
    if (this.workers.some(w => !w.ready && !w.dead)) return;
    this.workers.push(new Worker(this));
  }

  replace(worker) {
    this.workers = this.workers.filter(w => w !== worker);
    if (this.stopped) return;
    if (!worker.ready) {
      // It died while loading the function: answer what waits, retry with a pause.
      for (const job of this.queue.splice(0)) job.fail(500, 'Internal Server Error: the function failed to load\n');
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.restarts++, 5));
      setTimeout(() => this.start(), delay).unref();
      return;
    }
    this.restarts = 0;
    this.start();
    this.dispatch();
  }

  submit(job) {
    job.id = this.nextId++;
    job.header.id = job.id;
    this.queue.push(job);
    if (this.workers.length === 0) this.start();
    this.dispatch();
  }

  // Idle workers are taken in order, the oldest first: light traffic keeps going to
  // the same worker, whose JIT has compiled the function's hot paths.
  dispatch() {
    for (const worker of this.workers) {
      if (this.queue.length === 0) return;
      if (worker.ready && !worker.job && !worker.dead && !worker.closing) worker.send(this.queue.shift());
    }
  }

  stop() {
    this.stopped = true;
    for (const worker of this.workers) worker.kill();
  }
}

class Job {
  constructor(req, res, header, body) {
    this.res = res;
    this.header = header;
    this.body = body;
    this.done = false;
    this.timer = null;
  }

  finish(status, headers, body) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const res = this.res;
    try {
      const grouped = new Map();
      for (const [name, value] of headers) {
        const key = name.toLowerCase();
        if (DROPPED_RESPONSE_HEADERS.has(key)) continue;
        if (!grouped.has(key)) grouped.set(key, [name, []]);
        grouped.get(key)[1].push(value);
      }
      res.status(status);
      for (const [name, values] of grouped.values()) {
        res.setHeader(name, values.length === 1 ? values[0] : values);
      }
      res.setHeader('Content-Length', body.length);
      res.end(body);
    } catch (err) {
      log('ERROR', `pyfn: invalid response from the function: ${err.message}`);
      if (!res.headersSent) {
        res.removeHeader('Content-Length');
        res.status(500).end('Internal Server Error\n');
      } else {
        res.destroy();
      }
    }
  }

  fail(status, message) {
    this.finish(status, [['Content-Type', 'text/plain; charset=utf-8']], Buffer.from(message));
  }
}

function requestBody(req) {
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  if (Buffer.isBuffer(req.body)) return req.body;
  return Buffer.alloc(0);
}

// The Node framework has already decoded gzip/deflate/br bodies (rawBody holds
// the decoded bytes) but leaves the headers: forward what the bytes now are.
function requestHeaders(req, body) {
  const headers = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i].toLowerCase();
    if (key === 'content-length' || key === 'transfer-encoding') continue;
    if (key === 'content-encoding' && Buffer.isBuffer(req.rawBody)) continue;
    headers.push([raw[i], raw[i + 1]]);
  }
  if (body.length || req.headers['content-length'] !== undefined) {
    headers.push(['Content-Length', String(body.length)]);
  }
  return headers;
}

const pool = new Pool(WORKERS);

function handleFramework(req, res) {
  const body = requestBody(req);
  const header = {
    method: req.method,
    url: req.originalUrl || req.url,
    http_version: req.httpVersion,
    headers: requestHeaders(req, body),
    remote: (req.socket && req.socket.remoteAddress) || '127.0.0.1',
    scheme: req.protocol || 'http',
  };
  pool.submit(new Job(req, res, header, body));
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

function handleScript(req, res) {
  const env = workerEnv();
  env.PYTHONPATH = [path.join(ROOT, 'app'), path.join(ROOT, 'site')].join(':');
  const child = spawn(PYPY, ['-s', path.join(ROOT, 'app', FUNCTION.script)], {
    cwd: path.join(ROOT, 'app'),
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out = [];
  let outSize = 0;
  let done = false;
  pipeLog(child.stderr, 'ERROR', child.pid);
  child.stdout.on('data', chunk => {
    outSize += chunk.length;
    if (outSize <= MAX_SCRIPT_OUTPUT) out.push(chunk);
  });
  const answer = (status, body, type) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    res.status(status).set('Content-Type', type).send(body);
  };
  const timer = setTimeout(() => {
    log('ERROR', `pyfn: script ${FUNCTION.script} ran past ${TIMEOUT_MS / 1000} s`);
    child.kill('SIGKILL');
    answer(504, 'Gateway Timeout: the function ran past its timeout\n', 'text/plain; charset=utf-8');
  }, TIMEOUT_MS);
  child.on('error', err => {
    log('ERROR', `pyfn: cannot start ${PYPY}: ${err.message}`);
    answer(500, 'Internal Server Error\n', 'text/plain; charset=utf-8');
  });
  child.on('close', (code, signal) => {
    if (code === 0 && outSize <= MAX_SCRIPT_OUTPUT) {
      answer(200, Buffer.concat(out), 'text/plain; charset=utf-8');
    } else {
      const why = outSize > MAX_SCRIPT_OUTPUT ? 'wrote too much output' : `exited with ${signal || code}`;
      log('ERROR', `pyfn: script ${FUNCTION.script} ${why}`);
      answer(500, 'Internal Server Error\n', 'text/plain; charset=utf-8');
    }
  });
  child.stdin.on('error', () => {}); // a script that does not read its input
  child.stdin.end(scriptInput(req));
}

const handler = FUNCTION.signature === 'script' ? handleScript : handleFramework;

if (FUNCTION.signature !== 'script') {
  pool.start(); // warm the workers while the instance starts, not on the first request
  process.on('exit', () => pool.stop());
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
