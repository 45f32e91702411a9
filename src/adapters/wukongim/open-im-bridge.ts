import type { ImConfig } from '../../config/im.ts';
import type { ImBridge } from '../../ports/im-bridge.ts';
import { WukongImBridge } from './wukongim-bridge.ts';

/**
 * The configured IM bridge (`im.type`). `none` (the default) is no bridge: latchkey then keeps no IM
 * token at all, so a deployment without an IM server pays nothing for the protocol of docs/design.md §3.4.
 */
export function openImBridge(config: ImConfig): ImBridge | null {
  switch (config.type) {
    case 'none':
      return null;
    case 'wukongim':
      return new WukongImBridge(config.wukongim);
  }
}
