'use client';
// A collaborative editor: CodeMirror bound to a Y.Text (y-codemirror.next, remote cursors from
// awareness), synced by y-websocket's client over the /ws/fabric channel, which the engine
// relays natively and whose history it replays to a late joiner (examples/ticketing/fabric.mjs).

import { useEffect, useRef, useState } from 'react';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { EditorView, basicSetup } from 'codemirror';
import { yCollab } from 'y-codemirror.next';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';

const COLORS = ['#2f5fd0', '#1f8a4c', '#c0392b', '#8e44ad', '#d35400', '#16a085'];
const MESSAGE_SYNC = 0;
const MESSAGE_QUERY_AWARENESS = 3;

export default function FabricEditor({ documentId }) {
  const host = useRef(null);
  const [status, setStatus] = useState('connecting');
  const [editors, setEditors] = useState(1);
  const [me, setMe] = useState('');

  useEffect(() => {
    const doc = new Y.Doc();
    const text = doc.getText('codemirror');
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    // y-websocket's URL is <server>/<room>?<params>: ws://host/ws/fabric?documentId=<id>.
    // disableBc: tabs of one browser sync through the server, as different machines do.
    const provider = new WebsocketProvider(`${proto}://${location.host}/ws`, 'fabric', doc, {
      params: { documentId },
      disableBc: true,
    });
    const name = `Editor ${Math.floor(Math.random() * 900 + 100)}`;
    const color = COLORS[doc.clientID % COLORS.length];
    provider.awareness.setLocalStateField('user', { name, color, colorLight: `${color}33` });
    setMe(name);

    provider.on('status', ({ status: s }) => {
      setStatus(s);
      if (s !== 'connected' || !provider.ws) return;
      // No server-side Y.Doc answers here, so on every (re)connect: ask the editors online for
      // their cursors, and hand them what this tab typed while it was away (a sync step 2 of
      // the whole document; the engine keeps it in the history like any other).
      provider.ws.send(Uint8Array.of(MESSAGE_QUERY_AWARENESS));
      if (text.length > 0) {
        const encoder = encoding.createEncoder();
        encoding.writeVarUint(encoder, MESSAGE_SYNC);
        syncProtocol.writeSyncStep2(encoder, doc);
        provider.ws.send(encoding.toUint8Array(encoder));
      }
    });
    const onAwareness = () => setEditors(provider.awareness.getStates().size);
    provider.awareness.on('change', onAwareness);

    const view = new EditorView({
      doc: text.toString(),
      extensions: [basicSetup, EditorView.lineWrapping, yCollab(text, provider.awareness)],
      parent: host.current,
    });
    // For the browser tests and the curious: the document as Y.js holds it.
    window.__fabric = { text: () => text.toString(), clientID: doc.clientID };

    return () => {
      provider.awareness.off('change', onAwareness);
      view.destroy();
      provider.destroy();
      doc.destroy();
    };
  }, [documentId]);

  return (
    <section className="fabric">
      <p>
        Status: <strong data-testid="status">{status}</strong> · you are <strong data-testid="me">{me}</strong> ·{' '}
        <span data-testid="editors">{editors}</span> editing
      </p>
      <div ref={host} className="fabric-editor" data-testid="editor" />
    </section>
  );
}
