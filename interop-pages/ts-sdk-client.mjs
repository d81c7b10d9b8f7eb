// ts-sdk-client.mjs connects the TypeScript MCP SDK 1.x client
// (@modelcontextprotocol/sdk) to the EpicMe MCP endpoint given as its first
// argument, as a desktop client does: it starts unauthenticated, follows the
// 401 challenge to the protected resource metadata and the authorization
// server, registers itself (or, with a client metadata URL, uses that URL as
// its client_id), and prints the authorization URL for the user's browser;
// it receives the code on its own loopback callback, redeems it with PKCE,
// reconnects and calls whoami.
//
//	node ts-sdk-client.mjs <mcp-url> [plain|step-up|expiry] [client-metadata-url]
//
// step-up then calls create_entry, which the narrowed consent does not
// cover, and re-authorizes with the scope of the 403 challenge; expiry
// waits past the access token's lifetime and calls whoami again.
//
// Every line of output is "<what> <JSON>": "token" for each request to the
// token endpoint (its grant_type only, never a token), "call" for a tool's
// structured result, "error" for an error the client saw and went past,
// "client" for the client_id in use, "register" for each request to a
// registration endpoint.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

import { MemoryProvider, listen } from './provider.mjs';

const mcpUrl = new URL(process.argv[2]);
const mode = process.argv[3] ?? 'plain';
const clientMetadataUrl = process.argv[4];
const say = (what, value) => console.log(`${what} ${JSON.stringify(value)}`);

// Watch the client's HTTP traffic: which grants it asks the token endpoint
// for, and the last 403 challenge from the MCP endpoint.
let lastForbidden;
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.pathname.endsWith('/token') && init?.body) {
    say('token', { grant_type: new URLSearchParams(String(init.body)).get('grant_type') });
  }
  if (url.pathname.endsWith('/register')) say('register', { url: url.href });
  const res = await realFetch(input, init);
  if (url.href === mcpUrl.href && res.status === 403) lastForbidden = res;
  return res;
};

// The callback listener, and an OAuth client provider kept in memory,
// registered dynamically unless it has a client metadata URL.
const listener = await listen();
class Provider extends MemoryProvider {
  get clientMetadataUrl() { return clientMetadataUrl; }
}

const provider = new Provider(listener, 'TypeScript SDK client');

// signedIn waits for the browser at the callback and redeems the code.
const signedIn = async () => {
  const back = await provider.checkCallback();
  const pending = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await pending.finishAuth(back.get('code'));
};

const connect = async () => {
  const client = new Client({ name: 'epicme-pages-ts-sdk', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await client.connect(transport);
  return client;
};

const call = async (client, name, args = {}) => {
  const res = await client.callTool({ name, arguments: args });
  if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content)}`);
  say('call', { name, result: res.structuredContent });
  return res.structuredContent;
};

try {
  try {
    await connect();
    throw new Error('the server let an unauthenticated client connect');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  await signedIn();
  say('client', { client_id: provider.clientInformation()?.client_id });
  const client = await connect();
  await call(client, 'whoami');

  if (mode === 'step-up') {
    const entry = { title: 'Stepped up', content: 'Written after asking for more scope.' };
    try {
      await call(client, 'create_entry', entry);
      throw new Error('create_entry succeeded without entries:write');
    } catch (err) {
      // SDK 1.x answers a 403 insufficient_scope by running auth() with
      // the challenged scope; holding a refresh token, auth() refreshes
      // (which cannot widen the scope), retries once, and gives up on the
      // second 403 with this error.
      if (!(err instanceof StreamableHTTPError) || err.code !== 403) throw err;
      say('error', { code: err.code, message: err.message });
    }
    // So the application steps up itself: it drops the tokens and starts
    // a new authorization with the scope the 403 challenge names.
    const { scope, resourceMetadataUrl } = extractWWWAuthenticateParams(lastForbidden);
    say('challenge', { scope });
    provider.invalidateCredentials('tokens');
    const result = await auth(provider, { serverUrl: mcpUrl, scope, resourceMetadataUrl });
    if (result !== 'REDIRECT') throw new Error(`auth() without tokens answered ${result}`);
    await signedIn();
    await call(client, 'create_entry', entry);
    await call(client, 'whoami');
  }

  if (mode === 'expiry') {
    const lifetime = provider.tokens()?.expires_in;
    if (!lifetime) throw new Error('the token response has no expires_in');
    await new Promise((resolve) => setTimeout(resolve, lifetime * 1000 + 1500));
    // The expired token earns a 401; the SDK refreshes and resends.
    await call(client, 'whoami');
  }
  await client.close();
} finally {
  listener.close();
}
