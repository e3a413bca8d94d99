'use strict';
// Loaded first (node --require ./tracing.js): the OpenTelemetry getting-started setup. Exporter, endpoint,
// service name and sampler come from the standard OTEL_* variables.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { getNodeAutoInstrumentations } = require('@opentelemetry/auto-instrumentations-node');

const sdk = new NodeSDK({ instrumentations: [getNodeAutoInstrumentations()] });
sdk.start();
process.once('beforeExit', () => void sdk.shutdown());
