// ts-sdk-client.mjs drives EpicMe with the TypeScript MCP SDK 1.x client
// (@modelcontextprotocol/sdk, protocol 2025-11-25: initialize, sessions).
//
// With --token it connects with that bearer token. Without one it starts
// unauthenticated, as a real client does: the SDK reads the 401 challenge,
// fetches the protected resource metadata (RFC 9728), discovers the
// authorization server (RFC 8414 / OpenID discovery), registers (RFC 7591),
// and sends the user to the login page; browser.mjs signs in there, and the
// SDK redeems the code (PKCE) and reconnects.
//
// It prints one JSON line: the negotiated protocol version, the tools it
// saw, the results of whoami, create_entry and get_entry, and the HTTP
// exchanges it made. See client-common.mjs for the flags.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import {
  MemoryOAuthProvider, main, options, recordingFetch, scenario,
} from './client-common.mjs';

await main(async () => {
  const opt = options();
  const url = new URL(opt.url);
  const requests = [];
  const fetch = recordingFetch(requests);
  const newClient = () => new Client({ name: 'epicme-interop-sdk1', version: '1.0.0' });

  let client = newClient();
  let transport;
  let provider;
  if (opt.token) {
    transport = new StreamableHTTPClientTransport(url, {
      fetch,
      requestInit: { headers: { Authorization: `Bearer ${opt.token}` } },
    });
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
    await transport.finishAuth(provider.callback.searchParams.get('code'));
    client = newClient();
    transport = new StreamableHTTPClientTransport(url, { fetch, authProvider: provider });
    await client.connect(transport);
  }

  const result = await scenario(client, opt.title);
  const out = {
    sdk: '@modelcontextprotocol/sdk',
    protocolVersion: transport.protocolVersion,
    sessionId: transport.sessionId !== undefined,
    server: client.getServerVersion(),
    ...result,
    authorizationRequest: provider?.authorizations[0],
    scope: provider?.tokens()?.scope,
    requests,
  };
  await client.close();
  return out;
});
