'use strict';
// The bare reference worker of `npm run bench`: a BullMQ Worker doing the notifications job. No telemetry.
//   REDIS_URL, QUEUE_PREFIX, CONCURRENCY (default 10)
const { randomUUID } = require('node:crypto');
const { Worker } = require('bullmq');
const { Redis } = require('ioredis');

const worker = new Worker(
  'notifications',
  async (job) => ({ messageId: randomUUID(), channel: job.data.payload.channel }),
  { connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }), prefix: process.env.QUEUE_PREFIX ?? 'bull', concurrency: Number(process.env.CONCURRENCY ?? 10) },
);
worker.on('error', (err) => console.error(err));

worker.waitUntilReady().then(() => console.log('worker started'));
process.on('SIGTERM', () => worker.close().then(() => process.exit(0)));
