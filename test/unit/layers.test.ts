/**
 * The layering of docs/design.md §1, checked on the sources: http → flows → core → ports ← adapters.
 * A flow that imports an adapter can no longer run on another store; an adapter that imports core
 * holds a business rule where nobody looks for one. A small walker over `src/` reads every relative
 * import (static, re-export and dynamic) and refuses the edges below.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

type Layer = 'http' | 'flows' | 'core' | 'ports' | 'adapters' | 'other';

/** Which layers each layer may not import. `other` (config, ops, runtime, cli, types) is beside them. */
const FORBIDDEN: Record<Layer, readonly Layer[]> = {
  http: ['adapters'],
  flows: ['http', 'adapters'],
  core: ['http', 'flows', 'adapters'],
  ports: ['http', 'flows', 'core', 'adapters'],
  adapters: ['http', 'flows', 'core'],
  other: [],
};

function layerOf(path: string): Layer {
  const top = path.split('/')[1];
  return top === 'http' || top === 'flows' || top === 'core' || top === 'ports' || top === 'adapters' ? top : 'other';
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative specifiers of `import … from`, `export … from`, `import '…'` and `import('…')`. */
function relativeImports(source: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.[^']*)'/gm;
  for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

interface Edge {
  readonly from: string;
  readonly to: string;
}

function forbiddenEdges(files: ReadonlyMap<string, string>): Edge[] {
  const bad: Edge[] = [];
  for (const [from, source] of files) {
    for (const specifier of relativeImports(source)) {
      const to = normalize(join(dirname(from), specifier));
      if (FORBIDDEN[layerOf(from)].includes(layerOf(to))) bad.push({ from, to });
    }
  }
  return bad;
}

function readSources(): Map<string, string> {
  const root = join(import.meta.dirname, '..', '..');
  return new Map(sourceFiles(join(root, 'src')).map((path) => [relative(root, path), readFileSync(path, 'utf8')]));
}

describe('layers', () => {
  it('no import from flows into adapters or http, from adapters into core, flows or http, from core into adapters, flows or http', () => {
    const sources = readSources();
    assert.ok(sources.size > 100, `walked ${sources.size} files`);
    const bad = forbiddenEdges(sources).map(({ from, to }) => `${from} -> ${to}`);
    assert.deepEqual(bad, []);
  });

  it('the walker sees every kind of import (its broken variants are caught)', () => {
    const planted = new Map([
      ['src/flows/a.ts', "import { x } from '../adapters/db/x.ts';"],
      ['src/core/b.ts', "import type { Y } from\n  '../http/y.ts';"],
      ['src/adapters/c.ts', "export { z } from '../core/z.ts';"],
      ['src/ports/d.ts', "const m = await import('../core/m.ts');"],
      ['src/adapters/e.ts', "import '../flows/side-effect.ts';"],
      ['src/flows/ok.ts', "import { k } from '../core/k.ts';\nimport { p } from '../ports/p.ts';"],
      ['src/adapters/ok.ts', "import { p } from '../ports/p.ts';\nimport { c } from '../config.ts';"],
    ]);
    assert.deepEqual(
      forbiddenEdges(planted).map(({ from }) => from),
      ['src/flows/a.ts', 'src/core/b.ts', 'src/adapters/c.ts', 'src/ports/d.ts', 'src/adapters/e.ts'],
    );
  });
});
