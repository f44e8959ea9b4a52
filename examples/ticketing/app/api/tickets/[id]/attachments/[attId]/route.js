// GET /api/tickets/:id/attachments/:attId: the file, as a download.
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { getAttachmentFile } from '@/lib/db';
import { parseId } from '@/lib/validate';
import { fail, invalidId } from '@/lib/api';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

// RFC 6266 / 5987: an ASCII fallback and the UTF-8 name.
function contentDisposition(filename) {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export async function GET(request, { params }) {
  const p = await params;
  const id = parseId(p.id);
  const attId = parseId(p.attId);
  if (id === null || attId === null) return invalidId();
  const att = getAttachmentFile(id, attId);
  if (!att) return fail(404, 'attachment not found');
  let stat;
  try {
    stat = await fs.promises.stat(att.path);
  } catch {
    return fail(404, 'attachment file missing');
  }
  const stream = Readable.toWeb(fs.createReadStream(att.path));
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': att.mime,
      'content-length': String(stat.size),
      'content-disposition': contentDisposition(att.filename),
      // Uploaded content is never rendered or sniffed as a page of this origin.
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'cache-control': 'private, no-cache',
    },
  });
}
