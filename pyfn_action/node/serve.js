'use strict';
// Starts the Node.js Functions Framework as Cloud Functions does, on the host
// `pyfn serve` was given (PYFN_SERVE_HOST): the framework itself always listens
// on every interface.
const fs = require('fs');
const net = require('net');
const path = require('path');

// pyfn serve holds the write end of a pipe open for as long as it runs. When it ends,
// however it ends (SIGKILL to its process group included), this end reads EOF and the
// framework goes too: the unpacked bundle is removed and the whole process group (this
// process and every PyPy worker) is killed, so nothing keeps listening on the port.
const watchFd = Number(process.env.PYFN_SERVE_WATCH_FD);
if (Number.isInteger(watchFd) && watchFd > 2) {
  const cleanup = process.env.PYFN_SERVE_CLEANUP;
  delete process.env.PYFN_SERVE_WATCH_FD;
  delete process.env.PYFN_SERVE_CLEANUP;
  let gone = false;
  const parentGone = () => {
    if (gone) return;
    gone = true;
    if (cleanup) {
      try {
        fs.rmSync(cleanup, {recursive: true, force: true});
      } catch (err) {
        // Best effort: the group is killed below in any case.
      }
    }
    try {
      process.kill(-process.pid, 'SIGKILL');
    } catch (err) {
      process.exit(1);
    }
  };
  // A socket over the pipe waits in the event loop, not on a thread of libuv's pool.
  const watch = new net.Socket({fd: watchFd, readable: true, writable: false});
  watch.on('data', () => {});
  watch.on('end', parentGone);
  watch.on('close', parentGone);
  watch.on('error', parentGone);
  watch.unref(); // it never keeps the process alive by itself
}

const host = process.env.PYFN_SERVE_HOST;
if (host) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    const port = args[0];
    if (typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port))) {
      const callback = args.find(a => typeof a === 'function');
      return callback ? listen.call(this, {port: Number(port), host}, callback) : listen.call(this, {port: Number(port), host});
    }
    return listen.apply(this, args);
  };
}

// The framework's command (its package `bin`), by path: its exports map hides it.
require(path.join(__dirname, 'node_modules', '@google-cloud', 'functions-framework', 'build', 'src', 'main.js'));
