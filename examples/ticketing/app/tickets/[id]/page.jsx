import { notFound } from 'next/navigation';
import { getTicketDetail } from '@/lib/db';
import { parseId } from '@/lib/validate';
import TicketView from './ticket-view';

export const dynamic = 'force-dynamic';

async function load(params) {
  const id = parseId((await params).id);
  return id === null ? null : getTicketDetail(id);
}

export async function generateMetadata({ params }) {
  const ticket = await load(params);
  return { title: ticket ? `#${ticket.id} ${ticket.title} · sidewire` : 'Ticket not found · sidewire' };
}

export default async function TicketPage({ params }) {
  const detail = await load(params);
  if (!detail) notFound();
  return <TicketView initial={detail} />;
}
