// POST /api/tickets/:id/comments: { author, body } → 201 with the comment (incl. ticket_id);
// emits `comment:added` (the comment) to room `ticket:<id>`.
import { addComment } from '@/lib/db';
import { validateNewComment, parseId } from '@/lib/validate';
import {
  json, readJson, validationFailed, emitAfterWrite, invalidId, ticketNotFound, ticketRoom,
} from '@/lib/api';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function POST(request, { params }) {
  const id = parseId((await params).id);
  if (id === null) return invalidId();
  const body = await readJson(request);
  if (body.response) return body.response;
  const { value, errors } = validateNewComment(body.value);
  if (errors) return validationFailed(errors);
  const comment = addComment(id, value);
  if (!comment) return ticketNotFound();
  const headers = emitAfterWrite(ticketRoom(id), 'comment:added', comment);
  return json(comment, 201, headers);
}
