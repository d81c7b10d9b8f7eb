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
// With --step-up (and --grant narrowing the first consent) it also shows
// step-up authorization: a tool the token's scopes do not cover answers 403
// insufficient_scope, the client asks the user again for the union of the
// scopes, and the call succeeds on the new token.
//
// With --dpop (and the OAuth flow) the provider holds a DpopSession: the
// token requests carry DPoP proofs, the tokens are bound to its key, and
// every MCP request sends "Authorization: DPoP" with a fresh proof
// (RFC 9449).
//
// With --client-id it is a machine client: ClientCredentialsProvider
// (--client-secret, client_secret_basic) or PrivateKeyJwtProvider
// (--private-key, an RFC 7523 assertion per token request) gets a token by
// the client credentials grant, with no user and no browser.
//
// With --idp as well it is an enterprise client: CrossAppAccessProvider
// gets an ID-JAG from the IdP for the employee's ID token (--id-token) and
// exchanges it at EpicMe's authorization server by the jwt-bearer grant.
//
// It prints one JSON line, as ts-sdk-client.mjs does.

import { readFileSync } from 'node:fs';

import {
  Client, ClientCredentialsProvider, CrossAppAccessProvider, DpopSession,
  PrivateKeyJwtProvider, StreamableHTTPClientTransport, UnauthorizedError,
  discoverAndRequestJwtAuthGrant,
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
  let outside;
  if (opt.token) {
    transport = new StreamableHTTPClientTransport(url, { fetch, authProvider: { token: async () => opt.token } });
    await client.connect(transport);
  } else if (opt['client-id']) {
    const common = { clientId: opt['client-id'], expectedIssuer: opt.issuer, scope: opt.scope, clientName: 'EpicMe interop machine client' };
    if (opt.idp) {
      provider = new CrossAppAccessProvider({
        ...common,
        clientSecret: opt['client-secret'],
        assertion: async ({ authorizationServerUrl, resourceUrl, scope, fetchFn }) => {
          const grant = await discoverAndRequestJwtAuthGrant({
            idpUrl: opt.idp,
            audience: authorizationServerUrl,
            resource: resourceUrl,
            idToken: opt['id-token'],
            clientId: opt['idp-client-id'],
            clientSecret: opt['idp-client-secret'],
            scope,
            fetchFn,
          });
          return grant.jwtAuthGrant;
        },
      });
    } else if (opt['client-secret']) {
      provider = new ClientCredentialsProvider({ ...common, clientSecret: opt['client-secret'] });
    } else {
      provider = new PrivateKeyJwtProvider({ ...common, privateKey: readFileSync(opt['private-key'], 'utf8'), algorithm: opt.alg });
    }
    transport = new StreamableHTTPClientTransport(url, { fetch, authProvider: provider });
    await client.connect(transport);
    if (opt['outside-tool']) {
      try {
        const res = await client.callTool({ name: opt['outside-tool'], arguments: {} });
        outside = { refused: Boolean(res.isError), text: res.content?.find((c) => c.type === 'text')?.text };
      } catch (err) {
        outside = { refused: true, error: String(err?.message ?? err) };
      }
    }
  } else {
    provider = new MemoryOAuthProvider({ login: opt.login, password: opt.password, grant: opt.grant?.split(' ') });
    if (opt.dpop) {
      const session = await DpopSession.create();
      provider.dpop = () => session;
    }
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

  // Step-up as a host does it: when a call needs more scope, the transport
  // sends the user to authorize it and throws UnauthorizedError; once the
  // user is back, redeem the code and try the call again.
  let stepUp;
  let wrap;
  if (opt['step-up']) {
    if (!provider) throw new Error('--step-up needs the OAuth flow (--login, --password, --grant)');
    stepUp = { firstScope: provider.tokens()?.scope, steps: 0 };
    wrap = async (call) => {
      for (;;) {
        const before = provider.authorizations.length;
        try {
          return await call();
        } catch (err) {
          if (!(err instanceof UnauthorizedError) || provider.authorizations.length === before || stepUp.steps >= 3) throw err;
          stepUp.steps += 1;
          await transport.finishAuth(provider.callback.searchParams);
        }
      }
    };
  }

  const result = await scenario(client, opt.title, wrap);
  if (stepUp) stepUp.finalScope = provider.tokens()?.scope;
  const out = {
    sdk: '@modelcontextprotocol/client',
    protocolVersion: client.getNegotiatedProtocolVersion(),
    era: client.getProtocolEra(),
    sessionId: transport.sessionId !== undefined,
    server: client.getServerVersion(),
    ...result,
    authorizationRequest: provider?.authorizations?.[0],
    authorizations: provider?.authorizations,
    stepUp,
    scope: provider?.tokens()?.scope,
    tokenType: provider?.tokens()?.token_type,
    refreshToken: provider?.tokens()?.refresh_token !== undefined,
    outside,
    requests,
  };
  await client.close();
  return out;
});
