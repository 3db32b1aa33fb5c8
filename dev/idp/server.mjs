// =====================================================================================
//  DEVELOPMENT-ONLY IDENTITY PROVIDER. NEVER DEPLOY THIS. NEVER EXPOSE IT BEYOND LOOPBACK.
//
//  It accepts ANY password for its built-in users, keeps everything in memory, signs with
//  keys written in plain text to a file, ships a well-known client secret, and turns off
//  oidc-provider's SSRF guard so it can deliver back-channel logout tokens to 127.0.0.1.
//  It exists so `make up` and `make test` can exercise Gatehouse's OIDC login, bearer JWT
//  and back-channel logout code against a real, certified OpenID provider
//  (npm `oidc-provider` 9.x). See idp/README.md.
// =====================================================================================

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import Provider, { errors } from 'oidc-provider';

const env = (name, fallback) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
};
const list = (name, fallback) => env(name, fallback).split(',').map((s) => s.trim()).filter(Boolean);
const seconds = (name, fallback) => {
  const n = Number.parseInt(env(name, String(fallback)), 10);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${name} must be a positive number of seconds`);
  }
  return n;
};

const HOST = '127.0.0.1';
const PORT = Number.parseInt(env('IDP_PORT', '9000'), 10);
const ISSUER = env('IDP_ISSUER', `http://${HOST}:${PORT}`);
const CLIENT_ID = env('IDP_CLIENT_ID', 'gatehouse');
const CLIENT_SECRET = env('IDP_CLIENT_SECRET', 'gatehouse-dev-secret');
const REDIRECT_URIS = list(
  'IDP_REDIRECT_URIS',
  'http://127.0.0.1:8080/auth/callback,http://localhost:8080/auth/callback',
);
const POST_LOGOUT_REDIRECT_URIS = list('IDP_POST_LOGOUT_REDIRECT_URIS', 'http://127.0.0.1:8080/console/');
// An empty value ("IDP_BACKCHANNEL_LOGOUT_URI=" is treated as unset) keeps the default; use
// "none" to register the client without back-channel logout.
const BACKCHANNEL_LOGOUT_URI = env('IDP_BACKCHANNEL_LOGOUT_URI', 'http://127.0.0.1:8080/auth/backchannel-logout');
const API_AUDIENCE = env('IDP_API_AUDIENCE', 'gatehouse');
// The RFC 8707 resource indicator every authorization request defaults to; access tokens
// issued for it are JWTs with `aud` = IDP_API_AUDIENCE.
const API_RESOURCE = env('IDP_API_RESOURCE', 'urn:gatehouse:api');
const ACCESS_TOKEN_TTL = seconds('IDP_ACCESS_TOKEN_TTL', 3600);
const ID_TOKEN_TTL = seconds('IDP_ID_TOKEN_TTL', 3600);
const JWKS_FILE = env('IDP_JWKS_FILE', undefined);
const ROTATE = env('IDP_ROTATE', '0') === '1';
const USERS_FILE = env('IDP_USERS_FILE', undefined);
const COOKIE_KEYS = list('IDP_COOKIE_KEYS', 'gatehouse-dev-idp-cookie-key-not-secret');

const log = (msg, fields = {}) => {
  process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), msg, ...fields })}\n`);
};

// ---- users --------------------------------------------------------------------------------

const USERS = {
  alice: { name: 'Alice Operator', team: 'team-a', groups: ['sandbox-operators'] },
  bob: { name: 'Bob Viewer', team: 'team-a', groups: ['sandbox-viewers'] },
  carol: { name: 'Carol Operator', team: 'team-b', groups: ['sandbox-operators'] },
  // No group grants her anything: `make up` binds her to service_admin in the governance
  // store (`gatehouse rbac bind subject dana service_admin`), the bootstrap path.
  dana: { name: 'Dana Admin', team: 'platform', groups: [] },
};
if (USERS_FILE) {
  // { "<username>": { "name"?, "email"?, "team"?, "groups"? } }, merged over the built-ins.
  Object.assign(USERS, JSON.parse(fs.readFileSync(USERS_FILE, 'utf8')));
}

function userClaims(username) {
  const u = USERS[username];
  const claims = {
    sub: username,
    name: u.name ?? username,
    preferred_username: username,
    email: u.email ?? `${username}@example.test`,
    email_verified: true,
  };
  if (u.team !== undefined && u.team !== null) claims.team = u.team;
  if (u.groups !== undefined && u.groups !== null) claims.groups = u.groups;
  return claims;
}

async function findAccount(_ctx, id) {
  if (!Object.hasOwn(USERS, id)) {
    return undefined;
  }
  return {
    accountId: id,
    async claims() {
      return userClaims(id);
    },
  };
}

// ---- signing keys -------------------------------------------------------------------------

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = `rsa-${new Date().toISOString().replace(/[-:.TZ]/g, '')}-${crypto.randomBytes(4).toString('hex')}`;
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function loadKeys() {
  let keys = [];
  if (JWKS_FILE && fs.existsSync(JWKS_FILE)) {
    keys = JSON.parse(fs.readFileSync(JWKS_FILE, 'utf8')).keys ?? [];
  }
  let changed = false;
  if (keys.length === 0 || ROTATE) {
    // A rotation puts the new key first (oidc-provider signs with the first matching key)
    // and keeps the previous ones published in the JWKS so tokens they signed still verify.
    keys.unshift(newSigningKey());
    changed = true;
  }
  for (const k of keys) {
    if (!k.kid) throw new Error(`a key in ${JWKS_FILE} has no "kid"`);
  }
  if (changed && JWKS_FILE) {
    fs.mkdirSync(path.dirname(path.resolve(JWKS_FILE)), { recursive: true });
    fs.writeFileSync(JWKS_FILE, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  }
  return keys;
}

const keys = loadKeys();

// ---- the provider -------------------------------------------------------------------------

const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups', 'team'];
// The API resource server accepts the OIDC scope names, so the access token's `scope`
// mirrors what the client asked for (as Keycloak and others do).
const API_SCOPES = OIDC_SCOPES.filter((s) => s !== 'offline_access').join(' ');

const client = {
  client_id: CLIENT_ID,
  client_secret: CLIENT_SECRET,
  client_name: 'Gatehouse (dev)',
  token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: REDIRECT_URIS,
  post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  id_token_signed_response_alg: 'RS256',
};
if (BACKCHANNEL_LOGOUT_URI !== 'none') {
  client.backchannel_logout_uri = BACKCHANNEL_LOGOUT_URI;
  client.backchannel_logout_session_required = true;
}

const configuration = {
  clients: [client],
  jwks: { keys },
  findAccount,
  // `team` and `groups` ride on `openid`, so a plain `openid profile email` request gets
  // them in the ID token; the `groups`/`team` scopes exist too and are accepted.
  claims: {
    openid: ['sub', 'team', 'groups'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    team: ['team'],
  },
  scopes: OIDC_SCOPES,
  // Put every scope's claims in the ID token, not only in the userinfo response.
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  pkce: { required: () => true },
  cookies: {
    names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
    keys: COOKIE_KEYS,
  },
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    IdToken: ID_TOKEN_TTL,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 8 * 3600,
    Grant: 8 * 3600,
    RefreshToken: 8 * 3600,
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // Sign-out needs no extra click here: the confirmation form (with its xsrf token)
      // submits itself, and the browser goes straight back to post_logout_redirect_uri.
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Signing out</title></head>
<body><main><h1>Signing out…</h1>${form}
<noscript><button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button></noscript></main>
<script>var f=document.getElementById('op.logoutForm');var i=document.createElement('input');
i.type='hidden';i.name='logout';i.value='yes';f.appendChild(i);f.submit();</script></body></html>`;
      },
    },
    backchannelLogout: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => API_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== API_RESOURCE) {
          throw new errors.InvalidTarget(`unknown resource (this IdP serves only ${API_RESOURCE})`);
        }
        return {
          scope: API_SCOPES,
          audience: API_AUDIENCE,
          accessTokenTTL: ACCESS_TOKEN_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // The user's team and groups (and name/email) in JWT access tokens, as in the ID token.
  async extraTokenClaims(_ctx, token) {
    if (token.kind !== 'AccessToken' || !token.accountId || !Object.hasOwn(USERS, token.accountId)) {
      return undefined;
    }
    const { sub: _sub, email_verified: _ev, ...rest } = userClaims(token.accountId);
    return rest;
  },
  // Skip consent: this dev IdP's only client is first-party. Grant everything it asks for.
  async loadExistingGrant(ctx) {
    const { provider, client: c, session, result, params } = ctx.oidc;
    const grantId = result?.consent?.grantId || session.grantIdFor(c.clientId);
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (!grant) {
      if (!session.accountId) return undefined;
      grant = new provider.Grant({ clientId: c.clientId, accountId: session.accountId });
    }
    const requested = String(params?.scope ?? '').split(' ').filter(Boolean);
    grant.addOIDCScope(OIDC_SCOPES.filter((s) => requested.includes(s)).join(' ') || 'openid');
    grant.addResourceScope(API_RESOURCE, API_SCOPES);
    await grant.save();
    return grant;
  },
  // oidc-provider refuses to call special-use addresses (loopback included) by default.
  // This dev IdP must reach the gateway on 127.0.0.1 for back-channel logout, so it drops
  // that guard. Every outgoing request (only back-channel logout deliveries) is logged.
  async fetch(url, options) {
    const { dispatcher: _guard, ...rest } = options;
    try {
      const response = await globalThis.fetch(url, rest);
      log('outgoing request', { method: rest.method ?? 'GET', url: String(url), status: response.status });
      return response;
    } catch (err) {
      log('outgoing request failed', { method: rest.method ?? 'GET', url: String(url), error: String(err?.cause ?? err) });
      throw err;
    }
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
    ctx.body = `<!DOCTYPE html><html><head><title>dev IdP error</title></head><body><h1>oops! something went wrong</h1><pre>${Object.entries(out).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join('\n')}</pre></body></html>`;
  },
};

