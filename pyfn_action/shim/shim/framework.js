// @ts-check
'use strict';
// The shim in the Node.js Functions Framework: the one HTTP server the framework makes
// gets the shim's own listener (direct.js says why), its banner names the function's
// signature type, and the function is registered with the framework as well as exported.

const http = require('http');

const {log} = require('./log');

// The framework's package: in the bundle's node_modules, installed by the platform.
const FRAMEWORK = '@google-cloud/functions-framework';

/** @typedef {import('./direct').Handler} Handler */

/**
 * The framework creates one HTTP server, for its express app: in framework mode it gets
 * `direct` instead, unless the framework was told to filter routes (IGNORED_ROUTES or
 * --ignored-routes), which only its app does.
 * @param {string} signature
 * @param {NodeJS.ProcessEnv} env
 * @param {string[]} argv
 * @param {Handler} direct
 * @returns {Handler | null}
 */
function directListener(signature, env, argv, direct) {
  if (signature === 'script') return null;
  if (env.IGNORED_ROUTES !== undefined) return null;
  if (argv.some(arg => arg === '--ignored-routes' || arg.startsWith('--ignored-routes='))) return null;
  return direct;
}

/**
 * The framework's start-up banner (printed unless NODE_ENV is production: under pyfn
 * serve) names the signature type it was given by the registration below: http,
 * whatever the function is. The banner names the function's own type instead:
 * cloudevent or event.
 * @param {string} signature
 * @param {NodeJS.ProcessEnv} env
 */
function bannerSignature(signature, env) {
  if (env.NODE_ENV === 'production') return;
  if (signature !== 'cloudevent' && signature !== 'event') return;
  const consoleLog = console.log;
  /** @this {unknown} @param {...unknown} args */
  console.log = function (...args) {
    if (args.length === 1 && args[0] === 'Signature type: http') {
      console.log = consoleLog; // that one line only
      args[0] = `Signature type: ${signature}`;
    }
    return consoleLog.apply(this, args);
  };
}

/**
 * Patches http.createServer for the framework's one server, which it makes after
 * loading the function's module.
 * @param {string} signature
 * @param {Handler} direct
 */
function takeServer(signature, direct) {
  const createServer = http.createServer;
  /** @this {unknown} @param {...unknown} args @returns {http.Server} */
  const patched = function (...args) {
    http.createServer = createServer; // the framework's one server only
    bannerSignature(signature, process.env); // the framework prints it once this server listens
    const listener = directListener(signature, process.env, process.argv, direct);
    const at = args.findIndex(arg => typeof arg === 'function');
    if (listener && at >= 0) {
      args[at] = listener;
      log('DEBUG', 'pyfn: requests go straight to the workers, not through the framework\'s express app');
    }
    return createServer.apply(this, /** @type {any} */ (args));
  };
  http.createServer = /** @type {typeof http.createServer} */ (patched);
}

/**
 * Registers declaratively as well, so the Node framework always passes raw HTTP
 * requests (CloudEvents included) through, whatever signature type it was given.
 * @param {string} entryPoint
 * @param {Function} handler
 */
function register(entryPoint, handler) {
  for (const load of [() => require.main && require.main.require(FRAMEWORK), () => require(FRAMEWORK)]) {
    try {
      const framework = load();
      if (framework && typeof framework.http === 'function') framework.http(entryPoint, handler);
    } catch {
      // not resolvable from here: the plain export serves
    }
  }
}

module.exports = {bannerSignature, directListener, register, takeServer};
