// @ts-check
'use strict';
// A request's answer: the function's headers as sent on, the shim's own 500 for an
// answer it cannot send, and the timeout counted from the request's arrival.

const assert = require('node:assert/strict');
const {once} = require('node:events');
const {test} = require('node:test');
const {setTimeout: sleep} = require('node:timers/promises');

const {Job} = require('../../pyfn_action/shim/shim/job');
const {FakeResponse, asResponse, logged} = require('./support');

/** @typedef {import('../../pyfn_action/shim/shim/job').RequestHeader} RequestHeader */

/**
 * @param {number} [timeoutMs]
 * @param {Job[]} [withdrawn]
 */
function make(timeoutMs = 60000, withdrawn = []) {
  const res = new FakeResponse();
  /** @type {RequestHeader} */
  const header = {method: 'GET', url: '/', http_version: '1.1', headers: [], remote: '127.0.0.1', scheme: 'http'};
  const job = new Job({withdraw: one => withdrawn.push(one)}, asResponse(res), header, Buffer.from('x'), timeoutMs);
  return {job, res};
}

test('the function\'s headers are sent on, repeated ones together; hop-by-hop ones dropped', () => {
  const {job, res} = make();
  job.finish(201, [['Set-Cookie', 'a=1'], ['X-One', 'y'], ['set-cookie', 'b=2'], ['Connection', 'close'],
    ['Content-Length', '999'], ['Transfer-Encoding', 'chunked']], Buffer.from('made'));
  assert.equal(res.statusCode, 201);
  assert.deepEqual(res.header('set-cookie'), ['a=1', 'b=2']);
  assert.equal(res.header('x-one'), 'y');
  assert.equal(res.header('content-length'), 4);
  assert.equal(res.header('connection'), undefined);
  assert.equal(res.header('transfer-encoding'), undefined);
  assert.equal(res.text(), 'made');
  assert.equal(job.body, null);
});

test('a status outside 200-599, or a header Node refuses, is the shim\'s own 500 without the function\'s headers', () => {
  for (const status of [199, 600, 1.5]) {
    const {job, res} = make();
    const lines = logged(() => job.finish(status, [['X', 'y']], Buffer.from('no')));
    assert.equal(res.statusCode, 500);
    assert.equal(res.text(), 'Internal Server Error\n');
    assert.equal(res.header('x'), undefined);
    assert.equal(lines[0].message, `pyfn: invalid response from the function: status ${status}`);
  }
  const {job, res} = make();
  logged(() => job.finish(200, [['X-Fine', 'ok'], ['X-Bad', 'a\nb']], Buffer.from('no')));
  assert.equal(res.statusCode, 500);
  assert.equal(res.header('x-fine'), undefined);
  assert.equal(res.header('content-type'), 'text/plain; charset=utf-8');
});

test('an answer is sent once: a late one is dropped', () => {
  const {job, res} = make();
  job.finish(200, [], Buffer.from('first'));
  job.finish(500, [], Buffer.from('second'));
  assert.equal(res.text(), 'first');
});

test('a request that waits past its timeout is withdrawn and answered 504', async () => {
  /** @type {Job[]} */
  const withdrawn = [];
  const {job, res} = make(50, withdrawn);
  const answered = once(res, 'finish');
  await sleep(10);
  assert.equal(res.body, null); // still waiting
  await answered;
  assert.equal(res.statusCode, 504);
  assert.equal(res.text(), 'Gateway Timeout: the function ran past its timeout\n');
  assert.deepEqual(withdrawn, [job]);
});
