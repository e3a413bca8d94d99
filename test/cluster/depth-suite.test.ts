/** test/telemetry/depth.test.ts, every case, against a real 3-master Redis Cluster (REDIS_URL points at nothing). */
import './cluster-mode';
import '../telemetry/depth.test';
