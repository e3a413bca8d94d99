/** The stack's free-port helper is the shared one (scripts/lib/ports.ts); kept here for existing importers. */
export { freePort } from '../lib/ports';