const provider = new Provider(ISSUER, configuration);

provider.on('backchannel.success', (_ctx, c, accountId, sid) => {
  log('backchannel logout delivered', { client_id: c.clientId, uri: c.backchannelLogoutUri, sub: accountId, sid });
});
provider.on('backchannel.error', (_ctx, err, c, accountId, sid) => {
  log('backchannel logout failed', {
    client_id: c.clientId,
    uri: c.backchannelLogoutUri,
    sub: accountId,
    sid,
    status: err?.response?.status,
    error: String(err?.message ?? err),
  });
});
provider.on('end_session.success', (ctx) => {
  log('end session', { sub: ctx.oidc.session?.accountId });
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error', 'jwks.error']) {
  provider.on(event, (_ctx, err) => {
    log(event, { error: String(err?.message ?? err), detail: err?.error_description });
  });
}

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// oidc-provider's built-in pages (login, consent) @import web fonts from the internet.
// The dev IdP serves nothing from another host: the import is removed, and the pages fall
// back to the system's sans-serif font. They also get a language, a main landmark and
// colours with AA contrast, so axe-core finds nothing on them either.
const EXTERNAL_FONTS = /@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);?/g;
const CONTRAST =
  '<style>.login-card label,.grant-debug{color:#555}.login-card a{opacity:1;color:#444}' +
  '.login-submit{background-color:#1f4fd1}</style>';
