// ts-sdk-client.mjs connects the TypeScript MCP SDK 1.x client
// (@modelcontextprotocol/sdk) to the EpicMe MCP endpoint given as its
// argument, as a desktop client does: it starts unauthenticated, follows the
// 401 challenge to the protected resource metadata and the authorization
// server, registers itself, and prints the authorization URL for the user's
// browser; it receives the code on its own loopback callback, redeems it
// with PKCE, reconnects and calls whoami. The last line of its output is
// the JSON of whoami's structured result.

import crypto from 'node:crypto';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const mcpUrl = new URL(process.argv[2]);

// The callback listener: the browser brings the code here.
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${server.address().port}/callback`;
const callback = new Promise((resolve) => {
  server.on('request', (req, res) => {
    const u = new URL(req.url, redirectUrl);
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('Signed in. You can close this window.');
    resolve(u);
  });
});

// An OAuth client provider kept in memory: a public client (PKCE, no
// secret) registered dynamically with the loopback redirect URI above.
class Provider {
  #client; #tokens; #verifier; #discovery;
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'TypeScript SDK client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { return this.stateValue ??= crypto.randomBytes(16).toString('base64url'); }
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
  redirectToAuthorization(url) {
    console.log(`Open this URL in your browser to sign in: ${url}`);
  }
}

const provider = new Provider();
const connect = async () => {
  const client = new Client({ name: 'epicme-pages-ts-sdk', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
};

try {
  try {
    await connect();
    throw new Error('the server let an unauthenticated client connect');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  const back = await callback;
  if (back.searchParams.get('error')) throw new Error(`authorization refused: ${back.searchParams.get('error')}`);
  if (back.searchParams.get('state') !== provider.stateValue) throw new Error('the callback state does not match');
  const pending = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await pending.finishAuth(back.searchParams.get('code'));
  const { client } = await connect();
  const res = await client.callTool({ name: 'whoami', arguments: {} });
  if (res.isError) throw new Error(`whoami failed: ${JSON.stringify(res.content)}`);
  console.log(JSON.stringify(res.structuredContent));
  await client.close();
} finally {
  server.close();
}
