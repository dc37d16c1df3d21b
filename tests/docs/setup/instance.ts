// <!-- setup: client instance -->: `instance`, a running instance of a fresh default snapshot.
const instance = await client.instances.start({ snapshotId: (await client.snapshots.create()).id });
