// issuer.mjs runs a real, external OAuth 2.1 authorization server for the
// interop tests: oidc-provider on a loopback port, with its own login and
// consent pages, resource indicators (RFC 8707), token introspection
// (RFC 7662), token revocation (RFC 7009), dynamic client registration
// (RFC 7591) and PKCE (RFC 7636, S256 only).
//
// It knows two resources: EpicMe's MCP URL (--resource) and a second one
// (--other-resource) so that tests can mint tokens meant for another service.
// Access tokens are JWTs (RFC 9068) or opaque strings checked by
// introspection, chosen with --format.
//
// When it is listening it prints one JSON line on stdout with its issuer URL,
// endpoints and the pre-registered clients; everything else goes to stderr.
// It runs until stdin closes or it gets SIGTERM, so a test that dies takes it
// along.
//
// Usage:
//
//	node issuer.mjs --resource http://127.0.0.1:8080/mcp [--format jwt|opaque]
//	  [--alg RS256|ES256|EdDSA] [--port 0] [--access-token-ttl 300]
//	  [--short-ttl 2] [--backdate 600] [--other-resource http://127.0.0.1:9/other]
//	  [--rs-client-id epicme] [--rs-client-secret ...]
//
// Every flag may also be given as an environment variable ISSUER_<FLAG>, with
// the flag's name upper-cased and dashes as underscores (ISSUER_FORMAT=opaque).

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const flags = {
  port: { type: 'string', default: '0' },
  resource: { type: 'string' },
  'other-resource': { type: 'string', default: 'http://127.0.0.1:9/other' },
  format: { type: 'string', default: 'jwt' },
  alg: { type: 'string', default: 'RS256' },
  'access-token-ttl': { type: 'string', default: '300' },
  'short-ttl': { type: 'string', default: '2' },
  backdate: { type: 'string', default: '600' },
  'rs-client-id': { type: 'string', default: 'epicme' },
  'rs-client-secret': { type: 'string' },
};

const { values: argv } = parseArgs({ options: flags, strict: true });
const opt = (name) => argv[name] ?? process.env[`ISSUER_${name.toUpperCase().replaceAll('-', '_')}`] ?? flags[name].default;

function fail(msg) {
  process.stderr.write(`issuer: ${msg}\n`);
  process.exit(2);
}

