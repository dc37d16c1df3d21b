// <!-- setup: client -->: `client`, and `admin` (the engine's first key, in credentials.json, is an admin key).
import * as setupSdk from '@faas/sdk';
const client = new setupSdk.FaaSClient();
const admin = client;
