// @ts-check
'use strict';
// Request bodies read straight from Node's request: decoded as the framework decodes
// them, held to the body limit as sent and once decoded, and the headers the worker
// is given. Requests are streams in memory: no socket.

const assert = require('node:assert/strict');
const {PassThrough} = require('node:stream');
const {test} = require('node:test');
const zlib = require('node:zlib');

const {decodable, readBody, requestHandlers, requestHeaders, requestScheme, tooLarge} =
  require('../../pyfn_action/shim/shim/direct');
const {FakeResponse, asResponse} = require('./support');

/**
 * Reads `chunks` as a request's body; resolves with what readBody decided.
 * @param {string} encoding
 * @param {number} maxBody
 * @param {Buffer[]} chunks
 * @returns {Promise<{body?: Buffer, status?: number, message?: string, drained: boolean}>}
 */
function read(encoding, maxBody, chunks) {
  const req = new PassThrough();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('readBody never answered')), 5000);
    /** @type {{body?: Buffer, status?: number, message?: string}} */
    let outcome = {};
    let calls = 0;
    const done = () => {
      clearTimeout(timer);
      // Whatever is left is drained, not kept: the request's stream still ends.
      if (req.readableEnded) resolve({...outcome, drained: true});
      else req.on('end', () => resolve({...outcome, drained: true}));
    };
    readBody(req, encoding, maxBody, body => {
      calls += 1;
      outcome = {body};
      done();
    }, (status, message) => {
      calls += 1;
      outcome = {status, message};
      done();
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
    setImmediate(() => assert.ok(calls <= 1));
  });
}

test('an identity body is read whole, up to and at the limit', async () => {
  const got = await read('identity', 10, [Buffer.from('hello'), Buffer.from('world')]);
  assert.equal(got.body && got.body.toString(), 'helloworld');
  const empty = await read('identity', 10, []);
  assert.equal(empty.body && empty.body.length, 0);
});

test('an identity body over the limit is refused 413 and the rest drained', async () => {
  const got = await read('identity', 10, [Buffer.from('hello'), Buffer.from('world!'), Buffer.alloc(100000)]);
  assert.equal(got.status, 413);
  assert.equal(got.message, tooLarge(10));
  assert.equal(got.body, undefined);
});

test('gzip, deflate and br bodies arrive decoded', async () => {
  const text = 'decoded '.repeat(100);
  for (const [encoding, encode] of /** @type {[string, (b: Buffer) => Buffer][]} */ ([
    ['gzip', zlib.gzipSync], ['deflate', zlib.deflateSync], ['br', zlib.brotliCompressSync]])) {
    const got = await read(encoding, 1000, [encode(Buffer.from(text))]);
    assert.equal(got.body && got.body.toString(), text, encoding);
  }
});

test('a small encoded body that decodes past the limit is refused 413', async () => {
  const bomb = zlib.gzipSync(Buffer.alloc(1024 * 1024)); // about 1 KB sent, 1 MiB decoded
  assert.ok(bomb.length < 4096);
  const got = await read('gzip', 64 * 1024, [bomb]);
  assert.equal(got.status, 413);
  assert.equal(got.message, tooLarge(64 * 1024));
});

test('an encoded body over the limit as sent is refused 413', async () => {
  const sent = zlib.gzipSync(require('node:crypto').randomBytes(4096)); // incompressible
  const got = await read('gzip', 1024, [sent]);
  assert.equal(got.status, 413);
});

test('a body that cannot be decoded is 400; an encoded request without a body is empty', async () => {
  const bad = await read('gzip', 1000, [Buffer.from('not gzip at all')]);
  assert.equal(bad.status, 400);
  assert.equal(bad.message, 'Bad Request: the body could not be decoded\n');
  const empty = await read('br', 1000, []);
  assert.equal(empty.body && empty.body.length, 0);
});

test('only the decoders\' own encodings are decodable', () => {
  for (const encoding of ['gzip', 'deflate', 'br']) assert.equal(decodable(encoding), true);
  for (const encoding of ['compress', 'zstd', 'constructor', 'tostring', '__proto__', 'hasownproperty']) {
    assert.equal(decodable(encoding), false, encoding);
  }
});

/**
 * A request as Node's HTTP server gives it, its body not yet sent.
 * @param {Record<string, string>} headers
 */
function incoming(headers) {
  const req = Object.assign(new PassThrough(), {
    method: 'POST', url: '/path?q=1', httpVersion: '1.1',
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    rawHeaders: Object.entries(headers).flat(),
    socket: {remoteAddress: '10.0.0.9'},
  });
  return /** @type {import('../../pyfn_action/shim/shim/direct').Request & PassThrough} */ (
    /** @type {unknown} */ (req));
}

test('an unknown encoding is 415, an announced length over the limit 413, before any body is read', () => {
  /** @type {any[]} */
  const submitted = [];
  const pool = {submit: (/** @type {any} */ job) => submitted.push(job), withdraw: () => {}};
  const {direct} = requestHandlers(pool, {maxBody: 100, timeoutMs: 1000});
  for (const encoding of ['zstd', 'Constructor', 'toString']) {
    const res = new FakeResponse();
    direct(incoming({'Content-Encoding': encoding}), asResponse(res));
    assert.equal(res.statusCode, 415, encoding);
    assert.equal(res.text(), `Unsupported Media Type: content encoding "${encoding.toLowerCase()}" is not supported\n`);
  }
  const res = new FakeResponse();
  direct(incoming({'Content-Length': '101'}), asResponse(res));
  assert.equal(res.statusCode, 413);
  assert.equal(res.text(), tooLarge(100));
  assert.deepEqual(submitted, []);
});

test('a request read whole becomes a job: its header as the worker reads it', async () => {
  /** @type {(job: any) => void} */
  let submit = () => {};
  /** @type {Promise<any>} */
  const submitted = new Promise(resolve => {
    submit = resolve;
  });
  const {direct} = requestHandlers({submit, withdraw: () => {}}, {maxBody: 100, timeoutMs: 1000});
  const req = incoming({'Content-Encoding': 'gzip', 'Content-Length': '30', 'X-Forwarded-Proto': 'https, http',
    'Function-Execution-Id': 'abc'});
  direct(req, asResponse(new FakeResponse()));
  req.end(zlib.gzipSync(Buffer.from('{"a": 1}')));
  const job = await submitted;
  clearTimeout(job.timer);
  assert.equal(job.body.toString(), '{"a": 1}');
  assert.deepEqual(job.header, {method: 'POST', url: '/path?q=1', http_version: '1.1', headers: [
    ['X-Forwarded-Proto', 'https, http'], ['Function-Execution-Id', 'abc'], ['Content-Length', '8']],
  remote: '10.0.0.9', scheme: 'https'});
});

test('the request headers: length and transfer encoding are the body\'s as sent on; an execution id is given', () => {
  const req = incoming({'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked', 'Content-Encoding': 'br'});
  assert.deepEqual(requestHeaders(req, Buffer.from('abc'), true),
    [['Content-Type', 'text/plain'], ['Content-Length', '3']]);
  assert.deepEqual(requestHeaders(req, Buffer.alloc(0), false),
    [['Content-Type', 'text/plain'], ['Content-Encoding', 'br']]);
  assert.equal(requestScheme(req), 'http');
  assert.equal(requestScheme(incoming({'X-Forwarded-Proto': ' https '})), 'https');
});
