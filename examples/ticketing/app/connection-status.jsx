'use client';
import { useSocket } from './socket-provider';

export default function ConnectionStatus() {
  const { connected, name } = useSocket();
  return (
    <span className="conn" title={name ? `signed in as ${name}` : undefined}>
      {name ? <span className="me">{name}</span> : null}
      <span data-testid="connection-status" className={connected ? 'status-pill on' : 'status-pill off'}>
        {connected ? 'connected' : 'disconnected'}
      </span>
    </span>
  );
}
