# <!-- setup: instance -->: $SNAP, a default snapshot, and $INST, a running instance of it.
SNAP=$(faas snapshot create --json | jq -r .id)
INST=$(faas instance start "$SNAP" --json | jq -r .id)
