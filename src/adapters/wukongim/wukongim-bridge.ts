import type { WukongImConfig } from '../../config/im.ts';
import { ImBannedError, ImUnavailableError, type ImBridge, type ImDeviceFlag, type ImTokenUpdate } from '../../ports/im-bridge.ts';

/** WuKongIM's `UpdateTokenStatusBan`: the user's person channel is banned. */
const STATUS_BANNED = 19;

const DEVICE_LEVEL = { slave: 0, master: 1 } as const;

/**
 * WuKongIM over HTTP (docs/octo-server.md §3): `POST /user/token` and `POST /user/device_quit`. Anything
 * but an HTTP 200 is a failure, so is a timeout; redirects are refused, because following one would
 * hand the manager token and the user's IM token to a host nobody configured.
 */
export class WukongImBridge implements ImBridge {
  readonly #config: WukongImConfig;
  readonly #base: URL;

  constructor(config: WukongImConfig) {
    this.#config = config;
    this.#base = apiBase(config.apiUrl);
  }

  async updateToken(update: ImTokenUpdate): Promise<void> {
    const answer = await this.#post('/user/token', {
      uid: update.uid,
      token: update.token,
      device_flag: update.flag,
      device_level: DEVICE_LEVEL[update.level],
    });
    if (answer !== null && typeof answer === 'object' && (answer as { status?: unknown }).status === STATUS_BANNED) {
      throw new ImBannedError('WuKongIM refuses this user (status 19: banned)');
    }
  }

  async deviceQuit(uid: string, flag: ImDeviceFlag | -1): Promise<void> {
    await this.#post('/user/device_quit', { uid, device_flag: flag });
  }

  async #post(path: string, body: Record<string, unknown>): Promise<unknown> {
    const { managerToken, timeoutMs } = this.#config;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (managerToken !== undefined) headers.token = managerToken;
    let response: Response;
    try {
      response = await fetch(new URL(path.replace(/^\//, ''), this.#base), {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
      throw new ImUnavailableError(timedOut ? `WuKongIM ${path} timed out after ${timeoutMs} ms` : `WuKongIM ${path} unreachable`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      throw new ImUnavailableError(`WuKongIM ${path} broke off its answer`);
    }
    if (response.status !== 200) throw new ImUnavailableError(`WuKongIM ${path} answered ${response.status}`);
    if (text.trim() === '') return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // device_quit's answer is not always JSON; a 200 is what counts.
      return null;
    }
  }
}

/**
 * The API URL as a base that keeps its path: WuKongIM behind a proxy at `https://host/im-api` must
 * get `https://host/im-api/user/token`. Resolving `/user/token` against it would drop the prefix and
 * send the manager token and users' IM tokens to whatever else that host serves at `/user/token`.
 */
function apiBase(apiUrl: string): URL {
  const base = new URL(apiUrl);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  base.search = '';
  base.hash = '';
  return base;
}
