import FabricClient from './fabric-client';

export default function Page() {
  return (
    <main>
      <h1>sidewire</h1>
      <p>
        Open this page in two tabs: text sent from one tab is relayed to the others in room{' '}
        <code>demo</code> of channel <code>/ws/fabric</code>.
      </p>
      <FabricClient documentId="demo" />
    </main>
  );
}
