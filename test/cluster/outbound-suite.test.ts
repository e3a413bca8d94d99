/** test/integration/outbound-state.test.ts (the circuit and quota scripts), every case, against a real 3-master Redis Cluster. */
import './cluster-mode';
import '../integration/outbound-state.test';
