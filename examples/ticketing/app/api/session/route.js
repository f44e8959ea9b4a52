// POST /api/session: { name } → { token, expiresAt }: the agent's Socket.IO session token, an
// HS256 JWT (sub and name: the agent's name; iss 'ticket-desk'; 15 minutes) signed with
// TICKETING_JWT_SECRET. The engine verifies it at every CONNECT (server.mjs, auth.jwt): a page
// asks for one before it connects and again before it expires (socket-provider.jsx).
// This demo desk has no passwords: the name is who the agent says it is. A real desk issues the
// token after its own login (a session cookie, SSO) and takes the name from there.
import jwt from 'jsonwebtoken';
import { json, readJson, fail } from '@/lib/api';
import { viewerName } from '@/realtime.mjs';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

const LIFETIME_S = 15 * 60;

export async function POST(request) {
  const secret = process.env.TICKETING_JWT_SECRET;
  if (!secret) return fail(503, 'no session secret: start the desk with server.mjs');
  const body = await readJson(request);
  if (body.response) return body.response;
  const name = viewerName(body.value && body.value.name);
  const token = jwt.sign({ sub: name, name }, secret, { algorithm: 'HS256', issuer: 'ticket-desk', expiresIn: LIFETIME_S });
  return json({ token, expiresAt: Math.floor(Date.now() / 1000) + LIFETIME_S });
}
