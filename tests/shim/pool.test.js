// @ts-check
'use strict';
// The pool's queue: its bound (503 beyond it), withdrawal, dispatch to the least busy
// worker, and what waits when no worker can load the function. Workers are fakes.

const assert = require('node:assert/strict');
const {test} = require('node:test');

const {Job} = require('../../pyfn_action/shim/shim/job');
const {Pool} = require('../../pyfn_action/shim/shim/pool');
const {FakeResponse, asResponse, logged} = require('./support');

/** @typedef {import('../../pyfn_action/shim/shim/pool').PoolWorker} PoolWorker */

/** A worker that records what it is sent; ready when told. */
class FakeWorker {
  /** @param {number} threads */
  constructor(threads) {
    this.threads = threads;
    this.ready = false;
    this.dead = false;
    this.closing = false;
    /** @type {Map<number, Job>} */
    this.jobs = new Map();
    /** @type {number[]} */
    this.sent = [];
    this.killed = false;
  }

  free() {
    return this.ready && !this.dead && !this.closing && this.jobs.size < this.threads;
  }

  /** @param {Job} job */
  send(job) {
    this.jobs.set(job.id, job);
    this.sent.push(job.id);
  }

  kill() {
    this.killed = true;
    this.closing = true;
  }
}

/**
 * A pool of fake workers.
 * @param {{size?: number, queueLimit?: number, threads?: number}} [options]
 */
function fakePool({size = 2, queueLimit = 3, threads = 1} = {}) {
  /** @type {FakeWorker[]} */
  const workers = [];
  const pool = new Pool({size, queueLimit, spawn: () => {
    const worker = new FakeWorker(threads);
    workers.push(worker);
    return worker;
  }});
  return {pool, workers};
}

/** @param {Pool} pool @param {string} url */
function request(pool, url) {
  const res = new FakeResponse();
  const header = {method: 'GET', url, http_version: '1.1', headers: [], remote: '127.0.0.1', scheme: 'http'};
  const made = new Job(pool, asResponse(res), /** @type {import('../../pyfn_action/shim/shim/job').RequestHeader} */
    (header), Buffer.alloc(0), 60000);
  return {job: made, res};
}

/** @param {Job[]} jobs */
function settle(jobs) {
  for (const one of jobs) clearTimeout(one.timer);
}

test('requests wait up to the queue\'s bound; beyond it, 503 with Retry-After, logged once', () => {
  const {pool, workers} = fakePool({queueLimit: 3});
  const made = [1, 2, 3, 4, 5].map(n => request(pool, `/${n}`));
  const lines = logged(() => {
    for (const {job: one} of made) pool.submit(one);
  });
  assert.equal(workers.length, 1); // started on the first request; the next waits for it to load
  assert.deepEqual(pool.queue.map(one => one.header.url), ['/1', '/2', '/3']);
  for (const {res} of made.slice(0, 3)) assert.equal(res.body, null);
  for (const {res, job: one} of made.slice(3)) {
    assert.equal(res.statusCode, 503);
    assert.equal(res.header('Retry-After'), '1');
    assert.equal(res.text(), 'Service Unavailable: too many requests at once, retry shortly\n');
    assert.equal(one.done, true);
  }
  assert.deepEqual(lines.map(line => [line.severity, line.message]),
    [['WARNING', 'pyfn: 3 requests already wait (PYFN_QUEUE); answering 503']]);
  settle(made.map(m => m.job));
});

test('each request gets the next id, in its header too', () => {
  const {pool} = fakePool({queueLimit: 10});
  const made = [request(pool, '/a'), request(pool, '/b')];
  for (const {job: one} of made) pool.submit(one);
  assert.deepEqual(made.map(m => [m.job.id, m.job.header.id]), [[1, 1], [2, 2]]);
  settle(made.map(m => m.job));
});

test('a request withdrawn (timed out, client gone) leaves the queue and frees its place', () => {
  const {pool} = fakePool({queueLimit: 1});
  const first = request(pool, '/first');
  const second = request(pool, '/second');
  pool.submit(first.job);
  first.res.emit('close'); // the client went away while it waited
  assert.equal(pool.queue.length, 0);
  assert.equal(first.job.done, true);
  pool.submit(second.job);
  assert.deepEqual(pool.queue.map(one => one.header.url), ['/second']);
  settle([first.job, second.job]);
});

test('the least busy ready worker takes the next request; the oldest among equals', () => {
  const {pool, workers} = fakePool({size: 2, queueLimit: 10, threads: 2});
  const made = [1, 2, 3, 4, 5].map(n => request(pool, `/${n}`));
  pool.submit(made[0].job);
  workers[0].ready = true;
  pool.dispatch();
  pool.start(); // as a worker that became ready does: the next one starts
  workers[1].ready = true;
  for (const {job: one} of made.slice(1)) pool.submit(one);
  assert.deepEqual(workers[0].sent, [1, 3]);
  assert.deepEqual(workers[1].sent, [2, 4]);
  assert.deepEqual(pool.queue.map(one => one.id), [5]); // every thread busy: it waits
  settle(made.map(m => m.job));
});

test('a worker that dies while loading, with none serving, fails what waits with 500', () => {
  const {pool, workers} = fakePool({queueLimit: 10});
  const made = [request(pool, '/x'), request(pool, '/y')];
  for (const {job: one} of made) pool.submit(one);
  workers[0].dead = true;
  const lines = logged(() => pool.replace(workers[0]));
  for (const {res} of made) {
    assert.equal(res.statusCode, 500);
    assert.equal(res.text(), 'Internal Server Error: the function failed to load\n');
  }
  assert.deepEqual(pool.queue, []);
  assert.equal(lines[0].retry_ms, 250); // started again after a pause
  assert.equal(pool.workers.length, 0);
  pool.stop();
});

test('stop kills every worker, and nothing is started after', () => {
  const {pool, workers} = fakePool();
  pool.start();
  pool.stop();
  assert.equal(workers[0].killed, true);
  pool.start();
  assert.equal(workers.length, 1);
});
