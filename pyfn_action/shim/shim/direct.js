// @ts-check
'use strict';
// Requests, from Node's HTTP request to a Job in the pool. The shim answers every
// request itself, from the raw HTTP request, as the native Python runtime's server
// does: the framework's express app would parse every body (JSON, text, forms) and run
// its middleware first, about a quarter of a millisecond a request, more than the whole
// trip to a warm worker, for work the Python framework does again; the Python framework
// also answers the routes the Node one filters (/favicon.ico, /robots.txt). So the shim
// reads the raw body itself, decoded as the framework's body parsers decode it (gzip,
// deflate, br; another encoding is 415), up to the body limit (413 above it), and takes
// the scheme from X-Forwarded-Proto as the framework's app does (it trusts the proxy).
// Where the framework must route (see framework.js), its app reads the body instead.

const crypto = require('crypto');
const zlib = require('zlib');

const {Job, plainAnswer} = require('./job');

/** @typedef {import('http').IncomingMessage & {rawBody?: unknown, body?: unknown, originalUrl?: string,
 *   protocol?: string}} Request a Node request, or one the framework's express app has read */
/** @typedef {import('http').ServerResponse} Response */
/** @typedef {(req: Request, res: Response) => void} Handler */

/** @type {Record<string, () => import('stream').Transform>} the encodings the framework's body parsers decode */
const DECODERS = {gzip: zlib.createGunzip, deflate: zlib.createInflate, br: zlib.createBrotliDecompress};

/**
 * Whether a request's Content-Encoding (lower case) is one the shim decodes: its own
 * keys only, so that "constructor" or "toString" is refused like any unknown encoding.
 * @param {string} encoding
 */
function decodable(encoding) {
  return Object.hasOwn(DECODERS, encoding);
}

// Cloud Functions sends every request with a Function-Execution-Id; where it is
// missing (a request to `pyfn serve`), the shim gives it one, so that the function
// sees the header in either mode as it would deployed.
const EXECUTION_ID = 'function-execution-id';

/** @param {number} maxBody */
function tooLarge(maxBody) {
  return `Payload Too Large: a request body may have at most ${maxBody} bytes\n`;
}

/**
 * The body the framework's app read (its raw bytes where it parsed them), else none.
 * @param {Request} req
 * @returns {Buffer}
 */
function requestBody(req) {
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  if (Buffer.isBuffer(req.body)) return req.body;
  return Buffer.alloc(0);
}

/** @param {Request} req */
function ensureExecutionId(req) {
  if (req.headers[EXECUTION_ID]) return;
  const id = crypto.randomBytes(9).toString('base64url');
  req.headers[EXECUTION_ID] = id;
  req.rawHeaders.push('Function-Execution-Id', id);
}

/**
 * gzip/deflate/br bodies arrive decoded (as the Node framework's body parsers decode
 * them): the headers say what the bytes now are.
 * @param {Request} req
 * @param {Buffer} body
 * @param {boolean} decoded
 * @returns {[string, string][]}
 */
function requestHeaders(req, body, decoded) {
  /** @type {[string, string][]} */
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

/** @param {Request} req */
function requestScheme(req) {
  const forwarded = req.headers['x-forwarded-proto'];
  if (forwarded) return String(forwarded).split(',')[0].trim();
  return req.socket && /** @type {{encrypted?: boolean}} */ (req.socket).encrypted ? 'https' : 'http';
}

/**
 * A request's body, decoded as it streams in and counted as it is decoded: once it is
 * over maxBody (as sent or decoded), the decoder is destroyed at once, nothing more is
 * kept or decoded, and the rest of the request is drained. An encoded request that sent
 * no body has an empty one, as in the framework's own app: there was nothing to decode.
 * Calls done(body) or refused(status, message), once.
 * @param {import('stream').Readable} req
 * @param {string} encoding  identity, or one of DECODERS
 * @param {number} maxBody
 * @param {(body: Buffer) => void} done
 * @param {(status: number, message: string) => void} refused
 */
function readBody(req, encoding, maxBody, done, refused) {
  const decoder = encoding === 'identity' ? null : DECODERS[encoding]();
  /** @type {Buffer[]} */
  let chunks = [];
  let size = 0;
  let raw = 0;
  let settled = false;
  /**
   * @param {number} status
   * @param {string} message
   */
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
  /** @param {Buffer} chunk */
  const take = chunk => {
    if (settled) return;
    size += chunk.length;
    if (size > maxBody) stop(413, tooLarge(maxBody));
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
    if (raw > maxBody) stop(413, tooLarge(maxBody));
  });
  decoder.on('data', take);
  decoder.on('end', finish);
  decoder.on('error', () => (raw === 0 ? finish() : stop(400, 'Bad Request: the body could not be decoded\n')));
  req.pipe(decoder);
}

/**
 * The two ways a request reaches the pool, for a pool and the settings.
 * @param {import('./job').JobPool & {submit(job: Job): void}} pool
 * @param {{maxBody: number, timeoutMs: number}} limits
 * @returns {{framework: Handler, direct: Handler}}
 */
function requestHandlers(pool, {maxBody, timeoutMs}) {
  const TOO_LARGE = tooLarge(maxBody);

  /**
   * @param {Request} req
   * @param {Response} res
   * @param {Buffer} body
   * @param {boolean} decoded
   * @param {string} url
   * @param {string} scheme
   */
  const submit = (req, res, body, decoded, url, scheme) => {
    ensureExecutionId(req);
    const header = {
      method: req.method,
      url,
      http_version: req.httpVersion,
      headers: requestHeaders(req, body, decoded),
      remote: (req.socket && req.socket.remoteAddress) || '127.0.0.1',
      scheme,
    };
    pool.submit(new Job(pool, res, header, body, timeoutMs));
  };

  // Through the framework's express app (only where the framework must route): its body
  // parsers have read (and decoded) the body, up to their own limit; one over maxBody
  // is refused all the same.
  /** @type {Handler} */
  const framework = (req, res) => {
    const body = requestBody(req);
    if (body.length > maxBody) {
      plainAnswer(res, 413, TOO_LARGE);
      return;
    }
    submit(req, res, body, Buffer.isBuffer(req.rawBody), /** @type {string} */ (req.originalUrl || req.url),
      req.protocol || 'http');
  };

  // Straight from Node's HTTP server: the module's comment says why.
  /** @type {Handler} */
  const direct = (req, res) => {
    const encoding = String(req.headers['content-encoding'] || 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && !decodable(encoding)) {
      req.resume();
      plainAnswer(res, 415, `Unsupported Media Type: content encoding "${encoding.slice(0, 40)}" is not supported\n`);
      return;
    }
    if (Number(req.headers['content-length']) > maxBody) {
      req.resume(); // drained, not kept
      plainAnswer(res, 413, TOO_LARGE);
      return;
    }
    readBody(req, encoding, maxBody,
      body => submit(req, res, body, encoding !== 'identity', /** @type {string} */ (req.url),
        requestScheme(req)),
      (status, message) => plainAnswer(res, status, message));
  };

  return {framework, direct};
}

module.exports = {
  DECODERS, decodable, ensureExecutionId, readBody, requestBody, requestHandlers, requestHeaders, requestScheme, tooLarge,
};
