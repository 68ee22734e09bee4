// @ts-check
'use strict';
// Logs: one JSON object a line on stdout with a `severity` (what Cloud Logging reads),
// the lines a PyPy process writes turned into such entries, and the test-only trail of
// each request's way through the pool.

const fs = require('fs');

const MAX_LOG_LINE = 64 * 1024; // characters per log entry: well within Cloud Logging's 256 KB

/**
 * @param {string} severity
 * @param {string} message
 * @param {Record<string, unknown>} [extra]
 */
function log(severity, message, extra) {
  process.stdout.write(JSON.stringify(Object.assign({severity, message}, extra || {})) + '\n');
}

// Test-only: PYFN_TEST_EVENTS names a file to which each request's way through the pool is
// appended, one JSON line an event ({"event": "queued" | "sent" | "client_gone" |
// "withdrawn" | "answered", "id", "url", ...}), so the tests wait on the event instead of
// the clock. Unset, as deployed and served, nothing is written.
const TEST_EVENTS = process.env.PYFN_TEST_EVENTS || '';

/**
 * @param {string} event
 * @param {{id: number, header: {url: string}}} job
 * @param {Record<string, unknown>} [extra]
 */
function testEvent(event, job, extra) {
  if (!TEST_EVENTS) return;
  const entry = Object.assign({event, id: job.id, url: job.header.url}, extra || {});
  fs.appendFileSync(TEST_EVENTS, JSON.stringify(entry) + '\n');
}

// Lines from a worker's stdout/stderr become log entries; JSON lines with a
// severity (the worker's own logging) pass through as they are. Linear in what
// arrives; a line longer than MAX_LOG_LINE is logged in pieces of that size.
/**
 * @param {import('stream').Readable | null | undefined} stream
 * @param {string} severity
 * @param {number | undefined} pid
 */
function pipeLog(stream, severity, pid) {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  /** @param {string} line */
  const emit = line => {
    if (!line) return;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line);
        if (entry && typeof entry === 'object' && !Array.isArray(entry) && entry.severity) {
          entry.worker = pid;
          process.stdout.write(JSON.stringify(entry) + '\n');
          return;
        }
      } catch {
        // not JSON, or too deep to write again: logged as text below
      }
    }
    log(severity, line, {worker: pid});
  };
  /** @param {string} text */
  const emitLong = text => {
    for (let i = 0; i < text.length; i += MAX_LOG_LINE) emit(text.slice(i, i + MAX_LOG_LINE));
  };
  stream.on('data', (/** @type {string} */ chunk) => {
    let start = 0;
    let newline;
    while ((newline = chunk.indexOf('\n', start)) >= 0) {
      emitLong(pending + chunk.slice(start, newline));
      pending = '';
      start = newline + 1;
    }
    pending += chunk.slice(start);
    if (pending.length >= MAX_LOG_LINE) {
      const whole = pending.length - (pending.length % MAX_LOG_LINE);
      emitLong(pending.slice(0, whole));
      pending = pending.slice(whole);
    }
  });
  stream.on('end', () => emitLong(pending));
  stream.on('error', () => {}); // the worker's exit is handled on 'exit'
}

module.exports = {MAX_LOG_LINE, log, pipeLog, testEvent};
