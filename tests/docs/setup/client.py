# <!-- setup: client -->: `client`, and `admin` (the engine's first key, in credentials.json, is an admin key).
import faas_sdk as _setup_sdk

client = _setup_sdk.FaaSClient()
admin = client
