'use strict';
// Placeholder shim: the persistent PyPy worker bridge replaces it.
// It exports the entry point named in pyfn/manifest.json and answers 501.
const manifest = require('./pyfn/manifest.json');

exports[manifest.function.entry_point] = (req, res) => {
  res.status(501).send('pyfn: this bundle was built without the PyPy worker shim\n');
};
