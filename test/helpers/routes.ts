/** The routes a built app serves, read from Fastify's printRoutes tree: route-by-route guard checks enumerate them. */
import type { FastifyInstance } from 'fastify';

/** Every (method, path) Fastify serves under `prefix`, read from printRoutes' tree (full paths rebuilt). */
export function routesUnder(app: FastifyInstance, prefix: string): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    while (stack.length > depth) stack.pop();
    const path = (stack.at(-1)?.path ?? '') + m[2]!;
    stack.push({ depth, path });
    if (!m[3] || !path.startsWith(prefix)) continue;
    for (const method of m[3].split(', ')) out.push({ method, url: path });
  }
  return out;
}
