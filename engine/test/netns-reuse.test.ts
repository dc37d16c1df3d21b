// A network slot is reused as soon as its instance is gone, but the kernel frees a deleted
// namespace — and the veth pair in it — only when its last process has exited, so the slot's old
// host interface can still exist. The soak hit it: "RTNETLINK answers: File exists" on 11 of 2859
// iterations. A slot whose host interface name is still taken must still come up.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';
import { hostInterfaceOf, NetnsManager } from '../src/network/netns.js';
import { Spawner } from '../src/runtime/spawner.js';

it('acquires a slot whose host interface from an earlier use still exists', async () => {
  const tag = `tn${process.pid.toString(36).slice(-3)}`;
  const spawner = new Spawner();
  // A /16 of its own: slot 0 must be free for the assertion below, and in a subnet that other test
  // engines share, their sandboxes may hold it.
  const network = new NetnsManager({ tag, subnet: '10.252.0.0/16', poolSize: 0, runner: spawner, controlPort: 7070 });
  const stale = hostInterfaceOf(`faas-${tag}-0`)!;
  try {
    await network.init();
    // The first slot's host interface, as a dying namespace leaves it for a moment.
    execFileSync('ip', ['link', 'add', stale, 'type', 'veth', 'peer', 'name', `${stale}p`]);
    const slot = await network.acquire();
    assert.equal(slot.hostIf, stale, 'the slot whose interface name was taken');
    const peer = JSON.parse(execFileSync('ip', ['-j', '-n', slot.netns, 'link', 'show', 'eth0'], { encoding: 'utf8' })) as unknown[];
    assert.equal(peer.length, 1, 'the new veth has its end in the new namespace');
    await network.release(slot.netns);
  } finally {
    try {
      execFileSync('ip', ['link', 'del', stale], { stdio: 'ignore' });
    } catch {
      /* gone with its namespace */
    }
    await network.close();
    await network.uninstall(); // this tag's firewall chains
    spawner.close();
  }
});
