/**
 * The routes a running latchkey serves, read from its Fastify router, so a test that walks "every
 * route" covers a route added later without being told (test/e2e/properties.test.ts,
 * test/e2e/bad-input.test.ts); and what each declares of its input, read from the OpenAPI document
 * the server builds from the same route schemas.
 */
import type { TestServer } from './server.ts';

export interface RouteUnderTest {
  readonly method: string;
  /** Fastify's pattern: `/v1/user/sessions/:sid`, `/docs/*`. */
  readonly path: string;
}

/**
 * Every route in the router, from `printRoutes()`: one line per tree node, its depth given by the
 * indentation (4 characters a level), its text appended to its parent's, its methods in brackets.
 */
export function parseRouteTree(tree: string): RouteUnderTest[] {
  const prefixes: string[] = [];
  const routes: RouteUnderTest[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (match === null) continue;
    const depth = (match[1] ?? '').length / 4;
    const path = (prefixes[depth - 1] ?? '') + (match[2] ?? '');
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      // HEAD is Fastify's automatic twin of GET; OPTIONS are not routed here.
      if (method !== '' && method !== 'HEAD') routes.push({ method, path });
    }
  }
  return routes;
}

export function routesOf(server: TestServer): RouteUnderTest[] {
  return parseRouteTree(server.app.printRoutes({ commonPrefix: false }));
}

/** The names of a route's path parameters, in order (`*` for a wildcard). */
export function paramNames(route: RouteUnderTest): string[] {
  return [...route.path.matchAll(/:([A-Za-z_]+)|\*$/g)].map((m) => m[1] ?? '*');
}

/** The route's path with each parameter replaced by `value(name)`. */
export function fillPath(route: RouteUnderTest, value: (name: string) => string): string {
  return route.path.replace(/:([A-Za-z_]+)/g, (_, name: string) => value(name)).replace(/\*$/, () => value('*'));
}

/** The part of a JSON Schema the walkers read to make input that breaks it. */
export interface FieldSchema {
  readonly type?: string;
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly required?: readonly string[];
  readonly properties?: Record<string, FieldSchema>;
  readonly additionalProperties?: boolean | FieldSchema;
}

/** What a route declares of its input (hidden routes — docs, console, probes — declare nothing). */
export interface DeclaredInput {
  readonly body: FieldSchema | null;
  readonly query: Record<string, FieldSchema>;
  readonly params: Record<string, FieldSchema>;
}

interface OpenApiParameter {
  readonly in: string;
  readonly name: string;
  readonly schema?: FieldSchema;
}

interface OpenApiOperation {
  readonly parameters?: readonly OpenApiParameter[];
  readonly requestBody?: { readonly content?: Record<string, { readonly schema?: FieldSchema }> };
}

/** Each route's declared input, keyed `METHOD /path/:param` like the router's routes. */
export async function declaredInputs(server: TestServer): Promise<Map<string, DeclaredInput>> {
  const response = await fetch(`${server.url}/openapi.json`);
  const document = await response.json() as { paths: Record<string, Record<string, OpenApiOperation>> };
  const inputs = new Map<string, DeclaredInput>();
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const parameters = operation.parameters ?? [];
      const of = (where: string) => Object.fromEntries(parameters.filter((p) => p.in === where && p.schema !== undefined).map((p) => [p.name, p.schema as FieldSchema]));
      const content = operation.requestBody?.content ?? {};
      inputs.set(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`, {
        body: content['application/json']?.schema ?? null,
        // The callback's query is declared as "any key, a bounded string": not a field list.
        query: Object.fromEntries(Object.entries(of('query')).filter(([name]) => name !== 'type' && name !== 'additionalProperties')),
        params: of('path'),
      });
    }
  }
  return inputs;
}

export const routeKey = (route: RouteUnderTest): string => `${route.method} ${route.path}`;
