// @ts-check
'use strict';
// The shim's protocol with its PyPy workers (pyfn/worker.py): frames on pipes, fd 3
// carrying requests to a worker and fd 4 its responses, each
//   u32 header length | u32 body length | header JSON | body bytes
// (big-endian lengths; the header a JSON object).

const HEADER_BYTES = 8;
const SMALL_BODY = 64 * 1024;
// A response frame's limits (worker.py answers 500 itself above them), so Node never
// holds more than this for a worker, whatever length a frame announces.
const MAX_FRAME_HEADER = 1024 * 1024;
const MAX_RESPONSE_BODY = 64 * 1024 * 1024;
const OPEN_BRACE = 0x7b; // what a JSON object starts with

/**
 * One buffer (one write) for a frame with a small body; a large body is not copied.
 * @param {object} header
 * @param {Buffer} body
 * @returns {Buffer[]}
 */
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

/**
 * @callback OnFrame
 * @param {Record<string, any>} header  a JSON object
 * @param {Buffer} body
 * @returns {void}
 */

// Frames from a worker's response pipe. A frame that arrives whole in one chunk is
// taken as it is; any other is copied, as its bytes arrive, into one buffer of its
// final size, made once its length prefix is in: every byte is copied at most once.
// Lengths above the limits and headers that are not JSON objects are errors: the
// reader stops and calls onError once.
class FrameReader {
  /**
   * @param {OnFrame} onFrame
   * @param {(why: string) => void} onError
   */
  constructor(onFrame, onError) {
    this.onFrame = onFrame;
    this.onError = onError;
    this.prefix = Buffer.alloc(HEADER_BYTES); // a length prefix that came in pieces
    this.prefixSize = 0;
    this.headLen = 0;
    /** @type {Buffer | null} the frame being filled (header and body), once its prefix is in */
    this.frame = null;
    this.filled = 0;
    this.failed = false;
  }

  /** @param {string} why */
  fail(why) {
    this.failed = true;
    this.frame = null;
    this.onError(why);
  }

  /** @param {Buffer} chunk */
  push(chunk) {
    let at = 0;
    while (!this.failed && at < chunk.length) {
      at = this.frame === null ? this.startFrame(chunk, at) : this.fill(this.frame, chunk, at);
    }
  }

  /**
   * The length prefix at `at` (or its rest), then the frame: taken from the chunk if
   * all of it is there, else the buffer it will be copied into. Returns where it stopped.
   * @param {Buffer} chunk
   * @param {number} at
   */
  startFrame(chunk, at) {
    let prefix = chunk;
    let start = at;
    if (this.prefixSize > 0 || chunk.length - at < HEADER_BYTES) {
      const copied = chunk.copy(this.prefix, this.prefixSize, at, at + HEADER_BYTES - this.prefixSize);
      this.prefixSize += copied;
      if (this.prefixSize < HEADER_BYTES) return chunk.length;
      at += copied;
      prefix = this.prefix;
      start = 0;
      this.prefixSize = 0;
    } else {
      at += HEADER_BYTES;
    }
    const headLen = prefix.readUInt32BE(start);
    const bodyLen = prefix.readUInt32BE(start + 4);
    if (headLen < 2 || headLen > MAX_FRAME_HEADER || bodyLen > MAX_RESPONSE_BODY) {
      this.fail(`a frame announcing ${headLen} + ${bodyLen} bytes`);
      return chunk.length;
    }
    this.headLen = headLen;
    const size = headLen + bodyLen;
    if (chunk.length - at >= size) {
      this.deliver(chunk.subarray(at, at + size));
      return at + size;
    }
    this.frame = Buffer.allocUnsafe(size);
    this.filled = 0;
    return at;
  }

  /**
   * The chunk's bytes from `at` into the frame being filled, as many as it still needs.
   * @param {Buffer} target  this.frame
   * @param {Buffer} chunk
   * @param {number} at
   */
  fill(target, chunk, at) {
    const copied = chunk.copy(target, this.filled, at);
    // Garbage is told at its first byte, not once as many bytes as it announced came.
    if (this.filled === 0 && target[0] !== OPEN_BRACE) {
      this.fail('a frame header that is not a JSON object');
      return chunk.length;
    }
    this.filled += copied;
    if (this.filled === target.length) {
      this.frame = null;
      this.deliver(target);
    }
    return at + copied;
  }

  /**
   * A whole frame: its header must be a JSON object (what starts with `{` and parses is one).
   * @param {Buffer} whole
   */
  deliver(whole) {
    if (whole[0] !== OPEN_BRACE) {
      this.fail('a frame header that is not a JSON object');
      return;
    }
    let header;
    try {
      header = JSON.parse(whole.toString('utf8', 0, this.headLen));
    } catch {
      this.fail('a frame header that is not JSON');
      return;
    }
    this.onFrame(header, whole.subarray(this.headLen));
  }
}

/**
 * A response's header list as worker.py writes it: [[name, value], ...], strings.
 * @param {unknown} headers
 * @returns {headers is [string, string][]}
 */
function headerPairs(headers) {
  if (!Array.isArray(headers)) return false;
  for (const pair of headers) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return false;
    }
  }
  return true;
}

module.exports = {FrameReader, HEADER_BYTES, MAX_FRAME_HEADER, MAX_RESPONSE_BODY, SMALL_BODY, frame, headerPairs};
