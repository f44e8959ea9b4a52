// Small display helpers shared by the pages (server and client).
export const STATUSES = ['open', 'in_progress', 'resolved', 'closed'];
export const PRIORITIES = ['low', 'normal', 'high', 'urgent'];

export const statusLabel = (s) => s.replace('_', ' ');

export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Inserts or replaces items by id (a newer updated_at wins when both have one), sorted by `order`. */
export function upsertById(list, items, order = (a, b) => a.id - b.id) {
  const byId = new Map(list.map((x) => [x.id, x]));
  for (const item of items) {
    const old = byId.get(item.id);
    if (!old || !old.updated_at || !item.updated_at || item.updated_at >= old.updated_at) byId.set(item.id, item);
  }
  return [...byId.values()].sort(order);
}

/** The message of an API error answer ({ error, details }). */
export async function apiError(res) {
  try {
    const body = await res.json();
    const details = body.details && typeof body.details === 'object'
      ? Object.entries(body.details).map(([k, v]) => `${k} ${v}`).join('; ')
      : '';
    return details ? `${body.error}: ${details}` : body.error || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}
