import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.ts';
import { errorResponses } from '../schemas.ts';

const appConfigSchema = {
  type: 'object',
  properties: {
    oidc_providers: {
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, authorize_path: { type: 'string' } } },
    },
    qr_login: { type: 'boolean' },
    code_login: { type: 'object', properties: { sms: { type: 'boolean' }, email: { type: 'boolean' } } },
  },
} as const;

/**
 * GET /v1/common/appconfig: which login methods this server offers, so clients show only working
 * buttons. Each flag is derived from what is really mounted or deliverable: octo-server advertised
 * OIDC while its routes answered 404 (docs/octo-server.md §8.24).
 */
export function appConfigRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/v1/common/appconfig', {
    schema: { tags: ['ops'], summary: 'Login methods this server offers', response: { 200: appConfigSchema, ...errorResponses() } },
  }, async () => ({
    // Every enabled provider has its routes mounted; one whose IdP is down answers 503, not 404.
    oidc_providers: runtime.oidc.directory.providers.map(({ id, name }) => ({ id, name, authorize_path: `/v1/auth/oidc/${id}/authorize` })),
    qr_login: app.hasRoute({ method: 'GET', url: '/v1/user/loginuuid' }),
    code_login: {
      sms: runtime.sender.channels.includes('sms'),
      email: runtime.sender.channels.includes('email'),
    },
  }));
}
