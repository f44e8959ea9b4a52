import { listTickets } from '@/lib/db';
import TicketList from './ticket-list';

export const dynamic = 'force-dynamic';

export default function HomePage() {
  // The first paint comes from the database; the client keeps it live from there.
  return <TicketList initialTickets={listTickets()} />;
}
