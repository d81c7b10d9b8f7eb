// ts-client-v2.mjs drives EpicMe with the TypeScript MCP client 2.x
// (@modelcontextprotocol/client, protocol 2026-07-28: server/discover, no
// sessions, Mcp-Method and Mcp-Name headers). The version is pinned, so a
// server that cannot speak 2026-07-28 fails loudly instead of falling back.
//
// With --token it connects with that bearer token. Without one the client
// reads the 401 challenge, fetches the protected resource metadata
// (RFC 9728), discovers the authorization server, registers (RFC 7591) and
// sends the user to the login page; browser.mjs signs in there, and the
// client redeems the code (PKCE, RFC 9207 iss check) and reconnects.
//
// It prints one JSON line, as ts-sdk-client.mjs does.

import {
  Client, StreamableHTTPClientTransport, UnauthorizedError,
} from '@modelcontextprotocol/client';

import {
  MemoryOAuthProvider, main, options, recordingFetch, scenario,
} from './client-common.mjs';

const PROTOCOL = '2026-07-28';

await main(async () => {
  const opt = options();
  const url = new URL(opt.url);
  const requests = [];
  const fetch = recordingFetch(requests);
  const newClient = () => new Client(
    { name: 'epicme-interop-client2', version: '1.0.0' },
    { versionNegotiation: { mode: { pin: PROTOCOL } } },
  );

  let client = newClient();
  let transport;
  let provider;
  if (opt.token) {
    transport = new StreamableHTTPClientTransport(url, { fetch, authProvider: { token: async () => opt.token } });
    await client.connect(transport);
  } else {
    provider = new MemoryOAuthProvider({ login: opt.login, password: opt.password, grant: opt.grant?.split(' ') });
    transport = new StreamableHTTPClientTransport(url, { fetch, authProvider: provider });
    try {
      await client.connect(transport);
      throw new Error('the server let an unauthenticated client connect');
    } catch (err) {
      if (!(err instanceof UnauthorizedError) || !provider.callback) throw err;
    }
    await transport.finishAuth(provider.callback.searchParams);
    client = newClient();
    transport = new StreamableHTTPClientTransport(url, { fetch, authProvider: provider });
    await client.connect(transport);
  }

  const result = await scenario(client, opt.title);
  const out = {
    sdk: '@modelcontextprotocol/client',
    protocolVersion: client.getNegotiatedProtocolVersion(),
    era: client.getProtocolEra(),
    sessionId: transport.sessionId !== undefined,
    server: client.getServerVersion(),
    ...result,
    authorizationRequest: provider?.authorizationRequest(),
    scope: provider?.tokens()?.scope,
    requests,
  };
  await client.close();
  return out;
});
