// Loaded with `node --require` before the worker (see package.json start:worker).
import { startTracing } from '../common/telemetry/tracing';

startTracing('worker');
