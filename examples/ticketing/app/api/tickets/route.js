// GET /api/tickets: every ticket, newest first.
// POST /api/tickets: { title, description?, priority? } → 201 with the ticket; emits
// `ticket:created` (the ticket) to room `tickets`.
import { listTickets, createTicket } from '@/lib/db';
import { validateNewTicket } from '@/lib/validate';
import { json, readJson, validationFailed, emitAfterWrite, TICKETS_ROOM } from '@/lib/api';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function GET() {
  return json(listTickets());
}

export async function POST(request) {
  const body = await readJson(request);
  if (body.response) return body.response;
  const { value, errors } = validateNewTicket(body.value);
  if (errors) return validationFailed(errors);
  const ticket = createTicket(value); // committed when this returns
  const headers = emitAfterWrite(TICKETS_ROOM, 'ticket:created', ticket);
  return json(ticket, 201, { ...headers, location: `/api/tickets/${ticket.id}` });
}
