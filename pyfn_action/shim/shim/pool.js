// @ts-check
'use strict';
// The workers and the requests waiting for one: a bounded queue (beyond it, 503),
// dispatch to the least busy worker, and workers started one at a time, replaced when
// they die, retried with a growing pause when they cannot load the function.

const {TEXT} = require('./job');
const {log, testEvent} = require('./log');

/** @typedef {import('./job').Job} Job */

/**
 * What the pool needs of a worker (child.Worker).
 * @typedef {object} PoolWorker
 * @property {boolean} ready  it loaded the function
 * @property {boolean} dead
 * @property {boolean} closing
 * @property {Map<number, Job>} jobs  what it runs
 * @property {() => boolean} free  whether it can take one more request now
 * @property {(job: Job) => void} send
 * @property {() => void} kill
 */

/**
 * @typedef {object} PoolOptions
 * @property {number} size  workers
 * @property {number} queueLimit  requests that may wait for one
 * @property {(pool: Pool) => PoolWorker} spawn  starts a worker of this pool
 */

class Pool {
  /** @param {PoolOptions} options */
  constructor(options) {
    this.size = options.size;
    this.queueLimit = options.queueLimit;
    this.spawn = options.spawn;
    /** @type {PoolWorker[]} */
    this.workers = [];
    /** @type {Job[]} */
    this.queue = [];
    this.nextId = 1;
    this.restarts = 0;
    this.lastShed = 0;
    this.stopped = false;
  }

  // Workers start one after another: the first is ready sooner when they do not
  // compete for the CPU, and it is all the first request needs.
  start() {
    if (this.stopped || this.workers.length >= this.size) return;
    if (this.workers.some(w => !w.ready && !w.dead)) return;
    try {
      this.workers.push(this.spawn(this));
    } catch (err) {
      log('ERROR', `pyfn: cannot start a worker: ${err instanceof Error ? err.message : err}`);
      this.retry();
    }
  }

  retry() {
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.restarts++, 5));
    log('INFO', `pyfn: a worker failed to start or load the function; starting one again in ${delay} ms`,
      {retry_ms: delay});
    setTimeout(() => this.start(), delay).unref();
  }

  /** @param {PoolWorker} worker  gone */
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

  /** @param {Job} job */
  submit(job) {
    job.id = this.nextId++;
    job.header.id = job.id;
    if (this.queue.length >= this.queueLimit) {
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

  /**
   * A queued job that timed out or whose client went away.
   * @param {Job} job
   */
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
      /** @type {PoolWorker | null} */
      let best = null;
      for (const worker of this.workers) {
        if (worker.free() && (best === null || worker.jobs.size < best.jobs.size)) best = worker;
      }
      if (best === null) return;
      best.send(/** @type {Job} */ (this.queue.shift()));
    }
  }

  stop() {
    this.stopped = true;
    for (const worker of this.workers) worker.kill();
  }
}

module.exports = {Pool};
