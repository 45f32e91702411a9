import { toString as renderQrCode } from 'qrcode';

/**
 * What the QR encodes: `latchkey://qr/<uuid>`. The app recognises the scheme, takes the uuid and
 * calls POST /v1/user/qrcode/<uuid>/scan. Only the uuid is in it, never the poll secret: the
 * picture is on a screen that anyone in the room (or a screen recorder) can read.
 */
export const qrText = (uuid: string): string => `latchkey://qr/${uuid}`;

export interface QrImage {
  readonly svg: string;
  readonly text: string;
}

/**
 * `scanUrlPrefix` (compat.octo, docs/octo-compat.md §2): the TangSengDaoDao apps scan only an
 * http(s) URL under their API host's `/v1/qrcode/`, so the QR encodes `<prefix><uuid>` instead.
 * Still only the uuid.
 */
export async function qrImage(uuid: string, scanUrlPrefix?: string): Promise<QrImage> {
  const text = scanUrlPrefix === undefined ? qrText(uuid) : `${scanUrlPrefix}${uuid}`;
  return { svg: await renderQrCode(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }), text };
}
