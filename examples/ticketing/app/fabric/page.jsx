import FabricClient from './fabric-client';

export const metadata = { title: 'Fabric demo · sidewire' };

export default function FabricPage() {
  return (
    <section>
      <h1>Fabric relay demo</h1>
      <p className="muted">
        Open this page in two tabs: text sent from one tab is relayed to the others in room{' '}
        <code>demo</code> of the raw WebSocket channel <code>/ws/fabric</code>, natively, without JavaScript on
        the server.
      </p>
      <FabricClient documentId="demo" />
    </section>
  );
}
