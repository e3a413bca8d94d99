/** Tests poll with the repository's one wait helper (scripts/lib/wait.ts); this path is what tests import. */
export { waitFor, type WaitOptions } from '../../scripts/lib/wait';
