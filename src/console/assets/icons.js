// @ts-check
/** Line icons (24×24, stroke), built as SVG elements: no icon font, nothing fetched. */

const SVG = 'http://www.w3.org/2000/svg';

/** @type {Record<string, string[]>} */
const PATHS = {
  phone: ['M8 2.5h8a1.5 1.5 0 0 1 1.5 1.5v16a1.5 1.5 0 0 1-1.5 1.5H8A1.5 1.5 0 0 1 6.5 20V4A1.5 1.5 0 0 1 8 2.5z', 'M11 18.5h2'],
  browser: ['M3.5 5.5h17a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1h-17a1 1 0 0 1-1-1v-11a1 1 0 0 1 1-1z', 'M2.5 9h19', 'M5.5 7.25h.01', 'M8 7.25h.01'],
  desktop: ['M3.5 4.5h17a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1h-17a1 1 0 0 1-1-1v-10a1 1 0 0 1 1-1z', 'M9 20.5h6', 'M12 16.5v4'],
  shield: ['M12 2.8l7.5 3v5.7c0 4.6-3.1 8.6-7.5 9.7-4.4-1.1-7.5-5.1-7.5-9.7V5.8z', 'M8.8 12.2l2.2 2.2 4.2-4.4'],
  alert: ['M12 2.8l7.5 3v5.7c0 4.6-3.1 8.6-7.5 9.7-4.4-1.1-7.5-5.1-7.5-9.7V5.8z', 'M12 8v4.5', 'M12 15.8h.01'],
  user: ['M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4.5 20.5c.8-3.6 3.9-5.5 7.5-5.5s6.7 1.9 7.5 5.5'],
};

/** @param {string} name */
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.7');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of PATHS[name] ?? []) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** @param {number} flag device flag: 0 APP, 1 Web, 2 PC */
export function deviceIcon(flag) {
  return icon(flag === 0 ? 'phone' : flag === 2 ? 'desktop' : 'browser');
}
