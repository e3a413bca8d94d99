/** test/console/console.test.ts and failures.test.ts, every case, against a real 3-master Redis Cluster (one cluster for both). */
import './cluster-mode';
import '../console/console.test';
import '../console/failures.test';
