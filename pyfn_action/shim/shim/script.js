// @ts-check
'use strict';
// Script mode: one PyPy process per request, fed JSON on stdin, its stdout the response
// body, through the framework's express app. Scripts run in process groups of their own
// (a `kill 0` in one stays in there); a script that times out, and any still running
// when Node exits, are killed with what they started.

const {spawn} = require('child_process');
const path = require('path');

const {ensureExecutionId, requestBody, tooLarge} = require('./direct');
const {INTERNAL_ERROR, TEXT, plainAnswer} = require('./job');
const {log, pipeLog} = require('./log');
const {killGroup} = require('./processes');

const MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024;

/** @typedef {import('./direct').Request & {path?: string, query?: unknown}} Request */
/**
 * The framework's express response.
 * @typedef {import('http').ServerResponse & {status(code: number): ExpressResponse,
 *   set(name: string, value: string): ExpressResponse, send(body: string | Buffer): ExpressResponse}} ExpressResponse
 */

/**
 * @typedef {object} ScriptOptions
 * @property {string} root  the bundle's root
 * @property {string} pypy  the bundle's PyPy
 * @property {import('./settings').FunctionInfo} fn  names the script and what it reads
 * @property {() => NodeJS.ProcessEnv} env  a script's environment (processes.childEnv)
 * @property {number} maxBody
 * @property {number} timeoutMs
 */

/**
 * What the script reads on stdin: the request's body, another of its parts, or all.
 * @param {Request} req
 * @param {import('./settings').FunctionInfo} fn
 */
function scriptInput(req, fn) {
  const body = requestBody(req);
  const isJson = /json/i.test(req.headers['content-type'] || '');
  /** @type {unknown} */
  let parsedBody = body.toString('utf8');
  if (isJson && req.body !== undefined && !Buffer.isBuffer(req.body)) parsedBody = req.body;
  /** @type {Record<string, unknown>} */
  const request = {
    method: req.method,
    path: req.path,
    query: req.query,
    headers: req.headers,
    body: parsedBody,
  };
  const kind = fn.stdin || 'body';
  return JSON.stringify(kind === 'request' ? request : request[kind]) + '\n';
}

/**
 * The request handler of script mode, and what kills the scripts still running.
 * @param {ScriptOptions} options
 */
function scriptHandler({root, pypy, fn, env: scriptEnv, maxBody, timeoutMs}) {
  /** @type {Set<import('child_process').ChildProcess>} */
  const scripts = new Set();
  const app = path.join(root, 'app');

  /**
   * @param {Request} req
   * @param {ExpressResponse} res
   */
  const handle = (req, res) => {
    if (requestBody(req).length > maxBody) {
      plainAnswer(res, 413, tooLarge(maxBody)); // read by the framework's app: see direct.js
      return;
    }
    const env = scriptEnv();
    env.PYTHONPATH = [app, path.join(root, 'site')].join(':');
    /** @type {Buffer[]} */
    const out = [];
    let outSize = 0;
    let done = false;
    /** @type {import('child_process').ChildProcess | null} */
    let child = null;
    /**
     * @param {number} status
     * @param {string | Buffer} body
     */
    const answer = (status, body) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      res.status(status).set('Content-Type', TEXT).send(body);
    };
    const timer = setTimeout(() => {
      log('ERROR', `pyfn: script ${fn.script} ran past ${timeoutMs / 1000} s`);
      if (child && child.pid) killGroup(child);
      answer(504, 'Gateway Timeout: the function ran past its timeout\n');
    }, timeoutMs);
    try {
      child = spawn(pypy, ['-s', path.join(app, /** @type {string} */ (fn.script))], {
        cwd: app,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      log('ERROR', `pyfn: cannot start ${pypy}: ${err instanceof Error ? err.message : err}`);
      answer(500, INTERNAL_ERROR);
      return;
    }
    const started = child;
    started.on('error', err => {
      log('ERROR', `pyfn: cannot start ${pypy}: ${err.message}`);
      answer(500, INTERNAL_ERROR);
    });
    if (!started.stdout || !started.stdin) return; // not started: 'error' answers
    scripts.add(started);
    started.on('exit', () => scripts.delete(started));
    pipeLog(started.stderr, 'ERROR', started.pid);
    started.stdout.on('data', chunk => {
      outSize += chunk.length;
      if (outSize <= MAX_SCRIPT_OUTPUT) out.push(chunk);
    });
    started.stdout.on('error', () => {});
    started.on('close', (code, signal) => {
      if (code === 0 && outSize <= MAX_SCRIPT_OUTPUT) {
        answer(200, Buffer.concat(out));
      } else {
        const why = outSize > MAX_SCRIPT_OUTPUT ? 'wrote too much output' : `exited with ${signal || code}`;
        log('ERROR', `pyfn: script ${fn.script} ${why}`);
        answer(500, INTERNAL_ERROR);
      }
    });
    started.stdin.on('error', () => {}); // a script that does not read its input
    ensureExecutionId(req);
    started.stdin.end(scriptInput(req, fn));
  };

  const stopAll = () => scripts.forEach(killGroup);
  return {handle, stopAll};
}

module.exports = {MAX_SCRIPT_OUTPUT, scriptHandler, scriptInput};
