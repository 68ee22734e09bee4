'use strict';
// A plain Node.js function that reports what the Functions Framework gave it: the
// contract the pyfn shim relies on, observed without the shim in the way.
const http = require('http');
const net = require('net');

const state = {listenCallsSeenByTheModule: 0, createServerCallsSeenByTheModule: 0, calls: 0};
const createServer = http.createServer;
http.createServer = function (...args) {
  // The server the framework makes for its app: the pyfn shim takes its requests here.
  state.createServerCallsSeenByTheModule += 1;
  return createServer.apply(this, args);
};
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // Seen only if this module was loaded before the framework started its server.
  state.listenCallsSeenByTheModule += 1;
  return listen.apply(this, args);
};

exports.contract = (req, res) => {
  if (req.path === '/state') {
    res.json(state);
    return;
  }
  state.calls += 1;
  res.json({
    rawBody: Buffer.isBuffer(req.rawBody) ? req.rawBody.toString('base64') : null,
    rawBodyLength: Buffer.isBuffer(req.rawBody) ? req.rawBody.length : null,
    bodyType: Buffer.isBuffer(req.body) ? 'buffer' : typeof req.body,
    parameters: req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)
      ? Object.keys(req.body).length : null,
  });
};
