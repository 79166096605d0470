// A small relying party, as an application would federate: openid-client (a certified RP
// library) with authorization code + PKCE, its /cb page shows the verified ID token's claims.
import { createServer } from 'node:http';
import * as oidc from 'openid-client';
import { freePort } from './vigil.js';

export async function startRp(issuer, clientId, clientSecret, port) {
  port = port || (await freePort());
  const base = `http://127.0.0.1:${port}`;
  const config = await oidc.discovery(new URL(issuer), clientId, clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const pending = new Map();
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, base);
    try {
      if (url.pathname === '/start') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = oidc.randomNonce();
        pending.set(state, { verifier, nonce });
        const params = {
          redirect_uri: `${base}/cb`,
          scope: url.searchParams.get('scope') || 'openid profile email',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          nonce,
        };
        for (const k of ['ui_locales', 'prompt', 'acr_values']) {
          if (url.searchParams.get(k)) params[k] = url.searchParams.get(k);
        }
        res.writeHead(302, { location: oidc.buildAuthorizationUrl(config, params).href });
        return res.end();
      }
      if (url.pathname === '/cb') {
        if (url.searchParams.get('error')) {
          res.writeHead(200, { 'content-type': 'text/html' });
          return res.end(`<h1>RP error</h1><p id="error">${url.searchParams.get('error')}</p>`);
        }
        const p = pending.get(url.searchParams.get('state'));
        pending.delete(url.searchParams.get('state'));
        const tokens = await oidc.authorizationCodeGrant(config, url, {
          pkceCodeVerifier: p?.verifier,
          expectedState: url.searchParams.get('state'),
          expectedNonce: p?.nonce,
        });
        const idToken = tokens.claims();
        const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, idToken.sub);
        const claims = { id_token: idToken, userinfo };
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end(
          `<!doctype html><title>Test RP</title><h1>Signed in to the test application</h1>` +
            `<pre id="claims">${JSON.stringify(claims, null, 2).replace(/</g, '&lt;')}</pre>`,
        );
      }
      res.writeHead(404).end();
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`RP failure: ${e.message} ${e.cause ? JSON.stringify(e.cause) : ''}`);
    }
  });
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  return {
    base,
    redirectUri: `${base}/cb`,
    stop: () => new Promise((ok) => server.close(ok)),
  };
}
