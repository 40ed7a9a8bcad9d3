import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { UserError } from './errors.js';
import { ROLES } from './roles.js';
import { LoginThrottle } from './throttle.js';
import { acceptInvitation, changeRole, inviteUser, listUsers, login, logout, logoutEverywhere, removeUser, type NewSession } from './users.js';
import { tenantName } from './store.js';
import { withTenant } from '../db/tenant-context.js';
import { MAX_PASSWORD } from './passwords.js';
import { SESSION_COOKIE } from './tokens.js';

/** The session cookie: HttpOnly, SameSite=Strict, Secure whenever the request came over TLS. */
export { SESSION_COOKIE };

const Role = Type.Union(ROLES.map((r) => Type.Literal(r)));
const UserSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String(),
    role: Role,
    status: Type.Union([Type.Literal('invited'), Type.Literal('active')], { description: 'invited: has not set a password yet' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
const SessionSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('session'), Type.Literal('api_key')], { description: 'how this request authenticated' }),
    tenant: Type.Object({ id: Type.String({ format: 'uuid' }), name: Type.String() }, { additionalProperties: false }),
    user: Type.Union([Type.Object({ id: Type.String({ format: 'uuid' }), email: Type.String(), role: Role }, { additionalProperties: false }), Type.Null()]),
    role: Role,
    csrf_token: Type.Union([Type.String(), Type.Null()], { description: 'send as X-CSRF-Token on every POST, PUT, PATCH and DELETE made with the session cookie' }),
  },
  { additionalProperties: false },
);
const Email = Type.String({ minLength: 3, maxLength: 254 });
const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD * 4 });
const LoginBody = Type.Object(
  { email: Email, password: Password, tenant_id: Type.Optional(Type.String({ format: 'uuid', description: 'when the e-mail belongs to several tenants' })) },
  { additionalProperties: false },
);
const AcceptBody = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 200, description: 'the part of the invitation link after #' }), password: Password },
  { additionalProperties: false },
);
const InviteBody = Type.Object({ email: Email, role: Role }, { additionalProperties: false });
const RoleBody = Type.Object({ role: Role }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });

/**
 * Sign-in without credentials yet (login, accepting an invitation): no session to hold a CSRF
 * token, so these refuse a request a browser says came from another site (Sec-Fetch-Site, else
 * Origin against Host). JSON bodies already need a CORS preflight, which Skeldir never grants.
 */
function refuseCrossSite(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  const origin = request.headers.origin;
  let crossSite = typeof site === 'string' && site !== 'same-origin' && site !== 'none';
  if (!crossSite && typeof origin === 'string' && origin !== 'null') {
    try {
      crossSite = new URL(origin).host !== request.headers.host;
    } catch {
      crossSite = true;
    }
  }
  if (crossSite) throw new UserError('csrf_failed', 'sign-in is accepted only from Skeldir\'s own pages');
}

export function isTls(request: FastifyRequest): boolean {
  return request.protocol === 'https' || request.server.skeldir.config.web.publicUrl.startsWith('https:');
}

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, session: NewSession): void {
  reply.setCookie(SESSION_COOKIE, session.token, {
    httpOnly: true,
    sameSite: 'strict',
    secure: isTls(request),
    path: '/',
    expires: session.expires_at,
  });
}

function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: isTls(request), path: '/' });
}

async function sessionAnswer(request: FastifyRequest, session: NewSession) {
  const p = session.principal;
  const name = await withTenant(request.server.appPool, p.tenantId, (c) => tenantName(c, p.tenantId));
  return { kind: 'session' as const, tenant: { id: p.tenantId, name }, user: { id: p.userId, email: p.email, role: p.role }, role: p.role, csrf_token: session.csrf_token };
}

/** POST /api/v1/auth/login and /auth/invitations/accept: no credentials yet (mounted outside the API-key scope). */
export const signInRoutes: FastifyPluginAsync = async (app) => {
  const throttle = new LoginThrottle(app.appPool);
  const web = () => app.skeldir.config.web;

  app.post<{ Body: Static<typeof LoginBody> }>(
    '/auth/login',
    {
      schema: {
        tags: ['sign-in'],
        summary: 'Sign in with e-mail and password: sets the session cookie and returns the CSRF token',
        body: LoginBody,
        response: { 200: SessionSchema },
      },
      config: { problems: ['login_failed', 'login_throttled', 'login_tenant_ambiguous', 'csrf_failed'] },
    },
    async (request, reply) => {
      refuseCrossSite(request);
      const { email, password, tenant_id } = request.body;
      const wait = await throttle.retryAfterMs(email, request.ip);
      if (wait > 0) {
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        throw new UserError('login_throttled', `too many failed sign-ins: try again in ${Math.ceil(wait / 60_000)} minute(s)`);
      }
      let session: NewSession;
      try {
        session = await login(app.appPool, { email, password, ...(tenant_id ? { tenantId: tenant_id } : {}) }, web(), new Date(), request.headers['user-agent'] ?? null);
      } catch (error) {
        if (error instanceof UserError && error.code === 'login_failed') await throttle.recordFailure(email, request.ip);
        throw error;
      }
      await throttle.recordSuccess(email);
      setSessionCookie(request, reply, session);
      return sessionAnswer(request, session);
    },
  );

  app.post<{ Body: Static<typeof AcceptBody> }>(
    '/auth/invitations/accept',
    {
      schema: {
        tags: ['sign-in'],
        summary: 'Set the password from an invitation link (works once, until it expires) and sign in',
        body: AcceptBody,
        response: { 200: SessionSchema },
      },
      config: { problems: ['invitation_invalid', 'password_invalid', 'csrf_failed'] },
    },
    async (request, reply) => {
      refuseCrossSite(request);
      const session = await acceptInvitation(app.appPool, request.body.token, request.body.password, web(), new Date(), request.headers['user-agent'] ?? null);
      setSessionCookie(request, reply, session);
      return sessionAnswer(request, session);
    },
  );
};