provider.use(async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.body.includes('fonts.googleapis.com')) {
    ctx.body = ctx.body
      .replace(EXTERNAL_FONTS, '')
      .replace(/<html\s*>/, '<html lang="en">')
      .replace('</head>', `${CONTRAST}</head>`)
      .replace('<body>', '<body><main>')
      .replace('</body>', '</main></body>');
  }
});

provider.use(async (ctx, next) => {
  // Readiness probe and a user list for humans (no secrets in either).
  if (ctx.method === 'GET' && ctx.path === '/__dev/ready') {
    ctx.body = { ready: true, issuer: ISSUER };
    return;
  }
  if (ctx.method === 'GET' && ctx.path === '/__dev/users') {
    ctx.body = Object.keys(USERS).map((u) => userClaims(u));
    return;
  }
  // The login form's submission. devInteractions would sign in ANY login name and then
  // fail with a server error when findAccount does not know it; here an unknown user
  // ends the authorization request with `access_denied` back at the client instead.
  // Any password is accepted.
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)
      && ctx.is('application/x-www-form-urlencoded')) {
    const raw = await readBody(ctx.req);
    const form = new URLSearchParams(raw);
    if (form.get('prompt') === 'login') {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.prompt.name !== 'login') {
        ctx.throw(400, 'this interaction is not a login');
      }
      const login = form.get('login') ?? '';
      const known = Object.hasOwn(USERS, login);
      log('login', { user: login, known });
      const result = known
        ? { login: { accountId: login } }
        : {
          error: 'access_denied',
          error_description: `unknown user (this dev IdP knows ${Object.keys(USERS).join(', ')})`,
        };
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
        mergeWithLastSubmission: false,
      });
      ctx.redirect(returnTo);
      ctx.status = 303;
      return;
    }
    // Anything else (consent) goes to devInteractions, which reads the body from here.
    ctx.req.body = raw;
  }
  await next();
});

const server = provider.listen(PORT, HOST, () => {
  log('dev IdP listening (DEVELOPMENT ONLY: any password is accepted)', {
    issuer: ISSUER,
    client_id: CLIENT_ID,
    redirect_uris: REDIRECT_URIS,
    post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
    backchannel_logout_uri: client.backchannel_logout_uri ?? null,
    api_audience: API_AUDIENCE,
    kids: keys.map((k) => k.kid),
    users: Object.keys(USERS),
  });
});

const shutdown = (signal) => {
  log('stopping', { signal });
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
