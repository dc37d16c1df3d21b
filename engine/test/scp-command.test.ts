// Which remote commands the gateway hands to the agent's built-in scp (no engine needed).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scpArgs, shellWords } from '../src/ssh/scp-command.js';

describe('scp command recognition', () => {
  it('takes the commands OpenSSH scp -O sends, quoted paths and ~ included', () => {
    assert.deepEqual(scpArgs('scp -t /tmp/x'), ['-t', '/tmp/x']);
    assert.deepEqual(scpArgs('scp -r -p -f -- /root/a b'), ['-r', '-p', '-f', '--', '/root/a', 'b']);
    assert.deepEqual(scpArgs("scp -t 'dir with space'"), ['-t', 'dir with space']);
    assert.deepEqual(scpArgs('scp -d -t ~/in'), ['-d', '-t', '/root/in']);
    assert.deepEqual(scpArgs('/usr/bin/scp -v -t .'), ['-v', '-t', '.']);
  });

  it('leaves everything else to the shell', () => {
    for (const c of ['scp a b', 'echo -t', 'scp -t x; rm -rf /', 'scp -t $(id)', 'scp -t `id`', 'scp -t x > y', "scp -t 'unterminated"]) {
      assert.equal(scpArgs(c), null, c);
    }
    assert.equal(shellWords('a "b $HOME"'), null);
    assert.deepEqual(shellWords('a "b \\" c" d\\ e'), ['a', 'b " c', 'd e']);
  });
});
