// GET /api/tickets/:id: the ticket with `comments` and `attachments`.
// PATCH /api/tickets/:id: { status?, priority?, assignee? } (at least one) → 200 with the
// ticket; emits `ticket:updated` (the ticket) once to rooms `tickets` and `ticket:<id>`.
import { getTicketDetail, updateTicket } from '@/lib/db';
import { validateTicketPatch, parseId } from '@/lib/validate';
import {
  json, readJson, validationFailed, emitAfterWrite, invalidId, ticketNotFound, TICKETS_ROOM, ticketRoom,
} from '@/lib/api';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function GET(request, { params }) {
  const id = parseId((await params).id);
  if (id === null) return invalidId();
  const detail = getTicketDetail(id);
  return detail ? json(detail) : ticketNotFound();
}

export async function PATCH(request, { params }) {
  const id = parseId((await params).id);
  if (id === null) return invalidId();
  const body = await readJson(request);
  if (body.response) return body.response;
  const { value, errors } = validateTicketPatch(body.value);
  if (errors) return validationFailed(errors);
  const ticket = updateTicket(id, value);
  if (!ticket) return ticketNotFound();
  const headers = emitAfterWrite([TICKETS_ROOM, ticketRoom(id)], 'ticket:updated', ticket);
  return json(ticket, 200, headers);
}
