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

/** The files of each import cycle (a file that, through its imports, imports itself). */
function importCycles(files: ReadonlyMap<string, string>): string[][] {
  const edges = new Map([...files].map(([from, source]) => [
    from,
    relativeImports(source).map((specifier) => normalize(join(dirname(from), specifier))).filter((to) => files.has(to)),
  ]));
  // Tarjan's strongly connected components; a component of two or more files is a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    for (const next of edges.get(file) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (stack.includes(next)) {
        low.set(file, Math.min(low.get(file)!, index.get(next)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop()!;
      component.push(member);
    } while (member !== file);
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const file of files.keys()) if (!index.has(file)) visit(file);
  return cycles;
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

  it('no import cycle: the configuration and every other folder read from the bottom up', () => {
    assert.deepEqual(importCycles(readSources()), []);
  });

  it('the cycle finder sees a cycle through several files, and none in a chain', () => {
    const files = new Map([
      ['src/config/config.ts', "import { a } from './oidc.ts';\nimport { e } from './errors.ts';"],
      ['src/config/oidc.ts', "import { ConfigError } from './config.ts';"],
      ['src/config/errors.ts', ''],
      ['src/x/a.ts', "import { b } from './b.ts';"],
      ['src/x/b.ts', "import { c } from '../y/c.ts';"],
      ['src/y/c.ts', "import type { A } from '../x/a.ts';"],
      ['src/z/chain.ts', "import { e } from '../config/errors.ts';"],
    ]);
    assert.deepEqual(importCycles(files), [['src/config/config.ts', 'src/config/oidc.ts'], ['src/x/a.ts', 'src/x/b.ts', 'src/y/c.ts']]);
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
