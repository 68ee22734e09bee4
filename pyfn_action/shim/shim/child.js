// @ts-check
'use strict';
// One persistent PyPy worker (pyfn/worker.py) and the requests it runs. Whatever a
// worker does costs that worker only: a frame that breaks the protocol (not JSON, the
// wrong shape, lengths above the limits, an answer to a request it was not given) gets
// it killed and replaced and its requests answered 500. Nothing a worker sends may
// throw out of an event handler: the Node framework ends the instance on an uncaught
// exception.

const {spawn} = require('child_process');

const {FrameReader, frame, headerPairs} = require('./frames');
const {INTERNAL_ERROR} = require('./job');
const {log, pipeLog, testEvent} = require('./log');
const {killGroup} = require('./processes');

/** @typedef {import('./job').Job} Job */

/**
 * What a worker needs of the pool it belongs to.
 * @typedef {object} WorkerPool
 * @property {() => void} dispatch  send what waits to the free workers
 * @property {() => void} start  start the next worker, if one is missing
 * @property {(worker: Worker) => void} replace  a worker is gone
 */

/**
 * How workers start, the same for each.
 * @typedef {object} WorkerOptions
 * @property {string} root  the bundle's root, the worker's directory
 * @property {string} pypy  the bundle's PyPy
 * @property {string} script  pyfn/worker.py
 * @property {() => NodeJS.ProcessEnv} env  a new worker's environment (processes.childEnv)
 * @property {number} threads  requests a worker runs at once
 * @property {number} loadTimeoutMs  how long it may take to load the function
 */

class Worker {
  /**
   * @param {WorkerPool} pool
   * @param {WorkerOptions} options
   */
  constructor(pool, options) {
    this.pool = pool;
    this.options = options;
    this.threads = options.threads;
    this.ready = false;
    /** @type {Map<number, Job>} id → the requests it runs (answered or not: its threads are busy) */
    this.jobs = new Map();
    this.stuck = 0; // of those, answered 504 already: their threads are still running
    this.dead = false;
    this.closing = false;
    this.started = Date.now();
    // JIT off while the worker loads the function: worker.py switches it on to serve.
    // Its own process group: a `kill 0` in the function's code (or a script it runs)
    // stays in there, and killing the worker kills what it started. worker.py asks to
    // die with Node (PR_SET_PDEATHSIG), so it never outlives the instance.
    const env = options.env();
    env.PYFN_NODE_PID = String(process.pid); // how worker.py tells it has been orphaned
    this.child = spawn(options.pypy, ['-s', '--jit', 'off', options.script], {
      cwd: options.root,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.pid = this.child.pid;
    this.child.on('error', err => this.onExit(null, null, err));
    this.child.on('exit', (code, signal) => this.onExit(code, signal));
    const stdio = this.child.stdio || [];
    pipeLog(/** @type {import('stream').Readable | null} */ (stdio[1]), 'INFO', this.pid);
    pipeLog(/** @type {import('stream').Readable | null} */ (stdio[2]), 'ERROR', this.pid);
    this.requests = /** @type {import('stream').Writable | null} */ (stdio[3]);
    const responses = /** @type {import('stream').Readable | null} */ (stdio[4]);
    this.loadTimer = setTimeout(() => this.loadTimedOut(), options.loadTimeoutMs);
    this.loadTimer.unref();
    if (!this.requests || !responses) {
      this.kill(); // could not be started: 'error' says why
      return;
    }
    this.requests.on('error', () => {}); // a dead worker is handled on 'exit'
    const reader = new FrameReader(
      (header, body) => this.onFrame(header, body),
      why => this.protocolError(why),
    );
    responses.on('data', chunk => reader.push(chunk));
    responses.on('error', () => {});
  }

  loadTimedOut() {
    if (this.ready || this.dead || this.closing) return;
    log('ERROR', `pyfn worker ${this.pid} did not load the function within ${this.options.loadTimeoutMs / 1000} s ` +
      '(PYFN_LOAD_TIMEOUT); killing it');
    this.kill();
  }

  /**
   * @param {Record<string, any>} header
   * @param {Buffer} body
   */
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
        // The function did not load (worker.py logged why): its exit follows.
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

  /** Whether it can take one more request now. */
  free() {
    return this.ready && !this.dead && !this.closing && this.jobs.size < this.threads;
  }

  /**
   * A request that ran past its timeout was answered 504. Its thread cannot be stopped
   * from outside, so it is left to finish (its answer is dropped), unless every thread
   * of the worker is now stuck that way: then the worker is restarted.
   * @param {Job} _job
   */
  abandon(_job) {
    this.stuck += 1;
    if (this.stuck >= this.threads) {
      const all = this.threads === 1 ? 'its one thread is' : `all ${this.threads} of its threads are`;
      log('ERROR', `pyfn worker ${this.pid}: ${all} stuck past the request timeout; restarting it`);
      this.kill();
      this.failAll();
    }
  }

  /** Every request it still runs that is not answered yet: 500 (it is gone or going). */
  failAll() {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    this.stuck = 0;
    for (const job of jobs) {
      job.worker = null;
      job.fail(500, INTERNAL_ERROR);
    }
  }

  /**
   * The worker broke the protocol: whatever it sends next cannot be trusted.
   * @param {string} why
   */
  protocolError(why) {
    if (this.closing || this.dead) return;
    log('ERROR', `pyfn worker ${this.pid} broke the shim's protocol (${why}); killing it`);
    this.kill();
    this.failAll();
  }

  /** @param {Job} job */
  send(job) {
    const requests = /** @type {import('stream').Writable} */ (this.requests); // free(): started
    this.jobs.set(job.id, job);
    job.worker = this;
    testEvent('sent', job, {worker: this.pid});
    const parts = frame(job.header, /** @type {Buffer} */ (job.body));
    if (parts.length === 1) {
      requests.write(parts[0]);
    } else {
      requests.cork(); // one writev for a large body's frame
      for (const part of parts) requests.write(part);
      requests.uncork();
    }
  }

  kill() {
    this.closing = true; // no new request is sent to a worker on its way out
    if (!this.dead) killGroup(this.child);
  }

  /**
   * @param {number | null} code
   * @param {NodeJS.Signals | null} signal
   * @param {Error} [err]  it could not be started
   */
  onExit(code, signal, err) {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.loadTimer);
    if (!err && this.pid) killGroup(this.child); // what it started does not outlive it
    const running = [...this.jobs.values()].filter(job => !job.done);
    this.failAll();
    if (running.length) {
      const what = running.slice(0, 3).map(job => `${job.header.method} ${job.header.url}`).join(', ');
      const more = running.length > 3 ? ` and ${running.length - 3} more` : '';
      log('ERROR', `pyfn worker ${this.pid} died (${signal || code}) during ${what}${more}`);
    } else if (err) {
      log('ERROR', `pyfn: cannot start ${this.options.pypy}: ${err.message}`);
    } else if (!this.ready) {
      log('ERROR', `pyfn worker ${this.pid} exited while loading the function (${signal || code})`);
    }
    this.pool.replace(this);
  }
}

module.exports = {Worker};
