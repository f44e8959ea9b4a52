// POST /api/tickets/:id/attachments: multipart/form-data with the file in field `file`
// → 201 with its metadata { id, ticket_id, filename, size, mime, created_at, url }; 413 past
// SIDEWIRE_MAX_UPLOAD_BYTES (5 MiB); emits `attachment:added` (the metadata) to `ticket:<id>`.
import { getTicket, addAttachment, maxUploadBytes } from '@/lib/db';
import { parseId, sanitizeFilename, sanitizeMime } from '@/lib/validate';
import {
  json, fail, readBody, validationFailed, emitAfterWrite, invalidId, ticketNotFound, ticketRoom,
} from '@/lib/api';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

// Room for the multipart framing (boundaries, part headers) around the file itself.
const MULTIPART_OVERHEAD = 64 * 1024;

export async function POST(request, { params }) {
  const id = parseId((await params).id);
  if (id === null) return invalidId();
  if (!getTicket(id)) {
    await readBody(request, 0); // read and dropped: the client gets the 404, not a reset
    return ticketNotFound();
  }
  const contentType = request.headers.get('content-type') || '';
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    return validationFailed({ body: 'must be multipart/form-data with the file in field "file"' });
  }
  const limit = maxUploadBytes();
  const tooLarge = () => fail(413, 'file too large', { maxBytes: limit });

  // The body is read with a bound first, then parsed by the platform's FormData parser (what
  // request.formData() does, without holding an unbounded body in memory).
  const { bytes, tooLarge: bodyTooLarge } = await readBody(request, limit + MULTIPART_OVERHEAD);
  if (bodyTooLarge) return tooLarge();
  let form;
  try {
    form = await new Response(bytes, { headers: { 'content-type': contentType } }).formData();
  } catch {
    return validationFailed({ body: 'malformed multipart/form-data body' });
  }
  const file = form.get('file');
  if (!file || typeof file === 'string') return validationFailed({ file: 'a file is required in field "file"' });
  if (file.size > limit) return tooLarge();
  if (file.size === 0) return validationFailed({ file: 'the file is empty' });

  const attachment = await addAttachment(id, {
    filename: sanitizeFilename(file.name),
    mime: sanitizeMime(file.type),
    data: Buffer.from(await file.arrayBuffer()),
  });
  if (!attachment) return ticketNotFound();
  const headers = emitAfterWrite(ticketRoom(id), 'attachment:added', attachment);
  return json(attachment, 201, headers);
}
