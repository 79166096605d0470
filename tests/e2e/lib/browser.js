// Debian's Chromium through playwright-core (no browser is downloaded), one fresh profile per
// context; helpers for the journeys: a context "at" an address (the trusted proxy's
// X-Forwarded-For), a CDP virtual authenticator, axe-core, and screenshots for the README.
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import * as OTPAuth from 'otpauth';
import { REPO } from './vigil.js';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

/** A fresh browser profile whose requests arrive from `ip` (via the trusted proxy). */
export async function contextAt(browser, ip, opts = {}) {
  return browser.newContext({
    locale: opts.locale || 'en-GB',
    viewport: opts.viewport || { width: 1024, height: 720 },
    extraHTTPHeaders: { 'x-forwarded-for': ip },
  });
}

/** A platform authenticator with resident keys and user verification (CTAP2, internal). */
export async function virtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    async credentials() {
      return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
    },
  };
}

/** The current code of an `otpauth://` URI or a base32 secret (as an authenticator app shows). */
export function totpCode(uriOrSecret) {
  const totp = uriOrSecret.startsWith('otpauth://')
    ? OTPAuth.URI.parse(uriOrSecret)
    : new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(uriOrSecret.replace(/\s+/g, '')) });
  return totp.generate();
}

/** axe-core on the page as it stands: the serious and critical violations (none expected). */
export async function axe(page) {
  // evaluate() runs outside the page's CSP, which (rightly) forbids injected scripts.
  await page.evaluate(AXE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const SHOTS = process.env.VIGIL_E2E_SCREENSHOTS || join(REPO, 'target', 'e2e-screenshots');

/** A screenshot for the README (VIGIL_E2E_SCREENSHOTS=docs/screenshots to refresh them). */
export async function screenshot(page, name, { fullPage = false } = {}) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}
