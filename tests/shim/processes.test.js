// @ts-check
'use strict';
// The environment the shim's PyPy processes start with, and killing a process group.

const assert = require('node:assert/strict');
const {spawn} = require('node:child_process');
const {test} = require('node:test');
const {setTimeout: sleep} = require('node:timers/promises');

const {GC_NURSERY, childEnv, killGroup} = require('../../pyfn_action/shim/shim/processes');

test('a child\'s environment: no preload of index.js, no PYTHONPATH, the bundle\'s libraries first', () => {
  const env = childEnv({NODE_OPTIONS: '--require ./index.js --trace-warnings', PYTHONPATH: '/x', PYTHONHOME: '/y',
    LD_LIBRARY_PATH: '/usr/lib', KEEP: 'me'}, '/bundle', 12);
  assert.deepEqual(env, {NODE_OPTIONS: '--trace-warnings', LD_LIBRARY_PATH: '/bundle/pypy/lib:/usr/lib', KEEP: 'me',
    PYPY_GC_NURSERY: GC_NURSERY, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', PYTHONNOUSERSITE: '1',
    PYFN_THREADS: '12'});
  const bare = childEnv({NODE_OPTIONS: '--require ./index.js', PYPY_GC_NURSERY: '32MB'}, '/b', 1);
  assert.equal(bare.NODE_OPTIONS, undefined);
  assert.equal(bare.PYPY_GC_NURSERY, '32MB');
  assert.equal(bare.LD_LIBRARY_PATH, '/b/pypy/lib');
});

test('the parent\'s environment is not changed', () => {
  const parent = {NODE_OPTIONS: '--require ./index.js', PYTHONPATH: '/x'};
  childEnv(parent, '/b', 1);
  assert.deepEqual(parent, {NODE_OPTIONS: '--require ./index.js', PYTHONPATH: '/x'});
});

test('killGroup kills a detached process and what it started', {timeout: 10000}, async () => {
  // A shell in its own group that starts a grandchild and waits: both must end.
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!; wait'], {detached: true, stdio: ['ignore', 'pipe', 'ignore']});
  const grandchild = await new Promise(resolve => {
    /** @type {NonNullable<typeof child.stdout>} */ (child.stdout).once('data', data => resolve(Number(String(data))));
  });
  const exited = new Promise(resolve => {
    child.on('exit', (_code, signal) => resolve(signal));
  });
  killGroup(child);
  assert.equal(await exited, 'SIGKILL');
  for (let i = 0; i < 100; i += 1) {
    try {
      process.kill(grandchild, 0);
    } catch {
      return; // gone
    }
    await sleep(20);
  }
  assert.fail(`process ${grandchild} outlived its group's kill`);
});

test('killGroup on a process that never started does not throw', () => {
  const child = spawn('/nonexistent/pyfn-no-such-binary', [], {detached: true});
  child.on('error', () => {});
  assert.doesNotThrow(() => killGroup(child));
});
