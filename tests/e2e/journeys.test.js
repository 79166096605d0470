// What users and admins do, in a real browser: Debian's Chromium (playwright-core), a CDP
// virtual passkey, axe-core on every page a journey passes, and the README's screenshots.
// One vigil (debug build, fresh SQLite, GeoIP test data, 127.0.0.1 as trusted proxy) serves
// all journeys; each journey has its own users and browser profiles.
//
//   cd tests/e2e && npm ci && npm test        (after `cargo build`)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BERLIN, DENY_LISTED, SYDNEY, freePort, startVigil } from './lib/vigil.js';
import { startRp } from './lib/rp.js';
import { axe, contextAt, launch, screenshot, totpCode, virtualAuthenticator } from './lib/browser.js';

const PASSWORD = 'correct horse battery staple 42';
const RP_SECRET = 'e2e-test-rp-secret-0123456789abcdef';

let vigil;
let browser;
let rp;
let adminTotp;
const usedCodes = new Set();

function addUser(name, { admin = false } = {}) {
  const args = ['user', 'add', name, '--email', `${name}@example.test`, '--name', name[0].toUpperCase() + name.slice(1)];
  if (admin) args.push('--admin');
  args.push('--password-stdin');
  vigil.cli(args, `${PASSWORD}\n`);
}

