// provider.mjs is what the TypeScript clients of these tests share: the
// loopback listener the browser brings the authorization code to, and an
// OAuth client provider kept in memory for a public client (PKCE, no
// secret) registered dynamically with that redirect URI. The provider
// methods are the same in SDK 1.x and the 2.x client.

import crypto from 'node:crypto';
import http from 'node:http';

// listen starts the callback listener. next() is armed before each
// authorization URL is shown and resolves with the URL the browser is
// sent back to.
export async function listen() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const redirectUrl = `http://127.0.0.1:${server.address().port}/callback`;
  let arrive;
  server.on('request', (req, res) => {
    const u = new URL(req.url, redirectUrl);
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('Signed in. You can close this window.');
    arrive?.(u);
  });
  return {
    redirectUrl,
    next: () => new Promise((resolve) => { arrive = resolve; }),
    close: () => server.close(),
  };
}

// MemoryProvider keeps the client's registration, tokens, PKCE verifier
// and discovery state in memory.
export class MemoryProvider {
  #client; #tokens; #verifier; #discovery; #state; #callback;
  constructor(listener, clientName) {
    this.listener = listener;
    this.clientName = clientName;
  }
  get redirectUrl() { return this.listener.redirectUrl; }
  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  // A fresh state for every authorization request.
  state() { this.#state = crypto.randomBytes(16).toString('base64url'); return this.#state; }
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
    // Armed before the URL is shown, so that no callback is missed.
    this.#callback = this.listener.next();
    console.log(`Open this URL in your browser to sign in: ${url}`);
  }
  // checkCallback waits for the browser and returns the callback URL's
  // parameters, refusing an error or a state other than the one sent.
  async checkCallback() {
    const back = await this.#callback;
    if (back.searchParams.get('error')) throw new Error(`authorization refused: ${back.searchParams.get('error')}`);
    if (back.searchParams.get('state') !== this.#state) throw new Error('the callback state does not match');
    return back.searchParams;
  }
}
