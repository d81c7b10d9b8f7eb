// ts-dpop-client.mjs connects the TypeScript MCP client 2.x
// (@modelcontextprotocol/client) with a DpopSession to the EpicMe MCP
// endpoint given as its first argument: it follows the 401 challenge to
// the embedded authorization server, registers, prints the authorization
// URL for the browser driver, receives the code on its loopback callback,
// and redeems it with a DPoP proof (RFC 9449 §5); then every MCP request
// carries "Authorization: DPoP" and a fresh proof of the session's key.
//
//	node ts-dpop-client.mjs <mcp-url>
//
// Every line of output is "<what> <JSON>": "token" for each answer of the
// token endpoint (grant_type and token_type, never a token), "mcp" for each
// MCP request (its Authorization scheme, whether it carried a proof, and
// the status), "call" for a tool's structured result.

import crypto from 'node:crypto';
import http from 'node:http';

import {
  Client, DpopSession, StreamableHTTPClientTransport, UnauthorizedError,
} from '@modelcontextprotocol/client';

const mcpUrl = new URL(process.argv[2]);
const say = (what, value) => console.log(`${what} ${JSON.stringify(value)}`);

// Watch the client's traffic: the token endpoint's answers and the MCP
// requests' credentials.
const realFetch = globalThis.fetch;
const fetch = async (input, init) => {
  const req = new Request(input, init);
  const url = new URL(req.url);
  const grant = url.pathname.endsWith('/token') ? new URLSearchParams(await req.clone().text()).get('grant_type') : undefined;
  const res = await realFetch(req);
  if (grant) {
    const body = await res.clone().json().catch(() => ({}));
    say('token', { grant_type: grant, status: res.status, token_type: body.token_type, dpop: req.headers.has('dpop') });
  }
  if (url.href === mcpUrl.href) {
    say('mcp', { scheme: req.headers.get('authorization')?.split(' ')[0], dpop: req.headers.has('dpop'), status: res.status });
  }
  return res;
};

// The callback listener: the browser brings the code here.
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${server.address().port}/callback`;
let arrive;
const callback = new Promise((resolve) => { arrive = resolve; });
server.on('request', (req, res) => {
  const u = new URL(req.url, redirectUrl);
  if (u.pathname !== '/callback') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end('Signed in. You can close this window.');
  arrive(u);
});

const session = await DpopSession.create();

// A public client (PKCE, no secret), registered dynamically, whose tokens
// are bound to the session's key.
class Provider {
  #client; #tokens; #verifier; #discovery; #state;
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'TypeScript client with DPoP',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { this.#state = crypto.randomBytes(16).toString('base64url'); return this.#state; }
  expectedState() { return this.#state; }
  clientInformation() { return this.#client; }
  saveClientInformation(info) { this.#client = info; }
  tokens() { return this.#tokens; }
  saveTokens(tokens) { this.#tokens = tokens; }
  saveCodeVerifier(v) { this.#verifier = v; }
  codeVerifier() { return this.#verifier; }
  saveDiscoveryState(s) { this.#discovery = s; }
  discoveryState() { return this.#discovery; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.#client = undefined;
    if (scope === 'all' || scope === 'tokens') this.#tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.#verifier = undefined;
  }
  dpop() { return session; }
  redirectToAuthorization(url) {
    console.log(`Open this URL in your browser to sign in: ${url}`);
  }
}

const provider = new Provider();
const newClient = () => new Client({ name: 'epicme-pages-ts-dpop', version: '1.0.0' });

try {
  let transport = new StreamableHTTPClientTransport(mcpUrl, { fetch, authProvider: provider });
  try {
    await newClient().connect(transport);
    throw new Error('the server let an unauthenticated client connect');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  const back = await callback;
  if (back.searchParams.get('error')) throw new Error(`authorization refused: ${back.searchParams.get('error')}`);
  if (back.searchParams.get('state') !== provider.expectedState()) throw new Error('the callback state does not match');
  await transport.finishAuth(back.searchParams);

  const client = newClient();
  transport = new StreamableHTTPClientTransport(mcpUrl, { fetch, authProvider: provider });
  await client.connect(transport);
  for (const [name, args] of [['whoami', {}], ['create_entry', { title: 'Written with DPoP', content: 'Every request carried a proof.' }]]) {
    const res = await client.callTool({ name, arguments: args });
    if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content)}`);
    say('call', { name, result: res.structuredContent });
  }
  await client.close();
} finally {
  server.close();
}