/** A TOTP code not used before in this run (vigil accepts each code once), waiting if needed. */
async function freshCode(secret) {
  for (;;) {
    const code = totpCode(secret);
    if (!usedCodes.has(code)) {
      usedCodes.add(code);
      return code;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function expectAccessible(page, what) {
  const violations = await axe(page);
  assert.deepEqual(violations, [], `${what}: axe found serious or critical violations`);
}

/** Username and password on the login page, by their labels, as a person would. */
async function submitPassword(page, username, password = PASSWORD) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await navigation(page, () => page.getByRole('button', { name: 'Sign in', exact: true }).click());
}

/** Runs `act` (a click, a key) and waits until the document it leads to has loaded. */
async function navigation(page, act) {
  const loaded = page.waitForEvent('load');
  await act();
  await loaded;
}

async function signOut(page) {
  await page.goto(`${vigil.issuer}/account`);
  await navigation(page, () => page.locator('.site-header').getByRole('button', { name: 'Sign out' }).click());
}

async function isStepUp(page) {
  return (await page.locator('#mfa-heading').count()) > 0;
}

async function stepUpWithTotp(page, secret) {
  assert.ok(await isStepUp(page), `expected the step-up page, got ${page.url()}`);
  await page.getByLabel('Code from your authenticator app').fill(await freshCode(secret));
  await navigation(page, () => page.getByRole('button', { name: 'Verify' }).click());
}

async function claimsOn(page) {
  await page.locator('#claims').waitFor();
  return JSON.parse(await page.locator('#claims').textContent());
}

/** The console needs a second factor: the admin signs in with password and TOTP. */
async function adminPage() {
  const ctx = await contextAt(browser, BERLIN);
  const page = await ctx.newPage();
  await page.goto(`${vigil.issuer}/admin`);
  await submitPassword(page, 'root');
  if (await isStepUp(page)) await stepUpWithTotp(page, adminTotp);
  if (!new URL(page.url()).pathname.startsWith('/admin')) await page.goto(`${vigil.issuer}/admin`);
  await page.locator('h1').first().waitFor();
  return page;
}

before(async () => {
  vigil = await startVigil();
  browser = await launch();
  const rpPort = await freePort();
  vigil.cli(
    ['client', 'add', 'notes', '--name', 'Notes', '--redirect-uri', `http://127.0.0.1:${rpPort}/cb`, '--secret-stdin'],
    `${RP_SECRET}\n`,
  );
  rp = await startRp(vigil.issuer, 'notes', RP_SECRET, rpPort);
  for (const u of ['alice', 'pia', 'bruno', 'dana', 'carl', 'kim']) addUser(u);
  addUser('root', { admin: true });
  adminTotp = vigil.cli(['user', 'totp-enroll', 'root']).trim();
});

after(async () => {
  await browser?.close();
  await rp?.stop();
  await vigil?.stop();
});

describe('browser journeys', () => {
  let alice; // alice's Berlin browser, used by journeys 1 and 2

  test('1: a password sign-in through an application comes back with claims', async () => {
    const ctx = await contextAt(browser, BERLIN);
    alice = await ctx.newPage();
    await alice.goto(`${rp.base}/start`);
    await alice.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expectAccessible(alice, 'login page');
    await screenshot(alice, 'login');
    await submitPassword(alice, 'alice');
    // A third-party application asks for consent the first time.
    await alice.getByRole('button', { name: /allow/i }).waitFor();
    await expectAccessible(alice, 'consent page');
    await screenshot(alice, 'consent');
    await navigation(alice, () => alice.getByRole('button', { name: /allow/i }).click());
    const claims = await claimsOn(alice);
    assert.equal(claims.userinfo.preferred_username, 'alice');
    assert.equal(claims.userinfo.email, 'alice@example.test');
    assert.ok(claims.id_token.risk, `the decision travels in the ID token: ${JSON.stringify(claims.id_token)}`);
  });

  test('2: TOTP enrolment on /account, then a sign-in from the other side of the world asks for the code', async () => {
    await alice.goto(`${vigil.issuer}/account`);
    await expectAccessible(alice, 'account page');
    await screenshot(alice, 'account');
    await alice.getByRole('link', { name: 'Set up an authenticator app' }).click();
    const secret = (await alice.locator('#totp-secret').textContent()).trim();
    await expectAccessible(alice, 'TOTP enrolment page');
    await alice.getByLabel(/code/i).fill(await freshCode(secret));
    await navigation(alice, () => alice.getByRole('button', { name: 'Turn on' }).click());
    await expectAccessible(alice, 'after TOTP enrolment');
    await signOut(alice);

    // Minutes later "alice" signs in from Sydney on another device: impossible travel.
    const far = await (await contextAt(browser, SYDNEY)).newPage();
    await far.goto(`${rp.base}/start`);
    await submitPassword(far, 'alice');
    assert.ok(await isStepUp(far), `Sydney must step up, got ${far.url()}`);
    await expectAccessible(far, 'step-up page');
    await screenshot(far, 'step-up');
    await stepUpWithTotp(far, secret);
    const claims = await claimsOn(far);
    assert.equal(claims.userinfo.preferred_username, 'alice');
    const amr = claims.id_token.amr;
    assert.ok(amr?.includes('otp'), `amr names the code: ${JSON.stringify(amr)}`);
    await far.context().close();
  });

  test('3: passkey registration, a high-risk step-up with it, a passwordless sign-in, removal', async () => {
    const ctx = await contextAt(browser, BERLIN);
    const page = await ctx.newPage();
    const authenticator = await virtualAuthenticator(page);
    await page.goto(`${vigil.issuer}/login`);
    await submitPassword(page, 'pia');
    await page.goto(`${vigil.issuer}/account`);
    await page.getByLabel(/passkey name|name/i).first().fill('Work laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    // The first factor comes with recovery codes, shown once.
    await page.waitForURL(/\/account\/recovery/);
    await expectAccessible(page, 'recovery codes page');
    await page.goto(`${vigil.issuer}/account`);
    await page.locator('#passkeys').getByText('Work laptop').waitFor();
    assert.equal((await authenticator.credentials()).length, 1, 'one credential on the authenticator');
    await signOut(page);

    // The same laptop, minutes later, seen from Sydney: high risk, the passkey is asked for.
    await ctx.setExtraHTTPHeaders({ 'x-forwarded-for': SYDNEY });
    await page.goto(`${vigil.issuer}/login`);
    await submitPassword(page, 'pia');
    assert.ok(await isStepUp(page), `Sydney must step up, got ${page.url()}`);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL(/\/account/);
    await signOut(page);

    // Passwordless, back home.
    await ctx.setExtraHTTPHeaders({ 'x-forwarded-for': BERLIN });
    await page.goto(`${vigil.issuer}/login`);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(/\/account/);
    await navigation(page, () => page.locator('#passkeys').getByRole('button', { name: 'Remove' }).click());
    if (await isStepUp(page)) {
      await page.getByRole('button', { name: 'Use a passkey' }).click();
      await page.waitForURL(/\/account/);
    }
    assert.equal(await page.locator('#passkeys').getByText('Work laptop').count(), 0, 'the passkey is gone');
    await ctx.close();
  });

  test('4: a deny-listed sign-in is blocked, an admin marks it legitimate, then the user gets in', async () => {
    const bruno = await (await contextAt(browser, DENY_LISTED)).newPage();
    await bruno.goto(`${vigil.issuer}/login`);
    await submitPassword(bruno, 'bruno');
    assert.notEqual(new URL(bruno.url()).pathname, '/account', 'blocked, not signed in');
    await expectAccessible(bruno, 'blocked page');
    await screenshot(bruno, 'blocked');

    const admin = await adminPage();
    await expectAccessible(admin, 'admin dashboard');
    await screenshot(admin, 'admin-dashboard');
    await admin.goto(`${vigil.issuer}/admin/review`);
    const item = admin.locator('article.review-item[data-user="bruno"]');
    await item.waitFor();
    await expectAccessible(admin, 'review queue');
    await screenshot(admin, 'review-queue');
    const signin = await item.getAttribute('data-signin');
    await admin.goto(`${vigil.issuer}/admin/signins/${signin}`);
    await expectAccessible(admin, 'sign-in risk explanation');
    await screenshot(admin, 'risk-explanation');
    await admin.goto(`${vigil.issuer}/admin/review`);
    await navigation(admin, () => item.getByRole('button', { name: 'Legitimate' }).click());
    assert.equal(await admin.locator('article.review-item[data-user="bruno"]').count(), 0, 'the item left the queue');

    await bruno.goto(`${vigil.issuer}/login`);
    await submitPassword(bruno, 'bruno');
    assert.equal(new URL(bruno.url()).pathname, '/account', 'after the verdict bruno gets in');
    await bruno.context().close();
    await admin.context().close();
  });

  test('5: "this wasn\'t me" on /account ends the other browser\'s session', async () => {
    const mine = await (await contextAt(browser, BERLIN)).newPage();
    await mine.goto(`${vigil.issuer}/login`);
    await submitPassword(mine, 'dana');
    const theirs = await (await contextAt(browser, BERLIN)).newPage();
    await theirs.goto(`${vigil.issuer}/login`);
    await submitPassword(theirs, 'dana');
    await theirs.goto(`${vigil.issuer}/account`);
    assert.equal(new URL(theirs.url()).pathname, '/account', 'the intruder is in');

    await mine.goto(`${vigil.issuer}/account`);
    // Newest first: the intruder's sign-in is the first row.
    await navigation(mine, () => mine.locator('#signins').getByRole('button', { name: "This wasn't me" }).first().click());
    // It signs out everywhere, here too.
    await mine.goto(`${vigil.issuer}/account`);
    assert.notEqual(new URL(mine.url()).pathname, '/account', 'the reporting browser is signed out too');

    await theirs.goto(`${vigil.issuer}/account`);
    assert.notEqual(new URL(theirs.url()).pathname, '/account', "the intruder's session is over");
    await mine.context().close();
    await theirs.context().close();
  });

  test('6: an admin creates a client and a role in the console; a sign-in through it carries the role', async () => {
    const admin = await adminPage();
    const shopPort = await freePort();
    await admin.goto(`${vigil.issuer}/admin/clients`);
    await expectAccessible(admin, 'clients page');
    await admin.getByLabel('Client id').fill('shop');
    await admin.getByLabel('Redirect URIs, one per line', { exact: true }).fill(`http://127.0.0.1:${shopPort}/cb`);
    await navigation(admin, () => admin.getByRole('button', { name: 'Register client' }).click());
    const secret = (await admin.locator('#client-secret').textContent()).trim();
    await expectAccessible(admin, 'client page');
    await admin.getByLabel('New role').fill('editor');
    await navigation(admin, () => admin.getByRole('button', { name: 'Create role' }).click());
    await admin.getByLabel('Role', { exact: true }).fill('editor');
    await admin.getByLabel('Username').fill('carl');
    await navigation(admin, () => admin.getByRole('button', { name: 'Apply' }).click());
    await admin.context().close();

    const shop = await startRp(vigil.issuer, 'shop', secret, shopPort);
    try {
      const carl = await (await contextAt(browser, BERLIN)).newPage();
      await carl.goto(`${shop.base}/start?scope=${encodeURIComponent('openid profile roles')}`);
      await submitPassword(carl, 'carl');
      const allow = carl.getByRole('button', { name: /allow/i });
      if (await allow.count()) await allow.click();
      const claims = await claimsOn(carl);
      const roles = claims.id_token.roles ?? claims.userinfo.roles;
      assert.ok(JSON.stringify(roles ?? '').includes('editor'), `roles: ${JSON.stringify(claims)}`);
      await carl.context().close();
    } finally {
      await shop.stop();
    }
  });

  test('7: keyboard only: the login and step-up forms complete with Tab and Enter', async () => {
    const secret = vigil.cli(['user', 'totp-enroll', 'kim']).trim();
    const ctx = await contextAt(browser, BERLIN);
    const page = await ctx.newPage();
    const byKeyboard = async () => {
      await page.goto(`${vigil.issuer}/login`);
      // The username field has focus on arrival; Tab to the password, Enter submits.
      await page.keyboard.type('kim');
      await page.keyboard.press('Tab');
      await page.keyboard.type(PASSWORD);
      await navigation(page, () => page.keyboard.press('Enter'));
    };
    await byKeyboard();
    if (await isStepUp(page)) {
      await page.keyboard.type(await freshCode(secret));
      await navigation(page, () => page.keyboard.press('Enter'));
    }
    assert.equal(new URL(page.url()).pathname, '/account');
    await signOut(page);

    await ctx.setExtraHTTPHeaders({ 'x-forwarded-for': SYDNEY });
    await byKeyboard();
    assert.ok(await isStepUp(page), `Sydney must step up, got ${page.url()}`);
    // The code field has focus on arrival.
    await page.keyboard.type(await freshCode(secret));
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/account/);
    await ctx.close();
  });

  test('8: every admin page passes axe; the policy page shows its backtest and whole choices', async () => {
    const admin = await adminPage();
    const links = await admin.locator('.admin-nav a').evaluateAll((as) =>
      as.map((a) => a.getAttribute('href')).filter((h) => h.startsWith('/admin')),
    );
    assert.ok(links.length >= 8, `the admin nav: ${links}`);
    // Detail pages too: a user, a client, a group, a sign-in.
    await admin.goto(`${vigil.issuer}/admin/users`);
    links.push(await admin.locator('#users a[href^="/admin/users/"]').first().getAttribute('href'));
    await admin.goto(`${vigil.issuer}/admin/clients`);
    links.push(await admin.locator('#clients a[href^="/admin/clients/"]').first().getAttribute('href'));
    await admin.goto(`${vigil.issuer}/admin/signins`);
    links.push(await admin.locator('#signins a[href^="/admin/signins/"]').first().getAttribute('href'));
    for (const href of links) {
      await admin.goto(`${vigil.issuer}${href}`);
      await expectAccessible(admin, href);
    }
    await admin.goto(`${vigil.issuer}/admin/policy`);
    await admin.locator('#backtest').waitFor();
    await screenshot(admin, 'policy', { fullPage: true });
    // No action select cuts its choice off ("Ask for a passkey (el…").
    const cut = await admin.locator('select').evaluateAll((selects) => {
      const ctx = document.createElement('canvas').getContext('2d');
      return selects.flatMap((s) => {
        const st = getComputedStyle(s);
        ctx.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
        const room = s.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - 16;
        return [...s.options]
          .filter((o) => ctx.measureText(o.text).width > room)
          .map((o) => `${s.name}: "${o.text}"`);
      });
    });
    assert.deepEqual(cut, [], 'select choices cut off on the policy page');
    await admin.context().close();
  });

  test('9: pages fit a 360 px wide phone without sideways scrolling', async () => {
    const ctx = await contextAt(browser, BERLIN, { viewport: { width: 360, height: 740 } });
    const page = await ctx.newPage();
    const fits = async (what) => {
      const [scroll, width] = await page.evaluate(() => [
        document.documentElement.scrollWidth,
        document.documentElement.clientWidth,
      ]);
      assert.ok(scroll <= width, `${what}: ${scroll} px of content in ${width} px`);
    };
    await page.goto(`${vigil.issuer}/login`);
    await fits('login');
    await page.goto(`${vigil.issuer}/login/forgot`);
    await fits('forgot');
    await page.goto(`${vigil.issuer}/login`);
    await submitPassword(page, 'root');
    if (await isStepUp(page)) {
      await fits('step-up');
      await stepUpWithTotp(page, adminTotp);
    }
    for (const path of ['/account', '/account/totp', '/account/password', '/admin', '/admin/users',
      '/admin/clients', '/admin/signins', '/admin/review', '/admin/policy', '/admin/fairness', '/admin/keys']) {
      await page.goto(`${vigil.issuer}${path}`);
      await fits(path);
    }
    await screenshot(page, 'account-phone');
    await ctx.close();
  });

  test('10: a German browser gets German pages, and ui_locales chooses for an application', async () => {
    addUser('greta');
    const de = await (await contextAt(browser, BERLIN, { locale: 'de-DE' })).newPage();
    await de.goto(`${vigil.issuer}/login`);
    assert.equal(await de.locator('html').getAttribute('lang'), 'de');
    await de.getByRole('heading', { name: 'Anmelden' }).waitFor();
    await expectAccessible(de, 'German login page');
    await de.context().close();

    // An English browser, but the application asks for German: every page of that sign-in.
    const en = await (await contextAt(browser, BERLIN)).newPage();
    await en.goto(`${rp.base}/start?ui_locales=${encodeURIComponent('fr de')}`);
    await en.getByLabel('Benutzername').fill('greta');
    await en.getByLabel('Passwort', { exact: true }).fill(PASSWORD);
    await navigation(en, () => en.getByRole('button', { name: 'Anmelden', exact: true }).click());
    await en.getByRole('button', { name: 'Erlauben' }).waitFor();
    await expectAccessible(en, 'German consent page');
    await navigation(en, () => en.getByRole('button', { name: 'Erlauben' }).click());
    const claims = await claimsOn(en);
    assert.equal(claims.userinfo.preferred_username, 'greta');
    await en.context().close();
  });
});
