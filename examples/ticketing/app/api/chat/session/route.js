// POST /api/chat/session: { name } → { token, expiresAt, user }: signs the staff chat's session
// token, an HS256 JWT (sub: the user id, name; iss 'staff-chat'; 12 hours) with
// TICKETING_JWT_SECRET, and registers the user (and its seat in the team's group). The engine
// verifies the token at every CONNECT to /chat (server.mjs, auth.namespaces['/chat']).
// Like the desk, this demo has no passwords: the name is who the user says it is.
import jwt from 'jsonwebtoken';
import { json, readJson, fail } from '@/lib/api';
import { viewerName } from '@/realtime.mjs';
import chat from '@/lib/chat-db';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

const LIFETIME_S = 12 * 60 * 60;

/** A user id from a display name: lower case letters, digits and dashes. */
function userIdOf(name) {
  const id = name.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 32);
  return id || null;
}

export async function POST(request) {
  const secret = process.env.TICKETING_JWT_SECRET;
  if (!secret) return fail(503, 'no session secret: start the app with server.mjs');
  const body = await readJson(request);
  if (body.response) return body.response;
  const name = viewerName(body.value && body.value.name);
  const id = name === 'anonymous' ? null : userIdOf(name);
  if (!id) return fail(400, 'a name is needed to sign in (letters or digits)');
  const user = chat.signIn(id, name);
  const token = jwt.sign({ sub: id, name }, secret, { algorithm: 'HS256', issuer: 'staff-chat', expiresIn: LIFETIME_S });
  return json({ token, expiresAt: Math.floor(Date.now() / 1000) + LIFETIME_S, user: { id: user.id, name: user.name } });
}
