import ChatApp from './chat-app';

export const metadata = { title: 'Staff chat · sidewire' };

export default function ChatPage() {
  return (
    <section>
      <h1>Staff chat</h1>
      <p className="muted">
        Socket.IO on the namespace <code>/chat</code>: a signed token checked in the engine, messages stored in SQLite
        before they are sent, receipts, typing, presence from the engine, reactions, notifications for who was away,
        and calls signalled through the server.
      </p>
      <ChatApp />
    </section>
  );
}
