// @ts-check
'use strict';
// The framed protocol: how frames are written, and how the reader takes them apart
// whatever the pipe's chunks, and stops at the first frame that breaks the protocol.

const assert = require('node:assert/strict');
const {test} = require('node:test');

const {FrameReader, HEADER_BYTES, MAX_FRAME_HEADER, MAX_RESPONSE_BODY, SMALL_BODY, frame, headerPairs} =
  require('../../pyfn_action/shim/shim/frames');

/**
 * A frame's bytes, as worker.py writes one.
 * @param {object | string} header
 * @param {Buffer | string} body
 */
function encoded(header, body) {
  const head = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const data = Buffer.from(body);
  const prefix = Buffer.alloc(HEADER_BYTES);
  prefix.writeUInt32BE(head.length, 0);
  prefix.writeUInt32BE(data.length, 4);
  return Buffer.concat([prefix, head, data]);
}

/** @param {number} headLen @param {number} bodyLen */
function prefixOnly(headLen, bodyLen) {
  const prefix = Buffer.alloc(HEADER_BYTES);
  prefix.writeUInt32BE(headLen, 0);
  prefix.writeUInt32BE(bodyLen, 4);
  return prefix;
}

/** A reader that records what it delivers and the errors it reports. */
function recorder() {
  /** @type {{header: Record<string, any>, body: string}[]} */
  const frames = [];
  /** @type {string[]} */
  const errors = [];
  const reader = new FrameReader(
    (header, body) => frames.push({header, body: body.toString('latin1')}),
    why => errors.push(why),
  );
  return {reader, frames, errors};
}

test('a small frame is one buffer: prefix, header JSON, body', () => {
  const parts = frame({id: 7, url: '/ä'}, Buffer.from('body'));
  assert.equal(parts.length, 1);
  assert.deepEqual(parts[0], encoded({id: 7, url: '/ä'}, 'body'));
});

test('a large body is not copied: the frame is its prefix and header, then the body itself', () => {
  const body = Buffer.alloc(SMALL_BODY + 1, 0x61);
  const parts = frame({id: 1}, body);
  assert.equal(parts.length, 2);
  assert.equal(parts[1], body);
  assert.deepEqual(Buffer.concat(parts), encoded({id: 1}, body));
});

test('a frame written by frame() reads back', () => {
  const {reader, frames, errors} = recorder();
  for (const part of frame({id: 3, status: 200}, Buffer.alloc(SMALL_BODY * 2, 0x62))) reader.push(part);
  assert.deepEqual(errors, []);
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0].header, {id: 3, status: 200});
  assert.equal(frames[0].body, 'b'.repeat(SMALL_BODY * 2));
});

test('several frames in one chunk are each delivered, in order', () => {
  const {reader, frames, errors} = recorder();
  reader.push(Buffer.concat([encoded({id: 1}, 'one'), encoded({id: 2}, ''), encoded({id: 3}, 'three')]));
  assert.deepEqual(errors, []);
  assert.deepEqual(frames, [
    {header: {id: 1}, body: 'one'},
    {header: {id: 2}, body: ''},
    {header: {id: 3}, body: 'three'},
  ]);
});

test('frames arriving a byte at a time are delivered whole, once each', () => {
  const {reader, frames, errors} = recorder();
  const bytes = Buffer.concat([encoded({id: 1, type: 'x'}, 'hello'), encoded({id: 2}, 'world!')]);
  for (let i = 0; i < bytes.length; i += 1) {
    reader.push(bytes.subarray(i, i + 1));
    if (i < bytes.length - 1) assert.ok(frames.length <= 1);
  }
  assert.deepEqual(errors, []);
  assert.deepEqual(frames, [{header: {id: 1, type: 'x'}, body: 'hello'}, {header: {id: 2}, body: 'world!'}]);
});

test('a frame split anywhere (prefix, header or body) reads the same', () => {
  const bytes = Buffer.concat([encoded({id: 9}, 'abcdef'), encoded({id: 10}, 'g')]);
  for (let cut = 1; cut < bytes.length; cut += 1) {
    const {reader, frames, errors} = recorder();
    reader.push(bytes.subarray(0, cut));
    reader.push(bytes.subarray(cut));
    assert.deepEqual(errors, [], `cut at ${cut}`);
    assert.deepEqual(frames, [{header: {id: 9}, body: 'abcdef'}, {header: {id: 10}, body: 'g'}], `cut at ${cut}`);
  }
});

test('a body above the limit is refused from its prefix alone, before any of it arrives', () => {
  const {reader, frames, errors} = recorder();
  reader.push(prefixOnly(10, MAX_RESPONSE_BODY + 1));
  assert.deepEqual(frames, []);
  assert.deepEqual(errors, [`a frame announcing 10 + ${MAX_RESPONSE_BODY + 1} bytes`]);
});

test('a header above the limit, or too short to be a JSON object, is refused', () => {
  for (const headLen of [MAX_FRAME_HEADER + 1, 0, 1, 0xffffffff]) {
    const {reader, frames, errors} = recorder();
    reader.push(Buffer.concat([prefixOnly(headLen, 0), Buffer.from('{}')]));
    assert.deepEqual(frames, []);
    assert.deepEqual(errors, [`a frame announcing ${headLen} + 0 bytes`]);
  }
});

test('the largest lengths allowed are not refused for their size', () => {
  const {reader, errors} = recorder();
  reader.push(prefixOnly(MAX_FRAME_HEADER, MAX_RESPONSE_BODY));
  reader.push(Buffer.from('{'));
  assert.deepEqual(errors, []);
});

test('a header that is not a JSON object is refused, whole or at its first byte', () => {
  const whole = recorder();
  whole.reader.push(encoded('[1, 2]', 'x'));
  assert.deepEqual(whole.errors, ['a frame header that is not a JSON object']);

  const partial = recorder();
  partial.reader.push(prefixOnly(1000, 1000));
  partial.reader.push(Buffer.from('garbage'));
  assert.deepEqual(partial.errors, ['a frame header that is not a JSON object']);
  assert.deepEqual(partial.frames, []);
});

test('a header that starts as an object but is not JSON is refused', () => {
  const {reader, frames, errors} = recorder();
  reader.push(encoded('{"id": 1,', ''));
  assert.deepEqual(frames, []);
  assert.deepEqual(errors, ['a frame header that is not JSON']);
});

test('after an error the reader reports once and delivers nothing more', () => {
  const {reader, frames, errors} = recorder();
  reader.push(Buffer.concat([encoded({id: 1}, 'ok'), encoded('nope', ''), encoded({id: 2}, 'late')]));
  reader.push(encoded({id: 3}, 'later'));
  assert.deepEqual(frames, [{header: {id: 1}, body: 'ok'}]);
  assert.deepEqual(errors, ['a frame header that is not a JSON object']);
});

test('headerPairs accepts [[name, value], ...] of strings only', () => {
  assert.equal(headerPairs([]), true);
  assert.equal(headerPairs([['Content-Type', 'text/plain'], ['X', '']]), true);
  for (const bad of [null, {}, 'x', [['a']], [['a', 'b', 'c']], [['a', 1]], [[1, 'b']], [null], ['ab']]) {
    assert.equal(headerPairs(bad), false, JSON.stringify(bad));
  }
});
