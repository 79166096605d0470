// The peer of vigil's published load figures: panva's oidc-provider 9 (OpenID Certified) with
// its defaults — in-memory adapter, opaque access tokens — and one confidential client allowed
// client_credentials, named like vigil's seeded `client-1` so vigil-load can use it unchanged.
//
//   PORT=3000 node server.mjs        (ISSUER defaults to http://localhost:$PORT)
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3000);
const issuer = process.env.ISSUER || `http://localhost:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'client-1',
      client_secret: 'client-1-secret-vigil-load-testing',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} listening on 127.0.0.1:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
