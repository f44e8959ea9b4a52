import FabricEditor from './fabric-editor';

export const metadata = { title: 'Fabric editor · sidewire' };

// One document per ?doc= (default "demo"): documentId on the /ws/fabric channel.
export default async function FabricPage({ searchParams }) {
  const { doc } = await searchParams;
  const documentId = typeof doc === 'string' && /^[\w-]{1,64}$/.test(doc) ? doc : 'demo';
  return (
    <section>
      <h1>Fabric: a shared document</h1>
      <p className="muted">
        Y.js over the raw WebSocket channel <code>/ws/fabric</code>: the engine relays every edit and cursor to the
        other editors of <code>{documentId}</code> without JavaScript on the server, keeps the document&apos;s updates
        in the room&apos;s history for whoever opens it later, and the server saves it in SQLite. Open this page in
        two windows and type.
      </p>
      <FabricEditor documentId={documentId} />
    </section>
  );
}
