// @ts-check
'use strict';
// One request on its way through the pool, and the shim's own short answers.

const {log, testEvent} = require('./log');

const TEXT = 'text/plain; charset=utf-8';
const INTERNAL_ERROR = 'Internal Server Error\n';
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/**
 * A request's frame header, as worker.py reads it.
 * @typedef {object} RequestHeader
 * @property {string | undefined} method
 * @property {string} url
 * @property {string} http_version
 * @property {[string, string][]} headers
 * @property {string} remote
 * @property {string} scheme
 * @property {number} [id]  given by the pool
 */

/**
 * What a Job needs of the pool.
 * @typedef {{withdraw(job: Job): void}} JobPool
 */

/**
 * What a Job needs of the worker that runs it.
 * @typedef {{pid: number | undefined, abandon(job: Job): void}} JobWorker
 */

/**
 * A short text answer of the shim's own (nothing if an answer has begun already).
 * @param {import('http').ServerResponse} res
 * @param {number} status
 * @param {string} message
 */
function plainAnswer(res, status, message) {
  if (res.headersSent || res.destroyed) return;
  res.statusCode = status;
  res.setHeader('Content-Type', TEXT);
  res.setHeader('Content-Length', Buffer.byteLength(message));
  res.end(message);
}

// One request, from its arrival: its timeout runs from then, whether it waits in
// the queue or runs on a worker; a client that goes away while it waits withdraws it.
class Job {
  /**
   * @param {JobPool} pool
   * @param {import('http').ServerResponse} res
   * @param {RequestHeader} header
   * @param {Buffer} body
   * @param {number} timeoutMs  the request timeout
   */
  constructor(pool, res, header, body, timeoutMs) {
    this.pool = pool;
    this.res = res;
    this.header = header;
    /** @type {Buffer | null} */
    this.body = body;
    this.id = 0; // the pool's, once submitted
    this.done = false;
    /** @type {JobWorker | null} */
    this.worker = null;
    this.timeoutMs = timeoutMs;
    this.timer = setTimeout(() => this.timedOut(), timeoutMs);
    res.on('close', () => this.clientGone());
  }

  timedOut() {
    if (this.done) return;
    const worker = this.worker;
    const where = worker ? `on worker ${worker.pid}` : 'waiting for a worker';
    log('ERROR', `pyfn: ${this.header.method} ${this.header.url} ran past ${this.timeoutMs / 1000} s ${where}; ` +
      'answered 504');
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

  /**
   * @param {number} status
   * @param {[string, string][]} headers
   * @param {Buffer} body
   */
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
    /** @type {string[]} */
    const set = [];
    try {
      /** @type {Map<string, [string, string[]]>} */
      const grouped = new Map();
      for (const [name, value] of headers) {
        const key = name.toLowerCase();
        if (DROPPED_RESPONSE_HEADERS.has(key)) continue;
        let group = grouped.get(key);
        if (!group) grouped.set(key, (group = [name, []]));
        group[1].push(value);
      }
      for (const [name, values] of grouped.values()) {
        res.setHeader(name, values.length === 1 ? values[0] : values);
        set.push(name);
      }
      res.statusCode = status;
      res.setHeader('Content-Length', body.length);
      res.end(body);
    } catch (err) {
      this.refuse(err instanceof Error ? err.message : String(err), set);
    }
  }

  /**
   * A 500 of the shim's own: none of the function's headers go with it.
   * @param {string} why
   * @param {string[]} set  the function's headers set already
   */
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
    } catch {
      res.destroy();
    }
  }

  /**
   * @param {number} status
   * @param {string} message
   */
  fail(status, message) {
    this.finish(status, [['Content-Type', TEXT]], Buffer.from(message));
  }
}

module.exports = {INTERNAL_ERROR, Job, TEXT, plainAnswer};
