// @ts-check
'use strict';
// Fakes for the shim's tests: a response that records what was answered, and the
// shim's log lines caught instead of written.

const {EventEmitter} = require('node:events');

/** A ServerResponse's surface as the shim uses it, recording the answer. */
class FakeResponse extends EventEmitter {
  constructor() {
    super();
    this.statusCode = 200;
    /** @type {Map<string, [string, string | number | string[]]>} */
    this.headers = new Map();
    this.headersSent = false;
    this.destroyed = false;
    /** @type {Buffer | null} */
    this.body = null;
  }

  /** @param {string} name @param {string | number | string[]} value */
  setHeader(name, value) {
    if (this.headersSent) throw new Error('headers sent');
    if (typeof value === 'string' && value.includes('\n')) throw new TypeError(`Invalid character in header ${name}`);
    this.headers.set(name.toLowerCase(), [name, value]);
    return this;
  }

  /** @param {string} name */
  removeHeader(name) {
    this.headers.delete(name.toLowerCase());
  }

  /** @param {string} name */
  header(name) {
    const found = this.headers.get(name.toLowerCase());
    return found && found[1];
  }

  /** @param {string | Buffer} [body] */
  end(body) {
    this.headersSent = true;
    this.body = Buffer.from(body || '');
    this.emit('finish');
    return this;
  }

  destroy() {
    this.destroyed = true;
    return this;
  }

  text() {
    return this.body === null ? null : this.body.toString('utf8');
  }
}

/** @param {FakeResponse} res */
function asResponse(res) {
  return /** @type {import('http').ServerResponse} */ (/** @type {unknown} */ (res));
}

/**
 * Runs `body` with the shim's log lines (stdout) caught; returns them, parsed.
 * @param {() => void} body
 * @returns {Record<string, any>[]}
 */
function logged(body) {
  /** @type {string[]} */
  const lines = [];
  const write = process.stdout.write;
  process.stdout.write = /** @type {typeof process.stdout.write} */ ((/** @type {string} */ chunk) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    body();
  } finally {
    process.stdout.write = write;
  }
  return lines.join('').split('\n').filter(Boolean).map(line => JSON.parse(line));
}

module.exports = {FakeResponse, asResponse, logged};
