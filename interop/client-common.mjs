// client-common.mjs holds what the two TypeScript client scripts share: their
// command line, an in-memory OAuth client provider that registers
// dynamically (RFC 7591) and signs in through browser.mjs, a fetch that
// records every HTTP exchange (without credentials) so the tests can see the
// discovery steps, and the journal scenario both clients run.

import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';

import { signIn } from './browser.mjs';

/**
 * Reads the command line shared by the client scripts.
 *
 *   --url URL            EpicMe's MCP endpoint (required)
 *   --token TOKEN        use this access token (mode "token"); or
 *   --login L --password P [--grant "s1 s2"] [--step-up]
 *                        have no token: follow the 401 challenge, discover the
 *                        authorization server, register, sign in as L (mode
 *                        "oauth"); --grant leaves only those scopes ticked on
 *                        the first consent page; --step-up (2.x client) then
 *                        expects a 403 insufficient_scope and signs in again
 *   --client-id ID (--client-secret S | --private-key FILE [--alg A])
 *     [--issuer URL] [--scope "s1 s2"] [--outside-tool NAME]
 *                        a machine client (2.x client): the client
 *                        credentials grant, authenticated by secret or by a
 *                        private_key_jwt assertion signed with the PKCS #8
 *                        key in FILE; --outside-tool is a tool its scopes do
 *                        not cover, which must be refused
 *   --client-id ID --client-secret S --idp URL --id-token T
 *     --idp-client-id X --idp-client-secret Y
 *                        enterprise-managed authorization (2.x client):
 *                        CrossAppAccessProvider exchanges the ID token at
 *                        the IdP for an ID-JAG (RFC 8693) and presents it by
 *                        the jwt-bearer grant (RFC 7523)
 *   --title T            title of the entry the scenario creates
 *
 * The token may also come from the environment variable MCP_ACCESS_TOKEN so it
 * stays off process listings.
 */
export function options() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      login: { type: 'string' },
      password: { type: 'string' },
      grant: { type: 'string' },
      'step-up': { type: 'boolean', default: false },
      dpop: { type: 'boolean', default: false },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'private-key': { type: 'string' },
      alg: { type: 'string', default: 'ES256' },
      issuer: { type: 'string' },
      scope: { type: 'string' },
      'outside-tool': { type: 'string' },
      idp: { type: 'string' },
      'id-token': { type: 'string' },
      'idp-client-id': { type: 'string' },
      'idp-client-secret': { type: 'string' },
      title: { type: 'string', default: 'Interop entry' },
    },
    strict: true,
  });
  values.token ??= process.env.MCP_ACCESS_TOKEN;
  if (!values.url) throw new Error('--url is required');
  if (!values.token && !(values.login && values.password) && !values['client-id']) {
    throw new Error('give --token (or MCP_ACCESS_TOKEN), --login and --password for the OAuth flow, or --client-id for a machine client');
  }
  return values;
}

/**
 * A fetch that records method, URL (without query) and status of every
 * exchange, and the WWW-Authenticate challenge of each 401 or 403.
 */
export function recordingFetch(log) {
  return async (input, init) => {
    const req = new Request(input, init);
    const res = await fetch(input, init);
    const url = new URL(req.url);
    const entry = { method: req.method, url: `${url.origin}${url.pathname}`, status: res.status };
    const scheme = req.headers.get('authorization')?.split(' ')[0];
    if (scheme) entry.scheme = scheme;
    if (req.headers.has('dpop')) entry.dpop = true;
    if (res.status === 401 || res.status === 403) entry.challenge = res.headers.get('www-authenticate');
    log.push(entry);
    return res;
  };
}

/**
 * An OAuth client provider kept in memory. It satisfies the provider
 * interface of both SDK generations: a public client (PKCE, no secret) with
 * a loopback redirect URI, registered dynamically.
 */
export class MemoryOAuthProvider {
  #client;
  #tokens;
  #verifier;
  #state;
  #user;
  #discovery;

  /** The URL the authorization server redirected back to, once signed in. */
  callback;

  /** Every authorization request, in order, for the test to check. */
  authorizations = [];

  constructor(user) {
    this.#user = user;
  }

  get redirectUrl() {
    return 'http://127.0.0.1:9/callback';
  }

  get clientMetadata() {
    return {
      client_name: 'EpicMe interop client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.#state = crypto.randomBytes(16).toString('base64url');
    return this.#state;
  }

  clientInformation() { return this.#client; }

  saveClientInformation(info) { this.#client = info; }

  tokens() { return this.#tokens; }

  saveTokens(tokens) { this.#tokens = tokens; }

  saveCodeVerifier(verifier) { this.#verifier = verifier; }

  codeVerifier() { return this.#verifier; }

  // Remembering where discovery led lets the client check, when the code
  // comes back, that the same authorization server answered.
  saveDiscoveryState(state) { this.#discovery = state; }

  discoveryState() { return this.#discovery; }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.#client = undefined;
    if (scope === 'all' || scope === 'tokens') this.#tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.#verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.#discovery = undefined;
  }

  async redirectToAuthorization(authorizationUrl) {
    this.authorizationUrl = new URL(authorizationUrl);
    // Only the first consent is narrowed: a user who is asked again, for
    // what a tool needs, says yes.
    const user = this.authorizations.length === 0 ? this.#user : { ...this.#user, grant: undefined };
    this.authorizations.push(this.authorizationRequest());
    this.callback = await signIn(authorizationUrl, user);
    const got = this.callback.searchParams;
    if (got.get('error')) throw new Error(`authorization refused: ${got.get('error')}: ${got.get('error_description')}`);
    if (this.#state !== undefined && got.get('state') !== this.#state) throw new Error('callback state does not match');
  }

  /** The parameters of the authorization request, for the test to check. */
  authorizationRequest() {
    const q = this.authorizationUrl?.searchParams;
    if (!q) return undefined;
    return {
      endpoint: `${this.authorizationUrl.origin}${this.authorizationUrl.pathname}`,
      client_id: q.get('client_id'),
      resource: q.get('resource'),
      scope: q.get('scope'),
      code_challenge_method: q.get('code_challenge_method'),
    };
  }
}

const structured = (result) => {
  if (result.isError) {
    const text = result.content?.find((c) => c.type === 'text')?.text;
    throw new Error(`tool error: ${text ?? JSON.stringify(result)}`);
  }
  return result.structuredContent;
};

/**
 * The journal scenario: list tools, ask who we are, write an entry and read
 * it back. It returns what it saw. Every tool call goes through wrap, which
 * a host may use to retry after the user authorized more scopes.
 */
export async function scenario(client, title, wrap = (call) => call()) {
  const call = (name, args) => wrap(() => client.callTool({ name, arguments: args }));
  const whoami = structured(await call('whoami', {}));
  const created = structured(await call('create_entry', { title, content: `Written by ${title}.` }));
  const fetched = structured(await call('get_entry', { id: created.entry.id }));
  // Listed last, so that after a step-up the list shows what the final
  // token may use.
  const { tools } = await client.listTools();
  return {
    tools: tools.map((t) => t.name).sort(), whoami, created, fetched,
  };
}

/** Prints one JSON line and exits 0, or prints the error and exits 1. */
export async function main(run) {
  try {
    const out = await run();
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  } catch (err) {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.stdout.write(`${JSON.stringify({ error: String(err?.message ?? err) })}\n`);
    process.exit(1);
  }
}
