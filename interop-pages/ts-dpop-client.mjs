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

import {
  Client, DpopSession, StreamableHTTPClientTransport, UnauthorizedError,
} from '@modelcontextprotocol/client';

import { MemoryProvider, listen } from './provider.mjs';

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

const listener = await listen();
const session = await DpopSession.create();

// A public client whose tokens are bound to the session's key.
class Provider extends MemoryProvider {
  dpop() { return session; }
}

const provider = new Provider(listener, 'TypeScript client with DPoP');
const newClient = () => new Client({ name: 'epicme-pages-ts-dpop', version: '1.0.0' });

try {
  let transport = new StreamableHTTPClientTransport(mcpUrl, { fetch, authProvider: provider });
  try {
    await newClient().connect(transport);
    throw new Error('the server let an unauthenticated client connect');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  await transport.finishAuth(await provider.checkCallback());

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
  listener.close();
}