const resource = opt('resource');
if (!resource) fail('--resource (the MCP URL tokens are meant for) is required');
const otherResource = opt('other-resource');
const format = opt('format');
if (!['jwt', 'opaque'].includes(format)) fail(`--format must be jwt or opaque, not ${JSON.stringify(format)}`);
const alg = opt('alg');
if (!['RS256', 'ES256', 'EdDSA'].includes(alg)) fail(`--alg must be RS256, ES256 or EdDSA, not ${JSON.stringify(alg)}`);
const seconds = (name) => {
  const n = Number(opt(name));
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a whole number of seconds, at least 1`);
  return n;
};
const accessTokenTTL = seconds('access-token-ttl');
const shortTTL = seconds('short-ttl');
const backdate = seconds('backdate');
const rsClientId = opt('rs-client-id');
const rsClientSecret = opt('rs-client-secret') || crypto.randomBytes(24).toString('base64url');

// The scopes EpicMe's resource server understands. The other resource gets the
// same names on purpose: only the audience tells the two kinds of token apart.
const resourceScopes = 'user:read entries:read entries:write tags:read tags:write';

// Users who can sign in on the login page. Passwords are kept as scrypt hashes
// and compared in constant time, as a real authorization server would.
const users = new Map(
  [
    ['alice', 'alice-password', 'alice@example.com', 'Alice Example'],
    ['bob', 'bob-password', 'bob@example.com', 'Bob Example'],
    ['carol', 'carol-password', 'carol@example.com', 'Carol Example'],
  ].map(([login, password, email, name]) => {
    const salt = crypto.randomBytes(16);
    return [login, {
      sub: `user-${login}`, login, email, name, salt, hash: crypto.scryptSync(password, salt, 32),
    }];
  }),
);
const usersBySub = new Map([...users.values()].map((u) => [u.sub, u]));

function checkPassword(login, password) {
  const user = users.get(login);
  // Hash even for an unknown login so the answer takes the same time.
  const salt = user?.salt ?? Buffer.alloc(16);
  const got = crypto.scryptSync(String(password ?? ''), salt, 32);
  const want = user?.hash ?? Buffer.alloc(32);
  return crypto.timingSafeEqual(got, want) && user ? user : undefined;
}

// Public clients: PKCE is their only proof. `interop-short` gets access
// tokens that expire after --short-ttl seconds; `interop-stale` gets JWT
// access tokens that are already expired when issued (iat and exp moved back
// by --backdate seconds), so a verifier's expiry check can be shown without
// waiting out its clock-skew allowance.
const publicClient = (clientId) => ({
  client_id: clientId,
  client_name: `Interop test client (${clientId})`,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  // Native clients may use a loopback redirect on any port (RFC 8252 §7.3).
  redirect_uris: ['http://127.0.0.1/callback'],
});

const clients = [
  publicClient('interop-app'),
  publicClient('interop-short'),
  publicClient('interop-stale'),
  {
    // EpicMe as a resource server: it only introspects, so it has no grants.
    client_id: rsClientId,
    client_secret: rsClientSecret,
    client_name: 'EpicMe resource server',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  },
];

function signingKeys() {
  const jwk = (type, options, kid, keyAlg) => ({
    ...crypto.generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
    kid,
    alg: keyAlg,
    use: 'sig',
  });
  // The chosen algorithm's key comes first: oidc-provider signs with the
  // first key that fits.
  const keys = [
    jwk('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'),
    jwk('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256'),
    jwk('ed25519', {}, 'ed-1', 'EdDSA'),
  ];
  return { keys: [...keys.filter((k) => k.alg === alg), ...keys.filter((k) => k.alg !== alg)] };
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(opt('port')), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: signingKeys(),
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  // The resource scopes are listed as the provider's own too, so that they
  // appear in scopes_supported and dynamic registration accepts a client
  // whose metadata names them (RFC 7591 §2 "scope"); what a token carries is
  // still decided per resource by getResourceServerInfo and the consent.
  scopes: ['openid', 'offline_access', ...resourceScopes.split(' ')],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(_ctx, sub) {
    const user = usersBySub.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      claims: () => ({
        sub, email: user.email, email_verified: true, name: user.name,
      }),
    };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  // Refresh tokens for every client allowed the grant, without requiring the
  // OpenID Connect offline_access dance: MCP clients do plain OAuth.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: (_ctx, _token, client) => (client?.clientId === 'interop-short' ? shortTTL : accessTokenTTL),
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 3600,
    Session: 3600,
  },
  formats: {
    customizers: {
      async jwt(_ctx, token, jwt) {
        if (token.clientId === 'interop-stale') {
          jwt.payload.iat -= backdate;
          jwt.payload.exp -= backdate;
        }
      },
    },
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    // DPoP (RFC 9449): a token request with a proof gets a token bound to
    // its key (cnf.jkt, token_type DPoP); one without stays bearer.
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Clients that do not name a resource get EpicMe's.
      defaultResource: async (_ctx, _client, oneOf) => (oneOf ? (oneOf.includes(resource) ? resource : oneOf[0]) : resource),
      useGrantedResource: async () => true,
      async getResourceServerInfo(_ctx, indicator) {
        if (indicator !== resource && indicator !== otherResource) {
          throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        }
        return {
          audience: indicator,
          scope: resourceScopes,
          accessTokenFormat: format,
          ...(format === 'jwt' ? { jwt: { sign: { alg } } } : {}),
        };
      },
    },
  },
});

provider.on('server_error', (_ctx, err) => process.stderr.write(`issuer: server error: ${err?.stack ?? err}\n`));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, title, body, status = 200) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', "frame-ancestors 'none'");
  res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(res, uid, clientName, message = '') {
  page(res, 'Sign in', `
<p>Sign in to continue to <strong>${escape(clientName)}</strong>.</p>
${message ? `<p role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Login <input name="login" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit">Cancel</button></form>`, message ? 401 : 200);
}

