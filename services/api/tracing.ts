// Loaded with `node --require` before the API (see package.json start:api).
import { startTracing } from '../common/telemetry/tracing';

startTracing('api');
