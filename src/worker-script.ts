/**
 * Where a worker thread's built script is: beside the built library in dist/, or — when flowtap runs from
 * its sources (tests) — in this repository's dist/ (a worker cannot load TypeScript).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function builtScript(name: string): URL {
  for (const rel of [`./${name}`, `../dist/${name}`]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  throw new Error(`flowtap: dist/${name} is missing (run npm run build)`);
}
