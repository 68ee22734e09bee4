'use strict';
// Starts the Node.js Functions Framework as Cloud Functions does, on the host
// `pyfn serve` was given (PYFN_SERVE_HOST): the framework itself always listens
// on every interface.
const net = require('net');
const path = require('path');

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
