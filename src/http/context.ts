import type { FastifyRequest } from 'fastify';
import type { DeviceFlag } from '../core/sessions/policy.ts';
import type { DeviceInfo } from '../core/sessions/record.ts';
import type { AuditContext } from '../ops/audit.ts';
import type { LoginContext } from '../flows/start-session.ts';

export interface DeviceBody {
  device_id?: string;
  device_name?: string;
  device_model?: string;
}

/** Client address (socket, or X-Forwarded-For only from trusted proxies) and user agent. */
export function auditContext(request: FastifyRequest): AuditContext {
  const userAgent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : '' };
}

export function loginContext(request: FastifyRequest, flag: DeviceFlag, device: DeviceBody | undefined): LoginContext {
  const info: DeviceInfo = {
    device_id: device?.device_id ?? '',
    device_name: device?.device_name ?? '',
    device_model: device?.device_model ?? '',
  };
  return { ...auditContext(request), flag, device: info };
}
