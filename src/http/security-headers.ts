/**
 * Headers that whole kinds of answers carry, set in one place so no route can forget them.
 */
import type { FastifyInstance } from 'fastify';

/**
 * The console's CSP: no inline script or style and nothing from elsewhere, so an injected
 * `<script>` does not run, and the console works on closed networks because it never needed the
 * outside. frame-ancestors (and X-Frame-Options for older browsers) refuse framing: a sign-in page
 * under someone else's frame is a clickjacking target. form-action 'self' stops an injected form
 * from posting credentials away. img-src allows data: for the TOTP enrolment's QR code, an SVG
 * latchkey drew, shown as an <img> (which runs no script) rather than parsed into the page.
 */
export const CONSOLE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'none'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

/**
 * Swagger UI under /docs is on the same origin, so its script can read the console's CSRF cookie:
 * it gets the same policy, but for styles: the UI applies inline styles as it renders (which no
 * script can be smuggled through), and its stylesheet draws icons from data: URIs.
 */
export const DOCS_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self' data:", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

/** What every page latchkey serves to a browser carries besides its CSP. */
export const PAGE_SECURITY_HEADERS = {
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // The sign-in page receives `?lk_code=` from SSO: it must never travel on in a Referer.
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
} as const;

const DOCS_HEADERS = { 'content-security-policy': DOCS_CSP, ...PAGE_SECURITY_HEADERS } as const;

/**
 * Every API answer may carry a secret: a session token (every login and register), a QR poll
 * secret or auth code, an IM token, a handoff. A browser's disk cache, a corporate proxy or a CDN
 * must keep none of them (RFC 9111 §5.2.2.5); Pragma for HTTP/1.0 caches. Errors too: a 401 that a
 * cache served back later would sign a user out for nothing.
 *
 * /docs is set here rather than through the Swagger UI plugin's hooks, which skip its static files.
 * nosniff goes on every answer.
 */
export function installAnswerHeaders(app: FastifyInstance): void {
  // A callback hook, not an async one: it runs on every answer.
  app.addHook('onSend', (request, reply, payload, done) => {
    const url = request.url;
    // A JSON answer that echoes input (an error naming a field) is never sniffed into HTML.
    if (!reply.hasHeader('x-content-type-options')) void reply.header('x-content-type-options', 'nosniff');
    if (url.startsWith('/v1/')) {
      if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
      if (!reply.hasHeader('pragma')) void reply.header('pragma', 'no-cache');
    } else if (url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?')) {
      void reply.headers(DOCS_HEADERS);
    }
    done(null, payload);
  });
}
