import Link from 'next/link';
import { SocketProvider } from './socket-provider';
import ConnectionStatus from './connection-status';
import './globals.css';

export const metadata = {
  title: 'Ticket desk · sidewire',
  description: 'sidewire example: a real-time ticket desk on Next.js, Socket.IO served by a C++ engine',
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <SocketProvider>
          <header className="topbar">
            <Link href="/" className="brand">
              sidewire <span>ticket desk</span>
            </Link>
            <nav>
              <Link href="/">Tickets</Link>
              <Link href="/fabric">Fabric editor</Link>
              <Link href="/chat">Staff chat</Link>
            </nav>
            <ConnectionStatus />
          </header>
          <main className="container">{children}</main>
        </SocketProvider>
      </body>
    </html>
  );
}