/** Behind authentication (API key or session): who am I, sign out, and the tenant's users. */
export const userRoutes: FastifyPluginAsync = async (app) => {
  const web = () => app.skeldir.config.web;

  app.get(
    '/auth/session',
    { schema: { tags: ['sign-in'], summary: 'Who this request is: tenant, user and role, and the CSRF token of the session', response: { 200: SessionSchema } }, config: { access: 'viewer' } },
    async (request) => {
      const p = request.principal;
      const name = await request.inTenant((c) => tenantName(c, request.tenantId));
      if (p.kind === 'api_key') return { kind: 'api_key' as const, tenant: { id: p.tenantId, name }, user: null, role: 'owner' as const, csrf_token: null };
      return { kind: 'session' as const, tenant: { id: p.tenantId, name }, user: { id: p.userId, email: p.email, role: p.role }, role: p.role, csrf_token: request.csrfToken ?? null };
    },
  );

  app.post(
    '/auth/logout',
    { schema: { tags: ['sign-in'], summary: 'Sign out: ends this session and clears its cookie', response: { 204: Type.Null() } }, config: { access: 'viewer', problems: ['session_required', 'csrf_failed'] } },
    async (request, reply) => {
      const p = request.principal;
      if (p.kind !== 'session') throw new UserError('session_required', 'only a signed-in browser can sign out; API keys are revoked with skeldir tenant revoke-key');
      await logout(app.appPool, p);
      clearSessionCookie(request, reply);
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/logout-everywhere',
    {
      schema: { tags: ['sign-in'], summary: 'Sign out everywhere: ends every session of this user, on every device', response: { 200: Type.Object({ revoked: Type.Integer() }, { additionalProperties: false }) } },
      config: { access: 'viewer', problems: ['session_required', 'csrf_failed'] },
    },
    async (request, reply) => {
      const p = request.principal;
      if (p.kind !== 'session') throw new UserError('session_required', 'only a signed-in browser can sign out; API keys are revoked with skeldir tenant revoke-key');
      const revoked = await logoutEverywhere(app.appPool, p);
      clearSessionCookie(request, reply);
      return { revoked };
    },
  );

  app.get(
    '/users',
    {
      schema: { tags: ['users'], summary: "The tenant's users and their roles (admins and owners)", response: { 200: Type.Object({ items: Type.Array(UserSchema) }, { additionalProperties: false }) } },
      config: { access: 'admin', problems: ['forbidden'] },
    },
    async (request) => ({ items: await listUsers(app.appPool, request.tenantId) }),
  );

  app.post<{ Body: Static<typeof InviteBody> }>(
    '/users/invitations',
    {
      schema: {
        tags: ['users'],
        summary: 'Invite a user (owners): returns the one-time link that sets the password, shown only here',
        body: InviteBody,
        response: { 201: Type.Object({ user: UserSchema, invitation_url: Type.String(), expires_at: Type.String({ format: 'date-time' }) }, { additionalProperties: false }) },
      },
      config: { access: 'owner', problems: ['forbidden', 'csrf_failed', 'user_exists', 'user_email_invalid'] },
    },
    async (request, reply) => {
      const p = request.principal;
      const invitation = await inviteUser(app.appPool, request.tenantId, { ...request.body, invitedBy: p.kind === 'session' ? p.userId : null }, web());
      return reply.code(201).send(invitation);
    },
  );

  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof RoleBody> }>(
    '/users/:id',
    {
      schema: { tags: ['users'], summary: "Change a user's role (owners)", params: IdParams, body: RoleBody, response: { 200: UserSchema } },
      config: { access: 'owner', problems: ['forbidden', 'csrf_failed', 'user_not_found', 'last_owner'] },
    },
    async (request) => changeRole(app.appPool, request.tenantId, request.params.id, request.body.role),
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/users/:id',
    {
      schema: { tags: ['users'], summary: 'Remove a user (owners): they cannot sign in any more, their sessions end now', params: IdParams, response: { 204: Type.Null() } },
      config: { access: 'owner', problems: ['forbidden', 'csrf_failed', 'user_not_found', 'last_owner'] },
    },
    async (request, reply) => {
      await removeUser(app.appPool, request.tenantId, request.params.id);
      return reply.code(204).send();
    },
  );
};
