/**
 * The web console: `/` (sign in), `/account`, `/admin` and their assets under `/console/`, served
 * from src/console (plain ES modules and CSS, no build step). Files are read once at start and
 * looked up by exact name, so no request path ever reaches the file system. The pages are rendered
 * at start in each console language (src/http/console-i18n.ts) and each request gets the one its
 * language cookie, else its Accept-Language, asks for.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { chooseLanguage, LANGUAGE_COOKIE, renderPageFile, type ConsoleLanguage } from '../console-i18n.ts';
import { installConsoleSessions } from '../console-session.ts';
import { CONSOLE_CSP, PAGE_SECURITY_HEADERS } from '../security-headers.ts';

const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

// /signout-everywhere: the new-device alert's link (src/flows/alerts/new-device.ts), asking before it acts.
const PAGES = { '/': 'signin.html', '/account': 'account.html', '/admin': 'admin.html', '/signout-everywhere': 'signout-everywhere.html' } as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const SECURITY_HEADERS = { 'content-security-policy': CONSOLE_CSP, ...PAGE_SECURITY_HEADERS } as const;

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

function load(path: string): StaticFile {
  return staticFile(readFileSync(path), path);
}

function staticFile(body: Buffer, path: string): StaticFile {
  const type = CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

function loadAssets(): Map<string, StaticFile> {
  const dir = join(CONSOLE_DIR, 'assets');
  const assets = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) if (CONTENT_TYPES[extname(name)] !== undefined) assets.set(name, load(join(dir, name)));
  return assets;
}

function send(request: FastifyRequest, reply: FastifyReply, file: StaticFile, cacheControl: string): FastifyReply {
  void reply.headers(SECURITY_HEADERS).header('cache-control', cacheControl).header('etag', file.etag).type(file.type);
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.send(file.body);
}

export function consoleRoutes(app: FastifyInstance, runtime: Runtime): void {
  installConsoleSessions(app, runtime.clock, runtime.config.publicUrl);
  const assets = loadAssets();

  for (const [path, name] of Object.entries(PAGES)) {
    const file = join(CONSOLE_DIR, name);
    const rendered = renderPageFile(file);
    const pages = Object.fromEntries(Object.entries(rendered).map(([language, html]) => [language, staticFile(Buffer.from(html), file)])) as Record<ConsoleLanguage, StaticFile>;
    app.get(path, { schema: { hide: true } }, async (request, reply) => {
      const cookies = request.headers.cookie === undefined ? {} : app.parseCookie(request.headers.cookie);
      const language = chooseLanguage(cookies[LANGUAGE_COOKIE], request.headers['accept-language']);
      // no-store: after signing out, Back must not show the account page from the cache.
      void reply.header('vary', 'Accept-Language, Cookie').header('content-language', language);
      return send(request, reply, pages[language], 'no-store');
    });
  }

  app.get<{ Params: { file: string } }>('/console/:file', {
    schema: { hide: true, params: { type: 'object', required: ['file'], properties: { file: { type: 'string', maxLength: 64 } } } },
  }, async (request, reply) => {
    const file = assets.get(request.params.file);
    if (file === undefined) return reply.callNotFound();
    // Names carry no content hash (no build step): revalidate every time, cheaply, by ETag.
    return send(request, reply, file, 'no-cache');
  });
}
