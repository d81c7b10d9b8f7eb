// A peer of "epicme bench peers": get_entry on the TypeScript MCP SDK
// (@modelcontextprotocol/sdk 1.x), stateless Streamable HTTP with JSON
// responses on Express, behind the SDK's requireBearerAuth with a verifier
// that looks the token up by its SHA-256, reading the fixture with
// better-sqlite3.
//
// Usage: node server.mjs -db FILE -tokens FILE [-addr 127.0.0.1:0] [-tools FILE]
// (-tools: the "tools" array of EpicMe's tools/list, listed as they are;
// only get_entry is served)
// Prints "listening http://HOST:PORT/mcp" once it accepts connections.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express from 'express';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { LATEST_PROTOCOL_VERSION, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

function flags(argv) {
  const f = { addr: '127.0.0.1:0' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^-+/, '');
    if (!['db', 'tokens', 'addr', 'tools'].includes(k) || i + 1 >= argv.length) {
      console.error(`unknown or incomplete flag ${argv[i]}; want -db FILE -tokens FILE [-addr HOST:PORT] [-tools FILE]`);
      process.exit(2);
    }
    f[k] = argv[i + 1];
  }
  if (!f.db || !f.tokens) {
    console.error('both -db and -tokens are required');
    process.exit(2);
  }
  return f;
}

const f = flags(process.argv.slice(2));
const listed = f.tools ? JSON.parse(readFileSync(f.tools, 'utf8')) : null;

// The token table: hex SHA-256 of a token -> user id.
const tokens = new Map();
for (const line of readFileSync(f.tokens, 'utf8').split('\n')) {
  if (!line) continue;
  const [hash, user] = line.split(' ');
  tokens.set(hash, user);
}
const expiresAt = Math.floor(Date.now() / 1000) + 86400;
const verifier = {
  async verifyAccessToken(token) {
    const user = tokens.get(createHash('sha256').update(token).digest('hex'));
    if (!user) throw new InvalidTokenError('unknown token');
    return { token, clientId: 'bench', scopes: [], expiresAt, extra: { userId: user } };
  },
};

// The same statement and pragmas as EpicMe's readers.
const db = new Database(f.db, { readonly: true, fileMustExist: true });
db.pragma('mmap_size = 4294967296');
const getEntry = db.prepare(`SELECT e.id, e.title, e.content, e.mood, e.location, e.weather,
	e.is_private, e.is_favorite, e.created_at, e.updated_at, e.tags
FROM entries e WHERE e.user_id = ? AND e.id = ?`).safeIntegers(true);

// nanosToISO formats Unix nanoseconds as Go's time.Time does in JSON.
function nanosToISO(n) {
  const ms = n / 1000000n;
  const frac = (n % 1000000000n).toString().padStart(9, '0').replace(/0+$/, '');
  const s = new Date(Number(ms)).toISOString().slice(0, 19);
  return frac ? `${s}.${frac}Z` : `${s}Z`;
}

function readEntry(userId, id) {
  const r = getEntry.get(userId, id);
  if (!r) return null;
  const e = {
    id: Number(r.id), userId, title: r.title, content: r.content,
    mood: r.mood, location: r.location, weather: r.weather,
    isPrivate: r.is_private === 1n, isFavorite: r.is_favorite === 1n,
    createdAt: nanosToISO(r.created_at), updatedAt: nanosToISO(r.updated_at),
  };
  const tags = JSON.parse(r.tags);
  if (tags.length > 0) e.tags = tags;
  return e;
}

// A stateless server is made per request, as the SDK's stateless example
// does: a transport serves one request, and a server one transport.
function newServer() {
  const server = new McpServer({ name: 'ts-peer', version: '1' });
  server.registerTool('get_entry', {
    description: 'Get a journal entry by id, with its tags.',
    inputSchema: { id: z.number().int().describe("The entry's id") },
    annotations: { readOnlyHint: true },
  }, async ({ id }, extra) => {
    const e = readEntry(extra.authInfo.extra.userId, id);
    if (!e) return { content: [{ type: 'text', text: `Entry with ID "${id}" not found` }], isError: true };
    const text = JSON.stringify({ entry: e });
    return {
      content: [
        { type: 'resource_link', uri: `epicme://entries/${e.id}`, name: e.title, description: `Journal Entry: "${e.title}"`, mimeType: 'application/json' },
        { type: 'text', text },
      ],
      structuredContent: { entry: e },
    };
  });
  // With -tools, tools/list answers EpicMe's definitions (the SDK's
  // registerTool takes zod schemas, not JSON Schema, so the list is set
  // on the underlying protocol server).
  if (listed) server.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
  return server;
}

// The load generator speaks the 2026-07-28 revision, whose stateless
// requests need no initialize; SDK 1.x knows revisions up to its latest and
// refuses others with 400. The request body is the same either way, so the
// header is rewritten to the SDK's latest.
function acceptStatelessRevision(req, _res, next) {
  const v = req.headers['mcp-protocol-version'];
  if (v && v > LATEST_PROTOCOL_VERSION) {
    req.headers['mcp-protocol-version'] = LATEST_PROTOCOL_VERSION;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() === 'mcp-protocol-version') req.rawHeaders[i + 1] = LATEST_PROTOCOL_VERSION;
    }
  }
  next();
}

const app = express();
app.use(express.json({ limit: '1mb' }));
app.post('/mcp', requireBearerAuth({ verifier }), acceptStatelessRevision, async (req, res) => {
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null });
  }
});

const i = f.addr.lastIndexOf(':');
const host = f.addr.slice(0, i).replace(/^\[|\]$/g, '');
if (!['127.0.0.1', '::1'].includes(host)) {
  console.error(`-addr ${f.addr}: peers listen on loopback only`);
  process.exit(2);
}
const listener = app.listen(Number(f.addr.slice(i + 1)), host, () => {
  const a = listener.address();
  const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  console.log(`listening http://${h}:${a.port}/mcp`);
});
listener.keepAliveTimeout = 60000;