function consentPage(res, uid, clientName, details) {
  const resourceScopesMissing = details.missingResourceScopes ?? {};
  const items = Object.entries(resourceScopesMissing).flatMap(([indicator, scopes]) => scopes.map((scope) => `
  <li><label><input type="checkbox" name="scope" value="${escape(`${indicator} ${scope}`)}" checked> ${escape(scope)} at ${escape(indicator)}</label></li>`));
  const rsScopes = new Set(resourceScopes.split(' '));
  const oidc = (details.missingOIDCScope ?? []).filter((s) => !rsScopes.has(s)).map((scope) => `<li>${escape(scope)}</li>`);
  page(res, 'Authorize', `
<p><strong>${escape(clientName)}</strong> asks for access to your account.</p>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <ul>${items.join('')}${oidc.join('')}</ul>
  <button type="submit">Allow</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit">Deny</button></form>`);
}

// The login and consent pages. A user signs in with a password, then sees
// the scopes asked for each resource and may untick some before allowing.
async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    page(res, 'Error', '<p>This sign-in attempt is not the one in progress.</p>', 400);
    return;
  }
  const client = await provider.Client.find(details.params.client_id);
  const clientName = client?.clientName ?? details.params.client_id;
  const { prompt } = details;

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') loginPage(res, uid, clientName);
    else consentPage(res, uid, clientName, prompt.details);
    return;
  }
  if (req.method !== 'POST') {
    page(res, 'Error', '<p>Method not allowed.</p>', 405);
    return;
  }
  const form = await readForm(req);
  switch (action) {
    case 'login': {
      if (prompt.name !== 'login') break;
      const user = checkPassword(form.get('login'), form.get('password'));
      if (!user) {
        loginPage(res, uid, clientName, 'Wrong login or password.');
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    case 'confirm': {
      if (prompt.name !== 'consent') break;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const chosen = new Set(form.getAll('scope'));
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
        const granted = scopes.filter((s) => chosen.has(`${indicator} ${s}`));
        const refused = scopes.filter((s) => !chosen.has(`${indicator} ${s}`));
        if (granted.length) grant.addResourceScope(indicator, granted.join(' '));
        if (refused.length) grant.rejectResourceScope(indicator, refused.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    case 'abort':
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'The user refused access',
      }, { mergeWithLastSubmission: false });
      return;
    default:
  }
  page(res, 'Error', '<p>Unexpected form for this step.</p>', 400);
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((err) => {
      process.stderr.write(`issuer: interaction: ${err?.message ?? err}\n`);
      if (!res.headersSent) page(res, 'Error', '<p>This sign-in attempt has expired or is invalid.</p>', 400);
      else res.end();
    });
    return;
  }
  callback(req, res);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

process.stdout.write(`${JSON.stringify({
  issuer,
  authorization_endpoint: `${issuer}/auth`,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  revocation_endpoint: `${issuer}/token/revocation`,
  registration_endpoint: `${issuer}/reg`,
  jwks_uri: `${issuer}/jwks`,
  resource,
  other_resource: otherResource,
  format,
  alg,
  access_token_ttl: accessTokenTTL,
  short_ttl: shortTTL,
  backdate,
  public_clients: ['interop-app', 'interop-short', 'interop-stale'],
  redirect_uri: 'http://127.0.0.1/callback',
  resource_server_client: { client_id: rsClientId, client_secret: rsClientSecret },
})}\n`);
