// browser.mjs plays the user's browser for the MCP clients' OAuth flows: it
// opens an authorization URL, signs in on the authorization server's login
// page with a login and password, ticks the scopes on the consent page, and
// returns the URL the server finally redirects to (the client's redirect URI
// with code, state and iss). It keeps cookies and follows redirects within
// the authorization server's origin, as a browser would, and never follows
// the redirect to the client.

const FORM = /<form method="post" action="([^"]+\/(?:login|confirm))">/;
const SCOPE_BOX = /<input type="checkbox" name="scope" value="([^"]+)"/g;

const unescapeHTML = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
  .replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');

// A cookie jar for one origin: enough for the authorization server's
// interaction and session cookies, whose names are distinct.
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.split('=').map((x) => x?.trim().toLowerCase());
        return (k === 'max-age' && Number(v) <= 0) || (k === 'expires' && Date.parse(v) <= Date.now());
      });
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * Signs in and consents at an authorization URL.
 *
 * @param {URL|string} authorizationUrl where the client sends the user
 * @param {{login: string, password: string, grant?: string[]}} user who signs
 *   in; grant, when given, lists the only scopes left ticked on the consent page
 * @returns {Promise<URL>} the redirect back to the client
 */
export async function signIn(authorizationUrl, { login, password, grant }) {
  const jar = new CookieJar();
  let url = new URL(authorizationUrl);
  const origin = url.origin;
  let init = { method: 'GET' };
  for (let hop = 0; hop < 20; hop += 1) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, cookie: jar.header() } });
    jar.store(res);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location'), url);
      if (next.origin !== origin) return next;
      url = next;
      init = { method: 'GET' };
      continue;
    }
    const body = await res.text();
    const form = FORM.exec(body);
    if (!form) {
      throw new Error(`${url} answered ${res.status} without a login or consent form: ${body.slice(0, 500)}`);
    }
    if (init.method === 'POST' && url.pathname.endsWith('/login') && res.status === 401) {
      throw new Error(`the login page refused ${login}'s password`);
    }
    const action = new URL(unescapeHTML(form[1]), url);
    const fields = new URLSearchParams();
    if (action.pathname.endsWith('/login')) {
      fields.set('login', login);
      fields.set('password', password);
    } else {
      for (const [, raw] of body.matchAll(SCOPE_BOX)) {
        const value = unescapeHTML(raw);
        const scope = value.slice(value.indexOf(' ') + 1);
        if (!grant || grant.includes(scope)) fields.append('scope', value);
      }
    }
    url = action;
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    };
  }
  throw new Error('too many redirects at the authorization server');
}
