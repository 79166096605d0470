// One vigil server for a test run: the debug binary `cargo test` already built (argon2 is
// optimised in the dev profile; `VIGIL_BIN` picks another), a fresh SQLite file, the GeoIP test
// databases, a deny list, and 127.0.0.1 as a trusted proxy — so a browser context that sends
// `X-Forwarded-For` signs in "from" Berlin, Sydney or a deny-listed network.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** Addresses the shipped GeoIP test database places (geoip/README.md). */
export const BERLIN = '192.0.2.10';
export const SYDNEY = '198.51.100.7';
export const DENY_LISTED = '203.0.113.5';

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export function binary() {
  const target = process.env.CARGO_TARGET_DIR
    ? resolve(process.env.CARGO_TARGET_DIR)
    : join(REPO, 'target');
  return process.env.VIGIL_BIN || join(target, 'debug', 'vigil');
}

export async function startVigil() {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-e2e-'));
  const deny = join(dir, 'deny.txt');
  writeFileSync(deny, '# e2e deny list\n203.0.113.0/24\n');
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const env = {
    ...process.env,
    VIGIL_BIND: `127.0.0.1:${port}`,
    VIGIL_ISSUER: issuer,
    VIGIL_DATABASE_URL: `sqlite://${join(dir, 'vigil.db')}`,
    VIGIL_GEOIP_CITY: join(REPO, 'geoip/vigil-test-city.mmdb'),
    VIGIL_GEOIP_ASN: join(REPO, 'geoip/vigil-test-asn.mmdb'),
    VIGIL_TRUSTED_PROXIES: '127.0.0.1/32',
    VIGIL_IP_DENYLIST: deny,
    VIGIL_SMTP_URL: 'log',
    VIGIL_LOG: process.env.VIGIL_LOG || 'warn',
  };
  const cli = (args, input) =>
    execFileSync(binary(), args, { env, cwd: dir, input, encoding: 'utf8' });
  cli(['migrate']);
  const child = spawn(binary(), ['serve'], { env, cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((ok) => child.once('exit', ok));
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${issuer}/readyz`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (i > 200 || child.exitCode !== null) throw new Error('vigil did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    issuer,
    port,
    dir,
    cli,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
