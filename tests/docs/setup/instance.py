# <!-- setup: client instance -->: `instance`, a running instance of a fresh default snapshot.
instance = client.instances.start(client.snapshots.create())
